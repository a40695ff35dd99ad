/**
 * Promised session behaviours that the other files left untested, over real mutual TLS on 127.0.0.1 with the
 * test CA's pinned certificates (test/support/ca.ts), as session-tls.test.ts does.
 */
import { connect as tcpConnect } from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { sleep } from '../../src/loop/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { serveSessions } from '../../src/session/session-server.js';
import type { SessionServer, SessionServerOptions } from '../../src/session/session-server.js';
import { openSession } from '../../src/session/session.js';
import type { Session, SessionOptions } from '../../src/session/session.js';

const fx = useLoop({ real: true });
let ca: TestCA;
const servers: SessionServer[] = [];
const sessions: Session[] = [];

beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });
afterEach(async () => {
  const ss = sessions.splice(0);
  const vs = servers.splice(0);
  await fx.loop.runUntilComplete(async () => {
    await Promise.all(ss.map((s) => s.close()));
    for (const v of vs) await v.close();
  });
});

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 0x44));
  return k;
}

const quiet = { logger: {}, heartbeatInterval: 0.1, idleTimeout: 5 } as const;

async function serve(keyring: Keyring, extra: Partial<SessionServerOptions> = {}): Promise<SessionServer> {
  const s = await serveSessions({ keyring, tls: ca.serverOptions, ...quiet, ...extra });
  servers.push(s);
  return s;
}

function open(keyring: Keyring, port: number, extra: Partial<SessionOptions> = {}): Session {
  const s = openSession({ keyring, port, tls: ca.clientOptions, ...quiet, shutdownTimeout: 0.5,
    backoff: { base: 0.02, cap: 0.2 }, ...extra });
  sessions.push(s);
  return s;
}

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
  const s = await serveSessions({ keyring, tls: ca.serverOptions, ...quiet });
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
      expect(await within(c, 3)).toMatchObject({ error: { code: 'TW_TIMEOUT' } });
      expect(s.queued).toBe(0);
      expect(s.closed.done()).toBe(false); // the session itself keeps trying
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
