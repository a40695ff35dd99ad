/**
 * The signed message of the peers (bench/README.md), in Node: body = msgpack([expiresAt, nonce16, message]) followed by
 * HMAC-SHA256(key, packed); a frame is a 4-byte big-endian length then the body. bench/peers/asyncio_signed.py
 * builds the same bytes. Used by the gRPC peer (whose messages are these bodies) and by the raw baseline, which
 * moves pre-built frames of exactly this shape without signing anything.
 */
import { createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';

/** The bench's shared HMAC key (same bytes as KEY in asyncio_signed.py). */
export const PEER_KEY = Buffer.from('7477'.repeat(16), 'hex');
/** Seconds a peer message stays valid. */
export const PEER_TTL = 30;
const TAG = 32;

// Plain maps and arrays, as Python's msgpack writes and reads them (no msgpackr records).
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** 16-byte nonces from a 64 KiB pool filled by `randomFillSync`. */
export class NoncePool {
  #buf = Buffer.alloc(65536);
  #off = 65536;
  /** The next 16 random bytes (a view into the pool). */
  take(): Buffer {
    if (this.#off + 16 > this.#buf.length) {
      this.#buf = Buffer.alloc(65536);
      randomFillSync(this.#buf);
      this.#off = 0;
    }
    const n = this.#buf.subarray(this.#off, this.#off + 16);
    this.#off += 16;
    return n;
  }
}

/** Signs `message` into a peer body (no length prefix). `expiresAt` in epoch seconds. */
export function signBody(message: unknown, expiresAt: number, nonce: Uint8Array): Buffer {
  const packed = packr.pack([expiresAt, nonce, message]);
  const tag = createHmac('sha256', PEER_KEY).update(packed).digest();
  return Buffer.concat([packed, tag]);
}

/** A whole frame: 4-byte big-endian length + {@link signBody}. */
export function signFrame(message: unknown, expiresAt: number, nonce: Uint8Array): Buffer {
  const body = signBody(message, expiresAt, nonce);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** Checks a peer body's tag and expiry (epoch seconds `now`) and returns its message; throws on a bad one. */
export function verifyBody(body: Uint8Array, now: number): unknown {
  if (body.length < TAG + 1) throw new Error('short body');
  const packed = body.subarray(0, body.length - TAG);
  const tag = createHmac('sha256', PEER_KEY).update(packed).digest();
  if (!timingSafeEqual(tag, body.subarray(body.length - TAG))) throw new Error('bad signature');
  const decoded = unpackr.unpack(packed) as [number, Uint8Array, unknown];
  if (!Array.isArray(decoded) || decoded[0] < now) throw new Error('expired or malformed');
  return decoded[2];
}

/** Wall-clock epoch seconds (bench harness only). */
export function epochNow(): number {
  return Date.now() / 1000;
}
