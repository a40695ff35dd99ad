/**
 * A session that gave up (backoff.attempts ran out) closes its connections and waits for them, up to
 * `shutdownTimeout`. A cancel of its task in that wait (session.close(), a TaskGroup, a signal) must end the task
 * cancelled, with CancelledError (asyncio semantics: never swallowed), after the connections are aborted, instead of
 * being taken for the end of the wait and the task returning normally. Real mutual TLS on 127.0.0.1: the server
 * drains while a call runs, so the client's connection stays open while it closes.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x65);

describe('cancelling a session task while it shuts down after giving up', () => {
  it('the task ends cancelled, its connections aborted', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      const release = fx.loop.createFuture<void>();
      server.handle('slow', async () => { await release; return 'done'; });
      const s = sx.open(keyring, server.port!, { backoff: { base: 0.01, cap: 0.01, attempts: 0 }, shutdownTimeout: 3 });
      await s.whenConnected();
      const call = s.call('slow', null, { timeout: null });
      call.addDoneCallback(() => undefined);
      await sleep(0.05);
      const drained = server.drain({ timeout: 5 }); // GOAWAY; the call keeps the connection open
      // The reconnect fails (nothing listens): the session gives up and closes its connection, waiting for it.
      let shuttingDown = false;
      for (let i = 0; i < 300 && !shuttingDown; i++) {
        await sleep(0.01);
        shuttingDown = await s.call('x', null, { timeout: 0.01 }).then(() => false,
          (e: { message?: string }) => /gave up/.test(e.message ?? ''));
      }
      expect(shuttingDown).toBe(true);
      expect(s.closed.done()).toBe(false); // still waiting for its connection to close
      s.task.cancel();
      const ended = await Promise.race([Promise.allSettled([s.task]).then(() => 'ended'), sleep(5).then(() => 'still running')]);
      expect(ended).toBe('ended');
      expect(s.task.cancelled()).toBe(true);
      expect(s.closed.done()).toBe(true);
      release.setResult(undefined);
      await drained;
    });
  }, 20_000);
});
