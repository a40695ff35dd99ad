/**
 * A receiver accepts a message while `now <= expiresAt + skew` (docs/wire-format.md §6 step 5: the last instant
 * included), and reserves its nonce "for the rest of its acceptable life" (step 7). It reserved exactly
 * `expiresAt + skew - now`, and a MemoryNonceStore holds an entry while its expiry is *later* than now: at the
 * instant `now == expiresAt + skew` the message was still acceptable and its nonce already forgotten, so on an
 * unbound connection (the sequence window is per connection) a recorded message replayed at that instant was
 * accepted a second time. Now the nonce is held one millisecond (the wire's time unit) past the last instant the
 * message can be accepted.
 *
 * Real mutual TLS on 127.0.0.1, port 0, with raw node:tls clients writing sealed frames; the server's protocol and its
 * MemoryNonceStore read a VirtualClock the test moves, so the instants are exact.
 */
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { serveRecorders, untilOn, useWireTls, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import { VirtualClock } from '../../src/loop/clock.js';
import { deriveDirectionKey } from '../../src/wire/keyring.js';
import { sealEnvelope } from '../../src/wire/signing.js';
import { encode } from '../../src/wire/codec.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x5e);
const ISSUED_MS = 1_767_225_600_000;          // 2026-01-01T00:00:00Z
const EXPIRES_MS = ISSUED_MS + 30_000;
const SKEW = 5;

async function rawClient(port: number): Promise<TLSSocket> {
  const sock = tlsConnect({ host: '127.0.0.1', port, ...wx.ca.clientOptions });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  sock.on('error', () => undefined);
  wx.clients.push({ abort: () => sock.destroy() });
  return sock;
}

describe('a nonce is remembered through the last instant its message is accepted', () => {
  it('a replay on another connection at exactly expiresAt + skew is refused', async () => {
    await fx.run(async () => {
      const clock = new VirtualClock({ epochStart: ISSUED_MS / 1000 });
      const nonceStore = new MemoryNonceStore({ clock });
      const { port, protocols } = await serveRecorders(fx.loop, wx.ca.serverOptions, wx.servers,
        { keyring: oneKeyRing(SECRET), bindToTls: false, nonceStore, clock, skew: SKEW });
      // One recorded message: unbound keys, so its bytes verify on any connection with the same keys.
      const frame = sealEnvelope({ key: deriveDirectionKey(SECRET, 'c2s'), kid: 'k1', kind: 16, flags: 0, seq: 1,
        issuedAtMs: ISSUED_MS, expiresAtMs: EXPIRES_MS, nonce: Buffer.alloc(16, 0xab), payload: encode({ buy: 1 }) }, jsMac);

      clock.advance(30 + SKEW - 0.5);            // half a second before the end of its acceptable life
      const first = await rawClient(port);
      first.write(frame);
      await untilOn(fx.loop, () => protocols[0]?.got.length === 1);

      clock.advance(0.5);                         // now == expiresAt + skew: still acceptable (§6 step 5)
      const second = await rawClient(port);
      second.write(frame);
      await untilOn(fx.loop, () => (protocols[1]?.got.length ?? 0) + (protocols[1]?.rejected.length ?? 0) === 1);
      expect(protocols[1]!.got).toEqual([]);
      expect(protocols[1]!.rejected.map((e) => e.code)).toEqual(['TW_REPLAYED_MESSAGE']);

      clock.advance(0.001);                       // one ms later the message itself is refused as expired
      const third = await rawClient(port);
      third.write(frame);
      await untilOn(fx.loop, () => (protocols[2]?.rejected.length ?? 0) === 1);
      expect(protocols[2]!.rejected.map((e) => e.code)).toEqual(['TW_SIGNATURE_EXPIRED']);
    });
  });
});
