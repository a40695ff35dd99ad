/**
 * The token bucket's boundaries under floating-point time: a message that arrives exactly when its token is due
 * (paced at exactly `rate`, or retried exactly `retryAfter` seconds after a RateLimited refusal, which is what the
 * reply tells the peer to do) is let through. The refill is `elapsed * rate` on float seconds, so it can land a
 * hair (1e-16 tokens) short of a whole token; before the fix such a message was refused again with a retryAfter of
 * ~1e-17 s, in about a quarter to a half of the cases below.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { TokenBucket } from '../../src/session/rate-limit.js';

const RATES = [3, 7, 10, 20, 30, 60, 64, 128, 200, 0.3];
const STARTS = [0, 0.1, 1.3, 1000.7];

describe('TokenBucket at the exact boundary of a token', () => {
  it('a retry exactly retryAfter seconds after a refusal is let through', () => {
    let retries = 0;
    const refusedAgain: string[] = [];
    for (const rate of RATES) {
      for (const start of STARTS) {
        const clock = new VirtualClock({ start });
        const b = new TokenBucket({ rate, burst: 2, clock });
        expect([b.take(), b.take()]).toEqual([0, 0]);
        for (let i = 0; i < 100; i++) {
          clock.advance(0.37 / rate); // a peer sending faster than the rate
          const wait = b.take();
          if (wait === 0) continue;
          expect(wait).toBeGreaterThan(0);
          clock.advance(wait); // waits what the refusal said
          retries += 1;
          const again = b.take();
          if (again !== 0) refusedAgain.push(`rate ${rate} start ${start} #${i}: retryAfter ${wait}, then ${again}`);
        }
      }
    }
    expect(retries).toBeGreaterThan(1000);
    expect(refusedAgain).toEqual([]);
  });

  it('a peer paced at exactly rate is never refused', () => {
    const refused: string[] = [];
    for (const rate of RATES) {
      for (const start of STARTS) {
        const clock = new VirtualClock({ start });
        const b = new TokenBucket({ rate, burst: 1, clock });
        expect(b.take()).toBe(0);
        for (let i = 0; i < 100; i++) {
          clock.advance(1 / rate);
          const wait = b.take();
          if (wait !== 0) refused.push(`rate ${rate} start ${start} #${i}: ${wait}`);
        }
      }
    }
    expect(refused).toEqual([]);
  });

  it('still refuses one message too many, and never gives more than the rate over a long run', () => {
    const clock = new VirtualClock({ start: 0.1 });
    const b = new TokenBucket({ rate: 60, burst: 10, clock });
    let taken = 0;
    for (let i = 0; i < 6000; i++) { // offered at 600/s for 10 s
      if (b.take() === 0) taken += 1;
      clock.advance(1 / 600);
    }
    expect(taken).toBeGreaterThanOrEqual(600);
    expect(taken).toBeLessThanOrEqual(611); // 60/s for 10 s plus the burst
    const c = new TokenBucket({ rate: 10, burst: 1, clock });
    expect(c.take()).toBe(0);
    clock.advance(0.0999);
    expect(c.take()).toBeGreaterThan(0); // a token 0.1 % short is still short
  });

  it('take(n) with n negative or not a number throws RangeError (it would add tokens, or answer NaN)', () => {
    const b = new TokenBucket({ rate: 1, burst: 1, clock: new VirtualClock() });
    expect(() => b.take(-5)).toThrow(RangeError);
    expect(() => b.take(Number.NaN)).toThrow(RangeError);
    expect(b.tokens).toBe(1);
  });
});
