/**
 * `await waitFor(session.whenConnected(), seconds)` during an outage: whenConnected returned a plain Promise, which
 * waitFor cannot cancel, so a wait that timed out kept its place in the session's bounded call queue until the next
 * connection (freed only when the timeout's cancel happened to land on the queue's own Future, i.e. when the
 * Promise was awaited in the very step that made it). A client polling like this while its server was down filled
 * the queue with waits nobody awaited any more, and from then on every whenConnected and every call failed at once
 * with "session call queue is full" instead of waiting. whenConnected returns a Task now: the timeout cancels it and
 * its place is freed.
 *
 * A port nothing listens on (connection refused, the session keeps retrying); the calls' own timeouts end them.
 * Outcomes only, no timed assertions.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep, waitFor } from '../../src/loop/index.js';
import { TimeoutError } from '../../src/errors.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x3f);

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('whenConnected under waitFor during an outage', () => {
  it('a timed-out wait gives its place in the call queue back', async () => {
    await fx.run(async () => {
      const QUEUE = 3;
      const s = sx.open(sx.ring(), await deadPort(), { queueSize: QUEUE, backoff: { base: 0.01, cap: 0.02, attempts: 100_000 } });
      for (let i = 0; i < QUEUE + 2; i++) {
        // Asked for first, awaited a step later (as after other setup): `const up = s.whenConnected(); …; await
        // waitFor(up, t)`, in a task of its own.
        const failure = await fx.loop.createTask(async () => {
          const up = s.whenConnected();
          await sleep(0);
          try {
            await waitFor(up, 0.03);
            return null;
          } catch (e) {
            return e;
          }
        });
        expect(failure).toBeInstanceOf(TimeoutError);
      }
      // The queue holds nothing: each call waits for a connection (and times out), none is refused as a full queue.
      const outcomes = await Promise.allSettled(Array.from({ length: QUEUE }, (_, i) => s.call('echo', i, { timeout: 0.05 })));
      for (const o of outcomes) {
        expect(o.status).toBe('rejected');
        const err = (o as PromiseRejectedResult).reason as Error;
        expect(err).toBeInstanceOf(TimeoutError);
        expect(err.message).toMatch(/found no connection/);
      }
      expect(s.connected).toBe(false);
    });
  }, 20_000);
});
