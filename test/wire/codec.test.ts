import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { BINARY_VIEW_THRESHOLD, ENCODE_NO_ROOM, ENCODE_UNSUPPORTED, PACKR_OPTIONS, UNPACKR_OPTIONS, checkShape, decode, decodeGeneral, decodeWithView, decodesFast, encode, encodeInto } from '../../src/wire/codec.js';
import { BadPayload } from '../../src/errors.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function badPayload(fn: () => unknown): BadPayload {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BadPayload);
    expect((e as BadPayload).code).toBe('TW_BAD_PAYLOAD');
    expect((e as BadPayload).fatal).toBe(false);
    return e as BadPayload;
  }
  throw new Error('expected a BadPayload');
}

describe('codec options', () => {
  it('are frozen', () => {
    expect(Object.isFrozen(PACKR_OPTIONS)).toBe(true);
    expect(Object.isFrozen(UNPACKR_OPTIONS)).toBe(true);
  });
});

describe('encode/decode', () => {
  it('round-trips the game message as standard msgpack (no records)', () => {
    const msg = { t: 'move', id: 42, x: 1.5, y: -3.25, seq: 123456, ts: 1700000000000 };
    const bytes = encode(msg);
    // map16 with 6 entries, first key "t" — not a record (d4 72)
    expect(bytes.subarray(0, 5).toString('hex')).toBe('de0006a174');
    expect(decode(bytes)).toEqual(msg);
  });

  it('encodes undefined as nil and byte strings as bin', () => {
    expect(encode(undefined).toString('hex')).toBe('c0');
    expect(encode(new Uint8Array([1, 2])).toString('hex')).toBe('c4020102');
    const b = decode(hex('c4020102'));
    expect(Buffer.isBuffer(b)).toBe(true);
    expect([...(b as Buffer)]).toEqual([1, 2]);
  });

  it('copies bin values instead of pinning the input', () => {
    for (const n of [2, 100, 5000]) {
      const input = Buffer.concat([Buffer.from([0xc5, n >> 8, n & 0xff]), Buffer.alloc(n, 1)]);
      for (const b of [decode(input) as Buffer, decodeGeneral(input) as Buffer]) {
        // not a view of the input's memory
        const overlaps = b.buffer === input.buffer && b.byteOffset < input.byteOffset + input.length && input.byteOffset < b.byteOffset + b.length;
        expect(overlaps).toBe(false);
        input[3] = 9;
        expect(b[0]).toBe(1);
        input[3] = 1;
      }
    }
  });

  it('returns bin values of binaryViewThreshold bytes and more as views of the input, smaller ones as copies', () => {
    const overlaps = (b: Buffer, input: Buffer): boolean =>
      b.buffer === input.buffer && b.byteOffset < input.byteOffset + input.length && input.byteOffset < b.byteOffset + b.length;
    expect(BINARY_VIEW_THRESHOLD).toBe(4096);
    for (const threshold of [0, 1, 100, 4096]) {
      for (const n of [0, 1, 99, 100, 101, 4095, 4096, 5000]) {
        const body = Buffer.alloc(n);
        for (let i = 0; i < n; i++) body[i] = (i * 7 + 3) & 0xff;
        const value = { pre: 'x', b: body, list: [body, 1] };
        const input = Buffer.concat([Buffer.alloc(3, 0xee), Buffer.from(encode(value)), Buffer.alloc(2, 0xee)]);
        const out = decode(input, { binaryViewThreshold: threshold }, 3, input.length - 2) as { b: Buffer; list: [Buffer, number] };
        expect(out).toEqual(value);
        for (const b of [out.b, out.list[0]]) {
          expect(Buffer.isBuffer(b)).toBe(true);
          expect(b.length).toBe(n);
          // A view exactly covers the value's bytes; a copy shares no memory with the input.
          if (n > 0) expect(overlaps(b, input)).toBe(n >= threshold);
        }
        if (n > 0 && n >= threshold) {
          expect(out.b.buffer).toBe(input.buffer);
          expect(out.b.byteOffset >= input.byteOffset && out.b.byteOffset + n <= input.byteOffset + input.length).toBe(true);
        }
      }
    }
    // The default copies everything; a NaN threshold too.
    const big = Buffer.from(encode(Buffer.alloc(10_000, 5)));
    expect(overlaps(decode(big) as Buffer, big)).toBe(false);
    expect(overlaps(decode(big, { binaryViewThreshold: Number.NaN }) as Buffer, big)).toBe(false);
    // Payloads the fast decoder hands to msgpackr (here: a timestamp extension) still get copies.
    const general = Buffer.from(encode({ b: Buffer.alloc(5000, 1), d: new Date(0) }, { allowDate: true }));
    expect(decodesFast(general)).toBe(false);
    const g = decode(general, { binaryViewThreshold: 0, allowDate: true }) as { b: Buffer };
    expect(overlaps(g.b, general)).toBe(false);
  });

  it('short string values (interned by their bytes) decode exactly, whatever was seen before', () => {
    const ref = new Packr({ ...PACKR_OPTIONS });
    const pool = ['a', 'ab', 'abc', 'abcd', '\u0003abc', '\u0000', '\u0000a', 'a\u0000', '\u007f\u007f\u007f\u007f', 'é', 'aé', '€', 'move', 'mov', 'ove'];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...pool), fc.string({ maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 3 })), { maxLength: 40 }), (list) => {
        const bytes = Buffer.from(ref.pack({ list, again: list }));
        expect(decode(bytes)).toEqual({ list, again: list });
      }),
      { numRuns: 300 },
    );
  });

  it('decodes a range of a larger buffer', () => {
    const buf = Buffer.concat([hex('ffff'), encode({ a: 1 }), hex('ffff')]);
    expect(decode(buf, undefined, 2, buf.length - 2)).toEqual({ a: 1 });
  });

  it('wraps an encoder failure in BadPayload', () => {
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    const e = badPayload(() => encode(cyc));
    expect(e.cause).toBeDefined();
  });

  it.each([
    ['truncated array', '9301'],
    ['truncated str', 'a56869'],
    ['trailing bytes', '01 02'],
    ['reserved byte c1', 'c1'],
    ['array32 of 2^32-1 in 5 bytes', 'ddffffffff'],
    ['map32 of 2^32-1', 'dfffffffff'],
    ['str32 of 2^32-1', 'dbffffffff'],
    ['bin32 of 2^32-1', 'c6ffffffff'],
    ['ext32 of 2^32-1', 'c9ffffffff01'],
  ])('rejects %s with BadPayload and a cause', (_name, h) => {
    const e = badPayload(() => decode(hex(h)));
    // either msgpackr threw (cause set) or the shape check refused it
    expect(e.message.length).toBeGreaterThan(0);
  });

  it('rejects an empty payload', () => {
    badPayload(() => decode(Buffer.alloc(0)));
  });

  it('does not leak a preview of the input into the message', () => {
    const e = badPayload(() => decode(Buffer.concat([encode('SECRET-VALUE-0123456789'), hex('00')])));
    expect(e.message).not.toContain('SECRET');
    expect(e.cause).toBeInstanceOf(Error);
  });

  it('survives 5,000 levels of nesting (stack overflow inside msgpackr) and recovers', () => {
    const deep = Buffer.concat([Buffer.alloc(5000, 0x91), hex('01')]);
    badPayload(() => decode(deep));
    expect(decode(encode({ ok: true }))).toEqual({ ok: true });
  });
});

describe('shape check', () => {
  it.each([
    ['Date (timestamp ext -1)', 'd6ff00000001'],
    ['undefined (ext 0)', 'd40000'],
    ['Set (ext 0x73)', 'c70273920102'.slice(0, 8) + '9201' + '02'],
    ['RegExp (ext 0x78)', new Packr({ moreTypes: true, useRecords: false }).pack(/(a+)+$/).toString('hex')],
    ['Error (ext 0x65)', new Packr({ moreTypes: true, useRecords: false }).pack(new TypeError('x')).toString('hex')],
    ['Float32Array (ext 0x74)', new Packr({ moreTypes: true, useRecords: false }).pack(new Float32Array([1])).toString('hex')],
    ['bare Uint8Array (ext 0x74)', new Packr({ moreTypes: true, useRecords: false }).pack(new Uint8Array([1])).toString('hex')],
    ['BigInt (uint64 beyond 2^53)', 'cf0020000000000001'],
    ['NaN', 'cb7ff8000000000000'],
    ['Infinity', 'cb7ff0000000000000'],
    ['__proto__ key', '81a95f5f70726f746f5f5f01'],
    ['constructor key', '81ab636f6e7374727563746f7201'],
    ['C1 sentinel inside an array', '91c1'],
  ])('rejects %s', (_name, h) => {
    const e = badPayload(() => decode(hex(h)));
    expect(e.code).toBe('TW_BAD_PAYLOAD');
  });

  it('refuses records (which msgpackr cannot switch off), and never carries them to the next message', () => {
    const withRecords = new Packr({ useRecords: true }).pack([{ x: 5 }, { x: 7 }]);
    expect(withRecords.subarray(0, 3).toString('hex')).toBe('92d472');
    expect(badPayload(() => decode(withRecords)).message).toMatch(/msgpackr record/);
    // no definition persisted: 0x40 is the integer 64 again
    expect(decode(hex('40'))).toBe(64);
  });

  it('accepts plain data', () => {
    const v = { a: [1, 2.5, -3, 'x', null, true, false, { b: Buffer.from([1]) }], s: '', n: 0 };
    expect(decode(encode(v))).toEqual(v);
  });

  it('allows bigint, Date and undefined only when asked', () => {
    expect(decode(hex('cf0020000000000001'), { allowBigInt: true })).toBe(9007199254740993n);
    expect(decode(hex('d6ff00000001'), { allowDate: true })).toEqual(new Date(1000));
    expect(decode(hex('d40000'), { allowUndefined: true })).toBeUndefined();
  });

  it('NaN and ±Infinity are refused when encoding (every receiver refuses them), on the fast and the general path', () => {
    const buf = Buffer.alloc(256);
    for (const bad of [NaN, Infinity, -Infinity]) {
      expect(encodeInto({ x: bad }, buf, 0, buf.length)).toBeLessThan(0);
      expect(encodeInto([1, bad], buf, 0, buf.length)).toBeLessThan(0);
      badPayload(() => encode({ x: bad }));
      badPayload(() => encode([1n, { y: [bad] }]));           // a bigint sends it down msgpackr's path
      badPayload(() => encode(new Map([['k', bad]])));
    }
    expect(decode(encode({ x: 1.5, z: Number.MAX_VALUE }))).toEqual({ x: 1.5, z: Number.MAX_VALUE });
  });

  it('maxDepth counts containers only: a bin or string in the deepest allowed level passes on both decode paths', () => {
    let v: unknown = [Buffer.from('leaf'), 'x'];
    for (let i = 1; i < 32; i++) v = [v];                 // 32 nested arrays, the innermost holding a bin
    let u: unknown = [Buffer.from('leaf'), 'é'];          // the same with a non-ASCII string: decoded by msgpackr
    for (let i = 1; i < 32; i++) u = [u];
    expect(decodesFast(encode(u))).toBe(false);
    for (const bytes of [encode(v), encode(u)]) {
      expect(() => decode(bytes)).not.toThrow();
      expect(() => decodeGeneral(bytes)).not.toThrow();
    }
    let w: unknown = [Buffer.from('leaf')];
    for (let i = 1; i < 33; i++) w = [w];                // 33 nested arrays: too deep on both paths
    badPayload(() => encode(w));                          // and the encoder refuses to write it
    const deep = encode(w, { maxDepth: 33 });
    badPayload(() => decode(deep));
    badPayload(() => decodeGeneral(deep));
  });

  it('enforces maxDepth iteratively', () => {
    let v: unknown = 1;
    for (let i = 0; i < 10; i++) v = [v];
    expect(() => checkShape(v, { maxDepth: 10 })).not.toThrow(); // 10 nested arrays
    badPayload(() => checkShape(v, { maxDepth: 9 }));
    // far deeper than the JS stack could recurse
    let deep: unknown = null;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(() => checkShape(deep, { maxDepth: 300_000, maxNodes: 1_000_000 })).not.toThrow();
    badPayload(() => checkShape(deep));
  });

  it('enforces maxNodes', () => {
    const arr = new Array(100).fill(0);
    expect(() => checkShape(arr, { maxNodes: 101 })).not.toThrow();
    badPayload(() => checkShape(arr, { maxNodes: 100 }));
  });

  it('rejects objects with exotic prototypes and functions', () => {
    badPayload(() => checkShape(Object.create(null)));
    badPayload(() => checkShape(new Map()));
    badPayload(() => checkShape({ f: () => 1 }));
    badPayload(() => checkShape({ s: Symbol('x') }));
  });

  it('fuzz: random bytes either decode to plain data or throw BadPayload, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        try {
          const v = decode(bytes);
          expect(() => checkShape(v)).not.toThrow();
        } catch (e) {
          expect(e).toBeInstanceOf(BadPayload);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('fuzz: mutated valid payloads never escape as a foreign error', () => {
    const base = encode({ t: 'move', id: 42, x: 1.5, list: [1, 'two', { three: 3 }], b: Buffer.from('bin') });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (muts) => {
        const b = Buffer.from(base);
        for (const [i, v] of muts) b[i] = v;
        try {
          decode(b);
        } catch (e) {
          expect(e).toBeInstanceOf(BadPayload);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzz: any plain JSON-like value round-trips', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        // msgpack has no -0 distinction in msgpackr's integer path; normalise like JSON does
        const norm = JSON.parse(JSON.stringify(v));
        fc.pre(!JSON.stringify(norm).includes('"__proto__"') && !JSON.stringify(norm).includes('"constructor"'));
        expect(decode(encode(norm))).toEqual(norm);
      }),
      { numRuns: 500 },
    );
  });
});

describe('decodeWithView', () => {
  it('reads floats through the caller\'s DataView of a chunk and decodes exactly what decode does', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.string()), { maxLength: 20 }), fc.nat(40), (xs, pad) => {
      const value = { t: 'move', x: 1.5, y: -3.25, xs, ts: 1_700_000_000_000 + pad };
      const body = Buffer.from(encode(value));
      // the payload sits inside a larger pooled chunk, at an odd offset
      const chunk = Buffer.concat([Buffer.alloc(pad + 1, 0xee), body, Buffer.alloc(7, 0xee)]);
      const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.length);
      const start = pad + 1;
      expect(decodeWithView(chunk, view, undefined, start, start + body.length)).toEqual(decode(chunk, undefined, start, start + body.length));
    }), { numRuns: 300 });
    // after it, plain decode does not use a stale view
    expect(decode(Buffer.from(encode({ f: 2.5 })))).toEqual({ f: 2.5 });
  });
});

describe('repeated map shapes', () => {
  it('a map whose keys differ from the learned shape at any position decodes the general way, nested too', () => {
    const base = { t: 'move', id: 42, x: 1.5, y: -3.25, seq: 1, ts: 1700000000000 };
    for (let i = 0; i < 5; i++) expect(decode(encode({ ...base, seq: i }))).toEqual({ ...base, seq: i }); // learn
    // same size, one key different at each position, including the first and the last
    const keys = Object.keys(base);
    for (let k = 0; k < keys.length; k++) {
      const other: Record<string, unknown> = {};
      keys.forEach((key, j) => { other[j === k ? `${key}_` : key] = (base as Record<string, unknown>)[key]; });
      expect(decode(encode(other))).toEqual(other);
      expect(decode(encode(base))).toEqual(base); // and the shape comes back
    }
    // a shaped outer map whose inner map (same size as a learned inner shape) misses, and the reverse
    const inner = { a: 1, b: [1, 2], c: 'z' };
    const outer = { p: inner, q: { a: 2, b: [3], c: 'y' }, r: null };
    for (let i = 0; i < 3; i++) expect(decode(encode(outer))).toEqual(outer);
    const innerMiss = { p: inner, q: { a: 2, B: [3], c: 'y' }, r: null };
    expect(decode(encode(innerMiss))).toEqual(innerMiss);
    const outerMiss = { p: inner, q: { a: 2, b: [3], c: 'y' }, R: { a: 9, b: [], c: '' } };
    expect(decode(encode(outerMiss))).toEqual(outerMiss);
    expect(decode(encode(outer))).toEqual(outer);
    // a truncated shaped map and a forbidden key in a shaped position are still refused
    const bytes = Buffer.from(encode(base));
    expect(() => decode(bytes.subarray(0, bytes.length - 3))).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
    const proto = Buffer.from(encode({ t: 'move', id: 42, x: 1.5, y: -3.25, seq: 1, abcdefghi: 1 }));
    proto.write('__proto__', proto.indexOf(Buffer.from('abcdefghi')), 'latin1'); // a well-formed map, a forbidden key
    expect(() => decode(proto)).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
    expect(decode(encode(base))).toEqual(base);
  });

  it('a miss re-decodes within the same node budget: past it the general path decides, with the same result', () => {
    const learn = { a: [1, 2, 3], b: 1, c: 2 };
    for (let i = 0; i < 3; i++) decode(encode(learn));
    const arr = Array.from({ length: 50 }, (_, i) => i);
    const miss = { a: arr, b: 1, X: 2 }; // 55 values: within 60, but the shaped attempt plus the retry count ~107
    expect(decode(encode(miss), { maxNodes: 60 })).toEqual(miss);
    expect(() => decode(encode(miss), { maxNodes: 50 })).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
    for (let i = 0; i < 3; i++) decode(encode(learn));
    expect(decode(encode(miss))).toEqual(miss);
  });
});

describe('fast paths are indistinguishable from msgpackr', () => {
  const packr = new Packr({ ...PACKR_OPTIONS });
  const value = fc.letrec((tie) => ({
    leaf: fc.oneof(
      fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.string({ minLength: 30, maxLength: 300 }),
      fc.integer(), fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.double(), fc.float(), fc.constantFrom(0, -0, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129, -32768, -32769, 2 ** 31, -(2 ** 31), 2 ** 32),
      fc.boolean(), fc.constant(null), fc.constant(undefined), fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)), fc.uint8Array({ maxLength: 40 }),
    ),
    node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 20 }),
      fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('t', 'id', 'x', 'seq', 'a'.repeat(40))), tie('node'), { maxKeys: 20, noNullPrototype: true })),
  })).node;

  it('property: encodeInto writes exactly the bytes msgpackr writes (or declines)', () => {
    const buf = Buffer.alloc(1 << 20);
    let fast = 0;
    fc.assert(fc.property(value, (v) => {
      const ref = packr.pack(v);
      const end = encodeInto(v, buf, 7, buf.length);
      if (end === ENCODE_UNSUPPORTED) return;
      fast++;
      expect(end).toBeGreaterThan(7);
      expect(buf.subarray(7, end).toString('hex')).toBe(Buffer.from(ref).toString('hex'));
    }), { numRuns: 3000 });
    expect(fast).toBeGreaterThan(2500); // the fast path covers this whole subset; it declines only rare shapes
  });

  it('encodeInto respects the limit and declines what it does not know', () => {
    const buf = Buffer.alloc(64, 0xee);
    expect(encodeInto({ s: 'x'.repeat(100) }, buf, 0, 64)).toBe(ENCODE_NO_ROOM);
    expect(encodeInto({ a: 1 }, buf, 0, 3)).toBe(ENCODE_NO_ROOM);
    expect(encodeInto(new Date(0), buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    expect(encodeInto(new Map(), buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    expect(encodeInto(10n, buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    expect(encodeInto(() => 1, buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    expect(encodeInto(new Float32Array(1), buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    expect(encodeInto(Object.create(null), buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    // class instances and objects whose prototype is not Object.prototype (even with a constructor property
    // claiming Object) are encode's to decide (it refuses them); so are the keys every receiver refuses
    class Point { x = 1; }
    expect(encodeInto(new Point(), buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    const fake = Object.create({ inherited: 1 }, { constructor: { value: Object, enumerable: false }, own: { value: 2, enumerable: true } });
    expect(encodeInto(fake, buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    const own = { constructor: 'x', a: 1 };
    expect(encodeInto(own, buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    badPayload(() => encode(own));
    const proto = JSON.parse('{"a": 1, "__proto__": 2}') as object;
    expect(encodeInto(proto, buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    badPayload(() => encode(proto));
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(encodeInto(deep, Buffer.alloc(1000), 0, 1000)).toBe(ENCODE_UNSUPPORTED);
    // 32 nested containers is what a default receiver takes: still the fast path; 33 are not
    let d32: unknown = [];
    for (let i = 1; i < 32; i++) d32 = [d32];
    const d32End = encodeInto(d32, buf, 0, 64);
    expect(d32End).toBe(32);
    expect(encodeInto([d32], buf, 0, 64)).toBe(ENCODE_UNSUPPORTED);
    // more values than a default receiver takes (100,000): only payloads that long are counted
    const many = new Array(100_000).fill(0);
    const manyBuf = Buffer.alloc(200_000);
    expect(encodeInto(many.slice(1), manyBuf, 0, manyBuf.length)).toBeGreaterThan(0);
    expect(encodeInto(many, manyBuf, 0, manyBuf.length)).toBe(ENCODE_UNSUPPORTED);
    expect(encodeInto({ b: Buffer.alloc(150_000) }, manyBuf, 0, manyBuf.length)).toBeGreaterThan(150_000);
    const g = { t: 'move', id: 42, x: 1.5, y: -3.25, seq: 123456, ts: 1700000000000 };
    const end = encodeInto(g, buf, 0, 64);
    expect(buf.subarray(0, end).equals(encode(g))).toBe(true);
  });

  it('property: decode (fast path) and decodeGeneral (msgpackr + checkShape) agree on every encoded value', () => {
    let fast = 0;
    fc.assert(fc.property(value, (v) => {
      const bytes = Buffer.from(packr.pack(v));
      if (decodesFast(bytes)) fast++;
      let a: unknown, b: unknown, ea: unknown = null, eb: unknown = null;
      try { a = decode(bytes); } catch (e) { ea = e; }
      try { b = decodeGeneral(bytes); } catch (e) { eb = e; }
      expect((ea as BadPayload | null)?.code).toBe((eb as BadPayload | null)?.code);
      if (ea === null) expect(a).toStrictEqual(b);
    }), { numRuns: 3000 });
    expect(fast).toBeGreaterThan(300);
  });

  it('property: on random and mutated bytes both paths agree (value or BadPayload)', () => {
    const base = Buffer.from(packr.pack({ t: 'move', id: 42, x: 1.5, list: [1, 'two', { three: 3 }], b: Buffer.from('bin'), n: null, f: false }));
    const bytes = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 80 }).map((u) => Buffer.from(u)),
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
        .map((muts) => { const b = Buffer.from(base); for (const [i, x] of muts) b[i] = x; return b; }),
    );
    fc.assert(fc.property(bytes, (b) => {
      let a: unknown, g: unknown, ea: unknown = null, eg: unknown = null;
      try { a = decode(b); } catch (e) { ea = e; }
      try { g = decodeGeneral(b); } catch (e) { eg = e; }
      expect(ea === null).toBe(eg === null);
      if (ea !== null) expect((ea as BadPayload).code).toBe('TW_BAD_PAYLOAD');
      else expect(a).toStrictEqual(g);
    }), { numRuns: 5000 });
  });

  it('limits hold on the fast path too', () => {
    const arr = encode(new Array(100).fill(0));
    expect(() => decode(arr, { maxNodes: 100 })).toThrow(/maxNodes/);
    expect(decode(arr, { maxNodes: 101 })).toHaveLength(100);
    let v: unknown = 1;
    for (let i = 0; i < 10; i++) v = [v];
    const nested = encode(v);
    expect(decodesFast(nested)).toBe(true);
    expect(() => decode(nested, { maxDepth: 9 })).toThrow(/maxDepth/);
    expect(decode(nested, { maxDepth: 10 })).toEqual(v);
    expect(() => decode(hex('81a95f5f70726f746f5f5f01'))).toThrow(/forbidden key/);
  });
});

describe('forbidden keys: exactly __proto__ and constructor, on both decoding paths', () => {
  // Both paths, and `decode` on a payload that also holds a uint64 (which the fast decoder hands to msgpackr).
  const paths: [string, (b: Buffer) => unknown][] = [
    ['decode', (b) => decode(b)],
    ['decodeGeneral', (b) => decodeGeneral(b)],
    ['decode via msgpackr', (b) => (decode(Buffer.concat([hex('92'), b, hex('cf0000000000000001')])) as unknown[])[0]],
  ];
  const key = (k: string) => (k.length < 32 ? Buffer.from([0xa0 | k.length]) : Buffer.from([0xd9, k.length]));
  const map1 = (k: string, v: Buffer, str8 = false) =>
    Buffer.concat([hex('81'), str8 ? Buffer.from([0xd9, k.length]) : key(k), Buffer.from(k, 'latin1'), v]);

  it.each(paths)('%s: a __proto_ key (a legitimate key of a non-JS peer) is a plain own property, no pollution', (_name, dec) => {
    for (const bytes of [map1('__proto_', hex('01')), map1('__proto_', hex('01'), true), hex('de0001a85f5f70726f746f5f01')]) {
      const v = dec(bytes) as Record<string, unknown>;
      expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
      expect(Object.getOwnPropertyNames(v)).toEqual(['__proto_']);
      expect(v.__proto_).toBe(1);
      expect(v).toEqual({ __proto_: 1 });
    }
    // nested, with a map value, next to other keys, and with the string "__proto__" as a value
    const value = { a: [{ __proto_: { admin: true } }], __proto_: '__proto__', b: 2 };
    const got = dec(Buffer.from(encode(value))) as typeof value;
    expect(got).toEqual(value);
    expect(Object.getPrototypeOf(got.a[0])).toBe(Object.prototype);
    expect((got.a[0] as Record<string, unknown>).admin).toBeUndefined();
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
  });

  it.each(paths)('%s: a __proto__ key is refused, and the message names "__proto__"', (_name, dec) => {
    const cases = [
      map1('__proto__', hex('81a561646d696ec3')),              // {"__proto__": {"admin": true}}, fixstr key
      map1('__proto__', hex('01'), true),                        // str8 key
      hex('82a85f5f70726f746f5f01a95f5f70726f746f5f5f02'),     // {"__proto_": 1, "__proto__": 2}
      hex('91de0001a95f5f70726f746f5f5f01'),                   // nested, map16
    ];
    for (const bytes of cases) {
      const e = badPayload(() => dec(bytes));
      expect(e.message).toBe('payload holds the forbidden key "__proto__"');
    }
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it.each(paths)('%s: a constructor key is refused, and the message names it', (_name, dec) => {
    for (const bytes of [map1('constructor', hex('01')), hex('91de0001ab636f6e7374727563746f7201')]) {
      expect(badPayload(() => dec(bytes)).message).toBe('payload holds the forbidden key "constructor"');
    }
  });

  it('keys that only look like the forbidden ones are plain data on both paths', () => {
    for (const value of [{ __proto__x: 2 }, { constructors: 3 }, { _proto__: 4 }, { __proto: 5 }, { Constructor: 6 }]) {
      const bytes = Buffer.from(encode(value));
      expect(decode(bytes)).toEqual(value);
      expect(decodeGeneral(bytes)).toEqual(value);
    }
  });

  it('the fast decoder takes __proto_ itself (also as a learned map shape) and leaves __proto__ to the general path', () => {
    const bytes = Buffer.from(encode({ __proto_: 1, t: 'x' }));
    expect(decodesFast(bytes)).toBe(true);
    for (let i = 0; i < 3; i++) expect(decode(bytes)).toEqual({ __proto_: 1, t: 'x' });
    expect(decodesFast(hex('81a95f5f70726f746f5f5f01'))).toBe(false);
  });

  it('a msgpackr record (ext 0x72) is refused on both paths, with a __proto__ key or without (test/wire/no-records)', () => {
    const recordPackr = new Packr({ useRecords: true });
    const proto = recordPackr.pack(JSON.parse('[{"__proto__": 1}]') as unknown);
    expect(proto.subarray(0, 3).toString('hex')).toBe('91d472');
    for (const dec of [decode, decodeGeneral]) {
      expect(badPayload(() => dec(Buffer.from(proto))).code).toBe('TW_BAD_PAYLOAD');
      expect(badPayload(() => dec(Buffer.from(new Packr({ useRecords: true }).pack([{ __proto_: 1 }])))).message).toMatch(/msgpackr record/);
    }
  });
});
