/**
 * Every MAC engine refuses the same hostile arguments the native addon refuses, before it touches a byte: a range
 * past the buffer or its tag slot, start > end, first + count past the offset or results arrays, indexes that are
 * negative/NaN/fractional (read with ToUint32, as N-API does), results or buf sharing memory with the offsets. The old
 * JS engine read missing bytes as zeros (a MAC of a range longer than its buffer, a tag compared against zeros) and
 * the node engine clamped the range: three engines, three answers. The native addon is built (see mac.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { MacEngine } from '../../src/wire/mac.js';
import { nodeMac } from '../../src/wire/mac.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { nativeMac, nativeMacUnavailableReason } from '../../src/wire/mac-native.js';

function native(): MacEngine {
  if (nativeMac === null) throw new Error(`native MAC addon did not load (npm run build:native): ${nativeMacUnavailableReason}`);
  return nativeMac;
}

type Outcome = string;

function outcome(f: () => unknown): Outcome {
  try {
    const r = f();
    return `ok ${JSON.stringify(r instanceof Uint8Array ? Buffer.from(r).toString('hex') : r)}`;
  } catch (e) {
    return `throws ${(e as Error).constructor.name}`;
  }
}

const MAC_RANGES: ReadonlyArray<[number, number]> = [
  [0, 10], [0, 11], [0, 2 ** 32 - 1], [5, 4], [-1, 3], [Number.NaN, 3], [1.5, 3], [0, Number.POSITIVE_INFINITY], [0, -0],
  [10, 10], [2 ** 32, 3], [2 ** 32 + 1, 3],
];

function macCase(e: MacEngine, start: number, end: number): Outcome {
  const data = Buffer.from('0123456789');
  return outcome(() => e.mac(e.prepareKey(Buffer.from('k')), data, start, end));
}

interface BatchCase { name: string; make(): { buf: Uint8Array; starts: Uint32Array; ends: Uint32Array; first: number; count: number; results: Uint8Array } }

const plain = (len: number, starts: number[], ends: number[], first: number, count: number, rlen = starts.length) => () => ({
  buf: new Uint8Array(len).fill(7), starts: Uint32Array.from(starts), ends: Uint32Array.from(ends), first, count,
  results: new Uint8Array(rlen),
});

const BATCHES: BatchCase[] = [
  { name: 'well formed', make: plain(100, [0, 40], [8, 60], 0, 2) },
  { name: 'tag slot one byte past the end', make: plain(100, [0, 40], [8, 69], 0, 2) },
  { name: 'tag slot exactly at the end', make: plain(100, [0, 40], [8, 68], 0, 2) },
  { name: 'start > end', make: plain(100, [9], [8], 0, 1) },
  { name: 'end near 2^32', make: plain(100, [0], [2 ** 32 - 1], 0, 1) },
  { name: 'first + count past the arrays', make: plain(100, [0], [8], 0, 2) },
  { name: 'first -1', make: plain(100, [0], [8], -1, 1) },
  { name: 'count NaN (ToUint32: 0)', make: plain(100, [0], [8], 0, Number.NaN) },
  { name: 'count 1.9 (ToUint32: 1)', make: plain(100, [0, 99], [8, 99], 0, 1.9) },
  { name: 'first 2^32 (ToUint32: 0)', make: plain(100, [0], [8], 2 ** 32, 1) },
  { name: 'results too short', make: plain(100, [0, 40], [8, 60], 0, 2, 1) },
  { name: 'empty range, empty batch on an empty buffer', make: plain(0, [], [], 0, 0) },
  {
    name: 'buf a Uint16Array', make: () => ({ buf: new Uint16Array(100) as unknown as Uint8Array, starts: Uint32Array.of(0),
      ends: Uint32Array.of(8), first: 0, count: 1, results: new Uint8Array(1) }),
  },
  {
    name: 'buf a Uint8ClampedArray', make: () => ({ buf: new Uint8ClampedArray(100) as unknown as Uint8Array, starts: Uint32Array.of(0),
      ends: Uint32Array.of(8), first: 0, count: 1, results: new Uint8Array(1) }),
  },
  {
    name: 'buf a plain array', make: () => ({ buf: new Array(100).fill(0) as unknown as Uint8Array, starts: Uint32Array.of(0),
      ends: Uint32Array.of(8), first: 0, count: 1, results: new Uint8Array(1) }),
  },
  {
    name: 'ends an Int32Array', make: () => ({ buf: new Uint8Array(100), starts: Uint32Array.of(0),
      ends: Int32Array.of(8) as unknown as Uint32Array, first: 0, count: 1, results: new Uint8Array(1) }),
  },
  {
    name: 'starts a plain array', make: () => ({ buf: new Uint8Array(100), starts: [0] as unknown as Uint32Array,
      ends: Uint32Array.of(8), first: 0, count: 1, results: new Uint8Array(1) }),
  },
  {
    name: 'results a Uint32Array', make: () => ({ buf: new Uint8Array(100), starts: Uint32Array.of(0),
      ends: Uint32Array.of(8), first: 0, count: 1, results: new Uint32Array(1) as unknown as Uint8Array }),
  },
  {
    name: 'offsets in a SharedArrayBuffer', make: () => {
      const sab = new SharedArrayBuffer(16);
      const starts = new Uint32Array(sab, 0, 2);
      const ends = new Uint32Array(sab, 8, 2);
      ends.set([8, 8]);
      return { buf: new Uint8Array(100), starts, ends, first: 0, count: 2, results: new Uint8Array(2) };
    },
  },
  {
    name: 'buf in a SharedArrayBuffer (allowed: it holds no offsets)', make: () => ({
      buf: new Uint8Array(new SharedArrayBuffer(100)), starts: Uint32Array.of(0), ends: Uint32Array.of(8), first: 0, count: 1,
      results: new Uint8Array(1),
    }),
  },
  {
    name: 'first a string', make: () => ({ buf: new Uint8Array(100), starts: Uint32Array.of(0),
      ends: Uint32Array.of(8), first: '0' as unknown as number, count: 1, results: new Uint8Array(1) }),
  },
  {
    name: 'buf shares memory with ends', make: () => {
      const ab = new ArrayBuffer(256);
      const ends = new Uint32Array(ab, 200, 1);
      ends[0] = 8;
      return { buf: new Uint8Array(ab), starts: Uint32Array.of(0), ends, first: 0, count: 1, results: new Uint8Array(1) };
    },
  },
  {
    name: 'results share memory with starts', make: () => {
      const ab = new ArrayBuffer(16);
      return { buf: new Uint8Array(100), starts: new Uint32Array(ab, 0, 2), ends: Uint32Array.of(8, 8), first: 0, count: 2,
        results: new Uint8Array(ab, 0, 2) };
    },
  },
];

function signCase(e: MacEngine, c: BatchCase): Outcome {
  const a = c.make();
  return outcome(() => {
    e.signBatch(e.prepareKey(Buffer.from('k')), a.buf, a.starts, a.ends, a.first, a.count);
    return a.buf;
  });
}

function verifyCase(e: MacEngine, c: BatchCase): Outcome {
  const a = c.make();
  const key = e.prepareKey(Buffer.from('k'));
  return outcome(() => {
    try {
      // sign first where the batch allows it, so a verify that accepts has something to accept
      e.signBatch(key, a.buf, a.starts, a.ends, a.first, a.count);
    } catch { /* the verify below must refuse the same way */ }
    return [e.verifyBatch(key, a.buf, a.starts, a.ends, a.first, a.count, a.results), Array.from(a.results)];
  });
}

describe('MAC engines refuse the same hostile arguments', () => {
  for (const [s, e] of MAC_RANGES) {
    it(`mac(start ${s}, end ${e})`, () => {
      const want = macCase(native(), s, e);
      expect({ js: macCase(jsMac, s, e), node: macCase(nodeMac, s, e) }).toEqual({ js: want, node: want });
    });
  }
  it('mac of a Uint16Array / a DataView', () => {
    for (const data of [new Uint16Array(10), new DataView(new ArrayBuffer(10))] as unknown as Uint8Array[]) {
      const run = (e: MacEngine) => outcome(() => e.mac(e.prepareKey(Buffer.from('k')), data, 0, 4));
      const want = run(native());
      expect(want).toBe('throws TypeError');
      expect({ js: run(jsMac), node: run(nodeMac) }).toEqual({ js: want, node: want });
    }
  });
  for (const c of BATCHES) {
    it(`signBatch: ${c.name}`, () => {
      const want = signCase(native(), c);
      expect({ js: signCase(jsMac, c), node: signCase(nodeMac, c) }).toEqual({ js: want, node: want });
    });
    it(`verifyBatch: ${c.name}`, () => {
      const want = verifyCase(native(), c);
      expect({ js: verifyCase(jsMac, c), node: verifyCase(nodeMac, c) }).toEqual({ js: want, node: want });
    });
  }
  it('the refusals are the ones the native addon documents', () => {
    expect(signCase(native(), BATCHES[1]!)).toBe('throws RangeError');
    expect(signCase(native(), BATCHES[0]!)).toMatch(/^ok /);
  });
});
