/**
 * IP address SANs hold the address that was asked for. @peculiar/x509's own IPv6 parser reads only hex groups, so
 * an IPv6 address written with an embedded IPv4 part (`::ffff:127.0.0.1`, NAT64 `64:ff9b::192.0.2.33`) was encoded
 * as another address (`::ffff:0:1`), and a scoped address (`fe80::1%eth0`) lost its zone without a word. The
 * certificate then named an address no client connects to, and `renew` refused it as not matching its description,
 * so a rotator failed for ever. Checked with OpenSSL's own host check (`X509Certificate.checkIP`) and node's
 * `tls.checkServerIdentity` on certificates of the project's CA.
 */
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';

let t: TestCA;
beforeAll(async () => {
  t = await makeTestCA({ name: 'ip-san.tulipwire' });
});
afterAll(() => t.cleanup());

describe('IP SANs with an embedded IPv4 part', () => {
  it.each([
    ['::ffff:127.0.0.1', '0:0:0:0:0:FFFF:7F00:1'],
    ['64:ff9b::192.0.2.33', '64:FF9B:0:0:0:0:C000:221'],
    ['::ffff:7f00:1', '0:0:0:0:0:FFFF:7F00:1'],
  ])('%s is the address in the certificate', async (ip, printed) => {
    const issued = await t.ca.issueServer({ ipAddresses: [ip] });
    const cert = new X509Certificate(issued.cert.pem);
    expect(cert.subjectAltName).toContain(`IP Address:${printed}`);
    expect(cert.checkIP(ip)).toBe(ip);
    expect(checkServerIdentity(ip, cert.toLegacyObject())).toBeUndefined();
  });

  it('such a certificate renews (the rotator would otherwise fail on it for ever)', async () => {
    const issued = await t.ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['::ffff:10.1.2.3'] });
    const renewed = await t.ca.renew(issued);
    expect(new X509Certificate(renewed.cert.pem).checkIP('::ffff:10.1.2.3')).toBe('::ffff:10.1.2.3');
  });

  it('a scoped IPv6 address (with a zone) is refused: a certificate cannot carry the zone', async () => {
    await expect(t.ca.issueServer({ ipAddresses: ['fe80::1%eth0'] })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringContaining('fe80::1%eth0') });
  });

  it('plain IPv4 and IPv6 addresses are unchanged', async () => {
    const issued = await t.ca.issueServer({ ipAddresses: ['127.0.0.1', '::1', '2001:db8::42'] });
    const cert = new X509Certificate(issued.cert.pem);
    for (const ip of ['127.0.0.1', '::1', '2001:db8::42']) expect(cert.checkIP(ip)).toBe(ip);
    expect(issued.ipAddresses).toEqual(['127.0.0.1', '::1', '2001:db8::42']);
  });
});
