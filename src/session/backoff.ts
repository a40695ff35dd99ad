/**
 * Reconnection delays: exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff And
 * Jitter", 2015): the n-th retry waits a uniformly random time in `[0, min(cap, base * 2**n))`.
 *
 * Full jitter spreads a reconnect storm (every client of a restarted server retrying at once) over the whole window
 * instead of letting the clients retry in lock-step waves, which is what plain or "equal jitter" backoff does.
 * Pure: no timers, no clock; the session sleeps on the loop for the delay this returns.
 */

import { RECONNECT_ATTEMPTS, RECONNECT_BASE, RECONNECT_CAP } from '../constants.js';

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** Ceiling of the first retry's window, seconds. Default {@link RECONNECT_BASE}. */
  base?: number;
  /** Largest window, seconds: the window stops doubling here. Default {@link RECONNECT_CAP}. */
  cap?: number;
  /** Retries allowed before giving up (`next()` returns null); `Infinity` retries forever. Default {@link RECONNECT_ATTEMPTS}. */
  attempts?: number;
  /** Uniform random source in `[0, 1)`, injectable for tests. Default `Math.random`. */
  random?: () => number;
}

/**
 * The window for retry number `attempt` (0-based), seconds: `min(cap, base * 2**attempt)`. Computed without
 * overflowing to Infinity for large attempt numbers.
 */
export function backoffWindow(attempt: number, base: number, cap: number): number {
  // 2**1024 is Infinity; once the window reaches the cap it stays there, so clamp the exponent first.
  if (attempt >= 1024) return cap;
  return Math.min(cap, base * 2 ** attempt);
}

/**
 * A full-jitter backoff sequence. Call {@link next} before each retry for its delay, {@link reset} once a
 * connection succeeds.
 */
export class Backoff {
  /** Ceiling of the first retry's window, seconds. */
  readonly base: number;
  /** Largest window, seconds. */
  readonly cap: number;
  /** Retries allowed before {@link next} returns null. */
  readonly attempts: number;
  readonly #random: () => number;
  #attempt = 0;

  /** @throws RangeError when base or cap is not a finite positive number, cap < base, or attempts < 0. */
  constructor(options: BackoffOptions = {}) {
    this.base = options.base ?? RECONNECT_BASE;
    this.cap = options.cap ?? RECONNECT_CAP;
    this.attempts = options.attempts ?? RECONNECT_ATTEMPTS;
    this.#random = options.random ?? Math.random;
    if (!(this.base > 0) || !Number.isFinite(this.base)) throw new RangeError(`backoff base must be a positive number of seconds, got ${this.base}`);
    if (!(this.cap >= this.base) || !Number.isFinite(this.cap)) throw new RangeError(`backoff cap must be finite and >= base (${this.base}), got ${this.cap}`);
    if (!(this.attempts >= 0)) throw new RangeError(`backoff attempts must be >= 0, got ${this.attempts}`);
  }

  /** How many retries {@link next} has handed out since the last {@link reset}. */
  get attempt(): number {
    return this.#attempt;
  }

  /** True when no retry is left. */
  get exhausted(): boolean {
    return this.#attempt >= this.attempts;
  }

  /** The delay before the next retry, seconds, in `[0, window)`; null when the attempts are used up. */
  next(): number | null {
    if (this.exhausted) return null;
    const window = backoffWindow(this.#attempt, this.base, this.cap);
    this.#attempt += 1;
    return this.#draw(window);
  }

  /**
   * A delay in the current window, seconds, counting no retry: the wait before the first try of a sequence (after a
   * lost connection), which is not a retry, so it never gives up and leaves all `attempts` to the tries that fail.
   */
  delay(): number {
    return this.#draw(backoffWindow(this.#attempt, this.base, this.cap));
  }

  #draw(window: number): number {
    let r = this.#random();
    // Guard against a random source that returns 1 or garbage: the delay stays inside the window.
    if (!(r >= 0)) r = 0;
    if (r >= 1) r = 1 - Number.EPSILON;
    return r * window;
  }

  /** Starts over from the first window (after a successful connection). */
  reset(): void {
    this.#attempt = 0;
  }
}
