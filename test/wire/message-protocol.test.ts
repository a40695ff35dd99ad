/**
 * MessageProtocol over in-memory transport pairs on a virtual clock (the real mTLS round trips are in
 * message-protocol-tls.test.ts). Every rejection is provoked and asserted on both sides: the receiver's
 * messageRejected code, and what the sender sees (the connection keeps serving, or closes).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createMemoryPair } from '../../src/net/memory-transport.js';
import { ProtocolBase } from '../../src/net/protocols.js';
import type { Transport } from '../../src/net/transports.js';
import { sleep } from '../../src/loop/index.js';
import { MessageProtocol } from '../../src/wire/message-protocol.js';
import type { MessageProtocolOptions, RejectionError, WireLogger } from '../../src/wire/message-protocol.js';
import { MAX_PENDING_RESERVATIONS } from '../../src/wire/message-protocol.js';
import { Keyring, deriveDirectionKey } from '../../src/wire/keyring.js';
import { KIND } from '../../src/wire/envelope.js';
import { randomNonce, sealEnvelope } from '../../src/wire/signing.js';
import type { MessageMeta } from '../../src/wire/signing.js';
import { encode } from '../../src/wire/codec.js';
import { encodeFrame } from '../../src/wire/frames.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import type { NonceStore } from '../../src/wire/nonces.js';
import type { BadData, SignatureExpired, UnknownKeyId } from '../../src/errors.js';
import { useLoop } from '../support/loop.js';

const fx = useLoop();
const SECRET = Buffer.alloc(32, 0x5a);

function keyring(): Keyring {
  const r = new Keyring();
  r.add('k1', SECRET);
  return r;
}

class Recorder extends MessageProtocol {
  got: [unknown, MessageMeta][] = [];
  rejected: RejectionError[] = [];
  lost: (Error | null)[] = [];
  chunks = 0;
  override dataReceived(d: Buffer): void {
    this.chunks++;
    super.dataReceived(d);
  }
  override messageReceived(m: unknown, meta: MessageMeta): void {
    this.got.push([m, meta]);
  }
  override messageRejected(e: RejectionError): void {
    this.rejected.push(e);
  }
  override connectionLost(e: Error | null): void {
    super.connectionLost(e);
    this.lost.push(e);
  }
}

/** A plain protocol writing crafted bytes, recording what comes back and when it is lost. */
class Raw extends ProtocolBase {
  data: Buffer[] = [];
  lost: (Error | null)[] = [];
  override dataReceived(d: Buffer): void {
    this.data.push(d);
  }
  override connectionLost(e: Error | null): void {
    this.lost.push(e);
  }
}

const silent: WireLogger = {};

function opts(side: 'client' | 'server', extra: Partial<MessageProtocolOptions> = {}): MessageProtocolOptions {
  return { keyring: keyring(), side, logger: silent, clock: fx.clock!, ...extra };
}

async function until(pred: () => boolean, iterations = 200): Promise<void> {
  for (let i = 0; i < iterations && !pred(); i++) await sleep(0);
  expect(pred()).toBe(true);
}

/** A client-direction frame signed with SECRET unless told otherwise. */
function frame(o: { seq: number; payload?: Uint8Array; kid?: string; secret?: Buffer; kind?: number; issuedAtMs?: number; ttlMs?: number; nonce?: Buffer }): Buffer {
  const issued = o.issuedAtMs ?? Math.floor(fx.clock!.epoch() * 1000);
  return sealEnvelope({
    key: deriveDirectionKey(o.secret ?? SECRET, 'c2s'), kid: o.kid ?? 'k1', kind: o.kind ?? KIND.MESSAGE, flags: 0, seq: o.seq,
    issuedAtMs: issued, expiresAtMs: issued + (o.ttlMs ?? 30_000), nonce: o.nonce ?? Buffer.alloc(16, o.seq), payload: o.payload ?? encode({ n: o.seq }),
  }, jsMac);
}

describe('MessageProtocol (memory transport)', () => {
  it('round-trips messages both ways with meta, in order, one chunk per iteration', async () => {
    await fx.run(async () => {
      const client = new Recorder(opts('client'));
      const server = new Recorder(opts('server'));
      createMemoryPair(fx.loop, client, server);
      await until(() => server.transport !== null && client.transport !== null);
      const seqs: number[] = [];
      const first = randomNonce();
      for (let i = 0; i < 100; i++) seqs.push(client.sendMessage({ t: 'move', id: 42, i }, i === 0 ? { nonce: first } : undefined));
      expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      await until(() => server.got.length === 100);
      expect(server.chunks).toBe(1); // one batch, one write, one chunk
      expect(server.got.map(([m]) => (m as { i: number }).i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      const [, meta] = server.got[0]!;
      expect(meta.kid).toBe('k1');
      expect(meta.kind).toBe(KIND.MESSAGE);
      expect(meta.seq).toBe(1);
      expect(meta.nonce.equals(first)).toBe(true);
      // The other nonces are fresh random bytes, all different.
      expect(new Set(server.got.map(([, m]) => m.nonce.toString('hex'))).size).toBe(100);
      expect(meta.expiresAt - meta.issuedAt).toBeCloseTo(30, 3);
      expect(meta.peer).toBeNull();
      server.sendMessage('pong', { kind: 17, ttl: 5 });
      await until(() => client.got.length === 1);
      expect(client.got[0]![0]).toBe('pong');
      expect(client.got[0]![1].kind).toBe(17);
      expect(client.got[0]![1].expiresAt - client.got[0]![1].issuedAt).toBeCloseTo(5, 3);
      expect(server.rejected).toEqual([]);
      expect(client.rejected).toEqual([]);
      expect(client.stats).toMatchObject({ sent: 100, received: 1, rejected: 0 });
      client.close();
      await until(() => server.lost.length === 1 && client.lost.length === 1);
    });
  });

  it('delivers byte strings of 4 KiB and more as views of the received bytes, smaller ones as copies (opt out: Infinity)', async () => {
    await fx.run(async () => {
      for (const threshold of [undefined, Infinity]) {
        const client = new Recorder(opts('client'));
        const chunks: Buffer[] = [];
        class Keeping extends Recorder {
          override dataReceived(d: Buffer): void {
            chunks.push(d);
            super.dataReceived(d);
          }
        }
        const server = new Keeping(opts('server', threshold === undefined ? {} : { decode: { binaryViewThreshold: threshold } }));
        createMemoryPair(fx.loop, client, server);
        await until(() => server.transport !== null && client.transport !== null);
        const small = Buffer.alloc(4095, 1);
        const large = Buffer.alloc(4096, 2);
        const huge = Buffer.alloc(70_000, 3);
        client.sendMessage({ small, large, huge });
        await until(() => server.got.length === 1);
        const m = server.got[0]![0] as { small: Buffer; large: Buffer; huge: Buffer };
        expect(m.small.equals(small) && m.large.equals(large) && m.huge.equals(huge)).toBe(true);
        const inChunks = (b: Buffer): boolean => chunks.some((c) => c.buffer === b.buffer);
        expect(inChunks(m.small)).toBe(false);
        expect(inChunks(m.large)).toBe(threshold === undefined);
        expect(inChunks(m.huge)).toBe(threshold === undefined);
        client.close();
        await until(() => server.lost.length === 1);
      }
    });
  });

  it('the client cannot be fed its own messages (direction keys)', async () => {
    await fx.run(async () => {
      const a = new Recorder(opts('client'));
      const b = new Recorder(opts('client')); // misconfigured peer: also a client
      createMemoryPair(fx.loop, a, b);
      await until(() => a.transport !== null && b.transport !== null);
      a.sendMessage('hi');
      await until(() => b.rejected.length === 1);
      expect(b.rejected[0]!.code).toBe('TW_BAD_SIGNATURE');
      expect(b.got).toEqual([]);
      a.close();
      await until(() => b.lost.length === 1);
    });
  });

  it.each([
    ['BadSignature (wrong secret)', () => frame({ seq: 2, secret: Buffer.alloc(32, 1) }), 'TW_BAD_SIGNATURE'],
    ['UnknownKeyId', () => frame({ seq: 2, kid: 'nope' }), 'TW_UNKNOWN_KEY_ID'],
    ['MalformedEnvelope (version 9)', () => { const f = frame({ seq: 2 }); f[4] = 9; return f; }, 'TW_MALFORMED_ENVELOPE'],
    ['MalformedEnvelope (too short)', () => encodeFrame(Buffer.from([1, 16, 0, 2])), 'TW_MALFORMED_ENVELOPE'],
    ['SignatureExpired', () => frame({ seq: 2, issuedAtMs: Math.floor(fx.clock!.epoch() * 1000) - 60_000, ttlMs: 10_000 }), 'TW_SIGNATURE_EXPIRED'],
    ['BadTimeSignature (from the future)', () => frame({ seq: 2, issuedAtMs: Math.floor(fx.clock!.epoch() * 1000) + 60_000 }), 'TW_BAD_TIME_SIGNATURE'],
    ['ReplayedMessage (seq seen)', () => frame({ seq: 1 }), 'TW_REPLAYED_MESSAGE'],
    ['BadPayload (valid MAC, invalid msgpack)', () => frame({ seq: 2, payload: Buffer.from([0x93, 0x01]) }), 'TW_BAD_PAYLOAD'],
    ['BadPayload (a Date extension)', () => frame({ seq: 2, payload: Buffer.from('d6ff00000001', 'hex') }), 'TW_BAD_PAYLOAD'],
  ])('rejects %s alone: the messages beside it are delivered and the connection keeps serving', async (_name, bad, code) => {
    await fx.run(async () => {
      const raw = new Raw();
      const server = new Recorder(opts('server'));
      const [rawT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      // valid, bad, valid in one chunk
      rawT.write(Buffer.concat([frame({ seq: 1 }), bad(), frame({ seq: 3 })]));
      await until(() => server.rejected.length === 1 && server.got.length === 2);
      expect(server.rejected[0]!.code).toBe(code);
      expect((server.rejected[0] as BadData).fatal).toBe(false);
      expect(server.got.map(([m]) => m)).toEqual([{ n: 1 }, { n: 3 }]);
      // the sender's side: still connected, and a later message still gets through
      rawT.write(frame({ seq: 4 }));
      await until(() => server.got.length === 3);
      expect(raw.lost).toEqual([]);
      expect(server.closeReason).toBeNull();
      rawT.close();
      await until(() => server.lost.length === 1);
    });
  });

  it('SignatureExpired says how late; UnknownKeyId names the kid', async () => {
    await fx.run(async () => {
      const raw = new Raw();
      const server = new Recorder(opts('server', { skew: 2 }));
      const [rawT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      const now = Math.floor(fx.clock!.epoch() * 1000);
      rawT.write(Buffer.concat([frame({ seq: 1, issuedAtMs: now - 20_000, ttlMs: 10_000 }), frame({ seq: 2, kid: 'old-key' })]));
      await until(() => server.rejected.length === 2);
      const e = server.rejected[0] as SignatureExpired;
      expect(e.code).toBe('TW_SIGNATURE_EXPIRED');
      expect(e.lateBy).toBeGreaterThanOrEqual(8);
      expect(e.lateBy).toBeLessThan(8.5);
      expect((server.rejected[1] as UnknownKeyId).kid).toBe('old-key');
      rawT.close();
      await until(() => server.lost.length === 1);
    });
  });

  it('closes after maxRejections with the reason logged; the peer sees the connection end', async () => {
    await fx.run(async () => {
      const warns: [string, Record<string, unknown>][] = [];
      const raw = new Raw();
      const server = new Recorder(opts('server', { maxRejections: 3, logger: { warn: (m, f) => warns.push([m, f]) } }));
      const [rawT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      const bad = (s: number) => frame({ seq: s, secret: Buffer.alloc(32, 9) });
      rawT.write(Buffer.concat([bad(1), frame({ seq: 2 }), bad(3), bad(4), frame({ seq: 5 })]));
      await until(() => raw.lost.length === 1 && server.lost.length === 1);
      expect(server.rejected.map((e) => e.code)).toEqual(['TW_BAD_SIGNATURE', 'TW_BAD_SIGNATURE', 'TW_BAD_SIGNATURE']);
      // the valid message before the limit was delivered; the one after the close decision was not
      expect(server.got.map(([m]) => m)).toEqual([{ n: 2 }]);
      expect(server.closeReason?.code).toBe('TW_BAD_SIGNATURE');
      expect(warns).toHaveLength(1);
      expect(warns[0]![0]).toBe('closing the connection after 3 rejected messages; last: TW_BAD_SIGNATURE message signature does not match for kid k1, seq 4');
      expect(warns[0]![1]).toMatchObject({ code: 'TW_BAD_SIGNATURE', side: 'server', rejections: 3 });
      expect(raw.lost).toEqual([null]);
    });
  });

  it('a frame over maxFrameSize is fatal: rejected, logged, connection closed, earlier frames delivered', async () => {
    await fx.run(async () => {
      const warns: string[] = [];
      const raw = new Raw();
      const server = new Recorder(opts('server', { maxFrameSize: 200, logger: { warn: (m) => warns.push(m) } }));
      const [rawT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      rawT.write(Buffer.concat([frame({ seq: 1 }), Buffer.from([0, 0, 1, 0]), Buffer.alloc(300)]));
      await until(() => raw.lost.length === 1 && server.lost.length === 1);
      expect(server.got.map(([m]) => m)).toEqual([{ n: 1 }]);
      expect(server.rejected.map((e) => [e.code, (e as BadData).fatal])).toEqual([['TW_FRAME_TOO_LARGE', true]]);
      expect(server.closeReason?.code).toBe('TW_FRAME_TOO_LARGE');
      expect(warns).toEqual(['closing the connection: TW_FRAME_TOO_LARGE frame of 256 bytes exceeds maxFrameSize 200']);
    });
  });

  it('the default messageRejected logs each rejection', async () => {
    await fx.run(async () => {
      const infos: [string, Record<string, unknown>][] = [];
      class Plain extends MessageProtocol {}
      const raw = new Raw();
      const server = new Plain(opts('server', { logger: { info: (m, f) => infos.push([m, f]) } }));
      const [rawT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      rawT.write(frame({ seq: 1, kid: 'zz' }));
      await until(() => infos.length === 1);
      expect(infos[0]![0]).toBe('rejected a message: TW_UNKNOWN_KEY_ID unknown key id zz');
      expect(infos[0]![1]).toMatchObject({ code: 'TW_UNKNOWN_KEY_ID', side: 'server' });
      rawT.close();
    });
  });

  it('a nonce store stops a replay onto another connection; duplicateNonce can answer it instead', async () => {
    await fx.run(async () => {
      const store = new MemoryNonceStore({ clock: fx.clock! });
      class Dedup extends Recorder {
        dups: unknown[] = [];
        handleDups = false;
        override duplicateNonce(m: unknown): boolean {
          this.dups.push(m);
          return this.handleDups;
        }
      }
      const raw1 = new Raw();
      const s1 = new Dedup(opts('server', { nonceStore: store }));
      const [t1] = createMemoryPair(fx.loop, raw1, s1);
      const raw2 = new Raw();
      const s2 = new Dedup(opts('server', { nonceStore: store }));
      const [t2] = createMemoryPair(fx.loop, raw2, s2);
      await until(() => s1.transport !== null && s2.transport !== null);
      const f = frame({ seq: 1 });
      t1.write(f);
      await until(() => s1.got.length === 1);
      // the same bytes on a second connection: fresh seq window there, but the nonce is taken
      t2.write(f);
      await until(() => s2.rejected.length === 1);
      expect(s2.rejected[0]!.code).toBe('TW_REPLAYED_MESSAGE');
      expect(s2.dups).toEqual([{ n: 1 }]);
      expect(s2.got).toEqual([]);
      // an idempotent retry: same nonce, new seq; the subclass answers it
      s2.handleDups = true;
      t2.write(frame({ seq: 2, nonce: Buffer.alloc(16, 1), payload: encode({ n: 1 }) }));
      await until(() => s2.dups.length === 2);
      expect(s2.stats.duplicates).toBe(1);
      expect(s2.rejected).toHaveLength(1);
      t1.close();
      t2.close();
      await store.close();
    });
  });

  it('keeps arrival order across an asynchronous nonce store that answers out of order', async () => {
    await fx.run(async () => {
      // A real MemoryNonceStore behind random extra latency (as Redis replies would arrive).
      const inner = new MemoryNonceStore({ clock: fx.clock! });
      let k = 0;
      const delays = [5, 1, 4, 0, 3, 2, 6, 0, 1, 2];
      const slow: NonceStore = {
        reserve: (n, ttl) => new Promise((res, rej) => {
          const d = delays[k++ % delays.length]!;
          setTimeout(() => inner.reserve(n, ttl).then(res, rej), d);
        }),
        close: () => inner.close(),
      };
      const raw = new Raw();
      const server = new Recorder(opts('server', { nonceStore: slow }));
      const [rawT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      const frames = [];
      for (let i = 1; i <= 20; i++) frames.push(i === 7 ? frame({ seq: i, secret: Buffer.alloc(32, 3) }) : frame({ seq: i }));
      rawT.write(Buffer.concat(frames));
      rawT.write(frame({ seq: 21, nonce: Buffer.alloc(16, 2) })); // a nonce already used by seq 2
      for (let i = 0; i < 1000 && server.got.length + server.rejected.length < 21; i++) await new Promise((r) => setTimeout(r, 5));
      expect(server.got.map(([m]) => (m as { n: number }).n)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1).filter((i) => i !== 7));
      expect(server.rejected.map((e) => e.code)).toEqual(['TW_BAD_SIGNATURE', 'TW_REPLAYED_MESSAGE']);
      rawT.close();
      await inner.close();
    });
  });

  it('pauses reading while too many messages wait for a slow nonce store, and resumes as they drain', async () => {
    await fx.run(async () => {
      const inner = new MemoryNonceStore({ clock: fx.clock! });
      let gate!: () => void;
      const opened = new Promise<void>((r) => (gate = r));
      const gated: NonceStore = { reserve: (n, ttl) => opened.then(() => inner.reserve(n, ttl)), close: () => inner.close() };
      const raw = new Raw();
      const server = new Recorder(opts('server', { nonceStore: gated }));
      const [rawT, serverT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      const n = MAX_PENDING_RESERVATIONS + 100;
      const frames: Buffer[] = [];
      for (let i = 1; i <= n; i++) frames.push(frame({ seq: i, nonce: Buffer.from(i.toString(16).padStart(32, '0'), 'hex') }));
      rawT.write(Buffer.concat(frames));
      await until(() => !serverT.isReading());
      expect(server.got).toEqual([]);
      gate();
      await until(() => server.got.length === n, 2000);
      expect(serverT.isReading()).toBe(true);
      expect(server.got.map(([m]) => (m as { n: number }).n)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      rawT.close();
      await inner.close();
    });
  });

  it('a store failure fails the message closed without counting against the peer', async () => {
    await fx.run(async () => {
      const store = new MemoryNonceStore({ clock: fx.clock! });
      await store.close(); // every reserve now rejects with StoreUnavailable
      const raw = new Raw();
      const server = new Recorder(opts('server', { nonceStore: store, maxRejections: 1 }));
      const [rawT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      rawT.write(Buffer.concat([frame({ seq: 1 }), frame({ seq: 2 })]));
      await until(() => server.rejected.length === 2);
      expect(server.rejected.map((e) => e.code)).toEqual(['TW_STORE_UNAVAILABLE', 'TW_STORE_UNAVAILABLE']);
      expect(server.got).toEqual([]);
      expect(server.closeReason).toBeNull();
      expect(raw.lost).toEqual([]);
      rawT.close();
    });
  });

  it('an exception in messageReceived is reported and the other messages are still delivered', async () => {
    await fx.run(async () => {
      class Throws extends Recorder {
        override messageReceived(m: unknown, meta: MessageMeta): void {
          super.messageReceived(m, meta);
          if ((m as { n: number }).n === 2) throw new Error('handler bug');
        }
      }
      const raw = new Raw();
      const server = new Throws(opts('server'));
      const [rawT] = createMemoryPair(fx.loop, raw, server);
      await until(() => server.transport !== null);
      rawT.write(Buffer.concat([frame({ seq: 1 }), frame({ seq: 2 }), frame({ seq: 3 })]));
      await until(() => server.got.length === 3);
      const recs = fx.take();
      expect(recs).toHaveLength(1);
      expect(recs[0]!.message).toBe('messageReceived raised');
      expect(String(recs[0]!.exception)).toContain('handler bug');
      rawT.close();
    });
  });

  it('keyring rotation mid-connection', async () => {
    await fx.run(async () => {
      const cr = keyring();
      const sr = keyring();
      const client = new Recorder(opts('client', { keyring: cr }));
      const server = new Recorder(opts('server', { keyring: sr }));
      createMemoryPair(fx.loop, client, server);
      await until(() => server.transport !== null && client.transport !== null);
      client.sendMessage(1);
      await until(() => server.got.length === 1);
      sr.add('k2', Buffer.alloc(32, 0x22), { sign: false }); // deploy verify-only first
      cr.add('k2', Buffer.alloc(32, 0x22)); // then switch signing
      client.sendMessage(2);
      await until(() => server.got.length === 2);
      expect(server.got.map(([m, meta]) => [m, meta.kid])).toEqual([[1, 'k1'], [2, 'k2']]);
      sr.remove('k1'); // retire the old key: k2 keeps working
      client.sendMessage(3);
      await until(() => server.got.length === 3);
      // with k1 gone and k2 verify-only the server has no signing key; it switches to k2, which the client verifies
      expect(() => server.sendMessage('s')).toThrow(/no signing key/);
      sr.add('k2', Buffer.alloc(32, 0x22));
      server.sendMessage('s');
      await until(() => client.got.length === 1);
      expect(client.got[0]![1].kid).toBe('k2');
      client.close();
    });
  });

  it('sendMessage refuses before connectionMade and after close, and unencodable messages', async () => {
    await fx.run(async () => {
      const client = new Recorder(opts('client'));
      expect(() => client.sendMessage(1)).toThrow(/not open/);
      const server = new Recorder(opts('server'));
      createMemoryPair(fx.loop, client, server);
      await until(() => client.transport !== null);
      const cyc: Record<string, unknown> = {};
      cyc.c = cyc;
      expect(() => client.sendMessage(cyc)).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
      expect(() => client.sendMessage(1, { kind: 0 })).toThrow(RangeError);
      expect(() => client.sendMessage(1, { nonce: Buffer.alloc(3) })).toThrow(RangeError);
      client.sendMessage('last');
      client.close(); // flushes first
      expect(() => client.sendMessage(2)).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_CLOSED' }));
      await until(() => server.got.length === 1 && server.lost.length === 1);
      expect(server.got[0]![0]).toBe('last');
    });
  });

  it('bindToTls: true on a transport without exportKeyingMaterial fails connectionMade', async () => {
    await fx.run(async () => {
      const raw = new Raw();
      const server = new Recorder(opts('server', { bindToTls: true }));
      createMemoryPair(fx.loop, raw, server);
      await until(() => raw.lost.length === 1);
      const recs = fx.take();
      expect(recs.some((r) => String(r.exception).includes('bindToTls'))).toBe(true);
    });
  });

  it('fuzz: random bytes and mutated frames never crash the server; another connection keeps working', async () => {
    await fx.run(async () => {
      const good = new Recorder(opts('client'));
      const goodServer = new Recorder(opts('server', { maxRejections: 1_000_000 }));
      createMemoryPair(fx.loop, good, goodServer);
      const valid = frame({ seq: 1 });
      const samples = fc.sample(fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })
          .map((muts) => { const b = Buffer.from(valid); for (const [i, v] of muts) b[i] = v; return b; }),
      ), { numRuns: 300, seed: 42 });
      const servers: Recorder[] = [];
      for (const s of samples) {
        const raw = new Raw();
        const server = new Recorder(opts('server', { maxFrameSize: 4096 }));
        servers.push(server);
        const [t] = createMemoryPair(fx.loop, raw, server);
        await until(() => server.transport !== null);
        t.write(s);
        t.write(frame({ seq: 100 })); // a valid message after the garbage
        await sleep(0);
        await sleep(0);
        t.abort();
      }
      await until(() => servers.every((s) => s.lost.length === 1));
      for (const s of servers) for (const e of s.rejected) expect(e.code).toMatch(/^TW_/);
      // the untouched connection still round-trips
      await until(() => good.transport !== null);
      good.sendMessage('still here');
      await until(() => goodServer.got.length === 1);
      expect(fx.take()).toEqual([]);
      good.close();
    });
  });
});

export type { Transport };
