/**
 * `reloadServer` and `watchCertDir` validate a new set before it goes live (docs/pki.md: "validates the new
 * key/chain", "a new consistent set"): besides the key matching the leaf, the chain in `cert.pem` must lead to a
 * root in `ca.pem`. A cert.pem holding only the leaf (a non-atomic writer caught halfway, or a leaf copied without
 * its intermediate) would make every peer refuse the server (UnknownIssuer); a ca.pem of another CA would make the
 * server refuse its own clients.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IssuedCertificate, TlsMaterial } from '../../src/pki/index.js';
import {
  PrivateCA, clientTlsOptions, reloadServer, serverTlsOptions, toTlsMaterial, validateTlsMaterial, watchCertDir,
  writeCertDir,
} from '../../src/pki/index.js';
import { connectAndPing, startEchoServer } from './helpers.js';
import type { EchoServer } from './helpers.js';

let root: string;
let n = 0;
const fresh = (what: string) => join(root, `${what}-${n++}`);
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-chain-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const servers: EchoServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe('only chains that lead to ca.pem are delivered', () => {
  let ca: PrivateCA;
  let other: PrivateCA;
  let server: IssuedCertificate;
  beforeAll(async () => {
    ca = await PrivateCA.init({ dir: fresh('ca'), name: 'chain.example' });
    other = await PrivateCA.init({ dir: fresh('ca'), name: 'chain.example' }); // a look-alike: same names, other keys
    server = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  });

  it('validateTlsMaterial refuses a leaf without its intermediate and a ca.pem of another CA', async () => {
    expect(() => validateTlsMaterial(server)).not.toThrow();
    expect(() => validateTlsMaterial({ key: server.key.pem, cert: server.cert.pem, ca: server.ca.pem })).toThrow(expect.objectContaining({ code: 'TW_CA' }));
    expect(() => validateTlsMaterial({ key: server.key.pem, cert: server.chain.pem, ca: other.root.pem })).toThrow(expect.objectContaining({ code: 'TW_CA' }));
    // A bundle holding both roots (a rollover) is fine.
    expect(() => validateTlsMaterial({ key: server.key.pem, cert: server.chain.pem, ca: [other.root.pem, ca.root.pem] })).not.toThrow();
  });

  it('reloadServer keeps the old context when the new chain lacks its intermediate', async () => {
    const srv = await startEchoServer(serverTlsOptions(server));
    servers.push(srv);
    const next = await ca.renew(server);
    expect(() => reloadServer(srv.server, { key: next.key.pem, cert: next.cert.pem, ca: next.ca.pem })).toThrow(expect.objectContaining({ code: 'TW_CA' }));
    const client = await ca.issueClient({ identity: 'c' });
    const out = await connectAndPing(srv.port, clientTlsOptions(client, { servername: 'localhost' }));
    expect(out.echoed).toBe(true);
    expect(out.peer?.serial).toBe(server.cert.serial);
  });

  it('watchCertDir skips a cert.pem written only up to the leaf, and a foreign ca.pem, then delivers the full set', async () => {
    const dir = fresh('out');
    await writeCertDir(dir, toTlsMaterial(server));
    const delivered: TlsMaterial[] = [];
    const errors: Error[] = [];
    const watcher = watchCertDir(dir, (m) => delivered.push(m), { onError: (e) => errors.push(e) });
    try {
      const next = await ca.renew(server);
      // A non-atomic writer (cp, cat >) that has written the key and so far only the leaf of the chain.
      writeFileSync(join(dir, 'key.pem'), next.key.pem, { mode: 0o600 });
      writeFileSync(join(dir, 'cert.pem'), next.cert.pem);
      watcher.check();
      expect(delivered).toHaveLength(0);
      // The rest of the chain lands: delivered.
      writeFileSync(join(dir, 'cert.pem'), next.chain.pem);
      watcher.check();
      expect(delivered.map((m) => m.cert)).toEqual([next.chain.pem]);
      // A ca.pem of another CA next to a chain of ours would make the server refuse its own clients.
      writeFileSync(join(dir, 'ca.pem'), other.root.pem);
      watcher.check();
      expect(delivered).toHaveLength(1);
      expect(errors.length).toBeGreaterThan(0);
      expect(watcher.current?.ca).toBe(next.ca.pem);
    } finally {
      watcher.close();
    }
  });
});
