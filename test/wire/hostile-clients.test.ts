/**
 * Hostile clients against real servers over real mutual TLS on 127.0.0.1: a hand-made client (node:tls, frames
 * sealed with `sealEnvelope` and the exporter binding computed on its own socket) writes raw bytes, while a
 * well-behaved client on the same server must keep getting every reply.
 *
 * The first describe block holds the bugs found (each failed before its fix); the second what was attacked and
 * held. Waits are bounded polls of observable state (`until`), never assertions on elapsed time.
 */
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { closeServers, portOf, Recorder, serveRecorders } from '../support/wire-tls.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import '../../src/net/index.js';
import type { Server, Transport } from '../../src/net/index.js';
import { sleep } from '../../src/loop/index.js';
import { MessageProtocol } from '../../src/wire/message-protocol.js';
import type { MessageProtocolOptions } from '../../src/wire/message-protocol.js';
import { Keyring, TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH, deriveDirectionKey } from '../../src/wire/keyring.js';
import { sealEnvelope } from '../../src/wire/signing.js';
import { decode, encode } from '../../src/wire/codec.js';
import { parseHeader } from '../../src/wire/envelope.js';
import { FrameDecoder } from '../../src/wire/frames.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import type { NonceStore } from '../../src/wire/stores.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';
import { serveSessions } from '../../src/session/session-server.js';
import type { SessionServer, SessionServerOptions } from '../../src/session/session-server.js';
import { openSession } from '../../src/session/session.js';
import type { Session } from '../../src/session/session.js';

const fx = useLoop({ real: true });
let ca: TestCA;
const SECRET = Buffer.alloc(32, 0x5a);
const servers: Server[] = [];
const sessionServers: SessionServer[] = [];
const sessions: Session[] = [];
const protocolsOpen: MessageProtocol[] = [];
const raws: RawClient[] = [];

beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });
afterEach(async () => {
  for (const r of raws.splice(0)) r.sock.destroy();
  const ps = protocolsOpen.splice(0);
  const ss = servers.splice(0);
  const vs = sessionServers.splice(0);
  const cs = sessions.splice(0);
  await fx.loop.runUntilComplete(async () => {
    for (const p of ps) p.abort();
    await Promise.all(cs.map((s) => s.close()));
    for (const v of vs) await v.close();
    await closeServers(ss);
  });
});

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', SECRET);
  return k;
}

async function until(pred: () => boolean, seconds = 5): Promise<void> {
  const end = fx.loop.time() + seconds;
  while (!pred() && fx.loop.time() < end) await sleep(0.002);
  expect(pred()).toBe(true);
}

function nowMs(): number {
  return Math.floor(fx.loop.clock.epoch() * 1000);
}

/** A received frame, not verified (the tests only read what the server said). */
interface Seen { kind: number; seq: number; payload: unknown }

/** A hand-made client: raw TLS socket, its own framing and signing. */
class RawClient {
  readonly received: Seen[] = [];
  ended = false;
  closed = false;
  binding: Buffer | null = null;
  seq = 0;
  readonly #decoder = new FrameDecoder();
  readonly sock: TLSSocket;
  constructor(sock: TLSSocket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => this.#decoder.feed(d, (f) => {
      const h = parseHeader(f, 0, f.length);
      let payload: unknown;
      try { payload = decode(f, {}, h.payloadStart, h.tagStart); } catch { payload = undefined; }
      this.received.push({ kind: h.kind, seq: h.seq, payload });
    }));
    sock.on('end', () => { this.ended = true; });
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => undefined);
  }

  static async open(port: number, bind = true): Promise<RawClient> {
    const sock = tlsConnect({ host: '127.0.0.1', port, ...ca.clientOptions });
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', () => resolve());
      sock.once('error', reject);
    });
    const c = new RawClient(sock);
    if (bind) c.binding = (sock.exportKeyingMaterial as (length: number, label: string) => Buffer).call(sock, TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL);
    raws.push(c);
    return c;
  }

  /** One sealed c2s frame; seq defaults to the next one. */
  frame(message: unknown, o: { kind?: number; seq?: number; issuedAtMs?: number; expiresAtMs?: number; ttlMs?: number;
    nonce?: Buffer; kid?: string; secret?: Buffer; payload?: Buffer } = {}): Buffer {
    const seq = o.seq ?? ++this.seq;
    const issued = o.issuedAtMs ?? nowMs();
    return sealEnvelope({ key: deriveDirectionKey(o.secret ?? SECRET, 'c2s', this.binding), kid: o.kid ?? 'k1',
      kind: o.kind ?? 16, flags: this.binding !== null ? 1 : 0, seq, issuedAtMs: issued,
      expiresAtMs: o.expiresAtMs ?? issued + (o.ttlMs ?? 30_000), nonce: o.nonce ?? Buffer.alloc(16, 0).fill(seq % 256, 0, 8).fill(Math.floor(seq / 256) % 256, 8),
      payload: o.payload ?? encode(message) }, jsMac);
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve) => this.sock.write(b, () => resolve()));
  }
}



function serve(options: Partial<MessageProtocolOptions> = {}): Promise<{ port: number; protocols: Recorder[] }> {
  return serveRecorders(fx.loop, ca.serverOptions, servers, { keyring: ring(), ...options });
}

async function connectGood(port: number): Promise<[Transport, Recorder]> {
  const [t, p] = await fx.loop.createConnection(() => new Recorder({ keyring: ring(), side: 'client', logger: {} }),
    '127.0.0.1', port, { ssl: ca.clientOptions });
  protocolsOpen.push(p);
  return [t, p];
}

async function serveS(extra: Partial<SessionServerOptions> = {}): Promise<SessionServer> {
  const s = await serveSessions({ keyring: ring(), tls: ca.serverOptions, logger: {}, heartbeatInterval: 0.1, idleTimeout: 5, ...extra });
  s.handle('echo', (p: unknown) => p);
  sessionServers.push(s);
  return s;
}

function openS(port: number): Session {
  const s = openSession({ keyring: ring(), port, tls: ca.clientOptions, logger: {}, heartbeatInterval: 0.1, idleTimeout: 5,
    shutdownTimeout: 0.5, backoff: { base: 0.02, cap: 0.2 } });
  sessions.push(s);
  return s;
}



async function serveRpc(options: Partial<MessageProtocolOptions> = {}, router = new RpcRouter()): Promise<{ port: number; protocols: RpcProtocol[] }> {
  const protocols: RpcProtocol[] = [];
  const keyring = ring();
  const server = await fx.loop.createServer(() => {
    const p = new RpcProtocol({ keyring, side: 'server', logger: {}, router, ...options });
    protocols.push(p);
    return p;
  }, '127.0.0.1', 0, { ssl: ca.serverOptions });
  servers.push(server);
  return { port: portOf(server), protocols };
}

function replies(c: RawClient): Seen[] {
  return c.received.filter((r) => r.kind === 2 || r.kind === 3);
}

/** A bad frame of each kind §6 names, `i` choosing which. */
function badFrame(c: RawClient, i: number): Buffer {
  switch (i % 7) {
    case 0: return c.frame({ i }, { secret: Buffer.alloc(32, 1) }); // TW_BAD_SIGNATURE
    case 1: return c.frame({ i }, { kid: 'nope' }); // TW_UNKNOWN_KEY_ID
    case 2: return c.frame({ i }, { issuedAtMs: nowMs() - 100_000, ttlMs: 1000 }); // TW_SIGNATURE_EXPIRED
    case 3: return c.frame({ i }, { issuedAtMs: nowMs() + 100_000 }); // TW_BAD_TIME_SIGNATURE
    case 4: return c.frame({ i }, { payload: Buffer.from('c1', 'hex') }); // TW_BAD_PAYLOAD
    case 5: return c.frame({ i }, { seq: 1 }); // TW_REPLAYED_MESSAGE (seq 1 is taken first)
    default: { const g = c.frame({ i }); g[4] = 9; return g; } // TW_MALFORMED_ENVELOPE (version 9)
  }
}

describe('bugs found by hostile clients (each failed before its fix)', () => {
  it('a request followed at once by the peer half-closing (close_notify) is still answered', async () => {
    // Before: the reply was batched for the end of the iteration, the transport closed itself on EOF in between,
    // and the flush then dropped the reply silently (the request had been accepted and run).
    await fx.run(async () => {
      const router = new RpcRouter();
      router.handle('add', ([a, b]: number[]) => a! + b!);
      const { port } = await serveRpc({}, router);
      const c = await RawClient.open(port);
      c.sock.write(c.frame([1, 'add', [2, 3]], { kind: 1 }));
      c.sock.end();
      await until(() => c.closed);
      expect(c.received.map((r) => [r.kind, r.payload])).toEqual([[2, [1, 5]]]);
    });
  });

  it('a peer that half-closes mid-frame: the complete frames before are delivered, the rest is dropped with a logged reason', async () => {
    await fx.run(async () => {
      const warns: string[] = [];
      const { port, protocols } = await serve({ logger: { warn: (m) => warns.push(m) } });
      const c = await RawClient.open(port);
      const second = c.frame('second');
      c.sock.write(Buffer.concat([c.frame('first'), second.subarray(0, 30)]));
      c.sock.end();
      await until(() => c.closed && protocols[0]?.lost.length === 1);
      const p = protocols[0]!;
      expect(p.got.map(([m]) => m)).toEqual(['first']);
      expect(p.rejected).toEqual([]);
      expect(warns).toEqual(['the peer ended the stream inside a frame: 30 bytes of an incomplete frame dropped']);
    });
  });

  it('a nonce store failing with a plain Error is a store failure: TW_STORE_UNAVAILABLE, never counted against the peer', async () => {
    // Before: wrapped as BadData (the peer's fault), so 16 messages during a store outage closed every connection.
    await fx.run(async () => {
      const boom = new Error('connection refused');
      const store: NonceStore = { reserve: () => Promise.reject(boom), close: async () => undefined };
      const { port, protocols } = await serve({ nonceStore: store });
      const c = await RawClient.open(port);
      await until(() => protocols[0] !== undefined);
      const frames: Buffer[] = [];
      for (let i = 0; i < 20; i++) frames.push(c.frame(i));
      c.sock.write(Buffer.concat(frames));
      const p = protocols[0]!;
      await until(() => p.rejected.length === 20);
      expect(new Set(p.rejected.map((e) => e.code))).toEqual(new Set(['TW_STORE_UNAVAILABLE']));
      expect(p.rejected[0]!.cause).toBe(boom);
      expect(p.closeReason).toBeNull();
      expect(p.got).toEqual([]);
      expect(c.closed).toBe(false);
    });
  });
});

describe('attacks that held', () => {
  it('requests then close_notify on a session server (nonce store: delivery waits for reserve) are answered; a good session keeps being served', async () => {
    await fx.run(async () => {
      const s = await serveS();
      const good = openS(s.port!);
      expect(await good.call('echo', 'before')).toBe('before');
      const c = await RawClient.open(s.port!);
      await until(() => c.received.some((r) => r.kind === 6)); // the server's first PING: admitted
      c.sock.write(Buffer.concat([c.frame([1, 'echo', 'x'], { kind: 1 }), c.frame([2, 'echo', 'y'], { kind: 1 })]));
      c.sock.end();
      await until(() => c.closed);
      expect(replies(c).map((r) => [r.kind, r.payload])).toEqual([[2, [1, 'x']], [2, [2, 'y']]]);
      expect(await good.call('echo', 'after')).toBe('after');
    });
  });

  it.each([false, true])('thousands of tiny frames in one write, each failing a check (nonce store: %s): the valid ones before the threshold are all delivered in order, then a logged close', async (withStore) => {
    await fx.run(async () => {
      const warns: string[] = [];
      const { port, protocols } = await serve({ ...(withStore ? { nonceStore: new MemoryNonceStore() } : {}),
        logger: { warn: (m) => warns.push(m) } });
      const [, good] = await connectGood(port);
      const c = await RawClient.open(port);
      const cycle = ['TW_BAD_SIGNATURE', 'TW_UNKNOWN_KEY_ID', 'TW_SIGNATURE_EXPIRED', 'TW_BAD_TIME_SIGNATURE', 'TW_BAD_PAYLOAD',
        'TW_REPLAYED_MESSAGE', 'TW_MALFORMED_ENVELOPE'];
      // An expired frame with a valid tag on these TLS-bound keys is the peer's own late message: refused, not
      // counted (late-messages.test.ts). The 16th counted bad frame is then bad frame 18, i = 37.
      let counted = 0;
      let decidingBad = -1;
      for (let j = 0; decidingBad < 0; j++) if (cycle[j % 7] !== 'TW_SIGNATURE_EXPIRED' && ++counted === 16) decidingBad = j;
      const frames: Buffer[] = [c.frame({ i: -1 })]; // takes seq 1, so badFrame's replay case is a replay
      const expected: number[] = [-1];
      for (let i = 0; i < 3000; i++) {
        if (i % 2 === 0) {
          frames.push(c.frame({ i }));
          if (i < 2 * decidingBad + 1) expected.push(i);
        } else {
          frames.push(badFrame(c, (i - 1) / 2));
        }
      }
      c.sock.write(Buffer.concat(frames));
      await until(() => c.closed);
      const p = protocols.find((q) => q.got.some(([m]) => (m as { i?: number }).i === -1))!;
      expect(p.got.map(([m]) => (m as { i: number }).i)).toEqual(expected);
      expect(decidingBad).toBe(18);
      expect(p.rejected.map((e) => e.code)).toEqual(Array.from({ length: decidingBad + 1 }, (_, k) => cycle[k % 7]));
      expect(warns).toEqual([expect.stringMatching(new RegExp(`^closing the connection after 16 rejected messages; last: ${cycle[decidingBad % 7]} `))]);
      const other = protocols.find((q) => q !== p)!;
      good.sendMessage('still served');
      await until(() => other.got.length === 1);
    });
  });

  it('a header announcing a large frame, then a byte at a time: a session server drops it at idleTimeout, others are served', async () => {
    await fx.run(async () => {
      const s = await serveS({ idleTimeout: 0.3 });
      const good = openS(s.port!);
      const c = await RawClient.open(s.port!);
      await c.write(Buffer.from([0, 0x0f, 0xff, 0xf0])); // 1 MiB - 16 bytes announced: within maxFrameSize
      let calls = 0;
      while (!c.closed && calls < 400) {
        c.sock.write(Buffer.from([1]));
        expect(await good.call('echo', calls)).toBe(calls);
        calls++;
        await sleep(0.005);
      }
      expect(c.closed).toBe(true);
    });
  });

  it('valid messages split at every byte boundary across two writes all arrive, in order', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve();
      const c = await RawClient.open(port);
      const n = c.frame('x').length + c.frame('y').length;
      c.seq = 0;
      const want: string[] = [];
      for (let k = 1; k < n; k++) {
        const x = Buffer.concat([c.frame(`x${k}`), c.frame(`y${k}`)]);
        want.push(`x${k}`, `y${k}`);
        await c.write(x.subarray(0, k));
        await c.write(x.subarray(k));
      }
      await until(() => protocols[0]?.got.length === want.length);
      expect(protocols[0]!.got.map(([m]) => m)).toEqual(want);
      expect(protocols[0]!.rejected).toEqual([]);
    });
  });

  it('expiry and issue times exactly at the skew boundaries, and lifetime exactly maxTtl, are accepted; one ms beyond is not', async () => {
    await fx.run(async () => {
      const T = 1767225600000;
      const clock = { time: () => fx.loop.time(), epoch: () => T / 1000, autojump: false };
      const { port, protocols } = await serve({ clock, skew: 5 });
      const c = await RawClient.open(port);
      await until(() => protocols[0] !== undefined);
      c.sock.write(Buffer.concat([
        c.frame('expires at now - skew', { issuedAtMs: T - 10_000, expiresAtMs: T - 5000 }),
        c.frame('x', { issuedAtMs: T - 10_000, expiresAtMs: T - 5001 }),
        c.frame('issued at now + skew', { issuedAtMs: T + 5000, expiresAtMs: T + 6000 }),
        c.frame('x', { issuedAtMs: T + 5001, expiresAtMs: T + 6000 }),
        c.frame('expires now', { issuedAtMs: T, expiresAtMs: T }),
        c.frame('lives maxTtl', { issuedAtMs: T, expiresAtMs: T + 300_000 }),
        c.frame('x', { issuedAtMs: T, expiresAtMs: T + 300_001 }),
      ]));
      const p = protocols[0]!;
      await until(() => p.got.length + p.rejected.length === 7);
      expect(p.got.map(([m]) => m)).toEqual(['expires at now - skew', 'issued at now + skew', 'expires now', 'lives maxTtl']);
      expect(p.rejected.map((e) => [e.code, (e as { lateBy?: number }).lateBy])).toEqual([
        ['TW_SIGNATURE_EXPIRED', 0.001], ['TW_BAD_TIME_SIGNATURE', undefined], ['TW_MALFORMED_ENVELOPE', undefined]]);
    });
  });

  it('one nonce on two connections of one identity at once: one request runs, the other is refused; an idempotent one runs once', async () => {
    await fx.run(async () => {
      let runs = 0;
      const s = await serveS();
      s.handle('inc', () => ++runs);
      const a = await RawClient.open(s.port!);
      const b = await RawClient.open(s.port!);
      await until(() => a.received.length > 0 && b.received.length > 0);
      const n1 = Buffer.alloc(16, 0xee);
      const n2 = Buffer.alloc(16, 0xdd);
      const fa = Buffer.concat([a.frame([1, 'inc', null], { kind: 1, nonce: n1 }), a.frame([2, 'inc', null, { idempotent: true }], { kind: 1, nonce: n2 })]);
      const fb = Buffer.concat([b.frame([1, 'inc', null], { kind: 1, nonce: n1 }), b.frame([2, 'inc', null, { idempotent: true }], { kind: 1, nonce: n2 })]);
      a.sock.write(fa);
      b.sock.write(fb);
      await until(() => replies(a).length === 2 && replies(b).length === 2);
      expect(runs).toBe(2);
      const first = [...replies(a), ...replies(b)].filter((r) => (r.payload as unknown[])[0] === 1).map((r) => r.payload);
      expect(first).toEqual(expect.arrayContaining([[1, 1], [1, 'TW_REPLAYED_MESSAGE', expect.any(String), null]]));
      const second = [...replies(a), ...replies(b)].filter((r) => (r.payload as unknown[])[0] === 2);
      expect(second.map((r) => [r.kind, r.payload])).toEqual([[2, [2, 2]], [2, [2, 2]]]);
    });
  });

  it('an unknown key id, then valid frames: one rejection, the rest delivered; an oversize header after them closes with the reason', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve({ nonceStore: new MemoryNonceStore(), maxFrameSize: 1000 });
      const c = await RawClient.open(port);
      c.sock.write(Buffer.concat([c.frame('u', { kid: 'retired' }), c.frame('v1'), c.frame('v2'), Buffer.from([0, 0, 0x10, 0]), c.frame('after')]));
      await until(() => c.closed);
      const p = protocols[0]!;
      expect(p.got.map(([m]) => m)).toEqual(['v1', 'v2']);
      expect(p.rejected.map((e) => e.code)).toEqual(['TW_UNKNOWN_KEY_ID', 'TW_FRAME_TOO_LARGE']);
      expect(p.closeReason?.message).toBe('frame of 4096 bytes exceeds maxFrameSize 1000');
    });
  });

  it('a request sent after GOAWAY during a drain is still answered; the connection closes after the grace', async () => {
    await fx.run(async () => {
      const s = await serveS();
      const c = await RawClient.open(s.port!);
      await c.write(c.frame([1, 'echo', 'a'], { kind: 1 }));
      await until(() => replies(c).length === 1);
      const drained = s.drain({ timeout: 1 });
      await until(() => c.received.some((r) => r.kind === 9));
      await c.write(c.frame([2, 'echo', 'b'], { kind: 1 }));
      await until(() => c.closed);
      await drained;
      expect(replies(c).map((r) => r.payload)).toEqual([[1, 'a'], [2, 'b']]);
    });
  });
});
