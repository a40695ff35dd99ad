/**
 * RPC over real mutual TLS on 127.0.0.1: RpcProtocol on both ends of loop.createServer/createConnection with the
 * test CA's pinned certificates. Every error is provoked and asserted on both sides (the caller's typed error, and
 * the server's handler/exception-handler view).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import '../../src/net/index.js';
import type { Server } from '../../src/net/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';
import type { RpcContext, RpcProtocolOptions } from '../../src/wire/rpc.js';
import { SecurityContext } from '../../src/tokens/security-context.js';
import { TokenService } from '../../src/tokens/token-service.js';
import { requireRole } from '../../src/tokens/authorize.js';
import { RateLimited, RpcError } from '../../src/errors.js';
import type { TulipError } from '../../src/errors.js';
import { sleep } from '../../src/loop/index.js';
import type { PeerIdentity } from '../../src/pki/index.js';
import type { Future } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
let ca: TestCA;
const secret = Buffer.alloc(32, 0x5a);
const open: RpcProtocol[] = [];
const servers: Server[] = [];

beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });
// Runs before useLoop's afterEach closes the loop (hooks run in reverse order): everything is closed while the
// loop still runs, and waited for, so no socket event reaches a closed loop.
afterEach(async () => {
  const clients = open.splice(0);
  const ss = servers.splice(0);
  await fx.loop.runUntilComplete(async () => {
    for (const t of clients) t.close();
    for (const s of ss) {
      s.close();
      s.abortClients();
      await s.waitClosed();
    }
    for (let i = 0; i < 200 && clients.some((t) => !t.closed); i++) await sleep(0.005);
  });
});

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', secret);
  return k;
}

function portOf(server: Server): number {
  const sock = server.sockets[0] as { address(): { port: number } };
  return sock.address().port;
}

async function serve(options: Partial<RpcProtocolOptions> & { router: RpcRouter }): Promise<{ port: number; protocols: RpcProtocol[] }> {
  const protocols: RpcProtocol[] = [];
  const keyring = ring();
  const server = await fx.loop.createServer(() => {
    const p = new RpcProtocol({ keyring, side: 'server', logger: {}, ...options });
    protocols.push(p);
    return p;
  }, '127.0.0.1', 0, { ssl: ca.serverOptions });
  servers.push(server);
  return { port: portOf(server), protocols };
}

async function connect(port: number, options: Partial<RpcProtocolOptions> = {}, ssl = ca.clientOptions): Promise<RpcProtocol> {
  const [, proto] = await fx.loop.createConnection(
    () => new RpcProtocol({ keyring: ring(), side: 'client', logger: {}, ...options }), '127.0.0.1', port, { ssl });
  open.push(proto);
  return proto;
}

/** Resolves on a library Future when `ctx.signal` aborts, recording the reason. */
function untilAborted(ctx: RpcContext, record: unknown[]): Future<never> {
  const f = fx.loop.createFuture<never>();
  ctx.signal.addEventListener('abort', () => {
    record.push(ctx.signal.reason);
    if (!f.done()) f.setException(ctx.signal.reason);
  });
  return f;
}

describe('RPC over mTLS', () => {
  it('round trips; the handler sees the client certificate; the server calls the client back; TLS-bound keys', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      const peers: (string | null)[] = [];
      router.handle('add', ([a, b]: [number, number], ctx) => { peers.push((ctx.peer as PeerIdentity).identity); return a + b; });
      router.handle('askBack', async (_p, ctx) => ctx.endpoint.call('whoami'));
      const { port, protocols } = await serve({ router });
      const client = await connect(port);
      client.handle('whoami', () => 'the client');
      expect(await client.call('add', [2, 3])).toBe(5);
      expect(await client.call('askBack')).toBe('the client');
      expect(peers[0]).toMatch(/^tulip:\/\/.+\/client\/test-client$/);
      expect((client.peer as PeerIdentity).dnsNames).toContain('localhost');
      expect(client.tlsBound && protocols[0]!.tlsBound).toBe(true);
    });
  });

  it('many concurrent calls: all answered correctly, handlers started in call order', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      const started: number[] = [];
      router.handle('echo', async (n: number) => { started.push(n); return { n, pad: 'x'.repeat(n % 7) }; });
      const { port } = await serve({ router, maxInFlight: 1000 });
      const client = await connect(port);
      const N = 300;
      const results = await Promise.all(Array.from({ length: N }, (_, i) => client.call<{ n: number }>('echo', i)));
      expect(results.map((r) => r.n)).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(started).toEqual(Array.from({ length: N }, (_, i) => i));
    });
  });

  it('typed errors: unknown method, TW_ error with fields, application code, plain throw; the connection keeps serving', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      router.handle('limited', () => { throw new RateLimited('slow down', { retryAfter: 2.5 }); });
      router.handle('app', () => { throw new RpcError('out of stock', { remoteCode: 'SHOP_OUT_OF_STOCK', data: { sku: 'A-1' } }); });
      router.handle('boom', () => { throw new Error('database password is hunter2'); });
      router.handle('ok', () => 'still serving');
      const { port, protocols } = await serve({ router });
      const client = await connect(port);
      await expect(client.call('nope')).rejects.toMatchObject({ code: 'TW_METHOD_NOT_FOUND', remote: true, method: 'nope' });
      const limited = await client.call('limited').then(() => null, (e: unknown) => e);
      expect(limited).toBeInstanceOf(RateLimited);
      expect(limited).toMatchObject({ code: 'TW_RATE_LIMITED', retryAfter: 2.5, remote: true, message: 'slow down' });
      await expect(client.call('app')).rejects.toMatchObject({ code: 'TW_RPC', remoteCode: 'SHOP_OUT_OF_STOCK', data: { sku: 'A-1' }, message: 'out of stock' });
      const boom = await client.call('boom').then(() => null, (e: RpcError) => e);
      expect(boom).toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_RPC', message: 'internal error', remote: true });
      // the server side: the real error went to the loop's exception handler, not to the peer
      const records = fx.take();
      expect(records.map((r) => [r.message, (r.exception as Error).message])).toEqual([['RPC handler boom failed', 'database password is hunter2']]);
      expect(await client.call('ok')).toBe('still serving');
      expect(protocols[0]!.stats.rejected).toBe(0);
      expect(client.stats.rejected).toBe(0);
    });
  });

  it('cancelling the call reaches the handler signal on the server', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      const aborted: unknown[] = [];
      const entered = fx.loop.createFuture<void>();
      const finished = fx.loop.createFuture<void>();
      router.handle('slow', async (_p, ctx) => {
        entered.setResult();
        try { return await untilAborted(ctx, aborted); } finally { finished.setResult(); }
      });
      const { port, protocols } = await serve({ router });
      const client = await connect(port);
      const call = client.call('slow', null, { timeout: null });
      await entered;
      call.cancel();
      await finished;
      expect(call.cancelled()).toBe(true);
      expect(aborted).toMatchObject([{ code: 'TW_CANCELLED' }]);
      for (let i = 0; i < 200 && protocols[0]!.rpc!.inFlight !== 0; i++) await sleep(0.005);
      expect(protocols[0]!.rpc!.inFlight).toBe(0);
    });
  });

  it('a call timeout fails with TimeoutError and cancels the handler', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      const aborted: unknown[] = [];
      const finished = fx.loop.createFuture<void>();
      router.handle('never', async (_p, ctx) => { try { return await untilAborted(ctx, aborted); } finally { finished.setResult(); } });
      const { port } = await serve({ router });
      const client = await connect(port);
      await expect(client.call('never', null, { timeout: 0.2 })).rejects.toMatchObject({ code: 'TW_TIMEOUT', remote: false });
      await finished;
      expect(aborted).toMatchObject([{ code: 'TW_CANCELLED' }]);
    });
  });

  it('Forbidden from roles the certificate does not grant, and from a token outside the scope; typed token errors', async () => {
    await fx.run(async () => {
      const tokens = new TokenService({ secretKeys: ['refresh-secret-for-tests-0123456789'], clock: fx.loop.clock });
      const router = new RpcRouter();
      let adminRuns = 0;
      router.handle('profile', (_p, ctx) => String((ctx.security as SecurityContext).account?.id), { roles: 'user' });
      router.handle('admin.reset', () => { adminRuns++; return 'reset'; }, { roles: ['user', 'admin'] });
      router.handle('guarded', requireRole('admin', () => { adminRuns++; return 'never'; }));
      const { port } = await serve({
        router,
        securityContext: async ({ peer, token }) => {
          const cert = await SecurityContext.fromPeerIdentity(peer as PeerIdentity, (id) =>
            ({ account: { id: id.id ?? 'unknown', roles: ['user', 'admin'] }, granted: ['user'] }));
          if (token === null) return cert;
          return SecurityContext.fromAccessToken(tokens, token);
        },
      });
      // certificate only: grants 'user', not 'admin'
      const certOnly = await connect(port);
      expect(await certOnly.call('profile')).toBe('test-client');
      await expect(certOnly.call('admin.reset')).rejects.toMatchObject({ code: 'TW_FORBIDDEN', role: 'admin', remote: true });
      await expect(certOnly.call('guarded')).rejects.toMatchObject({ code: 'TW_FORBIDDEN', role: 'admin' });
      // a token for an admin account, but scoped to 'user' only
      const pair = await tokens.issue({ id: 'alice', roles: ['user', 'admin'] }, { scope: ['user'] });
      const scoped = await connect(port, { token: pair.accessToken });
      expect(await scoped.call('profile')).toBe('alice');
      await expect(scoped.call('admin.reset')).rejects.toMatchObject({ code: 'TW_FORBIDDEN', role: 'admin' });
      // revoked and unknown tokens are refused with their own codes
      const full = await tokens.issue({ id: 'bob', roles: ['user', 'admin'] });
      const bob = await connect(port, { token: () => full.accessToken });
      expect(await bob.call('admin.reset')).toBe('reset');
      await tokens.revoke(full.accessToken);
      await expect(bob.call('admin.reset')).rejects.toMatchObject({ code: expect.stringMatching(/^TW_(TOKEN_REVOKED|UNKNOWN_TOKEN)$/) });
      const stranger = await connect(port, { token: 'A'.repeat(43) });
      await expect(stranger.call('profile')).rejects.toMatchObject({ code: 'TW_UNKNOWN_TOKEN', remote: true });
      expect(adminRuns).toBe(1);
      await tokens.close();
    });
  });

  it('an idempotent call retried on a NEW connection with a shared nonce store runs once (also while the first still runs)', async () => {
    await fx.run(async () => {
      const nonceStore = new MemoryNonceStore();
      const router = new RpcRouter();
      let charges = 0;
      const started = fx.loop.createFuture<void>();
      const release = fx.loop.createFuture<void>();
      router.handle('charge', async (amount: number) => {
        charges++;
        if (!started.done()) started.setResult();
        await release;
        return { amount, chargeNo: charges };
      });
      const { port, protocols } = await serve({ router, nonceStore });
      const key = new IdempotencyKey();
      const first = await connect(port);
      const attempt1 = first.call('charge', 10, { idempotent: key, timeout: null });
      await started;
      first.close();   // the first connection goes away mid-call; the server keeps charging
      await expect(attempt1).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      const second = await connect(port);
      const attempt2 = second.call('charge', 10, { idempotent: key });
      // the retry reaches the server while the first run is still waiting: it is filed as a duplicate and waits
      for (let i = 0; i < 400 && (protocols[1]?.stats.duplicates ?? 0) === 0; i++) await sleep(0.005);
      expect(protocols[1]!.stats.duplicates).toBe(1);
      release.setResult();
      expect(await attempt2).toEqual({ amount: 10, chargeNo: 1 });
      const third = await connect(port);
      expect(await third.call('charge', 10, { idempotent: key })).toEqual({ amount: 10, chargeNo: 1 });
      expect(charges).toBe(1);
      // another operation (a new key) runs normally
      expect(await third.call('charge', 1, { idempotent: new IdempotencyKey() })).toEqual({ amount: 1, chargeNo: 2 });
      expect(charges).toBe(2);
      await nonceStore.close();
    });
  });

  it('notifications both ways, including a server push to every connected client', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      const heard = fx.loop.createFuture<unknown>();
      router.onNotify('input', (p, ctx) => { heard.setResult([p, (ctx.peer as PeerIdentity).id]); });
      const { port, protocols } = await serve({ router });
      const clients = [await connect(port), await connect(port)];
      const got = clients.map((c) => {
        const f = fx.loop.createFuture<unknown>();
        c.onNotify('state', (p) => { f.setResult(p); });
        return f;
      });
      clients[0]!.notify('input', { key: 'w' });
      expect(await heard).toEqual([{ key: 'w' }, 'test-client']);
      expect(protocols).toHaveLength(2);
      for (const p of protocols) p.notify('state', { tick: 1 });
      expect(await Promise.all(got)).toEqual([{ tick: 1 }, { tick: 1 }]);
    });
  });

  it('when the server drops the connection every pending call fails with TransportClosed', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      const aborted: unknown[] = [];
      router.handle('hang', (_p, ctx) => untilAborted(ctx, aborted));
      const { port, protocols } = await serve({ router });
      const client = await connect(port);
      const calls = [client.call('hang', 1, { timeout: null }), client.call('hang', 2, { timeout: null })];
      for (let i = 0; i < 400 && protocols[0]?.rpc?.inFlight !== 2; i++) await sleep(0.005);
      protocols[0]!.abort();
      for (const c of calls) await expect(c).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      await expect(client.call('hang')).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      expect(aborted.map((e) => (e as TulipError).code)).toEqual(['TW_TRANSPORT_CLOSED', 'TW_TRANSPORT_CLOSED']);
    });
  });
});
