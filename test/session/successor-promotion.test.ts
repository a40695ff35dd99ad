/**
 * Promotion of a joined make-before-break successor, over real mutual TLS on 127.0.0.1 with certificates from the
 * test CA. Under load the move to the renewed connection is not always done by the old certificate's notAfter: the
 * successor has joined the session as a standby, but the client's activation has not arrived (or its very hello is
 * still on its way) when the old, current connection closes. Until then nothing the server sent in that window
 * reached the session (`notify` threw TransportClosed, `broadcast` skipped it) and the latest-wins state the old
 * connection held went to a socket its client no longer read. Each test below failed on the code before the
 * promotion (the last one guards what must not be promoted: a probe that found no later server certificate).
 *
 * The expiry itself is stood in for by closing the connection as the certificate cap does (`closeFor` with the
 * cap's SessionClosed), on the server or on the client, at a moment the test chooses: events and bounded waits only,
 * no timed assertions.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import { SessionClosed } from '../../src/errors.js';
import { SESSION_KIND } from '../../src/session/protocol.js';
import type { SessionConnection } from '../../src/session/session-server.js';
import type { SessionConnector, SessionLink } from '../../src/session/session.js';
import type { PkiClientTlsOptions } from '../../src/pki/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x6d);
const { ring, serve, open } = sx;

// The RECONNECT notice comes as soon as the short certificate's connection is up; its notAfter is far enough away
// that the test, not the clock, decides when the old connection ends.
const LIFETIME = 30;
const NOTICE = 29.9;

/** Waits (bounded: `rounds` × 10 ms) until `cond` holds; returns whether it did. */
async function until(cond: () => boolean, rounds = 500): Promise<boolean> {
  for (let i = 0; i < rounds && !cond(); i++) await sleep(0.01);
  return cond();
}

/** The close the certificate cap makes at notAfter (session-server.ts #scheduleCertificateCap). */
const expiry = (): SessionClosed => new SessionClosed('connection closed at certificate expiry: the client certificate expires (test)');

/**
 * A connector over real TLS whose links from the second attempt on go through `patch` (to hold back what the test
 * wants held back), presenting whatever `tls()` gives at each attempt.
 */
function connector(port: () => number, tls: () => PkiClientTlsOptions, patch: (link: SessionLink) => void): SessionConnector {
  return (factory, attempt) => fx.loop.createConnection(() => {
    const l = factory();
    if (attempt >= 2) patch(l);
    return l;
  }, '127.0.0.1', port(), { ssl: tls(), sslShutdownTimeout: 0.5 });
}

/** Strictly increasing from 0 to `last`: each once, in order, none missing. */
function exactly(values: number[], last: number): void {
  expect(values).toEqual([...Array(last + 1).keys()]);
}

describe('a joined successor takes over when the current connection ends before the client activated it', () => {
  it('the server closes the old connection at expiry while the activation is in flight: broadcasts, notify and held state go to the successor, once, in order', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/51', { lifetime: LIFETIME });
      const renewed = await sx.ca.issueClient('player/51', { lifetime: 600 });
      const conns: SessionConnection[] = [];
      const server = await serve(keyring, { reconnectNotice: NOTICE, onConnection: (c) => { conns.push(c); } });
      let current = short.options;
      // The successor's activation (SESSION [sessionId, true]) is held back: "in flight" for as long as the test says.
      let releaseActivation: (() => void) | null = null;
      const s = open(keyring, server.port!, {
        tls: () => current,
        connector: connector(() => server.port!, () => current, (l) => {
          const send = l.sendControl.bind(l);
          l.sendControl = (kind, payload) => {
            if (kind === SESSION_KIND.SESSION && payload[1] === true) {
              releaseActivation = () => { send(kind, payload); };
              return true;
            }
            return send(kind, payload);
          };
        }),
      });
      const ticks: number[] = [];
      const states: string[] = [];
      s.onNotify('tick', (p) => { ticks.push(p as number); });
      s.onNotify('state', (p) => { states.push(p as string); });
      await s.whenConnected();
      const first = s.link!;
      expect(await until(() => first.routed && first.notice !== null && conns[0]?.ready === true)).toBe(true);
      current = renewed.options;
      // The successor is up on the client and joined on the server as a standby; its activation has not arrived.
      expect(await until(() => conns.length === 2 && conns[1]!.ready && s.link !== first && releaseActivation !== null)).toBe(true);
      const [old, next] = [conns[0]!, conns[1]!];
      expect(next.sessionId).toBe(old.sessionId);
      expect(next.activatedAt).toBe(0);
      expect(old.current).toBe(old);
      for (let k = 0; k < 3; k++) expect(server.broadcast('tick', k)).toBe(1);
      // A state the old connection holds, never written (its writing paused, as a full buffer would).
      old.pauseWriting();
      server.broadcast('state', 'held on the old connection', { latest: true });
      expect(old.held).toBe(1);
      // notAfter: the server closes the old connection; the client's activation is still on its way.
      old.closeFor(expiry());
      const reached = [server.broadcast('tick', 3)];
      let threw: string | null = null;
      try {
        old.notify('tick', 4); // a notify to the old connection object still reaches the session
      } catch (e) {
        threw = (e as { code?: string }).code ?? String(e);
      }
      reached.push(server.broadcast('tick', 5));
      // Before the promotion: [0, 0] and TW_TRANSPORT_CLOSED (the session had no connection to take them).
      expect({ reached, threw }).toEqual({ reached: [1, 1], threw: null });
      expect(old.current).toBe(next);
      expect(old.held).toBe(0);
      expect(old.moved).toBe(true);
      // The client delivers what came on the successor once the old connection said "moved" or is gone.
      expect(await until(() => first.isLost && ticks.length >= 6 && states.length >= 1)).toBe(true);
      // The activation arrives at last: nothing moves (the successor is current already), nothing is repeated.
      releaseActivation!();
      expect(await until(() => next.activatedAt > 0 && old.isLost)).toBe(true);
      for (let k = 6; k < 9; k++) expect(server.broadcast('tick', k)).toBe(1);
      expect(await until(() => ticks.length >= 9)).toBe(true);
      await sleep(0.05); // a duplicate still on its way would land now
      exactly(ticks, 8);
      expect(states).toEqual(['held on the old connection']);
      expect(old.heldDropped).toBe(0);
      expect(next.current).toBe(next);
      expect(next.moved).toBe(false);
    });
  }, 20_000);

  it('the client closes its old connection first (its own cap at notAfter): the held state and what follows go to the successor', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/52', { lifetime: LIFETIME });
      const renewed = await sx.ca.issueClient('player/52', { lifetime: 600 });
      const conns: SessionConnection[] = [];
      const server = await serve(keyring, { reconnectNotice: NOTICE, onConnection: (c) => { conns.push(c); } });
      let current = short.options;
      const s = open(keyring, server.port!, {
        tls: () => current,
        connector: connector(() => server.port!, () => current, (l) => {
          const send = l.sendControl.bind(l);
          l.sendControl = (kind, payload) => (kind === SESSION_KIND.SESSION && payload[1] === true ? true : send(kind, payload));
        }),
      });
      const ticks: number[] = [];
      const states: string[] = [];
      s.onNotify('tick', (p) => { ticks.push(p as number); });
      s.onNotify('state', (p) => { states.push(p as string); });
      await s.whenConnected();
      const first = s.link!;
      expect(await until(() => first.routed && first.notice !== null && conns[0]?.ready === true)).toBe(true);
      current = renewed.options;
      expect(await until(() => conns.length === 2 && conns[1]!.ready && s.link !== first)).toBe(true);
      const [old, next] = [conns[0]!, conns[1]!];
      expect(server.broadcast('tick', 0)).toBe(1);
      expect(await until(() => ticks.length === 1)).toBe(true);
      old.pauseWriting();
      server.broadcast('state', 'held', { latest: true });
      expect(old.held).toBe(1);
      // The client's own cap fires first: it closes its side and reads nothing more there.
      first.closeFor(expiry());
      // The server sees the client's close_notify: the successor takes over (the old one's EOF), held state with it.
      expect(await until(() => old.current === next)).toBe(true);
      expect(server.broadcast('tick', 1)).toBe(1);
      expect(await until(() => old.isLost && first.isLost)).toBe(true);
      await until(() => ticks.length >= 2 && states.length >= 1); // before the promotion: the state never came
      await sleep(0.05);
      exactly(ticks, 1);
      expect(states).toEqual(['held']);
      expect(old.heldDropped).toBe(0);
    });
  }, 20_000);

  it('the successor\'s hello arrives only after the old connection began to close: it takes over, and the broadcasts it queued meanwhile are not dropped', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/53', { lifetime: LIFETIME });
      const renewed = await sx.ca.issueClient('player/53', { lifetime: 600 });
      const conns: SessionConnection[] = [];
      const server = await serve(keyring, {
        reconnectNotice: NOTICE,
        onConnection: (c) => {
          conns.push(c);
          // The successor's first message (its standby hello) waits unread: "on its way".
          if (conns.length === 2) c.transport!.pauseReading();
        },
      });
      let current = short.options;
      const s = open(keyring, server.port!, { tls: () => current });
      const ticks: number[] = [];
      s.onNotify('tick', (p) => { ticks.push(p as number); });
      await s.whenConnected();
      const first = s.link!;
      expect(await until(() => first.routed && first.notice !== null && conns[0]?.ready === true)).toBe(true);
      current = renewed.options;
      expect(await until(() => conns.length === 2 && s.link !== first)).toBe(true);
      const [old, next] = [conns[0]!, conns[1]!];
      expect(next.ready).toBe(false);
      // Before the close: written on the old connection (and queued on the silent one as a connection of its own).
      for (let k = 0; k < 3; k++) server.broadcast('tick', k);
      old.closeFor(expiry());
      // While it closes, with no successor joined yet: reaches nobody but the queue of the silent one.
      for (let k = 3; k < 5; k++) server.broadcast('tick', k);
      next.transport!.resumeReading();
      expect(await until(() => next.ready && old.current === next)).toBe(true);
      for (let k = 5; k < 7; k++) expect(server.broadcast('tick', k)).toBe(1);
      expect(await until(() => old.isLost)).toBe(true);
      await until(() => ticks.length >= 7); // before the promotion: 3 and 4 never came
      await sleep(0.05);
      exactly(ticks, 6);
      expect(next.current).toBe(next);
    });
  }, 20_000);

  it('a probe that found no later server certificate is not promoted: the old connection flushes its held state itself', async () => {
    await fx.run(async () => {
      const keyring = ring();
      // The server's certificate expires first (its notice comes at once) and the server has not renewed.
      const shortServer = await sx.ca.issueServer({ lifetime: LIFETIME });
      const conns: SessionConnection[] = [];
      const server = await serve(keyring, { tls: shortServer.options, reconnectNotice: NOTICE, onConnection: (c) => { conns.push(c); } });
      // The client closes its probe once it sees the same server certificate: held back here, so the probe is
      // still joined when the old connection closes.
      let releaseProbe: (() => void) | null = null;
      const s = open(keyring, server.port!, {
        connector: connector(() => server.port!, () => sx.ca.clientOptions, (l) => {
          const closeFor = l.closeFor.bind(l);
          l.closeFor = (reason, abort) => {
            if (releaseProbe === null && reason.message.includes('no later certificate')) {
              releaseProbe = () => { closeFor(reason, abort); };
              return;
            }
            closeFor(reason, abort);
          };
        }),
      });
      const states: string[] = [];
      s.onNotify('state', (p) => { states.push(p as string); });
      await s.whenConnected();
      const first = s.link!;
      expect(await until(() => first.serverCertificateNotice && conns.length === 2 && conns[1]!.ready && releaseProbe !== null)).toBe(true);
      const [old, probe] = [conns[0]!, conns[1]!];
      expect(s.link).toBe(first);
      expect(probe.sessionId).toBe(old.sessionId);
      expect(probe.closesAt).toBe(old.closesAt);
      old.pauseWriting();
      server.broadcast('state', 'held', { latest: true });
      old.closeFor(new SessionClosed('connection closed at certificate expiry: the server certificate expires (test)'));
      expect(old.current).toBe(old);
      expect(old.moved).toBe(false);
      expect(probe.activatedAt).toBe(0);
      expect(probe.held).toBe(0);
      // Flushed on the old connection ahead of its close_notify, which its client still reads.
      expect(await until(() => states.length === 1)).toBe(true);
      releaseProbe!();
      expect(await until(() => old.isLost && probe.isLost)).toBe(true);
      await sleep(0.05);
      expect(states).toEqual(['held']);
      expect(old.heldDropped).toBe(0);
    });
  }, 20_000);
});
