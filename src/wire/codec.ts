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
  // Stated although records are decoded regardless (hard-wired in msgpackr): the shape check catches their output.
  useRecords: false,
  // Maps become plain objects (what applications expect); `__proto__` keys are renamed by msgpackr, never applied.
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
}

/**
 * Encodes `value` as standard msgpack. The result is a view of msgpackr's output buffer that stays valid (msgpackr
 * moves on to fresh space for the next call); copy it if you keep many.
 * @throws BadPayload when the value cannot be encoded (a cycle, a function, a symbol key…), with the msgpackr error as `cause`.
 */
export function encode(value: unknown): Buffer {
  try {
    return packr.pack(value);
  } catch (err) {
    throw new BadPayload(`cannot encode the message: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

/**
 * Decodes the msgpack bytes `bytes[start..end)` (default: all of them) and checks the result's shape.
 * @throws BadPayload for anything msgpackr rejects (truncated, trailing bytes, bad types, stack overflow), with the
 *   msgpackr error as `cause`, and for values the shape check refuses.
 */
export function decode(bytes: Uint8Array, options?: DecodeOptions, start = 0, end = bytes.length): unknown {
  if (end <= start) throw new BadPayload('empty payload');
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
  checkShape(value, options);
  return value;
}

const objectProto = Object.prototype;

/**
 * Checks that `value` is plain data: null, boolean, finite number, string, `Buffer` (a msgpack `bin`), arrays and
 * objects whose prototype is `Object.prototype`, nested at most `maxDepth` deep with at most `maxNodes` values.
 * Keys `__proto__`, `__proto_` (what msgpackr renames `__proto__` to) and `constructor` are refused. Iterative, so
 * hostile nesting cannot overflow the stack.
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
        if (depth > maxDepth) throw new BadPayload(`payload nests deeper than ${maxDepth} (maxDepth)`);
        if (Array.isArray(v)) {
          if (Object.getPrototypeOf(v) !== Array.prototype) throw new BadPayload('payload holds an exotic array');
          for (let i = 0; i < v.length; i++) {
            stack.push(v[i]);
            depths.push(depth + 1);
          }
          continue;
        }
        const proto = Object.getPrototypeOf(v);
        if (proto === objectProto) {
          for (const k in v) {
            if (k === '__proto__' || k === '__proto_' || k === 'constructor') {
              throw new BadPayload(`payload holds the forbidden key ${JSON.stringify(k)}`);
            }
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
    if (k === '__proto__' || k === '__proto_' || k === 'constructor') return false;
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
