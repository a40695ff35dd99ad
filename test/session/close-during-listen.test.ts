/**
 * A session server closed (or drained) while its listen() is still binding: nothing may listen afterwards and no
 * listener may leak (a supervisor that gets SIGTERM during start-up calls close() on a server not yet listening).
 * Real TLS listeners on 127.0.0.1 port 0 with the test CA's certificates.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { QUIET, useMtlsSessions } from '../support/sessions.js';
import { SessionServer } from '../../src/session/session-server.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x71);

/** Whether a TCP connect to 127.0.0.1:`port` is accepted (true) or refused (false); bounded by a 2 s timeout. */
function accepts(port: number): Promise<boolean | 'timeout'> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => { s.destroy(); resolve('timeout'); }, 2000);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}

describe('SessionServer closed while listen() is in progress', () => {
  it.each(['close', 'drain'] as const)('%s() during listen(): listen fails TransportError, nothing listens afterwards', async (how) => {
    await fx.run(async () => {
      const server = new SessionServer({ keyring: sx.ring(), tls: sx.ca.serverOptions, ...QUIET });
      const listening = server.listen();
      const stopped = how === 'close' ? server.close() : server.drain({ timeout: 0.2 });
      const outcome = await listening.then(() => 'listening', (e: unknown) => e);
      await stopped;
      // Nothing listens on the port it had bound (or it never got one).
      if (server.port !== null) expect(await accepts(server.port)).toBe(false);
      else expect(server.server).toBeNull();
      expect(outcome).toMatchObject({ code: 'TW_TRANSPORT' });
    });
  });

  it('a second listen() while one is in progress or done fails TransportError; close() leaves nothing listening', async () => {
    await fx.run(async () => {
      const server = new SessionServer({ keyring: sx.ring(), tls: sx.ca.serverOptions, ...QUIET });
      const first = server.listen();
      await expect(server.listen()).rejects.toMatchObject({ code: 'TW_TRANSPORT' });
      await first;
      await expect(server.listen()).rejects.toMatchObject({ code: 'TW_TRANSPORT' });
      const port = server.port!;
      expect(await accepts(port)).toBe(true);
      await server.close();
      expect(await accepts(port)).toBe(false);
    });
  });
});
