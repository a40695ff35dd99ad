/**
 * Sealing and opening envelopes, in batches.
 *
 * - {@link Sealer}: the outbound half of a connection. `append()` lays each message (frame prefix, header, payload,
 *   room for the tag) into one contiguous buffer; `flush()` MACs the whole batch in one engine call and hands the
 *   bytes to one write. Nonces come from a pooled `randomFillSync` buffer ({@link NoncePool}).
 * - {@link Opener}: the inbound half. `add()` parses each frame's header and looks its key up; `run()` verifies every
 *   added frame in as few engine calls as there are runs of one key, then checks expiry (with skew) and the
 *   per-connection sequence window ({@link ReplayWindow}), and reports each frame, in order, as accepted or rejected.
 * - {@link KeySchedule}: per-connection, per-direction MAC keys derived from a {@link Keyring} (keyring.ts).
 * - {@link sealEnvelope}: one envelope, for tests, vectors and tools.
 *
 * Verification order (docs/wire-format.md §6): header structure → key lookup → constant-time MAC → times → sequence.
 * Nothing here parses the payload.
 *
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { BadPayload, BadSignature, BadTimeSignature, MalformedEnvelope, ReplayedMessage, SignatureExpired, UnknownKeyId } from '../errors.js';
import type { BadData } from '../errors.js';
import { MAX_FRAME_SIZE } from '../constants.js';
import type { Clock } from '../loop/clock.js';
import { FRAME_HEADER_SIZE } from './frames.js';
import { ENCODE_UNSUPPORTED, MAX_DEPTH, MAX_NODES, encode, encodeInto } from './codec.js';
import type { EncodeOptions } from './codec.js';
import type { EnvelopeHeader } from './envelope.js';
import { ENVELOPE_VERSION, FLAG_TLS_BOUND, HEADER_FIXED_SIZE, MAX_U53, NONCE_SIZE, parseHeader, writeHeader } from './envelope.js';
import type { Direction, KeyEntry, Keyring } from './keyring.js';
import { deriveDirectionKey } from './keyring.js';
import type { MacEngine, MacKey } from './mac.js';
import { TAG_SIZE } from './mac.js';

/** What a verified message's receiver learns about it. Times are epoch seconds. */
export interface MessageMeta {
  /** The key id that signed it. */
  kid: string;
  /** Its kind (see `KIND`). */
  kind: number;
  /** When it was signed, epoch seconds. */
  issuedAt: number;
  /** When it expires, epoch seconds. */
  expiresAt: number;
  /** Its 16-byte nonce (a copy of the envelope's bytes; safe to keep). */
  readonly nonce: Buffer;
  /** Its per-connection, per-direction sequence number. */
  seq: number;
  /** The verified TLS peer (`transport.getExtraInfo('peerIdentity')`), or null. Set by MessageProtocol. */
  peer: unknown;
}

// ---------------------------------------------------------------------------------------------------------------
// Nonces

/**
 * 16-byte random nonces cut from a pooled `randomFillSync` buffer: ~0.07 µs each instead of ~3 µs for
 * `randomBytes(16)` on Node 20. Each nonce is a view of the pool, which is never refilled in place (a fresh pool
 * is allocated when one is used up), so a nonce handed out stays valid.
 */
export class NoncePool {
  private pool: Buffer;
  // The pool as 32-bit words (its own ArrayBuffer, offset 0), for copyInto.
  private words: Uint32Array;
  private pos: number;
  private readonly size: number;

  /** @param size bytes of randomness fetched at a time (default 64 KiB, a multiple of 16). */
  constructor(size = 64 * 1024) {
    this.size = Math.max(NONCE_SIZE, size - (size % NONCE_SIZE));
    this.pool = randomFillSync(Buffer.allocUnsafeSlow(this.size));
    this.words = new Uint32Array(this.pool.buffer, this.pool.byteOffset, this.size >>> 2);
    this.pos = 0;
  }

  /** The next 16 random bytes, as a view of the pool. */
  next(): Buffer {
    const p = this.take();
    return this.pool.subarray(p, p + NONCE_SIZE);
  }

  /**
   * Writes the next 16 random bytes into the memory of `view` at byte `at`, as four 32-bit stores, creating no
   * Buffer (the sending hot path: a view per message cost ~10% of sealing a 100 B message, a byte loop ~7%).
   */
  copyInto(view: DataView, at: number): void {
    const w = this.take() >>> 2;
    const words = this.words;
    // Little-endian loads and stores: the bytes land in the pool's order.
    view.setUint32(at, words[w]!, true);
    view.setUint32(at + 4, words[w + 1]!, true);
    view.setUint32(at + 8, words[w + 2]!, true);
    view.setUint32(at + 12, words[w + 3]!, true);
  }

  private take(): number {
    if (this.pos + NONCE_SIZE > this.size) {
      this.pool = randomFillSync(Buffer.allocUnsafeSlow(this.size));
      this.words = new Uint32Array(this.pool.buffer, this.pool.byteOffset, this.size >>> 2);
      this.pos = 0;
    }
    const p = this.pos;
    this.pos = p + NONCE_SIZE;
    return p;
  }
}

/** The process-wide nonce pool. */
export const noncePool = new NoncePool();

/**
 * 16 fresh random bytes for a message's nonce, for a sender that wants to know (log, retry with) the nonce of a
 * message: pass it as `sendMessage(m, { nonce })`. A view of the process-wide pool, safe to keep.
 */
export function randomNonce(): Buffer {
  return noncePool.next();
}

// ---------------------------------------------------------------------------------------------------------------
// Sequence window

/**
 * The anti-replay window of IPsec ESP / DTLS (RFC 4303 §3.4.3): remembers the highest sequence number seen and a
 * bitmap of the `size` numbers below it. A number is fresh when it is above the highest, or within the window and
 * not yet seen; anything older than the window is refused. O(1) memory per direction of a connection.
 */
export class ReplayWindow {
  /** Width of the window, in sequence numbers. */
  readonly size: number;
  private readonly bits: Uint32Array;
  // size - 1 when size is a power of two (then the bit of seq is seq & mask: sequence numbers are doubles up to
  // 2^53, and `%` on them is a floating-point remainder, the costliest step of accepting a message), else -1.
  private readonly mask: number;
  private top = 0;

  /** @param size window width, a multiple of 32 (default 128). */
  constructor(size = 128) {
    if (!Number.isInteger(size) || size < 32 || size % 32 !== 0) throw new RangeError('window size must be a multiple of 32');
    this.size = size;
    this.bits = new Uint32Array(size / 32);
    this.mask = (size & (size - 1)) === 0 ? size - 1 : -1;
  }

  // Bit index of seq: ToInt32 keeps seq modulo 2^32, a multiple of a power-of-two size, so the mask is exact.
  private slot(seq: number): number {
    return this.mask >= 0 ? seq & this.mask : seq % this.size;
  }

  /** The highest sequence number accepted so far (0 before any). */
  get highest(): number {
    return this.top;
  }

  /** True when `seq` was not seen and is not older than the window. Does not record it. */
  check(seq: number): boolean {
    if (seq > this.top) return true;
    if (seq <= this.top - this.size || seq < 1) return false;
    const i = this.slot(seq);
    return (this.bits[i >>> 5]! & (1 << (i & 31))) === 0;
  }

  /** Records `seq` as seen; call only after {@link check} returned true. */
  mark(seq: number): void {
    const size = this.size;
    if (seq > this.top) {
      if (seq - this.top >= size) {
        this.bits.fill(0);
      } else {
        for (let s = this.top + 1; s < seq; s++) {
          const j = this.slot(s);
          this.bits[j >>> 5]! &= ~(1 << (j & 31));
        }
      }
      this.top = seq;
    }
    const i = this.slot(seq);
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

/** A key entry with the MAC key derived from it for one direction, prepared by one engine. */
export interface DerivedKey {
  /** The keyring entry. */
  readonly entry: KeyEntry;
  /** The prepared direction key. */
  readonly mac: MacKey;
}

/** Options of a {@link KeySchedule}. */
export interface KeyScheduleOptions {
  /** The keys. */
  keyring: Keyring;
  /** Which end this is: a client sends c2s and receives s2c, a server the reverse. */
  side: 'client' | 'server';
  /** The engine that prepares and uses the keys. */
  engine: MacEngine;
  /** The TLS exporter value the keys are bound to, or null for unbound keys. */
  binding?: Uint8Array | null;
}

/**
 * The MAC keys of one connection: for each kid, HKDF-derived per direction (and per TLS session when bound), and
 * prepared once. Follows the keyring: a key added later is derived when first used, a removed key stops verifying.
 */
export class KeySchedule {
  /** The direction this end sends. */
  readonly outbound: Direction;
  /** The direction this end receives. */
  readonly inbound: Direction;
  /** The TLS binding, or null. */
  readonly binding: Uint8Array | null;
  private readonly keyring: Keyring;
  private readonly engine: MacEngine;
  private readonly sendKeys = new Map<string, DerivedKey>();
  private readonly recvKeys = new Map<string, DerivedKey>();
  private version = -1;
  private lastRecv: DerivedKey | null = null;

  /** Creates the schedule; derives nothing until a key is used. */
  constructor(o: KeyScheduleOptions) {
    this.keyring = o.keyring;
    this.engine = o.engine;
    this.binding = o.binding ?? null;
    this.outbound = o.side === 'client' ? 'c2s' : 's2c';
    this.inbound = o.side === 'client' ? 's2c' : 'c2s';
  }

  /** The keyring's version (changes whenever a key is added or removed). */
  get keyringVersion(): number {
    return this.keyring.version;
  }

  private sync(): void {
    if (this.version !== this.keyring.version) {
      this.version = this.keyring.version;
      this.sendKeys.clear();
      this.recvKeys.clear();
      this.lastRecv = null;
    }
  }

  private derive(entry: KeyEntry, dir: Direction): DerivedKey {
    return { entry, mac: this.engine.prepareKey(deriveDirectionKey(entry.secret, dir, this.binding)) };
  }

  /**
   * The key this end signs with now (the keyring's newest signing key).
   * @throws RangeError when the keyring holds no signing key.
   */
  signer(): DerivedKey {
    this.sync();
    const entry = this.keyring.signingKey();
    let d = this.sendKeys.get(entry.kid);
    if (d === undefined) {
      d = this.derive(entry, this.outbound);
      this.sendKeys.set(entry.kid, d);
    }
    return d;
  }

  /** The inbound key whose kid is `buf[start..start+len)`, or undefined when the keyring has no such key. */
  verifier(buf: Buffer, start: number, len: number): DerivedKey | undefined {
    this.sync();
    const last = this.lastRecv;
    if (last !== null) {
      const kb = last.entry.kidBytes;
      if (kb.length === len) {
        let same = true;
        for (let i = 0; i < len; i++) {
          if (kb[i] !== buf[start + i]) {
            same = false;
            break;
          }
        }
        if (same) return last;
      }
    }
    const kid = buf.toString('latin1', start, start + len);
    let d = this.recvKeys.get(kid);
    if (d === undefined) {
      const entry = this.keyring.get(kid);
      if (entry === undefined) return undefined;
      d = this.derive(entry, this.inbound);
      this.recvKeys.set(kid, d);
    }
    this.lastRecv = d;
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sealing

/** Largest batch buffer a {@link Sealer} grows to, bytes (1 MiB). */
export const MAX_SLAB_SIZE = 1024 * 1024;

/**
 * Bytes of a {@link Sealer}'s first batch buffer, by default. An idle connection keeps its current buffer, so this is
 * what each idle connection holds for sending: 2 KiB (it was 16 KiB, 28 KiB more per idle session, both ends,
 * of ~200 KB); a busy one doubles its way up after its first large batch (the first such batch gets a buffer of its
 * own size, so nothing is split).
 */
export const FIRST_SLAB_SIZE = 2 * 1024;
const EMPTY = Buffer.alloc(0);

function checkSendArgs(kind: number, ttl: number, nonce: Uint8Array | undefined): void {
  if (!(ttl >= 0)) throw new RangeError(`ttl must be >= 0 seconds, got ${ttl}`);
  if (!(kind >= 1 && kind <= 255) || (kind | 0) !== kind) throw new RangeError(`kind must be 1..255, got ${kind}`);
  if (nonce !== undefined && nonce.length !== NONCE_SIZE) throw new RangeError(`nonce must be ${NONCE_SIZE} bytes`);
}

/** Options of a {@link Sealer}. */
export interface SealerOptions {
  /** The connection's keys. */
  schedule: KeySchedule;
  /** The MAC engine (the one that prepared the schedule's keys). */
  engine: MacEngine;
  /** Source of `epoch()` for issuedAt. */
  clock: Clock;
  /**
   * Bytes of the first batch buffer (default {@link FIRST_SLAB_SIZE}, 2 KiB). Buffers are allocated on first use,
   * and each next one doubles (up to {@link MAX_SLAB_SIZE}) when a batch filled more than half of the last, so an
   * idle or quiet connection holds little and a busy one few, large buffers. A batch larger than the buffer gets one
   * of its own size.
   */
  slabSize?: number;
  /** Source of nonces (default the process-wide pool). */
  nonces?: NoncePool;
  /**
   * What {@link Sealer.appendValue} may encode beyond plain data, and its limits (default: what a receiver with the
   * default decode options accepts; see `EncodeOptions` in codec.ts).
   */
  encode?: EncodeOptions;
  /**
   * Largest frame body this sealer writes, bytes (default {@link MAX_FRAME_SIZE}, 1 MiB): the peer's `maxFrameSize`,
   * or this end's as the best guess of it. A receiver refuses a longer frame from its length alone, and fatally (it
   * closes the connection, taking every other message and call on it along), so a message that would make one is
   * refused here instead (BadPayload), with nothing appended.
   */
  maxFrameSize?: number;
}

/**
 * The outbound half of a connection: batches sealed frames into one buffer, signed in one call.
 *
 * Invariant: `slab[batchStart .. pos)` holds `count` frames whose tags are not yet written; `starts[i]..ends[i]`
 * is the MACed range of frame i and `keys[i]` its key. Bytes before `batchStart` were handed out by `flush` and are
 * never written again.
 */
export class Sealer {
  private readonly schedule: KeySchedule;
  private readonly engine: MacEngine;
  private readonly clock: Clock;
  private readonly nonces: NoncePool;
  private nextSlabSize: number;
  private readonly flags: number;
  private slab: Buffer;
  // A DataView of the slab's memory: the header's multi-byte fields are written as 32-bit stores through it.
  private view: DataView;
  private batchStart = 0;
  private pos = 0;
  private count = 0;
  private starts = new Uint32Array(64);
  private ends = new Uint32Array(64);
  private keys: MacKey[] = [];
  private done: Buffer[] = [];
  private seq = 0;
  private nowMs = 0;
  private key: DerivedKey | null = null;
  private keyVersion = -1;
  private readonly encodeOptions: EncodeOptions | undefined;
  // False when encodeOptions are stricter than the limits the fast encoder (encodeInto) holds values to.
  private readonly fastEncode: boolean;
  // Largest frame body written, bytes (the maxFrameSize option).
  private readonly maxBody: number;

  /** Creates an empty sealer; sequence numbers start at 1. */
  constructor(o: SealerOptions) {
    this.schedule = o.schedule;
    this.engine = o.engine;
    this.clock = o.clock;
    this.nonces = o.nonces ?? noncePool;
    this.nextSlabSize = o.slabSize ?? FIRST_SLAB_SIZE;
    this.flags = o.schedule.binding !== null ? FLAG_TLS_BOUND : 0;
    this.slab = EMPTY;
    this.view = new DataView(EMPTY.buffer, EMPTY.byteOffset, 0);
    this.encodeOptions = o.encode;
    this.fastEncode = (o.encode?.maxDepth ?? MAX_DEPTH) >= MAX_DEPTH && (o.encode?.maxNodes ?? MAX_NODES) >= MAX_NODES;
    this.maxBody = o.maxFrameSize ?? MAX_FRAME_SIZE;
  }

  /** Messages appended and not yet flushed. */
  get pending(): number {
    return this.count + this.done.length;
  }

  /** The expiry written into the last message appended, ms since the epoch (0 before the first). */
  lastExpiresMs = 0;

  /** The last sequence number used (0 before the first message). */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * Appends one message: frame prefix, header (the next seq, issuedAt = now, expiresAt = now + ttl), the payload
   * bytes (copied), and room for the tag. The nonce is `nonce` when given, else 16 fresh random bytes. Returns the
   * message's sequence number.
   * "now" is read from the clock once per batch (at its first message), so all messages of one loop iteration
   * carry the same issuedAt.
   * @throws BadPayload when the frame would exceed `maxFrameSize` (nothing is appended); RangeError when the keyring
   *   has no signing key, `ttl` is negative, `kind`/`nonce` are invalid, or `notAfterMs` is before the issue time.
   */
  append(payload: Uint8Array, kind: number, ttl: number, nonce?: Uint8Array, notAfterMs?: number): number {
    checkSendArgs(kind, ttl, nonce);
    const key = this.keyFor();
    const head = FRAME_HEADER_SIZE + HEADER_FIXED_SIZE + key.entry.kidBytes.length;
    const plen = payload.length;
    if (head - FRAME_HEADER_SIZE + plen + TAG_SIZE > this.maxBody) this.tooLarge(head - FRAME_HEADER_SIZE + plen + TAG_SIZE);
    if (this.pos + head + plen + TAG_SIZE > this.slab.length) this.newSlab(head + plen + TAG_SIZE);
    const b = this.slab;
    const o = this.pos + head;
    if (plen <= 64) for (let i = 0; i < plen; i++) b[o + i] = payload[i]!;
    else b.set(payload, o);
    return this.commit(key, kind, ttl, nonce, plen, notAfterMs);
  }

  /**
   * Like {@link append}, but encodes `value` itself: straight into the batch buffer when it is plain data (the bytes
   * msgpackr would write, without an intermediate buffer), else with `encode` (codec.ts) and the sealer's
   * `encode` options. Nothing is appended when it throws.
   * @throws BadPayload when the value cannot be encoded, or a receiver would refuse it (see `encode`; a frame over
   *   `maxFrameSize` too); RangeError as {@link append}.
   */
  appendValue(value: unknown, kind: number, ttl: number, nonce?: Uint8Array, notAfterMs?: number): number {
    checkSendArgs(kind, ttl, nonce);
    const key = this.keyFor();
    const head = FRAME_HEADER_SIZE + HEADER_FIXED_SIZE + key.entry.kidBytes.length;
    // Room for the header, a typical payload and the tag; a payload that does not fit goes the general way.
    if (this.pos + head + TAG_SIZE + 512 > this.slab.length) this.newSlab(head + TAG_SIZE + 512);
    const p = this.pos + head;
    const end = this.fastEncode ? encodeInto(value, this.slab, p, this.slab.length - TAG_SIZE) : ENCODE_UNSUPPORTED;
    if (end < 0) return this.append(encode(value, this.encodeOptions), kind, ttl, nonce, notAfterMs);
    if (end - this.pos - FRAME_HEADER_SIZE + TAG_SIZE > this.maxBody) this.tooLarge(end - this.pos - FRAME_HEADER_SIZE + TAG_SIZE);
    return this.commit(key, kind, ttl, nonce, end - p, notAfterMs);
  }

  // A frame the peer would refuse from its length alone (and close the connection for): refused before it is written.
  private tooLarge(bodyLen: number): never {
    throw new BadPayload(`cannot send the message: its frame of ${bodyLen} bytes exceeds maxFrameSize ${this.maxBody}`);
  }

  // Writes the frame length and the header in front of the `plen` payload bytes already at pos + head, and records
  // the frame in the batch.
  private commit(key: DerivedKey, kind: number, ttl: number, nonce: Uint8Array | undefined, plen: number, notAfterMs?: number): number {
    const kid = key.entry.kidBytes;
    const k = kid.length;
    const bodyLen = HEADER_FIXED_SIZE + k + plen + TAG_SIZE;
    // The clock is read once per batch: every message of one loop iteration carries the same issuedAt.
    if (this.count === 0) this.nowMs = Math.floor(this.clock.epoch() * 1000);
    const issued = this.nowMs;
    let expires = issued + Math.round(ttl * 1000);
    // An idempotent retry must not outlive its first attempt (whose nonce the peer remembers until then).
    if (notAfterMs !== undefined && expires > notAfterMs) {
      // Before the issue time it would be an envelope the peer refuses as malformed (expiresAt < issuedAt).
      if (notAfterMs < issued) {
        throw new RangeError(`notAfter ${notAfterMs / 1000} s is before the message is issued at ${issued / 1000} s: it would arrive expired`);
      }
      expires = notAfterMs;
    }
    if (expires > MAX_U53) throw new RangeError(`ttl too large: ${ttl}`);
    this.lastExpiresMs = expires;
    const seq = this.seq + 1;
    const b = this.slab;
    const v = this.view;
    let o = this.pos;
    // Frame length and the fixed header (envelope.ts documents the layout), written inline with 32-bit big-endian
    // stores: this is the hot path.
    v.setUint32(o, bodyLen, false);
    const start = o + FRAME_HEADER_SIZE;
    v.setUint32(start, (ENVELOPE_VERSION << 24) | (kind << 16) | (this.flags << 8) | k, false);
    o = start + 4;
    for (let i = 0; i < k; i++) b[o + i] = kid[i]!;
    o += k;
    // seq, issuedAt, expiresAt: u53 as two 32-bit halves each
    v.setUint32(o, Math.floor(seq / 0x100000000), false);
    v.setUint32(o + 4, seq >>> 0, false);
    v.setUint32(o + 8, Math.floor(issued / 0x100000000), false);
    v.setUint32(o + 12, issued >>> 0, false);
    v.setUint32(o + 16, Math.floor(expires / 0x100000000), false);
    v.setUint32(o + 20, expires >>> 0, false);
    o += 24;
    if (nonce === undefined) this.nonces.copyInto(v, o);
    else for (let i = 0; i < NONCE_SIZE; i++) b[o + i] = nonce[i]!;
    o += NONCE_SIZE;
    const tagStart = o + plen;
    this.seq = seq;
    const c = this.count;
    if (c === this.starts.length) this.grow();
    this.starts[c] = start;
    this.ends[c] = tagStart;
    this.keys[c] = key.mac;
    this.count = c + 1;
    this.pos = tagStart + TAG_SIZE;
    return seq;
  }

  // The signing key, re-read from the schedule only when the keyring changed.
  private keyFor(): DerivedKey {
    const v = this.schedule.keyringVersion;
    if (this.key === null || v !== this.keyVersion) {
      this.key = this.schedule.signer();
      this.keyVersion = v;
    }
    return this.key;
  }

  /**
   * Signs everything appended (one engine call per run of one key) and passes the bytes to `write`, usually once
   * (more than once only when a batch outgrew its buffer). Does nothing when nothing is pending.
   */
  flush(write: (bytes: Buffer) => void): void {
    // A batch that outgrew its buffer, or filled more than half of it, asks for bigger buffers from now on.
    const big = this.done.length > 0 || this.pos - this.batchStart > this.slab.length / 2;
    this.sealBatch();
    if (big && this.nextSlabSize < MAX_SLAB_SIZE) {
      this.nextSlabSize = Math.min(MAX_SLAB_SIZE, Math.max(this.nextSlabSize, this.slab.length) * 2);
    }
    const done = this.done;
    if (done.length === 0) return;
    this.done = [];
    for (const b of done) write(b);
  }

  private sealBatch(): void {
    const c = this.count;
    if (c === 0) return;
    const keys = this.keys;
    let i = 0;
    while (i < c) {
      let j = i + 1;
      while (j < c && keys[j] === keys[i]) j++;
      this.engine.signBatch(keys[i]!, this.slab, this.starts, this.ends, i, j - i);
      i = j;
    }
    this.done.push(this.slab.subarray(this.batchStart, this.pos));
    this.batchStart = this.pos;
    this.count = 0;
    keys.length = 0;
  }

  private newSlab(need: number): void {
    this.sealBatch();
    // A full buffer (not the first one): this connection writes more than it holds, so the next ones are larger,
    // already within this batch (a busy connection reaches its size in a few buffers, not a few loop iterations).
    if (this.slab.length > 0 && this.nextSlabSize < MAX_SLAB_SIZE) {
      this.nextSlabSize = Math.min(MAX_SLAB_SIZE, Math.max(this.nextSlabSize, this.slab.length) * 2);
    }
    this.slab = Buffer.allocUnsafeSlow(Math.max(this.nextSlabSize, need));
    this.view = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.length);
    this.batchStart = 0;
    this.pos = 0;
  }

  private grow(): void {
    const s = new Uint32Array(this.starts.length * 2);
    s.set(this.starts);
    this.starts = s;
    const e = new Uint32Array(this.ends.length * 2);
    e.set(this.ends);
    this.ends = e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Opening

/** Options of an {@link Opener}. */
export interface OpenerOptions {
  /** The connection's keys. */
  schedule: KeySchedule;
  /** The MAC engine (the one that prepared the schedule's keys). */
  engine: MacEngine;
  /** Source of `epoch()` for expiry checks. */
  clock: Clock;
  /** Clock skew allowed both ways, seconds. */
  skew: number;
  /** Longest lifetime (expiresAt - issuedAt) accepted, seconds (bounds how long nonces must be remembered). */
  maxTtl: number;
  /** Width of the sequence window (default 128). */
  window?: number;
}

/**
 * The {@link MessageMeta} an {@link Opener} hands out: plain fields, and the nonce kept as eight 16-bit integers
 * (small integers live inside the object, so keeping a nonce costs no Buffer and no copy loop into one), made into
 * a Buffer on first use.
 */
class VerifiedMeta implements MessageMeta {
  peer: unknown = null;
  readonly kid: string;
  readonly kind: number;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly seq: number;
  #n0: number;
  #n1: number;
  #n2: number;
  #n3: number;
  #n4: number;
  #n5: number;
  #n6: number;
  #n7: number;
  #nonce: Buffer | null = null;
  constructor(kid: string, kind: number, issuedAt: number, expiresAt: number, seq: number, b: Buffer, o: number) {
    this.kid = kid;
    this.kind = kind;
    this.issuedAt = issuedAt;
    this.expiresAt = expiresAt;
    this.seq = seq;
    this.#n0 = (b[o]! << 8) | b[o + 1]!;
    this.#n1 = (b[o + 2]! << 8) | b[o + 3]!;
    this.#n2 = (b[o + 4]! << 8) | b[o + 5]!;
    this.#n3 = (b[o + 6]! << 8) | b[o + 7]!;
    this.#n4 = (b[o + 8]! << 8) | b[o + 9]!;
    this.#n5 = (b[o + 10]! << 8) | b[o + 11]!;
    this.#n6 = (b[o + 12]! << 8) | b[o + 13]!;
    this.#n7 = (b[o + 14]! << 8) | b[o + 15]!;
  }
  get nonce(): Buffer {
    let n = this.#nonce;
    if (n === null) {
      n = Buffer.allocUnsafe(NONCE_SIZE);
      n.writeUInt16BE(this.#n0, 0); n.writeUInt16BE(this.#n1, 2); n.writeUInt16BE(this.#n2, 4); n.writeUInt16BE(this.#n3, 6);
      n.writeUInt16BE(this.#n4, 8); n.writeUInt16BE(this.#n5, 10); n.writeUInt16BE(this.#n6, 12); n.writeUInt16BE(this.#n7, 14);
      this.#nonce = n;
    }
    return n;
  }
  toJSON(): Record<string, unknown> {
    return { kid: this.kid, kind: this.kind, issuedAt: this.issuedAt, expiresAt: this.expiresAt, seq: this.seq,
      nonce: this.nonce.toString('hex'), peer: this.peer };
  }
}

/** Receives a verified message: its header, its meta, and where its payload lies. */
export type AcceptSink = (meta: MessageMeta, buf: Buffer, payloadStart: number, payloadEnd: number) => void;
/** Receives the error of a rejected frame. */
export type RejectSink = (error: BadData) => void;

function printableKid(buf: Uint8Array, start: number, len: number): string {
  const s = Buffer.from(buf.subarray(start, start + len));
  return /^[\x20-\x7e]*$/.test(s.toString('latin1')) ? s.toString('latin1') : `0x${s.toString('hex')}`;
}

/**
 * The inbound half of a connection: verifies batches of frames.
 *
 * Usage per chunk: `add()` every complete frame (in order), then `run(accept, reject)`, which calls exactly one of
 * the two for every added frame, in the order added (or, given `halt`, until `halt()` says stop), and empties the batch.
 */
export class Opener {
  private readonly schedule: KeySchedule;
  private readonly engine: MacEngine;
  private readonly clock: Clock;
  private readonly skewMs: number;
  private readonly maxTtlMs: number;
  private readonly expectFlags: number;
  /** The sequence window of the inbound direction. */
  readonly window: ReplayWindow;
  private count = 0;
  private bufs: Buffer[] = [];
  private hdrs: EnvelopeHeader[] = [];
  private keys: (DerivedKey | null)[] = [];
  private errors: (BadData | null)[] = [];
  private starts = new Uint32Array(64);
  private ends = new Uint32Array(64);
  private results = new Uint8Array(64);
  private viewBuf: Buffer | null = null;
  private view: DataView | null = null;

  /** Creates an empty opener with a fresh sequence window. */
  constructor(o: OpenerOptions) {
    this.schedule = o.schedule;
    this.engine = o.engine;
    this.clock = o.clock;
    this.skewMs = o.skew * 1000;
    this.maxTtlMs = o.maxTtl * 1000;
    this.expectFlags = o.schedule.binding !== null ? FLAG_TLS_BOUND : 0;
    this.window = new ReplayWindow(o.window ?? 128);
  }

  /** Frames added and not yet run. */
  get pending(): number {
    return this.count;
  }

  /**
   * @internal During {@link run}: the DataView of `buf` when it is the chunk being opened (for decodeWithView), else
   * null. Views are not kept between chunks.
   */
  viewFor(buf: Buffer): DataView | null {
    return buf === this.viewBuf ? this.view : null;
  }

  /** Adds the envelope `buf[start..end)` (a frame body): parses its header and looks up its key. */
  add(buf: Buffer, start: number, end: number): void {
    const c = this.count;
    if (c === this.starts.length) this.grow();
    this.bufs[c] = buf;
    this.count = c + 1;
    let hdr = this.hdrs[c];
    let err: BadData | null = null;
    try {
      if (buf !== this.viewBuf) {
        // One DataView per chunk (its frames share it) for the header's 64-bit fields.
        this.viewBuf = buf;
        this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
      }
      hdr = parseHeader(buf, start, end, hdr, this.view!);
      this.hdrs[c] = hdr;
    } catch (e) {
      err = e as BadData;
    }
    if (err === null && hdr!.flags !== this.expectFlags) {
      err = new MalformedEnvelope(this.expectFlags !== 0
        ? 'the peer does not bind its keys to the TLS session, but this end does (bindToTls)'
        : 'the peer binds its keys to the TLS session, but this end does not (bindToTls)');
    }
    let key: DerivedKey | null = null;
    if (err === null) {
      key = this.schedule.verifier(buf, hdr!.kidStart, hdr!.kidLen) ?? null;
      if (key === null) {
        const kid = printableKid(buf, hdr!.kidStart, hdr!.kidLen);
        err = new UnknownKeyId(`unknown key id ${kid}`, { kid });
      }
    }
    this.keys[c] = key;
    this.errors[c] = err;
    this.starts[c] = start;
    this.ends[c] = err === null ? hdr!.tagStart : start;
    this.results[c] = 0;
  }

  /**
   * Verifies every added frame and reports each, in order, to `accept` or `reject`; empties the batch. Checks, per
   * frame: MAC (constant time, batched), then `issuedAt <= now + skew`, `now <= expiresAt + skew`, lifetime
   * `<= maxTtl`, then the sequence window. A frame that passes is recorded in the window before `accept` runs.
   *
   * `halt`, when given, is asked after each frame is reported: once it returns true (the receiver decided to close,
   * e.g. at its `maxRejections`-th rejection), the frames after that one are dropped unreported, with no check run on
   * them, nothing recorded in the window and nothing passed on (their MACs were computed with the batch, before
   * any frame was reported).
   */
  run(accept: AcceptSink, reject: RejectSink, halt?: () => boolean): void {
    const c = this.count;
    if (c === 0) return;
    const keys = this.keys;
    const bufs = this.bufs;
    const errors = this.errors;
    // MAC runs: consecutive frames with one key in one buffer cost one engine call.
    let i = 0;
    while (i < c) {
      if (errors[i] !== null) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < c && errors[j] === null && keys[j] === keys[i] && bufs[j] === bufs[i]) j++;
      this.engine.verifyBatch(keys[i]!.mac, bufs[i]!, this.starts, this.ends, i, j - i, this.results);
      i = j;
    }
    const nowMs = this.clock.epoch() * 1000;
    const skewMs = this.skewMs;
    this.count = 0;
    for (let k = 0; k < c; k++) {
      if (k > 0 && halt !== undefined && halt()) {
        bufs.fill(undefined as unknown as Buffer, k, c);
        errors.fill(null, k, c);
        break;
      }
      const buf = bufs[k]!;
      bufs[k] = undefined as unknown as Buffer; // drop the reference to the chunk
      const pre = errors[k];
      if (pre !== null) {
        errors[k] = null;
        reject(pre!);
        continue;
      }
      const h = this.hdrs[k]!;
      if (this.results[k] !== 1) {
        // The kid is a known one (an unknown kid was refused in add): printable, and safe to log.
        reject(new BadSignature(`message signature does not match for kid ${printableKid(buf, h.kidStart, h.kidLen)}, seq ${h.seq}`));
        continue;
      }
      if (h.issuedAtMs > nowMs + skewMs) {
        reject(new BadTimeSignature(
          `issued ${((h.issuedAtMs - nowMs) / 1000).toFixed(3)} s in the future, allowance ${skewMs / 1000} s`,
          { dateSigned: h.issuedAtMs / 1000 }));
        continue;
      }
      if (nowMs > h.expiresAtMs + skewMs) {
        const late = (nowMs - h.expiresAtMs) / 1000;
        reject(new SignatureExpired(`expired ${late.toFixed(3)} s ago, allowance ${skewMs / 1000} s`,
          { dateSigned: h.issuedAtMs / 1000, lateBy: (nowMs - h.expiresAtMs - skewMs) / 1000 }));
        continue;
      }
      if (h.expiresAtMs - h.issuedAtMs > this.maxTtlMs) {
        reject(new MalformedEnvelope(
          `lifetime ${((h.expiresAtMs - h.issuedAtMs) / 1000).toFixed(3)} s exceeds maxTtl ${this.maxTtlMs / 1000} s`));
        continue;
      }
      if (!this.window.check(h.seq)) {
        reject(new ReplayedMessage(h.seq <= this.window.highest - this.window.size
          ? `seq ${h.seq} is older than the replay window (highest ${this.window.highest}, width ${this.window.size})`
          : `seq ${h.seq} was already received on this connection`));
        continue;
      }
      this.window.mark(h.seq);
      accept(new VerifiedMeta(keys[k]!.entry.kid, h.kind, h.issuedAtMs / 1000, h.expiresAtMs / 1000, h.seq, buf, h.nonceStart),
        buf, h.payloadStart, h.tagStart);
    }
    keys.fill(null, 0, c);
    this.viewBuf = null; // the chunk is not pinned between chunks
    this.view = null;
  }

  /** Drops the frames added and not yet run (the connection is gone): none is reported. */
  discard(): void {
    this.bufs.fill(undefined as unknown as Buffer, 0, this.count);
    this.keys.fill(null, 0, this.count);
    this.errors.fill(null, 0, this.count);
    this.count = 0;
    this.viewBuf = null;
    this.view = null;
  }

  private grow(): void {
    const n = this.starts.length * 2;
    const s = new Uint32Array(n);
    s.set(this.starts);
    this.starts = s;
    const e = new Uint32Array(n);
    e.set(this.ends);
    this.ends = e;
    const r = new Uint8Array(n);
    r.set(this.results);
    this.results = r;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One envelope at a time

/** Everything that goes into one envelope (times in milliseconds, as on the wire). */
export interface EnvelopeInput {
  /** The 32-byte direction key (see `deriveDirectionKey`). */
  key: Uint8Array;
  /** The key id. */
  kid: string;
  /** Message kind. */
  kind: number;
  /** Flag bits (FLAG_TLS_BOUND when the key was derived with a TLS binding). */
  flags: number;
  /** Sequence number, >= 1. */
  seq: number;
  /** Issue time, ms since the epoch. */
  issuedAtMs: number;
  /** Expiry, ms since the epoch. */
  expiresAtMs: number;
  /** 16 bytes. */
  nonce: Uint8Array;
  /** The msgpack payload bytes. */
  payload: Uint8Array;
}

/**
 * Builds one complete frame (length prefix, header, payload, tag) with the given engine. For tests, test vectors
 * and tools; connections use {@link Sealer}.
 */
export function sealEnvelope(input: EnvelopeInput, engine: MacEngine): Buffer {
  const kid = Buffer.from(input.kid, 'latin1');
  const bodyLen = HEADER_FIXED_SIZE + kid.length + input.payload.length + TAG_SIZE;
  const buf = Buffer.alloc(FRAME_HEADER_SIZE + bodyLen);
  buf.writeUInt32BE(bodyLen, 0);
  const p = writeHeader(buf, FRAME_HEADER_SIZE, { ...input, kid });
  buf.set(input.payload, p);
  const tagStart = p + input.payload.length;
  engine.signBatch(engine.prepareKey(input.key), buf, Uint32Array.of(FRAME_HEADER_SIZE), Uint32Array.of(tagStart), 0, 1);
  return buf;
}
