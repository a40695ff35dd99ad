/**
 * "Task was destroyed but it is pending!" is not reported for the Tasks asyncio makes on the caller's behalf:
 *
 * - gather() wraps each argument that is not a Future in a Task and sets `fut._log_destroy_pending = False` on it
 *   (Lib/asyncio/tasks.py `gather`: "'arg' was not a Future, therefore, 'fut' is a new Future created specifically
 *   for 'arg'. Since the caller can't control it, disable the 'destroy pending task' warning.");
 * - run_until_complete() does the same for the Task it makes from a coroutine (Lib/asyncio/base_events.py
 *   `run_until_complete`: "An exception is raised if the future didn't complete, so there is no need to log the
 *   'destroy pending task' message").
 *
 * tulipwire reports pending Tasks from `close()` (the loop holds them strongly: test_tasks.test_log_destroyed_pending_task
 * in cpython-test-tasks.test.ts); these two kinds stay quiet there too. What CPython 3.13 reports for the same
 * programs (the loop stopped after 0.01 s, closed, `gc.collect()`):
 *
 *   async def main(): await asyncio.gather(asyncio.sleep(10), asyncio.sleep(10))
 *   t = loop.create_task(main(), name='main'); ... loop.close()      -> ['Task was destroyed but it is pending! main']
 *   loop.run_until_complete(main2())   # RuntimeError: Event loop stopped before Future completed.
 *   loop.close()                                                       -> []
 */
import { describe, expect, it } from 'vitest';
import { EventLoop, InvalidStateError, VirtualClock, gather, sleep } from '../../src/index.js';
import type { ExceptionContext, Task } from '../../src/index.js';

function newLoop(): { loop: EventLoop; reports: ExceptionContext[] } {
  const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => {
    reports.push(ctx);
  });
  return { loop, reports };
}

describe('Task was destroyed but it is pending: the Tasks asyncio makes for the caller stay quiet', () => {
  it('gather() of functions: only the task awaiting the gather is reported, not the tasks gather made', async () => {
    const { loop, reports } = newLoop();
    const main = loop.createTask(async () => {
      await gather(() => sleep(10), () => sleep(10));
    }, { name: 'main' });
    loop.callLater(0.01, () => loop.stop());
    await loop.runForever();
    loop.close();
    expect(reports.map((r) => r.message)).toEqual(['Task was destroyed but it is pending!']);
    expect(reports[0]!.task).toBe(main);
  });

  it('gather() of a Task the caller made: that Task is still reported (gather did not make it)', async () => {
    const { loop, reports } = newLoop();
    let child: Task<void> | null = null;
    loop.createTask(async () => {
      child = loop.createTask(() => sleep(10), { name: 'child' });
      await gather(child, () => sleep(10));
    }, { name: 'main' });
    loop.callLater(0.01, () => loop.stop());
    await loop.runForever();
    loop.close();
    expect(reports.map((r) => (r.task as Task<unknown>).getName()).sort()).toEqual(['child', 'main']);
    expect(child).not.toBeNull();
  });

  it('runUntilComplete(fn) stopped before the task is done: InvalidStateError, and close() reports nothing for that task', async () => {
    const { loop, reports } = newLoop();
    loop.callLater(0.01, () => loop.stop());
    await expect(loop.runUntilComplete(async () => {
      await sleep(10);
    })).rejects.toThrow(InvalidStateError);
    loop.close();
    expect(reports).toEqual([]);
  });

  it('runUntilComplete(task) stopped early: the caller\'s own Task is still reported', async () => {
    const { loop, reports } = newLoop();
    const t = loop.createTask(() => sleep(10), { name: 'mine' });
    loop.callLater(0.01, () => loop.stop());
    await expect(loop.runUntilComplete(t)).rejects.toThrow(InvalidStateError);
    loop.close();
    expect(reports.map((r) => r.task)).toEqual([t]);
  });
});
