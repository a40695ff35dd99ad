/**
 * Promises of docs/pki.md that the other PKI tests did not pin down, checked with real certificates, real TLS on
 * 127.0.0.1 and `openssl`: a leaf never outlives its intermediate (to the second), the intermediate never outlives
 * the root, every certificate carries its key usage after a rotation too, leaves of a rotated-out intermediate
 * keep working over mTLS, a leaf presented without its intermediate is refused, and the encrypted root key is what
 * the docs say (PBES2/AES-256-CBC, openssl reads it with the passphrase).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../src/loop/clock.js';
import type { IssuedCertificate, TlsMaterial } from '../../src/pki/index.js';
import { CA_FILES, PrivateCA, clientTlsOptions, serverTlsOptions, splitPemCertificates } from '../../src/pki/index.js';
import { connectAndPing, startEchoServer } from './helpers.js';
import type { EchoServer } from './helpers.js';

let root: string;
let n = 0;
const fresh = (what: string) => join(root, `${what}-${n++}`);
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-inv-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const servers: EchoServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

function opensslText(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });
}

/** openssl verify -x509_strict of a chain (leaf + intermediate) against a root; returns true on OK. */
function opensslVerifies(issued: IssuedCertificate, purpose: 'sslserver' | 'sslclient', rootPem = issued.ca.pem): boolean {
  const d = fresh('verify');
  mkdirSync(d);
  const [leaf, ...rest] = splitPemCertificates(issued.chain.pem);
  writeFileSync(join(d, 'root.pem'), rootPem);
  writeFileSync(join(d, 'untrusted.pem'), rest.join(''));
  writeFileSync(join(d, 'leaf.pem'), leaf!);
  try {
    execFileSync('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', join(d, 'root.pem'), '-untrusted', join(d, 'untrusted.pem'), join(d, 'leaf.pem')], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

describe('validity nesting', () => {
  it('a leaf may end with its intermediate but not one second later (CAError)', async () => {
    const clock = new VirtualClock({ epochStart: 1_900_000_000 });
    const ca = await PrivateCA.init({ dir: fresh('ca'), name: 'nest.example', clock, intermediateLifetime: 7200 });
    const interEnd = ca.intermediate.notAfter;
    const last = await ca.issueClient({ identity: 'last', notAfter: interEnd });
    expect(last.cert.notAfter).toBe(interEnd);
    await expect(ca.issueClient({ identity: 'late', notAfter: interEnd + 1 })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/outlive/) });
    // The same through `lifetime`: one second after init, a leaf as long as the intermediate ends 1 s after it.
    clock.advance(1);
    await expect(ca.issueServer({ dnsNames: ['x.example'], lifetime: 7200 })).rejects.toMatchObject({ code: 'TW_CA' });
    expect((await ca.issueServer({ dnsNames: ['x.example'], lifetime: 7199 })).cert.notAfter).toBe(interEnd);
  });

  it('the intermediate never outlives the root, at init and at rotation', async () => {
    const clock = new VirtualClock({ epochStart: 1_900_000_000 });
    const ca = await PrivateCA.init({ dir: fresh('ca'), name: 'short-root.example', clock, rootLifetime: 30 * 86400 });
    expect(ca.intermediate.notAfter).toBe(ca.root.notAfter);
    clock.advance(10 * 86400);
    await ca.rotateIntermediate();
    expect(ca.intermediate.notAfter).toBe(ca.root.notAfter);
  });
});

describe('intermediate rotation', () => {
  let dir: string;
  let ca: PrivateCA;
  let oldServer: IssuedCertificate;
  let oldClient: IssuedCertificate;
  let oldInterPem: string;
  beforeAll(async () => {
    dir = fresh('ca');
    ca = await PrivateCA.init({ dir, name: 'rot.example', passphrase: 'pass phrase' });
    oldServer = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    oldClient = await ca.issueClient({ identity: 'player/1' });
    oldInterPem = ca.intermediate.pem;
    await ca.rotateIntermediate();
  });

  it('keeps the key files 0600 and the root key encrypted; the new intermediate has the CA profile', () => {
    for (const f of [CA_FILES.rootKey, CA_FILES.intermediateKey]) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, CA_FILES.rootKey), 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    expect(ca.intermediate.pem).not.toBe(oldInterPem);
    const text = opensslText(ca.intermediate.pem);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).not.toMatch(/Extended Key Usage/);
  });

  it('leaves of both intermediates verify with openssl, each for its purpose only', async () => {
    const newServer = await ca.issueServer({ dnsNames: ['localhost'] });
    const newClient = await ca.issueClient({ identity: 'player/2' });
    expect(splitPemCertificates(newServer.chain.pem)[1]).toBe(ca.intermediate.pem);
    expect(splitPemCertificates(oldServer.chain.pem)[1]).toBe(oldInterPem);
    for (const s of [oldServer, newServer]) {
      expect(opensslVerifies(s, 'sslserver')).toBe(true);
      expect(opensslVerifies(s, 'sslclient')).toBe(false);
      expect(opensslText(s.cert.pem)).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    }
    for (const c of [oldClient, newClient]) {
      expect(opensslVerifies(c, 'sslclient')).toBe(true);
      expect(opensslVerifies(c, 'sslserver')).toBe(false);
    }
  });

  it('mTLS works across generations: old server with a new client, new server with an old client', async () => {
    const newServer = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const newClient = await ca.issueClient({ identity: 'player/3' });
    for (const [s, c] of [[oldServer, newClient], [newServer, oldClient]] as const) {
      const srv = await startEchoServer(serverTlsOptions(s, { pin: ca.rootPin }));
      servers.push(srv);
      const out = await connectAndPing(srv.port, clientTlsOptions(c, { servername: 'localhost', pin: ca.rootPin }));
      expect(out.error).toBeNull();
      expect(out.echoed).toBe(true);
      expect(out.peer?.serial).toBe(s.cert.serial);
      expect(srv.accepted[0]?.identity).toBe(c.identity);
    }
  });
});

describe('a chain without its intermediate', () => {
  it('is refused as UnknownIssuer on both sides ("a leaf alone is rejected")', async () => {
    const ca = await PrivateCA.init({ dir: fresh('ca'), name: 'alone.example' });
    const server = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const client = await ca.issueClient({ identity: 'c' });
    const leafOnly = (i: IssuedCertificate): TlsMaterial => ({ key: i.key.pem, cert: i.cert.pem, ca: i.ca.pem });

    const srv = await startEchoServer(serverTlsOptions(leafOnly(server)));
    servers.push(srv);
    const seenByClient = await connectAndPing(srv.port, clientTlsOptions(client, { servername: 'localhost' }));
    expect(seenByClient.secure).toBe(false);
    expect(seenByClient.mapped?.code).toBe('TW_UNKNOWN_ISSUER');

    const good = await startEchoServer(serverTlsOptions(server));
    servers.push(good);
    const out = await connectAndPing(good.port, clientTlsOptions(leafOnly(client), { servername: 'localhost' }));
    expect(out.echoed).toBe(false);
    const r = await good.nextRejection();
    expect(r.mapped?.code).toBe('TW_UNKNOWN_ISSUER');
  });
});

describe('encrypted root key', () => {
  it('is PKCS#8 PBES2 with AES-256-CBC; openssl opens it with the passphrase only', async () => {
    const dir = fresh('ca');
    const ca = await PrivateCA.init({ dir, name: 'enc.example', passphrase: 'long passphrase' });
    const keyPath = join(dir, CA_FILES.rootKey);
    const asn1 = execFileSync('openssl', ['asn1parse', '-in', keyPath], { encoding: 'utf8' });
    expect(asn1).toMatch(/:PBES2/);
    expect(asn1).toMatch(/:aes-256-cbc/);
    const pub = execFileSync('openssl', ['pkey', '-in', keyPath, '-passin', 'pass:long passphrase', '-pubout'], { encoding: 'utf8' });
    const rootPub = execFileSync('openssl', ['x509', '-noout', '-pubkey'], { input: ca.root.pem, encoding: 'utf8' });
    expect(pub).toBe(rootPub);
    expect(() => execFileSync('openssl', ['pkey', '-in', keyPath, '-passin', 'pass:wrong', '-noout'], { stdio: 'pipe' })).toThrow();
  });
});
