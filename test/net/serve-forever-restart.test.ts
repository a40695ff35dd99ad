/**
 * `Server.serveForever()` when its start does not get as far as serving: the server was closed already (asyncio's
 * serve_forever raises RuntimeError "... is closed" on every call), or the Task is cancelled while the listen is
 * still in flight (asyncio's `_start_serving` is synchronous, so its serve_forever has no such window; cancelling
 * serve_forever closes the server). Either way the server must not be left thinking a serveForever() is running:
 * the next call must fail (or serve) for what it is, not with "serveForever() is already running".
 */
import { describe, expect, it } from 'vitest';
import { ProtocolBase, sleep, waitFor } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

const T = 10;

describe('Server.serveForever() after a start that did not serve', () => {
  const lf = useLoop({ real: true });

  it('on a closed server every call fails with "server is closed", none with "already running"', async () => {
    await lf.run(async () => {
      const server = await lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0);
      server.close();
      for (let i = 0; i < 3; i++) {
        let err: unknown = null;
        try {
          err = await waitFor(server.serveForever().then(() => null, (e: unknown) => e), T);
        } catch (e) {
          err = e;
        }
        expect(err).toMatchObject({ code: 'TW_TRANSPORT', message: expect.stringMatching(/is closed/) });
      }
    });
  });

  it('cancelled while its listen is in flight: the server is closed, and the next call says so', async () => {
    await lf.run(async () => {
      const server = await lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0, { startServing: false });
      const task = server.serveForever();
      await sleep(0); // the Task is inside startServing(), its listen not done yet
      expect(server.isServing()).toBe(false);
      task.cancel();
      const err = await waitFor(task.then(() => null, (e: unknown) => e), T);
      expect(err).toMatchObject({ code: 'TW_CANCELLED' });
      expect(server.isServing()).toBe(false);
      await waitFor(server.waitClosed(), T); // cancelling serveForever closes the server, as asyncio's
      let again: unknown = null;
      try {
        again = await waitFor(server.serveForever().then(() => null, (e: unknown) => e), T);
      } catch (e) {
        again = e;
      }
      expect(again).toMatchObject({ code: 'TW_TRANSPORT', message: expect.stringMatching(/is closed/) });
    });
  });
});
