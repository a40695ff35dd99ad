/**
 * An adversarial review of the session features of 2026-12-01: make-before-break for the server's own certificate,
 * `Session.notify`'s timeout, the successor slot beyond `maxConnectionsPerIdentity`, and backpressure per message
 * class. Each test failed on the code as it landed. In-memory pairs where no certificate is needed (flow control
 * works end to end through the peer's unread bytes), real mutual TLS on 127.0.0.1 where certificates matter.
 * Events and bounded waits only; no timed assertions.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { QUIET, useMtlsSessions } from '../support/sessions.js';
import { createMemoryPair } from '../../src/net/memory-transport.js';
import { SessionClosed, TransportError } from '../../src/errors.js';
import { sleep } from '../../src/loop/index.js';
import { SessionServer } from '../../src/session/session-server.js';
import type { SessionConnection, SessionServerOptions } from '../../src/session/session-server.js';
import type { Session, SessionConnector } from '../../src/session/session.js';
import type { Keyring } from '../../src/wire/keyring.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x7d);
const { ring, serve, open } = sx;

const PAD = Buffer.alloc(2048, 1);

/** A session server over memory pairs (not listening), and the connector a session reaches it with. */
function memoryServer(keyring: Keyring, extra: Partial<SessionServerOptions> = {}): { server: SessionServer; connector: SessionConnector } {
  const server = new SessionServer({ keyring, loop: fx.loop, ...QUIET, ...extra });
  const connector: SessionConnector = async (factory) => {
    if (server.draining) throw new TransportError('connection refused (server closed)');
    const client = factory();
    const [a] = createMemoryPair(fx.loop, client, server.protocolFactory()(), { shutdownTimeout: 0.2 });
    return [a, client];
  };
  return { server, connector };
}

/** Waits (bounded: `rounds` × 10 ms) until `cond` holds; returns whether it did. */
async function until(cond: () => boolean, rounds = 300): Promise<boolean> {
  for (let i = 0; i < rounds && !cond(); i++) await sleep(0.01);
  return cond();
}

/** Sends plain notifications on `conn` until its writing pauses (the peer does not read); bounded. */
async function fillUntilPaused(conn: { writingPaused: boolean; notify(m: string, p?: unknown): void }): Promise<void> {
  for (let i = 0; i < 1000 && !conn.writingPaused; i++) {
    conn.notify('fill', PAD);
    await sleep(0);
  }
  expect(conn.writingPaused).toBe(true);
}

describe('backpressure: SlowConsumer covers every class of traffic', () => {
  it('replies to a peer that stopped reading are bounded by maxWriteBuffer too (SlowConsumer), not only notifications', async () => {
    const max = 256 * 1024;
    const reasons: (Error | null)[] = [];
    const { server, connector } = memoryServer(ring(), { maxWriteBuffer: max, rate: 1e6, burst: 1e6,
      onDisconnect: (_c, r) => reasons.push(r) });
    server.handle('big', () => PAD);
    await fx.run(async () => {
      try {
        const s = open(ring(), 0, { connector, backoff: { base: 0.02, cap: 0.02, attempts: 0 } });
        await s.whenConnected();
        const conn = [...server.connections][0]!;
        s.link!.transport!.pauseReading(); // the client hangs, but its requests still go out
        const calls: PromiseLike<unknown>[] = [];
        let peak = 0;
        // Bounded: at most 4000 calls, and stop once the server holds four times the bound.
        while (reasons.length === 0 && calls.length < 4000 && peak <= 4 * max) {
          for (let i = 0; i < 32; i++) calls.push(s.call('big', null, { timeout: 5 }));
          await sleep(0.001);
          if (!conn.isLost) peak = Math.max(peak, conn.transport!.getWriteBufferSize());
        }
        expect(reasons[0]).toMatchObject({ code: 'TW_SLOW_CONSUMER', limit: max });
        // Cut within one batch of replies past the bound (32 × ~2 KiB).
        expect(peak).toBeLessThan(max + 128 * 1024);
        // The aborted link learns of it once it reads again. Every call settles: answered (before the cut, or sent
        // again on the next connection when it had not been written yet), or failed with TransportClosed (written to
        // the cut connection, not idempotent). Which calls were written before the cut is a race, so no count of
        // either is asserted; nothing times out or fails otherwise.
        s.link?.transport?.resumeReading();
        const settled = await Promise.allSettled(calls);
        const outcomes = new Set(settled.map((r) => (r.status === 'fulfilled' ? 'answered' : (r.reason as { code?: string }).code)));
        for (const o of outcomes) expect(['answered', 'TW_TRANSPORT_CLOSED']).toContain(o);
      } finally {
        await server.close();
      }
    });
  }, 20_000);
});

describe('backpressure: held latest-wins notifications when the connection ends', () => {
  it('a graceful close (drain, retiring) writes the held notifications first; notify on a closing connection throws', async () => {
    const { server, connector } = memoryServer(ring());
    await fx.run(async () => {
      try {
        const s = open(ring(), 0, { connector, backoff: { base: 0.02, cap: 0.02, attempts: 0 } });
        const got: unknown[] = [];
        s.onNotify('state', (p) => { got.push(p); });
        s.onNotify('fill', () => undefined);
        await s.whenConnected();
        const link = s.link!;
        const conn = [...server.connections][0]!;
        link.transport!.pauseReading();
        await fillUntilPaused(conn);
        conn.notify('state', 7, { latest: true });
        expect(conn.held).toBe(1);
        conn.closeFor(new SessionClosed('the server drained this connection'));
        // Closing: a latest-wins notification is refused like any other, not held where it can never be sent.
        expect(() => conn.notify('state', 8, { latest: true })).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_CLOSED' }));
        link.transport!.resumeReading();
        await link.ended;
        expect(await until(() => got.length > 0)).toBe(true);
        expect(got).toEqual([7]);
        expect(conn.held).toBe(0);
      } finally {
        await server.close();
      }
    });
  }, 20_000);

  it('an abort drops the held notifications and counts them (heldDropped); held reads 0 afterwards', async () => {
    const { server, connector } = memoryServer(ring());
    await fx.run(async () => {
      try {
        const s = open(ring(), 0, { connector, backoff: { base: 0.02, cap: 0.02, attempts: 0 } });
        s.onNotify('fill', () => undefined);
        await s.whenConnected();
        const conn = [...server.connections][0]!;
        s.link!.transport!.pauseReading();
        await fillUntilPaused(conn);
        conn.notify('a', 1, { latest: true });
        conn.notify('b', 2, { latest: true });
        conn.closeFor(new SessionClosed('test: dead peer'), true);
        expect(await until(() => conn.isLost)).toBe(true);
        expect(conn.held).toBe(0);
        expect(conn.heldDropped).toBe(2);
      } finally {
        await server.close();
      }
    });
  }, 20_000);

  it('client: a latest-wins notification held on a connection that is lost is sent on the next connection (the newest of its key)', async () => {
    const { server, connector } = memoryServer(ring());
    const got: unknown[] = [];
    server.onNotify('input', (p) => { got.push(p); });
    server.onNotify('fill', () => undefined);
    await fx.run(async () => {
      try {
        const s: Session = open(ring(), 0, { connector });
        await s.whenConnected();
        const link = s.link!;
        const conn = [...server.connections][0]! as SessionConnection;
        conn.transport!.pauseReading(); // the server stops reading this client
        await fillUntilPaused(link);
        await s.notify('input', 1, { latest: 'input' });
        await s.notify('input', 2, { latest: 'input' });
        expect(link.held).toBe(1);
        link.closeFor(new SessionClosed('test: the link died'), true);
        expect(await until(() => got.length > 0)).toBe(true);
        expect(got).toEqual([2]);
        expect(s.link).not.toBe(link);
      } finally {
        await server.close();
      }
    });
  }, 20_000);
});

describe('backpressure: latest-wins across the connections of one session', () => {
  it('a newer notification of a key on the new connection makes the one held on the retiring connection stale (never sent after it)', async () => {
    const { server, connector } = memoryServer(ring());
    const got: unknown[] = [];
    server.onNotify('state', (p) => { got.push(p); });
    server.onNotify('fill', () => undefined);
    let release: (() => void) | null = null;
    server.handle('slow', () => new Promise<string>((resolve) => { release = () => resolve('done'); }));
    await fx.run(async () => {
      try {
        const s: Session = open(ring(), 0, { connector });
        await s.whenConnected();
        const first = s.link!;
        const conn1 = [...server.connections][0]! as SessionConnection;
        const slow = s.call('slow', null, { timeout: 5 }); // keeps the first connection open once it retires
        expect(await until(() => release !== null)).toBe(true);
        conn1.transport!.pauseReading();
        await fillUntilPaused(first);
        await s.notify('state', 1, { latest: true });
        expect(first.held).toBe(1);
        conn1.sendGoaway('TW_SESSION_CLOSED', 'test: going away', 5); // the session moves to a new connection
        expect(await until(() => s.link !== first && s.connected)).toBe(true);
        await s.notify('state', 2, { latest: true });
        expect(first.held).toBe(0);
        conn1.transport!.resumeReading();
        release!();
        expect(await slow).toBe('done');
        await first.ended; // retired and closed gracefully
        expect(await until(() => got.includes(2))).toBe(true);
        expect(got).toEqual([2]);
      } finally {
        await server.close();
      }
    });
  }, 20_000);
});

describe('successor slot beyond maxConnectionsPerIdentity', () => {
  it('a successor that closes before its noticed predecessor frees the slot: the next successor is let in', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/21', { lifetime: 20 });
      const renewed = await sx.ca.issueClient('player/21');
      const server = await serve(keyring, { reconnectNotice: 60, maxConnectionsPerIdentity: 1 });
      const a = open(keyring, server.port!, { tls: short.options });
      await a.whenConnected();
      expect(await until(() => a.link!.notice !== null)).toBe(true); // noticed at once: it expires within 60 s
      const b = open(keyring, server.port!, { tls: renewed.options, backoff: { base: 0.02, cap: 0.02, attempts: 0 } });
      await b.whenConnected(); // let in as the successor
      expect(server.connections.size).toBe(2);
      await b.close(); // e.g. the client dropped it (a failed probe, a dead network)
      expect(await until(() => server.connections.size === 1)).toBe(true);
      const identity = [...server.connections][0]!.identity;
      expect(server.counter.count(identity)).toBe(1);
      const c = open(keyring, server.port!, { tls: renewed.options, backoff: { base: 0.02, cap: 0.02, attempts: 0 } });
      await c.whenConnected(); // the noticed connection still admits one successor
      expect(server.connections.size).toBe(2);
      expect(server.counter.count(identity)).toBe(2);
      await c.close();
      await a.close();
      expect(await until(() => server.connections.size === 0)).toBe(true);
      expect(server.counter.count(identity)).toBe(0);
    });
  }, 20_000);
});

describe("Session.notify's and call's timeout while waiting for a connection", () => {
  it('a NaN (or non-number) timeout is refused at once with TypeError, as RPC refuses it; no NaN timer is armed', async () => {
    await fx.run(async () => {
      const refused: SessionConnector = async () => { throw new TransportError('connection refused (no server)'); };
      const s = open(ring(), 0, { connector: refused });
      expect(() => s.notify('input', 1, { timeout: Number.NaN })).toThrow(TypeError);
      expect(() => s.call('m', 1, { timeout: Number.NaN })).toThrow(TypeError);
      expect(() => s.notify('input', 1, { timeout: '1' as unknown as number })).toThrow(TypeError);
      expect(s.queued).toBe(0);
      // A negative timeout is a number: it has already run out.
      await expect(s.notify('input', 1, { timeout: -1 })).rejects.toMatchObject({ code: 'TW_TIMEOUT' });
    });
  });
});
