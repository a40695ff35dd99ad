/**
 * `Server.startServing()` (and `createServer`, which calls it) racing a cancel, a `close()` or a second call.
 *
 * In asyncio the listening part of start_serving is synchronous (`base_events.Server._start_serving`: idempotent,
 * then `await tasks.sleep(0)`), so none of these can leave a listener behind: CPython 3.13
 * test_asyncio/test_server.py `BaseStartServer.test_start_server_1` (start_serving=False, serve_forever, close:
 * `srv.sockets == ()`, `is_serving()` false), test_base_events.py `test_create_server_cant_bind` (a failed
 * create_server leaves no socket open) and the task contract of test_tasks.py (`test_cancel`: a cancelled Task ends
 * cancelled, CancelledError is never turned into another error). Ours listens through Node callbacks, so a loop
 * iteration or more passes inside `startServing()`:
 *
 * - a Task cancelled there ended with `TransportError('cannot listen on …: cancelled')` instead of being cancelled
 *   (so `timeout()` / TaskGroup saw a foreign error), and a listen still in flight was not stopped;
 * - `close()` called meanwhile was undone: the listen finished afterwards and the closed server served again
 *   (`isServing()` true, a listener nobody would close, keeping Node alive);
 * - two concurrent calls each listened, and the first call's listeners were forgotten (never closed).
 *
 * Listeners are counted with `process.getActiveResourcesInfo()` ('TCPServerWrap'), before and after, bounded polls.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolBase, sleep } from '../../src/index.js';
import type { Server } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

const listeners = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;

/** Polls (at most ~2 s of 10 ms sleeps) until the listener count is `n`; returns the last count. */
async function settleTo(n: number): Promise<number> {
  for (let i = 0; i < 200 && listeners() !== n; i++) await sleep(0.01);
  return listeners();
}

describe('startServing races', () => {
  const lf = useLoop({ real: true });

  it('a Task cancelled inside createServer ends cancelled, and nothing is left listening (test_tasks test_cancel, test_base_events test_create_server_cant_bind)', async () => {
    const before = listeners();
    await lf.run(async () => {
      let made: Server | null = null;
      const task = lf.loop.createTask(async () => {
        made = await lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0);
      });
      await sleep(0); // the task runs up to its wait for the listen callback
      task.cancel();
      const err = await task.then(() => null, (e: unknown) => e);
      expect(task.cancelled()).toBe(true);
      expect(err).toMatchObject({ code: 'TW_CANCELLED' });
      expect(made).toBe(null);
      expect(await settleTo(before)).toBe(before);
    });
  });

  it('close() while startServing() listens: the server stays closed and its listener is closed (test_server test_start_server_1)', async () => {
    const before = listeners();
    await lf.run(async () => {
      const srv = await lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0, { startServing: false });
      const starting = lf.loop.createTask(async () => srv.startServing());
      await sleep(0);
      srv.close();
      await starting.then(() => null, () => null);
      expect(srv.isServing()).toBe(false);
      expect(srv.sockets).toEqual([]);
      expect(srv.address()).toBe(null);
      await srv.waitClosed();
      expect(await settleTo(before)).toBe(before);
    });
  });

  it('two concurrent startServing() calls listen once; close() leaves no listener (asyncio _start_serving is idempotent)', async () => {
    const before = listeners();
    await lf.run(async () => {
      const srv = await lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0, { startServing: false });
      const a = lf.loop.createTask(async () => srv.startServing());
      const b = lf.loop.createTask(async () => srv.startServing());
      await a;
      await b;
      expect(srv.isServing()).toBe(true);
      expect(srv.sockets.length).toBe(1);
      expect(listeners()).toBe(before + 1);
      srv.close();
      await srv.waitClosed();
      expect(await settleTo(before)).toBe(before);
    });
  });

  it('a cancelled startServing() caller does not stop a concurrent one (the listen is shared)', async () => {
    const before = listeners();
    await lf.run(async () => {
      const srv = await lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0, { startServing: false });
      const a = lf.loop.createTask(async () => srv.startServing());
      const b = lf.loop.createTask(async () => srv.startServing());
      await sleep(0);
      b.cancel();
      await a;
      await b.then(() => null, () => null);
      expect(b.cancelled()).toBe(true);
      expect(srv.isServing()).toBe(true);
      expect(listeners()).toBe(before + 1);
      srv.close();
      await srv.waitClosed();
      expect(await settleTo(before)).toBe(before);
    });
  });
});
