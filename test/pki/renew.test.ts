/**
 * Renewal at the edges of validity, and the temp files an interrupted write leaves.
 *
 * - `ca.renew()` of a certificate already past its notAfter (a device that was off for a day) gives a full-length
 *   certificate valid from now with the same identity, CN and SANs, which completes mutual TLS on 127.0.0.1; so does
 *   a not-yet-valid one, and one issued by the intermediate before `rotateIntermediate()`.
 * - `ca.renew()` refuses a certificate this CA did not sign (another CA's, altered bytes) and a description whose
 *   identity or SANs differ from its certificate, with `TW_CA`.
 * - `ca.adopt()` (what `ca renew --out DIR` reads) refuses an expired certificate unless `allowExpired`
 *   (`TW_CERTIFICATE_EXPIRED`), and reports unparsable PEM as `TW_CA`.
 * - `PrivateCA.init`/`load` remove `.<hex>.tmp` files left in the CA directory, holding its lock (and leave them
 *   while another running process holds it); `writeTo` removes its own stale `.<file>.<hex>.tmp` files.
 */
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CERT_BACKDATE, CERT_LIFETIME } from '../../src/constants.js';
import type { IssuedCertificate } from '../../src/pki/index.js';
import { LOCK_FILE, PrivateCA, clientTlsOptions, readCertDir, serverTlsOptions, toTlsMaterial } from '../../src/pki/index.js';
import type { TestCA } from '../support/ca.js';
import { makeTestCA } from '../support/ca.js';
import type { EchoServer } from './helpers.js';
import { connectAndPing, startEchoServer } from './helpers.js';

const HOUR = 3600;
let t: TestCA;
const servers: EchoServer[] = [];

beforeAll(async () => {
  t = await makeTestCA({ name: 'renew.example' });
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
afterAll(() => t.cleanup());

const now = () => Date.now() / 1000;

/** Asserts `renewed` runs from now (backdated) for a full default lifetime. */
function expectFreshFullLength(renewed: IssuedCertificate): void {
  const issuedAt = renewed.cert.notBefore + CERT_BACKDATE;
  expect(Math.abs(issuedAt - now())).toBeLessThan(120); // "now" on a loaded box, not a timing claim
  expect(renewed.cert.notAfter - renewed.cert.notBefore).toBe(CERT_LIFETIME + CERT_BACKDATE);
  expect(renewed.lifetime).toBe(CERT_LIFETIME);
}

/** Real mTLS on 127.0.0.1 between a server and a client certificate, pinned to the CA root. */
async function handshake(server: IssuedCertificate, client: IssuedCertificate): Promise<void> {
  const srv = await startEchoServer(serverTlsOptions(server, { pin: t.ca.rootPin }));
  servers.push(srv);
  const out = await connectAndPing(srv.port, clientTlsOptions(client, { servername: 'localhost', pin: t.ca.rootPin }));
  expect(out.error).toBeNull();
  expect(out.echoed).toBe(true);
  expect(srv.accepted[0]?.identity).toBe(client.identity);
  expect(out.peer?.identity).toBe(server.identity);
}

describe('renew() of a certificate outside its validity', () => {
  it('an expired server and client renew to full-length certificates from now, with the same identity, and handshake', async () => {
    const server = (await t.expiredServer()).issued;
    const client = (await t.expiredClient()).issued;
    expect(server.cert.notAfter).toBeLessThan(now());
    const s2 = await t.ca.renew(server);
    const c2 = await t.ca.renew(client);
    for (const [before, after] of [[server, s2], [client, c2]] as const) {
      expectFreshFullLength(after);
      expect(after.identity).toBe(before.identity);
      expect(after.cert.x509.subject).toBe(before.cert.x509.subject);
      expect(after.cert.x509.subjectAltName).toBe(before.cert.x509.subjectAltName);
      expect(after.cert.serial).not.toBe(before.cert.serial);
    }
    await handshake(s2, c2);
  });

  it('a not-yet-valid certificate renews to one valid from now, for its own length (not its distance from now)', async () => {
    const future = (await t.notYetValidClient()).issued; // valid from now + 1 h to now + 25 h
    expect(future.cert.notBefore).toBeGreaterThan(now());
    const renewed = await t.ca.renew(future);
    expectFreshFullLength(renewed);
    await handshake(t.server, renewed);
  });

  it('an expired certificate of the intermediate before rotateIntermediate() renews under the new one', async () => {
    const local = await makeTestCA({ name: 'rot.renew.example' });
    try {
      const old = await local.ca.issueServer({ dnsNames: ['localhost'], notBefore: now() - 25 * HOUR, notAfter: now() - HOUR });
      const oldInter = local.ca.intermediate.fingerprint;
      await local.ca.rotateIntermediate();
      expect(local.ca.intermediate.fingerprint).not.toBe(oldInter);
      const renewed = await local.ca.renew(old);
      expectFreshFullLength(renewed);
      expect(renewed.cert.x509.checkIssued(local.ca.intermediate.x509)).toBe(true);
      // The same through the files, by a CA loaded afresh (the old intermediate is only in cert.pem).
      const out = join(local.dir, 'old-out');
      await local.ca.writeTo(out, old);
      const loaded = await PrivateCA.load({ dir: local.ca.dir });
      const again = await loaded.renew(loaded.adopt(readCertDir(out), { allowExpired: true }));
      expect(again.identity).toBe(old.identity);
      expect(again.cert.notAfter).toBeGreaterThan(now());
    } finally {
      await local.cleanup();
    }
  });
});

describe('renew() refuses what this CA did not issue', () => {
  it("another CA's server certificate (which would otherwise come back under this CA with the other CA's identity)", async () => {
    const other = await t.otherCA();
    await expect(t.ca.renew(other.server)).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/was not issued by this CA \(renew\.example\)/) });
    // A look-alike with the same name and DNs, but other keys.
    const lookalike = await t.lookalikeCA();
    await expect(t.ca.renew(lookalike.client)).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/was not issued by this CA/) });
  });

  it('a certificate whose bytes were altered, and a description that does not match its certificate', async () => {
    const s = t.server;
    const der = Buffer.from(s.cert.x509.raw);
    der[der.length - 8] ^= 0x01; // inside the signature
    const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    const altered = { ...s, cert: { ...s.cert, pem } };
    await expect(t.ca.renew(altered)).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/was not issued by this CA/) });
    const otherIdentity = { ...s, identity: 'tulip://renew.example/server/admin' };
    await expect(t.ca.renew(otherIdentity)).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/does not match its description/) });
    const moreNames = { ...s, dnsNames: [...s.dnsNames, 'bank.example'] };
    await expect(t.ca.renew(moreNames)).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/does not match its description/) });
    // IPv6 spelt differently in the description and in node's SAN text is the same address.
    const v6 = await t.ca.issueServer({ ipAddresses: ['::1'] });
    expect((await t.ca.renew(v6)).ipAddresses.length).toBe(1);
  });
});

describe('adopt(): expired needs allowExpired; bad PEM is a CAError', () => {
  it('refuses an expired certificate with TW_CERTIFICATE_EXPIRED unless allowExpired; a not-yet-valid one passes', async () => {
    const expired = toTlsMaterial((await t.expiredClient()).issued);
    expect(() => t.ca.adopt(expired)).toThrow(expect.objectContaining({
      code: 'TW_CERTIFICATE_EXPIRED', message: expect.stringMatching(/expired 60\.\d min ago .*allowExpired \(CLI: --allow-expired\)/),
    }));
    const adopted = t.ca.adopt(expired, { allowExpired: true });
    // From the files, the lifetime asked for is the window less the backdate (a window set by hand: 24 h - 5 min).
    expect(adopted.lifetime).toBe(CERT_LIFETIME - CERT_BACKDATE);
    const renewed = await t.ca.renew(adopted);
    expect(renewed.cert.notAfter).toBeGreaterThan(now());
    expect(renewed.cert.notAfter - renewed.cert.notBefore).toBe(CERT_LIFETIME);
    const future = t.ca.adopt(toTlsMaterial((await t.notYetValidServer()).issued));
    expect(future.kind).toBe('server');
  });

  it('an unparsable key.pem or cert.pem is TW_CA, not a raw OpenSSL error', () => {
    const m = toTlsMaterial(t.client);
    expect(() => t.ca.adopt({ ...m, key: 'garbage\n' })).toThrow(expect.objectContaining({ code: 'TW_CA', message: expect.stringMatching(/key PEM is not an unencrypted private key/) }));
    const broken = m.cert.replace(/-----BEGIN CERTIFICATE-----\n.{10}/, '-----BEGIN CERTIFICATE-----\nAAAAAAAAAA');
    expect(() => t.ca.adopt({ ...m, cert: broken })).toThrow(expect.objectContaining({ code: 'TW_CA', message: expect.stringMatching(/is not a PEM certificate/) }));
  });
});

describe('stale temp files', () => {
  const OURS = ['.0123456789ab.tmp', '.a1b2c3d4e5f6.tmp'];
  const NOT_OURS = ['.0123456789ab.tmp.keep', '.abc.tmp', 'notes.tmp', '.key.pem.0123456789ab.tmp', '.0123456789AB.tmp'];

  function plant(dir: string): void {
    for (const n of [...OURS, ...NOT_OURS]) writeFileSync(join(dir, n), '-----BEGIN PRIVATE KEY-----\n', { mode: 0o600 });
    mkdirSync(join(dir, '.fedcba987654.tmp')); // a directory with our name: not a file we wrote
  }

  function expectCleaned(dir: string): void {
    const names = readdirSync(dir);
    for (const n of OURS) expect(names).not.toContain(n);
    for (const n of [...NOT_OURS, '.fedcba987654.tmp']) expect(names).toContain(n);
    expect(names).not.toContain(LOCK_FILE);
  }

  it('init removes the temps an interrupted init left in its directory, and nothing else', async () => {
    const dir = join(t.dir, 'interrupted-init');
    mkdirSync(dir);
    plant(dir);
    await PrivateCA.init({ dir, name: 'tmp.example' });
    expectCleaned(dir);
  });

  it('load removes them holding the lock, and leaves them while another running process holds it', async () => {
    const dir = t.ca.dir;
    plant(dir);
    // A lock naming a running process (this one): an init or rotation may be writing these right now.
    writeFileSync(join(dir, LOCK_FILE), `${process.pid}\nca rotate-intermediate\n`);
    const busy = await PrivateCA.load({ dir });
    expect(busy.name).toBe('renew.example');
    for (const n of OURS) expect(existsSync(join(dir, n))).toBe(true);
    expect(readdirSync(dir)).toContain(LOCK_FILE);
    await import('node:fs/promises').then((fs) => fs.unlink(join(dir, LOCK_FILE)));
    const loaded = await PrivateCA.load({ dir });
    expect(loaded.intermediate.fingerprint).toBe(t.ca.intermediate.fingerprint);
    expectCleaned(dir);
  });

  it('a rotation waits out a load tidying up under the lock instead of failing busy', async () => {
    const local = await makeTestCA({ name: 'brief.renew.example' });
    try {
      // What PrivateCA.load writes while it removes temps: this (running) process, marked brief.
      writeFileSync(join(local.ca.dir, LOCK_FILE), `${process.pid}\nca load\nbrief\n`);
      const before = local.ca.intermediate.fingerprint;
      let settled = false;
      const rotation = local.ca.rotateIntermediate().finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 300)); // give it time to meet the lock (it would fail busy at once)
      expect(settled).toBe(false);
      await import('node:fs/promises').then((fs) => fs.unlink(join(local.ca.dir, LOCK_FILE)));
      await rotation;
      expect(local.ca.intermediate.fingerprint).not.toBe(before);
      // A command's own lock (not brief) still makes it fail busy, naming the holder.
      writeFileSync(join(local.ca.dir, LOCK_FILE), `${process.pid}\nca rotate-intermediate\n`);
      await expect(local.ca.rotateIntermediate()).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/is busy: ca rotate-intermediate in process \d+/) });
    } finally {
      await local.cleanup();
    }
  });

  it("writeTo removes its own temps older than 10 minutes from the certificate directory, not a fresh one (another writer's)", async () => {
    const out = join(t.dir, 'cert-dir-temps');
    mkdirSync(out);
    const stale = ['.key.pem.0123456789ab.tmp', '.cert.pem.0123456789ab.tmp', '.ca.pem.0123456789ab.tmp'];
    const fresh = '.key.pem.a1b2c3d4e5f6.tmp';
    const foreign = ['.0123456789ab.tmp', '.other.pem.0123456789ab.tmp'];
    const hourAgo = now() - HOUR;
    for (const n of [...stale, fresh, ...foreign]) writeFileSync(join(out, n), 'x');
    for (const n of [...stale, ...foreign]) utimesSync(join(out, n), hourAgo, hourAgo);
    await t.ca.writeTo(out, t.client);
    const names = readdirSync(out).sort();
    expect(names).toEqual([fresh, ...foreign, 'ca.pem', 'cert.pem', 'key.pem'].sort());
  });
});
