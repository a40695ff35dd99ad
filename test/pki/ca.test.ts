/**
 * The private CA: files and modes, loading and its typed errors, the certificate profiles as OpenSSL sees them
 * (`openssl verify -x509_strict`, `openssl x509 -text`), serials, validity and identities.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CERT_BACKDATE, CERT_LIFETIME } from '../../src/constants.js';
import { VirtualClock } from '../../src/loop/clock.js';
import type { IssuedCertificate, KeyAlgorithm } from '../../src/pki/index.js';
import { CA_FILES, PrivateCA, readCertDir, splitPemCertificates } from '../../src/pki/index.js';
import { LOCK_FILE } from '../../src/pki/files.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-ca-test-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => join(root, `ca-${n++}`);

/** Runs openssl verify on an issued chain against the CA root; returns stdout (throws on failure). */
function opensslVerify(issued: IssuedCertificate, purpose: 'sslserver' | 'sslclient'): string {
  const d = join(root, `v-${n++}`);
  mkdirSync(d);
  const [leaf, inter] = splitPemCertificates(issued.chain.pem);
  writeFileSync(join(d, 'root.pem'), issued.ca.pem);
  writeFileSync(join(d, 'inter.pem'), inter!);
  writeFileSync(join(d, 'leaf.pem'), leaf!);
  return execFileSync('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', join(d, 'root.pem'), '-untrusted', join(d, 'inter.pem'), join(d, 'leaf.pem')], { encoding: 'utf8' });
}

function opensslText(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });
}

describe.each(['ECDSA-P256', 'Ed25519'] as KeyAlgorithm[])('a %s CA', (keyAlgorithm) => {
  let ca: PrivateCA;
  let server: IssuedCertificate;
  let client: IssuedCertificate;
  beforeAll(async () => {
    ca = await PrivateCA.init({ dir: freshDir(), name: 'game.example', keyAlgorithm });
    server = await ca.issueServer({ dnsNames: ['localhost', 'api.game.example'], ipAddresses: ['127.0.0.1'] });
    client = await ca.issueClient({ identity: 'player/42' });
  });

  it('openssl verify -x509_strict accepts the server and client chains for their purpose only', () => {
    expect(opensslVerify(server, 'sslserver')).toMatch(/: OK/);
    expect(opensslVerify(client, 'sslclient')).toMatch(/: OK/);
    // EKU serverAuth XOR clientAuth: each is refused for the other purpose.
    expect(() => opensslVerify(server, 'sslclient')).toThrow();
    expect(() => opensslVerify(client, 'sslserver')).toThrow();
  });

  it('openssl x509 -text shows the leaf extensions', () => {
    const s = opensslText(server.cert.pem);
    expect(s).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(s).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(s).toMatch(/Extended Key Usage: \s*\n\s+TLS Web Server Authentication\n/);
    expect(s).toMatch(/DNS:localhost, DNS:api\.game\.example, IP Address:127\.0\.0\.1, URI:tulip:\/\/game\.example\/server\/localhost/);
    expect(s).toMatch(/Subject Key Identifier/);
    expect(s).toMatch(/Authority Key Identifier/);
    expect(s).toMatch(keyAlgorithm === 'Ed25519' ? /Signature Algorithm: ED25519/ : /Signature Algorithm: ecdsa-with-SHA256/);
    const c = opensslText(client.cert.pem);
    expect(c).toMatch(/Extended Key Usage: \s*\n\s+TLS Web Client Authentication\n/);
    expect(c).toMatch(/Subject Alternative Name: \s*\n\s+URI:tulip:\/\/game\.example\/player\/42\n/);
    expect(c).toMatch(/Subject: CN = 42/);
  });

  it('openssl x509 -text shows the CA extensions: root CA, intermediate pathlen 0', () => {
    const r = opensslText(ca.root.pem);
    expect(r).toMatch(/Basic Constraints: critical\s+CA:TRUE\n/);
    expect(r).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const i = opensslText(ca.intermediate.pem);
    expect(i).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(i).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(ca.intermediate.x509.checkIssued(ca.root.x509)).toBe(true);
  });

  it('returns key, leaf, chain (leaf + intermediate) and root per STYLE 7.4b', () => {
    expect(server.key.pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(server.key.algorithm).toBe(keyAlgorithm);
    expect(server.cert.x509).toBeInstanceOf(X509Certificate);
    expect(splitPemCertificates(server.chain.pem)).toEqual([server.cert.pem, ca.intermediate.pem]);
    expect(server.ca.pem).toBe(ca.root.pem);
    expect(server.cert.x509.checkPrivateKey(createPrivateKey(server.key.pem))).toBe(true);
  });
});

describe('validity and serials', () => {
  it('backdates notBefore by CERT_BACKDATE and defaults to a 24 h lifetime (virtual clock)', async () => {
    const clock = new VirtualClock({ epochStart: 1_900_000_000 });
    const ca = await PrivateCA.init({ dir: freshDir(), name: 'clock.example', clock });
    const c = await ca.issueClient({ identity: 'a' });
    expect(c.cert.notBefore).toBe(1_900_000_000 - CERT_BACKDATE);
    expect(c.cert.notAfter).toBe(1_900_000_000 + CERT_LIFETIME);
    expect(c.lifetime).toBe(CERT_LIFETIME);
    clock.advance(3600);
    const s = await ca.issueServer({ dnsNames: ['x.example'], lifetime: 600 });
    expect(s.cert.notAfter).toBe(1_900_000_000 + 3600 + 600);
    const explicit = await ca.issueClient({ identity: 'b', notBefore: 1_800_000_000, notAfter: 1_800_000_060 });
    expect([explicit.cert.notBefore, explicit.cert.notAfter]).toEqual([1_800_000_000, 1_800_000_060]);
  });

  it('gives 128-bit random serials, lowercase hex, all distinct', async () => {
    const ca = await PrivateCA.init({ dir: freshDir(), name: 'serial.example' });
    const serials = await Promise.all(Array.from({ length: 40 }, (_, i) => ca.issueClient({ identity: `c${i}` }).then((c) => c.cert.serial)));
    expect(new Set(serials).size).toBe(40);
    for (const s of serials) {
      expect(s).toMatch(/^[0-9a-f]+$/);
      expect(s.length).toBeLessThanOrEqual(32);
    }
    // Leading zero bytes are stripped, so a few are shorter; most are the full 16 bytes.
    expect(serials.filter((s) => s.length >= 30).length).toBeGreaterThan(30);
  });

  it('refuses a leaf that would outlive the intermediate', async () => {
    const ca = await PrivateCA.init({ dir: freshDir(), name: 'short.example', intermediateLifetime: 3600 });
    await expect(ca.issueClient({ identity: 'x', lifetime: 7200 })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/outlive/) });
  });
});

describe('identities', () => {
  let ca: PrivateCA;
  beforeAll(async () => {
    ca = await PrivateCA.init({ dir: freshDir(), name: 'id.example' });
  });
  it.each([
    [{ identity: 'player-7' }, 'tulip://id.example/client/player-7'],
    [{ identity: 'player-7', kind: 'bot' }, 'tulip://id.example/bot/player-7'],
    [{ identity: 'service/matchmaker' }, 'tulip://id.example/service/matchmaker'],
    [{ identity: 'tulip://id.example/player/9' }, 'tulip://id.example/player/9'],
  ])('issueClient(%j) → %s', async (opts, uri) => {
    const c = await ca.issueClient(opts);
    expect(c.identity).toBe(uri);
    expect(c.cert.x509.subjectAltName).toBe(`URI:${uri}`);
  });
  it.each(['a b', 'tulip://other.example/player/9', 'a/b/c', '', 'x;y'])('rejects identity %j', async (identity) => {
    await expect(ca.issueClient({ identity })).rejects.toMatchObject({ code: 'TW_CA' });
  });
  it('needs a DNS name or IP for a server', async () => {
    await expect(ca.issueServer({})).rejects.toMatchObject({ code: 'TW_CA' });
  });
  it('rejects a bad CA name and algorithm at init', async () => {
    await expect(PrivateCA.init({ dir: freshDir(), name: 'Bad Name' })).rejects.toMatchObject({ code: 'TW_CA' });
    await expect(PrivateCA.init({ dir: freshDir(), name: 'ok', keyAlgorithm: 'RSA' as KeyAlgorithm })).rejects.toMatchObject({ code: 'TW_CA' });
  });
  it('renew() keeps the profile and gives a new serial', async () => {
    const s = await ca.issueServer({ dnsNames: ['a.example'], ipAddresses: ['10.0.0.1'], lifetime: 900 });
    const r = await ca.renew(s);
    expect(r.cert.serial).not.toBe(s.cert.serial);
    expect(r.cert.x509.subjectAltName).toBe(s.cert.x509.subjectAltName);
    expect(r.cert.x509.subject).toBe(s.cert.x509.subject);
    expect(r.lifetime).toBe(900);
    const c = await ca.issueClient({ identity: 'bot/3' });
    expect((await ca.renew(c)).identity).toBe(c.identity);
  });
});

describe('files, load and typed errors', () => {
  it('writes keys 0600 and loads back the same CA', async () => {
    const dir = freshDir();
    const ca = await PrivateCA.init({ dir, name: 'files.example' });
    for (const f of [CA_FILES.rootKey, CA_FILES.intermediateKey]) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const loaded = await PrivateCA.load({ dir });
    expect(loaded.name).toBe('files.example');
    expect(loaded.root.fingerprint).toBe(ca.root.fingerprint);
    expect(loaded.intermediate.fingerprint).toBe(ca.intermediate.fingerprint);
    expect(loaded.hasRootKey).toBe(true);
    const c = await loaded.issueClient({ identity: 'after-load' });
    expect(opensslVerify(c, 'sslclient')).toMatch(/: OK/);
    await expect(PrivateCA.init({ dir, name: 'files.example' })).rejects.toMatchObject({ code: 'TW_CA' });
  });

  it('CANotFound for a directory without a CA', async () => {
    await expect(PrivateCA.load({ dir: join(root, 'nothing-here') })).rejects.toMatchObject({ code: 'TW_CA_NOT_FOUND', name: 'CANotFound' });
  });

  it.each([
    ['garbage ca.json', (d: string) => writeFileSync(join(d, CA_FILES.meta), '{nope')],
    ['wrong format in ca.json', (d: string) => writeFileSync(join(d, CA_FILES.meta), '{"format":"x"}')],
    ['a missing intermediate', (d: string) => unlinkSync(join(d, CA_FILES.intermediateCert))],
    ['a garbage root certificate', (d: string) => writeFileSync(join(d, CA_FILES.rootCert), 'not a pem')],
    ['a garbage intermediate key', (d: string) => writeFileSync(join(d, CA_FILES.intermediateKey), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')],
  ])('CACorrupt for %s', async (_what, damage) => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'corrupt.example' });
    damage(dir);
    await expect(PrivateCA.load({ dir })).rejects.toMatchObject({ code: 'TW_CA_CORRUPT' });
  });

  it('CACorrupt when the parts come from different CAs', async () => {
    const a = freshDir();
    const b = freshDir();
    await PrivateCA.init({ dir: a, name: 'a.example' });
    await PrivateCA.init({ dir: b, name: 'a.example' });
    copyFileSync(join(b, CA_FILES.intermediateCert), join(a, CA_FILES.intermediateCert));
    await expect(PrivateCA.load({ dir: a })).rejects.toMatchObject({ code: 'TW_CA_CORRUPT', message: expect.stringMatching(/not signed by/) });
    copyFileSync(join(b, CA_FILES.rootCert), join(a, CA_FILES.rootCert));
    await expect(PrivateCA.load({ dir: a })).rejects.toMatchObject({ code: 'TW_CA_CORRUPT', message: expect.stringMatching(/does not match/) });
  });

  it('a wrong passphrase that passes the CBC padding check (about 1 in 256) is still CABadPassphrase, not CACorrupt', async () => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'padding.example', passphrase: 'correct horse' });
    const pem = readFileSync(join(dir, CA_FILES.rootKey), 'utf8');
    // Find a wrong passphrase whose decryption is garbage with valid padding (bounded: the odds of none in 4000 are ~1e-7).
    let sneaky: string | null = null;
    for (let i = 0; i < 4000 && sneaky === null; i++) {
      try {
        createPrivateKey({ key: pem, passphrase: `wrong-${i}` });
      } catch (e) {
        if (!/BAD_DECRYPT/i.test(`${(e as { code?: string }).code} ${(e as Error).message}`)) sneaky = `wrong-${i}`;
      }
    }
    expect(sneaky).not.toBeNull();
    await expect(PrivateCA.load({ dir, passphrase: sneaky! })).rejects.toMatchObject({
      code: 'TW_CA_BAD_PASSPHRASE', message: expect.stringMatching(/does not decrypt/) });
  });

  it('encrypts the root key with a passphrase; CABadPassphrase for a wrong one', async () => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'locked.example', passphrase: 'correct horse' });
    expect(readFileSync(join(dir, CA_FILES.rootKey), 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    expect(readFileSync(join(dir, CA_FILES.intermediateKey), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    await expect(PrivateCA.load({ dir, passphrase: 'wrong' })).rejects.toMatchObject({ code: 'TW_CA_BAD_PASSPHRASE' });
    // Without the passphrase the CA still issues leaves; the root stays locked.
    const locked = await PrivateCA.load({ dir });
    expect(locked.hasRootKey).toBe(false);
    expect((await locked.issueClient({ identity: 'x' })).identity).toBe('tulip://locked.example/client/x');
    await expect(locked.rotateIntermediate()).rejects.toMatchObject({ code: 'TW_CA' });
    const unlocked = await PrivateCA.load({ dir, passphrase: 'correct horse' });
    expect(unlocked.hasRootKey).toBe(true);
  });

  it('works with the root key moved offline, and rotates the intermediate with it back', async () => {
    const dir = freshDir();
    const ca = await PrivateCA.init({ dir, name: 'offline.example' });
    const oldInter = ca.intermediate.fingerprint;
    const keyPem = readFileSync(join(dir, CA_FILES.rootKey));
    unlinkSync(join(dir, CA_FILES.rootKey));
    const offline = await PrivateCA.load({ dir });
    expect(offline.hasRootKey).toBe(false);
    const before = await offline.issueClient({ identity: 'before' });
    writeFileSync(join(dir, CA_FILES.rootKey), keyPem, { mode: 0o600 });
    const online = await PrivateCA.load({ dir });
    await online.rotateIntermediate();
    expect(online.intermediate.fingerprint).not.toBe(oldInter);
    const after = await online.issueClient({ identity: 'after' });
    // Both generations chain to the same root.
    expect(opensslVerify(before, 'sslclient')).toMatch(/: OK/);
    expect(opensslVerify(after, 'sslclient')).toMatch(/: OK/);
    expect((await PrivateCA.load({ dir })).intermediate.fingerprint).toBe(online.intermediate.fingerprint);
  });

  it('rotateIntermediate survives a crash at either point: before the commit the old pair loads, after it the new one', async () => {
    const dir = freshDir();
    const ca = await PrivateCA.init({ dir, name: 'crash.example' });
    const oldFp = ca.intermediate.fingerprint;
    const oldKey = readFileSync(join(dir, CA_FILES.intermediateKey));
    const oldCert = readFileSync(join(dir, CA_FILES.intermediateCert));
    await ca.rotateIntermediate();
    const newFp = ca.intermediate.fingerprint;
    const newKey = readFileSync(join(dir, CA_FILES.intermediateKey));
    const newCert = readFileSync(join(dir, CA_FILES.intermediateCert));
    const [key, cert] = [join(dir, CA_FILES.intermediateKey), join(dir, CA_FILES.intermediateCert)];
    // Crashed after staging both files, before the key's rename: the old pair is live, the staged one is ignored.
    writeFileSync(key, oldKey);
    writeFileSync(cert, oldCert);
    writeFileSync(`${cert}.next`, newCert);
    writeFileSync(`${key}.next`, newKey, { mode: 0o600 });
    expect((await PrivateCA.load({ dir })).intermediate.fingerprint).toBe(oldFp);
    // Crashed between the two renames: the new key is live, its certificate still staged; load finishes the move.
    unlinkSync(`${key}.next`);
    writeFileSync(key, newKey);
    const resumed = await PrivateCA.load({ dir });
    expect(resumed.intermediate.fingerprint).toBe(newFp);
    expect(readFileSync(cert)).toEqual(newCert);
    expect(() => statSync(`${cert}.next`)).toThrow();
    expect(opensslVerify(await resumed.issueClient({ identity: 'after-crash' }), 'sslclient')).toMatch(/: OK/);
    // A later rotation overwrites whatever was left staged, and loads.
    writeFileSync(`${key}.next`, 'garbage');
    await resumed.rotateIntermediate();
    expect((await PrivateCA.load({ dir })).intermediate.fingerprint).toBe(resumed.intermediate.fingerprint);
  });

  it('two commands never change one CA at once: concurrent inits and rotations, one wins, the others fail busy; a stale lock is taken over', async () => {
    const dir = freshDir();
    const inits = await Promise.allSettled([1, 2, 3].map(() => PrivateCA.init({ dir, name: 'race.example' })));
    const won = inits.filter((r): r is PromiseFulfilledResult<PrivateCA> => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of inits) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/busy|already holds a CA/) });
    // The root the winner reported is the one on disk.
    expect((await PrivateCA.load({ dir })).root.fingerprint).toBe(won[0]!.value.root.fingerprint);
    const [a, b] = [await PrivateCA.load({ dir }), await PrivateCA.load({ dir })];
    const rotations = await Promise.allSettled([a.rotateIntermediate(), b.rotateIntermediate()]);
    expect(rotations.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const loser = rotations.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason).toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/busy: ca rotate-intermediate in process \d+/) });
    const winner = rotations[0]!.status === 'fulfilled' ? a : b;
    expect((await PrivateCA.load({ dir })).intermediate.fingerprint).toBe(winner.intermediate.fingerprint);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    // A lock whose process is gone (a crash) does not block the next command.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(dir, LOCK_FILE), `${gone.stdout}\nca rotate-intermediate\n`);
    await winner.rotateIntermediate();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('refuses names no hostname check can match and addresses that are not IPs (CAError), and wraps a directory that cannot be made', async () => {
    const ca = await PrivateCA.init({ dir: freshDir(), name: 'names.example' });
    for (const bad of ['bad name', 'a..b', '-lead.example', 'x'.repeat(64) + '.example', '', 'tab\there']) {
      await expect(ca.issueServer({ dnsNames: [bad] })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/is not a DNS name/) });
    }
    for (const bad of ['999.1.1.1', '1.2.3', 'localhost', '::g']) {
      await expect(ca.issueServer({ ipAddresses: [bad] })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/not an IPv4 or IPv6 address/) });
    }
    for (const good of ['localhost', '*.game.example', 'db_1.internal', 'a-b.example.', 'xn--bcher-kva.example']) {
      expect((await ca.issueServer({ dnsNames: [good] })).dnsNames).toEqual([good]);
    }
    expect((await ca.issueServer({ ipAddresses: ['::1', '10.0.0.1'] })).ipAddresses).toEqual(['::1', '10.0.0.1']);
    const file = join(root, `a-file-${n++}`);
    writeFileSync(file, 'x');
    await expect(ca.writeTo(join(file, 'sub'), await ca.issueClient({ identity: 'w' }))).rejects.toMatchObject({
      code: 'TW_CA', message: expect.stringMatching(/could not create the certificate directory/) });
  });

  it('writeTo: key.pem 0600, cert.pem = chain, ca.pem = root', async () => {
    const ca = await PrivateCA.init({ dir: freshDir(), name: 'out.example' });
    const s = await ca.issueServer({ dnsNames: ['localhost'] });
    const out = join(root, `out-${n++}`);
    await ca.writeTo(out, s);
    expect(statSync(join(out, 'key.pem')).mode & 0o777).toBe(0o600);
    const m = readCertDir(out);
    expect(m).toEqual({ key: s.key.pem, cert: s.chain.pem, ca: s.ca.pem });
  });
});
