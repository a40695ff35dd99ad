/**
 * HMAC-SHA256 engines behind one batch API.
 *
 * Node's `createHmac` spends ~2–3 µs per call on object creation and the JS→C++ crossing, ~10x the SHA-256 work
 * of a 100-byte message (~0.3 µs in OpenSSL). So MACs here are computed with the key's inner/outer pad states
 * precomputed once ({@link MacEngine.prepareKey}) and, on the hot paths, a whole batch of messages per call: the
 * sender signs every message of a loop iteration in one call before its single socket write, and the receiver
 * verifies every complete frame of a `'data'` chunk in one call.
 *
 * Engines, all producing identical bytes (test/wire/mac.test.ts):
 * - `native`: the optional N-API addon in `native/` over the OpenSSL that Node bundles (built by `npm ci`'s
 *   `prepare` step, or `npm run build:native`); used when it loaded and `TULIPWIRE_NO_NATIVE` is not `1`.
 * - `js`: JavaScript SHA-256 over the precomputed states for messages up to 384 bytes, `createHmac` beyond (where
 *   OpenSSL's speed beats the per-call overhead) (mac-js.ts); the fallback.
 * - `node`: `crypto.createHmac` per message, the reference and the benchmark baseline.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Bytes in an HMAC-SHA256 tag. */
export const TAG_SIZE = 32;

/** A key prepared by one engine (its precomputed pad states); only the engine that made it can use it. */
export interface MacKey {
  /** The engine that prepared this key. */
  readonly engine: MacEngineName;
}

/** Names of the MAC engines. */
export type MacEngineName = 'native' | 'js' | 'node';

/**
 * An HMAC-SHA256 implementation. Ranges are `[start, end)` byte offsets into `buf`; the tag of range `i` lives
 * right after it, at `buf[ends[i] .. ends[i] + 32)`.
 */
export interface MacEngine {
  /** Which implementation this is. */
  readonly name: MacEngineName;
  /** Precomputes the pad states of `key` (any length; RFC 2104 hashes keys longer than 64 bytes). */
  prepareKey(key: Uint8Array): MacKey;
  /** HMAC of `data[start..end)` as a new 32-byte Buffer. */
  mac(key: MacKey, data: Uint8Array, start?: number, end?: number): Buffer;
  /** For `i` in `first .. first+count-1`: writes the tag of `buf[starts[i]..ends[i])` at `buf[ends[i]]`. */
  signBatch(key: MacKey, buf: Uint8Array, starts: Uint32Array, ends: Uint32Array, first: number, count: number): void;
  /**
   * For `i` in `first .. first+count-1`: `results[i] = 1` when the 32 bytes at `buf[ends[i]]` equal the tag of
   * `buf[starts[i]..ends[i])`, else 0, compared in constant time. Returns how many matched.
   */
  verifyBatch(key: MacKey, buf: Uint8Array, starts: Uint32Array, ends: Uint32Array, first: number, count: number,
    results: Uint8Array): number;
}

/** Whether two views share any byte of one ArrayBuffer. */
function sharesBytes(a: ArrayBufferView, aLen: number, b: ArrayBufferView, bLen: number): boolean {
  return a.buffer === b.buffer && aLen !== 0 && bLen !== 0 &&
    a.byteOffset < b.byteOffset + bLen && b.byteOffset < a.byteOffset + aLen;
}

// %TypedArray%.prototype[Symbol.toStringTag]: the element type's name for any typed array (of any realm), else
// undefined. How the native addon's napi_get_typedarray_info sees an argument.
const typedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)!
  .get as (this: unknown) => string | undefined;

/** Throws the native addon's TypeError unless `v` is a typed array of element type `type` (a Buffer is a Uint8Array). */
function typed(v: unknown, type: 'Uint8Array' | 'Uint32Array'): void {
  if (typedArrayTag.call(v) !== type) throw new TypeError(`tulipwire_mac: expected a ${type}`);
}

/**
 * Throws the native addon's TypeError when the offsets `v` live in a SharedArrayBuffer: another thread could change
 * them after they were checked (native/src/mac.c refuses them for that reason; the JS engines refuse them alike).
 */
function notShared(v: ArrayBufferView): void {
  if (Object.prototype.toString.call(v.buffer) === '[object SharedArrayBuffer]') {
    throw new TypeError('tulipwire_mac: offsets in a SharedArrayBuffer');
  }
}

/** An index argument as the native addon reads it (`napi_get_value_uint32`: ToUint32 of a number, else TypeError). */
function u32(v: unknown): number {
  if (typeof v !== 'number') throw new TypeError('tulipwire_mac: expected an unsigned integer');
  return v >>> 0;
}

/**
 * @internal The argument checks every engine makes before it touches a byte, the same as native/src/mac.c's, so that
 * all engines refuse (RangeError/TypeError) the same inputs: `buf`/`results` not a Uint8Array or `starts`/`ends`
 * not a Uint32Array (TypeError; a Buffer is a Uint8Array, a Uint8ClampedArray is not), offsets in a SharedArrayBuffer
 * (TypeError), `first + count` within `starts`, `ends` (and `results`),
 * each range with `starts[i] <= ends[i]` and its tag slot `ends[i] + 32` inside `buf`, and no written memory (`buf`
 * when signing, `results` when verifying) shared with the offsets. Returns `[first, count]` as ToUint32 made them.
 * One pass over the offsets per batch: two compares per message.
 */
export function checkBatchArgs(buf: Uint8Array, starts: Uint32Array, ends: Uint32Array, first: number, count: number,
  results?: Uint8Array): [number, number] {
  typed(buf, 'Uint8Array');
  typed(starts, 'Uint32Array');
  typed(ends, 'Uint32Array');
  notShared(starts);
  notShared(ends);
  if (results !== undefined) typed(results, 'Uint8Array');
  const f = u32(first);
  const c = u32(count);
  const last = f + c;
  if (last > starts.length || last > ends.length) {
    throw new RangeError('tulipwire_mac: first + count exceeds the offset arrays');
  }
  if (sharesBytes(buf, buf.byteLength, starts, starts.byteLength) || sharesBytes(buf, buf.byteLength, ends, ends.byteLength)) {
    throw new RangeError('tulipwire_mac: the buffer shares memory with the offsets or the key state');
  }
  const len = buf.length;
  for (let i = f; i < last; i++) {
    const e = ends[i]!;
    if (starts[i]! > e || e + TAG_SIZE > len) throw new RangeError('tulipwire_mac: range outside the buffer');
  }
  if (results !== undefined) {
    if (last > results.length) throw new RangeError('tulipwire_mac: results array too short');
    if (sharesBytes(results, results.byteLength, starts, last * 4) || sharesBytes(results, results.byteLength, ends, last * 4) ||
      sharesBytes(results, results.byteLength, buf, buf.byteLength)) {
      throw new RangeError('tulipwire_mac: results share memory with the offsets, the key state or the buffer');
    }
  }
  return [f, c];
}

/**
 * @internal The checks of {@link MacEngine.mac}'s range, as the native addon makes them: `data` a Uint8Array and
 * `0 <= start <= end <= data.length` (indexes read with ToUint32). Returns `[start, end]`.
 */
export function checkMacRange(data: Uint8Array, start: number, end: number): [number, number] {
  typed(data, 'Uint8Array');
  const s = u32(start);
  const e = u32(end);
  if (s > e || e > data.length) throw new RangeError('tulipwire_mac: range outside the buffer');
  return [s, e];
}

interface NodeMacKey extends MacKey {
  readonly raw: Buffer;
}

/** The reference engine: one `crypto.createHmac` per message and `timingSafeEqual`. Slow; for tests and benches. */
export const nodeMac: MacEngine = {
  name: 'node',
  prepareKey(key: Uint8Array): MacKey {
    const k: NodeMacKey = { engine: 'node', raw: Buffer.from(key) };
    return k;
  },
  mac(key: MacKey, data: Uint8Array, start = 0, end = data.length): Buffer {
    const [s, e] = checkMacRange(data, start, end);
    return createHmac('sha256', (key as NodeMacKey).raw).update(data.subarray(s, e)).digest();
  },
  signBatch(key, buf, starts, ends, first, count): void {
    [first, count] = checkBatchArgs(buf, starts, ends, first, count);
    for (let i = first, n = first + count; i < n; i++) {
      const e = ends[i]!;
      buf.set(nodeMac.mac(key, buf, starts[i]!, e), e);
    }
  },
  verifyBatch(key, buf, starts, ends, first, count, results): number {
    [first, count] = checkBatchArgs(buf, starts, ends, first, count, results);
    let ok = 0;
    for (let i = first, n = first + count; i < n; i++) {
      const e = ends[i]!;
      const good = timingSafeEqual(nodeMac.mac(key, buf, starts[i]!, e), buf.subarray(e, e + TAG_SIZE));
      results[i] = good ? 1 : 0;
      if (good) ok++;
    }
    return ok;
  },
};
