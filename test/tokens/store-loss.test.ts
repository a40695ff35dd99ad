/**
 * A token store that loses its state must not bring revoked or used refresh tokens back. Generation bumps (the
 * revocation of every token of an account) and used refresh-token ids live in the store; a MemoryTokenStore dies
 * with its process, and a Redis without persistence comes back empty after a crash. Before, the generation read 0
 * again and the claim was gone, so a refresh token revoked by a bump, or already used, refreshed again after the
 * loss. Now `TokenStore.stateSince()` says when the store's memory begins and TokenService refuses refresh tokens
 * signed before it (TokenRevoked: sign in again). Real redis-server, crashed with SIGKILL and restarted empty.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { VirtualClock } from '../../src/loop/clock.js';
import { MemoryTokenStore, RedisTokenStore, TokenService } from '../../src/tokens/index.js';
import type { TokenStore } from '../../src/tokens/index.js';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';

const KEY = 'store-loss-test-key-0123456789abcdef';

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('MemoryTokenStore: a restarted process', () => {
  it('refuses the refresh tokens of the process before (revoked, used or not), and serves its own', async () => {
    const clock = new VirtualClock({ epochStart: 1_900_000_000 });
    const before = new TokenService({ secretKeys: KEY, clock });
    const revoked = await before.issue({ id: 'alice' });
    await before.bumpGeneration('alice');
    const used = await before.issue({ id: 'bob' });
    await before.refresh(used.refreshToken);
    const plain = await before.issue({ id: 'carol' });
    expect(await rejection(before.refresh(revoked.refreshToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });

    clock.advance(30);
    const after = new TokenService({ secretKeys: KEY, clock }); // a new process: a new MemoryTokenStore
    for (const t of [revoked, used, plain]) {
      const err = await rejection(after.refresh(t.refreshToken));
      expect(err).toMatchObject({ code: 'TW_TOKEN_REVOKED', message: expect.stringMatching(/signed before the token store's state begins .*sign in again/) });
    }
    const fresh = await after.issue({ id: 'alice' });
    const next = await after.refresh(fresh.refreshToken);
    expect((await after.verifyAccess(next.accessToken)).accountId).toBe('alice');
  });

  it('a token signed in the second the store began is good (whole seconds, as the token timestamp)', async () => {
    const clock = new VirtualClock({ epochStart: 1_900_000_000.9 });
    const service = new TokenService({ secretKeys: KEY, clock });
    const pair = await service.issue({ id: 'dora' });
    expect((await service.refresh(pair.refreshToken)).tokenType).toBe('Bearer');
  });

  it('a store without stateSince is not checked (a custom store whose state cannot be lost)', async () => {
    const inner = new MemoryTokenStore();
    const store: TokenStore = {
      putAccess: (i, r, t) => inner.putAccess(i, r, t), getAccess: (i) => inner.getAccess(i), deleteAccess: (i) => inner.deleteAccess(i),
      getGeneration: (a) => inner.getGeneration(a), bumpGeneration: (a) => inner.bumpGeneration(a),
      claimOnce: (i, t) => inner.claimOnce(i, t), close: () => inner.close(),
    };
    const service = new TokenService({ secretKeys: KEY, store });
    const pair = await service.issue({ id: 'erin' });
    expect((await service.refresh(pair.refreshToken)).tokenType).toBe('Bearer');
  });
});

describe('RedisTokenStore: a Redis that comes back empty', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('after a crash and an empty restart, revoked and used refresh tokens stay refused; new ones work', async () => {
    const store = new RedisTokenStore({ redis: redis.url, prefix: 'loss1:' });
    const service = new TokenService({ secretKeys: KEY, store });
    try {
      const revoked = await service.issue({ id: 'alice' });
      await service.bumpGeneration('alice');
      const used = await service.issue({ id: 'bob' });
      await service.refresh(used.refreshToken);
      const since = await store.stateSince();
      expect(since).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));

      await redis.crashAndRestart();
      // Tokens are signed in whole seconds: wait for the next one, so the restarted store's state begins after them.
      await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
      let err: { code?: string; message: string } | null = null;
      // The store's client reconnects on its own (a command during the reconnect may fail StoreUnavailable).
      for (let i = 0; i < 50; i++) {
        err = await rejection(service.refresh(revoked.refreshToken));
        if (err.code !== 'TW_STORE_UNAVAILABLE') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(err).toMatchObject({ code: 'TW_TOKEN_REVOKED', message: expect.stringMatching(/signed before the token store's state begins/) });
      expect(await rejection(service.refresh(used.refreshToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED', message: expect.stringMatching(/state begins/) });
      expect(await store.stateSince()).toBeGreaterThan(since);
      const fresh = await service.issue({ id: 'alice' });
      const next = await service.refresh(fresh.refreshToken);
      expect((await service.verifyAccess(next.accessToken)).accountId).toBe('alice');
    } finally {
      await store.close();
    }
  }, 60_000);

  it('FLUSHALL is the same loss; two stores sharing the Redis agree on one epoch', async () => {
    const a = new RedisTokenStore({ redis: redis.url, prefix: 'loss2:' });
    const b = new RedisTokenStore({ redis: redis.url, prefix: 'loss2:' });
    const admin = new Redis(redis.url);
    try {
      const sa = new TokenService({ secretKeys: KEY, store: a });
      const sb = new TokenService({ secretKeys: KEY, store: b });
      const pair = await sa.issue({ id: 'frank' });
      expect(await b.stateSince()).toBe(await a.stateSince());
      await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
      await admin.flushall();
      expect(await rejection(sb.refresh(pair.refreshToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
      expect(await a.stateSince()).toBe(await b.stateSince());
      const again = await sb.issue({ id: 'frank' });
      expect((await sa.refresh(again.refreshToken)).tokenType).toBe('Bearer');
      // Something else in the key is not an epoch: refused (StoreUnavailable), never read as "no loss".
      await admin.set('loss2:epoch', 'garbage');
      expect(await rejection(a.stateSince())).toMatchObject({ code: 'TW_STORE_UNAVAILABLE', message: expect.stringMatching(/not an epoch second/) });
    } finally {
      admin.disconnect();
      await a.close();
      await b.close();
    }
  }, 30_000);
});
