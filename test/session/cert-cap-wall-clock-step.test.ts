/**
 * No connection outlives its certificate, also when the wall clock steps forward (an NTP correction, a VM resumed
 * from a pause). The caps at notAfter were loop timers armed once, at connect, for `notAfter - epoch` seconds of
 * monotonic time; a forward step of the wall clock does not move monotonic time, so the connection stayed open for
 * the size of the step after its certificate had expired (here: 600 s). Now each side re-checks its cap on the wall
 * clock once per heartbeat interval and sends the RECONNECT notice, or closes, as soon as their wall-clock time came.
 *
 * The loop runs on a clock whose monotonic time is the real one and whose wall time can be stepped (as bot.ts's
 * lagging clock is); sockets and TLS are real.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventLoop, Keyring, RpcProtocol, SESSION_KIND, openSession, serveSessions, sleep, systemClock,
} from '../../src/index.js';
import type { Clock, ExceptionContext, MessageMeta, SessionServer } from '../../src/index.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';

/** Real monotonic time; wall time the system's plus `offset` (a step of the wall clock). */
class SteppedClock implements Clock {
  readonly autojump = false;
  offset = 0;
  time(): number {
    return systemClock.time();
  }
  epoch(): number {
    return systemClock.epoch() + this.offset;
  }
}

let ca: TestCA;
beforeAll(async () => { ca = await makeTestCA({ name: 'step.test' }); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });

function ring(): Keyring {
  const k = new Keyring();
  k.add('step', Buffer.alloc(32, 0x33));
  return k;
}

async function withLoop<T>(fn: (loop: EventLoop, clock: SteppedClock) => Promise<T>): Promise<{ result: T; records: ExceptionContext[] }> {
  const clock = new SteppedClock();
  const loop = new EventLoop({ clock, trackForeignAwaits: true, logger: { warn: () => {}, error: () => {} } });
  const records: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => { records.push(ctx); });
  try {
    const result = await loop.runUntilComplete(async () => fn(loop, clock));
    return { result, records };
  } finally {
    loop.close();
  }
}

async function until(loop: EventLoop, pred: () => boolean, what: string, timeout = 5): Promise<void> {
  const end = loop.time() + timeout;
  while (!pred()) {
    if (loop.time() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(0.02, undefined, loop);
  }
}

// A bare client: it answers nothing and has no cap of its own, so only the server's rule can end its connection.
class BareClient extends RpcProtocol {
  readonly kinds: number[] = [];
  lost = false;
  override otherMessageReceived(_message: unknown, meta: MessageMeta): void {
    this.kinds.push(meta.kind);
  }
  override connectionLost(exc: Error | null): void {
    this.lost = true;
    super.connectionLost(exc);
  }
}

describe('certificate caps after a forward step of the wall clock', () => {
  it('the server sends the RECONNECT notice and closes at once, not 600 s later', async () => {
    const short = await ca.issueClient('player/step', { lifetime: 600 });
    const { result } = await withLoop(async (loop, clock) => {
      const keyring = ring();
      const reasons: (Error | null)[] = [];
      const server: SessionServer = await serveSessions({ keyring, tls: ca.serverOptions, loop, heartbeatInterval: 0.1,
        idleTimeout: 60, reconnectNotice: 5, logger: {}, onDisconnect: (_c, r) => reasons.push(r) });
      try {
        const [, client] = await loop.createConnection(() => new BareClient({ keyring, side: 'client', clock, logger: {} }),
          '127.0.0.1', server.port!, { ssl: short.options });
        await until(loop, () => server.connections.size === 1, 'the connection let in');
        const conn = [...server.connections][0]!;
        expect(conn.closesAt).toBe(short.issued.cert.notAfter);
        expect(client.kinds).not.toContain(SESSION_KIND.RECONNECT);
        clock.offset = 601; // the wall clock steps past the client certificate's notAfter
        await until(loop, () => client.lost, 'the server closing the connection');
        expect(client.kinds).toContain(SESSION_KIND.RECONNECT);
        return reasons;
      } finally {
        await server.close();
      }
    });
    expect(result).toHaveLength(1);
    expect(result[0]).toMatchObject({ code: 'TW_SESSION_CLOSED' });
    expect(result[0]!.message).toContain('connection closed at certificate expiry');
  }, 30_000);

  it('the client closes its connection at its own certificate\'s notAfter, not 600 s later', async () => {
    const short = await ca.issueClient('player/step-2', { lifetime: 600 });
    const { result } = await withLoop(async (loop, clock) => {
      const keyring = ring();
      // The server knows no peer identity, so it sets no cap: only the client's own rule closes the connection.
      const server = await serveSessions({ keyring, tls: { ...ca.serverOptions, [Symbol.for('tulipwire.peerIdentity')]: undefined },
        loop, heartbeatInterval: 0.1, idleTimeout: 60, logger: {} });
      const s = openSession({ loop, port: server.port!, keyring, tls: short.options, heartbeatInterval: 0.1, idleTimeout: 60,
        logger: {}, backoff: { base: 0.2, cap: 0.2 }, shutdownTimeout: 0.5 });
      try {
        await s.whenConnected();
        const link = s.link!;
        expect(link.closesAt).toBe(short.issued.cert.notAfter);
        clock.offset = 601;
        await until(loop, () => link.isLost, 'the client closing its connection');
        return link.whyEnded();
      } finally {
        await s.close();
        await server.close();
      }
    });
    expect(result).toMatchObject({ code: 'TW_SESSION_CLOSED' });
    expect(result!.message).toContain('certificate expiry');
  }, 30_000);
});
