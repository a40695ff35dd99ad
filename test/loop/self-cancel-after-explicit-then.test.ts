/**
 * A task body that calls a two-callback `fut.then(a, b)` (which cannot be told from an `await` when it is called)
 * and then cancels itself before its next await (`tg.cancel()` in a TaskGroup body, `currentTask().cancel()`) is
 * still running: as in asyncio's `Task.cancel` on a running task, the cancel is for the task's next await. tulipwire
 * took the registration for the task's await and cancelled `fut` (a Future the task never awaited, that others may
 * wait on), and the body's next await went through as if nothing had been cancelled. The cancel now waits until the
 * step's own await is known: the await right after gets it; when the registration was the await after all, the loop
 * cancels it at the end of the step, in the same iteration.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, TaskGroup, currentTask, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe.each([true, false])('cancelling the running task right after a two-callback then() (tracking %s)', (trackForeignAwaits) => {
  const fx = useLoop({ trackForeignAwaits });

  it('currentTask().cancel() after fut.then(a, b): the next await throws CancelledError; fut is untouched', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const shared = fx.loop.createFuture<number>();
      const t = fx.loop.createTask(async () => {
        void shared.then(
          (v) => rec.push(['shared', v]),
          (e) => rec.push(['shared failed', String(e)]),
        );
        currentTask()!.cancel('stop');
        try {
          await sleep(1);
          rec.push('slept');
        } catch (e) {
          rec.push(['caught', (e as CancelledError).message, fx.loop.time()]);
          throw e;
        }
      });
      await expect(t).rejects.toBeInstanceOf(CancelledError);
      expect(shared.done()).toBe(false);
      shared.setResult(2);
      await sleep(0);
      await sleep(0);
    });
    expect(rec).toEqual([['caught', 'stop', 0], ['shared', 2]]);
  });

  it('tg.cancel() after fut.then(a, b) in the body: the body stops at its next await, the group exits quietly', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const shared = fx.loop.createFuture<number>();
      await TaskGroup.run(async (tg) => {
        tg.createTask(() => sleep(10));
        void shared.then(
          (v) => rec.push(['shared', v]),
          () => rec.push('shared failed'),
        );
        tg.cancel();
        await sleep(1);
        rec.push('body went on');
      });
      expect(fx.loop.time()).toBe(0);
      expect(shared.done()).toBe(false);
      expect(currentTask()!.cancelling()).toBe(0);
      shared.setResult(4);
      await sleep(0);
      await sleep(0);
    });
    expect(rec).toEqual([['shared', 4]]);
  });

  it('a cancel from code run right after the task suspended on its real await still reaches that await (0 to 4 hops later)', async () => {
    for (let hops = 0; hops <= 4; hops++) {
      const rec: unknown[] = [];
      await fx.run(async () => {
        const f = fx.loop.createFuture<number>();
        const t = fx.loop.createTask(async () => {
          const self = currentTask()!;
          let p: Promise<unknown> = Promise.resolve();
          for (let i = 0; i < hops; i++) p = p.then(() => undefined);
          void p.then(() => rec.push(['cancel', self.cancel('late')]));
          try {
            await f;
          } catch (e) {
            rec.push(['caught', (e as CancelledError).message]);
          }
          return 'done';
        });
        expect(await t).toBe('done');
        expect(f.cancelled()).toBe(true);
      });
      expect([hops, rec]).toEqual([hops, [['cancel', true], ['caught', 'late']]]);
    }
  });
});
