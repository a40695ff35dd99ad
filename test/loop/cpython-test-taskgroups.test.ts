/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_taskgroups.py cases: a group used outside a task, entered twice,
 * never entered or already finished. Virtual clock throughout; no timed assertions. Skipped:
 * test_taskgroup_task_context (no contextvars).
 */
import { describe, expect, it } from 'vitest';
import { InvalidStateError, TaskGroup, sleep } from '../../src/index.js';
import { awaitWithoutTask } from '../support/await-without-task.js';
import { useLoop } from '../support/loop.js';

describe('test_taskgroups.py', () => {
  const fx = useLoop();

  it('test_coro_closed_when_tg_closed (test_taskgroups): createTask on a finished group throws "is finished" and never calls the function', async () => {
    await fx.run(async () => {
      const tg = new TaskGroup();
      await tg.run(() => undefined);
      let called = false;
      expect(() => tg.createTask(async () => {
        called = true;
      })).toThrow(/is finished/);
      await sleep(0);
      expect(called).toBe(false);
    });
  });

  it('test_taskgroups.TestTaskGroup.test_taskgroup_without_parent_task: inside a running loop but outside any task, entering throws "parent task"; createTask then says "has not been entered"', async () => {
    // The older port ran with no loop at all; asyncio's case runs __aenter__ from a plain callback of the loop.
    await fx.run(async () => {
      const tg = new TaskGroup();
      const err = await awaitWithoutTask(() => tg.run(() => undefined)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidStateError);
      expect((err as Error).message).toMatch(/parent task/);
      let called = false;
      expect(() => tg.createTask(async () => {
        called = true;
      })).toThrow(/has not been entered/);
      await sleep(0);
      expect(called).toBe(false);
    });
  });

  it('test_taskgroups.TestTaskGroup.test_taskgroup_double_enter / test_taskgroup_not_entered / test_taskgroup_finished: the messages asyncio gives', async () => {
    await fx.run(async () => {
      const fresh = new TaskGroup();
      expect(() => fresh.createTask(async () => {})).toThrow(/has not been entered/);
      const tg = new TaskGroup();
      await tg.run(() => undefined);
      await expect(tg.run(() => undefined)).rejects.toThrow(/has already been entered/);
      expect(() => tg.createTask(async () => {})).toThrow(/is finished/);
    });
  });
});
