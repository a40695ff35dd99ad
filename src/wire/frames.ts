/**
 * Framing: every message on a tulipwire connection is a frame, a 4-byte big-endian unsigned length followed by
 * that many body bytes (docs/wire-format.md §1).
 *
 * The decoder is incremental: chunks may split a frame anywhere, and one chunk may hold many frames. Frames that
 * lie wholly inside one chunk are handed out as views of that chunk (no copy); only a frame that spans chunks is
 * assembled in the shared arena (up to 64 KiB, at its exact size, known from its header) or in a buffer of its own that
 * grows as the bytes arrive from twice what is there (above 64 KiB, or a frame still incomplete when its arena has been
 * retired twice, so a stalled peer never keeps an old 256 KiB arena alive). A declared length
 * above `maxFrameSize` is rejected from the 4 header bytes alone, before anything is allocated.
 *
 * @module
 */
import { FrameTooLarge } from '../errors.js';
import { MAX_FRAME_SIZE } from '../constants.js';

/** Bytes in the length prefix of every frame. */
export const FRAME_HEADER_SIZE = 4;

/** Options of a {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest frame body accepted, bytes (default {@link MAX_FRAME_SIZE}, 1 MiB). At most 2^32 - 1. */
  maxFrameSize?: number;
}

/**
 * Receives one complete frame body as a range of `buf`: bytes `buf[start]` up to (not including) `buf[end]`.
 * `buf` is either the chunk that was fed (valid as long as the caller keeps that chunk), or, for a frame that spanned
 * chunks, the buffer it was assembled in: the shared arena (other frames own other ranges of it; consecutive
 * spanning frames usually share one arena, so a consumer can batch them) or, above 64 KiB, a buffer of its own.
 */
export type FrameSink = (buf: Buffer, start: number, end: number) => void;

// Frames that span chunks are assembled in views carved from one shared arena (every decoder of the process uses
// it; JavaScript is single-threaded), instead of a fresh ArrayBuffer each: allocating a 16 KiB buffer costs ~10x
// copying into one. An arena is never reused once full (the next frame gets a new one), so a view stays valid for
// as long as someone holds it, which keeps the arena alive; MessageProtocol holds frames only until they are
// verified and decoded (decoded byte strings below its view threshold are copies). Frames above ARENA_MAX_FRAME get
// buffers of their own. feedRanges hands out a spanning frame as a range of the arena itself (not a view of it), so
// consecutive spanning frames arrive as ranges of one buffer and a batching consumer (Opener) MACs them in one call.
//
// A frame still incomplete would keep its whole arena alive too: a stalled peer holding 10 bytes of a 100-byte frame
// pinned 256 KiB once other connections had moved on to newer arenas (measured: 300 such decoders held 75 MiB). So
// an arena is retired in two steps. When it fills, it becomes the previous arena and its partial frames stay where
// they are (a busy peer's next chunk usually completes them within microseconds). When the next one fills, every
// frame still incomplete in the previous arena moves out into a buffer of its own sized to what has arrived (evict),
// so at most two arenas per process are held by partial frames, and a stalled decoder holds about twice what it
// received. Decoders that started a frame in an arena are listed with it (`arenaUsers`), checked only at retirement.
const ARENA_SIZE = 256 * 1024;
const ARENA_MAX_FRAME = 64 * 1024;
/** Smallest own buffer a partial frame moved out of a retired arena gets, bytes (it grows by doubling from there). */
const EVICTED_MIN = 1024;
let arena: Buffer | null = null;
let arenaPos = 0;
// Decoders that started a partial frame in `arena` (the first `arenaUserCount` slots) and in `previousArena` (the
// first `previousUserCount`); a decoder may be listed more than once. The two lists are swapped and reused, so
// listing a decoder is one store into a slot that usually exists already.
let arenaUsers: (FrameDecoder | null)[] = [];
let arenaUserCount = 0;
let previousArena: Buffer | null = null;
let previousUsers: (FrameDecoder | null)[] = [];
let previousUserCount = 0;

/** The buffer the last {@link frameBuffer} call reserved its range in. */
let frameBuf: Buffer = Buffer.alloc(0);

/**
 * Reserves `size` (at most ARENA_MAX_FRAME) bytes in the arena for `user`'s partial frame: sets {@link frameBuf}
 * and returns where the range starts.
 */
function frameBuffer(size: number, user: FrameDecoder): number {
  if (arena === null || arenaPos + size > ARENA_SIZE) {
    retireArena();
    arena = Buffer.allocUnsafeSlow(ARENA_SIZE);
    arenaPos = 0;
  }
  arenaUsers[arenaUserCount++] = user;
  frameBuf = arena;
  const at = arenaPos;
  arenaPos = (arenaPos + size + 7) & ~7;
  return at;
}

// The current arena becomes the previous one; the frames still incomplete in the one before move out of it.
function retireArena(): void {
  const old = previousArena;
  const users = previousUsers;
  for (let i = 0; i < previousUserCount; i++) {
    users[i]!._evictFrom(old!);
    users[i] = null;
  }
  previousArena = arena;
  previousUsers = arenaUsers;
  previousUserCount = arenaUserCount;
  arenaUsers = users;
  arenaUserCount = 0;
}

/**
 * Prefixes `body` with its 4-byte big-endian length. Copies `body` once into a new buffer.
 * @throws RangeError when `body` is longer than 2^32 - 1 bytes.
 */
export function encodeFrame(body: Uint8Array): Buffer {
  const n = body.length;
  if (n > 0xffffffff) throw new RangeError(`frame body of ${n} bytes does not fit a 32-bit length`);
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + n);
  out.writeUInt32BE(n, 0);
  out.set(body, FRAME_HEADER_SIZE);
  return out;
}

/**
 * Incremental decoder of length-prefixed frames.
 *
 * State machine: either between frames (0–3 header bytes held in `head`) or inside a frame that spans chunks
 * (`partial[partialStart, partialEnd)`: the frame's range, `filled` bytes of it received; `partial` is a range of the
 * shared arena, or (`own`) the frame's own buffer, possibly shorter than `partialEnd` until it has grown: a frame
 * above 64 KiB, or one moved out of a retired arena). After a {@link FrameTooLarge} the decoder is dead: the byte
 * stream is out of sync, and every later `feed` throws the same error.
 */
export class FrameDecoder {
  /** Largest frame body accepted, bytes. */
  readonly maxFrameSize: number;
  // Invariant: headLen in 0..3 while partial === null; headLen === 0 while partial !== null.
  private readonly head = Buffer.alloc(FRAME_HEADER_SIZE);
  private headLen = 0;
  private partial: Buffer | null = null;
  private partialStart = 0;
  private partialEnd = 0;
  private filled = 0;
  // True when `partial` is the frame's own buffer (partialStart is then 0), false when it is a range of an arena.
  private own = false;
  private failed: FrameTooLarge | null = null;

  /** @throws RangeError when `maxFrameSize` is not an integer in 0..2^32-1. */
  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxFrameSize ?? MAX_FRAME_SIZE;
    if (!Number.isInteger(max) || max < 0 || max > 0xffffffff) {
      throw new RangeError(`maxFrameSize must be an integer in 0..4294967295, got ${max}`);
    }
    this.maxFrameSize = max;
  }

  /** Bytes held for an incomplete frame (its header bytes included). */
  get buffered(): number {
    return this.partial !== null ? FRAME_HEADER_SIZE + this.filled : this.headLen;
  }

  /**
   * Bytes reserved for the incomplete frame now: up to 64 KiB, its exact size in the shared arena, or, once that
   * arena has been retired twice (other frames filled two newer ones), a buffer of its own that starts at twice what
   * arrived (at least 1 KiB) and doubles as bytes arrive; above 64 KiB a buffer of its own that starts the same way
   * (twice what arrived, at least 1 KiB) and doubles as bytes arrive, so a header alone never makes the decoder hold
   * `maxFrameSize`. A stalled frame never keeps an older arena alive: at most the two newest arenas of the process
   * (512 KiB in all, shared by every decoder) hold partial frames.
   */
  get reserved(): number {
    if (this.partial === null) return 0;
    return this.own ? this.partial.length : this.partialEnd - this.partialStart;
  }

  /**
   * Feeds one chunk; calls `onFrame` with every frame body it completes, in order. Each body is a `Buffer`: a view of
   * `chunk` when the frame lay wholly inside it, else a view of a buffer assembled for it (from a shared 256 KiB
   * arena for frames up to 64 KiB, so copy a frame you keep for long).
   * @throws FrameTooLarge (fatal) when a declared length exceeds {@link maxFrameSize}; the frames completed before it
   *   in the same chunk have already been delivered.
   */
  feed(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    this.feedRanges(chunk, (buf, start, end) => onFrame(start === 0 && end === buf.length ? buf : buf.subarray(start, end)));
  }

  /**
   * Like {@link feed} but delivers `(buf, start, end)` ranges instead of views, so a hot path can process many
   * frames of one chunk without creating an object per frame.
   * @throws FrameTooLarge as {@link feed}.
   */
  feedRanges(chunk: Buffer, sink: FrameSink): void {
    if (this.failed !== null) throw this.failed;
    const len = chunk.length;
    let pos = 0;
    // Finish a frame that spans chunks.
    if (this.partial !== null) {
      const at = this.partialStart + this.filled;
      const need = this.partialEnd - at;
      // Only a frame in a buffer of its own (grown as it fills) can lack room here.
      if (at + Math.min(len, need) > this.partial.length) this.grow(at + Math.min(len, need));
      const part = this.partial;
      if (len < need) {
        part.set(chunk, at);
        this.filled += len;
        return;
      }
      part.set(need === len ? chunk : chunk.subarray(0, need), at);
      this.partial = null;
      this.filled = 0;
      pos = need;
      sink(part, this.partialStart, this.partialEnd);
    }
    // Complete a header split across chunks.
    if (this.headLen > 0) {
      const take = Math.min(FRAME_HEADER_SIZE - this.headLen, len - pos);
      for (let i = 0; i < take; i++) this.head[this.headLen + i] = chunk[pos + i]!;
      this.headLen += take;
      pos += take;
      if (this.headLen < FRAME_HEADER_SIZE) return;
      this.headLen = 0;
      const size = this.head.readUInt32BE(0);
      if (size > this.maxFrameSize) throw this.fail(size);
      if (len - pos >= size) {
        sink(chunk, pos, pos + size);
        pos += size;
      } else {
        this.startPartial(chunk, pos, size);
        return;
      }
    }
    // The common case: whole frames inside this chunk, delivered as ranges of it.
    const max = this.maxFrameSize;
    while (len - pos >= FRAME_HEADER_SIZE) {
      const size = ((chunk[pos]! << 24) >>> 0) + (chunk[pos + 1]! << 16) + (chunk[pos + 2]! << 8) + chunk[pos + 3]!;
      if (size > max) throw this.fail(size);
      const start = pos + FRAME_HEADER_SIZE;
      if (len - start < size) {
        this.startPartial(chunk, start, size);
        return;
      }
      pos = start + size;
      sink(chunk, start, pos);
    }
    // 0–3 bytes of the next header remain.
    for (let i = pos; i < len; i++) this.head[this.headLen++] = chunk[i]!;
  }

  /** Forgets any partial frame (e.g. after the connection was lost). A failed decoder stays failed. */
  reset(): void {
    this.partial = null;
    this.own = false;
    this.filled = 0;
    this.headLen = 0;
  }

  private startPartial(chunk: Buffer, start: number, size: number): void {
    const have = chunk.length - start;
    let at = 0;
    let part: Buffer;
    if (size > ARENA_MAX_FRAME) {
      // A buffer of its own, grown as bytes arrive (grow): memory follows what the peer sent, not what it announced.
      // It starts at twice what arrived (at least EVICTED_MIN), as an evicted frame does: a header and a few bytes
      // of a 1 MiB frame reserve 1 KiB, not 128 KiB (which let a stalled peer make its decoder hold ~10,000 times
      // what it sent). Doubling copies at most the frame's size again in all, small beside its MAC. allocUnsafeSlow:
      // a small start must not become a slice of Node's shared 8 KiB pool (which it would pin).
      part = Buffer.allocUnsafeSlow(Math.min(size, Math.max(EVICTED_MIN, 2 * have)));
      this.own = true;
    } else {
      at = frameBuffer(size, this);
      part = frameBuf;
      this.own = false;
    }
    part.set(chunk.subarray(start), at);
    this.partial = part;
    this.partialStart = at;
    this.partialEnd = at + size;
    this.filled = have;
  }

  /**
   * @internal Called when arena `old` is retired for the second time: if this decoder's partial frame still lies in
   * it, moves it to a buffer of its own (twice what arrived, at least {@link EVICTED_MIN}, at most the frame's
   * size), so the arena can be freed.
   */
  _evictFrom(old: Buffer): void {
    const part = this.partial;
    if (part !== old || this.own) return;
    const size = this.partialEnd - this.partialStart;
    // allocUnsafeSlow: an ArrayBuffer of exactly this size, not a slice of Node's shared 8 KiB pool (which would pin it).
    const next = Buffer.allocUnsafeSlow(Math.min(size, Math.max(EVICTED_MIN, 2 * this.filled)));
    part.copy(next, 0, this.partialStart, this.partialStart + this.filled);
    this.partial = next;
    this.partialStart = 0;
    this.partialEnd = size;
    this.own = true;
  }

  // Doubles the own buffer of a partial frame (at least to `minEnd`, at most the frame's size), keeping what arrived.
  private grow(minEnd: number): void {
    const old = this.partial!;
    // allocUnsafeSlow: a small evicted frame's next size must not become a slice of Node's shared pool either.
    const next = Buffer.allocUnsafeSlow(Math.min(this.partialEnd, Math.max(old.length * 2, minEnd)));
    old.copy(next, 0, 0, this.filled);
    this.partial = next;
  }

  private fail(size: number): FrameTooLarge {
    this.failed = new FrameTooLarge(size, this.maxFrameSize);
    this.partial = null;
    this.own = false;
    this.headLen = 0;
    return this.failed;
  }
}
