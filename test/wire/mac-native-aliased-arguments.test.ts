/**
 * The native MAC addon trusts its offsets once they are checked, so memory it writes while a batch runs (tags into
 * `buf`, `results`) must not be able to change what was checked: views of one ArrayBuffer can share memory, and a
 * key state is a plain Buffer a caller can hand in crafted. Each case runs in a child process, because the old code
 * read and wrote out of bounds (a segfault) instead of throwing; every case must end in a RangeError (a TypeError for offsets or a key state in a
 * SharedArrayBuffer, which another thread could rewrite after the checks), on the OpenSSL
 * path and the SHA-extension path alike, and the JS engine must refuse the same inputs (throw or 0 matches).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsMac } from '../../src/wire/mac-js.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const addonFile = join(root, 'native', 'build', 'Release', 'tulipwire_mac.node');

function ensureAddon(): void {
  if (existsSync(addonFile)) return;
  const gyp = process.env.npm_config_node_gyp ??
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const local = join(dirname(process.execPath), '..');
  const nodedir = existsSync(join(local, 'include', 'node', 'node_api.h')) ? [`--nodedir=${local}`] : [];
  execFileSync(process.execPath, [gyp, 'rebuild', '-C', join(root, 'native'), ...nodedir], { stdio: 'pipe', timeout: 120_000 });
}

/** Child-process bodies; `a` is the addon, `key` a prepared state. Each returns what a call did. */
const CASES: Record<string, string> = {
  // message 0's tag slot [20, 52) lies over ends[1..3]: writing it would turn those into arbitrary offsets
  signTagOverOffsets: `
    const ab = new ArrayBuffer(4096), buf = new Uint8Array(ab);
    const starts = new Uint32Array(ab, 0, 4), ends = new Uint32Array(ab, 16, 4);
    starts.set([0, 200, 300, 400]); ends.set([20, 250, 350, 450]);
    a.signBatch(key, buf, starts, ends, 0, 4);`,
  // results written over starts: a 1 in a low byte makes starts[i] > ends[i] after the check
  verifyResultsOverStarts: `
    const ab = new ArrayBuffer(64), starts = new Uint32Array(ab, 0, 8), res = new Uint8Array(ab, 0, 8);
    const ends = new Uint32Array(8), buf = Buffer.alloc(1000);
    a.verifyBatch(key, buf, starts, ends, 0, 8, res);`,
  verifyResultsOverState: `
    const buf = Buffer.alloc(100);
    a.verifyBatch(key, buf, Uint32Array.of(0), Uint32Array.of(10), 0, 1, new Uint8Array(key.buffer, key.byteOffset, key.length));`,
  signBufOverState: `
    const buf = new Uint8Array(key.buffer, key.byteOffset, key.length);
    a.signBatch(key, buf, Uint32Array.of(0), Uint32Array.of(10), 0, 1);`,
  // offsets another thread can rewrite after they were checked (a worker flipping ends[] crashed the old code)
  sharedOffsets: `
    const sab = new SharedArrayBuffer(8), starts = new Uint32Array(sab, 0, 1), ends = new Uint32Array(sab, 4, 1);
    ends[0] = 8;
    a.signBatch(key, Buffer.alloc(100), starts, ends, 0, 1);`,
  sharedState: `
    const st = new Uint8Array(new SharedArrayBuffer(key.length));
    st.set(key);
    a.mac(st, Buffer.alloc(100), 0, 10, Buffer.alloc(32));`,
  // a state whose SHA256_CTX 'num' is huge: SHA256_Update would copy to data + num
  craftedStateMac: `a.mac(Buffer.alloc(key.length, 0x7f), Buffer.alloc(200), 0, 100, Buffer.alloc(32));`,
  craftedStateSign: `a.signBatch(Buffer.alloc(key.length, 0x7f), Buffer.alloc(200), Uint32Array.of(0), Uint32Array.of(100), 0, 1);`,
  craftedStateVerify: `a.verifyBatch(Buffer.alloc(key.length, 0x7f), Buffer.alloc(200), Uint32Array.of(0), Uint32Array.of(100), 0, 1, new Uint8Array(1));`,
};

function runCase(body: string, accel: boolean): { status: number | null; signal: string | null; out: string } {
  const script = `
    const a = require(${JSON.stringify(addonFile)});
    if (a.useAccel) a.useAccel(${accel});
    const key = a.prepareKey(Buffer.from('k'));
    try { ${body} console.log('returned'); } catch (e) { console.log(e.constructor.name + ': ' + e.message); }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, out: r.stdout.trim() };
}

describe('native MAC addon: arguments that share memory, crafted key states', () => {
  ensureAddon();
  for (const accel of [false, true]) {
    for (const [name, body] of Object.entries(CASES)) {
      it(`${name} (${accel ? 'SHA extensions when present' : 'OpenSSL path'}) throws a RangeError or TypeError`, () => {
        const r = runCase(body, accel);
        expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
        expect(r.out).toMatch(name.startsWith('shared') ? /^TypeError: tulipwire_mac: .*SharedArrayBuffer/ : /^RangeError: tulipwire_mac: /);
      });
    }
  }

  it('a well-formed batch still signs and verifies, with buf and offsets from separate buffers', () => {
    const r = runCase(`
      const buf = Buffer.alloc(300), starts = Uint32Array.of(0, 100), ends = Uint32Array.of(50, 150), res = new Uint8Array(2);
      a.signBatch(key, buf, starts, ends, 0, 2);
      if (a.verifyBatch(key, buf, starts, ends, 0, 2, res) !== 2) throw new Error('did not verify');`, true);
    expect(r.out).toBe('returned');
  });

  it('the JS engine refuses the aliased sign batch as well (throws or matches nothing)', () => {
    const ab = new ArrayBuffer(4096);
    const buf = new Uint8Array(ab);
    const starts = new Uint32Array(ab, 0, 4);
    const ends = new Uint32Array(ab, 16, 4);
    starts.set([0, 200, 300, 400]);
    ends.set([20, 250, 350, 450]);
    const key = jsMac.prepareKey(Buffer.from('k'));
    let matched = -1;
    try {
      jsMac.signBatch(key, buf, starts, ends, 0, 4);
      matched = jsMac.verifyBatch(key, buf, starts, ends, 0, 4, new Uint8Array(4));
    } catch (e) {
      expect(e).toBeInstanceOf(RangeError);
      return;
    }
    expect(matched).toBeLessThan(4);
  });
});
