import { describe, expect, it } from 'vitest';
import { IdempotencyCache, IdempotencyKey } from '../../src/wire/idempotency.js';
import { VirtualClock } from '../../src/loop/clock.js';

const nonce = (b: number): Buffer => Buffer.alloc(16, b);

describe('IdempotencyCache', () => {
  it('runs a request once: new, then pending for copies, then done with the outcome', async () => {
    const clock = new VirtualClock();
    const cache = new IdempotencyCache<string>({ clock });
    const key = IdempotencyCache.key('peer-a', nonce(1));
    const first = cache.begin(key, 10);
    expect(first.status).toBe('new');
    const copy = cache.begin(key, 10);
    expect(copy.status).toBe('pending');
    expect(cache.pendingCount).toBe(1);
    if (first.status !== 'new' || copy.status !== 'pending') throw new Error('unreachable');
    const heard: (string | undefined)[] = [];
    copy.wait((v) => heard.push(v));
    first.complete('result-1');
    expect(heard).toEqual(['result-1']);
    const later = cache.begin(key, 10);
    expect(later).toEqual({ status: 'done', value: 'result-1' });
    expect(cache.pendingCount).toBe(0);
    expect(cache.size).toBe(1);
  });

  it('keys by peer and nonce: another peer with the same nonce is a different request', () => {
    const cache = new IdempotencyCache<number>({ clock: new VirtualClock() });
    const a = cache.begin(IdempotencyCache.key('peer-a', nonce(2)), 10);
    const b = cache.begin(IdempotencyCache.key('peer-b', nonce(2)), 10);
    expect(a.status).toBe('new');
    expect(b.status).toBe('new');
    expect(IdempotencyCache.key('a', nonce(1))).not.toBe(IdempotencyCache.key('a', nonce(3)));
  });

  it('abandon wakes waiters with undefined and lets the next copy run', async () => {
    const cache = new IdempotencyCache<number>({ clock: new VirtualClock() });
    const key = IdempotencyCache.key('p', nonce(4));
    const first = cache.begin(key, 10);
    const copy = cache.begin(key, 10);
    if (first.status !== 'new' || copy.status !== 'pending') throw new Error('unreachable');
    const heard: (number | undefined)[] = [];
    copy.wait((v) => heard.push(v));
    first.abandon();
    first.complete(5); // settling twice does nothing
    expect(heard).toEqual([undefined]);
    expect(cache.begin(key, 10).status).toBe('new');
  });

  it('remembers an abandoned request until its nonce expires, and forgets that once it is begun again', () => {
    const clock = new VirtualClock();
    const cache = new IdempotencyCache<number>({ clock });
    const key = IdempotencyCache.key('p', nonce(7));
    const first = cache.begin(key, 3);
    if (first.status !== 'new') throw new Error('unreachable');
    expect(cache.wasAbandoned(key)).toBe(false);
    first.abandon();
    expect(cache.wasAbandoned(key)).toBe(true);
    expect(cache.lookup(key)).toBeNull();
    const again = cache.begin(key, 3);
    expect(again.status).toBe('new');
    expect(cache.wasAbandoned(key)).toBe(false);
    if (again.status !== 'new') throw new Error('unreachable');
    again.abandon();
    clock.advance(3.1);
    expect(cache.wasAbandoned(key)).toBe(false);
    // a completed request is not abandoned
    const other = IdempotencyCache.key('p', nonce(8));
    const b = cache.begin(other, 3);
    if (b.status !== 'new') throw new Error('unreachable');
    b.complete(1);
    expect(cache.wasAbandoned(other)).toBe(false);
  });

  it('forgets an outcome when its nonce expires', () => {
    const clock = new VirtualClock();
    const cache = new IdempotencyCache<number>({ clock });
    const key = IdempotencyCache.key('p', nonce(5));
    const first = cache.begin(key, 3);
    if (first.status !== 'new') throw new Error('unreachable');
    clock.advance(1);
    first.complete(7);
    clock.advance(1.5);
    expect(cache.lookup(key)).toEqual({ status: 'done', value: 7 });
    clock.advance(0.6);
    expect(cache.lookup(key)).toBeNull();
    expect(cache.size).toBe(0);
  });

  it('keeps nothing when the request finishes after its nonce expired', () => {
    const clock = new VirtualClock();
    const cache = new IdempotencyCache<number>({ clock });
    const key = IdempotencyCache.key('p', nonce(6));
    const first = cache.begin(key, 1);
    if (first.status !== 'new') throw new Error('unreachable');
    clock.advance(2);
    first.complete(1);
    expect(cache.size).toBe(0);
  });

  it('bounds finished outcomes, forgetting the oldest, never a running one', () => {
    const cache = new IdempotencyCache<number>({ clock: new VirtualClock(), maxEntries: 3 });
    const running = cache.begin('running', 100);
    for (let i = 0; i < 5; i++) {
      const b = cache.begin(`k${i}`, 100);
      if (b.status !== 'new') throw new Error('unreachable');
      b.complete(i);
    }
    expect(cache.size).toBe(3);
    expect(cache.lookup('k0')).toBeNull();
    expect(cache.lookup('k1')).toBeNull();
    expect(cache.lookup('k4')).toEqual({ status: 'done', value: 4 });
    expect(running.status).toBe('new');
    expect(cache.lookup('running')?.status).toBe('pending');
    expect(() => new IdempotencyCache({ maxEntries: 0 })).toThrow(RangeError);
  });
});

describe('IdempotencyKey', () => {
  it('holds 16 random bytes, or the ones given', () => {
    const a = new IdempotencyKey();
    const b = new IdempotencyKey();
    expect(a.nonce).toHaveLength(16);
    expect(a.nonce.equals(b.nonce)).toBe(false);
    expect(a.expiresAt).toBeNull();
    expect(new IdempotencyKey(nonce(9)).nonce.equals(nonce(9))).toBe(true);
    expect(() => new IdempotencyKey(Buffer.alloc(8))).toThrow(RangeError);
  });
});
