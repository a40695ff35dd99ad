/**
 * Pinned mutual TLS over real node:tls sockets on 127.0.0.1: success with the project's certificates, and each
 * failure seen as its typed CertificateError on the side that can know (PKI-NOTES Part B).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TLSSocket } from 'node:tls';
import { clientTlsOptions, identityOfCertificate, mapTlsError, serverTlsOptions, peerIdentityOf } from '../../src/pki/index.js';
import type { TestCA } from '../support/ca.js';
import { makeTestCA } from '../support/ca.js';
import type { EchoServer } from './helpers.js';
import { connectAndPing, startEchoServer } from './helpers.js';

let t: TestCA;
const servers: EchoServer[] = [];
const openSockets: TLSSocket[] = [];

beforeAll(async () => {
  t = await makeTestCA();
});
afterAll(async () => {
  await t.cleanup();
});
afterEach(async () => {
  for (const s of openSockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.close();
});

async function serve(options = t.serverOptions): Promise<EchoServer> {
  const s = await startEchoServer(options);
  servers.push(s);
  return s;
}

describe('mTLS success', () => {
  it('connects with the project certificates and both sides see the verified peer', async () => {
    const srv = await serve();
    const out = await connectAndPing(srv.port, t.clientOptions, true);
    openSockets.push(out.socket);
    expect(out.error).toBeNull();
    expect(out.echoed).toBe(true);
    expect(out.socket.getProtocol()).toBe('TLSv1.3');
    // The client's view of the server.
    expect(out.peer).not.toBeNull();
    expect(out.peer!.kind).toBe('server');
    expect(out.peer!.identity).toBe('tulip://test.tulipwire/server/localhost');
    expect(out.peer!.dnsNames).toEqual(['localhost']);
    expect(out.peer!.ipAddresses).toEqual(['127.0.0.1']);
    expect(out.peer!.purposes).toEqual(['serverAuth']);
    expect(out.peer!.serial).toBe(t.server.cert.serial);
    expect(out.peer!.fingerprint).toBe(t.server.cert.fingerprint);
    expect(out.peer!.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(out.peer!.notAfter).toBe(t.server.cert.notAfter);
    // The server's view of the client.
    expect(srv.accepted).toHaveLength(1);
    const c = srv.accepted[0]!;
    expect(c.identity).toBe('tulip://test.tulipwire/client/test-client');
    expect(c.kind).toBe('client');
    expect(c.id).toBe('test-client');
    expect(c.commonName).toBe('test-client');
    expect(c.subject).toBe('CN=test-client');
    expect(c.purposes).toEqual(['clientAuth']);
    expect(c.serial).toBe(t.client.cert.serial);
    expect(c.notAfter).toBe(t.client.cert.notAfter);
    expect(Number.isInteger(c.notAfter)).toBe(true);
    // The cheap per-handshake path (legacy peer object) agrees with a full X509Certificate parse.
    expect(out.peer).toEqual(identityOfCertificate(t.server.cert.x509));
    expect(c).toEqual(identityOfCertificate(t.client.cert.x509));
  });

  it('accepts the IP SAN when connecting without a servername', async () => {
    const srv = await serve();
    const opts = clientTlsOptions(t.client, { pin: t.ca.rootPin });
    const out = await connectAndPing(srv.port, opts);
    expect(out.error).toBeNull();
    expect(out.echoed).toBe(true);
  });

  it('trusts only the CA root: ca holds exactly the root, never the system roots', () => {
    expect(t.serverOptions.ca).toEqual([t.ca.root.pem]);
    expect(t.clientOptions.ca).toEqual([t.ca.root.pem]);
    expect(t.serverOptions.requestCert).toBe(true);
    expect(t.serverOptions.rejectUnauthorized).toBe(true);
    expect(t.clientOptions.rejectUnauthorized).toBe(true);
    expect(t.serverOptions.minVersion).toBe('TLSv1.3');
    // cert = leaf + intermediate (a leaf alone is rejected by the peer: PKI-NOTES).
    expect(t.serverOptions.cert).toBe(t.server.cert.pem + t.ca.intermediate.pem);
  });

  it('caps session tickets at the certificate\'s remaining life', async () => {
    const short = await t.issueServer({ lifetime: 120 });
    expect(short.options.sessionTimeout).toBeLessThanOrEqual(120);
    expect(short.options.sessionTimeout).toBeGreaterThan(100);
    expect(t.serverOptions.sessionTimeout).toBe(300);
  });
});

describe('failures seen by the server (a TLS 1.3 client only sees a close)', () => {
  it('no client certificate: NoClientCertificate on both sides', async () => {
    const srv = await serve();
    const { key: _k, cert: _c, ...noCert } = t.clientOptions;
    const out = await connectAndPing(srv.port, noCert);
    expect(out.echoed).toBe(false);
    expect(out.mapped?.code).toBe('TW_NO_CLIENT_CERTIFICATE');
    expect(out.mapped?.message).toMatch(/requires a client certificate/);
    const r = await srv.nextRejection();
    expect(r.mapped?.code).toBe('TW_NO_CLIENT_CERTIFICATE');
    expect((r.mapped as Error & { cause?: Error }).cause).toBe(r.raw);
  });

  it.each([
    ['another CA', 'otherClient', 'TW_UNKNOWN_ISSUER', /not issued by the trusted CA/],
    ['an expired certificate', 'expiredClient', 'TW_CERTIFICATE_EXPIRED', /client's certificate has expired/],
    ['a not-yet-valid certificate', 'notYetValidClient', 'TW_CERTIFICATE_NOT_YET_VALID', /client's certificate is not valid yet/],
    ['a server certificate (wrong EKU)', 'wrongEkuClient', 'TW_WRONG_PURPOSE', /lacks clientAuth/],
  ] as const)('client with %s is refused with its typed error', async (_what, mint, code, message) => {
    const srv = await serve();
    // The other CA's client trusts our root (so it gets as far as presenting its own certificate).
    const creds = mint === 'otherClient'
      ? clientTlsOptions((await t.otherCA()).client, { servername: 'localhost', extraCa: [t.ca.root.pem] })
      : (await t[mint]()).options;
    const out = await connectAndPing(srv.port, creds);
    expect(out.echoed).toBe(false);
    expect(out.secure).toBe(true); // TLS 1.3: the client saw secureConnect, then the server closed
    const r = await srv.nextRejection();
    expect(r.mapped?.code).toBe(code);
    expect(r.mapped?.message).toMatch(message);
    expect(r.mapped?.message).not.toMatch(/^ERR_SSL/);
    expect(srv.accepted).toHaveLength(0);
  });
});

describe('failures seen by the client', () => {
  it.each([
    ['another CA', 'otherServer', 'TW_UNKNOWN_ISSUER'],
    ['an expired certificate', 'expiredServer', 'TW_CERTIFICATE_EXPIRED'],
    ['a not-yet-valid certificate', 'notYetValidServer', 'TW_CERTIFICATE_NOT_YET_VALID'],
    ['a client certificate (wrong EKU)', 'wrongEkuServer', 'TW_WRONG_PURPOSE'],
  ] as const)('server with %s is refused with its typed error', async (_what, mint, code) => {
    const opts = mint === 'otherServer' ? (await t.otherCA()).serverOptions : (await t[mint]()).options;
    const srv = await serve(opts);
    const out = await connectAndPing(srv.port, t.clientOptions);
    expect(out.secure).toBe(false);
    expect(out.mapped?.code).toBe(code);
    expect(out.mapped?.message).toMatch(/server's certificate/);
    expect((out.mapped as Error & { cause?: unknown }).cause).toBe(out.error);
  });

  it('wrong host name: HostnameMismatch naming the host', async () => {
    const srv = await serve();
    const out = await connectAndPing(srv.port, clientTlsOptions(t.client, { servername: 'other.example' }));
    expect(out.secure).toBe(false);
    expect(out.mapped?.code).toBe('TW_HOSTNAME_MISMATCH');
    expect(out.mapped?.message).toMatch(/other\.example/);
  });

  it('expectedIdentity: a server without that URI is refused', async () => {
    const srv = await serve();
    const wrong = await connectAndPing(srv.port, clientTlsOptions(t.client, { servername: 'localhost', expectedIdentity: 'tulip://test.tulipwire/server/elsewhere' }));
    expect(wrong.mapped?.code).toBe('TW_HOSTNAME_MISMATCH');
    const right = await connectAndPing(srv.port, clientTlsOptions(t.client, { servername: 'localhost', expectedIdentity: t.server.identity }));
    expect(right.echoed).toBe(true);
  });

  it('TLS 1.2 client against the TLS 1.3 default: refused, and not mistaken for a certificate error', async () => {
    const srv = await serve();
    const out = await connectAndPing(srv.port, { ...t.clientOptions, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    expect(out.secure).toBe(false);
    expect(out.error).not.toBeNull();
    expect(out.mapped).toBeNull();
  });
});

describe('SPKI pin of the root', () => {
  it('client: a look-alike CA slipped into the trust list is refused once the root is pinned', async () => {
    const fake = await t.lookalikeCA();
    const srv = await serve(fake.serverOptions);
    // Without a pin, trusting both roots, the look-alike server (same DNs, other keys) is accepted: the pin is what stops it.
    const unpinned = await connectAndPing(srv.port, clientTlsOptions(t.client, { servername: 'localhost', extraCa: [fake.ca.root.pem] }));
    expect(unpinned.error).toBeNull();
    expect(unpinned.peer?.identity).toBe(t.server.identity); // same name: identical identity URI
    // Pinned: the builder keeps only the pinned root, so OpenSSL refuses the look-alike chain.
    const pinnedOpts = clientTlsOptions(t.client, { servername: 'localhost', extraCa: [fake.ca.root.pem], pin: t.ca.rootPin });
    expect(pinnedOpts.ca).toEqual([t.ca.root.pem]);
    const pinned = await connectAndPing(srv.port, pinnedOpts);
    expect(pinned.secure).toBe(false);
    expect(pinned.mapped?.code).toBe('TW_UNKNOWN_ISSUER');
    // Slipped in after the builder ran (ca overwritten): the post-handshake chain check catches it.
    const tampered = await connectAndPing(srv.port, { ...pinnedOpts, ca: [t.ca.root.pem, fake.ca.root.pem] });
    expect(tampered.secure).toBe(false);
    expect(tampered.mapped?.code).toBe('TW_PIN_MISMATCH');
    expect(tampered.mapped?.message).toContain(t.ca.rootPin);
  });

  it('server: a pinned server drops a look-alike root from its trust list', async () => {
    const fake = await t.lookalikeCA();
    const srv = await serve(serverTlsOptions(t.server, { extraCa: [fake.ca.root.pem], pin: t.ca.rootPin }));
    const out = await connectAndPing(srv.port, clientTlsOptions(fake.client, { servername: 'localhost', extraCa: [t.ca.root.pem] }));
    expect(out.echoed).toBe(false);
    const r = await srv.nextRejection();
    expect(r.mapped?.code).toBe('TW_UNKNOWN_ISSUER');
    // The genuine client still gets in through the same pinned server.
    const ok = await connectAndPing(srv.port, t.clientOptions);
    expect(ok.echoed).toBe(true);
  });

  it('building options from a look-alike CA bundle under the real pin fails with PinMismatch', async () => {
    const fake = await t.lookalikeCA();
    expect(() => serverTlsOptions(fake.server, { pin: t.ca.rootPin })).toThrow(expect.objectContaining({ code: 'TW_PIN_MISMATCH' }));
    expect(() => clientTlsOptions(fake.client, { pin: t.ca.rootPin })).toThrow(expect.objectContaining({ code: 'TW_PIN_MISMATCH' }));
  });

  it('accepts pins as hex, base64 and sha256/base64', async () => {
    const srv = await serve();
    const b64 = Buffer.from(t.ca.rootPin, 'hex').toString('base64');
    for (const pin of [t.ca.rootPin, b64, `sha256/${b64}`]) {
      const out = await connectAndPing(srv.port, clientTlsOptions(t.client, { servername: 'localhost', pin }));
      expect(out.echoed).toBe(true);
    }
    expect(() => clientTlsOptions(t.client, { pin: 'nope' })).toThrow(expect.objectContaining({ code: 'TW_CA' }));
  });
});

describe('hooks', () => {
  it('mapTlsError passes TulipErrors through and returns null for non-certificate errors', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(mapTlsError(reset, 'server')).toBeNull();
    expect(mapTlsError(reset, 'client')).toBeNull();
    const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' });
    expect(mapTlsError(expired, 'client')?.code).toBe('TW_CERTIFICATE_EXPIRED');
  });

  it('maps the server-side error shape src/net builds from socket.authorizationError', () => {
    // src/net/server.ts: new Error(reason) with code = reason and the ECONNRESET as cause.
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    for (const [reason, code] of [['CERT_HAS_EXPIRED', 'TW_CERTIFICATE_EXPIRED'], ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'TW_UNKNOWN_ISSUER'],
      ['INVALID_PURPOSE', 'TW_WRONG_PURPOSE'], ['CERT_NOT_YET_VALID', 'TW_CERTIFICATE_NOT_YET_VALID']] as const) {
      const err = Object.assign(new Error(reason), { code: reason, cause: reset });
      const mapped = t.serverOptions[Symbol.for('tulipwire.mapTlsError') as keyof typeof t.serverOptions] as (e: Error, side: 'server') => (Error & { code?: string }) | null;
      expect(mapped(err, 'server')?.code).toBe(code);
      expect(mapped(err, 'server')?.message).toMatch(/client's certificate/);
    }
  });

  it('peerIdentity is null when the peer was not verified', async () => {
    const other = await t.otherCA();
    const srv = await serve(other.serverOptions);
    const out = await connectAndPing(srv.port, { ...t.clientOptions, rejectUnauthorized: false, checkServerIdentity: () => undefined });
    expect(out.secure).toBe(true);
    expect(out.socket.authorized).toBe(false);
    expect(out.peer).toBeNull();
    expect(peerIdentityOf(out.socket)).toBeNull();
  });
});

describe('Ed25519 on Node 20', () => {
  it.each(['TLSv1.3', 'TLSv1.2'] as const)('an Ed25519 CA and leaves handshake mTLS over %s', async (version) => {
    const ed = await makeTestCA({ keyAlgorithm: 'Ed25519', name: 'ed.tulipwire' });
    try {
      const srv = await serve(serverTlsOptions(ed.server, { minVersion: 'TLSv1.2', pin: ed.ca.rootPin }));
      const out = await connectAndPing(srv.port, { ...ed.clientOptions, minVersion: version, maxVersion: version });
      expect(out.error).toBeNull();
      expect(out.echoed).toBe(true);
      expect(out.peer?.identity).toBe('tulip://ed.tulipwire/server/localhost');
      expect(srv.accepted[0]?.identity).toBe('tulip://ed.tulipwire/client/test-client');
    } finally {
      await ed.cleanup();
    }
  });
});
