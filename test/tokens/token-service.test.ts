/** Auth tickets, access/refresh tokens and the token stores (memory and a real redis-server). */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { VirtualClock } from '../../src/loop/clock.js';
import {
  AuthTickets, MemoryTokenStore, RedisTokenStore, TokenService, URLSafeSerializer, URLSafeTimedSerializer,
  makeAuthTicket, verifyAuthTicket,
} from '../../src/tokens/index.js';
import type { TokenStore } from '../../src/tokens/index.js';
import { BadSignature } from '../../src/errors.js';
import { runPython } from '../support/py.js';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';

const T0 = 1_764_580_000;
const KEY = 'token-service-test-key-0123456789abcdef';

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string; cause?: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('auth tickets', () => {
  it('round-trips the user id until expiresIn has passed, then SignatureExpired ("Ticket expired.")', () => {
    const clock = new VirtualClock({ epochStart: T0 });
    const tickets = new AuthTickets(KEY, { clock });
    const t = tickets.makeAuthTicket(42, { expiresIn: 60 });
    expect(tickets.verifyAuthTicket(t)).toBe(42);
    expect(tickets.inspectAuthTicket(t).expiresAt).toBe(T0 + 60);
    clock.advance(60);
    expect(tickets.verifyAuthTicket(t)).toBe(42); // expires_at < now is expired, == is not (as the seeds)
    clock.advance(0.5);
    let err: unknown;
    try { tickets.verifyAuthTicket(t); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BadSignature);
    expect(err).toMatchObject({ code: 'TW_SIGNATURE_EXPIRED', message: 'Ticket expired.', lateBy: 0.5 });
  });

  it('refuses tampered tickets, other keys, and validly signed non-tickets', () => {
    const tickets = new AuthTickets(KEY);
    const t = tickets.makeAuthTicket('alice');
    expect(() => tickets.verifyAuthTicket(t.slice(0, -1) + (t.endsWith('A') ? 'B' : 'A'))).toThrow(expect.objectContaining({ code: 'TW_BAD_SIGNATURE' }));
    expect(() => new AuthTickets('other').verifyAuthTicket(t)).toThrow(expect.objectContaining({ code: 'TW_BAD_SIGNATURE' }));
    const notATicket = new URLSafeSerializer(KEY, { salt: 'tulipwire.auth-ticket' }).dumps({ user: 'x' });
    expect(() => tickets.verifyAuthTicket(notATicket)).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
    expect(() => tickets.makeAuthTicket(1.5)).toThrow(TypeError);
    expect(() => tickets.makeAuthTicket(1, { expiresIn: 0 })).toThrow(RangeError);
  });

  it('the one-shot functions and the seeds\' Python code accept each other\'s tickets', async () => {
    // The seeds' code as written (URLSafeSerializer with the default salt), on a fixed clock.
    const seeds = String.raw`
import sys, time
from itsdangerous import URLSafeSerializer, BadSignature
time.time = lambda: float(sys.argv[2])
def get_serializer(): return URLSafeSerializer(secret_key=sys.argv[1])
def make_auth_ticket(user_id, expires_in=60):
    return get_serializer().dumps({'user_id': user_id, 'expires_at': time.time() + expires_in})
def verify_auth_ticket(ticket):
    data = get_serializer().loads(ticket)
    if data['expires_at'] < time.time(): raise BadSignature('Ticket expired.')
    return data['user_id']
if sys.argv[3] == 'make': print(make_auth_ticket(42))
else:
    try: print(verify_auth_ticket(sys.argv[4]))
    except BadSignature as e: print('BadSignature', e)
`;
    const clock = new VirtualClock({ epochStart: T0 + 0.25 });
    const opts = { secretKeys: KEY, salt: 'itsdangerous', clock };
    const fromPy = (await runPython(seeds, [KEY, String(T0 + 0.25), 'make'])).stdout.trim();
    expect(fromPy).toBe(makeAuthTicket(42, { ...opts, expiresIn: 60 }));
    expect(verifyAuthTicket(fromPy, opts)).toBe(42);
    const ours = makeAuthTicket(42, { ...opts, expiresIn: 10 });
    expect((await runPython(seeds, [KEY, String(T0 + 5), 'verify', ours])).stdout.trim()).toBe('42');
    expect((await runPython(seeds, [KEY, String(T0 + 11), 'verify', ours])).stdout.trim()).toBe('BadSignature Ticket expired.');
  });
});

/** The token-service suite, run against each store. */
function tokenServiceSuite(name: string, makeStore: (clock: VirtualClock) => TokenStore) {
  describe(`TokenService on ${name}`, () => {
    const opened: { close(): Promise<void> }[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });
    function setup(extra: Partial<ConstructorParameters<typeof TokenService>[0]> = {}) {
      const clock = new VirtualClock({ epochStart: T0 });
      const store = makeStore(clock);
      opened.push(store);
      const service = new TokenService({ secretKeys: KEY, store, accessTtl: 3600, refreshTtl: 86400, clock, ...extra });
      return { clock, store, service };
    }
    const alice = { id: 'alice', roles: ['user', 'admin'] };

    it('issues a random access token and a signed refresh token; verifyAccess returns the grant', async () => {
      const { service } = setup();
      const pair = await service.issue(alice, { scope: ['user', 'superuser'] });
      expect(pair.accessToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(pair).toMatchObject({ tokenType: 'Bearer', expiresIn: 3600, refreshExpiresIn: 86400 });
      const info = await service.verifyAccess(pair.accessToken);
      expect(info).toMatchObject({ accountId: 'alice', roles: ['user', 'admin'], scope: ['user'], generation: 0, expiresAt: T0 + 3600 });
      const second = await service.issue(alice);
      expect(second.accessToken).not.toBe(pair.accessToken);
      expect((await service.verifyAccess(second.accessToken)).scope).toEqual(['user', 'admin']);
    });

    it('typed errors: unknown, expired, revoked by generation, revoked by refresh, tampered refresh', async () => {
      const { service, clock } = setup();
      expect(await rejection(service.verifyAccess(randomBytes(32).toString('base64url')))).toMatchObject({ code: 'TW_UNKNOWN_TOKEN' });
      expect(await rejection(service.verifyAccess('not a token'))).toMatchObject({ code: 'TW_UNKNOWN_TOKEN' });
      const pair = await service.issue(alice);
      clock.advance(3600);
      expect(await rejection(service.verifyAccess(pair.accessToken))).toMatchObject({ code: 'TW_TOKEN_EXPIRED' });
      const fresh = await service.issue(alice);
      await service.bumpGeneration('alice');
      expect(await rejection(service.verifyAccess(fresh.accessToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
      expect(await rejection(service.refresh(fresh.refreshToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
      const tampered = fresh.refreshToken.slice(0, -2) + (fresh.refreshToken.endsWith('AA') ? 'BB' : 'AA');
      expect(await rejection(service.refresh(tampered))).toMatchObject({ code: 'TW_BAD_TIME_SIGNATURE' });
      expect(await rejection(service.refresh('garbage'))).toMatchObject({ code: 'TW_BAD_SIGNATURE' });
      expect(await rejection(service.refresh(pair.accessToken))).toMatchObject({ code: 'TW_BAD_SIGNATURE' });
    });

    it('refresh: new pair, old access token revoked, refresh token single-use; reuse revokes the whole family', async () => {
      const { service } = setup();
      const first = await service.issue(alice, { scope: ['user'] });
      const second = await service.refresh(first.refreshToken);
      expect(await rejection(service.verifyAccess(first.accessToken))).toMatchObject({ code: 'TW_UNKNOWN_TOKEN' });
      expect((await service.verifyAccess(second.accessToken)).scope).toEqual(['user']);
      // A thief replays the first refresh token: refused, and every token of alice dies with it.
      expect(await rejection(service.refresh(first.refreshToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
      expect(await rejection(service.verifyAccess(second.accessToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
      expect(await rejection(service.refresh(second.refreshToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
      // A new login works again.
      const third = await service.issue(alice);
      expect((await service.verifyAccess(third.accessToken)).generation).toBe(1);
    });

    it('concurrent refreshes of one token: exactly one succeeds', async () => {
      const { service } = setup({ reuseDetection: false });
      const pair = await service.issue(alice);
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => service.refresh(pair.refreshToken)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
    });

    it('refresh tokens expire after refreshTtl (TokenExpired, the SignatureExpired as cause)', async () => {
      const { service, clock } = setup();
      const pair = await service.issue(alice);
      clock.advance(86400);
      const ok = await service.refresh(pair.refreshToken);
      clock.advance(86401);
      const err = await rejection(service.refresh(ok.refreshToken));
      expect(err).toMatchObject({ code: 'TW_TOKEN_EXPIRED' });
      expect(err.cause).toMatchObject({ code: 'TW_SIGNATURE_EXPIRED' });
    });

    it('refresh re-reads the account: removed roles leave the scope, a deleted account is refused', async () => {
      let roles = ['user', 'admin'];
      let exists = true;
      const { service } = setup({ loadAccount: (id) => (exists ? { id, roles } : null) });
      const pair = await service.issue(alice);
      roles = ['user'];
      const next = await service.refresh(pair.refreshToken);
      expect(await service.verifyAccess(next.accessToken)).toMatchObject({ roles: ['user'], scope: ['user'] });
      exists = false;
      expect(await rejection(service.refresh(next.refreshToken))).toMatchObject({ code: 'TW_UNKNOWN_TOKEN' });
    });

    it('revoke() kills one access token; numeric and string ids are one account', async () => {
      const { service } = setup();
      const a = await service.issue({ id: 7, roles: ['user'] });
      const b = await service.issue({ id: 7, roles: ['user'] });
      expect(await service.revoke(a.accessToken)).toBe(true);
      expect(await service.revoke(a.accessToken)).toBe(false);
      expect(await rejection(service.verifyAccess(a.accessToken))).toMatchObject({ code: 'TW_UNKNOWN_TOKEN' });
      expect((await service.verifyAccess(b.accessToken)).accountId).toBe('7');
      await service.bumpGeneration('7');
      expect(await rejection(service.verifyAccess(b.accessToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
    });

    it('rotates the refresh key: old tokens still refresh, new ones are signed with the new key', async () => {
      const clock = new VirtualClock({ epochStart: T0 });
      const store = makeStore(clock);
      opened.push(store);
      const before = new TokenService({ secretKeys: ['k-old'], store, clock });
      const after = new TokenService({ secretKeys: ['k-old', 'k-new'], store, clock });
      const pair = await before.issue(alice);
      const next = await after.refresh(pair.refreshToken);
      expect(await rejection(before.refresh(next.refreshToken))).toMatchObject({ code: 'TW_BAD_TIME_SIGNATURE' });
      await after.refresh(next.refreshToken);
    });
  });
}

tokenServiceSuite('MemoryTokenStore', (clock) => new MemoryTokenStore({ clock }));

describe('with a real redis-server', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  // Redis keeps real time for TTLs; the suite's virtual clock only decides expiry inside the service.
  tokenServiceSuite('RedisTokenStore', () => new RedisTokenStore({ redis: redis.url, prefix: `t${randomBytes(4).toString('hex')}:` }));

  it('two services sharing one Redis see each other\'s tokens, generations and used refresh tokens', async () => {
    const prefix = `shared${randomBytes(4).toString('hex')}:`;
    const a = new TokenService({ secretKeys: KEY, store: new RedisTokenStore({ redis: redis.url, prefix }) });
    const b = new TokenService({ secretKeys: KEY, store: new RedisTokenStore({ redis: redis.url, prefix }) });
    try {
      const pair = await a.issue({ id: 'bob', roles: ['user'] });
      expect((await b.verifyAccess(pair.accessToken)).accountId).toBe('bob');
      const next = await b.refresh(pair.refreshToken);
      expect(await rejection(a.refresh(pair.refreshToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
      expect(await rejection(a.verifyAccess(next.accessToken))).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  it('keeps no bearer token in Redis: keys are SHA-256 of the tokens', async () => {
    const prefix = `scan${randomBytes(4).toString('hex')}:`;
    const client = new Redis(redis.url);
    const store = new RedisTokenStore({ redis: client, prefix });
    try {
      const service = new TokenService({ secretKeys: KEY, store });
      const pair = await service.issue({ id: 'carol', roles: ['user'] });
      const keys = await client.keys(prefix + '*');
      const values = await Promise.all(keys.filter((k) => k.includes(':at:')).map((k) => client.get(k)));
      expect(keys.length).toBeGreaterThan(0);
      for (const text of [...keys, ...values]) expect(text).not.toContain(pair.accessToken);
      await store.close();
      expect(await client.ping()).toBe('PONG'); // a given client stays open
    } finally {
      client.disconnect();
    }
  });
});

describe('RedisTokenStore when Redis is down', () => {
  it('fails closed: StoreUnavailable from issue, verifyAccess and refresh', async () => {
    const server = await startRedis();
    const store = new RedisTokenStore({ redis: server.url });
    const service = new TokenService({ secretKeys: KEY, store });
    try {
      const pair = await service.issue({ id: 'dave', roles: ['user'] });
      await server.stop();
      expect(await rejection(service.verifyAccess(pair.accessToken))).toMatchObject({ code: 'TW_STORE_UNAVAILABLE' });
      expect(await rejection(service.refresh(pair.refreshToken))).toMatchObject({ code: 'TW_STORE_UNAVAILABLE' });
      expect(await rejection(service.issue({ id: 'dave' }))).toMatchObject({ code: 'TW_STORE_UNAVAILABLE' });
    } finally {
      await store.close();
      await server.stop();
    }
  });
});

describe('refresh tokens in Python', () => {
  it('a Python service verifies a refresh token made here (URLSafeTimedSerializer, sha256)', async () => {
    const clock = new VirtualClock({ epochStart: T0 });
    const service = new TokenService({ secretKeys: KEY, clock });
    const pair = await service.issue({ id: 42, roles: ['user'] });
    const py = String.raw`
import sys, time, hashlib, json
from itsdangerous import URLSafeTimedSerializer
time.time = lambda: float(sys.argv[2])
s = URLSafeTimedSerializer(sys.argv[1], salt="tulipwire.refresh-token", signer_kwargs={"digest_method": hashlib.sha256})
d = s.loads(sys.argv[3], max_age=30 * 24 * 3600)
print(json.dumps([d["account_id"], d["generation"], d["scope"]]))
`;
    expect(JSON.parse((await runPython(py, [KEY, String(T0 + 10), pair.refreshToken])).stdout)).toEqual([42, 0, ['user']]);
    // And the payload layout is the one documented.
    const payload = new URLSafeTimedSerializer(KEY, { salt: 'tulipwire.refresh-token', signerOptions: { digest: 'sha256' }, clock }).loads(pair.refreshToken);
    expect(Object.keys(payload as object)).toEqual(['account_id', 'generation', 'scope', 'roles', 'jti', 'access']);
    await service.close();
  });
});
