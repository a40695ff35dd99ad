/**
 * A refresh whose account lookup fails (the accounts database times out) must not use the refresh token up.
 * `refresh()` claimed the token's single use first and asked `loadAccount` after, so the failed call had already
 * spent the token: the client's retry with the same token then looked like a stolen token coming back, was refused
 * `TokenRevoked`, and bumped the account's generation, killing every other session of the account over one
 * database hiccup. The lookup now runs before the claim, so the retry succeeds; a refresh token really used twice
 * still revokes the family. On a MemoryTokenStore and on a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { MemoryTokenStore, RedisTokenStore, TokenService } from '../../src/tokens/index.js';
import type { Account, TokenStore } from '../../src/tokens/index.js';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';

const T0 = 1_764_580_000;
const KEY = 'refresh-lookup-failure-key-0123456789';

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

const stores: [string, (clock: VirtualClock) => TokenStore][] = [
  ['MemoryTokenStore', (clock) => new MemoryTokenStore({ clock })],
  ['RedisTokenStore', () => new RedisTokenStore({ redis: redis.url, prefix: `lookup-failure:${Math.random().toString(36).slice(2)}:` })],
];

describe.each(stores)('refresh on %s when loadAccount fails once', (_name, makeStore) => {
  it('the retry with the same refresh token succeeds, and the account\'s other sessions live on', async () => {
    const clock = new VirtualClock({ epochStart: T0 });
    const store = makeStore(clock);
    let failNext = false;
    const loadAccount = async (id: string): Promise<Account | null> => {
      if (failNext) {
        failNext = false;
        throw new Error('accounts database: connection timed out');
      }
      return { id, roles: ['user'] };
    };
    const service = new TokenService({ secretKeys: KEY, store, accessTtl: 3600, refreshTtl: 86400, clock, loadAccount });
    try {
      const phone = await service.issue({ id: 'alice', roles: ['user'] });
      const laptop = await service.issue({ id: 'alice', roles: ['user'] });

      failNext = true;
      expect(await outcome(service.refresh(phone.refreshToken))).toBe('accounts database: connection timed out');
      // The client retries the very same refresh token.
      const retried = await service.refresh(phone.refreshToken);
      expect(await service.verifyAccess(retried.accessToken)).toMatchObject({ accountId: 'alice', generation: 0 });
      // Nothing was revoked: the other session of the account still works.
      expect(await service.verifyAccess(laptop.accessToken)).toMatchObject({ accountId: 'alice' });
      expect(await store.getGeneration('alice')).toBe(0);

      // A refresh token really used twice still revokes the whole family.
      expect(await outcome(service.refresh(phone.refreshToken))).toBe('TW_TOKEN_REVOKED');
      expect(await outcome(service.verifyAccess(laptop.accessToken))).toBe('TW_TOKEN_REVOKED');
    } finally {
      await service.close();
      await store.close();
    }
  });

  it('an account deleted meanwhile is still refused (UnknownToken)', async () => {
    const clock = new VirtualClock({ epochStart: T0 });
    const store = makeStore(clock);
    const service = new TokenService({ secretKeys: KEY, store, accessTtl: 3600, refreshTtl: 86400, clock, loadAccount: () => null });
    try {
      const pair = await service.issue({ id: 'bob', roles: ['user'] });
      expect(await outcome(service.refresh(pair.refreshToken))).toBe('TW_UNKNOWN_TOKEN');
    } finally {
      await store.close();
    }
  });
});
