/**
 * The `maxRejections`-th rejection closes the connection, and nothing after it in the same chunk is processed: no
 * nonce is reserved for it in the store, it is not delivered and not reported. Before the fix, the frames after the
 * threshold in the same chunk still went through the checks, were marked in the sequence window and reserved their
 * nonces (a retry of them on a new connection would then have been refused as a replay).
 *
 * Real mutual TLS on 127.0.0.1 (port 0); the client is a raw node:tls socket writing sealed frames in one write, the
 * store a real MemoryNonceStore whose `size` says how many nonces were reserved.
 */
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { closeServers, serveRecorders, untilOn, oneKeyRing } from '../support/wire-tls.js';
import type { Recorder } from '../support/wire-tls.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import '../../src/net/index.js';
import type { Server } from '../../src/net/index.js';
import type { MessageProtocolOptions } from '../../src/wire/message-protocol.js';
import { Keyring, TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH, deriveDirectionKey } from '../../src/wire/keyring.js';
import { sealEnvelope } from '../../src/wire/signing.js';
import { encode } from '../../src/wire/codec.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import type { NonceStore } from '../../src/wire/stores.js';

const fx = useLoop({ real: true });
let ca: TestCA;
const SECRET = Buffer.alloc(32, 0x2d);
const servers: Server[] = [];
const socks: TLSSocket[] = [];

beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });
afterEach(async () => {
  for (const s of socks.splice(0)) s.destroy();
  const ss = servers.splice(0);
  await fx.loop.runUntilComplete(async () => {
    await closeServers(ss);
  });
});

const ring = (): Keyring => oneKeyRing(SECRET);

const until = (pred: () => boolean, seconds = 5): Promise<void> => untilOn(fx.loop, pred, seconds);

/** A raw TLS client that seals its own c2s frames (bound to its TLS session, as the server expects by default). */
async function rawClient(port: number): Promise<{ sock: TLSSocket; closed: () => boolean; frame: (n: number, good: boolean) => Buffer }> {
  const sock = tlsConnect({ host: '127.0.0.1', port, ...ca.clientOptions });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  socks.push(sock);
  let closed = false;
  sock.on('close', () => { closed = true; });
  sock.on('error', () => undefined);
  const binding = (sock.exportKeyingMaterial as (length: number, label: string) => Buffer).call(sock, TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL);
  let seq = 0;
  const frame = (n: number, good: boolean): Buffer => {
    const now = Math.floor(fx.loop.clock.epoch() * 1000);
    // A bad frame is signed with another secret: TW_BAD_SIGNATURE, one rejection each.
    return sealEnvelope({ key: deriveDirectionKey(good ? SECRET : Buffer.alloc(32, 1), 'c2s', binding), kid: 'k1', kind: 16,
      flags: 1, seq: ++seq, issuedAtMs: now, expiresAtMs: now + 30_000, nonce: Buffer.alloc(16, n), payload: encode({ n }) }, jsMac);
  };
  return { sock, closed: () => closed, frame };
}

async function serve(options: Partial<MessageProtocolOptions>): Promise<{ port: number; protocols: Recorder[] }> {
  return serveRecorders(fx.loop, ca.serverOptions, servers, { keyring: ring(), ...options });
}

describe('the maxRejections-th rejection stops the processing of its chunk', () => {
  it.each([
    ['rejections first (the store is idle when the threshold is hit)', 0],
    ['one good message first (the rejections queue behind its reservation)', 1],
  ])('%s: no nonce is reserved, nothing delivered or reported after the threshold', async (_name, goodFirst) => {
    await fx.run(async () => {
      const store = new MemoryNonceStore();
      let reserves = 0;
      const counting: NonceStore = {
        reserve: (nonce, ttl) => { reserves++; return store.reserve(nonce, ttl); },
        close: () => store.close(),
      };
      const { port, protocols } = await serve({ nonceStore: counting, maxRejections: 4 });
      const c = await rawClient(port);
      await until(() => protocols[0] !== undefined);
      const frames: Buffer[] = [];
      let n = 0;
      for (let i = 0; i < goodFirst; i++) frames.push(c.frame(++n, true));
      for (let i = 0; i < 4; i++) frames.push(c.frame(++n, false));
      for (let i = 0; i < 6; i++) frames.push(c.frame(++n, true)); // after the threshold: never to be looked at
      c.sock.write(Buffer.concat(frames));
      const p = protocols[0]!;
      await until(() => c.closed() && p.lost.length === 1);
      expect(p.closeReason?.code).toBe('TW_BAD_SIGNATURE');
      expect(p.rejected.map((e) => e.code)).toEqual(Array(4).fill('TW_BAD_SIGNATURE'));
      expect(p.got.map(([m]) => m)).toEqual(goodFirst === 1 ? [{ n: 1 }] : []);
      // Before: 6 (or 7) reservations, the nonces of messages never delivered burnt in the shared store.
      expect(reserves).toBe(goodFirst);
      expect(store.size).toBe(goodFirst);
      expect(p.stats).toMatchObject({ received: goodFirst, rejected: 4 });
    });
  });

  it('without a nonce store: the frames after the threshold are neither delivered nor reported', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serve({ maxRejections: 3 });
      const c = await rawClient(port);
      await until(() => protocols[0] !== undefined);
      const frames = [c.frame(1, true), c.frame(2, false), c.frame(3, false), c.frame(4, false), c.frame(5, true), c.frame(6, false)];
      c.sock.write(Buffer.concat(frames));
      const p = protocols[0]!;
      await until(() => c.closed() && p.lost.length === 1);
      expect(p.got.map(([m]) => m)).toEqual([{ n: 1 }]);
      expect(p.rejected.map((e) => e.code)).toEqual(Array(3).fill('TW_BAD_SIGNATURE'));
      expect(p.stats).toMatchObject({ received: 1, rejected: 3 });
    });
  });
});
