import { describe, expect, it } from 'vitest';
import { Backoff, backoffWindow } from '../../src/session/backoff.js';

/** A random source that replays `values` in order. */
function seq(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('full-jitter backoff', () => {
  it('doubles the window from base up to cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffWindow(n, 0.5, 10))).toEqual([0.5, 1, 2, 4, 8, 10, 10]);
    expect(backoffWindow(5000, 0.5, 10)).toBe(10);
  });

  it('draws each delay uniformly inside the window (random 0.5 gives half the window)', () => {
    const b = new Backoff({ base: 1, cap: 8, attempts: 6, random: () => 0.5 });
    const delays: (number | null)[] = [];
    for (let i = 0; i < 7; i++) delays.push(b.next());
    expect(delays).toEqual([0.5, 1, 2, 4, 4, 4, null]);
    expect(b.attempt).toBe(6);
    expect(b.exhausted).toBe(true);
  });

  it('covers the whole window: random 0 gives 0, random near 1 stays below the window', () => {
    const b = new Backoff({ base: 2, cap: 2, attempts: 3, random: seq(0, 0.999999, 1) });
    expect(b.next()).toBe(0);
    const d = b.next()!;
    expect(d).toBeGreaterThan(1.99);
    expect(d).toBeLessThan(2);
    expect(b.next()).toBeLessThan(2); // a broken random() returning 1 is clamped inside the window
  });

  it('reset starts from the first window again', () => {
    const b = new Backoff({ base: 1, cap: 100, attempts: 10, random: () => 0.999 });
    b.next(); b.next(); b.next();
    expect(b.attempt).toBe(3);
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.next()).toBeCloseTo(0.999, 6);
  });

  it('attempts: 0 never retries; Infinity never runs out', () => {
    expect(new Backoff({ attempts: 0 }).next()).toBeNull();
    const b = new Backoff({ base: 0.1, cap: 1, attempts: Infinity, random: () => 0.25 });
    for (let i = 0; i < 2000; i++) expect(b.next()).toBeLessThanOrEqual(0.25);
    expect(b.exhausted).toBe(false);
  });

  it('spreads a storm: 1,000 clients on their 5th retry land all over [0, window)', () => {
    let s = 12345; // deterministic LCG so the test cannot flake
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const buckets = new Array<number>(10).fill(0);
    for (let c = 0; c < 1000; c++) {
      const b = new Backoff({ base: 1, cap: 64, random: rnd });
      let d = 0;
      for (let i = 0; i < 5; i++) d = b.next()!;
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(16);
      buckets[Math.floor(d / 1.6)]! += 1;
    }
    for (const n of buckets) expect(n).toBeGreaterThan(50); // ~100 each; no lock-step wave
  });

  it('rejects nonsense options with RangeError', () => {
    expect(() => new Backoff({ base: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ base: 2, cap: 1 })).toThrow(RangeError);
    expect(() => new Backoff({ cap: Infinity })).toThrow(RangeError);
    expect(() => new Backoff({ attempts: -1 })).toThrow(RangeError);
  });
});
