import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { ConnectionCounter, TokenBucket } from '../../src/session/rate-limit.js';

describe('TokenBucket', () => {
  it('starts full, allows a burst, then refuses with the exact retryAfter', () => {
    const clock = new VirtualClock();
    const b = new TokenBucket({ rate: 10, burst: 3, clock });
    expect([b.take(), b.take(), b.take()]).toEqual([0, 0, 0]);
    expect(b.take()).toBeCloseTo(0.1, 9); // one token comes every 1/rate s
    clock.advance(0.05);
    expect(b.take()).toBeCloseTo(0.05, 9);
    clock.advance(0.05);
    expect(b.take()).toBe(0);
    expect(b.tokens).toBeCloseTo(0, 9);
  });

  it('refills at rate, never beyond burst', () => {
    const clock = new VirtualClock();
    const b = new TokenBucket({ rate: 2, burst: 4, clock });
    for (let i = 0; i < 4; i++) expect(b.take()).toBe(0);
    clock.advance(1);
    expect(b.tokens).toBeCloseTo(2, 9);
    clock.advance(3600);
    expect(b.tokens).toBe(4);
  });

  it('sustains exactly rate per second over a long run', () => {
    const clock = new VirtualClock();
    const b = new TokenBucket({ rate: 50, burst: 5, clock });
    let taken = 0;
    for (let i = 0; i < 10_000; i++) { // offered at 1,000/s for 10 s
      if (b.take() === 0) taken += 1;
      clock.advance(0.001);
    }
    expect(taken).toBeGreaterThanOrEqual(500);
    expect(taken).toBeLessThanOrEqual(506); // 50/s for 10 s plus the initial burst
  });

  it('a request larger than burst never succeeds; a refused request takes nothing', () => {
    const clock = new VirtualClock();
    const b = new TokenBucket({ rate: 1, burst: 2, clock });
    expect(b.take(3)).toBe(Infinity);
    expect(b.take(2)).toBe(0);
    expect(b.take(1)).toBeCloseTo(1, 9);
    expect(b.tokens).toBeCloseTo(0, 9);
  });

  it('burst defaults to rate; bad options throw RangeError', () => {
    expect(new TokenBucket({ rate: 7, clock: new VirtualClock() }).burst).toBe(7);
    expect(() => new TokenBucket({ rate: 0 })).toThrow(RangeError);
    expect(() => new TokenBucket({ rate: 1, burst: -1 })).toThrow(RangeError);
  });
});

describe('ConnectionCounter', () => {
  it('counts per identity up to max and frees slots on release', () => {
    const c = new ConnectionCounter(2);
    expect(c.acquire('tulip://ca/client/a')).toBe(true);
    expect(c.acquire('tulip://ca/client/a')).toBe(true);
    expect(c.acquire('tulip://ca/client/a')).toBe(false);
    expect(c.acquire('tulip://ca/client/b')).toBe(true);
    expect(c.count('tulip://ca/client/a')).toBe(2);
    c.release('tulip://ca/client/a');
    expect(c.acquire('tulip://ca/client/a')).toBe(true);
    c.release('tulip://ca/client/a'); c.release('tulip://ca/client/a'); c.release('tulip://ca/client/a');
    c.release('tulip://ca/client/b');
    expect(c.count('tulip://ca/client/a')).toBe(0);
    expect(c.identities).toBe(0); // no zero entries kept: memory stays bounded by live identities
  });

  it('rejects max < 1', () => {
    expect(() => new ConnectionCounter(0)).toThrow(RangeError);
  });
});
