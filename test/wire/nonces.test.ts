import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import type { NonceStore } from '../../src/wire/nonces.js';
import { RedisNonceStore } from '../../src/wire/redis-nonces.js';
import { MemoryNonceStore as FromBarrel, RedisNonceStore as RedisFromBarrel } from '../../src/wire/stores.js';
import { VirtualClock } from '../../src/loop/clock.js';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';

const opened: NonceStore[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
function track<T extends NonceStore>(store: T): T {
  opened.push(store);
  return store;
}

/** The contract every NonceStore meets, run against each implementation (trio's check_two_way_stream style). */
function checkNonceStore(name: string, make: () => NonceStore) {
  describe(`${name}: NonceStore contract`, () => {
    it('is true exactly once per nonce', async () => {
      const store = track(make());
      const n = randomBytes(16);
      expect(await store.reserve(n, 30)).toBe(true);
      expect(await store.reserve(n, 30)).toBe(false);
      expect(await store.reserve(Buffer.from(n), 30)).toBe(false);
      expect(await store.reserve(randomBytes(16), 30)).toBe(true);
    });

    it('treats nonces as bytes: a view into a bigger buffer is its own nonce', async () => {
      const store = track(make());
      const big = randomBytes(48);
      const a = big.subarray(0, 16);
      const b = new Uint8Array(big.buffer, big.byteOffset + 16, 16);
      expect(await store.reserve(a, 30)).toBe(true);
      expect(await store.reserve(b, 30)).toBe(true);
      expect(await store.reserve(Uint8Array.from(a), 30)).toBe(false);
    });

    it('lets exactly one of many concurrent reserves of one nonce win', async () => {
      const store = track(make());
      const n = randomBytes(16);
      const results = await Promise.all(Array.from({ length: 50 }, () => store.reserve(n, 30)));
      expect(results.filter((r) => r)).toHaveLength(1);
    });

    it('keeps distinct nonces apart under concurrency', async () => {
      const store = track(make());
      const nonces = Array.from({ length: 200 }, () => randomBytes(16));
      const first = await Promise.all(nonces.map((n) => store.reserve(n, 30)));
      const second = await Promise.all(nonces.map((n) => store.reserve(n, 30)));
      expect(first.every((r) => r)).toBe(true);
      expect(second.some((r) => r)).toBe(false);
    });

    it('rejects a bad ttl', async () => {
      const store = track(make());
      await expect(store.reserve(randomBytes(16), 0)).rejects.toThrow(RangeError);
      await expect(store.reserve(randomBytes(16), Number.NaN)).rejects.toThrow(RangeError);
      await expect(store.reserve(randomBytes(16), -1)).rejects.toThrow(RangeError);
    });

    it('fails closed after close()', async () => {
      const store = make();
      await store.close();
      await expect(store.reserve(randomBytes(16), 30)).rejects.toMatchObject({ code: 'TW_STORE_UNAVAILABLE' });
      await store.close(); // idempotent
    });
  });
}

checkNonceStore('MemoryNonceStore', () => new MemoryNonceStore());

describe('MemoryNonceStore', () => {
  it('is exported from the stores barrel', () => {
    expect(FromBarrel).toBe(MemoryNonceStore);
    expect(RedisFromBarrel).toBe(RedisNonceStore);
  });

  it('forgets a nonce once its ttl has passed, not before', async () => {
    const clock = new VirtualClock();
    const store = track(new MemoryNonceStore({ clock }));
    const n = randomBytes(16);
    expect(await store.reserve(n, 10)).toBe(true);
    clock.advance(9.999);
    expect(await store.reserve(n, 10)).toBe(false);
    clock.advance(0.001);
    expect(await store.reserve(n, 10)).toBe(true);
    expect(await store.reserve(n, 10)).toBe(false);
  });

  it('evicts expired entries incrementally, so size is bounded by the expiry window', () => {
    const clock = new VirtualClock();
    const store = new MemoryNonceStore({ clock });
    // 100 nonces per virtual second with a 5 s ttl: about 500 live at any time.
    let peak = 0;
    for (let s = 0; s < 60; s++) {
      for (let i = 0; i < 100; i++) {
        expect(store.reserveSync(randomBytes(16), 5)).toBe(true);
        clock.advance(0.01);
      }
      peak = Math.max(peak, store.size);
    }
    // Live entries (500) + at most one bucket (1 s = 100) not yet drained, plus the ones in flight.
    expect(peak).toBeLessThanOrEqual(700);
    expect(peak).toBeGreaterThanOrEqual(500);
  });

  it('fails closed with ReplayCacheFull when full of unexpired nonces, and recovers once they expire', async () => {
    const clock = new VirtualClock();
    const store = track(new MemoryNonceStore({ clock, maxEntries: 3 }));
    const held = [randomBytes(16), randomBytes(16), randomBytes(16)];
    for (const n of held) expect(await store.reserve(n, 10)).toBe(true);
    await expect(store.reserve(randomBytes(16), 10)).rejects.toMatchObject({ code: 'TW_REPLAY_CACHE_FULL' });
    // A replay of a held nonce is still answered (false), not refused as full.
    expect(await store.reserve(held[0]!, 10)).toBe(false);
    expect(store.size).toBe(3);
    clock.advance(11);
    expect(await store.reserve(randomBytes(16), 10)).toBe(true);
    expect(store.size).toBe(1);
  });

  it('never evicts an unexpired nonce, whatever the mix of ttls', () => {
    const clock = new VirtualClock();
    const store = new MemoryNonceStore({ clock });
    const long = randomBytes(16);
    expect(store.reserveSync(long, 100)).toBe(true);
    for (let i = 0; i < 5000; i++) {
      store.reserveSync(randomBytes(16), 0.5);
      clock.advance(0.01);
    }
    // 50 s later the long-lived nonce must still be remembered.
    expect(store.reserveSync(long, 100)).toBe(false);
    clock.advance(51);
    expect(store.reserveSync(long, 100)).toBe(true);
  });

  it('rejects bad options', () => {
    expect(() => new MemoryNonceStore({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new MemoryNonceStore({ maxEntries: 1.5 })).toThrow(RangeError);
  });
});

describe('RedisNonceStore (real redis-server)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  checkNonceStore('RedisNonceStore(url)', () => new RedisNonceStore({ redis: redis.url, prefix: `t:${randomBytes(4).toString('hex')}:` }));

  it('two stores sharing one Redis: the second reserve of a nonce is rejected', async () => {
    const prefix = `shared:${randomBytes(4).toString('hex')}:`;
    const a = track(new RedisNonceStore({ redis: redis.url, prefix }));
    const b = track(new RedisNonceStore({ redis: redis.url, prefix }));
    const n = randomBytes(16);
    expect(await a.reserve(n, 30)).toBe(true);
    expect(await b.reserve(n, 30)).toBe(false);
    expect(await a.reserve(n, 30)).toBe(false);
    // And concurrently across both stores: one winner in all.
    const m = randomBytes(16);
    const results = await Promise.all([...Array(20)].flatMap(() => [a.reserve(m, 30), b.reserve(m, 30)]));
    expect(results.filter((r) => r)).toHaveLength(1);
  });

  it('stores the key with SET NX PX: the key expires after ttl', async () => {
    const client = new Redis(redis.url);
    try {
      const prefix = `ttl:${randomBytes(4).toString('hex')}:`;
      const store = track(new RedisNonceStore({ redis: client, prefix }));
      const n = randomBytes(16);
      // 1 s: the pttl read and the replay below must come well inside it on a loaded machine.
      expect(await store.reserve(n, 1)).toBe(true);
      const key = prefix + n.toString('base64url');
      const pttl = await client.pttl(key);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(1000);
      expect(await store.reserve(n, 1)).toBe(false);
      // Wait for Redis to expire it (real time: Redis has its own clock).
      for (let i = 0; i < 100 && (await client.exists(key)) === 1; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await store.reserve(n, 1)).toBe(true);
    } finally {
      client.disconnect();
    }
  });

  it('close() does not close a client it was given', async () => {
    const client = new Redis(redis.url);
    try {
      const store = new RedisNonceStore({ redis: client });
      expect(await store.reserve(randomBytes(16), 5)).toBe(true);
      await store.close();
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });

  it('uses one pipeline for the reserves of one tick', async () => {
    const client = new Redis(redis.url);
    try {
      await client.ping();
      let writes = 0;
      const stream = (client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
      const original = stream.write.bind(stream);
      stream.write = (...a: unknown[]) => { writes++; return original(...a); };
      const store = track(new RedisNonceStore({ redis: client, prefix: `pipe:${randomBytes(4).toString('hex')}:` }));
      const results = await Promise.all(Array.from({ length: 100 }, () => store.reserve(randomBytes(16), 5)));
      stream.write = original;
      expect(results.every((r) => r)).toBe(true);
      expect(writes).toBeLessThan(10);
    } finally {
      client.disconnect();
    }
  });
});

describe('RedisNonceStore when Redis is down', () => {
  it('fails closed with StoreUnavailable, the ioredis error as cause', async () => {
    const server = await startRedis();
    const store = track(new RedisNonceStore({ redis: server.url }));
    expect(await store.reserve(randomBytes(16), 5)).toBe(true);
    await server.stop();
    const err = await store.reserve(randomBytes(16), 5).then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'TW_STORE_UNAVAILABLE' });
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('fails closed when Redis was never reachable', async () => {
    const server = await startRedis();
    const url = server.url;
    await server.stop();
    const store = track(new RedisNonceStore({ redis: url }));
    await expect(store.reserve(randomBytes(16), 5)).rejects.toMatchObject({ code: 'TW_STORE_UNAVAILABLE' });
  });
});
