/**
 * A refresh that fails on the store must not spend the refresh token. `refresh()` claimed the token's single use,
 * deleted the old access token and only then stored the new access record: when that store step failed
 * (`putAccess` threw StoreUnavailable: a Redis timeout, a full disk behind a custom store) the client had neither a
 * new pair nor a usable refresh token, and its retry with the same token looked like a stolen token coming back:
 * refused TokenRevoked, and the account's generation bumped, killing every other session of the account. Now every
 * store write that can fail runs before the claim, and the claim is the last store step: a refresh that fails with
 * StoreUnavailable can be retried with the same token (the old access token lives on unless its removal, the step
 * before the claim, already happened). A refresh token really used twice still revokes the family, and the access
 * record the losing refresh stored is removed.
 *
 * The failing store is a user-supplied TokenStore (the library's extension point) over a MemoryTokenStore and over
 * a RedisTokenStore on a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailable } from '../../src/errors.js';
import { VirtualClock } from '../../src/loop/clock.js';
import { MemoryTokenStore, RedisTokenStore, TokenService } from '../../src/tokens/index.js';
import type { AccessRecord, TokenStore } from '../../src/tokens/index.js';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';

const T0 = 1_764_580_000;
const KEY = 'refresh-store-failure-key-0123456789';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as { code?: string; message: string }).code ?? (err as Error).message;
  }
}

type Method = 'putAccess' | 'deleteAccess' | 'claimOnce';

/** A store that forwards to `inner` and fails the next call of `failing` once (StoreUnavailable, as a real store does). */
class FlakyStore implements TokenStore {
  failing: Method | null = null;
  readonly inner: TokenStore;
  readonly puts: string[] = [];
  constructor(inner: TokenStore) {
    this.inner = inner;
  }
  #maybeFail(m: Method): void {
    if (this.failing === m) {
      this.failing = null;
      throw new StoreUnavailable(`${m}: connection lost`);
    }
  }
  async putAccess(id: string, record: AccessRecord, ttl: number): Promise<void> {
    this.#maybeFail('putAccess');
    this.puts.push(id);
    return this.inner.putAccess(id, record, ttl);
  }
  getAccess(id: string) { return this.inner.getAccess(id); }
  async deleteAccess(id: string): Promise<boolean> {
    this.#maybeFail('deleteAccess');
    return this.inner.deleteAccess(id);
  }
  getGeneration(a: string) { return this.inner.getGeneration(a); }
  bumpGeneration(a: string) { return this.inner.bumpGeneration(a); }
  async claimOnce(id: string, ttl: number): Promise<boolean> {
    this.#maybeFail('claimOnce');
    return this.inner.claimOnce(id, ttl);
  }
  stateSince(now: number) { return this.inner.stateSince!(now); }
  close() { return this.inner.close(); }
}

const stores: [string, (clock: VirtualClock) => TokenStore][] = [
  ['MemoryTokenStore', (clock) => new MemoryTokenStore({ clock })],
  ['RedisTokenStore', () => new RedisTokenStore({ redis: redis.url, prefix: `refresh-store-failure:${Math.random().toString(36).slice(2)}:` })],
];

describe.each(stores)('refresh over %s when a store step fails once', (_name, makeStore) => {
  const setup = (clock: VirtualClock) => {
    const store = new FlakyStore(makeStore(clock));
    const service = new TokenService({ secretKeys: KEY, store, accessTtl: 3600, refreshTtl: 86400, clock });
    return { store, service };
  };

  it.each(['putAccess', 'deleteAccess', 'claimOnce'] as const)(
    'a refresh whose %s fails can be retried with the same token; the other sessions live on',
    async (method) => {
      const clock = new VirtualClock({ epochStart: T0 });
      const { store, service } = setup(clock);
      try {
        const phone = await service.issue({ id: 'alice', roles: ['user'] });
        const laptop = await service.issue({ id: 'alice', roles: ['user'] });
        clock.advance(10);

        store.failing = method;
        expect(await outcome(service.refresh(phone.refreshToken))).toBe('TW_STORE_UNAVAILABLE');
        // The failed refresh gave nothing; before the store step that failed, the phone's old access token stays.
        if (method !== 'claimOnce') expect((await service.verifyAccess(phone.accessToken)).accountId).toBe('alice');

        const next = await service.refresh(phone.refreshToken);
        expect((await service.verifyAccess(next.accessToken)).accountId).toBe('alice');
        expect(await outcome(service.verifyAccess(phone.accessToken))).toBe('TW_UNKNOWN_TOKEN');
        expect(await service.store.getGeneration('alice')).toBe(0);
        expect((await service.verifyAccess(laptop.accessToken)).accountId).toBe('alice');
        expect((await service.refresh(laptop.refreshToken)).tokenType).toBe('Bearer');
        // The new refresh token is single-use as ever.
        await service.refresh(next.refreshToken);
        expect(await outcome(service.refresh(next.refreshToken))).toBe('TW_TOKEN_REVOKED');
      } finally {
        await service.close();
        await store.close();
      }
    },
  );

  it('a refresh token used twice still revokes the family, and the second use leaves no live access record', async () => {
    const clock = new VirtualClock({ epochStart: T0 });
    const { store, service } = setup(clock);
    try {
      const pair = await service.issue({ id: 'bob', roles: ['user'] });
      const first = await service.refresh(pair.refreshToken);
      const before = store.puts.length;
      expect(await outcome(service.refresh(pair.refreshToken))).toBe('TW_TOKEN_REVOKED');
      expect(await service.store.getGeneration('bob')).toBe(1);
      expect(await outcome(service.verifyAccess(first.accessToken))).toBe('TW_TOKEN_REVOKED');
      // Whatever the refused refresh stored on its way is gone again.
      for (const id of store.puts.slice(before)) expect(await store.inner.getAccess(id)).toBeNull();
    } finally {
      await service.close();
      await store.close();
    }
  });

  it('two concurrent refreshes of one token: one pair at most, and the family is revoked', async () => {
    const clock = new VirtualClock({ epochStart: T0 });
    const { store, service } = setup(clock);
    try {
      const pair = await service.issue({ id: 'carol', roles: ['user'] });
      const results = await Promise.allSettled([service.refresh(pair.refreshToken), service.refresh(pair.refreshToken)]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['TW_TOKEN_REVOKED']);
      expect(await service.store.getGeneration('carol')).toBe(1);
    } finally {
      await service.close();
      await store.close();
    }
  });
});
