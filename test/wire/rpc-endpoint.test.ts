/**
 * RpcEndpoint logic on the virtual clock, over an in-memory link that runs every message through the real codec
 * and, like MessageProtocol, a shared nonce set (a reused nonce goes to `duplicate`). The same behaviours are
 * checked over real mTLS in rpc.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/loop/index.js';
import { VirtualClock } from '../../src/loop/clock.js';
import { encode, decode } from '../../src/wire/codec.js';
import { IdempotencyCache, IdempotencyKey } from '../../src/wire/idempotency.js';
import { RPC_KIND, RpcEndpoint, RpcRouter, errorFromWire } from '../../src/wire/rpc.js';
import type { RpcContext, RpcEndpointOptions, RpcLink, RpcMessageMeta, RpcOutcome, RpcSecurity } from '../../src/wire/rpc.js';
import type { Future } from '../../src/loop/index.js';
import { TulipError, RpcError, ReplayedMessage } from '../../src/errors.js';
import type { BadData } from '../../src/errors.js';
import { sleep } from '../../src/loop/index.js';

interface Wire { kind: number; message: unknown; nonce: Buffer }

/** One direction-pair of in-memory links; `seen` is the receiving side's nonce store (shared across "connections"). */
function memoryPair(loop: EventLoop, seen: Set<string>, opts: { a?: RpcEndpointOptions; b?: RpcEndpointOptions; peerA?: unknown } = {}) {
  const log: Wire[] = [];
  const rejected: { side: 'a' | 'b'; error: BadData }[] = [];
  let open = true;
  let a!: RpcEndpoint;
  let b!: RpcEndpoint;
  const mk = (side: 'a' | 'b', peer: unknown): RpcLink => ({
    loop,
    send(message, o) {
      if (!open) throw new TulipError('closed');
      const bytes = Buffer.from(encode(message));
      const nonce = o.nonce !== undefined ? Buffer.from(o.nonce) : randomBytes(16);
      const issuedAt = loop.clock.epoch();
      const meta: RpcMessageMeta = { kind: o.kind, kid: 'k1', issuedAt, expiresAt: issuedAt + (o.ttl ?? 30), nonce, peer };
      if (side === 'a') log.push({ kind: o.kind, message: decode(bytes), nonce });
      loop.callSoon(() => {
        if (!open) return;
        const to = side === 'a' ? b : a;
        const m = decode(bytes);
        const k = nonce.toString('hex');
        if (side === 'a' && seen.has(k)) {
          if (!to.duplicate(m, meta)) rejected.push({ side: 'b', error: new ReplayedMessage('duplicate nonce') });
          return;
        }
        if (side === 'a') seen.add(k);
        to.receive(m, meta);
      });
    },
    reject(error) { rejected.push({ side, error }); },
  });
  // meta.peer is the sender's identity as the receiver sees it
  a = new RpcEndpoint(mk('a', opts.peerA ?? { fingerprint: 'client-fp' }), opts.a);
  b = new RpcEndpoint(mk('b', { fingerprint: 'server-fp' }), opts.b);
  return { a, b, log, rejected, close() { open = false; a.close(); b.close(); } };
}

let loop: EventLoop;
afterEach(() => {
  if (loop !== undefined && !loop.isClosed()) loop.close();
});

function run<T>(fn: () => Promise<T>): Promise<T> {
  loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
  return loop.runUntilComplete(loop.createTask(fn));
}

/**
 * A handler body that waits until ctx.signal aborts, on a library Future (under autojump a foreign promise is not
 * waited for by the loop), recording the abort reason.
 */
function untilAborted(ctx: RpcContext, record: unknown[]): Future<never> {
  const f = loop.createFuture<never>();
  ctx.signal.addEventListener('abort', () => {
    record.push(ctx.signal.reason);
    if (!f.done()) f.setException(ctx.signal.reason);
  });
  return f;
}

class Roles implements RpcSecurity {
  readonly roles: string[];
  constructor(roles: string[]) { this.roles = roles; }
  hasRole(r: string) { return this.roles.includes(r); }
}

describe('RpcEndpoint over a memory link', () => {
  it('round-trips results, both directions, and keeps many concurrent calls apart', async () => {
    await run(async () => {
      const { a, b } = memoryPair(loop, new Set());
      const started: number[] = [];
      b.handle('add', async ([x, y]: [number, number]) => { started.push(x); await sleep((10 - x) * 0.01); return x + y; });
      a.handle('whoami', () => 'client');
      const calls = Array.from({ length: 10 }, (_, i) => a.call<number>('add', [i, 100]));
      const results = await Promise.all(calls);
      expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i + 100));
      expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(await b.call('whoami')).toBe('client');
      expect(a.pendingCalls).toBe(0);
      expect(b.inFlight).toBe(0);
    });
  });

  it('rebuilds TW_ errors as their class with fields, other codes as RpcError, plain errors as internal', async () => {
    await run(async () => {
      const reported: unknown[] = [];
      loop.setExceptionHandler((_l, ctx) => { reported.push(ctx.exception); });
      const { a, b } = memoryPair(loop, new Set());
      b.handle('app', () => { throw new RpcError('room is full', { remoteCode: 'GAME_ROOM_FULL', data: { room: 3 } }); });
      b.handle('boom', () => { throw new Error('secret detail'); });
      await expect(a.call('nope')).rejects.toMatchObject({ code: 'TW_METHOD_NOT_FOUND', remote: true, method: 'nope' });
      await expect(a.call('app')).rejects.toMatchObject({ code: 'TW_RPC', remoteCode: 'GAME_ROOM_FULL', data: { room: 3 } });
      await expect(a.call('boom')).rejects.toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_RPC', message: 'internal error' });
      expect(reported).toHaveLength(1);
      expect((reported[0] as Error).message).toBe('secret detail');
      // the endpoint keeps serving after a throw
      b.handle('ok', () => 1);
      expect(await a.call('ok')).toBe(1);
      const rl = errorFromWire('TW_RATE_LIMITED', 'slow down', { retryAfter: 2.5, fatal: true });
      expect(rl).toMatchObject({ code: 'TW_RATE_LIMITED', retryAfter: 2.5, remote: true, message: 'slow down' });
    });
  });

  it('cancelling the Future aborts the handler signal and the peer answers TW_CANCELLED', async () => {
    await run(async () => {
      const { a, b, log } = memoryPair(loop, new Set());
      const aborted: unknown[] = [];
      const entered = loop.createFuture<void>();
      b.handle('slow', (_p, ctx) => { entered.setResult(); return untilAborted(ctx, aborted); });
      const f = a.call('slow', null, { timeout: null });
      await entered;
      f.cancel();
      await sleep(0.01);
      expect(f.cancelled()).toBe(true);
      expect(aborted).toMatchObject([{ code: 'TW_CANCELLED' }]);
      expect(log.map((w) => w.kind)).toEqual([RPC_KIND.REQUEST, RPC_KIND.CANCEL]);
      expect(b.inFlight).toBe(0);
    });
  });

  it('an AbortSignal cancels the call', async () => {
    await run(async () => {
      const { a, b } = memoryPair(loop, new Set());
      const aborted: unknown[] = [];
      b.handle('slow', (_p, ctx) => untilAborted(ctx, aborted));
      const ac = new AbortController();
      const f = a.call('slow', null, { signal: ac.signal });
      await sleep(0.01);
      ac.abort();
      await sleep(0.01);
      expect(f.cancelled()).toBe(true);
      expect(aborted).toMatchObject([{ code: 'TW_CANCELLED' }]);
      expect(b.inFlight).toBe(0);
    });
  });

  it('times out with TimeoutError at the exact virtual time and sends a CANCEL', async () => {
    await run(async () => {
      const { a, b, log } = memoryPair(loop, new Set());
      const handlerSaw: unknown[] = [];
      b.handle('never', (_p, ctx) => untilAborted(ctx, handlerSaw));
      const t0 = loop.time();
      await expect(a.call('never', null, { timeout: 2 })).rejects.toMatchObject({ code: 'TW_TIMEOUT', remote: false });
      expect(loop.time() - t0).toBeCloseTo(2, 6);
      await sleep(0.01);
      expect(handlerSaw).toMatchObject([{ code: 'TW_CANCELLED' }]);
      expect(log.at(-1)?.kind).toBe(RPC_KIND.CANCEL);
    });
  });

  it('Forbidden unless the security context holds every role; the factory sees the token', async () => {
    await run(async () => {
      const tokens: (string | null)[] = [];
      const { a, b } = memoryPair(loop, new Set(), {
        a: { token: () => 'tok-user' },
        b: { securityContext: ({ token }) => { tokens.push(token); return Promise.resolve(new Roles(token === 'tok-user' ? ['user'] : [])); } },
      });
      let ran = 0;
      b.handle('admin.reset', () => { ran++; }, { roles: ['user', 'admin'] });
      b.handle('me', (_p, ctx) => (ctx.security as Roles).roles, { roles: 'user' });
      await expect(a.call('admin.reset')).rejects.toMatchObject({ code: 'TW_FORBIDDEN', role: 'admin', remote: true });
      expect(ran).toBe(0);
      expect(await a.call('me')).toEqual(['user']);
      expect(tokens).toEqual(['tok-user', 'tok-user']);
    });
  });

  it('the security factory refusing (TokenExpired) is the error reply', async () => {
    await run(async () => {
      const { a, b } = memoryPair(loop, new Set(), {
        b: { securityContext: () => { throw errorFromWire('TW_TOKEN_EXPIRED', 'token expired 3 s ago', null); } },
      });
      b.handle('x', () => 1);
      await expect(a.call('x')).rejects.toMatchObject({ code: 'TW_TOKEN_EXPIRED' });
    });
  });

  it('an idempotent request runs once: a retry while it runs waits, a later retry gets the cached outcome', async () => {
    await run(async () => {
      const seen = new Set<string>();
      const { a, b, rejected } = memoryPair(loop, seen);
      let effects = 0;
      b.handle('charge', async (amount: number) => { effects++; await sleep(1); return { charged: amount, n: effects }; });
      const key = new IdempotencyKey();
      const first = a.call('charge', 5, { idempotent: key });
      await sleep(0.1);
      const second = a.call('charge', 5, { idempotent: key });   // same nonce while the first still runs
      expect(await first).toEqual({ charged: 5, n: 1 });
      expect(await second).toEqual({ charged: 5, n: 1 });
      expect(await a.call('charge', 5, { idempotent: key })).toEqual({ charged: 5, n: 1 });
      expect(effects).toBe(1);
      expect(rejected).toEqual([]);
    });
  });

  it('retries on a new connection with a shared nonce store and cache; errors are cached too', async () => {
    await run(async () => {
      const seen = new Set<string>();
      const cache = new IdempotencyCache<RpcOutcome>({ clock: loop.clock });
      const router = new RpcRouter();
      let effects = 0;
      router.handle('once', () => { effects++; return 'done'; });
      router.handle('fails', () => { effects++; throw new RpcError('out of stock', { remoteCode: 'SHOP_OUT', data: null }); });
      const c1 = memoryPair(loop, seen, { b: { router, idempotencyCache: cache } });
      const key = new IdempotencyKey();
      const ekey = new IdempotencyKey();
      expect(await c1.a.call('once', null, { idempotent: key })).toBe('done');
      await expect(c1.a.call('fails', null, { idempotent: ekey })).rejects.toMatchObject({ remoteCode: 'SHOP_OUT' });
      c1.close();
      const c2 = memoryPair(loop, seen, { b: { router, idempotencyCache: cache } });
      expect(await c2.a.call('once', null, { idempotent: key })).toBe('done');
      await expect(c2.a.call('fails', null, { idempotent: ekey })).rejects.toMatchObject({ remoteCode: 'SHOP_OUT' });
      expect(effects).toBe(2);
      // a different peer presenting the same nonce finds nothing of the first peer's: refused, not run
      const c3 = memoryPair(loop, seen, { b: { router, idempotencyCache: cache }, peerA: { fingerprint: 'intruder' } });
      await expect(c3.a.call('once', null, { idempotent: key })).rejects.toMatchObject({ code: 'TW_REPLAYED_MESSAGE' });
      expect(effects).toBe(2);
      // a key reused for another method never gets the first method's outcome (nor runs it)
      await expect(c2.a.call('fails', null, { idempotent: key })).rejects.toMatchObject({ code: 'TW_REPLAYED_MESSAGE' });
      expect(effects).toBe(2);
    });
  });

  it('a retry after the first attempt expired is refused locally (the nonce may be forgotten)', async () => {
    await run(async () => {
      const { a, b } = memoryPair(loop, new Set());
      b.handle('x', () => 1);
      const key = new IdempotencyKey();
      expect(await a.call('x', null, { idempotent: key, ttl: 5 })).toBe(1);
      await sleep(6);
      await expect(a.call('x', null, { idempotent: key })).rejects.toMatchObject({ code: 'TW_TIMEOUT' });
    });
  });

  it('a reused nonce whose outcome is not cached (another process, evicted) is refused, never run', async () => {
    await run(async () => {
      const seen = new Set<string>();
      const { a, b } = memoryPair(loop, seen);
      let effects = 0;
      b.handle('x', () => ++effects);
      // the nonce store already holds the nonce, this process's cache does not
      const key = new IdempotencyKey();
      seen.add(key.nonce.toString('hex'));
      const f = a.call('x', null, { idempotent: key });
      expect(await f.then(() => 'ran', (e: TulipError) => e.code)).toBe('TW_REPLAYED_MESSAGE');
      expect(effects).toBe(0);
    });
  });

  it('notifications both ways; roles on a notification give a nil-id Forbidden error', async () => {
    await run(async () => {
      const unmatched: TulipError[] = [];
      const { a, b } = memoryPair(loop, new Set(), { a: { onUnmatchedError: (e) => unmatched.push(e) }, b: { securityContext: () => new Roles([]) } });
      const gotB: unknown[] = [];
      const gotA: unknown[] = [];
      b.onNotify('tick', (p) => { gotB.push(p); });
      b.onNotify('admin.note', (p) => { gotB.push(p); }, { roles: 'admin' });
      a.onNotify('pushed', (p, ctx) => { gotA.push([p, ctx.method]); });
      a.notify('tick', { n: 1 });
      a.notify('unknown', 1);
      a.notify('admin.note', 'x');
      b.notify('pushed', [1, 2]);
      await sleep(0.01);
      expect(gotB).toEqual([{ n: 1 }]);
      expect(gotA).toEqual([[[1, 2], 'pushed']]);
      expect(unmatched.map((e) => [e.code, (e as unknown as { role: string }).role])).toEqual([['TW_FORBIDDEN', 'admin']]);
    });
  });

  it('close fails every pending call with TransportClosed and aborts non-idempotent handlers', async () => {
    await run(async () => {
      const { a, b, close } = memoryPair(loop, new Set());
      const reasons: unknown[] = [];
      b.handle('slow', (_p, ctx) => untilAborted(ctx, reasons));
      const calls = [a.call('slow', 1, { timeout: null }), a.call('slow', 2, { timeout: null })];
      await sleep(0.01);
      close();
      for (const c of calls) await expect(c).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      await expect(a.call('slow')).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      expect(() => a.notify('x')).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_CLOSED' }));
      await sleep(0.01);
      expect(reasons).toHaveLength(2);
    });
  });

  it('malformed RPC payloads are rejected (counted) and answered when the id is readable', async () => {
    await run(async () => {
      const unmatched: TulipError[] = [];
      const { a, b, rejected, log } = memoryPair(loop, new Set(), { a: { onUnmatchedError: (e) => unmatched.push(e) } });
      b.handle('x', () => 1);
      // Drive b directly with bad shapes as if they had been verified.
      const meta = (kind: number): RpcMessageMeta => ({ kind, kid: 'k1', issuedAt: 0, expiresAt: 1e12, nonce: randomBytes(16), peer: null });
      b.receive([7, 42, null], meta(RPC_KIND.REQUEST));
      b.receive('junk', meta(RPC_KIND.REQUEST));
      b.receive([9, 'x', null, 'not-a-map'], meta(RPC_KIND.REQUEST));
      b.receive({ id: 1 }, meta(RPC_KIND.RESPONSE));
      b.receive([1], meta(RPC_KIND.ERROR));
      b.receive(['x'], meta(RPC_KIND.NOTIFY));
      b.receive('x', meta(RPC_KIND.CANCEL));
      expect(b.receive([1], meta(16))).toBe(false);
      expect(rejected.map((r) => [r.side, r.error.code])).toEqual(Array(7).fill(['b', 'TW_BAD_PAYLOAD']));
      await sleep(0.01);
      // the unreadable request got a nil-id error; the readable ones were answered to their ids (matching no call)
      expect(unmatched.map((e) => e.code)).toEqual(['TW_BAD_PAYLOAD']);
      expect(await a.call('x')).toBe(1);
      expect(log).toHaveLength(1);
    });
  });

  it('refuses a request beyond maxInFlight with TooManyInFlight', async () => {
    await run(async () => {
      const { a, b } = memoryPair(loop, new Set(), { b: { maxInFlight: 2 } });
      b.handle('slow', () => sleep(1, 'ok'));
      const fs = [a.call('slow'), a.call('slow'), a.call('slow')];
      const settled = await Promise.allSettled(fs);
      expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as TulipError).code))).toEqual(['ok', 'ok', 'TW_TOO_MANY_IN_FLIGHT']);
    });
  });
});
