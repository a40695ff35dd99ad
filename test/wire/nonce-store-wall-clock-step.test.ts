/**
 * A message is accepted while the receiver's *wall clock* says `now <= expiresAt + skew` (§6 step 5), and its nonce
 * must be remembered for as long (step 7). MemoryNonceStore measured the nonce's lifetime on the *monotonic* clock:
 * when the wall clock stepped back (an NTP correction of a fast clock, a VM restored from a snapshot), the message
 * stayed acceptable for the size of the step while its nonce was forgotten on the monotonic schedule, so a recorded
 * message replayed on another unbound connection was accepted again (a step back of up to the message's lifetime plus
twice the skew opens such a window; beyond it the message reads as issued in the future). Redis
 * expires keys on its own wall clock; the memory store now measures on `clock.epoch()` as well, the clock the
 * expiry it protects is checked on. A forward step is harmless either way (the message expires with its nonce).
 *
 * Real mutual TLS on 127.0.0.1, port 0, raw node:tls clients writing one sealed frame each. The server's protocol
 * and store read a clock whose monotonic and wall times the test moves separately (the loop runs on the real one).
 */
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { serveRecorders, untilOn, useWireTls, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import type { Clock } from '../../src/loop/clock.js';
import { deriveDirectionKey } from '../../src/wire/keyring.js';
import { sealEnvelope } from '../../src/wire/signing.js';
import { encode } from '../../src/wire/codec.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x7a);
const ISSUED_MS = 1_767_225_600_000;

/** Monotonic time `mono`; wall time `mono + offset`: moving `mono` moves both, moving `offset` steps the wall clock. */
class SteppedClock implements Clock {
  readonly autojump = false;
  mono = 0;
  offset = ISSUED_MS / 1000;
  time(): number { return this.mono; }
  epoch(): number { return this.mono + this.offset; }
}

async function send(port: number, frame: Buffer): Promise<TLSSocket> {
  const sock = tlsConnect({ host: '127.0.0.1', port, ...wx.ca.clientOptions });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  sock.on('error', () => undefined);
  wx.clients.push({ abort: () => sock.destroy() });
  sock.write(frame);
  return sock;
}

describe('MemoryNonceStore keeps a nonce as long as the wall clock accepts its message', () => {
  it('after the wall clock steps back 20 s, a replay on another connection is still refused', async () => {
    await fx.run(async () => {
      const clock = new SteppedClock();
      const nonceStore = new MemoryNonceStore({ clock });
      const { port, protocols } = await serveRecorders(fx.loop, wx.ca.serverOptions, wx.servers,
        { keyring: oneKeyRing(SECRET), bindToTls: false, nonceStore, clock, skew: 5 });
      const frame = sealEnvelope({ key: deriveDirectionKey(SECRET, 'c2s'), kid: 'k1', kind: 16, flags: 0, seq: 1,
        issuedAtMs: ISSUED_MS, expiresAtMs: ISSUED_MS + 30_000, nonce: Buffer.alloc(16, 0x5c), payload: encode({ move: 1 }) }, jsMac);

      await send(port, frame);
      await untilOn(fx.loop, () => protocols[0]?.got.length === 1);

      clock.offset -= 20;                         // the wall clock steps back 20 s
      clock.mono += 36;                           // 36 s later: the nonce's 35 s of monotonic time are over
      await send(port, frame);                    // wall time: issuedAt + 16 s, the message still acceptable
      await untilOn(fx.loop, () => (protocols[1]?.got.length ?? 0) + (protocols[1]?.rejected.length ?? 0) === 1);
      expect(protocols[1]!.got).toEqual([]);
      expect(protocols[1]!.rejected.map((e) => e.code)).toEqual(['TW_REPLAYED_MESSAGE']);
    });
  });

  it('reserve and forget follow epoch(): forgotten once the wall clock passes the ttl, kept while it is behind', async () => {
    const clock = new SteppedClock();
    const store = new MemoryNonceStore({ clock });
    const n = Buffer.alloc(16, 1);
    expect(await store.reserve(n, 10)).toBe(true);
    clock.offset -= 100;                           // wall clock back 100 s
    clock.mono += 50;
    expect(await store.reserve(n, 10)).toBe(false); // 10 s of wall time have not passed
    clock.offset += 100 + 1;                        // and forward again: 51 s of wall time since the reserve
    expect(await store.reserve(n, 10)).toBe(true);
    await store.close();
  });
});
