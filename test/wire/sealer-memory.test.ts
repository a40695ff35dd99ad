/**
 * Sealer's batch buffers and idle connections: every connection keeps its Sealer's current batch buffer while it is
 * idle, so the first buffer's size is what each idle connection holds for sending. It was 16 KiB (measured: 36 KiB
 * of ArrayBuffers per idle session, both ends, of ~200 KB RSS); now 2 KiB, and a busy sealer doubles its way up to
 * large buffers within its first large batch.
 *
 * Memory is asserted with `process.memoryUsage().arrayBuffers` after a full GC, with a wide margin (300 sealers that
 * sent one message: ~0.6 MiB now, ~4.7 MiB before).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { Keyring } from '../../src/wire/keyring.js';
import { KIND } from '../../src/wire/envelope.js';
import { FIRST_SLAB_SIZE, KeySchedule, Opener, Sealer } from '../../src/wire/signing.js';
import { FrameDecoder } from '../../src/wire/frames.js';
import { defaultMacEngine } from '../../src/wire/mac-native.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function arrayBuffers(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

function pair(): { sealer: Sealer; opener: Opener } {
  const clock = new VirtualClock({ epochStart: 1_700_000_000 });
  const engine = defaultMacEngine();
  const kr = new Keyring();
  kr.add('k1', Buffer.alloc(32, 7));
  return {
    sealer: new Sealer({ schedule: new KeySchedule({ keyring: kr, side: 'client', engine }), engine, clock }),
    opener: new Opener({ schedule: new KeySchedule({ keyring: kr, side: 'server', engine }), engine, clock, skew: 5, maxTtl: 300 }),
  };
}

describe('Sealer: what an idle connection holds for sending', () => {
  it('the first batch buffer is 2 KiB', () => {
    expect(FIRST_SLAB_SIZE).toBe(2048);
  });

  it('300 sealers that each sent one small message hold far less than 16 KiB each (measured ArrayBuffers)', () => {
    const N = 300;
    const before = arrayBuffers();
    const sealers: Sealer[] = [];
    let written = 0;
    for (let i = 0; i < N; i++) {
      const { sealer } = pair();
      sealer.append(Buffer.from([0x81, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67]), KIND.MESSAGE, 30); // {t:'ping'}
      sealer.flush((b) => { written += b.length; }); // the socket is done with the bytes at once
      sealers.push(sealer);
    }
    const held = arrayBuffers() - before;
    expect(written).toBeGreaterThan(0);
    expect(sealers).toHaveLength(N);
    // Now ~2 KiB each plus small arrays (~0.6 MiB); before: 16 KiB each (~4.7 MiB).
    expect(held).toBeLessThan(2 * 1024 * 1024);
  });

  it('a busy sealer grows within its first large batch: from the third batch on each is at most two writes, and every message verifies', () => {
    const { sealer, opener } = pair();
    const dec = new FrameDecoder();
    const body = Buffer.alloc(90, 1);
    let ok = 0;
    const writesPerFlush: number[] = [];
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < 256; i++) sealer.append(body, KIND.MESSAGE, 30);
      let writes = 0;
      sealer.flush((b) => {
        writes++;
        dec.feedRanges(b, (x, s, e) => opener.add(x, s, e));
      });
      opener.run(() => { ok++; }, (err) => { throw err; });
      writesPerFlush.push(writes);
    }
    expect(ok).toBe(8 * 256);
    // A bump allocator: a batch that does not fit what is left of the current buffer takes two. Measured: now
    // [5, 2, 1, 1, 2, 1, 1, 1]; with the 16 KiB start [3, 3, 2, 1, 2, 1, 1, 1]; a 2 KiB start growing only between
    // batches, as the 16 KiB one did, [12, 7, 4, 3, 2, …] (many more buffers, each MACed and written apart).
    expect(writesPerFlush[0]).toBeLessThanOrEqual(6);
    expect(Math.max(...writesPerFlush.slice(2))).toBeLessThanOrEqual(2);
  });
});
