/**
 * `watchCertDir` skipped a key that does not match the certificate without a word, because between the renames of
 * one `writeCertDir` the new key sits beside the old certificate for a moment. But a new `cert.pem` beside the old
 * key is no such moment (the certificate is renamed last): it is an update that forgot the key (`cp new/cert.pem`
 * only), which stays broken, and the server kept its old certificate until it expired with nothing reported. Now a
 * changed certificate whose key does not match goes to `onError`; the new key beside the old certificate is still
 * skipped quietly, and the set is delivered once the key lands.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IssuedCertificate, TlsMaterial } from '../../src/pki/index.js';
import { PrivateCA, toTlsMaterial, watchCertDir, writeCertDir } from '../../src/pki/index.js';

let root: string;
let ca: PrivateCA;
let first: IssuedCertificate;
let next: IssuedCertificate;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-watch-mismatch-'));
  ca = await PrivateCA.init({ dir: join(root, 'ca'), name: 'mismatch.example' });
  first = await ca.issueServer({ dnsNames: ['localhost'] });
  next = await ca.renew(first);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('watchCertDir and a key that does not match', () => {
  it('a new cert.pem beside the old key is reported; the key landing delivers the set', async () => {
    const dir = join(root, 'a');
    await writeCertDir(dir, toTlsMaterial(first));
    const delivered: TlsMaterial[] = [];
    const errors: Error[] = [];
    const watcher = watchCertDir(dir, (m) => delivered.push(m), { onError: (e) => errors.push(e) });
    try {
      writeFileSync(join(dir, 'cert.pem'), next.chain.pem); // the key was forgotten
      watcher.check();
      expect(delivered).toEqual([]);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/private key does not match/) });
      watcher.check(); // the same broken set again: reported once
      expect(errors).toHaveLength(1);
      writeFileSync(join(dir, 'key.pem'), next.key.pem, { mode: 0o600 });
      watcher.check();
      expect(delivered.map((m) => m.cert)).toEqual([next.chain.pem]);
    } finally {
      watcher.close();
    }
  });

  it('the new key beside the old certificate (writeCertDir between its renames) is skipped quietly', async () => {
    const dir = join(root, 'b');
    await writeCertDir(dir, toTlsMaterial(first));
    const delivered: TlsMaterial[] = [];
    const errors: Error[] = [];
    const watcher = watchCertDir(dir, (m) => delivered.push(m), { onError: (e) => errors.push(e) });
    try {
      writeFileSync(join(dir, 'key.pem'), next.key.pem, { mode: 0o600 });
      watcher.check();
      expect(errors).toEqual([]);
      writeFileSync(join(dir, 'cert.pem'), next.chain.pem);
      watcher.check();
      expect(delivered.map((m) => m.cert)).toEqual([next.chain.pem]);
      expect(errors).toEqual([]);
    } finally {
      watcher.close();
    }
  });
});
