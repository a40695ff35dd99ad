/**
 * Promised session behaviours that the other files left untested, over real mutual TLS on 127.0.0.1 with the
 * test CA's pinned certificates (test/support/ca.ts), as session-tls.test.ts does.
 */
import { connect as tcpConnect } from 'node:net';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { QUIET, useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { serveSessions } from '../../src/session/session-server.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x44);
const { ring, serve, open } = sx;
const quiet = QUIET;

describe('session cancellation', () => {
  it('a task cancelled before its first step still fails the queued calls and ends messages', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      server.handle('echo', (x: unknown) => x);
      const s = open(keyring, server.port!);
      const queued = s.call('echo', 1);
      const it = s.messages[Symbol.asyncIterator]();
      const next = it.next();
      s.task.cancel(); // before the loop ran the task's first step
      expect(await s.closed).toBeNull();
      const settled = await Promise.race([
        queued.then(() => 'resolved', (e: unknown) => e),
        sleep(2).then(() => 'still waiting after 2 s'),
      ]);
      expect(settled).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(await Promise.race([next, sleep(2).then(() => 'still waiting')])).toMatchObject({ done: true });
      await expect(s.call('echo', 2)).rejects.toMatchObject({ code: 'TW_SESSION_CLOSED' });
    });
  });
});

/** A loopback port nobody listens on (a session server opened and closed again). */
async function deadPort(keyring: Keyring): Promise<number> {
  const s = await serveSessions({ keyring, tls: sx.ca.serverOptions, ...quiet });
  const port = s.port!;
  await s.close();
  return port;
}

/** Settles `p` or says it was still pending after `bound` seconds (a bound, not a speed assertion). */
function within<T>(p: PromiseLike<T>, bound: number): Promise<unknown> {
  return Promise.race([
    Promise.resolve(p).then((v) => ({ value: v }), (e: unknown) => ({ error: e })),
    sleep(bound).then(() => 'still pending'),
  ]);
}

describe('calls while disconnected never hang', () => {
  it("a queued call's timeout bounds its wait for a connection: TimeoutError, and it leaves the queue", async () => {
    await fx.run(async () => {
      const keyring = ring();
      const s = open(keyring, await deadPort(keyring)); // retries forever (attempts Infinity)
      const c = s.call('echo', 1, { timeout: 0.3 });
      // The last attempt's failure is the cause and ends the message (the port refuses connections).
      const r = await within(c, 3) as { error: { code: string; message: string; cause: unknown } };
      expect(r.error).toMatchObject({ code: 'TW_TIMEOUT', message: expect.stringMatching(/^call echo found no connection within 0\.3 s; last connection attempt: connection refused by /) });
      expect(r.error.cause).toMatchObject({ code: 'TW_PEER_REJECTED' });
      expect(s.queued).toBe(0);
      expect(s.closed.done()).toBe(false); // the session itself keeps trying
    });
  });

  it("a queued notification's timeout bounds its wait for a connection too: TimeoutError, and it leaves the queue", async () => {
    await fx.run(async () => {
      const keyring = ring();
      const s = open(keyring, await deadPort(keyring)); // retries forever (attempts Infinity)
      const n = s.notify('input', 1, { timeout: 0.3 });
      expect(await within(n, 3)).toMatchObject({ error: { code: 'TW_TIMEOUT', message: expect.stringMatching(/^notify input found no connection within 0\.3 s; last connection attempt: /) } });
      expect(s.queued).toBe(0);
      expect(s.closed.done()).toBe(false);
    });
  });

  it('a sent call that gets no reply fails with TimeoutError naming its timeout, and the handler is cancelled', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      let aborted = 0;
      server.handle('stall', async (_p, ctx) => {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        aborted += 1;
      });
      const s = open(keyring, server.port!);
      await s.whenConnected();
      await expect(s.call('stall', null, { timeout: 0.3 })).rejects.toMatchObject({
        code: 'TW_TIMEOUT', message: 'call stall got no reply within 0.3 s' });
      while (aborted === 0) await sleep(0.01); // the CANCEL reached the server
      expect(s.connected).toBe(true);
    });
  });

  it("aborting a queued call's signal cancels it at once and frees its queue slot", async () => {
    await fx.run(async () => {
      const keyring = ring();
      const s = open(keyring, await deadPort(keyring), { queueSize: 1 });
      const ac = new AbortController();
      const c = s.call('echo', 1, { signal: ac.signal, timeout: null });
      while (s.queued === 0) await sleep(0.01);
      ac.abort();
      expect(await within(c, 3)).toMatchObject({ error: { code: 'TW_CANCELLED' } });
      expect(c.cancelled()).toBe(true);
      expect(s.queued).toBe(0);
    });
  });

  it('an idempotent call whose connection is lost and never comes back fails TimeoutError within its timeout', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      let started = 0;
      let finished = 0;
      // An idempotent request runs on after its connection is lost (its outcome is cached for a retry).
      server.handle('slow', async () => { started += 1; await sleep(1.5); finished += 1; return 'late'; });
      const s = open(keyring, server.port!);
      await s.whenConnected();
      const c = s.call('slow', null, { idempotent: true, timeout: 0.8 });
      while (started === 0) await sleep(0.01);
      server.abort(); // the server is gone for good; the retry waits in the queue
      expect(await within(c, 4)).toMatchObject({ error: { code: 'TW_TIMEOUT' } });
      expect(s.queued).toBe(0);
      while (finished === 0) await sleep(0.05);
    });
  });
});

/** A raw TCP connection to `port` that never starts its TLS handshake (a stalled or hostile client). */
async function silentTcp(port: number): Promise<Socket> {
  const sock = tcpConnect({ host: '127.0.0.1', port });
  sock.on('error', () => {});
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  return sock;
}

describe('server shutdown is bounded', () => {
  for (const how of ['drain', 'close'] as const) {
    it(`${how}() returns within its bound while a TCP client sits in its TLS handshake`, async () => {
      await fx.run(async () => {
        const keyring = ring();
        const server = await serve(keyring); // the handshake timeout is net's default, 60 s
        server.handle('echo', (x: unknown) => x);
        const s = open(keyring, server.port!);
        expect(await s.call('echo', 1)).toBe(1);
        const raw = await silentTcp(server.port!);
        const done: Promise<unknown> = how === 'drain' ? server.drain({ timeout: 0.3 }) : server.close();
        try {
          expect(await within(done, 4)).not.toBe('still pending');
        } finally {
          raw.destroy();
        }
        if (how === 'drain') expect(await done).toMatchObject({ connections: 1, closedAtTimeout: 0 });
        await s.close();
        await sleep(0.05);
        // The dropped handshake is reported, as a handshake timeout would have been; nothing else.
        for (const r of fx.take()) expect(r.message).toContain('TLS handshake failed');
      });
    });
  }
});

describe('certificate caps on the client side', () => {
  it("the client closes its connection at its own certificate's notAfter even when the server does not cap it", async () => {
    await fx.run(async () => {
      const keyring = ring();
      // A server whose TLS options name no peer identity: it knows no client notAfter, so only the client's own
      // rule can close the connection when the client certificate expires.
      const server = await serve(keyring, { tls: { ...sx.ca.serverOptions, [Symbol.for('tulipwire.peerIdentity')]: undefined } });
      const short = await sx.ca.issueClient('player/9', { lifetime: 2 });
      const s = open(keyring, server.port!, { tls: short.options, backoff: { base: 0.5, cap: 0.5 } });
      await s.whenConnected();
      const link = s.link!;
      expect([...server.connections][0]!.closesAt).toBeGreaterThan(short.issued.cert.notAfter + 3600);
      while (!link.isLost) await sleep(0.02);
      const at = fx.loop.clock.epoch();
      expect(link.whyEnded()).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(link.whyEnded()!.message).toContain('certificate expiry');
      expect(at).toBeGreaterThanOrEqual(short.issued.cert.notAfter - 0.05);
      expect(at).toBeLessThan(short.issued.cert.notAfter + 1);
      await s.close();
      await sleep(0.1);
      fx.take(); // reconnects with the expired certificate are refused by the server's TLS, which reports them
    });
  });
});

describe('per-peer limits over mutual TLS', () => {
  it('connections per certificate identity: the extra one fails with TooManyConnections, other identities still get in', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring, { maxConnectionsPerIdentity: 1 });
      server.handle('echo', (x: unknown) => x);
      const a = open(keyring, server.port!);
      expect(await a.call('echo', 'a')).toBe('a');
      const again = open(keyring, server.port!, { backoff: { base: 0.01, cap: 0.01, attempts: 1 } });
      const why = await again.closed;
      expect(why).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect((why as Error).cause).toMatchObject({ code: 'TW_TOO_MANY_CONNECTIONS', remote: true });
      expect(again.connects).toBe(0);
      await expect(again.call('echo', 'x')).rejects.toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(server.counter.count(sx.ca.client.identity)).toBe(1);
      const other = await sx.ca.issueClient('player/10');
      const b = open(keyring, server.port!, { tls: other.options });
      expect(await b.call('echo', 'b')).toBe('b');
      expect(server.counter.count(other.issued.identity)).toBe(1);
      await a.close();
      while (server.counter.count(sx.ca.client.identity) > 0) await sleep(0.01);
    });
  });

  it('rate limit: a refused request is answered RateLimited with retryAfter, and the connection stays up', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring, { rate: 1, burst: 2 });
      server.handle('hit', () => 'ok');
      const s = open(keyring, server.port!);
      await s.whenConnected();
      const settled = await Promise.allSettled([1, 2, 3].map(() => s.call('hit')));
      expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      const err = (settled[2] as PromiseRejectedResult).reason as { code: string; retryAfter: number };
      expect(err).toMatchObject({ code: 'TW_RATE_LIMITED', remote: true });
      expect(err.retryAfter).toBeGreaterThan(0);
      expect(err.retryAfter).toBeLessThanOrEqual(1);
      const link = s.link;
      await sleep(err.retryAfter + 0.05);
      expect(await s.call('hit')).toBe('ok');
      expect(s.link).toBe(link); // heartbeats are never limited: the same connection served throughout
    });
  });
});

describe('GOAWAY over mutual TLS', () => {
  it('after a GOAWAY no new call goes to that connection; its call finishes; the session moves to the successor', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const first = await serve(keyring);
      const port = first.port!;
      let started = 0;
      first.handle('work', async () => { started += 1; await sleep(0.4); return 'first'; });
      first.handle('who', () => 'first');
      const s = open(keyring, port, { backoff: { base: 0.05, cap: 0.1 } });
      await s.whenConnected();
      const old = s.link!;
      const work = s.call('work');
      while (started === 0) await sleep(0.005);
      const drained = first.drain({ timeout: 3 });
      while (old.goaway === null) await sleep(0.005);
      expect(old.goaway).toMatchObject({ code: 'TW_SESSION_CLOSED', timeout: 3 });
      expect(s.connected).toBe(false);
      const later = s.call('who', null, { timeout: 5 }); // must wait for the successor, not use the old connection
      expect(await work).toBe('first');
      expect(await drained).toMatchObject({ connections: 1, closedInTime: 1, closedAtTimeout: 0 });
      const second = await serve(keyring, { port });
      second.handle('who', () => 'second');
      expect(await later).toBe('second');
      expect(s.connects).toBe(2);
    });
  });
});

describe('giving up', () => {
  it('after backoff.attempts retries the session ends: closed names the failed attempts and their last error', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const s = open(keyring, await deadPort(keyring), { backoff: { base: 0.01, cap: 0.02, attempts: 2 } });
      const queued = s.call('echo', 1, { timeout: null });
      const why = await s.closed;
      expect(s.attempts).toBe(3); // the first attempt and 2 retries
      expect(why).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect((why as Error).message).toContain('gave up after 3 failed connection attempts');
      expect((why as Error).cause).toBe(s.lastError);
      expect(s.lastError).toMatchObject({ code: 'TW_PEER_REJECTED' });
      await expect(queued).rejects.toBe(why); // the queued call fails with the reason, not a generic close
      await expect(s.whenConnected()).rejects.toBe(why);
    });
  });
});

describe('make-before-break over mutual TLS', () => {
  it('no server-pushed message is lost across the switch, and no call runs twice', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      let runs = 0;
      server.handle('count', (n: number) => { runs += 1; return n; });
      const renewed = await sx.ca.issueClient('test-client'); // the same identity, a new certificate
      let current = sx.ca.clientOptions;
      const s = open(keyring, server.port!, { tls: () => current });
      await s.whenConnected();
      const first = s.link!;
      const seen = new Set<number>();
      const reader = (async () => {
        for await (const m of s.messages) seen.add(m.params as number);
      })();
      let n = 0;
      let ticking = true;
      const tick = (): void => {
        if (!ticking) return;
        server.broadcast('tick', n++);
        fx.loop.callLater(0.003, tick);
      };
      tick();
      [...server.connections][0]!.sendControl(8 /* RECONNECT */, [fx.loop.clock.epoch() + 60, 'renew']);
      current = renewed.options;
      const results: number[] = [];
      let i = 0;
      while (!first.isLost || results.length < 20) results.push(await s.call<number>('count', i++));
      await sleep(0.1);
      ticking = false;
      const last = n - 1;
      while (!seen.has(last)) await sleep(0.01);
      expect(s.connects).toBe(2);
      expect(results).toEqual([...Array(i).keys()]);
      expect(runs).toBe(i);
      const missing = [...Array(last + 1).keys()].filter((k) => !seen.has(k));
      expect(missing).toEqual([]);
      await s.close();
      await reader;
    });
  });
});

describe('drain accounting and close', () => {
  it('drain({timeout: 0}): idle connections count as closed in time, only one with a call running as closed at the timeout', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      let started = 0;
      server.handle('forever', async () => { started += 1; await sleep(30); });
      const idle = open(keyring, server.port!);
      const busy = open(keyring, server.port!);
      await idle.whenConnected();
      await busy.whenConnected();
      const c = busy.call('forever', null, { timeout: null });
      while (started === 0) await sleep(0.005);
      const result = await server.drain({ timeout: 0 });
      expect(result).toEqual({ connections: 2, closedInTime: 1, closedAtTimeout: 1 });
      await expect(c).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
    });
  });

  it('close() is idempotent and bounded: concurrent closes and a cancel all end the same way', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      const s = open(keyring, server.port!);
      await s.whenConnected();
      const all = Promise.all([s.close(), s.close(), Promise.resolve(s.task.cancel())]);
      expect(await within(all, 3)).not.toBe('still pending');
      expect(await s.closed).toBeNull();
      expect(await within(s.close(), 1)).toEqual({ value: undefined });
      await server.close();
      expect(await within(server.close(), 1)).toEqual({ value: undefined });
    });
  });
});

describe('heartbeats and server-initiated calls over mutual TLS', () => {
  it('a quiet healthy connection stays up with idleTimeout a few heartbeats long, and RTT is measured on both sides', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const hb = { heartbeatInterval: 0.05, idleTimeout: 0.5 };
      const server = await serve(keyring, hb);
      const s = open(keyring, server.port!, hb);
      await s.whenConnected();
      await sleep(1.2); // more than twice the idle timeout, with no traffic but heartbeats
      expect(s.connects).toBe(1);
      expect(s.connected).toBe(true);
      expect(s.rtt).not.toBeNull();
      expect([...server.connections][0]!.rtt).not.toBeNull();
    });
  });

  it("the server calls the client's handler and notifies its onNotify handler (which then skips messages)", async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      const s = open(keyring, server.port!);
      const got: unknown[] = [];
      s.handle('double', (n: number) => n * 2);
      s.onNotify('hint', (p: unknown) => { got.push(p); });
      await s.whenConnected();
      const conn = [...server.connections][0]!;
      expect(await server.call(conn, 'double', 21)).toBe(42);
      conn.notify('hint', 'a');
      server.broadcast('other', 'b');
      const it = s.messages[Symbol.asyncIterator]();
      expect((await it.next()).value).toMatchObject({ method: 'other', params: 'b' });
      expect(got).toEqual(['a']);
    });
  });
});
