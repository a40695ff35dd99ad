/**
 * The three MAC engines give byte-identical tags. The native addon is part of what is tested: when it is not built,
 * this file builds it (node-gyp, as `npm run build:native` does) and fails if that does not work. Nothing is skipped.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MacEngine } from '../../src/wire/mac.js';
import { TAG_SIZE, nodeMac } from '../../src/wire/mac.js';
import { jsMac } from '../../src/wire/mac-js.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const addonFile = join(root, 'native', 'build', 'Release', 'tulipwire_mac.node');

/** npm's bundled node-gyp: $npm_config_node_gyp inside npm scripts, else next to the npm that ships with node. */
function nodeGyp(): string {
  const env = process.env.npm_config_node_gyp;
  if (env !== undefined && existsSync(env)) return env;
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return bundled;
  throw new Error(`node-gyp not found (looked for npm's bundled copy at ${bundled})`);
}

/** Node's own headers (what npm's nodedir points at on these machines), so node-gyp needs no download. */
function nodedirArgs(): string[] {
  const env = process.env.npm_config_nodedir;
  if (env !== undefined && env !== '') return [`--nodedir=${env}`];
  const local = join(dirname(process.execPath), '..');
  return existsSync(join(local, 'include', 'node', 'node_api.h')) ? [`--nodedir=${local}`] : [];
}

async function loadNative(): Promise<MacEngine> {
  if (!existsSync(addonFile)) {
    execFileSync(process.execPath, [nodeGyp(), 'rebuild', '-C', join(root, 'native'), ...nodedirArgs()], { stdio: 'pipe', timeout: 120_000 });
  }
  const mod = await import('../../src/wire/mac-native.js');
  if (mod.nativeMac === null) throw new Error(`native MAC addon did not load: ${mod.nativeMacUnavailableReason}`);
  return mod.nativeMac;
}

const ref = (key: Uint8Array, m: Uint8Array) => createHmac('sha256', key).update(m).digest();

/** Lays `lens.length` messages out with `gap` junk bytes before each and a tag slot after; `fill` writes message i. */
function layout(lens: readonly number[], gap: number, fill: (buf: Buffer, at: number, i: number) => void, junk: (size: number) => Buffer) {
  let size = 0;
  for (const l of lens) size += gap + l + TAG_SIZE;
  const buf = junk(size);
  const starts = new Uint32Array(lens.length);
  const ends = new Uint32Array(lens.length);
  let o = 0;
  lens.forEach((l, i) => {
    o += gap;
    starts[i] = o;
    fill(buf, o, i);
    ends[i] = o + l;
    o = ends[i]! + TAG_SIZE;
  });
  return { buf, starts, ends };
}

describe('MAC engines', () => {
  it('the native addon builds and loads (build-or-fail)', async () => {
    const native = await loadNative();
    expect(native.name).toBe('native');
  }, 150_000);

  it('RFC 4231 test case 2 ("Jefe") on every engine', async () => {
    const native = await loadNative();
    const key = Buffer.from('Jefe');
    const data = Buffer.from('what do ya want for nothing?');
    const expected = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
    for (const e of [jsMac, nodeMac, native]) expect(e.mac(e.prepareKey(key), data).toString('hex')).toBe(expected);
  });

  it('RFC 4231 test case 6 (131-byte key, hashed first) on every engine', async () => {
    const native = await loadNative();
    const key = Buffer.alloc(131, 0xaa);
    const data = Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First');
    const expected = '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54';
    for (const e of [jsMac, nodeMac, native]) expect(e.mac(e.prepareKey(key), data).toString('hex')).toBe(expected);
  });

  it('native, JS and createHmac agree at every length around the block boundaries', async () => {
    const native = await loadNative();
    for (const klen of [0, 1, 31, 32, 63, 64, 65, 200]) {
      const key = randomBytes(klen);
      const kj = jsMac.prepareKey(key);
      const kn = native.prepareKey(key);
      for (const mlen of [...Array.from({ length: 201 }, (_, i) => i), 383, 384, 385, 1000, 4096, 16384]) {
        const m = randomBytes(mlen);
        const want = ref(key, m).toString('hex');
        expect(jsMac.mac(kj, m).toString('hex')).toBe(want);
        expect(native.mac(kn, m).toString('hex')).toBe(want);
      }
    }
  });

  it('property: batches of random messages sign and verify identically on every engine', async () => {
    const native = await loadNative();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 80 }), fc.array(fc.uint8Array({ maxLength: 2000 }), { minLength: 1, maxLength: 12 }), (key, msgs) => {
        // Lay the messages out with a tag slot after each and a junk gap between them.
        const { buf: laid, starts, ends } = layout(msgs.map((m) => m.length), 3, (b, at, i) => b.set(msgs[i]!, at), (n) => Buffer.alloc(n, 0xee));
        const outs = [jsMac, nodeMac, native].map((e) => {
          const b = Buffer.from(laid);
          e.signBatch(e.prepareKey(key), b, starts, ends, 0, msgs.length);
          return b;
        });
        msgs.forEach((m, i) => expect(outs[0]!.subarray(ends[i]!, ends[i]! + TAG_SIZE).equals(ref(key, m))).toBe(true));
        expect(outs[1]!.equals(outs[0]!)).toBe(true);
        expect(outs[2]!.equals(outs[0]!)).toBe(true);
        // verify on every engine, with one tag corrupted
        const bad = msgs.length - 1;
        const signed = Buffer.from(outs[0]!);
        signed[ends[bad]! + 5] ^= 1;
        for (const e of [jsMac, nodeMac, native]) {
          const res = new Uint8Array(msgs.length);
          expect(e.verifyBatch(e.prepareKey(key), signed, starts, ends, 0, msgs.length, res)).toBe(msgs.length - 1);
          expect([...res]).toEqual(msgs.map((_, i) => (i === bad ? 0 : 1)));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('the SHA-extension path and the OpenSSL path give createHmac bytes, alone and in interleaved pairs', async () => {
    const native = await loadNative();
    const mod = await import('../../src/wire/mac-native.js');
    const paths = mod.nativeMacAccelerated ? [true, false] : [false];
    try {
      for (const accel of paths) {
        expect(mod.setNativeMacAccel(accel)).toBe(accel);
        for (const klen of [0, 32, 64, 65, 131]) {
          const key = randomBytes(klen);
          const k = native.prepareKey(key);
          // one message per call, every length over five blocks
          for (let n = 0; n <= 330; n++) {
            const m = randomBytes(n);
            expect(native.mac(k, m).toString('hex')).toBe(ref(key, m).toString('hex'));
          }
          // batches: neighbours of equal and of different block counts (the pairs hash together), an odd count
          const lens = [0, 0, 55, 56, 63, 64, 119, 120, 94, 94, 1, 300, 200, 7, 128, 129, 1000];
          const { buf, starts, ends } = layout(lens, 5, () => undefined, (n) => randomBytes(n));
          native.signBatch(k, buf, starts, ends, 0, lens.length);
          lens.forEach((_, i) => {
            const want = ref(key, buf.subarray(starts[i]!, ends[i]!));
            expect(buf.subarray(ends[i]!, ends[i]! + TAG_SIZE).equals(want)).toBe(true);
          });
          const res = new Uint8Array(lens.length);
          expect(native.verifyBatch(k, buf, starts, ends, 0, lens.length, res)).toBe(lens.length);
          // a flipped bit in either member of a pair fails only that member
          buf[ends[4]! + 31] ^= 0x80;
          buf[starts[9]!] ^= 1;
          res.fill(7);
          expect(native.verifyBatch(k, buf, starts, ends, 0, lens.length, res)).toBe(lens.length - 2);
          expect([...res]).toEqual(lens.map((_, i) => (i === 4 || i === 9 ? 0 : 1)));
          // overlapping ranges (the second message covers the first one's tag slot): one by one, as the JS engine signs
          const ov = randomBytes(400);
          const os = Uint32Array.of(10, 10, 200);
          const oe = Uint32Array.of(100, 150, 300);
          const want = Buffer.from(ov);
          jsMac.signBatch(jsMac.prepareKey(key), want, os, oe, 0, 3);
          native.signBatch(k, ov, os, oe, 0, 3);
          expect(ov.toString('hex')).toBe(want.toString('hex'));
        }
      }
    } finally {
      mod.setNativeMacAccel(true);
    }
  });

  it('verifyBatch honours first/count and leaves other results untouched', async () => {
    const native = await loadNative();
    for (const e of [jsMac, nodeMac, native]) {
      const k = e.prepareKey(Buffer.alloc(32, 1));
      const buf = Buffer.alloc(3 * 42);
      const starts = Uint32Array.of(0, 42, 84);
      const ends = Uint32Array.of(10, 52, 94);
      e.signBatch(k, buf, starts, ends, 1, 2);
      expect(buf.subarray(10, 42).equals(Buffer.alloc(32))).toBe(true); // frame 0 not signed
      const res = new Uint8Array([9, 9, 9]);
      expect(e.verifyBatch(k, buf, starts, ends, 1, 2, res)).toBe(2);
      expect([...res]).toEqual([9, 1, 1]);
    }
  });

  it('the native addon bounds-checks every range and argument', async () => {
    const native = await loadNative();
    const k = native.prepareKey(Buffer.alloc(32, 1));
    const buf = Buffer.alloc(64);
    expect(() => native.signBatch(k, buf, Uint32Array.of(0), Uint32Array.of(40), 0, 1)).toThrow(RangeError); // tag past end
    expect(() => native.signBatch(k, buf, Uint32Array.of(20), Uint32Array.of(10), 0, 1)).toThrow(RangeError); // start > end
    expect(() => native.signBatch(k, buf, Uint32Array.of(0), Uint32Array.of(10), 0, 2)).toThrow(RangeError); // count too big
    expect(() => native.verifyBatch(k, buf, Uint32Array.of(0), Uint32Array.of(10), 0, 1, new Uint8Array(0))).toThrow(RangeError);
    expect(() => native.mac(k, buf, 10, 100)).toThrow(RangeError);
    expect(() => native.signBatch({ engine: 'native', state: Buffer.alloc(3) } as never, buf, Uint32Array.of(0), Uint32Array.of(10), 0, 1)).toThrow(RangeError);
    expect(() => native.signBatch(k, buf, new Int32Array(1) as never, Uint32Array.of(10), 0, 1)).toThrow(TypeError);
    expect(buf.equals(Buffer.alloc(64))).toBe(true); // nothing written by the failed calls
  });

  it('TULIPWIRE_NO_NATIVE=1 selects the JS engine', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e',
      "import('./src/wire/mac-native.ts').then((m) => console.log(m.defaultMacEngine().name))"],
    { cwd: root, env: { ...process.env, TULIPWIRE_NO_NATIVE: '1' }, encoding: 'utf8' });
    expect(out.trim()).toBe('js');
  });
});
