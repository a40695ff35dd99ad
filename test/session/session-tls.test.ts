/**
 * Sessions over real mutual TLS on 127.0.0.1 with the test CA's pinned certificates: server restarts under a
 * session, dead peers, connections capped at the client certificate's notAfter (with a RECONNECT notice first and
 * a renewed certificate from a real CertRotator), and a drain under 100 sessions.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import { CertRotator } from '../../src/pki/rotator.js';
import type { PeerIdentity } from '../../src/pki/index.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import { RpcRouter } from '../../src/wire/rpc.js';
import type { SessionConnection, SessionServer } from '../../src/session/session-server.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x33);
const { ring, serve, open, rotators } = sx;
/**
 * The renewed certificates live a minute: only the first certificate's expiry is under test. With the first one's
 * lifetime a second renewal could land inside a test's loop (notAfter rounds up to a whole second) and start another
 * make-before-break handshake that the teardown then cuts, which the server rightly reports as a failed handshake.
 */
const RENEWED = { lifetime: 60 };

describe('sessions over mutual TLS', () => {
  it('calls with the certificate identity; server-pushed messages; RTT; close_notify on cancel', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      server.handle('whoami', (_p, ctx) => (ctx.peer as PeerIdentity).identity);
      const s = open(keyring, server.port!);
      expect(await s.call('whoami')).toBe(sx.ca.client.identity);
      expect((s.peer as PeerIdentity).dnsNames).toContain('localhost');
      const conn = [...server.connections][0]!;
      expect(conn.identity).toBe(sx.ca.client.identity);
      expect(conn.closesAt).toBeCloseTo(sx.ca.client.cert.notAfter, 0);
      expect(server.broadcast('news', 'hello')).toBe(1);
      const it = s.messages[Symbol.asyncIterator]();
      expect((await it.next()).value).toMatchObject({ method: 'news', params: 'hello' });
      while (s.rtt === null) await sleep(0.05);
      expect(s.rtt).toBeGreaterThan(0);
      await s.close();
      while (server.connections.size > 0) await sleep(0.01);
    });
  });

  it('cancelling the task: close_notify, bounded by shutdownTimeout, then abort (a peer that never answers the close)', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring, { heartbeatInterval: 10, idleTimeout: 10 });
      const s = open(keyring, server.port!, { shutdownTimeout: 0.3, heartbeatInterval: 10, idleTimeout: 10 });
      await s.whenConnected();
      const conn = [...server.connections][0]!;
      conn.transport!.pauseReading(); // the server never reads our close_notify, so it never closes its side
      const pending = s.call('never-answered', null, { timeout: null });
      const t0 = fx.loop.time();
      s.task.cancel();
      expect(await s.closed).toBeNull();
      const took = fx.loop.time() - t0;
      expect(took).toBeGreaterThanOrEqual(0.25); // it did wait for the close to finish…
      expect(took).toBeLessThan(0.3 + 2);        // …but no longer than the shutdown timeout (plus scheduling slack)
      expect(s.link).toBeNull();
      await expect(pending).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      conn.transport!.resumeReading();
      while (server.connections.size > 0) await sleep(0.02);
    });
  });

  it('server killed and restarted on the same port: reconnects, queued calls complete, idempotent call runs once', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const nonceStore = new MemoryNonceStore({ clock: fx.loop.clock }); // survives the restart, as Redis would
      const router = new RpcRouter();
      let effects = 0;
      let crash: (() => void) | null = null;
      router.handle('transfer', async (amount: number) => {
        effects += 1;
        crash?.(); // the first run crashes the server after the side effect, before the reply
        crash = null;
        return { moved: amount };
      });
      router.handle('echo', (x: unknown) => x);
      const first = await serve(keyring, { nonceStore, router });
      const port = first.port!;
      const s = open(keyring, port);
      await s.whenConnected();
      let second: SessionServer | null = null;
      crash = () => {
        first.abort();
        fx.loop.callLater(0.3, () => {
          void serve(keyring, { nonceStore, router, port }).then((v) => { second = v; });
        });
      };
      const transfer = s.call('transfer', 25, { idempotent: true, timeout: 10 });
      while (s.connected) await sleep(0.005);
      const queued = [s.call('echo', 'a'), s.call('echo', 'b')]; // made while the server is down
      // Both wait in the queue (with the transfer's retry: 3), the restart is 0.3 s away.
      while (s.queued < 3 && !s.connected) await sleep(0.005);
      expect(s.queued === 3 || s.connected).toBe(true);
      expect(await transfer).toEqual({ moved: 25 });
      expect(await Promise.all(queued)).toEqual(['a', 'b']);
      expect(effects).toBe(1);
      expect(second).not.toBeNull();
      expect(s.connects).toBe(2);
      expect(s.attempts).toBeGreaterThan(2); // refused attempts while the server was down, with backoff
    });
  });

  it('the server drops a client that stops answering with PeerTimeout; the client reconnects', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const reasons: (Error | null)[] = [];
      const server = await serve(keyring, { heartbeatInterval: 0.05, idleTimeout: 0.3, onDisconnect: (_c, r) => reasons.push(r) });
      const s = open(keyring, server.port!, { heartbeatInterval: 10, idleTimeout: 10 });
      await s.whenConnected();
      // The client process hangs: it stops reading, so it answers no PING and the server hears nothing.
      s.link!.transport!.pauseReading();
      while (reasons.length === 0) await sleep(0.02);
      expect(reasons[0]).toMatchObject({ code: 'TW_PEER_TIMEOUT' });
      // The client notices the close once it reads again, and reconnects.
      s.link!.transport!.resumeReading();
      while (s.connects < 2) await sleep(0.02);
      expect(server.connections.size).toBe(1);
    });
  });

  it('no connection outlives the client certificate: RECONNECT notice, renewed certificate, old connection closed by notAfter, no call lost', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const lifetime = 4;
      const initial = await sx.ca.ca.issueClient({ identity: 'player/7', lifetime });
      const rotator = new CertRotator({ loop: fx.loop, initial, renew: (c) => sx.ca.ca.renew(c, RENEWED) });
      // The certificates each renewal brought.
      const renewed: string[] = [];
      rotator.subscribe((issued) => renewed.push(issued.cert.serial));
      rotators.push(rotator);
      rotator.start();
      const notices: number[] = [];
      const conns: { serial: string; closedAt: number | null; notAfter: number }[] = [];
      const byConn = new Map<SessionConnection, (typeof conns)[number]>();
      let served = 0;
      const server = await serve(keyring, {
        reconnectNotice: 1.5,
        onConnection: (c) => {
          const e = { serial: (c.peer as PeerIdentity).serial, closedAt: null, notAfter: (c.peer as PeerIdentity).notAfter };
          conns.push(e);
          byConn.set(c, e);
        },
        onDisconnect: (c) => { byConn.get(c)!.closedAt = fx.loop.clock.epoch(); },
      });
      server.handle('count', (n: number) => { served += 1; return n; });
      const hooks: string[] = [];
      const s = open(keyring, server.port!, { tls: undefined, rotator, tlsBuild: { servername: 'localhost', pin: sx.ca.ca.rootPin },
        onConnected: (c) => hooks.push(`connected ${c.connects}`), onDisconnected: () => hooks.push('disconnected') });
      await s.whenConnected();
      s.link!.reconnectReceived = ((orig) => function (this: typeof s.link, notice) {
        notices.push(notice.closeAt);
        orig.call(this, notice);
      })(s.link!.reconnectReceived);
      // Calls all through the rotation, one every 50 ms, until the first certificate has expired.
      const results: number[] = [];
      let n = 0;
      while (fx.loop.clock.epoch() < initial.cert.notAfter + 0.5) {
        results.push(await s.call<number>('count', n++));
        await sleep(0.05);
      }
      expect(results).toEqual([...Array(n).keys()]); // every call answered, in order: nothing lost
      expect(served).toBe(n);
      expect(notices).toEqual([initial.cert.notAfter]);
      expect(conns.length).toBeGreaterThanOrEqual(2);
      expect(conns[1]!.serial).not.toBe(conns[0]!.serial); // back with the renewed certificate
      expect(conns[1]!.serial).toBe(renewed[0]);
      // The move to the renewed certificate's connection is make-before-break: no disconnect, one connect event.
      expect(hooks).toEqual(['connected 1']);
      expect(conns[0]!.closedAt).not.toBeNull();
      expect(conns[0]!.closedAt!).toBeLessThanOrEqual(conns[0]!.notAfter + 0.25);
    });
  }, 20_000);

  it('maxConnectionsPerIdentity 1 still moves without a gap: the renewed connection is let in as the noticed one\'s successor', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const initial = await sx.ca.ca.issueClient({ identity: 'player/9', lifetime: 4 });
      const rotator = new CertRotator({ loop: fx.loop, initial, renew: (c) => sx.ca.ca.renew(c, RENEWED) });
      rotators.push(rotator);
      rotator.start();
      const conns: { reason: Error | null; closedAt: number | null }[] = [];
      const byConn = new Map<SessionConnection, (typeof conns)[number]>();
      const server = await serve(keyring, {
        reconnectNotice: 1.5, maxConnectionsPerIdentity: 1,
        onConnection: (c) => { const e = { reason: null, closedAt: null }; conns.push(e); byConn.set(c, e); },
        onDisconnect: (c, r) => { const e = byConn.get(c)!; e.reason = r; e.closedAt = fx.loop.clock.epoch(); },
      });
      let served = 0;
      server.handle('count', (n: number) => { served += 1; return n; });
      const s = open(keyring, server.port!, { tls: undefined, rotator, tlsBuild: { servername: 'localhost', pin: sx.ca.ca.rootPin } });
      await s.whenConnected();
      const results: number[] = [];
      let n = 0;
      while (fx.loop.clock.epoch() < initial.cert.notAfter + 0.3) {
        results.push(await s.call<number>('count', n++));
        await sleep(0.05);
      }
      expect(results).toEqual([...Array(n).keys()]);
      expect(served).toBe(n);
      expect(s.connects).toBe(2);
      expect(s.attempts).toBe(2); // no attempt refused with TooManyConnections
      expect(conns.length).toBe(2);
      // The old connection was replaced by the client well before the server's cap at notAfter.
      expect(conns[0]!.closedAt!).toBeLessThan(initial.cert.notAfter - 0.5);
      expect(String(conns[0]!.reason?.message ?? '')).not.toContain('certificate expiry');
      expect(server.counter.count([...server.connections][0]!.identity)).toBe(1);
    });
  }, 20_000);

  it('maxConnectionsPerIdentity 1, the server renews late: a refused try is not a failure, a later one moves before notAfter', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const first = await sx.ca.issueServer({ lifetime: 4 });
      // The notice comes at 1 s (3 s before notAfter); the server renews only at 2.4 s.
      const rotator = new CertRotator({ loop: fx.loop, initial: first.issued, renew: (c) => sx.ca.ca.renew(c, RENEWED), renewAtFraction: 0.6 });
      rotators.push(rotator);
      rotator.start();
      const conns: { reason: Error | null; closedAt: number | null }[] = [];
      const byConn = new Map<SessionConnection, (typeof conns)[number]>();
      const server = await serve(keyring, {
        tls: first.options, rotator, reconnectNotice: 3, maxConnectionsPerIdentity: 1,
        onConnection: (c) => { const e = { reason: null, closedAt: null }; conns.push(e); byConn.set(c, e); },
        onDisconnect: (c, r) => { const e = byConn.get(c)!; e.reason = r; e.closedAt = fx.loop.clock.epoch(); },
      });
      server.handle('count', (n: number) => n);
      // Few retries: refused tries must not use them up.
      const s = open(keyring, server.port!, { backoff: { base: 0.05, cap: 0.05, attempts: 1 } });
      await s.whenConnected();
      const results: number[] = [];
      let n = 0;
      while (fx.loop.clock.epoch() < first.issued.cert.notAfter + 0.3) {
        results.push(await s.call<number>('count', n++));
        await sleep(0.05);
      }
      expect(results).toEqual([...Array(n).keys()]);
      expect(rotator.renewals).toBeGreaterThanOrEqual(1);
      expect(s.attempts).toBeGreaterThanOrEqual(2); // at least one try refused (TooManyConnections) before the renewal
      expect(s.connects).toBe(2);
      expect(conns[0]!.closedAt!).toBeLessThan(first.issued.cert.notAfter - 0.25); // moved before the server's cap
      expect(String(conns[0]!.reason?.message ?? '')).not.toContain('certificate expiry');
    });
  }, 20_000);

  it('a noticed connection admits no successor that closes no later (the same expiring certificate cannot open more)', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/10', { lifetime: 3 });
      const server = await serve(keyring, { reconnectNotice: 5, maxConnectionsPerIdentity: 1 });
      const a = open(keyring, server.port!, { tls: short.options });
      await a.whenConnected();
      while (a.link!.notice === null) await sleep(0.01); // noticed at once: the certificate expires within 5 s
      const b = open(keyring, server.port!, { tls: short.options, backoff: { base: 0.05, cap: 0.05, attempts: 1 } });
      await expect(b.closed).resolves.toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(b.lastError).toMatchObject({ code: 'TW_TOO_MANY_CONNECTIONS' });
      expect(server.connections.size).toBe(1);
      expect(server.counter.count([...server.connections][0]!.identity)).toBe(1);
    });
  });

  it('a client that cannot renew is closed by the server at notAfter, after the notice', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/8', { lifetime: 2 });
      const closed: { reason: Error | null; at: number }[] = [];
      const server = await serve(keyring, { reconnectNotice: 1, onDisconnect: (_c, r) => closed.push({ reason: r, at: fx.loop.clock.epoch() }) });
      // The same certificate every time: the session gets the notice but has nothing newer to reconnect with.
      const s = open(keyring, server.port!, { tls: short.options, backoff: { base: 0.5, cap: 0.5 } });
      await s.whenConnected();
      const link = s.link!;
      while (closed.length === 0) await sleep(0.02);
      expect(link.notice).toMatchObject({ closeAt: short.issued.cert.notAfter });
      expect(closed[0]!.reason).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(closed[0]!.reason!.message).toContain('certificate expiry');
      expect(closed[0]!.at).toBeGreaterThanOrEqual(short.issued.cert.notAfter - 0.05);
      expect(closed[0]!.at).toBeLessThan(short.issued.cert.notAfter + 1); // the close timer plus a loaded machine's lag
      // Reconnecting with the expired certificate is refused by the server's TLS: a TLS 1.3 client only sees the
      // close right after the handshake (PeerRejected), and the session keeps retrying with backoff.
      while (s.attempts < 3) await sleep(0.05);
      expect(s.connects).toBe(1);
      expect(s.lastError).toMatchObject({ code: 'TW_PEER_REJECTED' });
      await s.close();
      await sleep(0.1);
      fx.take(); // the server reports the refused handshakes (and one cut short by the close)
    });
  });

  it('the server\'s own certificate expiring first caps the connection too: notice, a few tries that find no later certificate, then closed at its notAfter', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const shortServer = await sx.ca.issueServer({ lifetime: 2 });
      const conns: { reason: Error | null; at: number | null }[] = [];
      const byConn = new Map<SessionConnection, (typeof conns)[number]>();
      const server = await serve(keyring, { tls: shortServer.options, reconnectNotice: 1,
        onConnection: (c) => { const e = { reason: null, at: null }; conns.push(e); byConn.set(c, e); },
        onDisconnect: (c, r) => { const e = byConn.get(c)!; e.reason = r; e.at = fx.loop.clock.epoch(); } });
      // The client's certificate lives a day: the server's own, expiring in 2 s, is the earlier notAfter.
      const s = open(keyring, server.port!, { backoff: { base: 0.5, cap: 0.5 } });
      await s.whenConnected();
      const link = s.link!;
      while (conns[0]!.at === null) await sleep(0.02);
      expect(link.notice).toMatchObject({ closeAt: shortServer.issued.cert.notAfter });
      expect(conns[0]!.reason).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(conns[0]!.at!).toBeGreaterThanOrEqual(shortServer.issued.cert.notAfter - 0.05);
      expect(conns[0]!.at!).toBeLessThan(shortServer.issued.cert.notAfter + 1);
      // The server never renewed: each make-before-break try got the same certificate and was closed by the client;
      // bounded (at once, then at half the time left, at least 0.25 s apart).
      const tries = conns.slice(1).filter((c) => c.at !== null && c.at < shortServer.issued.cert.notAfter);
      expect(tries.length).toBeGreaterThanOrEqual(1);
      expect(tries.length).toBeLessThanOrEqual(4);
      await s.close();
      await sleep(0.1);
      fx.take(); // the expired server certificate refuses reconnects: the handshakes are reported
    });
  });

  it('the server\'s own certificate expiring first: the session moves to a connection with the renewed one before the old closes (make-before-break), no call lost', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const first = await sx.ca.issueServer({ lifetime: 4 });
      const rotator = new CertRotator({ loop: fx.loop, initial: first.issued, renew: (c) => sx.ca.ca.renew(c, RENEWED) });
      const renewed: string[] = [];
      rotator.subscribe((issued) => renewed.push(issued.cert.serial));
      rotators.push(rotator);
      rotator.start();
      const conns: { reason: Error | null; closedAt: number | null }[] = [];
      const byConn = new Map<SessionConnection, (typeof conns)[number]>();
      const server = await serve(keyring, {
        tls: first.options, rotator, reconnectNotice: 1,
        onConnection: (c) => {
          const e = { reason: null, closedAt: null };
          conns.push(e);
          byConn.set(c, e);
        },
        onDisconnect: (c, r) => { const e = byConn.get(c)!; e.reason = r; e.closedAt = fx.loop.clock.epoch(); },
      });
      let served = 0;
      server.handle('count', (n: number) => { served += 1; return n; });
      // The client's certificate lives a day: only the server's can be the reason for the notice.
      const s = open(keyring, server.port!);
      await s.whenConnected();
      const firstLink = s.link!;
      const results: number[] = [];
      let n = 0;
      while (fx.loop.clock.epoch() < first.issued.cert.notAfter + 0.5) {
        results.push(await s.call<number>('count', n++));
        await sleep(0.05);
      }
      expect(results).toEqual([...Array(n).keys()]);
      expect(served).toBe(n);
      expect(firstLink.notice).toMatchObject({ closeAt: first.issued.cert.notAfter });
      expect(s.connects).toBe(2);
      expect(conns.length).toBe(2);
      const serial = (l: typeof firstLink): string => (l.peer as PeerIdentity).serial;
      expect(serial(s.link!)).not.toBe(serial(firstLink)); // the renewed server certificate
      expect(serial(s.link!)).toBe(renewed[0]);
      // The client moved before the server's cap: the old connection was not closed at certificate expiry.
      expect(conns[0]!.closedAt).not.toBeNull();
      expect(conns[0]!.closedAt!).toBeLessThan(first.issued.cert.notAfter);
      expect(String(conns[0]!.reason?.message ?? '')).not.toContain('certificate expiry');
      expect(s.link!.closesAt).toBeGreaterThan(first.issued.cert.notAfter);
      expect(firstLink.serverExpiresFirst).toBe(true);
    });
  }, 20_000);

  it('bindToTls: false on both ends gives unbound keys (for peers whose TLS has no exporter), calls still work', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring, { bindToTls: false });
      server.handle('ping', () => 'pong');
      const s = open(keyring, server.port!, { bindToTls: false });
      await s.whenConnected();
      expect(await s.call('ping')).toBe('pong');
      expect(s.link!.tlsBound).toBe(false);
      expect([...server.connections].map((c) => c.tlsBound)).toEqual([false]);
      const bound = open(ring(), (await serve(ring())).port!);
      await bound.whenConnected();
      expect(bound.link!.tlsBound).toBe(true); // the default on TLS
    });
  });

  it('drain with 100 sessions and calls in flight: each call completes or fails typed, bounded in time', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring, { heartbeatInterval: 1, idleTimeout: 10, maxConnectionsPerIdentity: 200 });
      let started = 0;
      server.handle('work', async (ms: number) => { started += 1; await sleep(ms / 1000); return ms; });
      const many = Array.from({ length: 100 }, () => open(keyring, server.port!, {
        heartbeatInterval: 1, idleTimeout: 10, backoff: { base: 0.5, cap: 1 } }));
      for (const s of many) await s.whenConnected();
      expect(server.connections.size).toBe(100);
      // Most calls finish well inside the drain timeout; every tenth runs far past it.
      const calls = many.map((s, i) => s.call<number>('work', i % 10 === 0 ? 30_000 : 200 + 5 * i, { timeout: null }));
      while (started < 100) await sleep(0.01); // every call is running on the server: all 100 are in flight
      const t0 = fx.loop.time();
      const result = await server.drain({ timeout: 2 });
      const took = fx.loop.time() - t0;
      expect(took).toBeLessThan(2 + 5); // bounded: the timeout plus the close grace, with room for a loaded 2-core box
      expect(result.connections).toBe(100);
      expect(result.closedAtTimeout).toBe(10);
      const settled = await Promise.allSettled(calls);
      settled.forEach((r, i) => {
        if (i % 10 === 0) {
          expect(r.status).toBe('rejected');
          // Answered by the server before its cut, with the reason (not a bare "the connection closed").
          expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'TW_TRANSPORT_CLOSED', remote: true,
            message: expect.stringContaining('(drain timeout of 2 s reached with calls in flight); its handler was cancelled') });
        } else {
          expect(r).toEqual({ status: 'fulfilled', value: 200 + 5 * i });
        }
      });
      expect(server.connections.size).toBe(0);
    });
  }, 30_000);
});
