/**
 * An adversarial review of the server-side hand-over (9e30cb4: a joined make-before-break successor takes over the
 * session when its current connection ends before the client's activation arrived), over real mutual TLS on
 * 127.0.0.1 with certificates from the test CA. Events and bounded waits only; no timed assertions.
 *
 * The expiry is stood in for by the close the certificate cap makes (`closeFor` with its SessionClosed) or by the
 * other ways a connection ends, at a moment the test chooses; the successor's activation (SESSION
 * `[sessionId, true]`) is held back by the client so the window stays open for as long as the test needs.
 *
 * Two bugs, each test of them failing on the code as it landed: a current connection aborted by the server
 * (SlowConsumer, PeerTimeout) or whose transport failed under it handed over only at its connectionLost, a few turns
 * later, so meanwhile `notify` threw TransportClosed and `broadcast` skipped the session although its successor was
 * open; and an activation overtaken on its way by that of a connection the session opened later took the session
 * back from the client's newest connection (which heard "moved"), leaving it with no current connection. The other
 * tests pin what held already: drains, `maxConnectionsPerIdentity` 1 with the successor lost right after the
 * hand-over, latest-wins keys across it, and what is never promoted (older clients, another identity).
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import { PeerTimeout, SessionClosed, SlowConsumer } from '../../src/errors.js';
import { SESSION_KIND } from '../../src/session/protocol.js';
import type { SessionConnection, SessionServer, SessionServerOptions } from '../../src/session/session-server.js';
import type { Session, SessionConnector, SessionLink, SessionOptions } from '../../src/session/session.js';
import type { Future } from '../../src/loop/index.js';
import type { PkiClientTlsOptions } from '../../src/pki/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x4e);
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

/** Strictly increasing from 0 to `last`: each once, in order, none missing. */
function exactly(values: number[], last: number): void {
  expect(values).toEqual([...Array(last + 1).keys()]);
}

/** The code of what `fn` throws, or null. */
function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

/** A session in the middle of a move: its successor joined as a standby, the activation held back by the client. */
interface Overlap {
  server: SessionServer;
  s: Session;
  conns: SessionConnection[];
  /** The client's first link, and the server's connection of it (current). */
  first: SessionLink;
  old: SessionConnection;
  /** The server's connection of the successor (joined, standby). */
  next: SessionConnection;
  ticks: number[];
  states: string[];
  /** Sends the held-back activations (those of every link from the second on). */
  release(): void;
  /** What the server's `slow` handler waits for (it then answers 'ok'). */
  gate: Future<void>;
}

/**
 * Opens a session with a short certificate, renews it once the notice came, and waits until the successor is up on
 * the client and joined on the server with its activation held back. `links` sees every link from the second on.
 */
async function overlap(identity: string, extra: {
  server?: Partial<SessionServerOptions>; session?: Partial<SessionOptions>; links?: (l: SessionLink) => void;
  renewedIdentity?: string; older?: boolean; beforeRenewal?: (s: Session) => void;
  beforeConnect?: (attempt: number) => PromiseLike<void> | void;
} = {}): Promise<Overlap> {
  const keyring = ring();
  const short = await sx.ca.issueClient(identity, { lifetime: LIFETIME });
  const renewed = await sx.ca.issueClient(extra.renewedIdentity ?? identity, { lifetime: 600 });
  const conns: SessionConnection[] = [];
  const server = await serve(keyring, {
    reconnectNotice: NOTICE, ...extra.server,
    onConnection: (c) => { conns.push(c); extra.server?.onConnection?.(c); },
  });
  const gate = fx.loop.createFuture<void>();
  server.handle('slow', async () => { await gate; return 'ok'; });
  let current: PkiClientTlsOptions = short.options;
  const held: (() => void)[] = [];
  let released = false;
  const connector: SessionConnector = async (factory, attempt) => {
    await extra.beforeConnect?.(attempt);
    return connect(factory, attempt);
  };
  const connect: SessionConnector = (factory, attempt) => fx.loop.createConnection(() => {
    const l = factory();
    if (extra.older === true) {
      // A client from before SESSION (kind 10): it names no session on any connection.
      const send = l.sendControl.bind(l);
      l.sendControl = (kind, payload) => (kind === SESSION_KIND.SESSION ? true : send(kind, payload));
    } else if (attempt >= 2) {
      const send = l.sendControl.bind(l);
      l.sendControl = (kind, payload) => {
        if (!released && kind === SESSION_KIND.SESSION && payload[1] === true) {
          held.push(() => { send(kind, payload); });
          return true;
        }
        return send(kind, payload);
      };
      extra.links?.(l);
    }
    return l;
  }, '127.0.0.1', server.port!, { ssl: current, sslShutdownTimeout: 0.5 });
  const s = open(keyring, server.port!, { tls: () => current, connector, ...extra.session });
  const ticks: number[] = [];
  const states: string[] = [];
  s.onNotify('tick', (p) => { ticks.push(p as number); });
  s.onNotify('state', (p) => { states.push(p as string); });
  await s.whenConnected();
  const first = s.link!;
  extra.beforeRenewal?.(s);
  expect(await until(() => (extra.older === true || first.routed) && first.notice !== null && conns[0]?.ready === true)).toBe(true);
  current = renewed.options;
  expect(await until(() => conns.length === 2 && conns[1]!.ready && s.link !== first && (extra.older === true || held.length === 1))).toBe(true);
  const [old, next] = [conns[0]!, conns[1]!];
  expect(old.current).toBe(old);
  expect(next.activatedAt).toBe(0);
  return {
    server, s, conns, first, old, next, ticks, states, gate,
    release: () => { released = true; for (const f of held.splice(0)) f(); },
  };
}

describe('hand-over review: the current connection ends in other ways than the certificate cap', () => {
  it('aborted by the server (SlowConsumer, PeerTimeout): the successor takes over at once, not only at connectionLost', async () => {
    await fx.run(async () => {
      const o = await overlap('player/61');
      const { server, old, next, ticks, states } = o;
      for (let k = 0; k < 3; k++) expect(server.broadcast('tick', k)).toBe(1);
      expect(await until(() => ticks.length === 3)).toBe(true); // written and read before the abort
      old.pauseWriting();
      server.broadcast('state', 'held', { latest: true });
      expect(old.held).toBe(1);
      // The buffer bound trips (protocol.ts #checkBuffer): an abort, whose connectionLost comes a few turns later.
      old.closeFor(new SlowConsumer('test: the peer stopped reading', { buffered: 1, limit: 0 }), true);
      expect(old.isLost).toBe(false);
      // Before the fix: [0], TW_TRANSPORT_CLOSED, current still the aborted one, until its connectionLost ran.
      const reached = server.broadcast('tick', 3);
      const threw = codeOf(() => old.notify('tick', 4));
      expect({ reached, threw, current: old.current === next, moved: old.moved }).toEqual({ reached: 1, threw: null, current: true, moved: true });
      expect(await until(() => old.isLost && o.first.isLost && ticks.length >= 5 && states.length >= 1)).toBe(true);
      o.release();
      expect(await until(() => next.activatedAt > 0)).toBe(true);
      expect(server.broadcast('tick', 5)).toBe(1);
      expect(await until(() => ticks.length >= 6)).toBe(true);
      await sleep(0.05);
      exactly(ticks, 5);
      expect(states).toEqual(['held']);
      expect(old.heldDropped).toBe(0);
      // Same for a silent peer's abort: the successor, current now, is not handed anything back.
      next.closeFor(new PeerTimeout('test'), true);
      expect(codeOf(() => old.notify('tick', 6))).toBe('TW_TRANSPORT_CLOSED');
    });
  }, 20_000);

  it('the transport goes away under the protocol (a write error, a force close): notifications in the turns before connectionLost go to the successor', async () => {
    await fx.run(async () => {
      const o = await overlap('player/62');
      const { server, old, next, ticks } = o;
      for (let k = 0; k < 2; k++) expect(server.broadcast('tick', k)).toBe(1);
      expect(await until(() => ticks.length === 2)).toBe(true);
      old.transport!.abort(); // not through the protocol: what node:tls does on a socket error
      // Before the fix: 0 and TW_TRANSPORT_CLOSED until connectionLost ran.
      expect(server.broadcast('tick', 2)).toBe(1);
      expect(codeOf(() => old.notify('tick', 3))).toBeNull();
      expect(old.current).toBe(next);
      expect(await until(() => old.isLost && ticks.length >= 4)).toBe(true);
      o.release();
      expect(await until(() => next.activatedAt > 0)).toBe(true);
      await sleep(0.05);
      exactly(ticks, 3);
    });
  }, 20_000);
});

describe('hand-over review: drain, limits, a successor lost right after, latest-wins', () => {
  it('a drain closes the old connection first: the successor (going away too) takes the session, held state goes out once ahead of the GOAWAY', async () => {
    await fx.run(async () => {
      const o = await overlap('player/63');
      const { server, old, next, ticks, states, gate } = o;
      const slow = o.s.call<string>('slow', null, { timeout: 15 }); // on the successor: keeps it open through the drain
      expect(await until(() => next.inFlight === 1)).toBe(true);
      old.pauseWriting();
      server.broadcast('state', 'held', { latest: true });
      expect(old.held).toBe(1);
      const drained = server.drain({ timeout: 5 });
      // The old connection has nothing in flight: it closes (the client's or the drain's close), the successor takes over.
      expect(await until(() => old.isLost)).toBe(true);
      expect(old.moved).toBe(true);
      expect(old.current).toBe(next);
      expect(server.broadcast('tick', 99)).toBe(0); // a broadcast skips connections going away
      expect(codeOf(() => old.notify('tick', 0))).toBeNull(); // a direct one still reaches the session
      gate.setResult();
      expect(await slow).toBe('ok');
      expect(await drained).toEqual({ connections: 2, closedInTime: 2, closedAtTimeout: 0 });
      expect(await until(() => ticks.length >= 1 && states.length >= 1)).toBe(true);
      await sleep(0.05);
      expect(ticks).toEqual([0]);
      expect(states).toEqual(['held']); // flushed on the old connection ahead of its GOAWAY, not moved a second time
      expect(next.held + old.heldDropped + next.heldDropped).toBe(0);
    });
  }, 20_000);

  it('maxConnectionsPerIdentity 1, the successor lost right after the hand-over: the old one (moved) never takes the session back, the next connection is let in and gets it', async () => {
    await fx.run(async () => {
      const reconnect = fx.loop.createFuture<void>();
      const o = await overlap('player/64', {
        server: { maxConnectionsPerIdentity: 1 },
        beforeConnect: (attempt) => (attempt >= 3 ? reconnect : undefined), // the reconnect waits for the test
        beforeRenewal: (s) => { void s.call('slow', null, { timeout: 15 }).then(() => undefined, () => undefined); },
      });
      const { server, old, next, ticks, first } = o;
      expect(await until(() => old.inFlight === 1)).toBe(true);
      for (let k = 0; k < 3; k++) expect(server.broadcast('tick', k)).toBe(1);
      expect(await until(() => ticks.length === 3)).toBe(true);
      // The client's own cap: it closes its side; the server still owes the slow call's reply, so the old
      // connection stays open (moved) after the hand-over.
      first.closeFor(expiry());
      expect(await until(() => old.current === next && old.moved)).toBe(true);
      expect(old.isLost).toBe(false);
      expect(server.broadcast('tick', 3)).toBe(1);
      const nextLink = o.s.link!;
      expect(await until(() => nextLink.ordered === 1)).toBe(true); // read on the client, held behind the old one
      next.transport!.abort(); // the successor is lost (a reset, both ends)
      expect(await until(() => next.isLost)).toBe(true);
      expect(old.current).toBeNull();
      expect(codeOf(() => old.notify('tick', 4))).toBe('TW_TRANSPORT_CLOSED');
      expect(server.broadcast('tick', 4)).toBe(0);
      reconnect.setResult();
      // The session reconnects; the identity's one slot is the old connection's, which admits this successor.
      expect(await until(() => o.conns.length === 3 && o.conns[2]!.ready && old.current === o.conns[2])).toBe(true);
      const third = o.conns[2]!;
      o.release();
      for (let k = 5; k < 7; k++) expect(server.broadcast('tick', k)).toBe(1);
      expect(old.moved).toBe(true);
      old.closeFor(expiry()); // (the slow call's reply could not be read anyway: the client closed its side)
      expect(await until(() => old.isLost && ticks.length >= 6)).toBe(true);
      await sleep(0.05);
      expect(ticks).toEqual([0, 1, 2, 3, 5, 6]);
      expect(third.current).toBe(third);
      expect(server.counter.count(third.identity)).toBe(1);
    });
  }, 20_000);

  it('latest-wins keys across the hand-over: the held ones move to a successor whose writing is paused too, a newer one of a key replaces the moved one', async () => {
    await fx.run(async () => {
      const o = await overlap('player/65');
      const { server, old, next, states } = o;
      old.pauseWriting();
      server.broadcast('state', 'a1', { latest: 'a' });
      server.broadcast('state', 'b1', { latest: 'b' });
      server.broadcast('state', 'a2', { latest: 'a' });
      expect({ held: old.held, superseded: old.superseded }).toEqual({ held: 2, superseded: 1 });
      next.pauseWriting();
      old.closeFor(expiry());
      expect({ oldHeld: old.held, nextHeld: next.held }).toEqual({ oldHeld: 0, nextHeld: 2 });
      server.broadcast('state', 'a3', { latest: 'a' });
      expect({ held: next.held, superseded: next.superseded }).toEqual({ held: 2, superseded: 1 });
      next.resumeWriting();
      expect(await until(() => old.isLost && states.length >= 2)).toBe(true);
      await sleep(0.05);
      expect(states).toEqual(['a3', 'b1']); // oldest key first, each key's newest, nothing stale
      expect(old.heldDropped + next.heldDropped).toBe(0);
    });
  }, 20_000);
});

describe('hand-over review: what is never promoted', () => {
  it('an older client (no SESSION hello): each connection is a session of its own, nothing is handed over', async () => {
    await fx.run(async () => {
      const o = await overlap('player/66', {
        older: true,
        beforeRenewal: (s) => { void s.call('slow', null, { timeout: 15 }).then(() => undefined, () => undefined); },
      });
      const { server, old, next } = o;
      expect(await until(() => old.inFlight === 1)).toBe(true); // keeps the old connection open on the client
      expect(old.sessionId).toBeNull();
      expect(next.sessionId).toBeNull();
      old.pauseWriting();
      expect(server.broadcast('state', 'x', { latest: true })).toBe(2); // two sessions, as the server sees it
      old.closeFor(expiry());
      expect({ moved: old.moved, current: old.current === old, next: next.current === next, act: next.activatedAt, held: old.held })
        .toEqual({ moved: false, current: true, next: true, act: 0, held: 0 });
      expect(codeOf(() => old.notify('tick', 0))).toBe('TW_TRANSPORT_CLOSED');
      expect(server.broadcast('tick', 1)).toBe(1);
      expect(await until(() => old.isLost)).toBe(true);
      expect(old.heldDropped).toBe(0); // flushed on the old connection itself
    });
  }, 20_000);

  it('another certificate identity naming the same session id (a custom identity that changes on renewal) is another group: never promoted', async () => {
    await fx.run(async () => {
      const o = await overlap('player/67', { renewedIdentity: 'player/67-renewed' });
      const { server, old, next } = o;
      expect(next.sessionId).toBe(old.sessionId);
      expect(next.identity).not.toBe(old.identity);
      expect(next.current).toBe(next); // a group of its own: current there at once
      old.pauseWriting();
      expect(server.broadcast('state', 'x', { latest: true })).toBe(2);
      old.closeFor(expiry());
      expect({ moved: old.moved, current: old.current === old, act: next.activatedAt, held: old.held })
        .toEqual({ moved: false, current: true, act: 0, held: 0 });
      expect(codeOf(() => old.notify('tick', 0))).toBe('TW_TRANSPORT_CLOSED');
      expect(await until(() => old.isLost)).toBe(true);
      expect(old.heldDropped).toBe(0);
    });
  }, 20_000);
});

describe('hand-over review: more than two connections', () => {
  it.each([
    ['after a hand-over to the older successor', true],
    ['while the first connection is still current', false],
  ])('two successors in flight, their activations overtaking each other on the way (%s): the one the client activated last stays current', async (_name, handOver) => {
    await fx.run(async () => {
      const keyring = ring();
      // Every certificate here gets its notice at once: the short one, and the first renewal (so the session
      // moves again as soon as the second renewal is there); the second renewal's comes much later.
      const short = await sx.ca.issueClient('player/69', { lifetime: 30 });
      const r1 = await sx.ca.issueClient('player/69', { lifetime: 35 });
      const r2 = await sx.ca.issueClient('player/69', { lifetime: 600 });
      const conns: SessionConnection[] = [];
      const server = await serve(keyring, { reconnectNotice: 39.9, onConnection: (c) => { conns.push(c); } });
      let current: PkiClientTlsOptions = short.options;
      // The activations of the second and third connections, held back by attempt.
      const held = new Map<number, () => void>();
      const connector: SessionConnector = (factory, attempt) => fx.loop.createConnection(() => {
        const l = factory();
        if (attempt >= 2) {
          const send = l.sendControl.bind(l);
          l.sendControl = (kind, payload) => {
            if (kind === SESSION_KIND.SESSION && payload[1] === true) {
              held.set(attempt, () => { send(kind, payload); });
              return true;
            }
            return send(kind, payload);
          };
        }
        return l;
      }, '127.0.0.1', server.port!, { ssl: current, sslShutdownTimeout: 0.5 });
      const s = open(keyring, server.port!, { tls: () => current, connector });
      const ticks: number[] = [];
      s.onNotify('tick', (p) => { ticks.push(p as number); });
      await s.whenConnected();
      const l1 = s.link!;
      expect(await until(() => l1.routed && l1.notice !== null && conns[0]?.ready === true)).toBe(true);
      current = r1.options;
      expect(await until(() => conns.length === 2 && conns[1]!.ready && s.link !== l1 && held.has(2))).toBe(true);
      const l2 = s.link!;
      expect(await until(() => l2.notice !== null)).toBe(true);
      current = r2.options;
      expect(await until(() => conns.length === 3 && conns[2]!.ready && s.link !== l2 && held.has(3))).toBe(true);
      const l3 = s.link!;
      const [c1, c2, c3] = [conns[0]!, conns[1]!, conns[2]!];
      expect(c1.current).toBe(c1);
      expect(server.broadcast('tick', 0)).toBe(1);
      expect(await until(() => ticks.length === 1)).toBe(true);
      if (handOver) {
        // The first connection ends at its notAfter before either activation arrived: a successor takes over.
        c1.closeFor(expiry());
        expect(c1.moved).toBe(true);
        expect(c1.current).toBe(c2); // the oldest joined successor
      }
      expect(server.broadcast('tick', 1)).toBe(1);
      // Both activations go out, the second connection's first; it is read late (a slow path), after the third's.
      c2.transport!.pauseReading();
      held.get(2)!();
      held.get(3)!();
      expect(await until(() => c3.activatedAt > 0 && c1.current === c3 && c1.moved)).toBe(true);
      expect(server.broadcast('tick', 2)).toBe(1);
      const activatedAt = c2.activatedAt;
      c2.transport!.resumeReading();
      expect(await until(() => c2.activatedAt !== activatedAt || c2.isLost)).toBe(true);
      // Before the fix: the stale activation made the second connection current and told the third "moved". After a
      // hand-over the client closed the second (it had said moved once already): no current connection while the
      // client's newest one was open. Without one, the client held the third's notifications behind the second,
      // which never heard "moved", until its notAfter.
      expect(c1.current).toBe(c3);
      expect(c3.moved).toBe(false);
      expect(server.broadcast('tick', 3)).toBe(1);
      expect(await until(() => l1.isLost && l2.isLost)).toBe(true);
      expect(c2.moved).toBe(true);
      expect(s.link).toBe(l3);
      expect(server.broadcast('tick', 4)).toBe(1);
      expect(codeOf(() => c2.notify('tick', 5))).toBeNull();
      expect(await until(() => ticks.length >= 6)).toBe(true);
      await sleep(0.05);
      exactly(ticks, 5);
      expect(c3.current).toBe(c3);
    });
  }, 20_000);
});
