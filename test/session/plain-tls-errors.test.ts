/**
 * A session given plain node:tls options (a user's own `{ ca, cert, key }`, not built by clientTlsOptions) reports
 * refused handshakes as the typed CertificateError too (found by a game developer's trial: a client that forgot its
 * certificate got OpenSSL's "tlsv13 alert certificate required … SSL alert number 116" as a TransportError, where
 * clientTlsOptions() said NoClientCertificate and what to do).
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/loop/index.js';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x71);

describe('plain tls options on a session', () => {
  it('no client certificate: the session ends with NoClientCertificate and its advice, not OpenSSL text', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      const s = sx.open(keyring, server.port!, { tls: { ca: sx.ca.client.ca.pem, servername: 'localhost' }, backoff: { attempts: 0 } });
      const reason = await s.closed;
      expect(reason).toMatchObject({
        code: 'TW_SESSION_CLOSED',
        message: expect.stringMatching(/gave up after 1 failed connection attempts: the server requires a client certificate and none was sent/),
      });
      expect(s.lastError).toMatchObject({ code: 'TW_NO_CLIENT_CERTIFICATE' });
      await sleep(0.05);
      // The server reported the refused handshake, typed, as before.
      expect(fx.take().map((r) => (r.exception as { code?: string }).code)).toContain('TW_NO_CLIENT_CERTIFICATE');
    });
  }, 20_000);

  it('with its certificate the same plain options connect and call', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      server.handle('echo', (p: unknown) => p);
      const c = sx.ca.client;
      const s = sx.open(keyring, server.port!, { tls: { ca: c.ca.pem, cert: c.chain.pem, key: c.key.pem, servername: 'localhost' } });
      expect(await s.call('echo', 'hi')).toBe('hi');
    });
  }, 20_000);
});
