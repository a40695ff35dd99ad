/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_queues.py cases: String(queue), its repr. Virtual clock
 * throughout; no timed assertions. Where tulipwire deliberately differs the title says so. Skipped:
 * test_generic_alias (typing).
 */
import { describe, expect, it } from 'vitest';
import { Queue, TaskGroup, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('test_queues.py', () => {
  const fx = useLoop();

  it('test_str (test_queues): String(queue) is its repr: no id, getters, putters, tasks', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      expect(String(q).startsWith('<Queue')).toBe(true);
      expect(String(q)).toBe(q.toString());
      const q1 = new Queue<number>();
      await TaskGroup.run(async (tg) => {
        const getter = tg.createTask(() => q1.get());
        await sleep(0);
        expect(String(q1)).toContain('getters=1');
        q1.putNowait(0);
        expect(await getter).toBe(0);
      });
      const q2 = new Queue<number>(1);
      await TaskGroup.run(async (tg) => {
        q2.putNowait(1);
        const putter = tg.createTask(() => q2.put(2));
        await sleep(0);
        expect(String(q2)).toContain('putters=1');
        q2.getNowait();
        await putter;
      });
      const q3 = new Queue<number>();
      q3.putNowait(1);
      expect(String(q3)).toContain('tasks=1');
    });
  });

  it('test_queues.QueueBasicTests.test_repr, deliberately different: String(queue) is the repr, with no id, and shows counts (size=1, getters=1, putters=1) where asyncio shows _queue=[1], _getters[1], _putters[1]', async () => {
    // asyncio: repr(q) = "<Queue at 0x… maxsize=0 _queue=[1] tasks=1>", str(q) the same without "at 0x…". tulipwire
    // has one form (the module doc comment of queues.ts): no identity, and never the items themselves (a queue
    // of large or secret values must not print them).
    await fx.run(async () => {
      const q = new Queue<number>();
      expect(String(q).startsWith('<Queue')).toBe(true);
      expect(String(q)).not.toMatch(/0x[0-9a-f]+/);
      await TaskGroup.run(async (tg) => {
        const getter = tg.createTask(() => q.get());
        await sleep(0);
        expect(String(q)).toBe('<Queue maxsize=0 size=0 getters=1>');
        q.putNowait(0);
        expect(await getter).toBe(0);
      });
      const q2 = new Queue<number>(1);
      await TaskGroup.run(async (tg) => {
        q2.putNowait(1);
        const putter = tg.createTask(() => q2.put(2));
        await sleep(0);
        expect(String(q2)).toBe('<Queue maxsize=1 size=1 putters=1 tasks=1>');
        q2.getNowait();
        await putter;
        expect(putter.done()).toBe(true);
      });
      const q3 = new Queue<number>();
      q3.putNowait(1);
      expect(String(q3)).toBe('<Queue maxsize=0 size=1 tasks=1>');
    });
  });
});
