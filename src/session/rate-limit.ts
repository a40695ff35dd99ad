/**
 * Per-peer limits: a token bucket for message rates and a per-identity connection counter. Pure: both read time
 * from a {@link Clock} and never schedule anything, so a server checks them inline and rejects with a typed error
 * (RateLimited with `retryAfter`, TooManyConnections) instead of queueing without bound.
 */

import type { Clock } from '../loop/clock.js';
import { systemClock } from '../loop/clock.js';

// Tokens a request may fall short by and still be let through. The refill is `elapsed * rate` on float seconds,
// which can land ~1e-16 tokens short of a whole one: a message arriving exactly when its token is due (paced at the
// rate, or retried exactly `retryAfter` after a refusal, as the RateLimited reply says) was refused again with a
// retryAfter of ~1e-17 s. A millionth of a message is far below anything a rate limit means.
const TOKEN_EPSILON = 1e-6;

/** Options of {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second (the sustained message rate). */
  rate: number;
  /** Bucket size: the largest burst allowed after a quiet period. Default `rate` (one second's worth). */
  burst?: number;
  /** Time source. Default the system clock. */
  clock?: Clock;
}

/**
 * A token bucket (RFC 2697's single-rate meter, one colour): it starts full with `burst` tokens, refills at `rate`
 * per second up to `burst`, and each message takes one token. Refilling is computed lazily from the clock on each
 * call, so an idle bucket costs nothing.
 */
export class TokenBucket {
  /** Tokens added per second. */
  readonly rate: number;
  /** Bucket size. */
  readonly burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #updated: number;

  /** @throws RangeError when rate or burst is not a positive finite number. */
  constructor(options: TokenBucketOptions) {
    this.rate = options.rate;
    this.burst = options.burst ?? options.rate;
    this.#clock = options.clock ?? systemClock;
    if (!(this.rate > 0) || !Number.isFinite(this.rate)) throw new RangeError(`token bucket rate must be a positive finite number per second, got ${this.rate}`);
    if (!(this.burst > 0) || !Number.isFinite(this.burst)) throw new RangeError(`token bucket burst must be a positive finite number, got ${this.burst}`);
    this.#tokens = this.burst;
    this.#updated = this.#clock.time();
  }

  #refill(): void {
    const now = this.#clock.time();
    const elapsed = now - this.#updated;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + elapsed * this.rate);
      this.#updated = now;
    }
  }

  /** Tokens available now (fractional). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /**
   * Takes `n` tokens if the bucket holds them. Returns 0 when they were taken; otherwise takes nothing and returns
   * the seconds until `n` tokens will be there (what a RateLimited reply carries as `retryAfter`). A request larger
   * than `burst` can never succeed and returns Infinity. Waiting the seconds returned and calling again succeeds
   * (a request short of its tokens by float rounding only, under a millionth of a token, is let through).
   * @throws RangeError when `n` is negative or not a number (it would add tokens)
   */
  take(n = 1): number {
    if (!(n >= 0)) throw new RangeError(`tokens to take must be a number >= 0, got ${n}`);
    this.#refill();
    if (this.#tokens >= n - TOKEN_EPSILON) {
      this.#tokens = Math.max(0, this.#tokens - n);
      return 0;
    }
    if (n > this.burst) return Infinity;
    return (n - this.#tokens) / this.rate;
  }
}

/**
 * Counts open connections per identity (the peer certificate's identity URI) against a maximum. `acquire` before
 * accepting, `release` exactly once when the connection ends.
 */
export class ConnectionCounter {
  /** Most connections one identity may hold at once. */
  readonly max: number;
  readonly #counts = new Map<string, number>();

  /** @throws RangeError when max < 1. */
  constructor(max: number) {
    if (!(max >= 1)) throw new RangeError(`maximum connections per identity must be >= 1, got ${max}`);
    this.max = max;
  }

  /**
   * Counts one more connection for `identity` and returns true, or returns false (counting nothing) at the maximum.
   * With `beyondMax` it counts one even at the maximum (a session server's successor of a connection that must close).
   */
  acquire(identity: string, beyondMax = false): boolean {
    const n = this.#counts.get(identity) ?? 0;
    if (n >= this.max && !beyondMax) return false;
    this.#counts.set(identity, n + 1);
    return true;
  }

  /** Forgets one connection of `identity`. Releasing an identity that holds none does nothing. */
  release(identity: string): void {
    const n = this.#counts.get(identity) ?? 0;
    if (n <= 1) this.#counts.delete(identity);
    else this.#counts.set(identity, n - 1);
  }

  /** Connections `identity` holds now. */
  count(identity: string): number {
    return this.#counts.get(identity) ?? 0;
  }

  /** How many identities hold at least one connection (the map never keeps zero entries). */
  get identities(): number {
    return this.#counts.size;
  }
}
