/**
 * signBatch writes each tag right after its range, in order; where two tag slots overlap, the later message's tag
 * bytes win, as in one-by-one signing, in every engine. The native addon's SHA-extension path hashes two messages
 * together and wrote the second tag before the first, so with overlapping slots (message 1's slot inside message 0's,
 * ends [40, 20]) its bytes differed from the JS, node and OpenSSL-path engines. Layouts swept: two ranges over a
 * 100-byte buffer, every start/end on a 4-byte grid that keeps both tag slots inside it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { MacEngine } from '../../src/wire/mac.js';
import { nodeMac } from '../../src/wire/mac.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { nativeMac, nativeMacAccelerated, nativeMacUnavailableReason, setNativeMacAccel } from '../../src/wire/mac-native.js';

function native(): MacEngine {
  if (nativeMac === null) throw new Error(`native MAC addon did not load (npm run build:native): ${nativeMacUnavailableReason}`);
  return nativeMac;
}

const SIZE = 100;

function signed(e: MacEngine, starts: number[], ends: number[]): string {
  const buf = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) buf[i] = (i * 7 + 3) & 0xff;
  e.signBatch(e.prepareKey(Buffer.from('overlap key')), buf, Uint32Array.from(starts), Uint32Array.from(ends), 0, starts.length);
  return buf.toString('hex');
}

function layouts(): [number[], number[]][] {
  const out: [number[], number[]][] = [];
  for (let s0 = 0; s0 <= 68; s0 += 4) {
    for (let e0 = s0; e0 <= 68; e0 += 4) {
      for (let s1 = 0; s1 <= 68; s1 += 4) {
        for (let e1 = s1; e1 <= 68; e1 += 4) out.push([[s0, s1], [e0, e1]]);
      }
    }
  }
  return out;
}

describe('signBatch with overlapping tag slots gives the same bytes in every engine', () => {
  afterAll(() => {
    setNativeMacAccel(true);
  });

  it('the case that differed: ends [40, 20]', () => {
    const want = signed(jsMac, [0, 0], [40, 20]);
    expect(signed(nodeMac, [0, 0], [40, 20])).toBe(want);
    setNativeMacAccel(false);
    expect(signed(native(), [0, 0], [40, 20])).toBe(want);
    expect(setNativeMacAccel(true)).toBe(nativeMacAccelerated);
    expect(signed(native(), [0, 0], [40, 20])).toBe(want);
  });

  it('every two-range layout on a 4-byte grid', () => {
    const all = layouts();
    expect(all.length).toBeGreaterThan(20_000);
    const js = all.map(([s, e]) => signed(jsMac, s, e));
    for (const accel of [false, true]) {
      setNativeMacAccel(accel);
      let differing = 0;
      let first = '';
      all.forEach(([s, e], i) => {
        if (signed(native(), s, e) !== js[i]) {
          if (differing++ === 0) first = `starts ${s} ends ${e}`;
        }
      });
      expect({ accel, differing, first }).toEqual({ accel, differing: 0, first: '' });
    }
  });
});
