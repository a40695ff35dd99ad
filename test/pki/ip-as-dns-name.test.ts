/**
 * An IP address given as a DNS name (`issueServer({dnsNames: ['127.0.0.1']})`, `ca issue server --dns 127.0.0.1`)
 * was issued as the SAN `DNS:127.0.0.1`. node's `checkServerIdentity` checks only IP SANs for a host that is an IP
 * address, so a client connecting to 127.0.0.1 refused that certificate on every handshake (HostnameMismatch),
 * the trap issueServer already refuses `*.tld` wildcards for. Now an IPv4 or IPv6 address among the DNS names is
 * refused with a CAError that says to give it as an IP address (`ipAddresses`, `--ip`).
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
  t = await makeTestCA({ name: 'ip-dns.tulipwire' });
  tmp = mkdtempSync(join(tmpdir(), 'tulipwire-ip-dns-'));
});
afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await t.cleanup();
});

describe('an IP address given as a DNS name', () => {
  it.each(['127.0.0.1', '10.1.2.3', '::1', '2001:db8::7'])('%s is refused, pointing to ipAddresses', async (ip) => {
    await expect(t.ca.issueServer({ dnsNames: ['localhost', ip] })).rejects.toMatchObject({
      code: 'TW_CA', message: expect.stringMatching(new RegExp(`${JSON.stringify(ip).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is an IP address.*ipAddresses`)),
    });
  });

  it('the same address as an IP SAN is what node matches', async () => {
    const issued = await t.ca.issueServer({ ipAddresses: ['127.0.0.1'] });
    expect(checkServerIdentity('127.0.0.1', new X509Certificate(issued.cert.pem).toLegacyObject())).toBeUndefined();
  });

  it('names that only look numeric are still DNS names', async () => {
    const issued = await t.ca.issueServer({ dnsNames: ['10.1.2.3.nip.io', '1-2-3-4.example'] });
    expect(issued.dnsNames).toEqual(['10.1.2.3.nip.io', '1-2-3-4.example']);
  });

  it('ca issue server --dns 127.0.0.1 fails (exit 1) and writes nothing', () => {
    const out = join(tmp, 'srv');
    const r = runCli(['ca', 'issue', 'server', '--dir', join(t.dir, 'ca'), '--dns', '127.0.0.1', '--out', out], tmp);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/"127\.0\.0\.1" is an IP address.*--ip.*\[TW_CA\]/);
    expect(existsSync(out)).toBe(false);
  });
});
