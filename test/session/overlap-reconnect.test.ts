/**
 * An adversarial review of "one copy of each notification across the overlap" (c58753c), over real mutual TLS on
 * 127.0.0.1 with certificates from the test CA. Each test failed on the code as it landed:
 *
 * - a session that reconnects after losing its connection while the server still holds the dead one (a network
 *   switch: the server notices only at its idleTimeout) got nothing the server sent in the first round trip, its own
 *   welcome included: the new connection joined as a standby, so everything went to the dead one;
 * - after the session's current connection was lost, the server fell back to the connection the session had left
 *   (already told `["moved"]`, kept open by a pending call): what it wrote there reached the client after what the
 *   next connection brought (out of order), or never (the client closes a connection that said moved);
 * - a session that moved to an older server (no `["joined"]`: a rolling upgrade behind one address) kept the
 *   connection it left open until its certificate's notAfter, waiting for a `["moved"]` that no server would send.
 *
 * Events and bounded waits only; no timed assertions.
 */
import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { useLoop } from '../support/loop.js';
import { QUIET, useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import { SessionServer } from '../../src/session/session-server.js';
import type { SessionConnection } from '../../src/session/session-server.js';
import type { SessionConnector } from '../../src/session/session.js';
import type { PkiClientTlsOptions } from '../../src/pki/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x3c);
const { ring, serve, open } = sx;

/** Waits (bounded: `rounds` × 10 ms) until `cond` holds; returns whether it did. */
async function until(cond: () => boolean, rounds = 500): Promise<boolean> {
  for (let i = 0; i < rounds && !cond(); i++) await sleep(0.01);
  return cond();
}

/**
 * A TCP relay to `port` (the TLS passes through it untouched) that can cut the connections it carries without
 * closing them towards the server: a network that went away under the client, which the server notices only at
 * its idleTimeout.
 */
async function relay(port: number): Promise<{ port: number; blackhole(): void }> {
  const sockets = new Set<net.Socket>();
  const pairs: { cut: boolean }[] = [];
  const server = net.createServer((down) => {
    const pair = { cut: false };
    pairs.push(pair);
    const up = net.connect(port, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    down.on('data', (d) => { if (!pair.cut) up.write(d); });
    up.on('data', (d) => { if (!pair.cut) down.write(d); });
    // A cut pair stays open towards the server when the client gives up on it.
    down.on('close', () => { if (!pair.cut) up.destroy(); });
    up.on('close', () => { if (!pair.cut) down.destroy(); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    blackhole: () => { for (const p of pairs) p.cut = true; },
  };
}

/** A server from before SESSION (kind 10): its connections ignore the hello and never answer `["joined"]`. */
class OlderServer extends SessionServer {
  override protocolFactory(): () => SessionConnection {
    const make = super.protocolFactory();
    return () => {
      const c = make();
      c.sessionReceived = () => undefined;
      return c;
    };
  }
}

describe('overlap review: the session keeps getting its notifications', () => {
  it('a reconnect while the server still holds the dead connection: the welcome and every broadcast from the new connection on arrive', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const conns: SessionConnection[] = [];
      const directTicks: number[] = [];
      let n = 0;
      const server = await serve(keyring, {
        onConnection: (c) => {
          conns.push(c);
          c.notify('welcome', conns.length); // what a game server sends a joining player
          c.notify('tick', n); // and the state it starts from (the broadcasts go on from there)
          directTicks.push(n);
        },
      });
      const r = await relay(server.port!);
      // The client notices the dead network fast; the server only at its idleTimeout (5 s, QUIET).
      const s = open(keyring, r.port, { idleTimeout: 0.5 });
      const welcomes: number[] = [];
      const ticks: number[] = [];
      s.onNotify('welcome', (p) => { welcomes.push(p as number); });
      s.onNotify('tick', (p) => { ticks.push(p as number); });
      await s.whenConnected();
      expect(await until(() => welcomes.length === 1 && conns[0]!.ready)).toBe(true);
      let ticking = true;
      const tick = (): void => {
        if (!ticking) return;
        n += 1;
        server.broadcast('tick', n);
        fx.loop.callLater(0.003, tick);
      };
      tick();
      r.blackhole();
      // The client's connection times out, it reconnects; the server still holds the first one (not lost).
      expect(await until(() => conns.length === 2 && s.connects === 2)).toBe(true);
      const old = conns[0]!;
      expect(old.isLost).toBe(false);
      const firstOnNew = directTicks[1]!; // the new connection's own first tick: every broadcast after it must arrive
      expect(await until(() => ticks.length > 0 && ticks[ticks.length - 1]! >= firstOnNew + 30)).toBe(true);
      ticking = false;
      expect(welcomes).toEqual([1, 2]);
      const after = ticks.filter((t) => t >= firstOnNew);
      // From the new connection's own first tick on: each exactly once, in order, with no gap.
      expect(after).toEqual([...Array(after[after.length - 1]! - firstOnNew + 1).keys()].map((i) => firstOnNew + i));
      expect(conns[1]!.current).toBe(conns[1]);
      expect(old.moved).toBe(true);
    });
  }, 20_000);

  it('the new connection lost while the one the session left is still open (a pending call): nothing more goes to the one that said moved', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/41', { lifetime: 3 });
      const renewed = await sx.ca.issueClient('player/41', { lifetime: 600 });
      const conns: SessionConnection[] = [];
      const server = await serve(keyring, { reconnectNotice: 2.9, onConnection: (c) => { conns.push(c); } });
      const gate = fx.loop.createFuture<void>();
      server.handle('slow', async () => { await gate; return 'ok'; });
      let current = short.options;
      const s = open(keyring, server.port!, { tls: () => current });
      const ticks: number[] = [];
      s.onNotify('tick', (p) => { ticks.push(p as number); });
      await s.whenConnected();
      const first = s.link!;
      const slow = s.call<string>('slow', null, { timeout: 15 }); // keeps the first connection open after the switch
      let n = 0;
      let ticking = true;
      const tick = (): void => {
        if (!ticking) return;
        server.broadcast('tick', n);
        n += 1;
        fx.loop.callLater(0.003, tick);
      };
      tick();
      while (first.notice === null) await sleep(0.01);
      current = renewed.options;
      expect(await until(() => s.link !== first && first.moved && conns.length === 2 && conns[0]!.moved)).toBe(true);
      const second = s.link!;
      // The first connection is read late from now on: anything still written there would surface after the rest.
      first.transport!.pauseReading();
      const before = ticks.length;
      second.transport!.abort(); // lost on both ends (a reset)
      expect(await until(() => conns.length === 3 && conns[1]!.isLost && s.link !== second && s.connected)).toBe(true);
      // Ticks flow again on the third connection (the first one is not being read).
      expect(await until(() => ticks.length > before + 20)).toBe(true);
      first.transport!.resumeReading();
      gate.setResult();
      expect(await slow).toBe('ok');
      expect(await until(() => first.isLost)).toBe(true);
      const lostAt = n;
      expect(await until(() => ticks[ticks.length - 1]! >= lostAt + 10)).toBe(true);
      ticking = false;
      // Strictly increasing: never a duplicate, never one out of order (a gap while no connection was current is a loss).
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]!).toBeGreaterThan(ticks[i - 1]!);
      expect(conns[2]!.current).toBe(conns[2]);
    });
  }, 20_000);

  it('make-before-break onto an older server: the connection left closes once idle instead of waiting for a "moved" until notAfter', async () => {
    await fx.run(async () => {
      const keyring = ring();
      // The notice comes at once; the first connection would be closed at notAfter, 30 s on.
      const short = await sx.ca.issueClient('player/43', { lifetime: 30 });
      const renewed = await sx.ca.issueClient('player/43', { lifetime: 600 });
      const upgraded = await serve(keyring, { reconnectNotice: 29.9 });
      const older = await new OlderServer({ keyring, tls: sx.ca.serverOptions, ...QUIET }).listen();
      try {
        let current: PkiClientTlsOptions = short.options;
        let port = upgraded.port!;
        // One address in front of both (a rolling upgrade): the next connection lands on the older server.
        const connector: SessionConnector = (factory) => fx.loop.createConnection(factory, '127.0.0.1', port,
          { ssl: current, sslShutdownTimeout: 0.5 });
        const s = open(keyring, port, { tls: () => current, connector });
        await s.whenConnected();
        const first = s.link!;
        expect(await until(() => first.routed && first.notice !== null)).toBe(true);
        port = older.port!;
        current = renewed.options;
        expect(await until(() => s.link !== first && s.connected)).toBe(true);
        const second = s.link!;
        expect(await until(() => second.rtt !== null)).toBe(true); // the older server answered a PING, never "joined"
        expect(second.routed).toBe(false);
        // Nothing pending on the first connection, and no "moved" can come: it closes now, not at notAfter.
        expect(await until(() => first.isLost, 300)).toBe(true);
        expect(first.moved).toBe(false);
        expect(await s.call('nothing', null).catch((e: { code?: string }) => e.code)).toBe('TW_METHOD_NOT_FOUND');
      } finally {
        await older.close();
      }
    });
  }, 20_000);
});
