/**
 * MessageProtocol over real mutual TLS on 127.0.0.1 (loop.createServer/createConnection with the PKI's pinned
 * options): round trips with the peer identity in meta, TLS-bound direction keys (a recorded frame does not verify
 * on another connection), rejections asserted on both ends, replay across two server instances sharing a real
 * redis-server, large frames split across reads, and garbage that never stops the server from serving others.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { closeServers, Recorder, serveRecorders } from '../support/wire-tls.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';
import '../../src/net/index.js';
import type { Server, Transport } from '../../src/net/index.js';
import { sleep } from '../../src/loop/index.js';
import { MessageProtocol } from '../../src/wire/message-protocol.js';
import type { MessageProtocolOptions } from '../../src/wire/message-protocol.js';
import { Keyring, deriveDirectionKey } from '../../src/wire/keyring.js';
import { sealEnvelope } from '../../src/wire/signing.js';
import { encode } from '../../src/wire/codec.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { defaultMacEngine } from '../../src/wire/mac-native.js';
import type { MacEngine } from '../../src/wire/mac.js';
import { RedisNonceStore } from '../../src/wire/redis-nonces.js';
import type { PeerIdentity } from '../../src/pki/index.js';
import type { BadData } from '../../src/errors.js';

const fx = useLoop({ real: true });
let ca: TestCA;
const SECRET = Buffer.alloc(32, 0x77);
const open: MessageProtocol[] = [];
const servers: Server[] = [];

beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });
afterEach(async () => {
  const clients = open.splice(0);
  const ss = servers.splice(0);
  await fx.loop.runUntilComplete(async () => {
    for (const c of clients) c.abort();
    await closeServers(ss);
  });
});

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', SECRET);
  return k;
}



function serve(options: Partial<MessageProtocolOptions> = {}): Promise<{ port: number; protocols: Recorder[] }> {
  return serveRecorders(fx.loop, ca.serverOptions, servers, { keyring: ring(), ...options });
}

async function connect(port: number, options: Partial<MessageProtocolOptions> = {}): Promise<[Transport, Recorder]> {
  const [t, p] = await fx.loop.createConnection(() => new Recorder({ keyring: ring(), side: 'client', logger: {}, ...options }),
    '127.0.0.1', port, { ssl: ca.clientOptions });
  open.push(p);
  return [t, p];
}

async function until(pred: () => boolean, seconds = 5): Promise<void> {
  const end = fx.loop.time() + seconds;
  while (!pred() && fx.loop.time() < end) await sleep(0.002);
  expect(pred()).toBe(true);
}

/** A c2s frame signed with unbound keys (what a misbehaving or foreign client could write raw). */
function unboundFrame(seq: number, secret = SECRET, o: { kid?: string; issuedAtMs?: number; ttlMs?: number; payload?: Buffer } = {}): Buffer {
  const now = o.issuedAtMs ?? Math.floor(fx.loop.clock.epoch() * 1000);
  return sealEnvelope({ key: deriveDirectionKey(secret, 'c2s'), kid: o.kid ?? 'k1', kind: 16, flags: 0, seq, issuedAtMs: now,
    expiresAtMs: now + (o.ttlMs ?? 30_000), nonce: Buffer.alloc(16, seq), payload: o.payload ?? encode({ n: seq }) }, jsMac);
}

describe('MessageProtocol over mTLS', () => {
  it('round trips both ways, in order, with the verified peer in meta and TLS-bound keys', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve();
      const [, client] = await connect(port);
      await until(() => protocols.length === 1 && protocols[0]!.transport !== null);
      const server = protocols[0]!;
      expect(client.tlsBound).toBe(true);
      expect(server.tlsBound).toBe(true);
      for (let i = 0; i < 1000; i++) client.sendMessage({ t: 'move', id: 42, i });
      await until(() => server.got.length === 1000);
      expect(server.got.map(([m]) => (m as { i: number }).i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      const meta = server.got[0]![1];
      expect((meta.peer as PeerIdentity).identity).toMatch(/\/client\/test-client$/);
      expect(meta.seq).toBe(1);
      expect(server.got[999]![1].seq).toBe(1000);
      server.sendMessage({ ok: true }, { kind: 20 });
      await until(() => client.got.length === 1);
      expect(client.got[0]![0]).toEqual({ ok: true });
      expect(client.got[0]![1].kind).toBe(20);
      expect((client.got[0]![1].peer as PeerIdentity).kind).toBe('server');
      expect(server.rejected).toEqual([]);
      expect(client.rejected).toEqual([]);
    });
  });

  it('large messages (16 KiB and ~1 MiB) cross TLS records and reads intact', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve();
      const [, client] = await connect(port);
      await until(() => protocols[0]?.transport != null);
      const big = Buffer.alloc(1024 * 1024 - 200, 0xab);
      client.sendMessage({ pad: Buffer.alloc(16 * 1024, 1) });
      client.sendMessage({ pad: big });
      client.sendMessage('after');
      const server = protocols[0]!;
      await until(() => server.got.length === 3);
      expect(Buffer.compare((server.got[1]![0] as { pad: Buffer }).pad, big)).toBe(0);
      expect(server.got[2]![0]).toBe('after');
      expect(server.raw.length).toBeGreaterThan(3); // the big frame came in several reads
    });
  });

  it('16 KiB frames queued behind each other are MACed in pairs across TLS records, delivered in order, none lost', async () => {
    // Each 16.5 KiB frame spans two 16 KiB TLS records, so a record completes at most one frame. When the transport
    // already holds the next record, the lone frame waits for it and both are verified in one engine call.
    const batches: number[] = [];
    const counting: MacEngine = { ...defaultMacEngine(),
      verifyBatch(key, buf, starts, ends, first, count, results) {
        batches.push(count);
        return defaultMacEngine().verifyBatch(key, buf, starts, ends, first, count, results);
      } };
    await fx.run(async () => {
      const { port, protocols } = await serve({ engine: counting });
      const [, client] = await connect(port);
      await until(() => protocols[0]?.transport != null);
      const server = protocols[0]!;
      const n = 64;
      for (let i = 0; i < n; i++) client.sendMessage({ i, pad: Buffer.alloc(16 * 1024, i) });
      client.sendMessage('after');
      // Stall this (receiving) loop while the bytes arrive, so the kernel buffers several records per read.
      await sleep(0.05);
      const until0 = Date.now() + 150;
      while (Date.now() < until0) { /* busy: the socket fills up */ }
      await until(() => server.got.length === n + 1);
      expect(server.rejected).toEqual([]);
      expect(server.got.map(([m]) => (m as { i?: number }).i ?? m)).toEqual([...Array.from({ length: n }, (_, i) => i), 'after']);
      for (let i = 0; i < n; i++) expect((server.got[i]![0] as { pad: Buffer }).pad.equals(Buffer.alloc(16 * 1024, i))).toBe(true);
      expect(server.got.map(([, meta]) => meta.seq)).toEqual(Array.from({ length: n + 1 }, (_, i) => i + 1));
      expect(batches.reduce((a, b) => a + b, 0)).toBe(n + 1);
      expect(batches.some((c) => c >= 2)).toBe(true);
    });
  });

  it('a recorded frame does not verify on another connection (TLS binding), even with the same keyring', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve();
      const [, c1] = await connect(port);
      const [t2, c2] = await connect(port);
      await until(() => protocols.length === 2 && protocols.every((p) => p.transport !== null));
      c1.sendMessage({ secret: 'order #1' });
      await until(() => protocols.some((p) => p.got.length === 1));
      const first = protocols.find((p) => p.got.length === 1)!;
      const other = protocols.find((p) => p !== first)!;
      // replay the exact bytes on the second connection
      t2.write(Buffer.concat(first.raw));
      await until(() => other.rejected.length === 1);
      expect(other.rejected[0]!.code).toBe('TW_BAD_SIGNATURE');
      expect(other.got).toEqual([]);
      // the second connection still works for its own messages
      c2.sendMessage('mine');
      await until(() => other.got.length === 1);
      expect(other.got[0]![0]).toBe('mine');
    });
  });

  it('a TLS-binding mismatch is reported clearly on the receiving end', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve();
      const [, client] = await connect(port, { bindToTls: false });
      await until(() => protocols[0]?.transport != null);
      expect(client.tlsBound).toBe(false);
      client.sendMessage('x');
      const server = protocols[0]!;
      await until(() => server.rejected.length === 1);
      expect(server.rejected[0]!.code).toBe('TW_MALFORMED_ENVELOPE');
      expect(server.rejected[0]!.message).toMatch(/does not bind its keys to the TLS session/);
    });
  });

  it('bad frames are rejected one by one; after maxRejections the server closes and the client sees it', async () => {
    await fx.run(async () => {
      const warns: string[] = [];
      const { port, protocols } = await serve({ bindToTls: false, maxRejections: 3, logger: { warn: (m) => warns.push(m) } });
      const [t, client] = await connect(port, { bindToTls: false });
      await until(() => protocols[0]?.transport != null);
      const server = protocols[0]!;
      // raw frames numbered from 100, so the client's own messages (seq 1, 2, ...) stay fresh in the window
      t.write(Buffer.concat([unboundFrame(100), unboundFrame(101, Buffer.alloc(32, 1)), unboundFrame(102)]));
      await until(() => server.got.length === 2 && server.rejected.length === 1);
      expect(server.rejected[0]!.code).toBe('TW_BAD_SIGNATURE');
      // still open: the client's own signed messages go through
      client.sendMessage('still open');
      await until(() => server.got.length === 3);
      t.write(Buffer.concat([unboundFrame(110, Buffer.alloc(32, 2)), unboundFrame(111, Buffer.alloc(32, 3))]));
      await until(() => client.lost.length === 1 && server.lost.length === 1);
      expect(server.rejected.map((e) => e.code)).toEqual(['TW_BAD_SIGNATURE', 'TW_BAD_SIGNATURE', 'TW_BAD_SIGNATURE']);
      expect(server.closeReason?.code).toBe('TW_BAD_SIGNATURE');
      expect(warns).toEqual(['closing the connection after 3 rejected messages; last: TW_BAD_SIGNATURE message signature does not match for kid k1, seq 111']);
      expect(() => client.sendMessage('too late')).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_CLOSED' }));
    });
  });

  it.each([
    ['TW_BAD_SIGNATURE', () => unboundFrame(101, Buffer.alloc(32, 9))],
    ['TW_UNKNOWN_KEY_ID', () => unboundFrame(101, SECRET, { kid: 'retired' })],
    ['TW_MALFORMED_ENVELOPE', () => { const f = unboundFrame(101); f[4] = 7; return f; }],
    ['TW_SIGNATURE_EXPIRED', () => unboundFrame(101, SECRET, { issuedAtMs: Math.floor(fx.loop.clock.epoch() * 1000) - 60_000, ttlMs: 1000 })],
    ['TW_BAD_TIME_SIGNATURE', () => unboundFrame(101, SECRET, { issuedAtMs: Math.floor(fx.loop.clock.epoch() * 1000) + 60_000 })],
    ['TW_REPLAYED_MESSAGE', () => unboundFrame(100)],
    ['TW_BAD_PAYLOAD', () => unboundFrame(101, SECRET, { payload: Buffer.from('c1', 'hex') })],
  ])('%s over TLS: that message alone is rejected, its neighbours are delivered, the client stays connected', async (code, bad) => {
    await fx.run(async () => {
      const { port, protocols } = await serve({ bindToTls: false });
      const [t, client] = await connect(port, { bindToTls: false });
      await until(() => protocols[0]?.transport != null);
      const server = protocols[0]!;
      t.write(Buffer.concat([unboundFrame(100), bad(), unboundFrame(102)]));
      await until(() => server.rejected.length === 1 && server.got.length === 2);
      expect(server.rejected[0]!.code).toBe(code);
      expect(server.got.map(([m]) => m)).toEqual([{ n: 100 }, { n: 102 }]);
      client.sendMessage('next');
      await until(() => server.got.length === 3);
      expect(client.lost).toEqual([]);
      expect(server.closeReason).toBeNull();
    });
  });

  it('an oversize frame header closes the connection at once (fatal) on both ends', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve({ maxFrameSize: 4096 });
      const [t, client] = await connect(port);
      await until(() => protocols[0]?.transport != null);
      client.sendMessage('before');
      client.flush();
      t.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
      const server = protocols[0]!;
      await until(() => client.lost.length === 1 && server.lost.length === 1);
      expect(server.got.map(([m]) => m)).toEqual(['before']);
      expect(server.rejected.map((e) => [e.code, (e as BadData).fatal])).toEqual([['TW_FRAME_TOO_LARGE', true]]);
      expect(server.closeReason?.message).toBe('frame of 2147483647 bytes exceeds maxFrameSize 4096');
    });
  });

  it('garbage on some connections never stops the server from serving another', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve({ maxFrameSize: 65536 });
      const [, good] = await connect(port);
      const junk: Transport[] = [];
      for (let i = 0; i < 8; i++) {
        const [t] = await connect(port);
        junk.push(t);
      }
      await until(() => protocols.length === 9 && protocols.every((p) => p.transport !== null));
      let seed = 12345;
      const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
      for (const t of junk) {
        const b = Buffer.alloc(3000);
        for (let i = 0; i < b.length; i++) b[i] = rnd();
        b.writeUInt32BE(200, 0); // starts like a plausible frame
        t.write(b);
      }
      good.sendMessage('hello');
      await until(() => protocols.some((p) => p.got.length === 1));
      const served = protocols.find((p) => p.got.length === 1)!;
      expect(served.got[0]![0]).toBe('hello');
      expect(served.rejected).toEqual([]);
      await until(() => protocols.filter((p) => p !== served).every((p) => p.rejected.length > 0));
      for (const p of protocols) for (const e of p.rejected) expect(e.code).toMatch(/^TW_(BAD_SIGNATURE|MALFORMED_ENVELOPE|UNKNOWN_KEY_ID|FRAME_TOO_LARGE)$/);
    });
  });
});

describe('replay across two server instances sharing Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => { redis = await startRedis(); }, 60_000);
  afterAll(async () => { await redis?.stop(); });

  it('a message accepted by one server is refused by the other (unbound keys, shared RedisNonceStore)', async () => {
    await fx.run(async () => {
      const storeA = new RedisNonceStore({ redis: redis.url, prefix: `t${process.pid}:` });
      const storeB = new RedisNonceStore({ redis: redis.url, prefix: `t${process.pid}:` });
      try {
        const a = await serve({ bindToTls: false, nonceStore: storeA });
        const b = await serve({ bindToTls: false, nonceStore: storeB });
        const [ta] = await connect(a.port, { bindToTls: false });
        const [tb] = await connect(b.port, { bindToTls: false });
        await until(() => a.protocols[0]?.transport != null && b.protocols[0]?.transport != null);
        const f = unboundFrame(1);
        ta.write(f);
        await until(() => a.protocols[0]!.got.length === 1);
        tb.write(f); // the same bytes to the other instance: new connection, fresh seq window, same nonce
        await until(() => b.protocols[0]!.rejected.length === 1);
        expect(b.protocols[0]!.rejected[0]!.code).toBe('TW_REPLAYED_MESSAGE');
        expect(b.protocols[0]!.got).toEqual([]);
        // a fresh message to B is fine
        tb.write(unboundFrame(2));
        await until(() => b.protocols[0]!.got.length === 1);
        expect(b.protocols[0]!.got[0]![0]).toEqual({ n: 2 });
      } finally {
        await storeA.close();
        await storeB.close();
      }
    });
  });
});
