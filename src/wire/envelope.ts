/**
 * The envelope: a fixed binary header carrying every security field, then the msgpack payload, then an
 * HMAC-SHA256 tag over the exact bytes before it (docs/wire-format.md §2–3 describe every byte).
 *
 * ```
 * offset     size  field
 * 0          1     version      0x01
 * 1          1     kind         1..255 (KIND); 0 is invalid
 * 2          1     flags        bit 0: keys bound to the TLS session; bits 1-7 must be 0
 * 3          1     kidLen       k, 1..32
 * 4          k     kid          ASCII key id
 * 4+k        8     seq          u64 big-endian, 1..2^53-1, per connection and direction
 * 12+k       8     issuedAt     u64 big-endian, milliseconds since the Unix epoch
 * 20+k       8     expiresAt    u64 big-endian, milliseconds since the Unix epoch, >= issuedAt
 * 28+k       16    nonce        128 random bits
 * 44+k       n     payload      msgpack, n >= 1
 * 44+k+n     32    tag          HMAC-SHA256(direction key, bytes 0 .. 44+k+n-1)
 * ```
 *
 * This module is pure: it writes and parses headers; signing.ts MACs and checks them.
 *
 * @module
 */
import { MalformedEnvelope } from '../errors.js';
import { TAG_SIZE } from './mac.js';

/** The envelope version this module writes and reads. */
export const ENVELOPE_VERSION = 1;
/** Bytes of the header other than the kid: version, kind, flags, kidLen, seq, issuedAt, expiresAt, nonce. */
export const HEADER_FIXED_SIZE = 44;
/** Bytes of a nonce. */
export const NONCE_SIZE = 16;
/** Flag bit: the direction keys are bound to the TLS session (exporter value as HKDF salt). */
export const FLAG_TLS_BOUND = 0x01;
/** The smallest valid envelope: 1-byte kid, 1-byte payload, tag. */
export const MIN_ENVELOPE_SIZE = HEADER_FIXED_SIZE + 1 + 1 + TAG_SIZE;
/** Largest seq and timestamp value (2^53 - 1), so every field is an exact JavaScript number. */
export const MAX_U53 = Number.MAX_SAFE_INTEGER;

/**
 * Message kinds. The first ones are reserved for control messages (RPC, sessions) so the format never changes for
 * them (10, SESSION, names which client session a connection belongs to); 11–15 are reserved for future control
 * kinds; applications use 16 (the default) and above.
 */
export const KIND = Object.freeze({
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 3,
  NOTIFY: 4,
  CANCEL: 5,
  PING: 6,
  PONG: 7,
  RECONNECT: 8,
  GOAWAY: 9,
  SESSION: 10,
  MESSAGE: 16,
} as const);

/** The parsed header of an envelope (times in milliseconds, as on the wire). */
export interface EnvelopeHeader {
  /** Message kind, 1..255. */
  kind: number;
  /** Flag bits (see {@link FLAG_TLS_BOUND}). */
  flags: number;
  /** Offset of the kid bytes in the buffer. */
  kidStart: number;
  /** Length of the kid, bytes. */
  kidLen: number;
  /** Sequence number. */
  seq: number;
  /** Issue time, ms since the epoch. */
  issuedAtMs: number;
  /** Expiry time, ms since the epoch. */
  expiresAtMs: number;
  /** Offset of the 16 nonce bytes. */
  nonceStart: number;
  /** Offset of the payload. */
  payloadStart: number;
  /** Offset just past the payload, where the tag starts. */
  tagStart: number;
}

/** The fields a sender puts in a header. */
export interface HeaderFields {
  /** Message kind, 1..255. */
  kind: number;
  /** Flag bits (see {@link FLAG_TLS_BOUND}). */
  flags: number;
  /** The key id's bytes, 1..32. */
  kid: Uint8Array;
  /** Sequence number, 1..2^53-1. */
  seq: number;
  /** Issue time, ms since the epoch. */
  issuedAtMs: number;
  /** Expiry, ms since the epoch, >= issuedAtMs. */
  expiresAtMs: number;
  /** Holds the 16 nonce bytes (at {@link HeaderFields.nonceOffset}). */
  nonce: Uint8Array;
  /** Offset of the nonce in `nonce` (default 0). */
  nonceOffset?: number;
}

/** Bytes of the whole envelope (header, payload, tag) for a kid and payload length. */
export function envelopeSize(kidLen: number, payloadLen: number): number {
  return HEADER_FIXED_SIZE + kidLen + payloadLen + TAG_SIZE;
}

/** Reads a u64 big-endian at `o` that must not exceed 2^53 - 1; returns -1 when it does. */
function readU53(b: Uint8Array, o: number): number {
  const hi = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  const lo = ((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0;
  if (hi > 0x1fffff) return -1;
  return hi * 0x100000000 + lo;
}

// The same through a DataView of the buffer's memory (two 32-bit loads instead of eight byte loads).
function readU53View(v: DataView, o: number): number {
  const hi = v.getUint32(o, false);
  if (hi > 0x1fffff) return -1;
  return hi * 0x100000000 + v.getUint32(o + 4, false);
}

// The u64 at `o` as 0x and 16 hex digits: how an error message shows a field beyond 2^53-1 (no exact double for it).
function u64Hex(b: Uint8Array, o: number): string {
  return `0x${Buffer.from(b.buffer, b.byteOffset + o, 8).toString('hex')}`;
}

/** Writes `v` (0..2^53-1) as u64 big-endian at `o`. */
export function writeU53(b: Uint8Array, o: number, v: number): void {
  const hi = Math.floor(v / 0x100000000);
  const lo = v >>> 0;
  b[o] = hi >>> 24; b[o + 1] = hi >>> 16; b[o + 2] = hi >>> 8; b[o + 3] = hi;
  b[o + 4] = lo >>> 24; b[o + 5] = lo >>> 16; b[o + 6] = lo >>> 8; b[o + 7] = lo;
}

/**
 * Writes a header at `buf[off]`; the payload goes at the returned offset. Does not write the payload or the tag.
 * @throws RangeError for out-of-range fields (a bug in the caller, not peer input).
 */
export function writeHeader(buf: Uint8Array, off: number, f: HeaderFields): number {
  const k = f.kid.length;
  if (k < 1 || k > 32) throw new RangeError(`kid must be 1-32 bytes, got ${k}`);
  if (!Number.isInteger(f.kind) || f.kind < 1 || f.kind > 255) throw new RangeError(`kind must be 1..255, got ${f.kind}`);
  if (!(f.seq >= 1 && f.seq <= MAX_U53 && Number.isInteger(f.seq))) throw new RangeError(`seq out of range: ${f.seq}`);
  if (!(f.issuedAtMs >= 0 && f.expiresAtMs >= f.issuedAtMs && f.expiresAtMs <= MAX_U53)) {
    throw new RangeError(`bad times: issuedAt ${f.issuedAtMs} ms, expiresAt ${f.expiresAtMs} ms`);
  }
  buf[off] = ENVELOPE_VERSION;
  buf[off + 1] = f.kind;
  buf[off + 2] = f.flags;
  buf[off + 3] = k;
  buf.set(f.kid, off + 4);
  const h = off + 4 + k;
  writeU53(buf, h, f.seq);
  writeU53(buf, h + 8, Math.floor(f.issuedAtMs));
  writeU53(buf, h + 16, Math.floor(f.expiresAtMs));
  const no = f.nonceOffset ?? 0;
  for (let i = 0; i < NONCE_SIZE; i++) buf[h + 24 + i] = f.nonce[no + i]!;
  return h + 40;
}

/**
 * Parses the header of the envelope `buf[start..end)` into `out` (reused by hot paths; a fresh object by default).
 * Checks only the structure (sizes, version, reserved bits, field ranges), not the MAC or the times. `view`, when
 * given, is a DataView of exactly `buf`'s bytes (offset 0 = buf[0]); the 64-bit fields are then read through it.
 * @throws MalformedEnvelope naming what is wrong.
 */
export function parseHeader(buf: Uint8Array, start: number, end: number, out?: EnvelopeHeader, view?: DataView): EnvelopeHeader {
  const len = end - start;
  if (len < MIN_ENVELOPE_SIZE) throw new MalformedEnvelope(`envelope of ${len} bytes is shorter than the minimum ${MIN_ENVELOPE_SIZE}`);
  const version = buf[start]!;
  if (version !== ENVELOPE_VERSION) throw new MalformedEnvelope(`unsupported envelope version ${version}`);
  const kind = buf[start + 1]!;
  if (kind === 0) throw new MalformedEnvelope('envelope kind 0 is invalid');
  const flags = buf[start + 2]!;
  if ((flags & ~FLAG_TLS_BOUND) !== 0) throw new MalformedEnvelope(`reserved flag bits set: 0x${flags.toString(16)}`);
  const k = buf[start + 3]!;
  if (k < 1 || k > 32) throw new MalformedEnvelope(`kid length ${k} is outside 1..32`);
  const h = start + 4 + k;
  const payloadStart = h + 40;
  const tagStart = end - TAG_SIZE;
  if (tagStart - payloadStart < 1) {
    throw new MalformedEnvelope(`envelope of ${len} bytes has no payload: kid length ${k} needs at least ${HEADER_FIXED_SIZE + k + 1 + TAG_SIZE}`);
  }
  const seq = view !== undefined ? readU53View(view, h) : readU53(buf, h);
  const issuedAtMs = view !== undefined ? readU53View(view, h + 8) : readU53(buf, h + 8);
  const expiresAtMs = view !== undefined ? readU53View(view, h + 16) : readU53(buf, h + 16);
  if (seq < 1) throw new MalformedEnvelope(`seq is outside 1..2^53-1: got ${seq === 0 ? '0' : u64Hex(buf, h)}`);
  if (issuedAtMs < 0) throw new MalformedEnvelope(`timestamp beyond 2^53-1 ms: issuedAt ${u64Hex(buf, h + 8)}`);
  if (expiresAtMs < 0) throw new MalformedEnvelope(`timestamp beyond 2^53-1 ms: expiresAt ${u64Hex(buf, h + 16)}`);
  if (expiresAtMs < issuedAtMs) {
    throw new MalformedEnvelope(`expiresAt is before issuedAt: expiresAt ${expiresAtMs} ms, issuedAt ${issuedAtMs} ms`);
  }
  const o = out ?? ({} as EnvelopeHeader);
  o.kind = kind;
  o.flags = flags;
  o.kidStart = start + 4;
  o.kidLen = k;
  o.seq = seq;
  o.issuedAtMs = issuedAtMs;
  o.expiresAtMs = expiresAtMs;
  o.nonceStart = h + 24;
  o.payloadStart = payloadStart;
  o.tagStart = tagStart;
  return o;
}
