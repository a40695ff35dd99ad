/**
 * Throwaway TLS certificates for the net tests, made with `openssl` in a temp dir (until the PKI area's own CA
 * exists): one P-256 root CA, a server leaf (SAN DNS:localhost, IP:127.0.0.1, EKU serverAuth) and a client leaf
 * (EKU clientAuth), plus a second, unrelated CA for wrong-CA cases. Clients always verify against the root.
 *
 * Nothing is checked in: every process mints its own set once (about 50 ms), reads it and removes the files at once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions, TlsOptions } from 'node:tls';

/** PEM material of one fixture set. */
export interface TlsFixture {
  /** The directory the files were made in (removed once read). */
  dir: string;
  /** The trusted root, PEM. */
  ca: string;
  /** Server key and certificate, PEM. */
  serverKey: string;
  serverCert: string;
  /** Client key and certificate (for mTLS), PEM. */
  clientKey: string;
  clientCert: string;
  /** A root the server and client certificates do not chain to, PEM. */
  otherCa: string;
  /** A server key and certificate (localhost, 127.0.0.1) issued by {@link otherCa}, PEM. */
  otherServerKey: string;
  otherServerCert: string;
  /** Server options: key, cert, TLS 1.3 minimum; with `mtls` it requires a client certificate from the root. */
  serverOptions(opts?: { mtls?: boolean }): TlsOptions;
  /** Client options: trust only the root; with `mtls` present the client certificate. */
  clientOptions(opts?: { mtls?: boolean }): ConnectionOptions;
}

let cached: TlsFixture | null = null;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function mint(): TlsFixture {
  const dir = mkdtempSync(join(tmpdir(), 'tulipwire-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  for (const name of ['ca', 'other-ca']) {
    openssl(dir, ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2',
      '-subj', `/CN=tulipwire test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }
  const leaf = (name: string, cn: string, ext: string, ca = 'ca'): void => {
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`]);
  };
  const serverExt = [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid',
  ].join('\n');
  leaf('server', 'localhost', serverExt);
  leaf('other-server', 'localhost', serverExt, 'other-ca');
  leaf('client', 'client-1', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth',
    'subjectAltName=URI:tulip://test/client/1', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid',
  ].join('\n'));
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  const pem = {
    ca: read('ca.pem'),
    serverKey: read('server.key'),
    serverCert: read('server.pem'),
    clientKey: read('client.key'),
    clientCert: read('client.pem'),
    otherCa: read('other-ca.pem'),
    otherServerKey: read('other-server.key'),
    otherServerCert: read('other-server.pem'),
  };
  // Everything is in memory now: the directory (private keys included) goes at once. An exit handler did not run
  // when vitest ended its workers, and every test run left its keys in /tmp.
  rmSync(dir, { recursive: true, force: true });
  const fx: TlsFixture = {
    dir,
    ...pem,
    serverOptions(opts = {}) {
      const o: TlsOptions = { key: fx.serverKey, cert: fx.serverCert, minVersion: 'TLSv1.3' };
      if (opts.mtls) Object.assign(o, { ca: [fx.ca], requestCert: true, rejectUnauthorized: true });
      return o;
    },
    clientOptions(opts = {}) {
      const o: ConnectionOptions = { ca: [fx.ca], minVersion: 'TLSv1.3' };
      if (opts.mtls) Object.assign(o, { key: fx.clientKey, cert: fx.clientCert });
      return o;
    },
  };
  return fx;
}

/** The fixture of this process (minted on first use). */
export function tlsFixture(): TlsFixture {
  cached ??= mint();
  return cached;
}
