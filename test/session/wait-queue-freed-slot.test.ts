/**
 * A waiter that is done (cancelled by its Task, or failed by its call's timeout) frees its slot at once. The slot
 * was freed by the waiter's done callback, which the loop runs only in a later iteration (callbacks go through
 * callSoon, as in asyncio), so a call made in the same iteration as another one's timeout or cancel was refused with
 * "session call queue is full" although a slot had just been freed, and `size` still counted the finished waiter.
 */
import { describe, expect, it } from 'vitest';
import type { Future } from '../../src/index.js';
import { SessionClosed, TimeoutError } from '../../src/errors.js';
import { WaitQueue } from '../../src/session/wait-queue.js';
import { useLoop } from '../support/loop.js';

describe('WaitQueue: a finished waiter frees its slot at once', () => {
  const fx = useLoop();

  it('after a cancel, a new wait in the same iteration gets the slot', async () => {
    await fx.run(async () => {
      const q = new WaitQueue<Future<void>>(1, () => fx.loop.createFuture<void>());
      const first = q.wait();
      first.cancel();
      expect(q.size).toBe(0);
      const second = q.wait();
      expect(q.size).toBe(1);
      expect(() => q.wait()).toThrow(SessionClosed); // the bound still holds
      expect(q.wakeAll()).toBe(1);
      await second;
      expect(first.cancelled()).toBe(true);
    });
  });

  it('after a waiter failed (a call\'s timeout), a new wait in the same iteration gets the slot', async () => {
    await fx.run(async () => {
      const q = new WaitQueue<Future<void>>(2, () => fx.loop.createFuture<void>());
      const a = q.wait();
      const b = q.wait();
      a.setException(new TimeoutError('call found no connection within 1 s'));
      const c = q.wait();
      expect(q.size).toBe(2);
      q.close(new SessionClosed('closed'));
      await expect(a).rejects.toMatchObject({ code: 'TW_TIMEOUT' });
      await expect(b).rejects.toMatchObject({ code: 'TW_SESSION_CLOSED' });
      await expect(c).rejects.toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(q.size).toBe(0);
    });
  });
});
