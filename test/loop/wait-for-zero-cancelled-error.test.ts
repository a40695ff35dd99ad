/**
 * `waitFor(aw, 0)` (any timeout <= 0) on an awaitable that is still pending cancels it, waits for it, and throws
 * TimeoutError when what it ends with is a CancelledError (asyncio 3.13 `wait_for`: `except CancelledError as exc:
 * raise TimeoutError from exc`). A gather() Future is the common case: cancelling it cancels its children and it
 * then ends with a CancelledError *exception* (it is finished, not cancelled), as in asyncio. Throwing that
 * CancelledError instead made the caller look cancelled although nobody had cancelled it (its `cancelling()` is 0).
 * Found by a differential fuzzer against CPython 3.13 (timeouts, task groups and combinators).
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, Future, TimeoutError, currentTask, gather, isCancelledError, sleep, waitFor } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('waitFor with a timeout <= 0 on a Future that ends with a CancelledError', () => {
  const fx = useLoop();

  for (const returnExceptions of [false, true]) {
    it(`a pending gather (returnExceptions: ${returnExceptions}) gives TimeoutError, and the caller is not cancelled`, async () => {
      await fx.run(async () => {
        const child = fx.loop.createTask(() => sleep(10));
        await sleep(0);
        const g = gather(child, { returnExceptions });
        let caught: unknown = null;
        try {
          await waitFor(g, 0);
        } catch (e) {
          caught = e;
        }
        expect(caught).toBeInstanceOf(TimeoutError);
        expect(isCancelledError((caught as TimeoutError).cause)).toBe(true);
        expect(child.cancelled()).toBe(true);
        // The gather Future is finished with a CancelledError exception, not cancelled (asyncio's _GatheringFuture).
        expect(g.cancelled()).toBe(false);
        expect(isCancelledError(g.exception())).toBe(true);
        expect(currentTask()!.cancelling()).toBe(0);
      });
    });
  }

  it('a negative timeout too; a Future whose cancel is refused and that then fails with a CancelledError', async () => {
    await fx.run(async () => {
      const child = fx.loop.createTask(() => sleep(10));
      await expect(waitFor(gather(child), -1)).rejects.toBeInstanceOf(TimeoutError);

      // A Future that refuses the cancel and then fails with a CancelledError of its own.
      class Stubborn<T> extends Future<T> {
        override cancel(): boolean {
          fx.loop.callSoon(() => this.setException(new CancelledError('own')));
          return false;
        }
      }
      const f = new Stubborn<number>(fx.loop);
      await expect(waitFor(f, 0)).rejects.toBeInstanceOf(TimeoutError);
    });
  });

  it('an ordinary error after the cancel still passes through as itself', async () => {
    await fx.run(async () => {
      class Failing<T> extends Future<T> {
        override cancel(): boolean {
          fx.loop.callSoon(() => this.setException(new RangeError('cleanup failed')));
          return false;
        }
      }
      await expect(waitFor(new Failing<number>(fx.loop), 0)).rejects.toThrow(RangeError);
    });
  });
});
