import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { sleep } from '../../src/loop/index.js';
import type { Future } from '../../src/loop/index.js';
import { SessionClosed } from '../../src/errors.js';
import { WaitQueue } from '../../src/session/wait-queue.js';

const fx = useLoop(); // VirtualClock, autojump

describe('WaitQueue (bounded wait for a connection)', () => {
  it('wakes every waiter in arrival order', async () => {
    await fx.run(async () => {
      const q = new WaitQueue<Future<void>>(4, () => fx.loop.createFuture<void>());
      const record: number[] = [];
      const tasks = [1, 2, 3].map((i) => fx.loop.createTask(async () => { await q.wait(); record.push(i); }));
      await sleep(1);
      expect(q.size).toBe(3);
      expect(q.wakeAll()).toBe(3);
      await Promise.all(tasks);
      expect(record).toEqual([1, 2, 3]);
      expect(q.size).toBe(0);
      expect(fx.loop.time()).toBe(1);
    });
  });

  it('refuses a waiter beyond maxSize with SessionClosed, at once', async () => {
    await fx.run(async () => {
      const q = new WaitQueue<Future<void>>(2, () => fx.loop.createFuture<void>());
      q.wait(); q.wait();
      expect(() => q.wait()).toThrow(SessionClosed);
      try { q.wait(); } catch (e) { expect((e as SessionClosed).code).toBe('TW_SESSION_CLOSED'); expect((e as Error).message).toContain('2 calls'); }
      q.close();
    });
  });

  it('close fails every waiter and every later wait with the close reason', async () => {
    await fx.run(async () => {
      const q = new WaitQueue<Future<void>>(8, () => fx.loop.createFuture<void>());
      const w = q.wait();
      const reason = new SessionClosed('bye');
      q.close(reason);
      await expect(w).rejects.toBe(reason);
      expect(() => q.wait()).toThrow(reason);
      q.close(new SessionClosed('again'));
      expect(q.closedWith).toBe(reason);
    });
  });

  it('a cancelled waiter (its Task cancelled) frees its slot', async () => {
    await fx.run(async () => {
      const q = new WaitQueue<Future<void>>(1, () => fx.loop.createFuture<void>());
      const t = fx.loop.createTask(async () => { await q.wait(); });
      await sleep(0.5);
      expect(q.size).toBe(1);
      t.cancel();
      await expect(t).rejects.toMatchObject({ code: 'TW_CANCELLED' });
      expect(q.size).toBe(0);
      const w = q.wait();
      q.wakeAll();
      await w;
    });
  });

  it('maxSize 0 refuses every wait', () => {
    const q = new WaitQueue<Future<void>>(0, () => { throw new Error('never made'); });
    expect(() => q.wait()).toThrow(SessionClosed);
    expect(() => new WaitQueue(-1, () => null as never)).toThrow(RangeError);
  });
});
