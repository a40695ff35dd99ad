/**
 * A session notification's ttl also bounds how long it waits for a connection: once it has expired it can never be
 * sent, so it fails then, with the ttl's TimeoutError, and frees its slot in the bounded queue. It used to hold
 * the slot until `timeout` (30 s by default) and then fail with "found no connection within 30 s", which is not
 * why it was not sent, while the calls and notifications behind it found the queue full.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';

const fx = useLoop({ real: true });
const { ring, open } = useMtlsSessions(fx, 0x5e);

/** A 127.0.0.1 port nobody listens on. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe('Session.notify: the ttl bounds the wait for a connection', () => {
  for (const timeout of [20, null]) {
    it(`ttl 0.05 s, timeout ${timeout}: fails with the ttl's TimeoutError when the ttl ends, not at the timeout`, async () => {
      await fx.run(async () => {
        const s = open(ring(), await freePort());
        const t0 = fx.loop.time();
        const n = s.notify('input', { seq: 1 }, { ttl: 0.05, timeout });
        let caught: unknown = null;
        try {
          await n;
        } catch (e) {
          caught = e;
        }
        expect(caught).toMatchObject({ code: 'TW_TIMEOUT', message: 'notify input expired (ttl 0.05 s) while waiting for a connection: not sent' });
        // Well before the 20 s timeout (the null case would otherwise wait as long as the session lives).
        expect(fx.loop.time() - t0).toBeLessThan(10);
      });
    }, 30_000);
  }

  it('a timeout shorter than the ttl still ends the wait with the timeout message', async () => {
    await fx.run(async () => {
      const s = open(ring(), await freePort());
      // (The message ends with why the last connection attempt failed, when one did.)
      await expect(s.notify('input', null, { ttl: 30, timeout: 0.05 })).rejects.toMatchObject({
        code: 'TW_TIMEOUT', message: expect.stringMatching(/^notify input found no connection within 0\.05 s/),
      });
    });
  }, 30_000);
});
