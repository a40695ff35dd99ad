/**
 * gather, shield, wait, asCompleted (ports of CPython test_tasks) and waitFor (test_waitfor): each combinator's
 * cancellation rules as asyncio documents them.
 */
import { describe, expect, it } from 'vitest';
import {
  ALL_COMPLETED,
  CancelledError,
  EventLoop,
  FIRST_COMPLETED,
  FIRST_EXCEPTION,
  InvalidStateError,
  TimeoutError,
  VirtualClock,
  asCompleted,
  gather,
  shield,
  sleep,
  wait,
  waitFor,
} from '../../src/index.js';
import type { Future, Task } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('gather (test_tasks GatherTestsBase / CoroutineGatherTests)', () => {
  const fx = useLoop();

  it('test_constructor_empty_sequence: resolves to []', async () => {
    expect(await fx.run(() => gather())).toEqual([]);
  });

  it('test_result_exception_success: results in argument order, not completion order', async () => {
    const r = await fx.run(() => gather(sleep(3, 'a'), sleep(1, 'b'), async () => 'c', Promise.resolve('d')));
    expect(r).toEqual(['a', 'b', 'c', 'd']);
    expect(fx.loop.time()).toBe(3);
  });

  it('test_one_exception: the first exception fails gather; the siblings keep running', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      const err = new RangeError('boom');
      const a = fx.loop.createTask(async () => {
        await sleep(1);
        throw err;
      });
      const b = fx.loop.createTask(async () => {
        await sleep(2);
        rec.push('b finished');
      });
      await expect(gather(a, b)).rejects.toBe(err);
      expect(b.done()).toBe(false);
      await b;
    });
    expect(rec).toEqual(['b finished']);
  });

  it('test_return_exceptions: exceptions and CancelledErrors are results', async () => {
    const r = await fx.run(async () => {
      const a = fx.loop.createFuture<number>();
      const b = fx.loop.createFuture();
      const c = fx.loop.createFuture();
      const g = gather(a, b, c, { returnExceptions: true });
      a.setResult(1);
      b.setException(new RangeError('x'));
      c.cancel('gone');
      return g;
    });
    expect(r[0]).toBe(1);
    expect(r[1]).toBeInstanceOf(RangeError);
    expect(r[2]).toBeInstanceOf(CancelledError);
    expect((r[2] as CancelledError).message).toBe('gone');
  });

  it('test_one_cancellation: a cancelled child fails gather with CancelledError, gather itself is not cancelled', async () => {
    await fx.run(async () => {
      const a = fx.loop.createFuture();
      const b = fx.loop.createFuture();
      const g = gather(a, b);
      a.cancel();
      await expect(g).rejects.toBeInstanceOf(CancelledError);
      expect(g.cancelled()).toBe(false);
      expect(b.cancelled()).toBe(false);
    });
  });

  it('test_cancel_gather_1 / test_gather_shield-like: cancelling gather cancels every child', async () => {
    await fx.run(async () => {
      const children: Task<void>[] = [0, 1, 2].map(() => fx.loop.createTask(() => sleep(10)));
      const g = gather(...children);
      await sleep(0);
      expect(g.cancel('stop')).toBe(true);
      expect(g.done()).toBe(false); // like Task.cancel: done once the children are
      const err = await g.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CancelledError);
      expect(children.every((c) => c.cancelled())).toBe(true);
    });
  });

  it('issue 32684: a cancelled gather propagates the cancel even with returnExceptions', async () => {
    await fx.run(async () => {
      const g = gather(
        () => sleep(10),
        () => sleep(10),
        { returnExceptions: true },
      );
      await sleep(0);
      g.cancel();
      await expect(g).rejects.toBeInstanceOf(CancelledError);
    });
  });

  it('cancelling the task awaiting gather cancels the gather and its children', async () => {
    await fx.run(async () => {
      const kids: Task<void>[] = [];
      const outer = fx.loop.createTask(async () => {
        kids.push(fx.loop.createTask(() => sleep(10)), fx.loop.createTask(() => sleep(10)));
        await gather(...kids);
      });
      await sleep(0);
      await sleep(0);
      outer.cancel();
      await expect(outer).rejects.toBeInstanceOf(CancelledError);
      expect(kids.every((k) => k.cancelled())).toBe(true);
    });
  });

  it('test_duplicate_coroutines-like: the same Future twice is one child, with its result twice', async () => {
    const r = await fx.run(async () => {
      const f = sleep(1, 'x');
      return gather(f, f);
    });
    expect(r).toEqual(['x', 'x']);
  });

  it('cancelling gather after it failed cancels nothing (asyncio docs)', async () => {
    await fx.run(async () => {
      const a = fx.loop.createTask(async () => {
        throw new RangeError('early');
      });
      const b = fx.loop.createTask(() => sleep(5));
      const g = gather(a, b);
      await expect(g).rejects.toBeInstanceOf(RangeError);
      expect(g.cancel()).toBe(false);
      expect(b.cancelled()).toBe(false);
      await b;
    });
  });
});

describe('shield (test_tasks)', () => {
  const fx = useLoop();

  it('test_shield_result', async () => {
    await fx.run(async () => {
      const inner = fx.loop.createFuture<number>();
      const outer = shield(inner);
      inner.setResult(42);
      expect(await outer).toBe(42);
    });
  });

  it('test_shield_exception', async () => {
    await fx.run(async () => {
      const inner = fx.loop.createFuture();
      const outer = shield(inner);
      await sleep(0);
      const exc = new RangeError('expected');
      inner.setException(exc);
      await sleep(0);
      await sleep(0);
      expect(outer.exception()).toBe(exc);
    });
  });

  it('test_shield_cancel_inner: cancelling the inner cancels the outer', async () => {
    await fx.run(async () => {
      const inner = fx.loop.createFuture();
      const outer = shield(inner);
      await sleep(0);
      inner.cancel();
      await sleep(0);
      await sleep(0);
      expect(outer.cancelled()).toBe(true);
    });
  });

  it('test_shield_cancel_outer: the inner keeps running', async () => {
    await fx.run(async () => {
      const inner = fx.loop.createFuture<number>();
      const outer = shield(inner);
      await sleep(0);
      outer.cancel();
      await sleep(0);
      expect(outer.cancelled()).toBe(true);
      expect(inner.cancelled()).toBe(false);
      expect(inner._cb0 === null && inner._cbs === null).toBe(true); // outer's callback removed
      inner.setResult(1);
    });
  });

  it('test_shield_effect: cancelling the caller leaves the shielded task running; the caller sees CancelledError', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      const inner = fx.loop.createTask(async () => {
        await sleep(2);
        rec.push('inner done');
        return 'v';
      });
      const caller = fx.loop.createTask(async () => {
        await shield(inner);
        rec.push('caller continued?');
      });
      await sleep(1);
      caller.cancel();
      await expect(caller).rejects.toBeInstanceOf(CancelledError);
      expect(inner.cancelled()).toBe(false);
      expect(await inner).toBe('v');
    });
    expect(rec).toEqual(['inner done']);
  });

  it('test_shield_shortcut: a done inner is returned as is', async () => {
    await fx.run(async () => {
      const f = fx.loop.createFuture<number>();
      f.setResult(42);
      expect(shield(f)).toBe(f);
    });
  });
});

describe('wait (test_tasks test_wait*)', () => {
  const fx = useLoop();

  it('test_wait: ALL_COMPLETED returns [done, pending]', async () => {
    await fx.run(async () => {
      const a = fx.loop.createTask(() => sleep(0.1, 'a'));
      const b = fx.loop.createTask(() => sleep(0.15, 'b'));
      const [done, pending] = await wait([b, a]);
      expect(done).toEqual(new Set([a, b]));
      expect(pending.size).toBe(0);
      expect(fx.loop.time()).toBeCloseTo(0.15, 9);
    });
  });

  it('test_wait_first_completed', async () => {
    await fx.run(async () => {
      const a = fx.loop.createTask(() => sleep(10, 'a'));
      const b = fx.loop.createTask(() => sleep(0.1, 'b'));
      const [done, pending] = await wait([b, a], { returnWhen: FIRST_COMPLETED });
      expect(done).toEqual(new Set([b]));
      expect(pending).toEqual(new Set([a]));
      expect(a.done()).toBe(false);
      a.cancel();
    });
  });

  it('test_wait_first_exception / test_wait_first_exception_in_wait', async () => {
    await fx.run(async () => {
      const a = fx.loop.createTask(() => sleep(10, 'a'));
      const b = fx.loop.createTask(async () => {
        await sleep(0.01);
        throw new RangeError('b failed');
      });
      const [done, pending] = await wait([b, a], { returnWhen: FIRST_EXCEPTION });
      expect(done).toEqual(new Set([b]));
      expect(pending).toEqual(new Set([a]));
      expect(b.exception()).toBeInstanceOf(RangeError);
      a.cancel();
    });
  });

  it('test_wait_with_timeout: returns on timeout and cancels nothing', async () => {
    await fx.run(async () => {
      const a = fx.loop.createTask(() => sleep(0.1, 'a'));
      const b = fx.loop.createTask(() => sleep(0.15, 'b'));
      const [done, pending] = await wait([a, b], { timeout: 0.11 });
      expect(done).toEqual(new Set([a]));
      expect(pending).toEqual(new Set([b]));
      expect(b.cancelled()).toBe(false);
      expect(fx.loop.time()).toBeCloseTo(0.11, 9);
      await b;
    });
  });

  it('test_wait_errors: empty set and bad returnWhen', async () => {
    await fx.run(async () => {
      await expect(wait([])).rejects.toBeInstanceOf(InvalidStateError);
      await expect(wait([sleep(1)], { returnWhen: 'bogus' as typeof ALL_COMPLETED })).rejects.toBeInstanceOf(TypeError);
    });
  });

  it('test_yield_wait_does_not_shield_cancel: cancelling the waiter leaves the waited-for running', async () => {
    let proof = 0;
    await fx.run(async () => {
      const waiter = fx.loop.createFuture();
      const inner = fx.loop.createTask(async () => {
        await waiter;
        proof += 1;
      });
      const f = fx.loop.createTask(async () => {
        await wait([inner]);
        proof += 100;
      });
      await sleep(0);
      f.cancel();
      await expect(f).rejects.toBeInstanceOf(CancelledError);
      waiter.setResult(null);
      await inner;
    });
    expect(proof).toBe(1);
  });
});

describe('asCompleted (test_tasks test_as_completed*)', () => {
  const fx = useLoop();

  it('async iteration yields the original tasks in completion order', async () => {
    await fx.run(async () => {
      const a = fx.loop.createTask(() => sleep(0.3, 'a'));
      const b = fx.loop.createTask(() => sleep(0.1, 'b'));
      const c = fx.loop.createTask(() => sleep(0.2, 'c'));
      const seen: unknown[] = [];
      for await (const f of asCompleted([a, b, c])) {
        seen.push(f === a ? 'A' : f === b ? 'B' : 'C', await f, fx.loop.time());
      }
      expect(seen).toEqual(['B', 'b', 0.1, 'C', 'c', 0.2, 'A', 'a', 0.3]);
    });
  });

  it('plain iteration yields promises of the next result (the pre-3.13 form)', async () => {
    await fx.run(async () => {
      const out: string[] = [];
      for (const p of asCompleted([sleep(0.2, 'x'), sleep(0.1, 'y')])) out.push(await p);
      expect(out).toEqual(['y', 'x']);
    });
  });

  it('test_as_completed_with_timeout: TimeoutError once the timeout passes', async () => {
    await fx.run(async () => {
      const a = fx.loop.createTask(() => sleep(0.1, 'a'));
      const b = fx.loop.createTask(() => sleep(10, 'b'));
      const got: unknown[] = [];
      try {
        for await (const f of asCompleted([a, b], { timeout: 0.5 })) got.push(await f);
      } catch (e) {
        got.push((e as TimeoutError).code, fx.loop.time());
      }
      expect(got).toEqual(['a', 'TW_TIMEOUT', 0.5]);
      b.cancel();
    });
  });

  it('test_as_completed_duplicate_coroutines-like: duplicates count once', async () => {
    await fx.run(async () => {
      const f = sleep(0.1, 'once');
      const out: unknown[] = [];
      for await (const x of asCompleted([f, f])) out.push(await x);
      expect(out).toEqual(['once']);
    });
  });
});

describe('waitFor (test_waitfor)', () => {
  const fx = useLoop();

  function slowTask(): { run: () => Promise<void>; exited: boolean } {
    const st = {
      exited: false,
      run: async (): Promise<void> => {
        try {
          await sleep(10);
        } finally {
          st.exited = true;
        }
      },
    };
    return st;
  }

  it('test_asyncio_wait_for_cancelled: cancelling waitFor cancels the inner', async () => {
    await fx.run(async () => {
      const t = slowTask();
      const w = fx.loop.createTask(() => waitFor(t.run, 20));
      await sleep(0);
      w.cancel();
      await wait([w]);
      expect(t.exited).toBe(true);
    });
  });

  it('test_asyncio_wait_for_timeout', async () => {
    await fx.run(async () => {
      const t = slowTask();
      await expect(waitFor(t.run, 5)).rejects.toBeInstanceOf(TimeoutError);
      expect(t.exited).toBe(true);
    });
  });

  it('test_wait_for_timeout_less_then_0_or_0_future_done', async () => {
    await fx.run(async () => {
      const fut = fx.loop.createFuture<string>();
      fut.setResult('done');
      expect(await waitFor(fut, 0)).toBe('done');
    });
  });

  it('test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started', async () => {
    let started = false;
    await fx.run(async () => {
      await expect(
        waitFor(async () => {
          started = true;
        }, 0),
      ).rejects.toBeInstanceOf(TimeoutError);
    });
    expect(started).toBe(false);
  });

  it('test_wait_for_timeout_less_then_0_or_0', async () => {
    await fx.run(async () => {
      for (const t of [0, -1]) {
        let running: boolean | null = null;
        const started = fx.loop.createFuture();
        const fut = fx.loop.createTask(async () => {
          running = true;
          started.setResult(null);
          try {
            await sleep(10);
          } finally {
            running = false;
          }
          return 'done';
        });
        await started;
        await expect(waitFor(fut, t)).rejects.toBeInstanceOf(TimeoutError);
        expect(fut.cancelled()).toBe(true);
        expect(running).toBe(false);
      }
    });
  });

  it('test_wait_for: times out, cancels the inner task and waits for it', async () => {
    await fx.run(async () => {
      let running: boolean | null = null;
      const fut = fx.loop.createTask(async () => {
        running = true;
        try {
          await sleep(300);
        } finally {
          running = false;
        }
        return 'done';
      });
      const err = await waitFor(fut, 0.1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).cause).toBeInstanceOf(CancelledError);
      expect(fut.cancelled()).toBe(true);
      expect(running).toBe(false);
      expect(fx.loop.time()).toBeCloseTo(0.1, 9);
    });
  });

  it('test_wait_for_blocking: timeout null', async () => {
    expect(await fx.run(() => waitFor(async () => 'done', null))).toBe('done');
  });

  it('test_wait_for_race_condition', async () => {
    await fx.run(async () => {
      const fut = fx.loop.createFuture<string>();
      const task = waitFor(fut, 0.2);
      fx.loop.callSoon(() => fut.setResult('ok'));
      expect(await task).toBe('ok');
    });
  });

  it('test_wait_for_cancellation_race_condition / test_wait_for_cancel_suppressed: a suppressed cancel returns the value', async () => {
    await fx.run(async () => {
      const r = await waitFor(async () => {
        try {
          await sleep(1);
        } catch (e) {
          expect(e).toBeInstanceOf(CancelledError);
        }
        return 1;
      }, 0.01);
      expect(r).toBe(1);
    });
  });

  it('test_wait_for_waits_for_task_cancellation', async () => {
    await fx.run(async () => {
      let taskDone = false;
      const inner = fx.loop.createTask(async () => {
        try {
          await sleep(10);
        } catch (e) {
          await sleep(0.1);
          throw e;
        } finally {
          taskDone = true;
        }
      });
      const err = await waitFor(inner, 0.1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect(taskDone).toBe(true);
      expect((err as TimeoutError).cause).toBeInstanceOf(CancelledError);
      expect(fx.loop.time()).toBeCloseTo(0.2, 9);
    });
  });

  it('test_wait_for_waits_for_task_cancellation_w_timeout_0', async () => {
    await fx.run(async () => {
      let taskDone = false;
      const inner = fx.loop.createTask(async () => {
        try {
          await sleep(10);
        } catch (e) {
          await sleep(0.1);
          throw e;
        } finally {
          taskDone = true;
        }
      });
      await sleep(0.1);
      const err = await waitFor(inner, 0).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect(taskDone).toBe(true);
    });
  });

  it('test_wait_for_reraises_exception_during_cancellation', async () => {
    class FooError extends Error {}
    await fx.run(async () => {
      const inner = fx.loop.createTask(async () => {
        try {
          await sleep(0.2);
        } finally {
          // eslint-disable-next-line no-unsafe-finally
          throw new FooError();
        }
      });
      await expect(waitFor(inner, 0.01)).rejects.toBeInstanceOf(FooError);
    });
  });

  for (const t of [null, 60]) {
    it(`${t === null ? 'test_cancel_blocking_wait_for' : 'test_cancel_wait_for'}: cancelling the wait cancels the task (issue 23219)`, async () => {
      await fx.run(async () => {
        const task = fx.loop.createTask(async () => {
          await fx.loop.createFuture();
        });
        const w = fx.loop.createTask(() => waitFor(task, t));
        fx.loop.callSoon(() => w.cancel());
        await expect(w).rejects.toBeInstanceOf(CancelledError);
        expect(task.cancelled()).toBe(true);
      });
    });
  }

  it('test_wait_for_issue86296: an outside cancel is not swallowed when the inner finished at the same moment', async () => {
    await fx.run(async () => {
      const inner = fx.loop.createTask(async () => 'done');
      let reachedEnd = false;
      const task = fx.loop.createTask(async () => {
        await waitFor(inner, 100);
        await sleep(1);
        reachedEnd = true;
      });
      expect(task.done()).toBe(false);
      await sleep(0);
      task.cancel();
      await expect(task).rejects.toBeInstanceOf(CancelledError);
      expect(inner.done()).toBe(true);
      expect(await inner).toBe('done');
      expect(reachedEnd).toBe(false);
    });
  });

  it('WaitForShieldTests.test_zero_timeout', async () => {
    await fx.run(async () => {
      const task = fx.loop.createTask(async () => {
        await sleep(0.01);
        return 'done';
      });
      const shielded = shield(task);
      await expect(waitFor(shielded, 0)).rejects.toBeInstanceOf(TimeoutError);
      expect(task.done()).toBe(false);
      expect(shielded.cancelled()).toBe(true);
      await sleep(0.1);
      expect(task.done()).toBe(true);
    });
  });

  it('WaitForShieldTests.test_none_timeout / test_shielded_timeout', async () => {
    await fx.run(async () => {
      const mk = (): Task<string> =>
        fx.loop.createTask(async () => {
          await sleep(0.1);
          return 'done';
        });
      const t1 = mk();
      await waitFor(shield(t1), null);
      expect(t1.done()).toBe(true);
      const t2 = mk();
      await expect(waitFor(shield(t2) as Future<string>, 0.01)).rejects.toBeInstanceOf(TimeoutError);
      expect(t2.done()).toBe(false);
      expect(t2.cancelled()).toBe(false);
      expect(await t2).toBe('done');
    });
  });
});

describe('gather / shield / wait / asCompleted: more test_tasks ports', () => {
  const fx = useLoop();

  it('test_cancel_gather_2: a task looping over gather(returnExceptions) still dies of its cancel, message kept', async () => {
    for (const msg of [undefined, 'my message']) {
      const err = await fx.run(async () => {
        const qwe = fx.loop.createTask(async () => {
          let time = 0;
          for (;;) {
            time += 0.05;
            await gather(sleep(0.05), { returnExceptions: true });
            if (time > 1) return;
          }
        });
        await sleep(0.2);
        qwe.cancel(msg);
        try {
          await qwe;
        } catch (e) {
          return e;
        }
        return null;
      });
      expect(err).toBeInstanceOf(CancelledError);
      expect((err as CancelledError).message).toBe(msg ?? 'cancelled');
    }
  });

  it('test_cancellation_broadcast: cancelling the awaiter cancels gather and every child', async () => {
    let proof = 0;
    const waiter = fx.loop.createFuture<null>();
    const inner = async (): Promise<void> => {
      await waiter;
      proof += 1;
    };
    const child1 = fx.loop.createTask(inner);
    const child2 = fx.loop.createTask(inner);
    let gatherer: Future<unknown> | null = null;
    const f = fx.loop.createTask(async () => {
      gatherer = gather(child1, child2);
      await gatherer;
      proof += 100;
    });
    await fx.runBriefly();
    expect(f.cancel()).toBe(true);
    await expect(fx.loop.runUntilComplete(f)).rejects.toBeInstanceOf(CancelledError);
    expect(gatherer!.cancel()).toBe(false);
    expect(waiter.cancelled()).toBe(true);
    expect(child1.cancelled()).toBe(true);
    expect(child2.cancelled()).toBe(true);
    await fx.runBriefly();
    expect(proof).toBe(0);
  });

  it('test_result_exception_one_cancellation: with returnExceptions a cancelled child is a result; one done callback', async () => {
    const [a, b, c, d, e, f] = Array.from({ length: 6 }, () => fx.loop.createFuture<number>());
    const fut = gather(a!, b!, c!, d!, e!, f!, { returnExceptions: true });
    const calls: unknown[] = [];
    fut.addDoneCallback((x) => calls.push(x));
    a!.setResult(1);
    const zde = new RangeError('zde');
    b!.setException(zde);
    c!.cancel();
    await fx.runBriefly();
    expect(fut.done()).toBe(false);
    d!.setResult(3);
    e!.cancel();
    const rte = new Error('rte');
    f!.setException(rte);
    const res = [...(await fx.loop.runUntilComplete(fut))] as unknown[];
    expect(res[2]).toBeInstanceOf(CancelledError);
    expect(res[4]).toBeInstanceOf(CancelledError);
    res[2] = res[4] = null;
    expect(res).toEqual([1, zde, null, 3, null, rte]);
    await fx.runBriefly();
    expect(calls).toEqual([fut]);
  });

  it('test_exception_marking: the second child error is marked retrieved, the first fails the awaiter', async () => {
    const a = fx.loop.createFuture<null>();
    const b = fx.loop.createFuture<null>();
    const inner = (x: Future<null>) => async (): Promise<void> => {
      await x;
      throw new RangeError('should not be ignored');
    };
    const f = fx.loop.createTask(async () => {
      await gather(inner(a), inner(b));
    });
    await fx.runBriefly();
    a.setResult(null);
    await fx.runBriefly();
    b.setResult(null);
    await fx.runBriefly();
    expect(f.exception()).toBeInstanceOf(RangeError);
  });

  it('test_shield_gather: cancelling the shield leaves the gather (and its children) running', async () => {
    const child1 = fx.loop.createFuture<number>();
    const child2 = fx.loop.createFuture<number>();
    const parent = gather(child1, child2);
    const outer = shield(parent);
    await fx.runBriefly();
    outer.cancel();
    await fx.runBriefly();
    expect(outer.cancelled()).toBe(true);
    child1.setResult(1);
    child2.setResult(2);
    await fx.runBriefly();
    expect(parent.result()).toEqual([1, 2]);
  });

  it('test_wait_really_done: FIRST_COMPLETED also reports tasks done in the same iteration', async () => {
    const a = fx.loop.createTask(async () => {
      await sleep(0);
    });
    const b = fx.loop.createTask(async () => {
      await sleep(0);
      await sleep(0);
    });
    const [done, pending] = await fx.loop.runUntilComplete(fx.loop.createTask(() => wait([b, a], { returnWhen: FIRST_COMPLETED })));
    expect(done).toEqual(new Set([a, b]));
    expect(pending.size).toBe(0);
    expect(a.result()).toBe(undefined);
    expect(b.result()).toBe(undefined);
  });

  it('test_wait_with_exception: ALL_COMPLETED waits for the failing one too; a second wait returns at once', async () => {
    const a = fx.loop.createTask(() => sleep(0.1));
    const b = fx.loop.createTask(async () => {
      await sleep(0.15);
      throw new RangeError('really');
    });
    const foo = async (): Promise<void> => {
      const [done, pending] = await wait([b, a]);
      expect(done.size).toBe(2);
      expect(pending.size).toBe(0);
      expect([...done].filter((f) => f.exception() !== null).length).toBe(1);
    };
    await fx.loop.runUntilComplete(fx.loop.createTask(foo));
    expect(fx.loop.time()).toBeCloseTo(0.15);
    await fx.loop.runUntilComplete(fx.loop.createTask(foo));
    expect(fx.loop.time()).toBeCloseTo(0.15);
  });

  it('test_wait_concurrent_complete: a task done exactly at the timeout is in done', async () => {
    // As in CPython, the tasks are created before the task running wait(), so their timers come first.
    const a = fx.loop.createTask(() => sleep(0.1));
    const b = fx.loop.createTask(() => sleep(0.15));
    const [done, pending] = await fx.loop.runUntilComplete(fx.loop.createTask(() => wait([b, a], { timeout: 0.1 })));
    expect(done).toEqual(new Set([a]));
    expect(pending).toEqual(new Set([b]));
    expect(fx.loop.time()).toBeCloseTo(0.1);
    await fx.loop.runUntilComplete(fx.loop.createTask(() => wait([a, b])));
  });

  it('test_wait_duplicate_coroutines: the same task twice is one', async () => {
    await fx.run(async () => {
      const c = fx.loop.createTask(async () => 'test');
      const [done, pending] = await wait([c, c, fx.loop.createTask(async () => 'spam')]);
      expect(pending.size).toBe(0);
      expect(new Set([...done].map((f) => f.result()))).toEqual(new Set(['test', 'spam']));
    });
  });

  it('test_wait_with_iterator_of_tasks / test_wait_generator: any iterable', async () => {
    await fx.run(async () => {
      const a = fx.loop.createTask(() => sleep(0.1));
      const b = fx.loop.createTask(() => sleep(0.15));
      const [done, pending] = await wait(
        (function* () {
          yield b;
          yield a;
        })(),
      );
      expect(done.size).toBe(2);
      expect(pending.size).toBe(0);
      expect(fx.loop.time()).toBeCloseTo(0.15);
    });
  });

  it('test_as_completed_reverse_wait: the first promise awaited gets the first result, whichever it is', async () => {
    await fx.run(async () => {
      const futs = [...asCompleted([sleep(0.05, 'a'), sleep(0.1, 'b')])];
      expect(futs.length).toBe(2);
      expect(await futs[1]).toBe('a');
      expect(fx.loop.time()).toBeCloseTo(0.05);
      expect(await futs[0]).toBe('b');
      expect(fx.loop.time()).toBeCloseTo(0.1);
    });
  });

  it('test_as_completed_concurrent: everything it yields can be awaited concurrently', async () => {
    await fx.run(async () => {
      const plain = [...asCompleted([sleep(0.05, 'a'), sleep(0.05, 'b')])];
      const [d1] = await wait(plain);
      expect(new Set([...d1].map((f) => f.result()))).toEqual(new Set(['a', 'b']));
      const asyncIt: Future<string>[] = [];
      for await (const f of asCompleted<string>([sleep(0.05, 'a'), sleep(0.05, 'b')])) asyncIt.push(f as unknown as Future<string>); // TS types a for-await value as Awaited<Future<string>>
      const [d2] = await wait(asyncIt);
      expect(new Set([...d2].map((f) => f.result()))).toEqual(new Set(['a', 'b']));
    });
  });

  it('test_as_completed_same_tasks_in_as_out: tasks and futures come back as themselves, functions as new tasks', async () => {
    await fx.run(async () => {
      const fnA = async (): Promise<string> => 'a';
      const taskB = fx.loop.createTask(async () => 'b');
      const fnC = async (): Promise<string> => 'c';
      const taskD = fx.loop.createTask(async () => 'd');
      const out = new Set<unknown>();
      for await (const f of asCompleted<string>([fnA, taskB, fnC, taskD])) out.add(f);
      expect(out.size).toBe(4);
      expect(out.has(taskB) && out.has(taskD)).toBe(true);
      expect(out.has(fnA) || out.has(fnC)).toBe(false);
    });
  });

  it('test_as_completed_resume_iterator: iteration can stop and resume on the same iterator', async () => {
    await fx.run(async () => {
      const mk = (): (() => Promise<number>)[] => [0, 1, 2, 3].map((i) => async () => i);
      const it1 = asCompleted(mk());
      const c1: number[] = [];
      let n = 0;
      for (const p of it1) {
        c1.push(await p);
        if (++n === 2) break;
      }
      expect(c1.length).toBe(2);
      for (const p of it1) c1.push(await p);
      expect(c1.sort()).toEqual([0, 1, 2, 3]);
      const it2 = asCompleted(mk());
      const c2: number[] = [];
      n = 0;
      for await (const f of it2) {
        c2.push(await f);
        if (++n === 2) break;
      }
      expect(c2.length).toBe(2);
      for await (const f of it2) c2.push(await f);
      expect(c2.sort()).toEqual([0, 1, 2, 3]);
    });
  });

  it('test_as_completed_with_unused_timeout: a timeout that never fires changes nothing', async () => {
    await fx.run(async () => {
      for (const p of asCompleted([sleep(0.01, 'a')], { timeout: 1 })) expect(await p).toBe('a');
      for await (const f of asCompleted([sleep(0.01, 'a')], { timeout: 1 })) expect(await f).toBe('a');
      // The unused timer was cancelled: the loop has nothing left to wait for at t=1.
      await sleep(0);
      expect(fx.loop.time()).toBeLessThan(1);
    });
  });

  it('test_as_completed_invalid_args: a single Future instead of a collection is a TypeError', async () => {
    await fx.run(async () => {
      const fut = fx.loop.createFuture();
      expect(() => [...asCompleted(fut as unknown as Future<unknown>[])]).toThrow(TypeError);
      await expect(
        (async () => {
          for await (const _f of asCompleted(fut as unknown as Future<unknown>[])) break;
        })(),
      ).rejects.toBeInstanceOf(TypeError);
    });
  });
});

describe('more gather ports (test_tasks FutureGatherTests)', () => {
  const fx = useLoop();

  it('test_constructor_heterogenous_futures (test_tasks): Futures of two loops are refused (asyncio ValueError)', () => {
    const other = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    try {
      const fut1 = fx.loop.createFuture();
      const fut2 = other.createFuture();
      expect(() => gather(fut1, fut2)).toThrow(InvalidStateError);
      expect(() => gather(fut1, fut2)).toThrow('different loop');
    } finally {
      other.close();
    }
  });

  it('test_constructor_homogenous_futures (test_tasks): without a running loop, gather takes its children\'s loop', async () => {
    const other = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    try {
      const children = [0, 1, 2].map(() => other.createFuture<number>());
      let fut = gather(...children);
      expect(fut.getLoop()).toBe(other);
      await other.runUntilComplete(other.createTask(async () => {}));
      expect(fut.done()).toBe(false);
      fut = gather(...children);
      expect(fut.getLoop()).toBe(other);
      await other.runUntilComplete(other.createTask(async () => {}));
      expect(fut.done()).toBe(false);
      children.forEach((c, i) => c.setResult(i));
      expect(await other.runUntilComplete(fut)).toEqual([0, 1, 2]);
    } finally {
      other.close();
    }
  });

  it('test_constructor_empty_sequence_use_running_loop / test_constructor_empty_sequence_without_loop (test_tasks)', async () => {
    // Boxed: a task returning a Future would wait for it.
    const [fut] = await fx.run(async () => [gather()] as const);
    expect(fut.getLoop()).toBe(fx.loop);
    expect(fut.done()).toBe(true);
    expect(fut.result()).toEqual([]);
    // asyncio 3.13: RuntimeError, there is no loop to bind the empty gather to.
    expect(() => gather()).toThrow('no running event loop');
  });
});
