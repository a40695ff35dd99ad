/**
 * FrameDecoder and frames above 64 KiB (assembled in a buffer of their own, not the shared arena): a header and a
 * few bytes must reserve about what arrived. Before the fix such a frame started at 128 KiB whatever had arrived,
 * so 300 stalled peers that each sent 4 header bytes and 10 body bytes of a 1 MiB frame made their decoders hold
 * ~38 MiB of ArrayBuffers (~9,000 times what they sent).
 *
 * Memory is asserted with FrameDecoder's own accounting (`reserved`) and with `process.memoryUsage().arrayBuffers`
 * after a full GC, with a wide margin (the fixed code holds 1 KiB per decoder, the old one 128 KiB).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame } from '../../src/wire/frames.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function arrayBuffers(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

function body(size: number, tag: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (tag * 31 + i) & 0xff;
  return b;
}

describe('FrameDecoder: a large frame reserves what arrived, not 128 KiB', () => {
  const big = encodeFrame(body(1024 * 1024 - 16, 3));

  it('4 header bytes and 10 body bytes of a 1 MiB frame reserve at most 1 KiB', () => {
    const d = new FrameDecoder();
    d.feed(big.subarray(0, 14), () => { throw new Error('not complete yet'); });
    expect(d.buffered).toBe(14);
    expect(d.reserved).toBeLessThanOrEqual(1024); // before: 131072
  });

  it('300 such stalled decoders hold far less than 128 KiB each (measured ArrayBuffers)', () => {
    const N = 300;
    const before = arrayBuffers();
    const stalled: FrameDecoder[] = [];
    for (let i = 0; i < N; i++) {
      const d = new FrameDecoder();
      d.feed(big.subarray(0, 14), () => { throw new Error('not complete yet'); });
      stalled.push(d);
    }
    const held = arrayBuffers() - before;
    expect(stalled.every((d) => d.buffered === 14)).toBe(true);
    // Fixed: ~1 KiB each (~0.3 MiB in all); before: 128 KiB each (37.5 MiB).
    expect(held).toBeLessThan(4 * 1024 * 1024);
  });

  it('the frame still comes out intact whatever the chunking, from one byte at a time to 64 KiB reads', () => {
    for (const steps of [[1, 3, 1000], [16 * 1024], [65536, 7], [14, 200_000]]) {
      const d = new FrameDecoder();
      const got: Buffer[] = [];
      let pos = 0;
      let k = 0;
      let maxRatio = 0;
      while (pos < big.length) {
        const end = Math.min(big.length, pos + steps[k++ % steps.length]!);
        d.feed(big.subarray(pos, end), (f) => got.push(Buffer.from(f)));
        pos = end;
        if (pos < big.length) maxRatio = Math.max(maxRatio, d.reserved / Math.max(1024, 2 * d.buffered));
      }
      expect(got).toHaveLength(1);
      expect(got[0]!.equals(big.subarray(4))).toBe(true);
      expect(d.reserved).toBe(0);
      // Never more than twice what arrived (or 1 KiB).
      expect(maxRatio).toBeLessThanOrEqual(1);
    }
  });
});
