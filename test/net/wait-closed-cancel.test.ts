/**
 * `StreamWriter.waitClosed()` is cancellable, and cancelling one wait must not touch the others: every waitClosed()
 * awaited the protocol's one shared "closed" Future directly, so cancelling the Task in one of them cancelled that
 * Future itself. From then on every waitClosed(), made before or after, threw CancelledError at once although
 * nobody cancelled it, and connectionLost could no longer resolve it. asyncio 3.13 does the same (its wait_closed
 * awaits the protocol's `_closed` future; observed: the next wait_closed raises CancelledError); aioredis fixed the
 * same bug in its own wait_closed by shielding the shared future (aio-libs/aioredis-py#118). tulipwire shields it.
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { openConnection, sleep, startServer, waitFor } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

const T = 10;

describe('StreamWriter.waitClosed() cancellation', () => {
  const lf = useLoop({ real: true });

  it('a cancelled waitClosed leaves the other waits and later calls to resolve at connectionLost', async () => {
    await lf.run(async () => {
      const server = await startServer(async (rd, wr) => {
        await rd.read();
        wr.close();
      }, '127.0.0.1', 0);
      const port = (server.sockets[0]!.address() as AddressInfo).port;
      const [, wr] = await openConnection('127.0.0.1', port);
      const cancelled = lf.loop.createTask(async () => {
        await wr.waitClosed();
      });
      const other = lf.loop.createTask(async () => {
        await wr.waitClosed();
      });
      await sleep(0.01);
      cancelled.cancel();
      const why = await cancelled.then(() => null, (e: unknown) => e);
      expect(why).toMatchObject({ code: 'TW_CANCELLED' });
      await sleep(0.01);
      expect(other.done()).toBe(false); // still waiting for the connection, not cancelled with the first
      wr.close();
      await waitFor(() => wr.waitClosed(), T); // a call made after the cancel resolves too
      await waitFor(other, T);
      expect(other.cancelled()).toBe(false);
      server.close();
      await waitFor(server.waitClosed(), T);
    });
  });
});
