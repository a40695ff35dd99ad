/**
 * itsdangerous's `encoding.py`: bytes helpers, unpadded URL-safe base64, and the timestamp integer encoding.
 *
 * One deliberate difference: {@link base64Decode} is strict. itsdangerous's decoder drops characters outside the
 * alphabet, accepts `=` padding and ignores the spare low bits of the last character, so several spellings of one
 * signature verify (`…rOA`, `…rOB`, `…rOC`, `…rOD`: docs/security-model.md §3.5). Everything itsdangerous *emits*
 * is canonical, so a strict decoder loads every token Python makes and refuses only the malleable variants.
 */
import { BadData } from '../errors.js';

/** A key, salt, separator or value: text (encoded as UTF-8) or bytes. */
export type StrOrBytes = string | Uint8Array;

/** True when `s` has no lone surrogates, i.e. is valid Unicode text. */
export function isWellFormed(s: string): boolean {
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}

const ALPHABET_RE = /^[A-Za-z0-9_-]*$/;

/** The bytes of `s`: UTF-8 for text (itsdangerous's `want_bytes`), the same bytes (as a Buffer view) otherwise. */
export function wantBytes(s: StrOrBytes): Buffer {
  if (typeof s === 'string') {
    // Python's str.encode('utf-8') refuses lone surrogates; Node would silently write U+FFFD instead.
    if (!isWellFormed(s)) throw new TypeError('text with a lone surrogate cannot be encoded as UTF-8');
    return Buffer.from(s, 'utf8');
  }
  if (s instanceof Uint8Array) return Buffer.isBuffer(s) ? s : Buffer.from(s.buffer, s.byteOffset, s.byteLength);
  throw new TypeError(`expected a string or Uint8Array, got ${typeof s}`);
}

/**
 * Encodes bytes as URL-safe base64 without padding (RFC 4648 §5, `A-Za-z0-9-_`), as itsdangerous's `base64_encode`.
 * Text in gives text out; bytes in give a Buffer (of ASCII) out.
 */
export function base64Encode(value: string): string;
export function base64Encode(value: Uint8Array): Buffer;
export function base64Encode(value: StrOrBytes): string | Buffer;
export function base64Encode(value: StrOrBytes): string | Buffer {
  const text = wantBytes(value).toString('base64url');
  return typeof value === 'string' ? text : Buffer.from(text, 'latin1');
}

/**
 * Decodes unpadded URL-safe base64, strictly: only `A-Za-z0-9-_`, no padding, no length ≡ 1 (mod 4), and the
 * unused low bits of the last character must be zero (so every byte string has exactly one encoding).
 * @throws BadData "Invalid base64-encoded data" otherwise
 */
export function base64Decode(value: StrOrBytes): Buffer {
  const text = typeof value === 'string' ? value : wantBytes(value).toString('latin1');
  if (!ALPHABET_RE.test(text) || text.length % 4 === 1) throw new BadData('Invalid base64-encoded data');
  const out = Buffer.from(text, 'base64url');
  // Canonical check: re-encoding must give back the same text (rejects non-zero spare bits).
  if (out.toString('base64url') !== text) throw new BadData('Invalid base64-encoded data');
  return out;
}

/** The largest integer {@link intToBytes} accepts: timestamps are seconds, far below 2^53. */
const MAX_INT = Number.MAX_SAFE_INTEGER;

/**
 * itsdangerous's `int_to_bytes`: big-endian unsigned 64-bit with the leading zero bytes stripped (`0` → empty).
 * Examples: 1700000000 → `65 53 f1 00`, 255 → `ff`, 2^32 → `01 00 00 00 00`.
 */
export function intToBytes(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > MAX_INT) throw new RangeError(`expected an integer in [0, 2^53), got ${n}`);
  const full = Buffer.alloc(8);
  full.writeBigUInt64BE(BigInt(n));
  let i = 0;
  while (i < 8 && full[i] === 0) i++;
  return full.subarray(i);
}

/**
 * itsdangerous's `bytes_to_int`: right-justified big-endian (so zero-padded spellings are accepted, as in Python).
 * @throws BadData "Malformed timestamp" for more than 8 bytes or a value above 2^53 − 1
 */
export function bytesToInt(bytes: Uint8Array): number {
  if (bytes.length > 8) throw new BadData('Malformed timestamp');
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  if (v > BigInt(MAX_INT)) throw new BadData('Malformed timestamp');
  return Number(v);
}
