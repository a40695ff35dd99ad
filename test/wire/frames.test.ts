import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder, encodeFrame } from '../../src/wire/frames.js';
import { FrameTooLarge } from '../../src/errors.js';

/** Concatenates frames of the given bodies. */
function stream(bodies: Uint8Array[]): Buffer {
  return Buffer.concat(bodies.map((b) => encodeFrame(b)));
}

/** Splits `buf` at the given cut points (sorted, deduplicated, inside the buffer). */
function cut(buf: Buffer, points: number[]): Buffer[] {
  const ps = [...new Set(points.filter((p) => p > 0 && p < buf.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of ps) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

function decodeAll(chunks: Buffer[], max?: number): Buffer[] {
  const dec = new FrameDecoder(max === undefined ? {} : { maxFrameSize: max });
  const got: Buffer[] = [];
  for (const c of chunks) dec.feed(c, (f) => got.push(Buffer.from(f)));
  return got;
}

describe('encodeFrame', () => {
  it('prefixes a 4-byte big-endian length', () => {
    expect(encodeFrame(Buffer.from('abc')).toString('hex')).toBe('00000003616263');
    expect(encodeFrame(new Uint8Array(0)).toString('hex')).toBe('00000000');
    const big = encodeFrame(new Uint8Array(0x010203));
    expect(big.subarray(0, 4).toString('hex')).toBe('00010203');
  });
});

describe('FrameDecoder', () => {
  it('a header announcing a large frame reserves memory as bytes arrive, not what it announced; the frame comes out intact', () => {
    const size = 1024 * 1024 - 16;
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 31 + 7) & 0xff;
    const framed = encodeFrame(body);
    const d = new FrameDecoder();
    const got: Buffer[] = [];
    // A hostile peer's 4 header bytes and 10 body bytes: the decoder must not hold a MiB for them.
    d.feed(framed.subarray(0, 14), (f) => got.push(Buffer.from(f)));
    expect(d.buffered).toBe(14);
    expect(d.reserved).toBeLessThanOrEqual(1024);
    // Then the rest, trickled in uneven chunks: the reservation never exceeds twice what arrived (or 1 KiB).
    let pos = 14;
    let step = 1;
    while (pos < framed.length) {
      const end = Math.min(framed.length, pos + step);
      d.feed(framed.subarray(pos, end), (f) => got.push(Buffer.from(f)));
      pos = end;
      step = (step * 7 + 13) % 40_000 + 1;
      if (pos < framed.length) expect(d.reserved).toBeLessThanOrEqual(Math.max(1024, 2 * d.buffered));
    }
    expect(got).toHaveLength(1);
    expect(got[0]!.equals(body)).toBe(true);
    expect(d.reserved).toBe(0);
  });

  it('decodes several frames from one chunk as views of that chunk', () => {
    const buf = stream([Buffer.from('one'), Buffer.from(''), Buffer.from('three')]);
    const dec = new FrameDecoder();
    const got: Buffer[] = [];
    dec.feed(buf, (f) => got.push(f));
    expect(got.map((f) => f.toString())).toEqual(['one', '', 'three']);
    // views, not copies
    expect(got[0]!.buffer).toBe(buf.buffer);
    expect(got[2]!.buffer).toBe(buf.buffer);
    expect(dec.buffered).toBe(0);
  });

  it('reports the buffered byte count of an incomplete frame', () => {
    const dec = new FrameDecoder();
    const buf = encodeFrame(Buffer.from('hello'));
    dec.feed(buf.subarray(0, 2), () => expect.unreachable());
    expect(dec.buffered).toBe(2);
    dec.feed(buf.subarray(2, 6), () => expect.unreachable());
    expect(dec.buffered).toBe(6);
    const got: string[] = [];
    dec.feed(buf.subarray(6), (f) => got.push(f.toString()));
    expect(got).toEqual(['hello']);
    expect(dec.buffered).toBe(0);
  });

  it('decodes correctly at every split point of a multi-frame stream', () => {
    const bodies = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('0123456789abcdef'), Buffer.from([0, 0, 0, 1])];
    const buf = stream(bodies);
    for (let i = 0; i <= buf.length; i++) {
      for (let j = i; j <= buf.length; j++) {
        expect(decodeAll(cut(buf, [i, j]))).toEqual(bodies);
      }
    }
  });

  it('decodes byte by byte', () => {
    const bodies = [Buffer.from('xyz'), Buffer.from('hello world')];
    const buf = stream(bodies);
    expect(decodeAll([...buf].map((b) => Buffer.from([b])))).toEqual(bodies);
  });

  it('property: any chunking of any frame sequence yields the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (bodies, rawCuts) => {
          const buf = stream(bodies);
          const cuts = rawCuts.map((c) => (buf.length === 0 ? 0 : c % (buf.length + 1)));
          const got = decodeAll(cut(buf, cuts));
          expect(got.map((b) => b.toString('hex'))).toEqual(bodies.map((b) => Buffer.from(b).toString('hex')));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: a truncated stream delivers exactly the complete frames and buffers the rest', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 100 }), { minLength: 1, maxLength: 10 }),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 10 }),
        (bodies, rawLen, rawCuts) => {
          const full = stream(bodies);
          const keep = rawLen % (full.length + 1);
          const buf = full.subarray(0, keep);
          const cuts = rawCuts.map((c) => c % (keep + 1));
          const dec = new FrameDecoder();
          const got: Buffer[] = [];
          for (const c of cut(buf, cuts)) dec.feed(c, (f) => got.push(Buffer.from(f)));
          // Expected: the longest prefix of whole frames within `keep` bytes.
          let pos = 0;
          let n = 0;
          while (n < bodies.length && pos + 4 + bodies[n]!.length <= keep) {
            pos += 4 + bodies[n]!.length;
            n++;
          }
          expect(got.length).toBe(n);
          expect(dec.buffered).toBe(keep - pos);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects an oversize length from the 4 header bytes alone, at every split of the header', () => {
    const hdr = Buffer.from([0x00, 0x10, 0x00, 0x01]); // 1 MiB + 1
    for (let i = 0; i <= 4; i++) {
      const dec = new FrameDecoder();
      let err: unknown;
      try {
        if (i > 0) dec.feed(hdr.subarray(0, i), () => expect.unreachable());
        dec.feed(hdr.subarray(i), () => expect.unreachable());
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FrameTooLarge);
      expect((err as FrameTooLarge).code).toBe('TW_FRAME_TOO_LARGE');
      expect((err as FrameTooLarge).size).toBe(0x100001);
      expect((err as FrameTooLarge).limit).toBe(1024 * 1024);
      expect((err as FrameTooLarge).fatal).toBe(true);
      expect(dec.buffered).toBe(0);
    }
  });

  it('rejects 0xffffffff without allocating it, and stays failed', () => {
    const dec = new FrameDecoder({ maxFrameSize: 16 });
    const got: string[] = [];
    const buf = Buffer.concat([encodeFrame(Buffer.from('ok')), Buffer.from([0xff, 0xff, 0xff, 0xff]), encodeFrame(Buffer.from('never'))]);
    const before = process.memoryUsage().arrayBuffers;
    expect(() => dec.feed(buf, (f) => got.push(f.toString()))).toThrow(FrameTooLarge);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1024 * 1024);
    // the frame before the bad header was delivered
    expect(got).toEqual(['ok']);
    // the stream is out of sync: every later feed throws the same error
    expect(() => dec.feed(encodeFrame(Buffer.from('x')), () => expect.unreachable())).toThrow(/exceeds maxFrameSize 16/);
  });

  it('accepts a frame of exactly maxFrameSize and rejects one byte more', () => {
    expect(decodeAll([encodeFrame(Buffer.alloc(16, 7))], 16)).toEqual([Buffer.alloc(16, 7)]);
    expect(() => decodeAll([encodeFrame(Buffer.alloc(17))], 16)).toThrow(FrameTooLarge);
  });

  it('property: an oversize frame anywhere in a chunked stream throws after the frames before it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 32 }), { maxLength: 6 }),
        fc.integer({ min: 33, max: 0xffffffff }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bodies, bad, rawCuts) => {
          const hdr = Buffer.alloc(4);
          hdr.writeUInt32BE(bad, 0);
          const buf = Buffer.concat([stream(bodies), hdr, Buffer.alloc(8)]);
          const dec = new FrameDecoder({ maxFrameSize: 32 });
          const got: Buffer[] = [];
          let err: unknown = null;
          try {
            for (const c of cut(buf, rawCuts.map((c) => c % (buf.length + 1)))) dec.feed(c, (f) => got.push(Buffer.from(f)));
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(FrameTooLarge);
          expect((err as FrameTooLarge).size).toBe(bad);
          expect(got.length).toBe(bodies.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('feedRanges hands out ranges of the chunk for whole frames and a copy for spanning ones', () => {
    const buf = stream([Buffer.from('aa'), Buffer.from('bbbb'), Buffer.from('cc')]);
    const dec = new FrameDecoder();
    const seen: [boolean, string][] = [];
    const first = buf.subarray(0, 12); // 'aa' whole, 'bbbb' split inside its body
    dec.feedRanges(first, (b, s, e) => seen.push([b === first, b.toString('latin1', s, e)]));
    const second = buf.subarray(12);
    dec.feedRanges(second, (b, s, e) => seen.push([b === second, b.toString('latin1', s, e)]));
    expect(seen).toEqual([[true, 'aa'], [false, 'bbbb'], [true, 'cc']]);
  });

  it('feedRanges hands consecutive spanning frames out as ranges of one assembly buffer, each intact', () => {
    const bodies = [Buffer.alloc(3000, 1), Buffer.alloc(3000, 2), Buffer.alloc(3000, 3)];
    const buf = stream(bodies);
    const dec = new FrameDecoder();
    const seen: { b: Buffer; s: number; e: number; copy: Buffer }[] = [];
    // Chunks of 2000 bytes: every frame starts in one chunk and ends in the next.
    for (let at = 0; at < buf.length; at += 2000) {
      const chunk = buf.subarray(at, at + 2000);
      dec.feedRanges(chunk, (b, s, e) => seen.push({ b, s, e, copy: Buffer.from(b.subarray(s, e)) }));
    }
    expect(seen.map((x) => x.copy)).toEqual(bodies);
    expect(seen[1]!.b).toBe(seen[0]!.b);
    expect(seen[2]!.b).toBe(seen[0]!.b);
    expect(seen[1]!.s).toBeGreaterThanOrEqual(seen[0]!.e);
    // The ranges still hold their own bytes after later frames were assembled.
    for (let i = 0; i < 3; i++) expect(seen[i]!.b.subarray(seen[i]!.s, seen[i]!.e).equals(bodies[i]!)).toBe(true);
  });

  it('validates maxFrameSize', () => {
    expect(() => new FrameDecoder({ maxFrameSize: -1 })).toThrow(RangeError);
    expect(() => new FrameDecoder({ maxFrameSize: 2 ** 32 })).toThrow(RangeError);
    expect(() => new FrameDecoder({ maxFrameSize: 1.5 })).toThrow(RangeError);
  });
});
