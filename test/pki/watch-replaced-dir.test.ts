/**
 * `watchCertDir` watched the directory's inode with fs.watch. When the directory itself was replaced (removed and
 * written again, `rm -rf out && tulipwire ca issue … --out out`; or `out` a symlink switched to a new release
 * directory) the watch stayed on the old inode: every later change went unseen, nothing reached `onError`, and the
 * server kept its old certificate until it expired. The watcher now also watches the parent directory for the
 * entry's name and moves to the new directory when the entry is replaced, then re-reads it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IssuedCertificate, TlsMaterial } from '../../src/pki/index.js';
import { PrivateCA, toTlsMaterial, watchCertDir, writeCertDir } from '../../src/pki/index.js';

let root: string;
let n = 0;
const fresh = (what: string) => join(root, `${what}-${n++}`);
let ca: PrivateCA;
const certs: IssuedCertificate[] = [];
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-watch-replaced-'));
  ca = await PrivateCA.init({ dir: fresh('ca'), name: 'watch.example' });
  for (let i = 0; i < 4; i++) certs.push(await ca.issueServer({ dnsNames: ['localhost'] }));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Waits (bounded: 5 s) until `pred` holds; fs events arrive asynchronously. */
async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !pred(); i++) await sleep(10);
}

describe('watchCertDir follows a replaced directory', () => {
  it('removed and written again: the new set is delivered, and later changes too', async () => {
    const dir = fresh('out');
    await writeCertDir(dir, toTlsMaterial(certs[0]!));
    const delivered: TlsMaterial[] = [];
    const errors: Error[] = [];
    const watcher = watchCertDir(dir, (m) => delivered.push(m), { onError: (e) => errors.push(e) });
    try {
      rmSync(dir, { recursive: true });
      await sleep(50); // let the removal's events arrive before the directory is back
      await writeCertDir(dir, toTlsMaterial(certs[1]!));
      await until(() => delivered.length >= 1);
      expect(delivered.map((m) => m.cert)).toEqual([certs[1]!.chain.pem]);
      // The watch is on the new directory now: an ordinary update there is seen as well.
      await writeCertDir(dir, toTlsMaterial(certs[2]!));
      await until(() => delivered.length >= 2);
      expect(delivered.map((m) => m.cert)).toEqual([certs[1]!.chain.pem, certs[2]!.chain.pem]);
      expect(watcher.current?.cert).toBe(certs[2]!.chain.pem);
      expect(errors).toEqual([]);
    } finally {
      watcher.close();
    }
  });

  it('a symlink switched to another directory: the set there is delivered, then changes in it', async () => {
    const base = fresh('release');
    mkdirSync(base);
    const v1 = join(base, 'v1');
    const v2 = join(base, 'v2');
    await writeCertDir(v1, toTlsMaterial(certs[0]!));
    await writeCertDir(v2, toTlsMaterial(certs[1]!));
    const current = join(base, 'current');
    symlinkSync(v1, current);
    const delivered: TlsMaterial[] = [];
    const watcher = watchCertDir(current, (m) => delivered.push(m));
    try {
      // Switch atomically: a new link renamed over the old one.
      symlinkSync(v2, join(base, 'current.new'));
      renameSync(join(base, 'current.new'), current);
      await until(() => delivered.length >= 1);
      expect(delivered.map((m) => m.cert)).toEqual([certs[1]!.chain.pem]);
      await writeCertDir(v2, toTlsMaterial(certs[3]!));
      await until(() => delivered.length >= 2);
      expect(delivered.map((m) => m.cert)).toEqual([certs[1]!.chain.pem, certs[3]!.chain.pem]);
      // A change in the old target delivers nothing: the set is read through the link.
      await writeCertDir(v1, toTlsMaterial(certs[2]!));
      await sleep(100);
      expect(delivered).toHaveLength(2);
    } finally {
      watcher.close();
    }
  });
});
