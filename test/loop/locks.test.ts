/**
 * Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier: ports of CPython's test_locks (class and test
 * names in each title). The orderings depend on atomic task steps (docs/event-loop-internals.md#atomic-task-steps).
 */
import { describe, expect, it } from 'vitest';
import {
  Barrier,
  BoundedSemaphore,
  BrokenBarrierError,
  CancelledError,
  Condition,
  Event,
  InvalidStateError,
  Lock,
  Semaphore,
  TaskGroup,
  TimeoutError,
  gather,
  sleep,
  wait,
  timeout,
  waitFor,
} from '../../src/index.js';
import type { Task } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('LockTests', () => {
  const fx = useLoop();

  it('test_repr', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      expect(String(lock)).toBe('<Lock [unlocked]>');
      await lock.acquire();
      expect(String(lock)).toBe('<Lock [locked]>');
    });
  });

  it('test_acquire: FIFO', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      const result: number[] = [];
      expect(await lock.acquire()).toBe(true);
      const c = (n: number) => async (): Promise<boolean> => {
        if (await lock.acquire()) result.push(n);
        return true;
      };
      const t1 = fx.loop.createTask(c(1));
      const t2 = fx.loop.createTask(c(2));
      await sleep(0);
      expect(result).toEqual([]);
      lock.release();
      await sleep(0);
      expect(result).toEqual([1]);
      await sleep(0);
      expect(result).toEqual([1]);
      const t3 = fx.loop.createTask(c(3));
      lock.release();
      await sleep(0);
      expect(result).toEqual([1, 2]);
      lock.release();
      await sleep(0);
      expect(result).toEqual([1, 2, 3]);
      for (const t of [t1, t2, t3]) {
        expect(t.done()).toBe(true);
        expect(t.result()).toBe(true);
      }
    });
  });

  it('test_acquire_cancel', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      await lock.acquire();
      const task = fx.loop.createTask(() => lock.acquire());
      fx.loop.callSoon(() => task.cancel());
      await expect(task).rejects.toBeInstanceOf(CancelledError);
      expect(lock._waiters).toEqual([]);
    });
  });

  it('test_cancel_race: a cancelled waiter does not block the next one', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      const lockit = async (blocker: Promise<unknown> | null): Promise<void> => {
        await lock.acquire();
        try {
          if (blocker !== null) await blocker;
        } finally {
          lock.release();
        }
      };
      const fa = fx.loop.createFuture();
      const ta = fx.loop.createTask(() => lockit(fa));
      await sleep(0);
      expect(lock.locked()).toBe(true);
      const tb = fx.loop.createTask(() => lockit(null));
      await sleep(0);
      expect(lock._waiters!.length).toBe(1);
      const tc = fx.loop.createTask(() => lockit(null));
      await sleep(0);
      expect(lock._waiters!.length).toBe(2);
      fa.setResult(null);
      tb.cancel();
      expect(lock._waiters![0]!.cancelled()).toBe(true);
      await sleep(0);
      expect(lock.locked()).toBe(false);
      expect(ta.done()).toBe(true);
      expect(tb.cancelled()).toBe(true);
      await tc;
    });
  });

  it('test_cancel_release_race (issue 32734): only one holder', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      let lockCount = 0;
      let callCount = 0;
      const lockit = async (): Promise<void> => {
        callCount++;
        await lock.acquire();
        lockCount++;
      };
      await lock.acquire();
      const t1 = fx.loop.createTask(lockit);
      const t2 = fx.loop.createTask(lockit);
      const t3 = fx.loop.createTask(lockit);
      await sleep(0);
      fx.loop.callSoon(() => {
        t1.cancel();
        lock.release();
      });
      await expect(t1).rejects.toBeInstanceOf(CancelledError);
      expect(lockCount).toBe(1);
      expect(callCount).toBe(3);
      expect(t1.cancelled() && t2.done()).toBe(true);
      t3.cancel();
      await sleep(0);
      expect(t3.cancelled()).toBe(true);
    });
  });

  it('test_finished_waiter_cancelled: the wake-up passes to the next waiter', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      await lock.acquire();
      const tb = fx.loop.createTask(() => lock.acquire());
      await sleep(0);
      expect(lock._waiters!.length).toBe(1);
      const tc = fx.loop.createTask(() => lock.acquire());
      tb.cancel();
      lock.release();
      await sleep(0);
      expect(lock.locked()).toBe(true);
      expect(tb.cancelled()).toBe(true);
      await tc;
    });
  });

  it('test_release_not_acquired / test_release_no_waiters', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      expect(() => lock.release()).toThrow(InvalidStateError);
      await lock.acquire();
      lock.release();
      expect(lock.locked()).toBe(false);
    });
  });

  it('test_context_manager: withLock holds the lock and releases it, also on throw', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      expect(await lock.withLock(() => lock.locked())).toBe(true);
      expect(lock.locked()).toBe(false);
      await expect(
        lock.withLock(() => {
          throw new RangeError('x');
        }),
      ).rejects.toBeInstanceOf(RangeError);
      expect(lock.locked()).toBe(false);
    });
  });

  it('a lock is bound to the loop it was first used from', async () => {
    const lock = new Lock();
    await fx.run(async () => {
      await lock.acquire();
      const t = fx.loop.createTask(() => lock.acquire()); // a waiter: binds the lock to this loop
      await sleep(0);
      lock.release();
      await t;
      lock.release();
    });
    const { EventLoop, VirtualClock } = await import('../../src/index.js');
    const other = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    await other.runUntilComplete(async () => {
      await lock.acquire(); // free: no waiter Future needed
      const t = other.createTask(() => lock.acquire());
      await expect(t).rejects.toBeInstanceOf(InvalidStateError);
    });
    other.close();
  });
});

describe('test_ambiguous_loops: every primitive is bound to the loop it first waited on', () => {
  const fx = useLoop();

  it('Condition.wait() on a condition bound to another loop throws before releasing the lock; Event, Semaphore too', async () => {
    const cond = new Condition();
    const event = new Event();
    const sem = new Semaphore(0);
    await fx.run(async () => {
      const tc = fx.loop.createTask(() => cond.withLock(() => cond.wait()));
      const te = fx.loop.createTask(() => event.wait());
      const ts = fx.loop.createTask(() => sem.acquire());
      await sleep(0);
      await cond.withLock(() => cond.notify());
      event.set();
      sem.release();
      await gather(tc, te, ts);
    });
    const { EventLoop, VirtualClock } = await import('../../src/index.js');
    const other = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    try {
      await other.runUntilComplete(async () => {
        await cond.acquire(); // the lock is free: the fast path needs no loop
        await expect(cond.wait()).rejects.toThrow(/bound to a different event loop/);
        expect(cond.locked()).toBe(true);
        cond.release();
        event.clear();
        await expect(event.wait()).rejects.toThrow(/bound to a different event loop/);
        await expect(sem.acquire()).rejects.toThrow(/bound to a different event loop/);
      });
    } finally {
      other.close();
    }
  });
});

describe('EventTests', () => {
  const fx = useLoop();

  it('test_wait: [3, 1, 2]', async () => {
    await fx.run(async () => {
      const ev = new Event();
      expect(ev.isSet()).toBe(false);
      const result: number[] = [];
      const c = (n: number) => async (): Promise<void> => {
        if (await ev.wait()) result.push(n);
      };
      const t1 = fx.loop.createTask(c(1));
      const t2 = fx.loop.createTask(c(2));
      await sleep(0);
      expect(result).toEqual([]);
      const t3 = fx.loop.createTask(c(3));
      ev.set();
      await sleep(0);
      expect(result).toEqual([3, 1, 2]);
      for (const t of [t1, t2, t3]) {
        expect(t.done()).toBe(true);
        expect(t.result()).toBe(undefined);
      }
    });
  });

  it('test_wait_on_set', async () => {
    await fx.run(async () => {
      const ev = new Event();
      ev.set();
      expect(await ev.wait()).toBe(true);
    });
  });

  it('test_wait_cancel', async () => {
    await fx.run(async () => {
      const ev = new Event();
      const w = fx.loop.createTask(() => ev.wait());
      fx.loop.callSoon(() => w.cancel());
      await expect(w).rejects.toBeInstanceOf(CancelledError);
      expect(ev._waiters).toEqual([]);
    });
  });

  it('test_clear / test_clear_with_waiters', async () => {
    await fx.run(async () => {
      const ev = new Event();
      ev.set();
      ev.clear();
      expect(ev.isSet()).toBe(false);
      const result: number[] = [];
      const t = fx.loop.createTask(async () => {
        if (await ev.wait()) result.push(1);
        return true;
      });
      await sleep(0);
      ev.set();
      ev.clear();
      expect(ev.isSet()).toBe(false);
      ev.set();
      ev.set();
      expect(ev._waiters.length).toBe(1);
      await sleep(0);
      expect(result).toEqual([1]);
      expect(ev._waiters.length).toBe(0);
      expect(t.result()).toBe(true);
    });
  });
});

describe('ConditionTests', () => {
  const fx = useLoop();
  const waiter = (cond: Condition, result: number[], n: number, release = false) => async (): Promise<boolean> => {
    await cond.acquire();
    if (await cond.wait()) {
      result.push(n);
      if (release) cond.release();
    }
    return true;
  };

  it('test_wait', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      const result: number[] = [];
      const ts = [1, 2, 3].map((n) => fx.loop.createTask(waiter(cond, result, n)));
      await sleep(0);
      expect(result).toEqual([]);
      expect(cond.locked()).toBe(false);
      expect(await cond.acquire()).toBe(true);
      cond.notify();
      await sleep(0);
      expect(result).toEqual([]);
      expect(cond.locked()).toBe(true);
      cond.release();
      await sleep(0);
      expect(result).toEqual([1]);
      expect(cond.locked()).toBe(true);
      cond.notify(2);
      await sleep(0);
      expect(result).toEqual([1]);
      cond.release();
      await sleep(0);
      expect(result).toEqual([1, 2]);
      cond.release();
      await sleep(0);
      expect(result).toEqual([1, 2, 3]);
      expect(cond.locked()).toBe(true);
      for (const t of ts) expect(t.result()).toBe(true);
    });
  });

  it('test_wait_cancel: the lock is re-acquired before CancelledError leaves wait()', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      await cond.acquire();
      const w = fx.loop.createTask(() => cond.wait());
      fx.loop.callSoon(() => w.cancel());
      await expect(w).rejects.toBeInstanceOf(CancelledError);
      expect(cond._waiters).toEqual([]);
      expect(cond.locked()).toBe(true);
    });
  });

  it('test_wait_cancel_contested', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      await cond.acquire();
      const w = fx.loop.createTask(() => cond.wait());
      await sleep(0);
      expect(cond.locked()).toBe(false);
      await cond.acquire();
      cond.notify();
      fx.loop.callSoon(() => w.cancel());
      fx.loop.callSoon(() => cond.release());
      try {
        await w;
      } catch {
        // may be cancelled; either way the lock is held again
      }
      expect(cond.locked()).toBe(true);
    });
  });

  it('test_wait_cancel_after_notify (bpo-32841)', async () => {
    await fx.run(async () => {
      let waited = false;
      const cond = new Condition();
      const w = fx.loop.createTask(() =>
        cond.withLock(async () => {
          waited = true;
          await cond.wait();
        }),
      );
      await sleep(0);
      await cond.acquire();
      cond.notify();
      await sleep(0);
      w.cancel();
      await sleep(0);
      cond.release();
      await sleep(0);
      expect(w.cancelled()).toBe(true);
      expect(waited).toBe(true);
    });
  });

  it('test_wait_unacquired / test_notify_unacquired / test_notify_all_unacquired', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      await expect(cond.wait()).rejects.toBeInstanceOf(InvalidStateError);
      expect(() => cond.notify()).toThrow(InvalidStateError);
      expect(() => cond.notifyAll()).toThrow(InvalidStateError);
    });
  });

  it('test_wait_for', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      let presult = false;
      const result: number[] = [];
      const t = fx.loop.createTask(async () => {
        await cond.acquire();
        if (await cond.waitFor(() => presult)) {
          result.push(1);
          cond.release();
        }
        return true;
      });
      await sleep(0);
      expect(result).toEqual([]);
      await cond.acquire();
      cond.notify();
      cond.release();
      await sleep(0);
      expect(result).toEqual([]);
      presult = true;
      await cond.acquire();
      cond.notify();
      cond.release();
      await sleep(0);
      expect(result).toEqual([1]);
      expect(t.result()).toBe(true);
    });
  });

  it('test_wait_for_unacquired', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      expect(await cond.waitFor(() => [1, 2, 3])).toEqual([1, 2, 3]);
      await expect(cond.waitFor(() => false)).rejects.toBeInstanceOf(InvalidStateError);
    });
  });

  it('test_notify', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      const result: number[] = [];
      const ts = [1, 2, 3].map((n) => fx.loop.createTask(waiter(cond, result, n, true)));
      await sleep(0);
      await cond.acquire();
      cond.notify(1);
      cond.release();
      await sleep(0);
      expect(result).toEqual([1]);
      await cond.acquire();
      cond.notify(1);
      cond.notify(2048);
      cond.release();
      await sleep(0);
      expect(result).toEqual([1, 2, 3]);
      for (const t of ts) expect(t.result()).toBe(true);
    });
  });

  it('test_notify_all', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      const result: number[] = [];
      fx.loop.createTask(waiter(cond, result, 1, true));
      fx.loop.createTask(waiter(cond, result, 2, true));
      await sleep(0);
      await cond.acquire();
      cond.notifyAll();
      cond.release();
      await sleep(0);
      expect(result).toEqual([1, 2]);
    });
  });

  it('test_timeout_in_block: waitFor(() => cond.wait(), 0.5) times out and re-acquires the lock', async () => {
    await fx.run(async () => {
      const condition = new Condition();
      await condition.withLock(async () => {
        await expect(waitFor(() => condition.wait(), 0.5)).rejects.toBeInstanceOf(TimeoutError);
        expect(condition.locked()).toBe(true);
      });
      expect(condition.locked()).toBe(false);
    });
  });

  it('test_explicit_lock: a Condition over a given Lock shares it', async () => {
    await fx.run(async () => {
      const lock = new Lock();
      const cond = new Condition(lock);
      await lock.acquire();
      expect(cond.locked()).toBe(true);
      cond.release();
      expect(lock.locked()).toBe(false);
    });
  });

  it('test_cancelled_error_wakeup: the same CancelledError instance comes out', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      let raised: unknown = null;
      const task = fx.loop.createTask(() =>
        cond.withLock(async () => {
          try {
            await cond.waitFor(() => false);
          } catch (e) {
            raised = e;
            throw e;
          }
        }),
      );
      await sleep(0);
      task.cancel('foo');
      const err = await task.then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as CancelledError).message).toBe('foo');
      expect(err).toBe(raised);
    });
  });

  it('test_cancelled_error_re_aquire', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      let wake = false;
      let raised: unknown = null;
      const task = fx.loop.createTask(() =>
        cond.withLock(async () => {
          try {
            await cond.waitFor(() => wake);
          } catch (e) {
            raised = e;
            throw e;
          }
        }),
      );
      await sleep(0);
      await cond.acquire();
      wake = true;
      cond.notify();
      await sleep(0);
      task.cancel('foo');
      cond.release();
      const err = await task.then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as CancelledError).message).toBe('foo');
      expect(err).toBe(raised);
    });
  });

  for (const relock of [false, true]) {
    it(`${relock ? 'test_cancelled_wakeup_relock' : 'test_cancelled_wakeup'}: a cancel racing a notify loses no wake-up`, async () => {
      await fx.run(async () => {
        const condition = new Condition();
        let state = 0;
        const consumer = (): Promise<void> =>
          condition.withLock(async () => {
            for (;;) {
              await condition.waitFor(() => state !== 0);
              if (state < 0) return;
              state -= 1;
            }
          });
        const c = [fx.loop.createTask(consumer), fx.loop.createTask(consumer)];
        await sleep(0);
        await condition.withLock(async () => {
          state += 1;
          condition.notify(1);
          if (relock) await sleep(0);
          c[0]!.cancel();
          try {
            await timeout(0.01, () => condition.waitFor(() => state === 0));
          } catch (e) {
            if ((e as { code?: string }).code !== 'TW_TIMEOUT') throw e;
          }
          expect(state).toBe(0);
          state = -1;
          condition.notifyAll();
        });
        await c[1];
        await c[0]!.then(
          () => {},
          () => {},
        );
      });
    });
  }
});

describe('SemaphoreTests', () => {
  const fx = useLoop();

  it('test_initial_value_zero / test_semaphore_value', () => {
    expect(new Semaphore(0).locked()).toBe(true);
    expect(() => new Semaphore(-1)).toThrow(RangeError);
  });

  it('test_repr', async () => {
    await fx.run(async () => {
      const sem = new Semaphore();
      expect(String(sem)).toBe('<Semaphore [unlocked, value:1]>');
      await sem.acquire();
      expect(String(sem)).toBe('<Semaphore [locked]>');
    });
  });

  it('test_acquire', async () => {
    await fx.run(async () => {
      const sem = new Semaphore(3);
      const result: number[] = [];
      expect(await sem.acquire()).toBe(true);
      expect(await sem.acquire()).toBe(true);
      expect(sem.locked()).toBe(false);
      const c = (n: number) => async (): Promise<boolean> => {
        await sem.acquire();
        result.push(n);
        return true;
      };
      const t1 = fx.loop.createTask(c(1));
      const t2 = fx.loop.createTask(c(2));
      const t3 = fx.loop.createTask(c(3));
      await sleep(0);
      expect(result).toEqual([1]);
      expect(sem.locked()).toBe(true);
      expect(sem._waiters!.length).toBe(2);
      expect(sem.value).toBe(0);
      const t4 = fx.loop.createTask(c(4));
      sem.release();
      sem.release();
      expect(sem.value).toBe(0);
      await sleep(0);
      expect(sem.value).toBe(0);
      expect(result.length).toBe(3);
      expect(sem.locked()).toBe(true);
      expect(sem._waiters!.length).toBe(1);
      expect(t1.result()).toBe(true);
      const race = [t2, t3, t4];
      expect(race.filter((t) => t.done() && t.result()).length).toBe(2);
      sem.release();
      await gather(...race);
    });
  });

  it('test_acquire_cancel', async () => {
    await fx.run(async () => {
      const sem = new Semaphore();
      await sem.acquire();
      const a = fx.loop.createTask(() => sem.acquire());
      fx.loop.callSoon(() => a.cancel());
      await expect(a).rejects.toBeInstanceOf(CancelledError);
      expect((sem._waiters ?? []).every((w) => w.done())).toBe(true);
    });
  });

  it('test_acquire_cancel_before_awoken', async () => {
    await fx.run(async () => {
      const sem = new Semaphore(0);
      const ts = [0, 1, 2, 3].map(() => fx.loop.createTask(() => sem.acquire()));
      await sleep(0);
      ts[0]!.cancel();
      ts[1]!.cancel();
      sem.release();
      await sleep(0);
      await sleep(0);
      expect(ts[2]!.done()).toBe(true);
      expect(ts[3]!.done()).toBe(false);
      ts[2]!.cancel();
      ts[3]!.cancel();
      await sleep(0);
    });
  });

  it('test_acquire_hang', async () => {
    await fx.run(async () => {
      const sem = new Semaphore(0);
      const t1 = fx.loop.createTask(() => sem.acquire());
      const t2 = fx.loop.createTask(() => sem.acquire());
      await sleep(0);
      t1.cancel();
      sem.release();
      await sleep(0);
      await sleep(0);
      expect(sem.locked()).toBe(true);
      expect(t2.done()).toBe(true);
    });
  });

  it('test_acquire_no_hang', async () => {
    await fx.run(async () => {
      const sem = new Semaphore(1);
      let t2: Task<unknown> | null = null;
      const t1 = fx.loop.createTask(async () => {
        await sem.withLock(() => sleep(0));
        t2!.cancel();
      });
      t2 = fx.loop.createTask(() =>
        sem.withLock(() => {
          throw new Error('must not get the permit');
        }),
      );
      const [r1, r2] = await gather(t1, t2!, { returnExceptions: true });
      expect(r1).toBe(undefined);
      expect(r2).toBeInstanceOf(CancelledError);
      await waitFor(sem.acquire(), 1.0);
    });
  });

  it('test_release_not_acquired (BoundedSemaphore) / test_release_no_waiters', async () => {
    await fx.run(async () => {
      expect(() => new BoundedSemaphore().release()).toThrow(InvalidStateError);
      const sem = new Semaphore();
      await sem.acquire();
      expect(sem.locked()).toBe(true);
      sem.release();
      expect(sem.locked()).toBe(false);
    });
  });

  it('test_acquire_fifo_order', async () => {
    await fx.run(async () => {
      const sem = new Semaphore(1);
      const result: string[] = [];
      const coro = (tag: string) => async (): Promise<void> => {
        await sem.acquire();
        result.push(`${tag}_1`);
        await sleep(0.01);
        sem.release();
        await sem.acquire();
        result.push(`${tag}_2`);
        await sleep(0.01);
        sem.release();
      };
      await TaskGroup.run((tg) => {
        tg.createTask(coro('c1'));
        tg.createTask(coro('c2'));
        tg.createTask(coro('c3'));
      });
      expect(result).toEqual(['c1_1', 'c2_1', 'c3_1', 'c1_2', 'c2_2', 'c3_2']);
    });
  });

  it('test_acquire_fifo_order_2', async () => {
    await fx.run(async () => {
      const sem = new Semaphore(1);
      const result: number[] = [];
      const t1 = fx.loop.createTask(async () => {
        await sem.acquire();
        result.push(1);
      });
      const t2 = fx.loop.createTask(async () => {
        await sem.acquire();
        result.push(2);
        sem.release();
        await sem.acquire();
        result.push(4);
      });
      const t3 = fx.loop.createTask(async () => {
        await sem.acquire();
        result.push(3);
      });
      await sleep(0);
      sem.release();
      sem.release();
      await gather(t1, t2, t3);
      expect(result).toEqual([1, 2, 3, 4]);
    });
  });

  it('test_acquire_fifo_order_3', async () => {
    await fx.run(async () => {
      const sem = new Semaphore(0);
      const result: number[] = [];
      const ts = [1, 2, 3].map((n) =>
        fx.loop.createTask(async () => {
          await sem.acquire();
          result.push(n);
        }),
      );
      await sleep(0);
      ts[0]!.cancel();
      await sleep(0);
      sem.release();
      sem.release();
      await gather(...ts, { returnExceptions: true });
      expect(result).toEqual([2, 3]);
    });
  });

  it('test_acquire_fifo_order_4: one acquire wakes several waiters in FIFO order', async () => {
    await fx.run(async () => {
      const sem = new Semaphore(0);
      const result: number[] = [];
      let t4: Task<void> | null = null;
      const t1 = fx.loop.createTask(async () => {
        expect(sem.value).toBe(0);
        await sem.acquire();
        expect(sem.value).toBe(0);
        t4 = fx.loop.createTask(async () => {
          result.push(4);
        });
        result.push(1);
      });
      const t2 = fx.loop.createTask(async () => {
        sem.release();
        sem.release();
        sem.release();
        expect(sem.value).toBe(2);
        expect(sem.locked()).toBe(true);
        await sem.acquire();
        result.push(2);
      });
      const t3 = fx.loop.createTask(async () => {
        await sem.acquire();
        expect(sem.locked()).toBe(true);
        result.push(3);
      });
      await sleep(0);
      expect(sem.value).toBe(2);
      expect(sem._waiters!.length).toBe(3);
      await sleep(0);
      await gather(t1, t2, t3, t4!);
      expect(result).toEqual([1, 2, 3, 4]);
    });
  });
});

describe('BarrierTests', () => {
  const fx = useLoop();

  it('test_barrier / test_wait_return: every party gets a distinct index, all released together', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(3);
      const rec: string[] = [];
      const ts = [0, 1, 2].map((i) =>
        fx.loop.createTask(async () => {
          rec.push(`in${i}`);
          const idx = await barrier.wait();
          rec.push(`out${i}`);
          return idx;
        }),
      );
      const idx = await gather(...ts);
      expect([...idx].sort()).toEqual([0, 1, 2]);
      expect(rec.slice(0, 3)).toEqual(['in0', 'in1', 'in2']);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
      expect(String(barrier)).toBe('<Barrier [filling, waiters:0/3]>');
    });
  });

  it('test_filling_tasks_wait_for_draining: the barrier can be reused', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(2);
      const rounds: number[] = [];
      const worker = async (): Promise<void> => {
        for (let r = 0; r < 3; r++) {
          await barrier.wait();
          rounds.push(r);
        }
      };
      await gather(worker, worker);
      expect(rounds).toEqual([0, 0, 1, 1, 2, 2]);
    });
  });

  it('test_abort_barrier / test_reset_barrier: waiters get BrokenBarrierError', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(3);
      const t = fx.loop.createTask(() => barrier.wait());
      await sleep(0);
      expect(barrier.nWaiting).toBe(1);
      await barrier.abort();
      await expect(t).rejects.toBeInstanceOf(BrokenBarrierError);
      expect(barrier.broken).toBe(true);
      await expect(barrier.wait()).rejects.toBeInstanceOf(BrokenBarrierError);
      const b2 = new Barrier(2);
      const t2 = fx.loop.createTask(() => b2.wait());
      await sleep(0);
      await b2.reset();
      await expect(t2).rejects.toBeInstanceOf(BrokenBarrierError);
      expect(b2.broken).toBe(false);
      const [a, b] = await gather(
        () => b2.wait(),
        () => b2.wait(),
      );
      expect([a, b].sort()).toEqual([0, 1]);
    });
  });

  it('test_barrier_parties', () => {
    expect(() => new Barrier(0)).toThrow(RangeError);
    expect(new Barrier(4).parties).toBe(4);
  });
});

describe('BarrierTests (filling, draining, reset, abort)', () => {
  const fx = useLoop();
  const N = 5;
  const makeTasks = (n: number, fn: () => Promise<unknown>): Task<unknown>[] => Array.from({ length: n }, () => fx.loop.createTask(fn));
  const gatherTasks = async <T,>(n: number, fn: () => Promise<T>): Promise<T[]> => [...(await gather(...(makeTasks(n, fn) as Task<T>[])))] as T[];

  it('test_repr: filling, waiters:k/N, draining, resetting, broken', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      expect(String(barrier)).toContain('filling');
      const waiters: Task<unknown>[] = [];
      const incr = 2;
      for (let i = 0; i < incr; i++) waiters.push(fx.loop.createTask(() => barrier.wait()));
      await sleep(0);
      expect(String(barrier)).toContain(`waiters:${incr}/${N}`);
      expect(String(barrier)).toContain('filling');
      for (let i = barrier.parties - barrier.nWaiting; i > 0; i--) waiters.push(fx.loop.createTask(() => barrier.wait()));
      await sleep(0);
      expect(String(barrier)).toContain('draining');
      for (let i = 0; i < incr; i++) waiters.push(fx.loop.createTask(() => barrier.wait()));
      await sleep(0);
      await barrier.reset();
      expect(String(barrier)).toContain('resetting');
      for (let i = 0; i < incr; i++) waiters.push(fx.loop.createTask(() => barrier.wait()));
      await sleep(0);
      await barrier.abort();
      expect(String(barrier)).toBe('<Barrier [broken]>');
      expect(barrier.broken).toBe(true);
      await gather(...waiters, { returnExceptions: true });
    });
  });

  it('test_context_manager / test_filling_one_task', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(3);
      const results: number[] = [];
      await gatherTasks(3, async () => {
        results.push(await barrier.wait());
      });
      expect(results.sort()).toEqual([0, 1, 2]);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
      const one = new Barrier(1);
      expect(await one.wait()).toBe(0);
      expect(one.nWaiting).toBe(0);
      expect(one.broken).toBe(false);
    });
  });

  it('test_filling_one_task_twice', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(1);
      const t1 = fx.loop.createTask(() => barrier.wait());
      await sleep(0);
      expect(barrier.nWaiting).toBe(0);
      const t2 = fx.loop.createTask(() => barrier.wait());
      await sleep(0);
      expect(t1.result()).toBe(t2.result());
      expect(t1.done()).toBe(t2.done());
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  });

  it('test_filling_task_by_task', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(3);
      const t1 = fx.loop.createTask(() => barrier.wait());
      await sleep(0);
      expect(barrier.nWaiting).toBe(1);
      expect(String(barrier)).toContain('filling');
      const t2 = fx.loop.createTask(() => barrier.wait());
      await sleep(0);
      expect(barrier.nWaiting).toBe(2);
      expect(String(barrier)).toContain('filling');
      const t3 = fx.loop.createTask(() => barrier.wait());
      await sleep(0);
      await wait([t1, t2, t3]);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  });

  it('test_filling_tasks_wait_twice / test_filling_tasks_check_return_value', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results: boolean[] = [];
      const res = await gatherTasks(N, async () => {
        await barrier.wait();
        results.push(true);
        const i = await barrier.wait();
        results.push(false);
        return i;
      });
      expect(results.length).toBe(N * 2);
      expect(results.filter((x) => x).length).toBe(N);
      expect(results.filter((x) => !x).length).toBe(N);
      expect(res.sort()).toEqual([0, 1, 2, 3, 4]);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  });

  it('test_draining_state: the last task out sees the barrier filling again', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results: boolean[] = [];
      await gatherTasks(N, async () => {
        await barrier.wait();
        results.push(String(barrier).includes('draining'));
      });
      expect(results.length).toBe(N);
      expect(results[N - 1]).toBe(false);
      expect(results.slice(0, N - 1).every((x) => x)).toBe(true);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  });

  it('test_blocking_tasks_while_draining', async () => {
    await fx.run(async () => {
      const rewait = 2;
      const barrier = new Barrier(N);
      const barrierNowaiting = new Barrier(N - rewait);
      let rewaitN = rewait;
      await gatherTasks(N, async () => {
        await barrier.wait();
        if (rewaitN > 0) {
          rewaitN--;
          await barrier.wait();
        } else {
          await barrierNowaiting.wait();
          await barrier.wait();
        }
      });
      expect(barrier.nWaiting).toBe(0);
    });
  });

  it('test_filling_tasks_cancel_one', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(3);
      const results: boolean[] = [];
      const coro = async (): Promise<void> => {
        await barrier.wait();
        results.push(true);
      };
      const t1 = fx.loop.createTask(coro);
      await sleep(0);
      expect(barrier.nWaiting).toBe(1);
      const t2 = fx.loop.createTask(coro);
      await sleep(0);
      expect(barrier.nWaiting).toBe(2);
      t1.cancel();
      await sleep(0);
      expect(barrier.nWaiting).toBe(1);
      await expect(t1).rejects.toBeInstanceOf(CancelledError);
      expect(t1.cancelled()).toBe(true);
      const t3 = fx.loop.createTask(coro);
      await sleep(0);
      expect(barrier.nWaiting).toBe(2);
      const t4 = fx.loop.createTask(coro);
      await gather(t2, t3, t4);
      expect(results).toEqual([true, true, true]);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  });

  it('test_reset_barrier / test_abort_barrier: on an empty barrier', async () => {
    await fx.run(async () => {
      const b1 = new Barrier(1);
      fx.loop.createTask(() => b1.reset());
      await sleep(0);
      expect(b1.nWaiting).toBe(0);
      expect(b1.broken).toBe(false);
      const b2 = new Barrier(1);
      fx.loop.createTask(() => b2.abort());
      await sleep(0);
      expect(b2.nWaiting).toBe(0);
      expect(b2.broken).toBe(true);
    });
  });

  it('test_reset_barrier_while_tasks_waiting', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results: boolean[] = [];
      const tasks = makeTasks(N - 1, async () => {
        try {
          await barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          results.push(true);
        }
      });
      await sleep(0);
      fx.loop.createTask(() => barrier.reset());
      await gather(...tasks);
      expect(results).toEqual(Array(N - 1).fill(true));
      expect(barrier.nWaiting).toBe(0);
      expect(String(barrier)).not.toContain('resetting');
      expect(barrier.broken).toBe(false);
    });
  });

  it('test_reset_barrier_when_tasks_half_draining', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const restOfTasks = Math.floor(N / 2);
      await gatherTasks(N, async () => {
        try {
          await barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          results1.push(true);
          return;
        }
        if (restOfTasks === barrier._count) await barrier.reset();
      });
      expect(results1).toEqual(Array(restOfTasks).fill(true));
      expect(barrier.nWaiting).toBe(0);
      expect(String(barrier)).not.toContain('resetting');
      expect(barrier.broken).toBe(false);
    });
  });

  it('test_reset_barrier_when_tasks_half_draining_half_blocking', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const blockingTasks = Math.floor(N / 2);
      let count = 0;
      await gatherTasks(N, async () => {
        try {
          await barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          results1.push(true);
          await barrier.wait();
          return;
        }
        count++;
        if (count > blockingTasks) {
          await barrier.reset();
          await barrier.wait();
        } else {
          try {
            await barrier.wait();
          } catch (e) {
            if (!(e instanceof BrokenBarrierError)) throw e;
            results2.push(true);
          }
        }
      });
      expect(results1).toEqual(Array(blockingTasks).fill(true));
      expect(results2).toEqual([]);
      expect(barrier.nWaiting).toBe(0);
      expect(String(barrier)).not.toContain('resetting');
      expect(barrier.broken).toBe(false);
    });
  });

  it('test_reset_barrier_while_tasks_waiting_and_waiting_again', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const tasks = makeTasks(N - 1, async () => {
        try {
          await barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          results1.push(true);
        } finally {
          await barrier.wait();
          results2.push(true);
        }
      });
      fx.loop.createTask(() => barrier.reset());
      await sleep(0);
      fx.loop.createTask(async () => {
        await barrier.wait();
        results2.push(true);
      });
      await gather(...tasks);
      expect(barrier.broken).toBe(false);
      expect(results1).toEqual(Array(N - 1).fill(true));
      expect(results2).toEqual(Array(N).fill(true));
      expect(barrier.nWaiting).toBe(0);
    });
  });

  it('test_reset_barrier_while_tasks_draining', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const results3: boolean[] = [];
      let count = 0;
      await gatherTasks(N, async () => {
        await barrier.wait();
        count++;
        if (count === N) {
          await barrier.reset();
          await barrier.wait();
        } else {
          try {
            await barrier.wait();
            results1.push(true);
          } catch {
            results2.push(true);
          }
        }
        await barrier.wait();
        results3.push(true);
      });
      expect(barrier.broken).toBe(false);
      expect(results1).toEqual(Array(N - 1).fill(true));
      expect(results2).toEqual([]);
      expect(results3).toEqual(Array(N).fill(true));
      expect(barrier.nWaiting).toBe(0);
    });
  });

  it('test_abort_barrier_when_tasks_half_draining_half_blocking', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const blockingTasks = Math.floor(N / 2);
      let count = 0;
      await gatherTasks(N, async () => {
        try {
          await barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          results1.push(true);
          return;
        }
        count++;
        if (count > blockingTasks) {
          await barrier.abort();
        } else {
          try {
            await barrier.wait();
          } catch (e) {
            if (!(e instanceof BrokenBarrierError)) throw e;
            results2.push(true);
          }
        }
      });
      expect(barrier.broken).toBe(true);
      expect(results1).toEqual(Array(blockingTasks).fill(true));
      expect(results2).toEqual(Array(N - blockingTasks - 1).fill(true));
      expect(barrier.nWaiting).toBe(0);
      expect(String(barrier)).not.toContain('resetting');
    });
  });

  it('test_abort_barrier_when_exception', async () => {
    await fx.run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      class Boom extends Error {}
      await gatherTasks(N, async () => {
        try {
          const i = await barrier.wait();
          if (i === Math.floor(N / 2)) throw new Boom();
          await barrier.wait();
          results1.push(true);
        } catch (e) {
          if (e instanceof BrokenBarrierError) results2.push(true);
          else if (e instanceof Boom) await barrier.abort();
          else throw e;
        }
      });
      expect(barrier.broken).toBe(true);
      expect(results1).toEqual([]);
      expect(results2).toEqual(Array(N - 1).fill(true));
      expect(barrier.nWaiting).toBe(0);
    });
  });

  it('test_abort_barrier_when_exception_then_resetting', async () => {
    await fx.run(async () => {
      const barrier1 = new Barrier(N);
      const barrier2 = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const results3: boolean[] = [];
      class Boom extends Error {}
      await gatherTasks(N, async () => {
        try {
          const i = await barrier1.wait();
          if (i === Math.floor(N / 2)) throw new Boom();
          await barrier1.wait();
          results1.push(true);
        } catch (e) {
          if (e instanceof BrokenBarrierError) results2.push(true);
          else if (e instanceof Boom) await barrier1.abort();
          else throw e;
        }
        const i = await barrier2.wait();
        if (i === Math.floor(N / 2)) await barrier1.reset();
        await barrier2.wait();
        await barrier1.wait();
        results3.push(true);
      });
      expect(barrier1.broken).toBe(false);
      expect(results1).toEqual([]);
      expect(results2).toEqual(Array(N - 1).fill(true));
      expect(results3).toEqual(Array(N).fill(true));
      expect(barrier1.nWaiting).toBe(0);
    });
  });
});
