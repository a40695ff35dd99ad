/**
 * `issueServer` (and `ca issue server --dns`) refuses a DNS name no hostname check can match (docs/pki.md):
 *
 * a wildcard over a single label (`*.localhost`, `*.internal`, with or without the trailing dot) was issued, but
 * neither OpenSSL (`X509_check_host`) nor node's `checkServerIdentity` ever matches it (both refuse `*.tld`
 * wildcards), so the server certificate failed every handshake as HostnameMismatch.
 *
 * Checked with OpenSSL's own host check (`X509Certificate.checkHost`) and node's `tls.checkServerIdentity` on
 * certificates of the project's CA; the CLI runs as a child process.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkServerIdentity } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { runCli } from '../support/cli.js';

let t: TestCA;
let tmp: string;
beforeAll(async () => {
  t = await makeTestCA({ name: 'dns-san.tulipwire' });
  tmp = mkdtempSync(join(tmpdir(), 'tulipwire-dns-san-'));
});
afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await t.cleanup();
});

const matches = (pem: string, host: string) => {
  const cert = new X509Certificate(pem);
  return { openssl: cert.checkHost(host) !== undefined, node: checkServerIdentity(host, cert.toLegacyObject()) === undefined };
};

describe('wildcards', () => {
  it.each(['*.localhost', '*.internal', '*.internal.', '*.LAN'])('%s (a wildcard over one label, matched by no client) is refused', async (name) => {
    await expect(t.ca.issueServer({ dnsNames: [name] })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringContaining(JSON.stringify(name)) });
  });

  it.each([['*.svc.internal', 'api.svc.internal'], ['*.example.com', 'www.example.com'], ['*.a.b', 'x.a.b']])('%s is issued and matches %s', async (name, host) => {
    const issued = await t.ca.issueServer({ dnsNames: [name] });
    expect(matches(issued.cert.pem, host)).toEqual({ openssl: true, node: true });
  });

  it('the CLI refuses --dns *.internal: exit 1, one line with TW_CA, nothing written', async () => {
    const out = join(tmp, 'wild');
    const r = runCli(['ca', 'issue', 'server', '--dir', t.ca.dir, '--dns', '*.internal', '--out', out], tmp);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^tulipwire: .*\*\.internal.*\[TW_CA\]$/m);
    expect(existsSync(out)).toBe(false);
  });
});
