/**
 * A task that calls `fut.then(cb)`, `fut.catch(cb)` or `fut.finally(cb)` on a pending Future without awaiting it (a
 * callback, or a `catch(() => {})` that marks a rejection handled) has not suspended on `fut`: only `await` is a
 * suspension, and V8's `await` always calls `then` with both resolving functions. tulipwire took such a call for the
 * task's await, so:
 * - when the task then finished (returned or threw) before any other await, the reaction was never run: `cb` was lost
 *   and the Future `then()` returned never settled;
 * - when the task reached its real await only after a native hop (`await Promise.resolve()`, a helper), or cancelled
 *   itself first (`tg.cancel()` in a TaskGroup body), `task.cancel()` cancelled `fut` (a Future other code may be
 *   waiting on) and not the task, which went on as if never cancelled.
 * A two-argument `fut.then(a, b)` cannot be told from an await when it is called; when the task finishes without
 * awaiting anything after it, its reaction now runs too.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, Future, TaskGroup, currentTask, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe.each([true, false])('explicit then()/catch()/finally() inside a task (foreign-await tracking %s)', (trackForeignAwaits) => {
  const fx = useLoop({ trackForeignAwaits });

  it('then(cb) and then the task returns: cb runs when the Future resolves, and the derived Future settles', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const f = fx.loop.createFuture<number>();
      let derived: Future<number> | null = null;
      const t = fx.loop.createTask(async () => {
        derived = f.then((v) => {
          rec.push(['then', v]);
          return v + 1;
        });
        return 'done';
      });
      expect(await t).toBe('done');
      fx.loop.callLater(1, () => f.setResult(41));
      await sleep(2);
      expect(derived!.done()).toBe(true);
      expect(derived!.result()).toBe(42);
    });
    expect(rec).toEqual([['then', 41]]);
  });

  it('catch(cb) / finally(cb) and then the task throws: both reactions run', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const f = fx.loop.createFuture<number>();
      const t = fx.loop.createTask(async () => {
        void f.catch((e: Error) => rec.push(['catch', e.message]));
        void f.finally(() => rec.push('finally')).catch(() => {});
        throw new RangeError('body');
      });
      await expect(t).rejects.toThrow('body');
      f.setException(new Error('late'));
      await sleep(1);
    });
    expect(rec).toEqual([['catch', 'late'], 'finally']);
  });

  it('two-argument then(a, b) and then the task returns: the reaction runs', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const f = fx.loop.createFuture<number>();
      const t = fx.loop.createTask(async () => {
        void f.then(
          (v) => rec.push(['ok', v]),
          (e) => rec.push(['err', e]),
        );
        return 1;
      });
      await t;
      f.setResult(7);
      await sleep(1);
    });
    expect(rec).toEqual([['ok', 7]]);
  });

  it('catch(cb), a native hop, then the real await: cancel() cancels the task, not the Future it only watched', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const shared = fx.loop.createFuture<number>();
      const t = fx.loop.createTask(async () => {
        void shared.catch(() => {});
        await Promise.resolve();
        try {
          await sleep(5);
          rec.push(['slept', fx.loop.time()]);
        } catch (e) {
          rec.push(['cancelled', (e as CancelledError).code, fx.loop.time()]);
          throw e;
        }
      });
      await sleep(1);
      expect(t.cancel()).toBe(true);
      await expect(t).rejects.toBeInstanceOf(CancelledError);
      expect(shared.done()).toBe(false);
      shared.setResult(3);
      expect(await shared).toBe(3);
    });
    expect(rec).toEqual([['cancelled', 'TW_CANCELLED', 1]]);
  });

  it('then(cb) and then TaskGroup.cancel() in the body: the body is cancelled at its next await, the Future is not', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const shared = fx.loop.createFuture<number>();
      const r = await TaskGroup.run(async (tg) => {
        tg.createTask(() => sleep(10));
        void shared.then((v) => rec.push(['shared', v]));
        tg.cancel();
        try {
          await sleep(1);
          rec.push('body went on');
        } catch (e) {
          rec.push(['body', (e as CancelledError).code]);
          throw e;
        }
      });
      expect(r).toBeUndefined();
      expect(fx.loop.time()).toBe(0);
      expect(shared.done()).toBe(false);
      expect(currentTask()!.cancelling()).toBe(0);
      shared.setResult(5);
      await sleep(0);
      await sleep(0);
    });
    expect(rec).toEqual([['body', 'TW_CANCELLED'], ['shared', 5]]);
  });
});
