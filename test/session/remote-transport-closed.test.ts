/**
 * An idempotent call is sent again only when *its own* connection was lost (docs/sessions.md, "What happens to a
 * call when its connection is lost"). A TW_TRANSPORT_CLOSED error *reply* (remote: the server's handler threw it,
 * e.g. its own backend connection closed) is the call's outcome, cached by the server: re-sending it on the same,
 * healthy connection only gets the same cached reply again, in a loop, until the rate limit or the timeout ends it
 * with another error. Real mutual TLS on 127.0.0.1.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { TransportClosed } from '../../src/errors.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x3e);

describe('an idempotent call answered with a remote TW_TRANSPORT_CLOSED', () => {
  it('fails with that error at once (the handler ran once); nothing is re-sent on the healthy connection', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      let runs = 0;
      server.handle('proxy', () => {
        runs += 1;
        throw new TransportClosed('the backend connection closed');
      });
      server.handle('echo', (p: unknown) => p);
      const s = sx.open(keyring, server.port!);
      await s.whenConnected();
      const link = s.link!;
      const outcome = await s.call('proxy', null, { idempotent: true, timeout: 3 }).then(() => 'resolved', (e: unknown) => e);
      expect(outcome).toMatchObject({ code: 'TW_TRANSPORT_CLOSED', remote: true, message: 'the backend connection closed' });
      expect(runs).toBe(1);
      const conn = [...server.connections][0]!;
      expect(conn.rateLimited).toBe(0); // not hammered with copies
      expect(s.link).toBe(link);
      expect(await s.call('echo', 'ok')).toBe('ok');
    });
  }, 20_000);
});
