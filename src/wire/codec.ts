/**
 * The payload codec: msgpack through msgpackr, configured for untrusted peers (SECURITY-NOTES Part C), followed by
 * an iterative shape check.
 *
 * msgpackr builds Date, Set, RegExp, Error, typed arrays, BigInt, `undefined` and records from attacker bytes in
 * every configuration, and its only switch against them (`addExtension`) is process-global. So this module never
 * calls `addExtension`; instead every decoded value goes through {@link checkShape}, which admits only plain data
 * (null, booleans, finite numbers, strings, byte strings, arrays, plain objects) within a depth and node budget.
 * Payloads are decoded only after their MAC verified (message-protocol.ts), and every decoder throw becomes one
 * {@link BadPayload} with the original as `cause`.
 *
 * @module
 */
import { Packr, Unpackr } from 'msgpackr';
import type { Options as MsgpackrOptions } from 'msgpackr';
import { BadPayload } from '../errors.js';

/** The Packr options, frozen: the encoder writes standard msgpack that any decoder (Python `msgpack`, Go) reads. */
export const PACKR_OPTIONS = Object.freeze({
  // Records (`d4 72 …`) are a msgpackr extension other decoders cannot read; write plain maps.
  useRecords: false,
  // No msgpackr-only extensions for typed arrays and friends: a Uint8Array is written as standard `bin`.
  moreTypes: false,
  // No pointer/cycle extension: cyclic data throws instead of producing bytes only msgpackr reads.
  structuredClone: false,
  // No bundled-strings extension (msgpackr-only framing inside the payload).
  bundleStrings: false,
  // `undefined` is written as nil (standard) instead of msgpackr's ext 0.
  encodeUndefinedAsNil: true,
  // Fixed-width map16 headers are msgpackr's fast path and standard msgpack; all decoders read them.
  variableMapSize: false,
});

/** The Unpackr options, frozen: decode peer data without trusting it. */
export const UNPACKR_OPTIONS = Object.freeze({
  // Stated although msgpackr reads records regardless (hard-wired): the byte scan refuses them before it runs.
  useRecords: false,
  // Maps become plain objects (what applications expect). msgpackr never applies a `__proto__` key: it renames it
  // to `__proto_`, which the shape check then tells apart from a real `__proto_` key (see checkRenamedProto).
  mapsAsObjects: true,
  // Cyclic graphs and pointers throw ("Structured clone extension is disabled") instead of being built.
  structuredClone: false,
  // 64-bit integers become numbers when they fit 2^53, else bigint, which the shape check rejects unless allowed.
  int64AsType: 'auto' as const,
  // `bin` values are copied, so a decoded message never pins the whole frame buffer it arrived in.
  copyBuffers: true,
  // Never `sequential`/`trusted`/`structures`: those carry record definitions from one message to the next.
  sequential: false,
});

// One encoder and one decoder for the process: neither keeps state between calls with these options (no records,
// no structures, no sequential mode), so sharing them across peers is safe (SECURITY-NOTES Part C).
// (msgpackr's typings lack int64AsType 'auto', which 2.1.4 implements: hence the cast.)
const packr = new Packr({ ...PACKR_OPTIONS });
const unpackr = new Unpackr({ ...UNPACKR_OPTIONS } as unknown as MsgpackrOptions);
// The same decoder with maps as Map objects, whose keys are exactly the keys sent: used only to tell a `__proto_`
// key from a `__proto__` key that msgpackr renamed (checkRenamedProto), never for the value handed out.
const mapUnpackr = new Unpackr({ ...UNPACKR_OPTIONS, mapsAsObjects: false } as unknown as MsgpackrOptions);

// Small payloads are decoded from here (see decode). 139 bytes: msgpackr's small-input threshold is `srcEnd < 140`.
const SCRATCH_SIZE = 139;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_SIZE);
// msgpackr caches a DataView on the source buffer; create it once so the property is there from the start.
(scratch as Buffer & { dataView?: DataView }).dataView = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);

/** Default maximum nesting depth of containers in a decoded payload (a top-level array or object has depth 1). */
export const MAX_DEPTH = 32;
/** Default maximum number of values (containers, keys not counted) in one decoded payload. */
export const MAX_NODES = 100_000;

/** What {@link decode} and {@link checkShape} accept beyond plain data. */
export interface DecodeOptions {
  /** Maximum nesting depth of containers, a top-level container = 1 (default {@link MAX_DEPTH}). */
  maxDepth?: number;
  /** Maximum number of values in the tree (default {@link MAX_NODES}). */
  maxNodes?: number;
  /** Also accept `bigint` (integers beyond ±2^53 arrive as bigint). Default false. */
  allowBigInt?: boolean;
  /** Also accept `Date` (msgpack timestamp extension -1). Default false. */
  allowDate?: boolean;
  /** Also accept `undefined` (msgpackr ext 0). Default false. */
  allowUndefined?: boolean;
  /**
   * Byte strings (`bin`) of at least this many bytes are returned as views of the input instead of copies
   * (default `Infinity`: every one is a copy, so nothing decoded refers to the input). A view costs nothing to
   * make, but it keeps the whole input buffer alive, and it changes if the input's bytes are changed later: use it
   * only on buffers nobody writes to again. `MessageProtocol` sets {@link BINARY_VIEW_THRESHOLD} (its frames are
   * never reused). Only the fast decoder makes views; payloads it hands to msgpackr (extensions, 64-bit integers,
   * nesting deeper than 16) get copies.
   */
  binaryViewThreshold?: number;
}

/**
 * The `binaryViewThreshold` MessageProtocol uses by default: 4 KiB, where Node's shared Buffer pool stops serving
 * `Buffer.allocUnsafe`, so a copy from here on is a fresh ArrayBuffer (allocation, external-memory accounting and
 * GC pressure on top of the copy: ~20% of a receiver's CPU at 16 KiB messages).
 */
export const BINARY_VIEW_THRESHOLD = 4096;

/**
 * What {@link encode} (and so `sendMessage`, RPC calls and replies) may write beyond plain data, and the limits it
 * holds a value to. They mirror {@link DecodeOptions}: by default the encoder writes exactly what a receiver with the
 * default {@link DecodeOptions} accepts, so a value is refused at send time instead of by the peer (which would drop
 * the message, and leave an RPC caller waiting for its timeout). Loosen them only when the peer's decoder is
 * configured the same way.
 */
export interface EncodeOptions {
  /** Maximum nesting depth of containers, a top-level container = 1 (default {@link MAX_DEPTH}). */
  maxDepth?: number;
  /** Maximum number of values in the tree, map keys not counted (default {@link MAX_NODES}). */
  maxNodes?: number;
  /**
   * Also write `bigint` (as int64/uint64). Default false. A receiver needs `allowBigInt` for those beyond ±2^53, and
   * returns the others as numbers.
   */
  allowBigInt?: boolean;
  /** Also write a valid `Date` (timestamp extension -1). Default false; the receiver needs `allowDate`. */
  allowDate?: boolean;
}

/**
 * Encodes `value` as standard msgpack. The result is a view of msgpackr's output buffer that stays valid (msgpackr
 * moves on to fresh space for the next call); copy it if you keep many.
 *
 * Writes only what a receiver with the matching {@link DecodeOptions} accepts and decodes back to an equal value:
 * null, booleans, finite numbers, strings, byte strings (`Buffer`, `Uint8Array`), arrays, and plain objects
 * (prototype `Object.prototype` or null) with at most 65,535 keys, none of them `__proto__` or `constructor`, within
 * `maxDepth` and `maxNodes`. `undefined` is written as nil (so it comes back as null, an array hole too), `-0` as 0,
 * and a lone UTF-16 surrogate in a string as U+FFFD.
 * @throws BadPayload (`TW_BAD_PAYLOAD`) for anything else: a Date (unless `allowDate`), a bigint (unless
 *   `allowBigInt`), a Map, Set, class instance, boxed primitive, typed array other than Uint8Array, ArrayBuffer,
 *   DataView, RegExp, Error, Promise, function or symbol; NaN or ±Infinity; a forbidden key; a value too deep or too
 *   large; a cycle (then with the msgpackr error as `cause`).
 */
export function encode(value: unknown, options?: EncodeOptions): Buffer {
  let out: Buffer;
  try {
    out = packr.pack(value);
  } catch (err) {
    throw new BadPayload(`cannot encode the message: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  checkEncodable(value, options);
  return out;
}

/**
 * The sending side's {@link checkShape}: throws BadPayload when `value` holds anything a receiver with the matching
 * options refuses (or would decode to something else). Runs only on {@link encode}'s path, which {@link encodeInto}
 * (the fast path of plain data) falls back to on every unusual value. Iterative; a cycle never gets here (msgpackr
 * throws on it first).
 */
function checkEncodable(value: unknown, options?: EncodeOptions): void {
  if (typeof value !== 'object' || value === null) {
    checkEncodableLeaf(value, options);
    return;
  }
  const maxDepth = options?.maxDepth ?? MAX_DEPTH;
  const maxNodes = options?.maxNodes ?? MAX_NODES;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  let nodes = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    const depth = depths.pop()!;
    if (++nodes > maxNodes) throw new BadPayload(`cannot encode the message: it has more than ${maxNodes} values (maxNodes)`);
    if (typeof v !== 'object' || v === null) {
      checkEncodableLeaf(v, options);
      continue;
    }
    const proto = Object.getPrototypeOf(v);
    if (Array.isArray(v) && proto === Array.prototype) {
      if (depth > maxDepth) throw new BadPayload(`cannot encode the message: it nests deeper than ${maxDepth} (maxDepth)`);
      for (let i = 0; i < v.length; i++) {
        stack.push(v[i]);
        depths.push(depth + 1);
      }
      continue;
    }
    if (proto === objectProto || proto === null) {
      if (depth > maxDepth) throw new BadPayload(`cannot encode the message: it nests deeper than ${maxDepth} (maxDepth)`);
      const keys = Object.keys(v);
      if (keys.length > 0xffff) throw new BadPayload(`cannot encode the message: a map has ${keys.length} keys (at most 65535)`);
      for (const k of keys) {
        if (isForbiddenKey(k)) throw new BadPayload(`cannot encode the message: it holds the forbidden key ${JSON.stringify(k)}`);
        stack.push((v as Record<string, unknown>)[k]);
        depths.push(depth + 1);
      }
      continue;
    }
    // Byte strings: the receiver gets a Buffer with the same bytes.
    if (proto === Buffer.prototype || proto === Uint8Array.prototype) continue;
    if (proto === Date.prototype && options?.allowDate === true) {
      if (Number.isNaN((v as Date).getTime())) throw new BadPayload('cannot encode the message: it holds an invalid Date');
      continue;
    }
    const name = describe(v);
    throw new BadPayload(`cannot encode the message: it holds ${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}, which is not plain data${hint(v)}`);
  }
}

function checkEncodableLeaf(v: unknown, options: EncodeOptions | undefined): void {
  switch (typeof v) {
    case 'number':
      if (v - v !== 0) throw new BadPayload('cannot encode the message: it holds a non-finite number (NaN or ±Infinity)');
      return;
    case 'bigint':
      if (options?.allowBigInt === true) return;
      throw new BadPayload('cannot encode the message: it holds a bigint (a receiver refuses those beyond ±2^53 and returns '
        + 'the others as numbers; send a number, or a string, or set allowBigInt on both ends)');
    case 'function':
    case 'symbol':
      throw new BadPayload(`cannot encode the message: it holds a ${typeof v}`);
    default:
      return; // string, boolean, undefined (nil), null
  }
}

function hint(v: object): string {
  if (v instanceof Date) return ' (send a number of ms or an ISO string, or set allowDate on both ends)';
  if (v instanceof Map) return ' (send a plain object)';
  if (v instanceof Set) return ' (send an array)';
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return ' (send a Uint8Array or Buffer of its bytes)';
  return '';
}

// A Buffer over the same memory (no copy). msgpackr builds `bin` values of the class of its input: from a plain
// Uint8Array of more than 139 bytes (the scratch copy below is a Buffer) they came out as bare Uint8Arrays, which
// the shape check refuses as msgpackr's typed-array extension, so a valid payload was refused or accepted depending
// on the class and size of the array it was passed in, and the fast path (Buffers only) was skipped.
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes the msgpack bytes `bytes[start..end)` (default: all of them) and checks the result's shape.
 * @throws BadPayload for anything msgpackr rejects (truncated, trailing bytes, bad types, stack overflow), with the
 *   msgpackr error as `cause`, and for values the shape check refuses.
 */
export function decode(bytes: Uint8Array, options?: DecodeOptions, start = 0, end = bytes.length): unknown {
  if (end <= start) throw new BadPayload('empty payload');
  if (!Buffer.isBuffer(bytes)) bytes = asBuffer(bytes);
  const maxDepth = options?.maxDepth ?? MAX_DEPTH;
  if (maxDepth <= FAST_MAX_DEPTH && Buffer.isBuffer(bytes)) {
    const v = decodeFast(bytes, start, end, maxDepth, options?.maxNodes ?? MAX_NODES, options?.binaryViewThreshold ?? Infinity);
    if (v !== FAST_FAILED) return v;
  }
  return decodeGeneral(bytes, options, start, end);
}

/**
 * @internal {@link decode} of `buf[start..end)` with `view`, a DataView of exactly `buf`'s bytes (offset 0 =
 * buf[0]) that the caller already has (the Opener makes one per chunk): floats are then read through it, one
 * unaligned load each instead of eight byte copies that stall store forwarding.
 */
export function decodeWithView(buf: Buffer, view: DataView, options: DecodeOptions | undefined, start: number, end: number): unknown {
  dview = view;
  try {
    return decode(buf, options, start, end);
  } finally {
    dview = null;
  }
}

/**
 * @internal The general decoding path (msgpackr, then {@link checkShape}); {@link decode} uses it whenever its fast
 * path gives up. Exported for the tests that compare the two.
 */
export function decodeGeneral(bytes: Uint8Array, options?: DecodeOptions, start = 0, end = bytes.length): unknown {
  if (end <= start) throw new BadPayload('empty payload');
  if (!Buffer.isBuffer(bytes)) bytes = asBuffer(bytes);
  scanValues(bytes, start, end, options);
  let value: unknown;
  const len = end - start;
  try {
    if (len <= SCRATCH_SIZE) {
      // msgpackr's fast paths for small inputs (JS string decoding, its key cache) test the *absolute* end offset
      // (`srcEnd < 140`), so a small payload inside a large chunk would take the slow native-extractor path. Copy
      // it to offset 0 of a scratch buffer instead (~40% less CPU per game message). Nothing decoded keeps a
      // reference to the scratch: strings are copied out and `copyBuffers` copies bin values.
      // A plain loop: for a few dozen bytes it is cheaper than Buffer#copy's argument handling.
      for (let i = 0; i < len; i++) scratch[i] = bytes[start + i]!;
      value = unpackr.unpack(scratch, len);
    } else {
      value = unpackr.unpack(bytes, { start, end });
    }
  } catch (err) {
    // msgpackr's messages may quote up to 100 characters of the input ("Data read, but end of buffer not reached
    // {preview}"); keep them in `cause` only, not in our message, which may be logged or sent back.
    throw new BadPayload(`undecodable msgpack payload (${(err as Error)?.name ?? 'Error'})`, { cause: err });
  }
  sawProtoLike = false;
  checkShape(value, options);
  if (sawProtoLike) {
    sawProtoLike = false;
    checkRenamedProto(bytes, start, end);
  }
  return value;
}

const objectProto = Object.prototype;

// Stack of the scan below: items left in each open container (a map's keys and values both count), and whether
// it is a map. Module-level and reused: scanning allocates nothing once they have grown to the deepest nesting seen.
const scanLeft: number[] = [];
const scanIsMap: boolean[] = [];

/**
 * The general path's check of every value in `b[p..end)` as the bytes hold it, before msgpackr builds anything:
 * what msgpackr builds loses the values a repeated map key replaced (the last value wins), and those must still be
 * refused and counted like any other (docs/wire-format.md §5): the reserved byte `c1`, NaN and ±Infinity, 64-bit
 * integers beyond ±2^53 (unless allowBigInt), extensions (but the timestamp with allowDate, msgpackr's undefined
 * with allowUndefined), containers beyond maxDepth, more than maxNodes values, the str keys `__proto__` and
 * `constructor`, and map keys that are extensions other than msgpackr's undefined (type 0). Other map keys are skipped
 * (not counted, and left to msgpackr and checkShape). At msgpackr's record extension (0x72), whose
 * maps the bytes do not show, it stops and leaves the rest to checkShape. Truncated input is left to msgpackr.
 */
function scanValues(b: Uint8Array, p: number, end: number, options: DecodeOptions | undefined): void {
  const maxDepth = options?.maxDepth ?? MAX_DEPTH;
  const maxNodes = options?.maxNodes ?? MAX_NODES;
  const allowBigInt = options?.allowBigInt === true;
  let sp = 0;
  let keyFrom = -1; // while >= 0: inside a map key, opened at stack level keyFrom
  let nodes = 0;
  for (;;) {
    if (p >= end) return;
    const inKey = keyFrom >= 0 || (sp > 0 && scanIsMap[sp - 1]! && (scanLeft[sp - 1]! & 1) === 0);
    if (!inKey && ++nodes > maxNodes) throw new BadPayload(`payload has more than ${maxNodes} values (maxNodes)`);
    const t = b[p++]!;
    let n = -1; // > -1: a container of n items
    let isMap = false;
    if (t < 0x80 || t >= 0xe0) { /* fixint */ } else if (t < 0x90) { n = (t & 0x0f) * 2; isMap = true; } else if (t < 0xa0) n = t & 0x0f;
    else if (t < 0xc0) p = scanStr(b, p, end, t - 0xa0, inKey && keyFrom < 0);
    else {
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xc4: if (p + 1 > end) return; p += 1 + b[p]!; break;
        case 0xc5: if (p + 2 > end) return; p += 2 + ((b[p]! << 8) | b[p + 1]!); break;
        case 0xc6: if (p + 4 > end) return; p += 4 + readU32(b, p); break;
        case 0xd9: if (p + 1 > end) return; p = scanStr(b, p + 1, end, b[p]!, inKey && keyFrom < 0); break;
        case 0xda: if (p + 2 > end) return; p = scanStr(b, p + 2, end, (b[p]! << 8) | b[p + 1]!, inKey && keyFrom < 0); break;
        case 0xdb: if (p + 4 > end) return; p = scanStr(b, p + 4, end, readU32(b, p), inKey && keyFrom < 0); break;
        case 0xca: {
          if (p + 4 > end) return;
          // exponent all ones: NaN or an infinity
          if (!inKey && (b[p]! & 0x7f) === 0x7f && (b[p + 1]! & 0x80) !== 0) throw new BadPayload('payload holds a non-finite number');
          p += 4;
          break;
        }
        case 0xcb: {
          if (p + 8 > end) return;
          if (!inKey && (b[p]! & 0x7f) === 0x7f && (b[p + 1]! & 0xf0) === 0xf0) throw new BadPayload('payload holds a non-finite number');
          p += 8;
          break;
        }
        case 0xcc: case 0xd0: p += 1; break;
        case 0xcd: case 0xd1: p += 2; break;
        case 0xce: case 0xd2: p += 4; break;
        case 0xcf: case 0xd3: {
          if (p + 8 > end) return;
          if (!inKey && !allowBigInt) {
            const hi = readU32(b, p);
            const lo = readU32(b, p + 4);
            // above 2^53 (uint64, or a non-negative int64), or an int64 below -2^53 (0xffe00000_00000000)
            const over = t === 0xcf || hi < 0x80000000 ? hi > 0x200000 || (hi === 0x200000 && lo !== 0) : hi < 0xffe00000;
            if (over) throw new BadPayload('payload holds a 64-bit integer beyond 2^53 (bigint not allowed)');
          }
          p += 8;
          break;
        }
        case 0xdc: if (p + 2 > end) return; n = (b[p]! << 8) | b[p + 1]!; p += 2; break;
        case 0xdd: if (p + 4 > end) return; n = readU32(b, p); p += 4; break;
        case 0xde: if (p + 2 > end) return; n = ((b[p]! << 8) | b[p + 1]!) * 2; isMap = true; p += 2; break;
        case 0xdf: if (p + 4 > end) return; n = readU32(b, p) * 2; isMap = true; p += 4; break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        case 0xc7: case 0xc8: case 0xc9: {
          let len: number;
          if (t <= 0xd8 && t >= 0xd4) len = 1 << (t - 0xd4);
          else {
            const w = t === 0xc7 ? 1 : t === 0xc8 ? 2 : 4;
            if (p + w > end) return;
            len = w === 1 ? b[p]! : w === 2 ? (b[p]! << 8) | b[p + 1]! : readU32(b, p);
            p += w;
          }
          if (p + 1 > end) return;
          const type = b[p]!;
          // msgpackr's records: refused like any extension. Its decoder reads them whatever the options say, and a
          // record whose keys repeat hides the values it replaces from every check made on the decoded maps.
          if (type === 0x72) throw new BadPayload('payload holds a msgpackr record (extension type 0x72); send plain maps');
          if (inKey) {
            // a key: only msgpackr's undefined (type 0) is admitted (it becomes "undefined"); msgpackr would turn
            // its BigInt extension (0x42) into the key's decimal string
            if (keyFrom < 0 && type !== 0) {
              throw new BadPayload(`payload holds a map key of msgpack extension type ${type > 0x7f ? type - 0x100 : type}`);
            }
          } else if (!((type === 0xff && options?.allowDate === true) || (type === 0 && options?.allowUndefined === true))) {
            throw new BadPayload(`payload holds a msgpack extension (type ${type > 0x7f ? type - 0x100 : type})`);
          }
          p += 1 + len;
          break;
        }
        default: // 0xc1
          throw new BadPayload('payload holds the reserved msgpack byte c1');
      }
    }
    if (n > 0) {
      if (!inKey && sp + 1 > maxDepth) throw new BadPayload(`payload nests deeper than ${maxDepth} (maxDepth)`);
      if (inKey && keyFrom < 0) keyFrom = sp;
      scanLeft[sp] = n;
      scanIsMap[sp] = isMap;
      sp++;
      continue;
    }
    if (n === 0 && !inKey && sp + 1 > maxDepth) throw new BadPayload(`payload nests deeper than ${maxDepth} (maxDepth)`);
    // one item done: close every container it completes
    for (;;) {
      if (sp === 0) return;
      if (--scanLeft[sp - 1]! > 0) break;
      sp--;
      if (keyFrom === sp) keyFrom = -1;
    }
  }
}

// Skips the str of `len` bytes at `p`; when it is a map key, refuses `__proto__` and `constructor`.
function scanStr(b: Uint8Array, p: number, end: number, len: number, isKey: boolean): number {
  if (isKey && (len === 9 || len === 11) && p + len <= end) {
    const k = len === 9 ? PROTO_BYTES : CONSTRUCTOR_BYTES;
    let i = 0;
    while (i < len && b[p + i] === k[i]) i++;
    if (i === len) throw forbiddenKey(len === 9 ? '__proto__' : 'constructor');
  }
  return p + len;
}

function readU32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

/** The keys a payload may not hold: `__proto__` (prototype pollution) and `constructor`. */
function isForbiddenKey(k: string): boolean {
  return k === '__proto__' || k === 'constructor';
}

function forbiddenKey(k: string): BadPayload {
  return new BadPayload(`payload holds the forbidden key ${JSON.stringify(k)}`);
}

// Set by checkShape when an object has an own key `__proto_`: msgpackr writes a `__proto__` key sent by the peer as
// `__proto_`, so decodeGeneral then asks checkRenamedProto which of the two the peer sent.
let sawProtoLike = false;
const PROTO_BYTES = Buffer.from('__proto__', 'latin1');
const CONSTRUCTOR_BYTES = Buffer.from('constructor', 'latin1');

/**
 * Refuses the payload `bytes[start..end)` when one of its maps has the key `__proto__`, which msgpackr's object
 * output shows as `__proto_` (so a `__proto_` key of a non-JS peer is legitimate, and a `__proto__` one is not).
 * Without the 9 bytes of "__proto__" anywhere in the payload no key can be `__proto__`; otherwise the payload is
 * decoded again with maps as Map objects, whose keys are the keys sent. msgpackr's records (ext 0x72) decode to
 * objects in both modes, with the same renaming: a record with a `__proto_` key in such a payload cannot be told
 * apart, and is refused.
 */
function checkRenamedProto(bytes: Uint8Array, start: number, end: number): void {
  if (Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).indexOf(PROTO_BYTES) < 0) return;
  let tree: unknown;
  try {
    tree = mapUnpackr.unpack(bytes, { start, end });
  } catch (err) {
    throw new BadPayload(`undecodable msgpack payload (${(err as Error)?.name ?? 'Error'})`, { cause: err });
  }
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (v instanceof Map) {
      for (const [k, x] of v) {
        if (k === '__proto__') throw forbiddenKey(k);
        stack.push(x);
      }
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
    } else if (Object.getPrototypeOf(v) === objectProto) {
      if (Object.hasOwn(v, '__proto_')) throw forbiddenKey('__proto__');
      for (const k in v) stack.push((v as Record<string, unknown>)[k]);
    }
  }
}

/**
 * Checks that `value` is plain data: null, boolean, finite number, string, `Buffer` (a msgpack `bin`), arrays and
 * objects whose prototype is `Object.prototype`, nested at most `maxDepth` deep with at most `maxNodes` values.
 * Own keys `__proto__` and `constructor` are refused (a `__proto_` key is plain data). Iterative, so hostile
 * nesting cannot overflow the stack.
 * @throws BadPayload naming what was refused.
 */
export function checkShape(value: unknown, options?: DecodeOptions): void {
  // Fast path for the common leaf payloads.
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return;
    throw new BadPayload('payload holds a non-finite number');
  }
  const maxDepth = options?.maxDepth ?? MAX_DEPTH;
  const maxNodes = options?.maxNodes ?? MAX_NODES;
  if (maxDepth >= 1 && flatPlain(value, maxNodes)) return;
  // Two parallel stacks (value, depth) instead of recursion.
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  let nodes = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    const depth = depths.pop()!;
    if (++nodes > maxNodes) throw new BadPayload(`payload has more than ${maxNodes} values (maxNodes)`);
    switch (typeof v) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (!Number.isFinite(v)) throw new BadPayload('payload holds a non-finite number');
        continue;
      case 'bigint':
        if (options?.allowBigInt === true) continue;
        throw new BadPayload('payload holds a 64-bit integer beyond 2^53 (bigint not allowed)');
      case 'undefined':
        if (options?.allowUndefined === true) continue;
        throw new BadPayload('payload holds undefined (msgpackr extension 0)');
      case 'object': {
        if (v === null) continue;
        // Only containers count as nesting levels (a bin or Date inside the deepest level is a leaf, as in the fast
        // decoder).
        if (Array.isArray(v)) {
          if (depth > maxDepth) throw new BadPayload(`payload nests deeper than ${maxDepth} (maxDepth)`);
          if (Object.getPrototypeOf(v) !== Array.prototype) throw new BadPayload('payload holds an exotic array');
          for (let i = 0; i < v.length; i++) {
            stack.push(v[i]);
            depths.push(depth + 1);
          }
          continue;
        }
        const proto = Object.getPrototypeOf(v);
        if (proto === objectProto) {
          if (depth > maxDepth) throw new BadPayload(`payload nests deeper than ${maxDepth} (maxDepth)`);
          for (const k in v) {
            if (isForbiddenKey(k)) throw forbiddenKey(k);
            if (k === '__proto_') sawProtoLike = true;
            stack.push((v as Record<string, unknown>)[k]);
            depths.push(depth + 1);
          }
          continue;
        }
        // `bin` decodes to a Buffer; msgpackr's typed-array extension (0x74) yields a bare Uint8Array, refused.
        if (proto === Buffer.prototype) continue;
        if (v instanceof Date && proto === Date.prototype && options?.allowDate === true) {
          if (Number.isNaN(v.getTime())) throw new BadPayload('payload holds an invalid Date');
          continue;
        }
        throw new BadPayload(`payload holds a ${describe(v)}, which is not plain data`);
      }
      default:
        throw new BadPayload(`payload holds a ${typeof v}`);
    }
  }
}

/**
 * The fast path of checkShape: true when `v` is a plain object or array whose values are all strings, booleans,
 * null or finite numbers (the shape of most messages), with fewer than `maxNodes` values. False means "not proven
 * here", and the full iterative check runs.
 */
function flatPlain(v: unknown, maxNodes: number): boolean {
  if (typeof v !== 'object' || v === null) return false;
  let n = 1;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return false;
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      const t = typeof x;
      if (t === 'string' || t === 'boolean' || x === null || (t === 'number' && Number.isFinite(x))) continue;
      return false;
    }
    return v.length + 1 <= maxNodes;
  }
  if (Object.getPrototypeOf(v) !== objectProto) return false;
  for (const k in v) {
    // `__proto_` too: the full check notes it for decodeGeneral (see checkRenamedProto)
    if (isForbiddenKey(k) || k === '__proto_') return false;
    const x: unknown = (v as Record<string, unknown>)[k];
    const t = typeof x;
    if (t === 'string' || t === 'boolean' || x === null || (t === 'number' && Number.isFinite(x))) {
      n++;
      continue;
    }
    return false;
  }
  return n <= maxNodes;
}

function describe(v: object): string {
  const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor;
  return typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : 'object without prototype';
}

// ---------------------------------------------------------------------------------------------------------------
// Fast paths. msgpackr is general; most messages are small plain objects of strings and numbers. For those, the
// two functions below write and read the same bytes msgpackr would (byte-identical output, checked by property
// tests against msgpackr in test/wire/codec.test.ts) without msgpackr's per-call setup, without an intermediate
// buffer on the sending side, and without a separate shape pass on the receiving side. Anything outside the subset
// they know (extensions, 64-bit integers, non-string keys, non-ASCII strings on the decoding side, NaN, deep
// nesting, forbidden keys...) makes them give up, and msgpackr plus checkShape decide exactly as before.

/** {@link encodeInto}'s result when the value is outside the fast path's subset: use {@link encode}. */
export const ENCODE_UNSUPPORTED = -1;
/** {@link encodeInto}'s result when the bytes did not fit before `limit`. */
export const ENCODE_NO_ROOM = -2;
// Deepest nesting the fast decoder recurses into; deeper values take the general path. (The fast encoder stops at
// MAX_DEPTH: deeper values go to encode, which refuses them unless the sender's maxDepth allows them.)
const FAST_MAX_DEPTH = 64;

// Encoder state lives in locals: each function takes the write position and returns the new one, or a negative
// ENCODE_UNSUPPORTED / ENCODE_NO_ROOM (module-level `let`s cost a context load and store on every byte).
const f64 = new Float64Array(1);
const f64bytes = new Uint8Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function encStr(b: Buffer, p: number, limit: number, s: string): number {
  const n = s.length;
  if (n < 0x20) {
    if (p + 1 + n * 3 > limit) return -2;
    let q = p + 1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return encStrGeneral(b, p, limit, s);
      b[q++] = c;
    }
    b[p] = 0xa0 | n;
    return q;
  }
  return encStrGeneral(b, p, limit, s);
}

function encStrGeneral(b: Buffer, ep: number, limit: number, s: string): number {
  const n = s.length;
  const guess = n < 0x20 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  if (ep + guess + n * 3 > limit) return -2;
  let p = ep + guess;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      b[p++] = c;
    } else if (c < 0x800) {
      b[p++] = (c >> 6) | 0xc0;
      b[p++] = (c & 0x3f) | 0x80;
    } else if ((c & 0xfc00) === 0xd800 && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c = 0x10000 + ((c & 0x03ff) << 10) + (s.charCodeAt(++i) & 0x03ff);
      b[p++] = (c >> 18) | 0xf0;
      b[p++] = ((c >> 12) & 0x3f) | 0x80;
      b[p++] = ((c >> 6) & 0x3f) | 0x80;
      b[p++] = (c & 0x3f) | 0x80;
    } else if ((c & 0xf800) === 0xd800) {
      // a lone surrogate: U+FFFD, as msgpackr and TextEncoder write it
      b[p++] = 0xef; b[p++] = 0xbf; b[p++] = 0xbd;
    } else {
      b[p++] = (c >> 12) | 0xe0;
      b[p++] = ((c >> 6) & 0x3f) | 0x80;
      b[p++] = (c & 0x3f) | 0x80;
    }
  }
  const len = p - ep - guess;
  const need = len < 0x20 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
  if (need !== guess) b.copyWithin(ep + need, ep + guess, p);
  let o = ep;
  if (need === 1) {
    b[o++] = 0xa0 | len;
  } else if (need === 2) {
    b[o++] = 0xd9; b[o++] = len;
  } else if (need === 3) {
    b[o++] = 0xda; b[o++] = len >> 8; b[o++] = len & 0xff;
  } else {
    b[o++] = 0xdb; b[o++] = len >>> 24; b[o++] = len >>> 16; b[o++] = len >>> 8; b[o++] = len;
  }
  return o + len;
}

function encNumber(b: Buffer, p: number, v: number): number {
  if (v >>> 0 === v) {
    if (v < 0x80) b[p++] = v;
    else if (v < 0x100) { b[p++] = 0xcc; b[p++] = v; }
    else if (v < 0x10000) { b[p++] = 0xcd; b[p++] = v >> 8; b[p++] = v & 0xff; }
    else { b[p++] = 0xce; b[p++] = v >>> 24; b[p++] = v >>> 16; b[p++] = v >>> 8; b[p++] = v; }
  } else if (v >> 0 === v) {
    if (v >= -0x20) b[p++] = 0x100 + v;
    else if (v >= -0x80) { b[p++] = 0xd0; b[p++] = v + 0x100; }
    else if (v >= -0x8000) { b[p++] = 0xd1; b[p++] = (v >> 8) & 0xff; b[p++] = v & 0xff; }
    else { b[p++] = 0xd2; b[p++] = (v >>> 24) & 0xff; b[p++] = (v >>> 16) & 0xff; b[p++] = (v >>> 8) & 0xff; b[p++] = v & 0xff; }
  } else {
    // NaN and ±Infinity: every receiver refuses them (docs/wire-format.md §5), so they are not sent either.
    if (v - v !== 0) return -1;
    b[p] = 0xcb;
    f64[0] = v;
    const x = f64bytes;
    if (LITTLE) {
      b[p + 1] = x[7]!; b[p + 2] = x[6]!; b[p + 3] = x[5]!; b[p + 4] = x[4]!;
      b[p + 5] = x[3]!; b[p + 6] = x[2]!; b[p + 7] = x[1]!; b[p + 8] = x[0]!;
    } else {
      for (let i = 0; i < 8; i++) b[p + 1 + i] = x[i]!;
    }
    p += 9;
  }
  return p;
}

function encValue(b: Buffer, p: number, limit: number, v: unknown, depth: number): number {
  if (p + 9 > limit) return -2;
  switch (typeof v) {
    case 'string':
      return encStr(b, p, limit, v);
    case 'number':
      return encNumber(b, p, v);
    case 'boolean':
      b[p] = v ? 0xc3 : 0xc2;
      return p + 1;
    case 'undefined':
      b[p] = 0xc0;
      return p + 1;
    case 'object':
      if (v === null) {
        b[p] = 0xc0;
        return p + 1;
      }
      return encObject(b, p, limit, v, depth);
    default:
      return -1;
  }
}

// String.prototype.charCodeAt, called with .call: a site that loads `charCodeAt` from a for-in key showed up as a
// generic LoadIC call per character in the optimized encoder of a busy sender (~15% of its CPU).
const charCodeAt = String.prototype.charCodeAt;

function encObject(b: Buffer, p: number, limit: number, v: object, depth: number): number {
  // A container below the default receiver's maxDepth: encode's checkEncodable decides (refused by default).
  if (depth >= MAX_DEPTH) return -1;
  // The constructor load first: its map check lets the optimizing compiler fold getPrototypeOf to a constant for
  // the object's (stable) map instead of calling into the runtime for every object.
  const ctor = (v as { constructor?: unknown }).constructor;
  const proto = Object.getPrototypeOf(v);
  // An own 'constructor' key (ctor is then not Object) goes to encode, which refuses it as every receiver does.
  if (proto === objectProto && ctor === Object) {
    // map16 always, as msgpackr writes it (variableMapSize: false); the count is patched in after the keys
    const at = p;
    b[p] = 0xde;
    p += 3;
    let n = 0;
    // for-in without a per-key hasOwn check: encodeInto makes sure Object.prototype has no enumerable keys, so
    // for-in yields exactly the own enumerable keys (Object.keys, and msgpackr's for-in + hasOwnProperty).
    // Short ASCII keys and the common values (numbers, short ASCII strings) are written inline: this loop is the
    // hottest of the sending side, and a call per key and per value costs more than the bytes themselves.
    for (const k in v) {
      const kl = k.length;
      // `__proto__` (an own key of a JSON.parse'd object): every receiver refuses it, encode says so.
      if (kl === 9 && k === '__proto__') return -1;
      if (kl < 0x20 && p + 1 + kl + 9 <= limit) {
        const q = p + 1;
        let i = 0;
        for (; i < kl; i++) {
          const c = charCodeAt.call(k, i);
          if (c >= 0x80) break;
          b[q + i] = c;
        }
        if (i === kl) {
          b[p] = 0xa0 | kl;
          p = q + kl;
        } else {
          p = encStrGeneral(b, p, limit, k);
          if (p < 0) return p;
        }
      } else {
        p = encStr(b, p, limit, k);
        if (p < 0) return p;
      }
      const x = (v as Record<string, unknown>)[k];
      if (typeof x === 'number' && p + 9 <= limit) {
        p = encNumber(b, p, x);
        if (p < 0) return p;
      } else if (typeof x === 'string' && x.length < 0x20 && p + 1 + x.length * 3 <= limit) {
        const xl = x.length;
        const q = p + 1;
        let i = 0;
        for (; i < xl; i++) {
          const c = charCodeAt.call(x, i);
          if (c >= 0x80) break;
          b[q + i] = c;
        }
        if (i === xl) {
          b[p] = 0xa0 | xl;
          p = q + xl;
        } else {
          p = encStrGeneral(b, p, limit, x);
        }
      } else {
        p = encValue(b, p, limit, x, depth + 1);
        if (p < 0) return p;
      }
      n++;
    }
    if (n > 0xffff) return -1;
    b[at + 1] = n >> 8;
    b[at + 2] = n & 0xff;
    return p;
  }
  if (Array.isArray(v) && proto === Array.prototype) {
    const n = v.length;
    if (n < 0x10) b[p++] = 0x90 | n;
    else if (n < 0x10000) { b[p++] = 0xdc; b[p++] = n >> 8; b[p++] = n & 0xff; }
    else { b[p++] = 0xdd; b[p++] = n >>> 24; b[p++] = n >>> 16; b[p++] = n >>> 8; b[p++] = n; }
    for (let i = 0; i < n; i++) {
      p = encValue(b, p, limit, v[i], depth + 1);
      if (p < 0) return p;
    }
    return p;
  }
  if (proto === Buffer.prototype || proto === Uint8Array.prototype) {
    const u = v as Uint8Array;
    const n = u.length;
    if (p + 5 + n > limit) return -2;
    if (n < 0x100) { b[p++] = 0xc4; b[p++] = n; }
    else if (n < 0x10000) { b[p++] = 0xc5; b[p++] = n >> 8; b[p++] = n & 0xff; }
    else { b[p++] = 0xc6; b[p++] = n >>> 24; b[p++] = n >>> 16; b[p++] = n >>> 8; b[p++] = n; }
    if (n <= 64) for (let i = 0; i < n; i++) b[p + i] = u[i]!;
    else b.set(u, p);
    return p + n;
  }
  return -1;
}

/**
 * Encodes `value` straight into `buf` from `offset`, writing no byte at or past `limit`, with exactly the bytes
 * {@link encode} would produce. Returns the end offset, {@link ENCODE_UNSUPPORTED} when the value is outside the fast
 * subset (plain objects and arrays of strings, finite numbers, booleans, null/undefined and byte strings, nested at
 * most {@link MAX_DEPTH} deep, with at most {@link MAX_NODES} values and no key `__proto__` or `constructor`: what a
 * default receiver accepts), or {@link ENCODE_NO_ROOM}. On ENCODE_UNSUPPORTED, {@link encode} (with the sender's
 * {@link EncodeOptions}) decides: it encodes the value or throws BadPayload. Bytes between `offset` and `limit` may
 * have been overwritten when it fails.
 */
export function encodeInto(value: unknown, buf: Buffer, offset: number, limit: number): number {
  // An enumerable key on Object.prototype (a polyfill, pollution) would show in for-in: then take msgpackr's path.
  for (const _ in objectProto) return ENCODE_UNSUPPORTED;
  const r = encValue(buf, offset, limit, value, 0);
  if (r < 0) return r === -1 ? ENCODE_UNSUPPORTED : ENCODE_NO_ROOM;
  // Every value takes at least one byte, so only a payload longer than MAX_NODES bytes can hold more values than a
  // default receiver accepts: only those are counted (encode then refuses the ones over).
  if (r - offset > MAX_NODES && countValues(value, MAX_NODES) > MAX_NODES) return ENCODE_UNSUPPORTED;
  return r;
}

// The values in `v` as a receiver counts them (containers and scalars, keys not counted), stopping past `max`.
// `v` is plain data that encValue accepted (so acyclic, within MAX_DEPTH).
function countValues(v: unknown, max: number): number {
  const stack: unknown[] = [v];
  let n = 0;
  while (stack.length > 0 && n <= max) {
    const x = stack.pop();
    n++;
    if (typeof x !== 'object' || x === null || ArrayBuffer.isView(x)) continue;
    if (Array.isArray(x)) for (let i = 0; i < x.length; i++) stack.push(x[i]);
    else for (const k in x) stack.push((x as Record<string, unknown>)[k]);
  }
  return n;
}

// ---- decoding

let db: Buffer = scratch;
let dp = 0;
let dend = 0;
let dnodes = 0;
let dmaxNodes = 0;
// Byte strings of at least this many bytes are views of `db` (DecodeOptions.binaryViewThreshold).
let dviewFrom = Infinity;
let dmaxDepth = 0;
let dfail = false;

// Interned map keys by (length, first bytes): messages repeat the same few keys, so most keys cost no allocation.
const keyCacheBytes: (Uint8Array | null)[] = new Array(4096).fill(null);
const keyCacheStrings: (string | null)[] = new Array(4096).fill(null);

function asciiString(start: number, len: number): string | null {
  const b = db;
  const end = start + len;
  for (let i = start; i < end; i++) if (b[i]! >= 0x80) return null;
  if (len <= 8) {
    switch (len) {
      case 0: return '';
      case 1: return String.fromCharCode(b[start]!);
      case 2: return String.fromCharCode(b[start]!, b[start + 1]!);
      case 3: return String.fromCharCode(b[start]!, b[start + 1]!, b[start + 2]!);
      case 4: return String.fromCharCode(b[start]!, b[start + 1]!, b[start + 2]!, b[start + 3]!);
      default: {
        let s = '';
        for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
        return s;
      }
    }
  }
  return b.toString('latin1', start, end);
}

function decKey(): string | null {
  const b = db;
  if (dp >= dend) return null;
  const t = b[dp++]!;
  let len: number;
  if (t >= 0xa0 && t < 0xc0) len = t - 0xa0;
  else if (t === 0xd9) {
    if (dp >= dend) return null;
    len = b[dp++]!;
  } else return null;
  if (dp + len > dend) return null;
  const start = dp;
  dp += len;
  if (len > 0 && len <= 16) {
    const h = ((len << 5) ^ (b[start]! << 3) ^ (len > 1 ? b[start + 1]! : 0) ^ (b[start + len - 1]! << 7)) & 0xfff;
    const cached = keyCacheBytes[h];
    if (cached !== null && cached!.length === len) {
      let same = true;
      for (let i = 0; i < len; i++) {
        if (cached![i] !== b[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return keyCacheStrings[h]!;
    }
    const s = asciiString(start, len);
    if (s === null) return null;
    keyCacheBytes[h] = Uint8Array.prototype.slice.call(b, start, start + len);
    keyCacheStrings[h] = s;
    return s;
  }
  return asciiString(start, len);
}

function decContainerLen(n: number): boolean {
  // every element needs at least one byte: a cheap bound against huge declared lengths
  return dp + n <= dend;
}

function decValue(depth: number): unknown {
  if (dfail) return undefined;
  if (dp >= dend || ++dnodes > dmaxNodes) {
    dfail = true;
    return undefined;
  }
  const b = db;
  const t = b[dp++]!;
  if (t < 0x80) return t;
  if (t >= 0xe0) return t - 0x100;
  if (t < 0xa0) {
    const isMap = t < 0x90;
    return isMap ? decMap(t & 0x0f, depth) : decArray(t & 0x0f, depth);
  }
  if (t < 0xc0) return decStr(t - 0xa0);
  const rem = dend - dp;
  switch (t) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: if (rem < 1) break; return decBin(b[dp++]!);
    case 0xc5: if (rem < 2) break; dp += 2; return decBin((b[dp - 2]! << 8) | b[dp - 1]!);
    case 0xc6: if (rem < 4) break; dp += 4; return decBin(b.readUInt32BE(dp - 4));
    case 0xca: { if (rem < 4) break; dp += 4; const f = b.readFloatBE(dp - 4); if (Number.isFinite(f)) return f; break; }
    case 0xcb: { if (rem < 8) break; const f = readF64(b, dp); dp += 8; if (Number.isFinite(f)) return f; break; }
    case 0xcc: if (rem < 1) break; return b[dp++]!;
    case 0xcd: if (rem < 2) break; dp += 2; return (b[dp - 2]! << 8) | b[dp - 1]!;
    case 0xce: if (rem < 4) break; dp += 4; return ((b[dp - 4]! << 24) >>> 0) + ((b[dp - 3]! << 16) | (b[dp - 2]! << 8) | b[dp - 1]!);
    case 0xd0: if (rem < 1) break; return (b[dp++]! << 24) >> 24;
    case 0xd1: if (rem < 2) break; dp += 2; return (((b[dp - 2]! << 8) | b[dp - 1]!) << 16) >> 16;
    case 0xd2: if (rem < 4) break; dp += 4; return b.readInt32BE(dp - 4);
    case 0xd9: if (rem < 1) break; return decStr(b[dp++]!);
    case 0xda: if (rem < 2) break; dp += 2; return decStr((b[dp - 2]! << 8) | b[dp - 1]!);
    case 0xdb: if (rem < 4) break; dp += 4; return decStr(b.readUInt32BE(dp - 4));
    case 0xdc: if (rem < 2) break; dp += 2; return decArray((b[dp - 2]! << 8) | b[dp - 1]!, depth);
    case 0xdd: if (rem < 4) break; dp += 4; return decArray(b.readUInt32BE(dp - 4), depth);
    case 0xde: if (rem < 2) break; dp += 2; return decMap((b[dp - 2]! << 8) | b[dp - 1]!, depth);
    case 0xdf: if (rem < 4) break; dp += 4; return decMap(b.readUInt32BE(dp - 4), depth);
    default: break; // c1, extensions, 64-bit integers: the general path decides
  }
  dfail = true;
  return undefined;
}

// The DataView of the buffer being decoded, during decodeWithView only.
let dview: DataView | null = null;

// A big-endian float64 at b[p..p+8): through the caller's DataView when there is one, else through the typed-array
// view the encoder uses (cheaper than readDoubleBE).
function readF64(b: Buffer, p: number): number {
  if (dview !== null) return dview.getFloat64(p, false);
  const x = f64bytes;
  if (LITTLE) {
    x[7] = b[p]!; x[6] = b[p + 1]!; x[5] = b[p + 2]!; x[4] = b[p + 3]!;
    x[3] = b[p + 4]!; x[2] = b[p + 5]!; x[1] = b[p + 6]!; x[0] = b[p + 7]!;
  } else {
    for (let i = 0; i < 8; i++) x[i] = b[p + i]!;
  }
  return f64[0]!;
}

// Short string values (1-4 bytes: 'move', 'ok', enum-like tags) repeat from message to message: interned by their
// bytes packed into one integer plus their length, so a repeat costs a table probe instead of a new string. Only
// ASCII strings are entered (asciiString checks), and a hit needs the same length and the same packed bytes.
const shortValBytes = new Int32Array(1024);
const shortValLen = new Uint8Array(1024);
const shortValStr: string[] = new Array<string>(1024).fill('');

function decStr(len: number): string | undefined {
  if (dp + len > dend) {
    dfail = true;
    return undefined;
  }
  if (len > 0 && len <= 4) {
    const b = db;
    const p = dp;
    let w = b[p]!;
    if (len > 1) w = (w << 8) | b[p + 1]!;
    if (len > 2) w = (w << 8) | b[p + 2]!;
    if (len > 3) w = (w << 8) | b[p + 3]!;
    const h = (w ^ (w >>> 10) ^ (w >>> 20) ^ (len << 7)) & 1023;
    if (shortValLen[h] === len && shortValBytes[h] === w) {
      dp = p + len;
      return shortValStr[h];
    }
    const s = asciiString(p, len);
    if (s === null) {
      dfail = true;
      return undefined;
    }
    shortValBytes[h] = w;
    shortValLen[h] = len;
    shortValStr[h] = s;
    dp = p + len;
    return s;
  }
  const s = asciiString(dp, len);
  if (s === null) {
    dfail = true;
    return undefined;
  }
  dp += len;
  return s;
}

function decBin(len: number): Buffer | undefined {
  if (dp + len > dend) {
    dfail = true;
    return undefined;
  }
  if (len >= dviewFrom) {
    // A view (binaryViewThreshold): no allocation of its own, no copy.
    const v = db.subarray(dp, dp + len);
    dp += len;
    return v;
  }
  // A copy, as msgpackr's copyBuffers gives: a decoded value never pins the frame. Buffer.allocUnsafe takes small
  // ones from Node's shared pool, which is much cheaper than a fresh ArrayBuffer per value.
  const out = Buffer.allocUnsafe(len);
  if (len <= 64) for (let i = 0; i < len; i++) out[i] = db[dp + i]!;
  else db.copy(out, 0, dp, dp + len);
  dp += len;
  return out;
}

function decArray(n: number, depth: number): unknown[] | undefined {
  if (depth + 1 > dmaxDepth || !decContainerLen(n)) {
    dfail = true;
    return undefined;
  }
  const a = new Array<unknown>(n);
  for (let i = 0; i < n; i++) {
    a[i] = decValue(depth + 1);
    if (dfail) return undefined;
  }
  return a;
}

// Repeated map shapes. Messages of one kind carry the same keys in the same order; for those, the object is built
// by a per-shape function returning an object literal whose values are decoded in place, key check by key check
// (one allocation of a stable hidden class, no property additions with their map transitions, no staging array).
// A shape is the exact byte sequence of each key (fixstr only), remembered for the last map of each size; a key
// that differs makes the map decode again from its first key the general way.
interface MapShape {
  readonly keys: string[];
  /** Key i's encoded bytes (fixstr header included) are kb[ko[i] .. ko[i+1]). */
  readonly kb: Uint8Array;
  readonly ko: Uint16Array;
  readonly build: (s: MapShape, key: typeof shapeKey, short: typeof shapeKeyShort, value: typeof decValue, depth: number) => Record<string, unknown>;
}
const SHAPE_MAX_KEYS = 16;
const shapes: (MapShape | null)[] = new Array(SHAPE_MAX_KEYS + 1).fill(null);
// Set when a shaped map met a key other than its shape's: the map is then decoded again the general way.
let shapeMiss = false;
// Every shape made, by its key list, so a size whose maps alternate between shapes re-learns without recompiling.
// Bounded: past SHAPE_CACHE_MAX distinct key lists (a peer sending arbitrary keys), new ones are not cached.
const shapeCache = new Map<string, MapShape>();
const SHAPE_CACHE_MAX = 256;

function shapeFor(keys: string[], kbytes: number[], ko: number[]): MapShape | null {
  // The id is the keys' encoded bytes, fixstr headers included: each header gives its key's length, so two different
  // key lists never share an id. (Keys joined with NUL did: a key may hold NUL, so the 1-key list ["a\0b"] got the
  // 2-key shape of ["a", "b"] and a 1-entry map was decoded with two entries: a peer could make the process-wide
  // shapes misread other peers' valid payloads.) Only learning a shape pays for this, not a map decoded by one.
  const id = String.fromCharCode.apply(null, kbytes);
  const s = shapeCache.get(id);
  if (s !== undefined) return s;
  if (shapeCache.size >= SHAPE_CACHE_MAX) return null;
  const made = makeShape(keys, kbytes, ko);
  shapeCache.set(id, made);
  return made;
}

function makeShape(keys: string[], kbytes: number[], ko: number[]): MapShape {
  // The keys are ASCII fixstr keys that passed the forbidden-key check; JSON.stringify quotes them as string
  // literals and computed keys define plain own properties whatever the key.
  // Property values are evaluated in source order: key i is checked, then its value decoded, for i = 0, 1, ...
  // A key of at most 4 encoded bytes (fixstr header included) is compared as one integer, packed here.
  const check = (i: number): string => {
    const len = ko[i + 1]! - ko[i]!;
    if (len > 4) return `key(s, ${i})`;
    let w = 0;
    for (let j = ko[i]!; j < ko[i + 1]!; j++) w = (w << 8) | kbytes[j]!;
    return `short(${w | 0}, ${len})`;
  };
  const body = `return {${keys.map((k, i) => `[${JSON.stringify(k)}]: ${check(i)} ? value(depth) : undefined`).join(', ')}};`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const build = new Function('s', 'key', 'short', 'value', 'depth', body) as MapShape['build'];
  return { keys, kb: Uint8Array.from(kbytes), ko: Uint16Array.from(ko), build };
}

// shapeKey for a key of len <= 4 encoded bytes packed big-endian into the int32 w.
function shapeKeyShort(w: number, len: number): boolean {
  if (shapeMiss || dfail) return false;
  const p = dp;
  if (p + len > dend) {
    shapeMiss = true;
    return false;
  }
  const b = db;
  let x = b[p]!;
  if (len > 1) x = (x << 8) | b[p + 1]!;
  if (len > 2) x = (x << 8) | b[p + 2]!;
  if (len > 3) x = (x << 8) | b[p + 3]!;
  if (x !== w) {
    shapeMiss = true;
    return false;
  }
  dp = p + len;
  return true;
}

// Consumes key i of shape s when the bytes at dp are exactly that key; else records the miss (and consumes nothing
// more for this map: every later key check fails at once).
function shapeKey(s: MapShape, i: number): boolean {
  if (shapeMiss || dfail) return false;
  const ko = s.ko;
  const ks = ko[i]!;
  const klen = ko[i + 1]! - ks;
  const b = db;
  const kb = s.kb;
  const p = dp;
  if (p + klen > dend) {
    shapeMiss = true;
    return false;
  }
  for (let j = 0; j < klen; j++) {
    if (b[p + j] !== kb[ks + j]) {
      shapeMiss = true;
      return false;
    }
  }
  dp = p + klen;
  return true;
}

function decMapShaped(shape: MapShape, n: number, depth: number): Record<string, unknown> | undefined {
  const start = dp;
  const o = shape.build(shape, shapeKey, shapeKeyShort, decValue, depth + 1);
  if (dfail) return undefined;
  if (!shapeMiss) return o;
  // A different key: forget the shape of this size (the next map learns again) and decode this one the general
  // way from its first key. The values decoded before the miss stay counted against maxNodes, so crafted misses
  // cannot multiply the work: past the budget the fast path gives up and msgpackr's path decides, once.
  shapeMiss = false;
  shapes[n] = null;
  dp = start;
  return decMapRest({}, 0, n, depth);
}

function decMap(n: number, depth: number): Record<string, unknown> | undefined {
  if (depth + 1 > dmaxDepth || !decContainerLen(n * 2)) {
    dfail = true;
    return undefined;
  }
  if (n > 0 && n <= SHAPE_MAX_KEYS) {
    const shape = shapes[n];
    if (shape !== null) return decMapShaped(shape!, n, depth);
    return decMapLearn(n, depth);
  }
  return decMapRest({}, 0, n, depth);
}

// The general loop, remembering the keys' bytes: when they are all fixstr, they become the shape of this size.
function decMapLearn(n: number, depth: number): Record<string, unknown> | undefined {
  const o: Record<string, unknown> = {};
  const keys: string[] = [];
  const kbytes: number[] = [];
  const ko: number[] = [0];
  let fix = true;
  for (let i = 0; i < n; i++) {
    const ks = dp;
    const k = decKey();
    if (k === null || isForbiddenKey(k)) {
      dfail = true;
      return undefined;
    }
    if (db[ks]! >= 0xa0 && db[ks]! < 0xc0) {
      for (let j = ks; j < dp; j++) kbytes.push(db[j]!);
      ko.push(kbytes.length);
      keys.push(k);
    } else fix = false;
    if (k in o) fix = false; // a repeated key: the later value wins in a plain object, keep that path
    o[k] = decValue(depth + 1);
    if (dfail) return undefined;
  }
  if (fix) shapes[n] = shapeFor(keys, kbytes, ko);
  return o;
}

function decMapRest(o: Record<string, unknown>, from: number, n: number, depth: number): Record<string, unknown> | undefined {
  for (let i = from; i < n; i++) {
    const k = decKey();
    if (k === null || isForbiddenKey(k)) {
      dfail = true;
      return undefined;
    }
    o[k] = decValue(depth + 1);
    if (dfail) return undefined;
  }
  return o;
}

const FAST_FAILED: unique symbol = Symbol('fast decode failed');

/**
 * The decoding fast path: plain data from `buf[start..end)` when every byte is in the subset it knows, or
 * FAST_FAILED (then the general path decides, and produces the same value or the error).
 */
function decodeFast(buf: Buffer, start: number, end: number, maxDepth: number, maxNodes: number, viewFrom: number): unknown {
  db = buf;
  dviewFrom = viewFrom;
  dp = start;
  dend = end;
  dnodes = 0;
  dmaxNodes = maxNodes;
  dmaxDepth = maxDepth;
  dfail = false;
  const v = decValue(0);
  const ok = !dfail && dp === end;
  db = scratch;
  return ok ? v : FAST_FAILED;
}

/** @internal for tests: whether the decoding fast path handles these bytes on its own. */
export function decodesFast(bytes: Buffer): boolean {
  return decodeFast(bytes, 0, bytes.length, MAX_DEPTH, MAX_NODES, Infinity) !== FAST_FAILED;
}
