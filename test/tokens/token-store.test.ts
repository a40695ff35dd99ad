/** MemoryTokenStore on the virtual clock: TTLs, eviction, claimOnce, generations, closing. */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import type { AccessRecord } from '../../src/tokens/index.js';

const record = (accountId: string): AccessRecord => ({ accountId, generation: 0, roles: ['user'], scope: ['user'], issuedAt: 0, expiresAt: 60 });

describe('MemoryTokenStore', () => {
  it('forgets an access record after its ttl, not before; returns copies', async () => {
    const clock = new VirtualClock();
    const store = new MemoryTokenStore({ clock });
    await store.putAccess('a', record('alice'), 10);
    const got = await store.getAccess('a');
    expect(got).toEqual(record('alice'));
    got!.scope.push('admin');
    expect((await store.getAccess('a'))!.scope).toEqual(['user']);
    clock.advance(9.9);
    expect(await store.getAccess('a')).not.toBeNull();
    clock.advance(0.1);
    expect(await store.getAccess('a')).toBeNull();
    expect(await store.deleteAccess('a')).toBe(false);
  });

  it('evicts expired records as it goes, whatever the mix of ttls, without losing live ones', async () => {
    const clock = new VirtualClock();
    const store = new MemoryTokenStore({ clock });
    await store.putAccess('long', record('l'), 1000);
    for (let i = 0; i < 5000; i++) {
      await store.putAccess(`s${i}`, record('s'), 1);
      clock.advance(0.01);
    }
    // About 100 short-lived records are live at any time; the rest were evicted.
    expect(store.size).toBeLessThan(400);
    expect(await store.getAccess('long')).not.toBeNull();
  });

  it('claimOnce is true once per id within its ttl', async () => {
    const clock = new VirtualClock();
    const store = new MemoryTokenStore({ clock });
    const results = await Promise.all(Array.from({ length: 20 }, () => store.claimOnce('jti-1', 5)));
    expect(results.filter((r) => r)).toHaveLength(1);
    clock.advance(5);
    expect(await store.claimOnce('jti-1', 5)).toBe(true);
    await expect(store.claimOnce('x', 0)).rejects.toThrow(RangeError);
  });

  it('bumps generations atomically per account', async () => {
    const store = new MemoryTokenStore();
    expect(await store.getGeneration('a')).toBe(0);
    const bumps = await Promise.all([store.bumpGeneration('a'), store.bumpGeneration('a'), store.bumpGeneration('b')]);
    expect(bumps.sort()).toEqual([1, 1, 2]);
    expect(await store.getGeneration('a')).toBe(2);
  });

  it('fails closed once closed', async () => {
    const store = new MemoryTokenStore();
    await store.close();
    await expect(store.getAccess('a')).rejects.toMatchObject({ code: 'TW_STORE_UNAVAILABLE' });
    await expect(store.bumpGeneration('a')).rejects.toMatchObject({ code: 'TW_STORE_UNAVAILABLE' });
  });
});
