/**
 * Renewal keeps who a server is: the subject CN is stored exactly as asked (RFC 4514 specials, a backslash, a
 * leading `#`), and `ca.renew()` (what CertRotator and `ca renew` call) keeps the identity URI, CN and SANs, so a
 * client pinned to the server's identity (`expectedIdentity`) still connects after the renewal, over real TLS on
 * 127.0.0.1. watchCertDir notices a directory updated by a symlink swap (how Kubernetes updates secret volumes).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PrivateCA, clientTlsOptions, identityOfCertificate, readCertDir, serverTlsOptions, toTlsMaterial, watchCertDir } from '../../src/pki/index.js';
import type { IssuedCertificate, TlsMaterial } from '../../src/pki/index.js';
import type { EchoServer } from './helpers.js';
import { connectAndPing, startEchoServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'tulipwire-hunt-pki-'));
let ca: PrivateCA;
let client: IssuedCertificate;
const servers: EchoServer[] = [];

beforeAll(async () => {
  ca = await PrivateCA.init({ dir: join(dir, 'ca'), name: 'hunt.example' });
  client = await ca.issueClient({ identity: 'player/7' });
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The subject CN as openssl reads it from the DER, unescaped (UTF-8, no RFC 2253 escapes). */
function opensslCommonName(issued: IssuedCertificate): string {
  const file = join(dir, `${issued.cert.serial}.pem`);
  writeFileSync(file, issued.cert.pem);
  const out = execFileSync('openssl', ['x509', '-in', file, '-noout', '-subject', '-nameopt', 'utf8,sep_comma_plus,-esc_2253,-esc_ctrl,-esc_msb'], { encoding: 'utf8' });
  return out.replace(/\n$/, '').replace(/^subject=CN=/, '');
}

const SPECIAL_CNS = ['Front End, Inc', 'a+b', 'say "hi"', 'semi;colon', 'lt<gt>', ' leading space', 'back\\slash', '#hash'];

describe('server certificate subject and renewal', () => {
  it.each(SPECIAL_CNS)('stores the CN %j exactly as asked', async (cn) => {
    const issued = await ca.issueServer({ dnsNames: ['localhost'], commonName: cn });
    expect(opensslCommonName(issued)).toBe(cn);
  });

  it.each(SPECIAL_CNS)('renew() keeps identity, CN and SANs of a server whose CN is %j', async (cn) => {
    const first = await ca.issueServer({ dnsNames: ['localhost', 'api.hunt.example'], ipAddresses: ['127.0.0.1', '::1'], commonName: cn, lifetime: 3600 });
    const renewed = await ca.renew(first);
    expect(renewed.identity).toBe(first.identity);
    expect(renewed.cert.x509.subjectAltName).toBe(first.cert.x509.subjectAltName);
    expect(renewed.cert.x509.subject).toBe(first.cert.x509.subject);
    expect(renewed.cert.serial).not.toBe(first.cert.serial);
    expect(renewed.lifetime).toBe(3600);
    // Through the files, as `ca renew --out DIR` does it.
    await ca.writeTo(join(dir, 'out'), first);
    const again = await ca.renew(ca.adopt(readCertDir(join(dir, 'out'))));
    expect(again.identity).toBe(first.identity);
    expect(again.cert.x509.subjectAltName).toBe(first.cert.x509.subjectAltName);
  });

  it('a client expecting the server identity still connects after the server renewed', async () => {
    const first = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], commonName: 'Game Server, EU' });
    const renewed = await ca.renew(first);
    const srv = await startEchoServer(serverTlsOptions(renewed));
    servers.push(srv);
    const out = await connectAndPing(srv.port, clientTlsOptions(client, { servername: 'localhost', expectedIdentity: first.identity }));
    expect(out.mapped).toBeNull();
    expect(out.echoed).toBe(true);
    expect(out.peer?.identity).toBe(first.identity);
    // The handshake's PeerIdentity and identityOfCertificate agree, with the CN unescaped.
    expect(out.peer?.commonName).toBe('Game Server, EU');
    expect(identityOfCertificate(renewed.cert.x509)).toEqual(out.peer);
    expect(identityOfCertificate(renewed.cert.x509).subject).toBe('CN=Game Server, EU');
  });
});

describe('watchCertDir and symlink-swapped directories', () => {
  /** Writes one version directory `..<ver>` holding the three files, as kubelet's atomic writer does. */
  function putVersion(out: string, ver: string, m: TlsMaterial): void {
    const v = join(out, ver);
    mkdirSync(v);
    writeFileSync(join(v, 'key.pem'), m.key, { mode: 0o600 });
    writeFileSync(join(v, 'cert.pem'), m.cert);
    writeFileSync(join(v, 'ca.pem'), m.ca as string);
  }

  it('delivers the new set when `..data` is swapped to a new version (Kubernetes secret volume)', async () => {
    const out = join(dir, 'k8s');
    mkdirSync(out);
    const first = await ca.issueServer({ dnsNames: ['localhost'] });
    putVersion(out, '..v1', toTlsMaterial(first));
    symlinkSync('..v1', join(out, '..data'));
    for (const f of ['key.pem', 'cert.pem', 'ca.pem']) symlinkSync(join('..data', f), join(out, f));
    let resolveDelivered!: (m: TlsMaterial) => void;
    const delivered = new Promise<TlsMaterial>((resolve) => (resolveDelivered = resolve));
    const errors: Error[] = [];
    const watcher = watchCertDir(out, (m) => resolveDelivered(m), { onError: (e) => errors.push(e) });
    try {
      expect(watcher.current?.cert).toBe(first.chain.pem);
      const next = await ca.renew(first);
      putVersion(out, '..v2', toTlsMaterial(next));
      symlinkSync('..v2', join(out, '..data_tmp'));
      renameSync(join(out, '..data_tmp'), join(out, '..data')); // the one atomic step: no event names a cert file
      const m = await delivered;
      expect(m.cert).toBe(next.chain.pem);
      expect(watcher.current?.key).toBe(next.key.pem);
      expect(errors).toEqual([]);
    } finally {
      watcher.close();
    }
  }, 10_000);
});
