/**
 * peerIdentity / isPeerIdentity: the verified identity of `ctx.peer` without a cast, over a real mTLS session with
 * the test CA's certificates; look-alikes and missing peers are refused with Forbidden.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { identityOfCertificate, isPeerIdentity, peerIdentity } from '../../src/pki/index.js';
import { X509Certificate } from 'node:crypto';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x4d);

describe('peerIdentity', () => {
  it('gives the handler the client certificate identity; the connection and session peers pass the guard too', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      server.handle('whoami', (_p, ctx) => peerIdentity(ctx.peer).identity);
      const s = sx.open(keyring, server.port!);
      expect(await s.call('whoami')).toBe(sx.ca.client.identity);
      const conn = [...server.connections][0]!;
      expect(isPeerIdentity(conn.peer)).toBe(true);
      expect(peerIdentity(conn.peer).serial).toBe(sx.ca.client.cert.serial);
      expect(isPeerIdentity(s.peer)).toBe(true);
      expect(peerIdentity(s.peer).dnsNames).toContain('localhost');
    });
  });

  it('a handler that finds no certificate identity refuses the call with TW_FORBIDDEN, and the server keeps serving', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      // A look-alike object in the handler's hands (say, from a cache) is not a verified identity.
      server.handle('lookalike', () => peerIdentity({ ...peerIdentity([...server.connections][0]!.peer) }).identity);
      server.handle('echo', (x: unknown) => x);
      const s = sx.open(keyring, server.port!);
      await expect(s.call('lookalike')).rejects.toMatchObject({ code: 'TW_FORBIDDEN', remote: true,
        message: 'the peer is not a verified certificate identity' });
      expect(await s.call('echo', 1)).toBe(1);
    });
  });

  it('refuses null, undefined, strings and look-alikes; accepts what identityOfCertificate builds', () => {
    for (const v of [null, undefined]) {
      expect(isPeerIdentity(v)).toBe(false);
      expect(() => peerIdentity(v)).toThrow(expect.objectContaining({ code: 'TW_FORBIDDEN', message: 'the peer presented no verified certificate' }));
    }
    for (const v of ['tulip://x/client/1', { identity: 'tulip://x/client/1', serial: '01' }, 42]) {
      expect(isPeerIdentity(v)).toBe(false);
      expect(() => peerIdentity(v)).toThrow(expect.objectContaining({ code: 'TW_FORBIDDEN' }));
    }
    const made = identityOfCertificate(new X509Certificate(sx.ca.client.cert.pem));
    expect(isPeerIdentity(made)).toBe(true);
    expect(peerIdentity(made).identity).toBe(sx.ca.client.identity);
  });
});
