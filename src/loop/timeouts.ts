/**
 * Timeout scopes (asyncio 3.11 `timeouts.py`): `await timeout(delay, async (scope) => …)` and `timeoutAt(when, …)`.
 * On expiry the current Task is cancelled; when the cancellation leaves the body, the scope turns it into
 * `TimeoutError` (its `cause` is the CancelledError), but only if `uncancel()` shows the cancel was the scope's
 * own, so an outside cancel still propagates (cpython#86296, #107547).
 */
import { InvalidStateError, TimeoutError, isCancelledError } from '../errors.js';
import type { Handle } from './events.js';
import { runningLoopOrNull } from './state.js';
import { currentTask, type Task } from './tasks.js';

/** States of a {@link Timeout} scope (asyncio `_State`). */
export type TimeoutState = 'created' | 'active' | 'expiring' | 'expired' | 'finished';

/** A timeout scope (asyncio's `Timeout`): given to the body of {@link timeout} / {@link timeoutAt}. */
export class Timeout {
  #state: TimeoutState = 'created';
  #when: number | null;
  #handle: Handle | null = null;
  #task: Task<unknown> | null = null;
  #cancelling = 0;

  /** @internal Use {@link timeout} or {@link timeoutAt}. */
  constructor(when: number | null) {
    this.#when = when;
  }

  /** The deadline (loop time, seconds), or null for none. */
  when(): number | null {
    return this.#when;
  }

  /** The scope's state. */
  get state(): TimeoutState {
    return this.#state;
  }

  /**
   * Moves the deadline (loop time, seconds; null removes it). A deadline already past fires on the next iteration.
   * @throws InvalidStateError when the scope is not active.
   */
  reschedule(when: number | null): void {
    if (this.#state !== 'active') {
      throw new InvalidStateError(this.#state === 'created' ? 'Timeout has not been entered' : `Cannot change state of ${this.#state} Timeout`);
    }
    this.#when = when;
    this.#handle?.cancel();
    if (when === null) {
      this.#handle = null;
      return;
    }
    const loop = this.#task!._loop;
    const onTimeout = (): void => this.#onTimeout();
    this.#handle = when <= loop.time() ? loop.callSoon(onTimeout) : loop.callAt(when, onTimeout);
  }

  /** True once the deadline passed while the body ran. */
  expired(): boolean {
    return this.#state === 'expiring' || this.#state === 'expired';
  }

  /**
   * `<Timeout [active] when=11.235>`: `when` rounded to 3 decimals, as asyncio's `round(self._when, 3)` (a whole
   * number prints as JavaScript prints it, `11`, where Python prints `11.0`).
   */
  toString(): string {
    const when = this.#when === null ? null : Math.round(this.#when * 1000) / 1000;
    return `<Timeout [${this.#state}]${this.#state === 'active' ? ` when=${when}` : ''}>`;
  }

  /** @internal */
  _enter(): void {
    if (this.#state !== 'created') throw new InvalidStateError('Timeout has already been entered');
    const task = runningLoopOrNull() === null ? null : currentTask();
    if (task === null) throw new InvalidStateError('Timeout should be used inside a task');
    this.#state = 'active';
    this.#task = task;
    this.#cancelling = task.cancelling();
    this.reschedule(this.#when);
  }

  /** @internal Leaves the scope; returns the error to throw instead of `error` (or `error` itself). */
  _exit(failed: boolean, error: unknown): unknown {
    this.#handle?.cancel();
    this.#handle = null;
    if (this.#state === 'expiring') {
      this.#state = 'expired';
      if (this.#task!.uncancel() <= this.#cancelling && failed && isCancelledError(error)) {
        return new TimeoutError(undefined, { cause: error });
      }
    } else if (this.#state === 'active') {
      this.#state = 'finished';
    }
    return error;
  }

  #onTimeout(): void {
    this.#task!.cancel();
    this.#state = 'expiring';
    this.#handle = null;
  }
}

async function runScope<T>(scope: Timeout, body: (scope: Timeout) => PromiseLike<T> | T): Promise<T> {
  scope._enter();
  let result: T;
  try {
    result = await body(scope);
  } catch (e) {
    throw scope._exit(true, e);
  }
  scope._exit(false, undefined);
  return result;
}

/**
 * Runs `body` in the current Task with a deadline `delay` seconds from now (null: none). On expiry the body is
 * cancelled and this throws `TimeoutError`. Returns the body's value.
 * @throws InvalidStateError outside a Task.
 */
export function timeout<T>(delay: number | null, body: (scope: Timeout) => PromiseLike<T> | T): Promise<T> {
  const task = runningLoopOrNull() === null ? null : currentTask();
  if (task === null) return Promise.reject(new InvalidStateError('Timeout should be used inside a task'));
  return runScope(new Timeout(delay === null ? null : task._loop.time() + delay), body);
}

/**
 * Like {@link timeout} with an absolute deadline in loop time (`loop.time()` seconds; null: none).
 * @throws InvalidStateError outside a Task.
 */
export function timeoutAt<T>(when: number | null, body: (scope: Timeout) => PromiseLike<T> | T): Promise<T> {
  return runScope(new Timeout(when), body);
}
