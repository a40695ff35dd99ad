/**
 * Encoder/decoder symmetry: whatever `encode` writes, a receiver with the matching decode options accepts and decodes
 * back to an equal value (modulo the documented normalizations: `undefined` and array holes → null, -0 → 0, a lone
 * surrogate → U+FFFD, a Uint8Array → Buffer); everything else makes `encode` throw BadPayload (TW_BAD_PAYLOAD) at send
 * time. Never a successful encode that the decoder refuses: the peer would drop such a message silently.
 *
 * Random nested values from a fixed seed, mixing plain data with every unusual thing a JS application may hand over.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ENCODE_UNSUPPORTED, decode, decodeGeneral, encode, encodeInto } from '../../src/wire/codec.js';
import type { DecodeOptions, EncodeOptions } from '../../src/wire/codec.js';
import { BadPayload } from '../../src/errors.js';

const SEED = 20240611;

class Point {
  x = 1;
  y = 2;
}

// Leaves: plain ones and the unusual values an application may pass by mistake.
const leaf: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.oneof(fc.constant(null), fc.constant(undefined), fc.boolean()) },
  { weight: 6, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-0, 2 ** 53, -(2 ** 53), 2 ** 64, 1e300, 4294967296, -2147483649)) },
  { weight: 2, arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity) },
  { weight: 6, arbitrary: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 10 }),
    fc.constantFrom('\ud800', 'a\udc00b', '\ud83d\ude00', 'é', '__proto__', 'constructor')) },
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 40 }).chain((u) => fc.constantFrom(u, Buffer.from(u), Buffer.from(u).subarray(1))) },
  { weight: 3, arbitrary: fc.constantFrom<unknown>(new Date(0), new Date(Number.NaN), new Date(1_700_000_000_123)) },
  { weight: 3, arbitrary: fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), fc.constantFrom(0n, 2n ** 53n + 1n)) },
  { weight: 4, arbitrary: fc.constantFrom<() => unknown>(
    () => new Map([['a', 1]]), () => new Set([1]), () => new Uint16Array([1, 2]), () => new Float64Array([1.5]),
    () => new Int8Array(2), () => new Uint8ClampedArray(3), () => new ArrayBuffer(4), () => new DataView(new ArrayBuffer(2)),
    () => new Point(), () => /a+/, () => new Error('x'), () => Promise.resolve(1), () => (() => 1), () => Symbol('s'),
    // eslint-disable-next-line no-new-wrappers
    () => new String('boxed'), () => Object.assign(Object.create(null) as object, { n: 1 }),
    () => JSON.parse('{"__proto__": 1}') as unknown, () => ({ constructor: 'x' }), () => [1, , 3], // eslint-disable-line no-sparse-arrays
    () => deepArray(32), () => deepArray(33), () => ({ big: new Array(100_001).fill(0) }),
  ).map((make) => make()) },
);

function deepArray(levels: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < levels; i++) v = [v];
  return v;
}

const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 6 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('t', 'id', 'x')), tie('value'), { maxKeys: 6 })),
}));

/** The value a receiver should get back for `v` (see the module comment); `bigAsNumber` for allowBigInt. */
function expected(v: unknown, bigAsNumber: boolean): unknown {
  if (v === undefined) return null;
  if (typeof v === 'number') return Object.is(v, -0) ? 0 : v;
  if (typeof v === 'string') return Buffer.from(v, 'utf8').toString('utf8');
  if (typeof v === 'bigint') return bigAsNumber && v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (v instanceof Date) return v;
  if (Array.isArray(v)) return Array.from(v, (x) => expected(x, bigAsNumber));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = expected((v as Record<string, unknown>)[k], bigAsNumber);
  return out;
}

function checkSymmetric(v: unknown, enc: EncodeOptions | undefined, dec: DecodeOptions | undefined): 'sent' | 'refused' {
  let bytes: Buffer;
  try {
    bytes = Buffer.from(encode(v, enc));
  } catch (e) {
    expect(e).toBeInstanceOf(BadPayload);
    expect((e as BadPayload).code).toBe('TW_BAD_PAYLOAD');
    // The fast path refuses it too (it hands everything it does not know to encode).
    expect(encodeInto(v, Buffer.alloc(300_000), 0, 300_000)).toBe(ENCODE_UNSUPPORTED);
    return 'refused';
  }
  const want = expected(v, enc?.allowBigInt === true);
  expect(decode(bytes, dec)).toStrictEqual(want);
  expect(decodeGeneral(bytes, dec)).toStrictEqual(want);
  // What the fast path writes, when it takes the value, is exactly what encode writes.
  const buf = Buffer.alloc(bytes.length + 300_000);
  const end = encodeInto(v, buf, 3, buf.length);
  if (end >= 0) expect(buf.subarray(3, end).equals(bytes)).toBe(true);
  return 'sent';
}

describe('encode/decode symmetry (random nested values, fixed seed)', () => {
  it('with default options: every encoded value decodes back equal, everything else is refused at encode', () => {
    const seen = { sent: 0, refused: 0 };
    fc.assert(fc.property(value, (v) => {
      seen[checkSymmetric(v, undefined, undefined)]++;
    }), { seed: SEED, numRuns: 3000 });
    // The generator exercises both outcomes (not a test that cannot fail either way).
    expect(seen.sent).toBeGreaterThan(300);
    expect(seen.refused).toBeGreaterThan(300);
  });

  it('with Date and BigInt allowed on both ends, and matching limits', () => {
    const opts = { allowDate: true, allowBigInt: true, maxDepth: 40 };
    fc.assert(fc.property(value, (v) => {
      checkSymmetric(v, opts, opts);
    }), { seed: SEED + 1, numRuns: 1500 });
  });

  it('a stricter sender refuses what its limits exclude', () => {
    expect(() => encode(deepArray(5), { maxDepth: 4 })).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
    expect(() => encode([1, 2, 3], { maxNodes: 3 })).toThrow(/maxNodes/);
    expect(decode(Buffer.from(encode([1, 2, 3], { maxNodes: 4 })), { maxNodes: 4 })).toEqual([1, 2, 3]);
  });

  it('names what it refused', () => {
    expect(() => encode({ at: new Date(0) })).toThrow(/Date/);
    expect(() => encode([new Map()])).toThrow(/Map/);
    expect(() => encode({ n: 5n })).toThrow(/bigint/);
    expect(() => encode(new Uint16Array(1))).toThrow(/Uint16Array/);
    expect(() => encode(new Point())).toThrow(/Point/);
    expect(() => encode(JSON.parse('{"__proto__": {}}'))).toThrow(/__proto__/);
    expect(() => encode(new Date(Number.NaN), { allowDate: true })).toThrow(/invalid Date/);
  });
});
