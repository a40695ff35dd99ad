/**
 * A generator task (PEP 3156 style, `function*` yielding Futures) that yields something it cannot wait on (a bad
 * yield, or a Future of another loop) gets an error thrown back in on the next iteration, as asyncio's `Task.__step`
 * does with its RuntimeError. When a cancel is pending by then (the task cancelled itself, or was cancelled in the
 * same iteration), asyncio throws the CancelledError instead (`if self._must_cancel: exc = self._make_cancelled_error()`):
 * the cancel is not held back behind the error. tulipwire threw the error and delivered the cancel only at the
 * task's next yield.
 */
import { describe, expect, it } from 'vitest';
import { EventLoop, VirtualClock, currentTask, isCancelledError, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('generator task: a pending cancel wins over the error of a bad yield', () => {
  const fx = useLoop();

  it('a bad yield right after the task cancelled itself throws CancelledError (with its message) into the generator', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const t = fx.loop.createTask(function* () {
        currentTask()!.cancel('stop');
        try {
          yield 42 as unknown as never;
        } catch (e) {
          rec.push(isCancelledError(e) ? ['cancelled', (e as Error).message] : ['error', String(e)]);
        }
        const v: unknown = yield sleep(1, 'slept');
        rec.push(['then', v]);
        return 'end';
      });
      expect(await t).toBe('end');
    });
    expect(rec).toEqual([['cancelled', 'stop'], ['then', 'slept']]);
  });

  it('a Future of another loop yielded while a cancel is pending: CancelledError too', async () => {
    const other = new EventLoop({ clock: new VirtualClock() });
    const rec: unknown[] = [];
    try {
      await fx.run(async () => {
        const foreign = other.createFuture<number>();
        const t = fx.loop.createTask(function* () {
          currentTask()!.cancel();
          try {
            yield foreign;
          } catch (e) {
            rec.push(isCancelledError(e) ? 'cancelled' : `error: ${String(e)}`);
          }
          return 'end';
        });
        expect(await t).toBe('end');
      });
    } finally {
      other.close();
    }
    expect(rec).toEqual(['cancelled']);
  });

  it('without a pending cancel the bad yield still throws its TypeError', async () => {
    const rec: unknown[] = [];
    await fx.run(async () => {
      const t = fx.loop.createTask(function* () {
        try {
          yield 42 as unknown as never;
        } catch (e) {
          rec.push((e as Error).name);
        }
      });
      await t;
    });
    expect(rec).toEqual(['TypeError']);
  });
});
