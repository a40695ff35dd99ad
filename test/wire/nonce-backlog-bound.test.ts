/**
 * While an asynchronous nonce store is slow (a Redis round trip, an outage until its command timeout), what arrives
 * behind the message waiting for it is queued, to keep arrival order. The queue is bounded by pausing reading at
 * MAX_PENDING_RESERVATIONS items. Before the fix only verified messages counted towards that bound: rejections
 * queued behind them did not, and the one kind a peer can send without end is not counted towards maxRejections
 * either (TW_SIGNATURE_EXPIRED on TLS-bound keys: the peer's own late messages), so a client holding the shared key
 * grew the server's queue without bound (an error object per 80-byte frame) for as long as the store was slow.
 * Real mutual TLS on 127.0.0.1 (port 0), the hostile client a raw node:tls socket that binds its keys itself.
 */
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { serveRecorders, useWireTls, untilOn, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import { Keyring, TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH, deriveDirectionKey } from '../../src/wire/keyring.js';
import { MAX_PENDING_RESERVATIONS } from '../../src/wire/message-protocol.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import type { NonceStore } from '../../src/wire/nonces.js';
import { sealEnvelope } from '../../src/wire/signing.js';
import { encode } from '../../src/wire/codec.js';
import { jsMac } from '../../src/wire/mac-js.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x2b);

const ring = (): Keyring => oneKeyRing(SECRET);

const until = (pred: () => boolean, seconds = 5): Promise<void> => untilOn(fx.loop, pred, seconds);

describe('the queue behind a slow nonce store is bounded', () => {
  it('a flood of expired (uncounted) messages behind a reservation pauses reading; all are reported, in order, once the store answers', async () => {
    await fx.run(async () => {
      const inner = new MemoryNonceStore();
      let open!: () => void;
      const gate = new Promise<void>((r) => { open = r; });
      // A store that is slow to answer, as Redis during an outage (until its command timeout).
      const slow: NonceStore = { reserve: (n, ttl) => gate.then(() => inner.reserve(n, ttl)), close: () => inner.close() };
      const { port, protocols } = await serveRecorders(fx.loop, wx.ca.serverOptions, wx.servers, { keyring: ring(), nonceStore: slow });
      const sock = tlsConnect({ host: '127.0.0.1', port, ...wx.ca.clientOptions });
      await new Promise<void>((resolve, reject) => { sock.once('secureConnect', () => resolve()); sock.once('error', reject); });
      sock.on('error', () => undefined);
      wx.clients.push({ abort: () => sock.destroy() });
      const binding = (sock.exportKeyingMaterial as (n: number, l: string) => Buffer).call(sock, TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL);
      const key = deriveDirectionKey(SECRET, 'c2s', binding);
      const now = Math.floor(fx.loop.clock.epoch() * 1000);
      const seal = (seq: number, issuedAtMs: number, message: unknown): Buffer => sealEnvelope({ key, kid: 'k1', kind: 16, flags: 1,
        seq, issuedAtMs, expiresAtMs: issuedAtMs + 10_000, nonce: Buffer.alloc(16, seq % 251), payload: encode(message) }, jsMac);
      const N = MAX_PENDING_RESERVATIONS + 1000;
      const frames: Buffer[] = [seal(1, now, 'first')];
      for (let i = 0; i < N; i++) frames.push(seal(2 + i, now - 60_000, i)); // expired 50 s ago: TW_SIGNATURE_EXPIRED
      sock.write(Buffer.concat(frames));
      await until(() => protocols[0]?.transport !== null && protocols[0]?.transport !== undefined);
      const server = protocols[0]!;
      const t = server.transport!;
      // Reading pauses once the queue holds more than MAX_PENDING_RESERVATIONS items, rejections included.
      await until(() => !t.isReading());
      expect(server.got).toEqual([]);
      expect(server.rejected).toEqual([]);
      open();
      await until(() => server.got.length === 1 && server.rejected.length === N);
      sock.write(seal(N + 2, Math.floor(fx.loop.clock.epoch() * 1000), 'last'));
      await until(() => server.got.length === 2);
      expect(server.got.map(([m]) => m)).toEqual(['first', 'last']);
      expect(server.rejected.length).toBe(N);
      expect(server.rejected.every((e) => e.code === 'TW_SIGNATURE_EXPIRED')).toBe(true);
      // Not counted against the peer (TLS-bound, the peer's own late messages): the connection stays, reading again.
      expect(server.closeReason).toBeNull();
      expect(t.isReading()).toBe(true);
      expect(t.isClosing()).toBe(false);
      await inner.close();
    });
  });
});
