/**
 * Combinators over Futures and Tasks (asyncio `tasks.py`): {@link sleep}, `gather`, `wait`, `waitFor`, `shield`,
 * `asCompleted`. Each follows asyncio's cancellation rules, pinned by `test/loop/combinators.test.ts`.
 */
import type { EventLoop } from './event-loop.js';
import type { TimerHandle } from './events.js';
import { Future, PENDING } from './futures.js';
import { getRunningLoop } from './state.js';

function setResultUnlessCancelled<T>(fut: Future<T>, value: T): void {
  if (fut._state === PENDING) fut.setResult(value);
}

/**
 * A Future that resolves to `value` after `delay` seconds. `delay <= 0` yields exactly one loop iteration
 * (asyncio's bare `sleep(0)`). Awaiting it in a Task is a cancellation point: `task.cancel()` makes the await throw
 * `CancelledError` and drops the timer.
 * @param loop the loop (default: the running loop).
 */
export function sleep<T = undefined>(delay: number, value?: T, loop?: EventLoop): Future<T> {
  const l = loop ?? getRunningLoop();
  if (!(delay > 0)) {
    const fut = new Future<T>(l);
    // Done already, but an awaiting task still yields one iteration.
    fut._state = 1;
    fut._result = value as T;
    fut._forceYield = true;
    return fut;
  }
  const sf = new SleepFuture<T>(l);
  sf._timer = l.callLater(delay, setResultUnlessCancelled, sf as Future<T>, value as T);
  return sf;
}

/** A sleep's Future: cancelling it drops its timer at once (asyncio's `finally: h.cancel()`). */
class SleepFuture<T> extends Future<T> {
  /** @internal */ _timer: TimerHandle | null = null;
  override cancel(msg?: string): boolean {
    if (!super.cancel(msg)) return false;
    this._timer?.cancel();
    this._timer = null;
    return true;
  }
}
