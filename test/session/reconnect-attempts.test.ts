/**
 * `backoff.attempts` after a lost connection (docs/sessions.md, "Reconnection"): a successful connect resets the
 * sequence, and the session gives up after `attempts + 1` failed connects in a row, so a session that loses its
 * connection tries to reconnect `attempts + 1` times (`attempts: 0`: once) before `closed` resolves with
 * SessionClosed. Over real mutual TLS on 127.0.0.1; the server is aborted (a crash) so every reconnect fails.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import { Backoff } from '../../src/session/backoff.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x6a);

describe('reconnect attempts after a lost connection', () => {
  it.each([0, 1, 2])('attempts: %i gives up after attempts + 1 failed reconnects, not fewer', async (attempts) => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      const s = sx.open(keyring, server.port!, { backoff: { base: 0.01, cap: 0.02, attempts } });
      await s.whenConnected();
      expect(s.attempts).toBe(1);
      server.abort(); // a crash: the connection is lost, and nothing listens any more
      const why = await Promise.race([s.closed, sleep(10).then(() => 'still open after 10 s')]);
      expect(why).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      // The first connect, then attempts + 1 failed reconnects in a row.
      expect(s.attempts).toBe(1 + attempts + 1);
      expect((why as Error).message).toContain(`gave up after ${attempts + 1} failed connection attempts`);
    });
  }, 20_000);
});

describe('Backoff.delay()', () => {
  it('draws in the current window and counts no retry (attempts: 0 still has its one try left)', () => {
    const b = new Backoff({ base: 1, cap: 8, attempts: 0, random: () => 0.5 });
    expect(b.delay()).toBe(0.5);
    expect(b.delay()).toBe(0.5);
    expect(b.attempt).toBe(0);
    expect(b.next()).toBeNull();
    const c = new Backoff({ base: 1, cap: 8, attempts: 5, random: () => 0.5 });
    c.next(); c.next();
    expect(c.delay()).toBe(2); // the window of retry 2: 4 s
    expect(c.attempt).toBe(2);
  });
});
