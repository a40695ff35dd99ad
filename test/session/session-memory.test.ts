/**
 * Sessions over the in-memory transport pair (real clock, short timeouts: MessageProtocol learns nonce-store
 * results from promises, which an autojump clock would not wait for). session-tls.test.ts runs the same rules over
 * real mutual-TLS sockets, with certificates.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { createMemoryPair } from '../../src/net/memory-transport.js';
import { sleep, waitFor } from '../../src/loop/index.js';
import { isCancelledError, TransportError } from '../../src/errors.js';
import { Keyring } from '../../src/wire/keyring.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import { RpcRouter } from '../../src/wire/rpc.js';
import { SessionServer } from '../../src/session/session-server.js';
import type { SessionServerOptions } from '../../src/session/session-server.js';
import { openSession } from '../../src/session/session.js';
import { SESSION_KIND } from '../../src/session/protocol.js';
import type { Session, SessionConnector, SessionOptions } from '../../src/session/session.js';

const fx = useLoop({ real: true });

function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 9));
  return k;
}

/** A "network" of memory pairs to whichever server is up (null: connection refused). */
function network() {
  const net = {
    server: null as SessionServer | null,
    connector: (async (factory) => {
      const server = net.server;
      if (server === null) throw new TransportError('connection refused (no server)');
      const client = factory();
      const [a] = createMemoryPair(fx.loop, client, server.protocolFactory()(), { shutdownTimeout: 0.2 });
      return [a, client];
    }) as SessionConnector,
  };
  return net;
}

// The idle timeout is far above the heartbeat, so a stalled CI machine never drops a link where no timeout is tested.
const fast = { heartbeatInterval: 0.05, idleTimeout: 5, logger: {} } as const;

function server(ring: Keyring, extra: Partial<SessionServerOptions> = {}): SessionServer {
  return new SessionServer({ keyring: ring, ...fast, ...extra });
}

function session(ring: Keyring, connector: SessionConnector, extra: Partial<SessionOptions> = {}): Session {
  return openSession({ keyring: ring, connector, ...fast, shutdownTimeout: 0.2,
    backoff: { base: 0.02, cap: 0.1 }, ...extra });
}

describe('client session over memory pairs', () => {
  it('connects, calls, receives pushed messages, measures RTT, and closes cleanly on cancel', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring);
      net.server.handle('add', ([a, b]: [number, number]) => a + b);
      const s = session(ring, net.connector);
      expect(await s.call('add', [2, 3])).toBe(5);
      expect(s.connected).toBe(true);
      expect(net.server.connections.size).toBe(1);
      net.server.broadcast('tick', { n: 1 });
      const it = s.messages[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value).toMatchObject({ method: 'tick', params: { n: 1 } });
      for (let i = 0; i < 300 && s.rtt === null; i++) await sleep(0.01); // a heartbeat round trip
      expect(s.rtt).not.toBeNull();
      expect(s.rtt!).toBeGreaterThanOrEqual(0);
      s.task.cancel();
      expect(await s.closed).toBeNull();
      expect(s.task.cancelled()).toBe(true);
      for (let i = 0; i < 300 && net.server.connections.size > 0; i++) await sleep(0.01);
      expect(net.server.connections.size).toBe(0);
      await expect(s.call('add', [1, 1])).rejects.toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect((await it.next()).done).toBe(true);
    });
  });

  it('queues calls while disconnected (bounded), then sends them when the server comes up', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      const s = session(ring, net.connector, { queueSize: 3 });
      const calls = [s.call('echo', 1), s.call('echo', 2), s.call('echo', 3)];
      for (let i = 0; i < 300 && s.attempts < 2; i++) await sleep(0.01);
      expect(s.queued).toBe(3);
      await expect(s.call('echo', 4)).rejects.toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(s.attempts).toBeGreaterThan(1); // it kept trying with backoff
      net.server = server(ring);
      net.server.handle('echo', (x: number) => x);
      expect(await Promise.all(calls)).toEqual([1, 2, 3]);
      await s.close();
    });
  });

  it('closing the session fails the queued calls with SessionClosed', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      const s = session(ring, net.connector);
      const c = s.call('never');
      await sleep(0.03);
      await s.close();
      await expect(c).rejects.toMatchObject({ code: 'TW_SESSION_CLOSED' });
    });
  });

  it('gives up after backoff.attempts failures: closed resolves with SessionClosed naming the cause', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      const s = session(ring, net.connector, { backoff: { base: 0.01, cap: 0.02, attempts: 3 } });
      const why = await s.closed;
      expect(why).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect((why as Error).message).toContain('4 failed connection attempts'); // the first attempt and 3 retries
      expect(((why as Error).cause as Error).message).toContain('connection refused');
      expect(s.attempts).toBe(4);
    });
  });

  it('server killed and restarted: the session reconnects, queued calls complete, idempotent calls run once', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      const nonceStore = new MemoryNonceStore({ clock: fx.loop.clock }); // shared by both server lives (like Redis)
      const router = new RpcRouter();
      let effects = 0;
      let killDuring = true;
      router.handle('charge', async (n: number) => {
        effects += 1;
        if (killDuring) {
          killDuring = false;
          // The side effect happened; the process dies before the reply goes out.
          net.server!.abort();
          net.server = null;
          fx.loop.callLater(0.1, () => { net.server = server(ring, { nonceStore, router }); });
        }
        return { charged: n };
      });
      router.handle('echo', (x: unknown) => x);
      net.server = server(ring, { nonceStore, router });
      const s = session(ring, net.connector);
      await s.whenConnected();
      const charge = s.call('charge', 10, { idempotent: true, timeout: 5 });
      while (s.connected) await sleep(0.005);
      const plain = s.call('echo', 'queued-after-kill'); // made while disconnected: waits in the queue
      expect(await charge).toEqual({ charged: 10 });
      expect(effects).toBe(1); // the retry carried the same nonce and was answered from the idempotency cache
      expect(await plain).toBe('queued-after-kill');
      expect(s.connects).toBe(2);
      await s.close();
    });
  });

  it('a non-idempotent call whose connection dies fails with TransportClosed (it may have run)', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring);
      net.server.handle('slow', async () => { await sleep(1); return 1; });
      const s = session(ring, net.connector);
      await s.whenConnected();
      const c = s.call('slow');
      await sleep(0.05);
      net.server.abort();
      await expect(c).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      await s.close();
    });
  });

  it('a server that stops answering is dropped with PeerTimeout at the idle timeout, and the client reconnects', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring, { heartbeatInterval: 10, idleTimeout: 10 });
      const s = session(ring, net.connector, { heartbeatInterval: 0.05, idleTimeout: 0.25 });
      const t0 = fx.loop.time(); // before the server's last message, so a stall after it cannot shorten the wait
      await s.whenConnected();
      const conn = [...net.server.connections][0]!;
      conn.transport!.pauseReading(); // the server process hangs: it reads nothing, answers no PING
      while (s.connects < 2) await sleep(0.02);
      expect(s.lastError).toMatchObject({ code: 'TW_PEER_TIMEOUT' });
      expect(fx.loop.time() - t0).toBeGreaterThanOrEqual(0.2);
      await s.close();
    });
  });

  it('the server drops a client that stops answering with PeerTimeout', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      const reasons: (Error | null)[] = [];
      net.server = server(ring, { heartbeatInterval: 0.05, idleTimeout: 0.25, onDisconnect: (_c, r) => reasons.push(r) });
      const s = session(ring, net.connector, { heartbeatInterval: 10, idleTimeout: 10 });
      await s.whenConnected();
      s.link!.transport!.pauseReading(); // the client hangs
      while (reasons.length === 0) await sleep(0.02);
      expect(reasons[0]).toMatchObject({ code: 'TW_PEER_TIMEOUT' });
      await s.close();
    });
  });
});

describe('RECONNECT notice (make-before-break) over memory pairs', () => {
  it('with a newer certificate the session connects again first, moves calls over, and the old link closes', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring);
      net.server.handle('echo', (x: number) => x);
      let cert = 'cert-1'; // stands for the certificate material; the memory connector ignores the TLS options
      const s = session(ring, net.connector, { tls: () => ({ cert }) });
      await s.whenConnected();
      const first = s.link!;
      const conn1 = [...net.server.connections][0]!;
      conn1.sendControl(SESSION_KIND.RECONNECT, [fx.loop.clock.epoch() + 60, 'test notice']);
      const results: number[] = [];
      for (let i = 0; i < 5; i++) results.push(await s.call<number>('echo', i));
      expect(s.link).toBe(first); // same certificate: nothing better to reconnect with yet
      expect(first.notice).toMatchObject({ reason: 'test notice' });
      cert = 'cert-2'; // the rotator renewed
      let i = 5;
      while (s.link === first) { results.push(await s.call<number>('echo', i++)); await sleep(0.02); }
      for (let j = 0; j < 5; j++) results.push(await s.call<number>('echo', i++));
      expect(results).toEqual([...Array(i).keys()]);
      while (!first.isLost) await sleep(0.01);
      expect(first.whyEnded()?.message).toContain('replaced by a newer connection');
      expect(s.connects).toBe(2);
      expect(net.server.connections.size).toBe(1);
      await s.close();
    });
  });

  it('if the new connection cannot be made, the session stays on the old one instead of giving up', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      const srv = server(ring);
      srv.handle('echo', (x: number) => x);
      net.server = srv;
      let cert = 'cert-1';
      const s = session(ring, net.connector, { tls: () => ({ cert }), backoff: { base: 0.01, cap: 0.02, attempts: 2 } });
      await s.whenConnected();
      const first = s.link!;
      net.server = null; // new connections are refused from now on
      cert = 'cert-2';
      [...srv.connections][0]!.sendControl(SESSION_KIND.RECONNECT, [fx.loop.clock.epoch() + 60, 'renew']);
      while (s.attempts < 4) await sleep(0.02);
      expect(s.closed.done()).toBe(false);
      expect(s.link).toBe(first);
      expect(await s.call('echo', 7)).toBe(7);
      await s.close();
    });
  });
});

describe('server limits and drain over memory pairs', () => {
  it('max connections per identity: the extra connection gets TooManyConnections', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring, { maxConnectionsPerIdentity: 2 });
      const a = session(ring, net.connector);
      const b = session(ring, net.connector);
      await a.whenConnected();
      await b.whenConnected();
      const c = session(ring, net.connector, { backoff: { base: 0.01, cap: 0.01, attempts: 1 } });
      const why = await c.closed;
      expect((why as Error).cause).toMatchObject({ code: 'TW_TOO_MANY_CONNECTIONS', remote: true });
      expect(net.server.counter.count('anonymous')).toBe(2);
      await a.close();
      await b.close();
      expect(net.server.counter.identities).toBe(0);
    });
  });

  it('max in-flight RPCs: one more is answered TooManyInFlight', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring, { maxInFlight: 2 });
      const release = fx.loop.createFuture<void>(); // holds the first two in flight until the third is refused
      net.server.handle('wait', async () => { await release; return 'ok'; });
      const s = session(ring, net.connector);
      await s.whenConnected();
      const calls = [s.call('wait'), s.call('wait'), s.call('wait')];
      await waitFor(calls[2]!, 5).then(() => {}, () => {});
      release.setResult(undefined);
      const settled = await Promise.allSettled(calls);
      expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'TW_TOO_MANY_IN_FLIGHT' });
      await s.close();
    });
  });

  it('token bucket: requests beyond the burst get RateLimited with retryAfter', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring, { rate: 2, burst: 3 }); // slow refill: a stall mid-burst adds no token
      net.server.handle('hit', () => 'ok');
      const s = session(ring, net.connector);
      await s.whenConnected();
      const settled = await Promise.allSettled([1, 2, 3, 4, 5].map(() => s.call('hit')));
      const ok = settled.filter((r) => r.status === 'fulfilled').length;
      const limited = settled.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
      expect(ok).toBe(3);
      expect(limited).toHaveLength(2);
      for (const e of limited) {
        expect(e).toMatchObject({ code: 'TW_RATE_LIMITED', remote: true });
        expect(e.retryAfter).toBeGreaterThan(0);
        expect(e.retryAfter).toBeLessThanOrEqual(0.5 * 2);
      }
      await sleep(0.6); // the bucket refills
      expect(await s.call('hit')).toBe('ok');
      await s.close();
    });
  });

  it('token bucket on notifications: the excess is dropped, with one RateLimited notice, never queued', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring, { rate: 2, burst: 3 }); // slow refill: a stall mid-burst adds no token
      let got = 0;
      net.server.onNotify('input', () => { got += 1; });
      const s = session(ring, net.connector);
      await s.whenConnected();
      await Promise.all([1, 2, 3, 4, 5, 6].map((i) => s.notify('input', i)));
      while (s.lastError === null) await sleep(0.01);
      expect(s.lastError).toMatchObject({ code: 'TW_RATE_LIMITED', remote: true });
      expect((s.lastError as unknown as { retryAfter: number }).retryAfter).toBeGreaterThan(0);
      await sleep(0.05);
      expect(got).toBe(3);
      expect([...net.server.connections][0]!.rateLimited).toBe(3);
      await s.close();
    });
  });

  it('drain: GOAWAY, in-flight calls finish, new connections are refused, everything closes', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring);
      let started = 0;
      net.server.handle('work', async (ms: number) => { started += 1; await sleep(ms / 1000); return ms; });
      const sessions = [0, 1, 2, 3, 4].map(() => session(ring, net.connector, { backoff: { base: 0.05, cap: 0.05 } }));
      for (const s of sessions) await s.whenConnected();
      const calls = sessions.map((s, i) => s.call('work', 50 + i * 10));
      while (started < 5) await sleep(0.005); // every call is running on the server
      const result = await net.server.drain({ timeout: 2 });
      expect(result.connections).toBe(5);
      expect(result.closedAtTimeout).toBe(0);
      expect(await Promise.all(calls)).toEqual([50, 60, 70, 80, 90]);
      expect(net.server.connections.size).toBe(0);
      for (const s of sessions) await s.close();
    });
  });

  it('drain timeout: calls still running fail with a typed error, drain returns in bounded time', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const net = network();
      net.server = server(ring);
      let started = 0;
      let cancelled = 0;
      net.server.handle('forever', async () => {
        started += 1;
        try {
          await sleep(60);
        } catch (err) {
          if (isCancelledError(err)) cancelled += 1;
          throw err;
        }
        return 'late';
      });
      const s = session(ring, net.connector);
      await s.whenConnected();
      const c = s.call('forever', null, { timeout: null });
      while (started === 0) await sleep(0.005); // the call is running on the server
      const t0 = fx.loop.time();
      const result = await net.server.drain({ timeout: 0.2 });
      expect(fx.loop.time() - t0).toBeLessThan(5); // far below the handler's 60 s, with room for a loaded machine
      expect(result.closedAtTimeout).toBe(1);
      // The server answered the running call before the cut: the caller reads why, and the handler was cancelled.
      await expect(c).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED', remote: true,
        message: 'the peer closed the connection while this call ran (drain timeout of 0.2 s reached with calls in flight); its handler was cancelled' });
      expect(cancelled).toBe(1);
      await s.close();
    });
  });
});
