/**
 * A server certificate for a long DNS name: `issueServer` accepts DNS names of up to 253 characters (docs/pki.md),
 * but one longer than 128 was refused with a CAError about the "identity id" (which the operator never gave): the
 * server's identity URI `tulip://<ca>/server/<name>` is made from the name and its id segment stopped at 128.
 * Checked with OpenSSL's own host check (`X509Certificate.checkHost`) and node's `tls.checkServerIdentity` on
 * certificates of the project's CA.
 */
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';

let t: TestCA;
beforeAll(async () => {
  t = await makeTestCA({ name: 'long-dns.tulipwire' });
});
afterAll(() => t.cleanup());

const matches = (pem: string, host: string) => {
  const cert = new X509Certificate(pem);
  return { openssl: cert.checkHost(host) !== undefined, node: checkServerIdentity(host, cert.toLegacyObject()) === undefined };
};

describe('long names', () => {
  // 3 labels of 63, ".example" and the dots: 199 characters, a valid DNS name.
  const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example`;

  it('a valid DNS name of 199 characters is issued, and clients match it', async () => {
    expect(long.length).toBe(199);
    const issued = await t.ca.issueServer({ dnsNames: [long] });
    expect(matches(issued.cert.pem, long)).toEqual({ openssl: true, node: true });
    expect(issued.identity).toBe(`tulip://long-dns.tulipwire/server/${long}`);
    const renewed = await t.ca.renew(issued);
    expect(renewed.identity).toBe(issued.identity);
  });

  it('a client id stays limited to 128 characters', async () => {
    await expect(t.ca.issueClient({ identity: 'x'.repeat(129) })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringContaining('1-128') });
    expect((await t.ca.issueClient({ identity: 'x'.repeat(128) })).identity).toBe(`tulip://long-dns.tulipwire/client/${'x'.repeat(128)}`);
  });

  it('a name of 255 characters is still refused as not a DNS name', async () => {
    const tooLong = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
    expect(tooLong.length).toBe(255);
    await expect(t.ca.issueServer({ dnsNames: [tooLong] })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringContaining('is not a DNS name') });
  });
});
