/**
 * A resumed TLS 1.3 session skips the certificate checks, and node gives the server the client certificate of the
 * original handshake (docs/pki.md, PKI-NOTES: "TLS session resumption must not outlive a certificate"). The server
 * builder capped the ticket lifetime at the *server* certificate's remaining life only, so a client whose own
 * certificate expired after its full handshake resumed with its ticket and was accepted as the verified peer of an
 * expired certificate (peerIdentity.notAfter in the past): the one way back in for a client that was dropped by
 * letting its certificate lapse. The server's verifyPeer hook now refuses a resumed session whose client
 * certificate is outside its validity at the clock's now (CertificateExpired); a full handshake still gets
 * OpenSSL's own refusal, and a resumption within the certificate's life still works.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { clientTlsOptions, serverTlsOptions } from '../../src/pki/index.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { startEchoServer } from './helpers.js';
import type { EchoServer } from './helpers.js';

let t: TestCA;
beforeAll(async () => {
  t = await makeTestCA({ pin: false });
});
afterAll(() => t.cleanup());
const servers: EchoServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

interface Outcome { reused: boolean; echoed: boolean; session: Buffer | null }

/** Connects, pings, and resolves once the echo (and on a full handshake the ticket) came, or the server closed. */
function connect(port: number, options: tls.ConnectionOptions, session?: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = tls.connect({ ...options, host: '127.0.0.1', port, ...(session ? { session } : {}) });
    const out: Outcome = { reused: false, echoed: false, session: null };
    const maybeDone = () => {
      if (out.echoed && (out.reused || out.session !== null)) {
        socket.destroy();
        resolve(out);
      }
    };
    socket.on('session', (s: Buffer) => {
      out.session ??= s;
      maybeDone();
    });
    socket.on('secureConnect', () => {
      out.reused = socket.isSessionReused();
      socket.write('ping');
    });
    socket.on('data', () => {
      out.echoed = true;
      maybeDone();
    });
    socket.on('close', () => resolve(out));
    socket.on('error', () => resolve(out)); // the refused resumption: a reset after secureConnect
  });
}

describe('a resumed session does not outlive the client certificate', () => {
  it('a client whose certificate expired after its full handshake cannot resume into the server', async () => {
    const srv = await startEchoServer(t.serverOptions);
    servers.push(srv);
    const now = t.ca.clock.epoch();
    // Valid for about 2 more seconds: long enough for one full handshake, then it expires.
    const shortLived = await t.ca.issueClient({ identity: 'short-lived', notBefore: now - 60, notAfter: now + 2 });
    const options = clientTlsOptions(shortLived, { servername: 'localhost' });
    const first = await connect(srv.port, options);
    expect(first.echoed).toBe(true);
    expect(first.session).not.toBeNull();
    // Until the certificate is past its notAfter (bounded: a few seconds).
    while (Date.now() / 1000 <= shortLived.cert.notAfter + 0.2) await sleep(100);

    const second = await connect(srv.port, options, first.session!);
    expect(second.reused).toBe(true); // the ticket itself is good (300 s): only the certificate behind it expired
    expect(second.echoed).toBe(false);
    const rejection = await srv.nextRejection();
    expect(rejection.mapped).toMatchObject({ code: 'TW_CERTIFICATE_EXPIRED' });
    expect(srv.accepted.map((p) => p?.identity)).toEqual([shortLived.identity]);
  });

  it('a client resuming within its certificate\'s life is accepted, with the peer of the first handshake', async () => {
    const srv = await startEchoServer(serverTlsOptions(t.server));
    servers.push(srv);
    const options = clientTlsOptions(t.client, { servername: 'localhost' });
    const first = await connect(srv.port, options);
    const second = await connect(srv.port, options, first.session!);
    expect(second.reused).toBe(true);
    expect(second.echoed).toBe(true);
    expect(srv.rejections).toEqual([]);
    expect(srv.accepted.map((p) => p?.identity)).toEqual([t.client.identity, t.client.identity]);
  });
});
