/**
 * FrameDecoder and the shared assembly arena: a partial frame left at the end of a feed (a stalled or slow peer)
 * must not keep a 256 KiB arena alive once other connections have moved on. Before the fix, 300 decoders each
 * holding 10 bytes of a 100-byte frame held 75 MiB of ArrayBuffers (one arena each), while `reserved` said 100 bytes.
 *
 * Memory is asserted with FrameDecoder's own accounting (`reserved`) and with `process.memoryUsage().arrayBuffers`
 * after a full GC, with a wide margin (the fixed code holds ~2 KiB per decoder, the old one 256 KiB).
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

/** Bodies of `size` bytes, each filled with its own index so a mixed-up frame shows. */
function body(size: number, tag: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (tag * 31 + i) & 0xff;
  return b;
}

/** Another connection assembling 16 KiB frames split across two chunks: `bytes` of it move the arena on. */
function otherTraffic(bytes: number): void {
  const d = new FrameDecoder();
  const f = encodeFrame(body(16 * 1024, 7));
  let got = 0;
  for (let n = 0; n < bytes; n += f.length) {
    d.feed(f.subarray(0, 100), () => { got++; });
    d.feed(f.subarray(100), () => { got++; });
  }
  expect(got).toBe(Math.ceil(bytes / f.length));
}

describe('FrameDecoder: stalled partial frames do not pin shared arenas', () => {
  it('a stalled frame of 64 KiB with 10 bytes received holds ~1 KiB, not its declared size, once two arenas are retired', () => {
    const stalled: FrameDecoder[] = [];
    for (let i = 0; i < 8; i++) {
      const d = new FrameDecoder();
      d.feed(encodeFrame(body(64 * 1024, i)).subarray(0, 4 + 10), () => { throw new Error('not complete yet'); });
      stalled.push(d);
    }
    otherTraffic(600 * 1024); // fills (and retires) more than two arenas
    for (const d of stalled) {
      expect(d.buffered).toBe(14);
      expect(d.reserved).toBeLessThanOrEqual(1024); // before: 65536, the whole declared frame in an arena
    }
  });

  it('300 decoders each holding 10 bytes of a 100-byte frame, with other traffic in between, hold far less than an arena each', () => {
    const N = 300;
    const before = arrayBuffers();
    const stalled: FrameDecoder[] = [];
    for (let i = 0; i < N; i++) {
      const d = new FrameDecoder();
      d.feed(encodeFrame(body(100, i)).subarray(0, 14), () => { throw new Error('not complete yet'); });
      stalled.push(d);
      otherTraffic(256 * 1024); // each stall ends up alone in its arena
    }
    otherTraffic(600 * 1024);
    const held = arrayBuffers() - before;
    // Generous: the fixed decoder holds ~100 B each plus two shared arenas (~0.5 MiB); the old one 256 KiB each (75 MiB).
    expect(held).toBeLessThan(N * 16 * 1024);
    for (const d of stalled) expect(d.reserved).toBeLessThanOrEqual(100);
    expect(stalled.reduce((s, d) => s + d.buffered, 0)).toBe(N * 14);
  });

  it('a frame moved out of a retired arena still completes intact, however the rest arrives', () => {
    const sizes = [5, 100, 1000, 4096, 20_000, 64 * 1024];
    const frames = sizes.map((n, i) => encodeFrame(body(n, i)));
    const ds = frames.map(() => new FrameDecoder());
    const got: Buffer[][] = frames.map(() => []);
    // Each gets 3 bytes of its body, then two arenas' worth of other traffic moves its frame out.
    ds.forEach((d, i) => d.feed(frames[i]!.subarray(0, 7), (f) => got[i]!.push(Buffer.from(f))));
    otherTraffic(600 * 1024);
    for (const d of ds) expect(d.reserved).toBeLessThanOrEqual(1024);
    // The rest in growing pieces (the own buffer doubles as they arrive), followed by a whole second frame.
    ds.forEach((d, i) => {
      const rest = Buffer.concat([frames[i]!.subarray(7), encodeFrame(body(33, 100 + i))]);
      let at = 0;
      for (let step = 1; at < rest.length; step *= 3) {
        d.feed(rest.subarray(at, Math.min(rest.length, at + step)), (f) => got[i]!.push(Buffer.from(f)));
        at += step;
        if (at < frames[i]!.length - 7) expect(d.reserved).toBeLessThanOrEqual(Math.max(1024, 2 * d.buffered));
      }
    });
    sizes.forEach((n, i) => {
      expect(got[i]!.map((f) => f.toString('hex'))).toEqual([body(n, i).toString('hex'), body(33, 100 + i).toString('hex')]);
      expect(ds[i]!.buffered).toBe(0);
      expect(ds[i]!.reserved).toBe(0);
    });
  });

  it('many connections interleaving split frames of every size: every frame arrives intact and in order', () => {
    // 40 decoders fed round-robin, each its own stream cut at its own odd chunk size, so frames start in one arena
    // and finish after it was retired once or twice (some move out, some do not).
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const streams = Array.from({ length: 40 }, (_, c) => {
      const bodies = Array.from({ length: 30 }, (_, k) => body(1 + rnd(k % 5 === 0 ? 70_000 : 9000), c * 1000 + k));
      return { bodies, bytes: Buffer.concat(bodies.map((b) => encodeFrame(b))), at: 0, chunk: 1 + rnd(20_000), got: [] as Buffer[] };
    });
    const ds = streams.map(() => new FrameDecoder());
    let busy = true;
    while (busy) {
      busy = false;
      streams.forEach((s, c) => {
        if (s.at >= s.bytes.length) return;
        busy = true;
        ds[c]!.feed(s.bytes.subarray(s.at, s.at + s.chunk), (f) => s.got.push(Buffer.from(f)));
        s.at += s.chunk;
      });
    }
    streams.forEach((s, c) => {
      // Compared as one boolean per frame (a deep toEqual of ~20 MB of Buffers takes minutes).
      expect(s.got.length).toBe(s.bodies.length);
      expect(s.got.map((f, k) => f.equals(s.bodies[k]!))).toEqual(s.bodies.map(() => true));
      expect(ds[c]!.buffered).toBe(0);
    });
  });
});
