/**
 * Tasks: start on the next iteration, atomic steps, real cancellation, cancelling()/uncancel(), generator tasks,
 * AbortSignal. Most cases are ports of CPython's test_tasks (BaseTaskTests), named in each title.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, EventLoop, InvalidStateError, Task, VirtualClock, allTasks, currentTask, ensureFuture, gather, sleep, wait, wrapPromise } from '../../src/index.js';
import type { Future } from '../../src/index.js';
import { collectGarbage, useLoop } from '../support/loop.js';

describe('Task basics', () => {
  const fx = useLoop();

  it('starts on the next iteration, not synchronously', async () => {
    const rec: string[] = [];
    fx.loop.callSoon(() => rec.push('soon'));
    const t = fx.loop.createTask(async () => {
      rec.push('task');
      return 1;
    });
    rec.push('created');
    expect(await fx.loop.runUntilComplete(t)).toBe(1);
    expect(rec).toEqual(['created', 'soon', 'task']);
  });

  it('names: Task-N by default, getName/setName, toString', async () => {
    const t = fx.loop.createTask(async () => {}, { name: 'worker' });
    expect(t.getName()).toBe('worker');
    t.setName('w2');
    expect(String(t)).toBe('<Task pending name=w2>');
    const u = fx.loop.createTask(async () => {});
    expect(u.getName()).toMatch(/^Task-\d+$/);
    await fx.loop.runUntilComplete(u);
    await fx.loop.runUntilComplete(t);
  });

  it('test_tasks.test_task_set_methods: setResult/setException are refused', async () => {
    const t = fx.loop.createTask(async () => 'ko');
    expect(() => t.setResult('ok')).toThrow(InvalidStateError);
    expect(() => t.setException(new Error())).toThrow(InvalidStateError);
    expect(await fx.loop.runUntilComplete(t)).toBe('ko');
  });

  it('test_tasks.test_step_result_future: a task returning a Future waits for it', async () => {
    const fut = fx.loop.createFuture<string>();
    const t = fx.loop.createTask(() => fut);
    await fx.runBriefly();
    expect(t.done()).toBe(false);
    fut.setResult('res');
    expect(await fx.loop.runUntilComplete(t)).toBe('res');
  });

  it('currentTask() names the stepping task, also after awaits; null in plain callbacks', async () => {
    const seen: unknown[] = [];
    fx.loop.callSoon(() => seen.push(currentTask()));
    const t = fx.loop.createTask(async () => {
      seen.push(currentTask());
      await sleep(1);
      seen.push(currentTask());
      await Promise.resolve();
      seen.push(currentTask());
    });
    await fx.loop.runUntilComplete(t);
    expect(seen).toEqual([null, t, t, t]);
  });

  it('allTasks() holds pending tasks strongly, until they finish', async () => {
    let t: Task<void> | null = fx.loop.createTask(async () => {
      await sleep(10);
    });
    const ref = new WeakRef(t);
    t = null;
    await collectGarbage();
    expect(ref.deref()).toBeDefined();
    expect(allTasks(fx.loop).has(ref.deref()!)).toBe(true);
    await fx.loop.runUntilComplete(ref.deref()!);
    expect(allTasks(fx.loop).size).toBe(0);
  });

  it('a failing task reports "Task exception was never retrieved" when collected unobserved', async () => {
    (() => {
      fx.loop.createTask(async () => {
        throw new RangeError('unobserved');
      });
    })();
    await fx.runBriefly();
    await collectGarbage();
    const recs = fx.take();
    expect(recs.map((r) => r.message)).toEqual(['Task exception was never retrieved']);
  });

  it('test_tasks.test_tb_logger_not_called_after_cancel: cancelling a task that already failed silences the report', async () => {
    await fx.run(async () => {
      let task: Task<unknown> | null = fx.loop.createTask(async () => {
        throw new TypeError('failed before the cancel');
      });
      await sleep(0.05);
      expect(task.cancel()).toBe(false);
      task = null;
    });
    await collectGarbage();
    expect(fx.take()).toEqual([]);
  });

  it('the exception of an awaited task reaches the awaiter', async () => {
    const r = await fx.run(async () => {
      const t = fx.loop.createTask(async () => {
        await sleep(1);
        throw new RangeError('inner');
      });
      try {
        await t;
      } catch (e) {
        return (e as Error).message;
      }
      return 'no';
    });
    expect(r).toBe('inner');
  });
});

describe('atomic task steps (docs/event-loop-internals.md)', () => {
  const fx = useLoop();

  it('a resumed task runs to its next suspension before the next ready callback, through nested async calls', async () => {
    const rec: string[] = [];
    const f1 = fx.loop.createFuture();
    async function deep(n: number): Promise<void> {
      if (n === 0) {
        rec.push('bottom');
        return;
      }
      await Promise.resolve();
      await deep(n - 1);
    }
    fx.loop.createTask(async () => {
      await f1;
      rec.push('A resumed');
      await deep(20);
      rec.push('A before suspend');
      await sleep(1);
      rec.push('A again');
    });
    fx.loop.createTask(async () => {
      await f1;
      rec.push('B resumed');
    });
    fx.loop.callLater(0.5, () => f1.setResult(null));
    await fx.run(() => sleep(2));
    expect(rec).toEqual(['A resumed', 'bottom', 'A before suspend', 'B resumed', 'A again']);
  });

  it('interleaving with sleep(0) is round-robin, one step per iteration (asyncio ordering)', async () => {
    const rec: string[] = [];
    const mk = (name: string) => async (): Promise<void> => {
      for (let i = 0; i < 3; i++) {
        rec.push(`${name}${i}`);
        await sleep(0);
      }
    };
    const a = fx.loop.createTask(mk('a'));
    const b = fx.loop.createTask(mk('b'));
    const c = fx.loop.createTask(mk('c'));
    await fx.run(async () => {
      await a;
      await b;
      await c;
    });
    expect(rec).toEqual(['a0', 'b0', 'c0', 'a1', 'b1', 'c1', 'a2', 'b2', 'c2']);
  });

  it('an explicit fut.then(a, b) inside a task does not lose the task: its later awaits stay cancellation points', async () => {
    const rec: unknown[] = [];
    const r = await fx.run(async () => {
      const f = fx.loop.createFuture<number>();
      const t = fx.loop.createTask(async () => {
        const v = await f.then(
          (x) => x * 2,
          (e) => e,
        );
        rec.push(v, currentTask() === t);
        await f.finally(() => rec.push('finally'));
        await sleep(100); // must still be cancellable
      });
      await sleep(1);
      f.setResult(21);
      await sleep(1);
      t.cancel();
      return t.then(
        () => 'finished',
        (e: CancelledError) => e.code,
      );
    });
    expect(r).toBe('TW_CANCELLED');
    expect(rec).toEqual([42, true, 'finally']);
    expect(fx.loop.time()).toBe(2);
  });

  it('Promise.all over Futures inside a task: resumes within a step, and cancel reaches it', async () => {
    const r = await fx.run(async () => {
      const t = fx.loop.createTask(async () => {
        const [a, b] = await Promise.all([sleep(1, 'a'), sleep(2, 'b')]);
        await sleep(0);
        const c = await Promise.all([sleep(10, 'c'), sleep(20, 'd')]);
        return [a, b, c];
      });
      await sleep(3);
      t.cancel();
      return t.then(
        () => 'finished',
        (e: CancelledError) => [e.code, fx.loop.time()],
      );
    });
    expect(r).toEqual(['TW_CANCELLED', 3]);
  });

  it('a task awaiting a foreign promise that never resolves does not stall the loop (hop cap)', async () => {
    const rec: string[] = [];
    fx.loop.createTask(async () => {
      await new Promise(() => {});
    });
    fx.loop.callSoon(() => rec.push('next'));
    await fx.run(() => sleep(1));
    expect(rec).toEqual(['next']);
    for (const t of allTasks(fx.loop)) t.cancel();
    fx.loop.close();
    expect(fx.take().map((r) => r.message)).toEqual(['Task was destroyed but it is pending!']);
  });

  it('awaiting a foreign promise through wrapPromise keeps the await a cancellation point', async () => {
    const r = await fx.run(async () => {
      const t = fx.loop.createTask(async () => {
        await wrapPromise(new Promise(() => {}));
      });
      await sleep(0);
      t.cancel();
      try {
        await t;
      } catch (e) {
        return [(e as CancelledError).code, t.cancelled()];
      }
      return null;
    });
    expect(r).toEqual(['TW_CANCELLED', true]);
  });
});

describe('Task cancellation (test_tasks)', () => {
  const fx = useLoop();

  it('test_tasks.test_cancel: cancel a sleeping task', async () => {
    const t = fx.loop.createTask(async () => {
      await sleep(10);
      return 12;
    });
    fx.loop.callSoon(() => t.cancel());
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(t.done()).toBe(true);
    expect(t.cancelled()).toBe(true);
    expect(t.cancel()).toBe(false);
  });

  it('test_tasks.test_cancelling', async () => {
    const t = fx.loop.createTask(async () => {
      await sleep(10);
    });
    expect(t.cancelling()).toBe(0);
    expect(String(t)).not.toContain('cancelling');
    expect(t.cancel()).toBe(true);
    expect(t.cancelling()).toBe(1);
    expect(String(t)).toContain('cancelling');
    expect(t.cancel()).toBe(true);
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
  });

  it('test_tasks.test_uncancel_basic', async () => {
    const t = fx.loop.createTask(async () => {
      try {
        await sleep(10);
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
        currentTask()!.uncancel();
        await sleep(10);
      }
    });
    await fx.loop.runUntilComplete(sleep(0.01, undefined, fx.loop));
    expect(t.cancel()).toBe(true);
    expect(t.cancelling()).toBe(1);
    expect(t.cancelled()).toBe(false);
    await fx.loop.runUntilComplete(sleep(0.01, undefined, fx.loop));
    expect(t.cancelling()).toBe(0);
    expect(t.cancelled()).toBe(false);
    expect(t.cancel()).toBe(true);
    expect(t.cancelling()).toBe(1);
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(t.cancelled()).toBe(true);
    t.uncancel();
    expect(t.cancelled()).toBe(true);
  });

  it('test_tasks.test_uncancel_structured_blocks', async () => {
    async function makeRequestWithTimeout(sleepFor: number, timeoutAfter: number): Promise<boolean[]> {
      const task = currentTask()!;
      let timedOut = false;
      let structuredBlockFinished = false;
      let outerCodeReached = false;
      const h = fx.loop.callLater(timeoutAfter, () => {
        timedOut = true;
        task.cancel();
      });
      try {
        try {
          await sleep(sleepFor);
          structuredBlockFinished = true;
        } catch (e) {
          h.cancel();
          if (timedOut && task.uncancel() === 0 && e instanceof CancelledError) throw new Error('timeout');
          throw e;
        }
        h.cancel();
      } catch (e) {
        if ((e as Error).message !== 'timeout') throw e;
        expect(timedOut).toBe(true);
      }
      outerCodeReached = true;
      await sleep(0);
      return [timedOut, structuredBlockFinished, outerCodeReached];
    }
    const t1 = fx.loop.createTask(() => makeRequestWithTimeout(10, 0.1));
    expect(await fx.loop.runUntilComplete(t1)).toEqual([true, false, true]);
    expect(t1.cancelling()).toBe(0);
    const t2 = fx.loop.createTask(() => makeRequestWithTimeout(0, 10));
    expect(await fx.loop.runUntilComplete(t2)).toEqual([false, true, true]);
    expect(t2.cancelling()).toBe(0);
  });

  it('test_tasks.test_uncancel_resets_must_cancel', async () => {
    const fut = fx.loop.createFuture();
    const task = fx.loop.createTask(async () => {
      await fut;
      return 42;
    });
    await fx.loop.runUntilComplete(sleep(0, undefined, fx.loop));
    fut.setResult(null);
    task.cancel();
    expect(task.cancelling()).toBe(1);
    expect(task._mustCancel).toBe(true);
    task.uncancel();
    expect(task.cancelling()).toBe(0);
    expect(task._mustCancel).toBe(false);
    expect(await fx.loop.runUntilComplete(task)).toBe(42);
  });

  it('test_tasks.test_cancel_with_message_then_future_result', async () => {
    for (const [arg, expected] of [[undefined, 'cancelled'], ['my message', 'my message']] as const) {
      const task = fx.loop.createTask(async () => {
        const inner = fx.loop.createTask(() => sleep(10));
        await sleep(0);
        inner.cancel(arg);
        await fx.loop.createTask(async () => {
          try {
            await inner;
          } catch {
            // wait() equivalent: only wait for it to be done
          }
        });
        inner.result();
      });
      const err = await fx.loop.runUntilComplete(task).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CancelledError);
      expect((err as CancelledError).message).toBe(expected);
    }
  });

  it('test_tasks.test_cancellation_exception_context: the cause chain keeps the CancelledError', async () => {
    const fut = fx.loop.createFuture();
    const task = fx.loop.createTask(async () => {
      const inner = fx.loop.createTask(async () => {
        fut.setResult(null);
        await sleep(10);
      });
      await fut;
      fx.loop.callSoon(() => inner.cancel('msg'));
      try {
        await inner;
      } catch (e) {
        throw new RangeError('cancelled', { cause: e });
      }
    });
    const err = (await fx.loop.runUntilComplete(task).catch((e: unknown) => e)) as RangeError;
    expect(err.message).toBe('cancelled');
    expect(err.cause).toBeInstanceOf(CancelledError);
    expect((err.cause as CancelledError).message).toBe('msg');
  });

  it('test_tasks.test_cancel_with_message_before_starting_task: the body never runs', async () => {
    let ran = false;
    const task = fx.loop.createTask(async () => {
      const t = fx.loop.createTask(async () => {
        ran = true;
      });
      t.cancel('my message');
      await fx.loop.createTask(async () => {
        await t.catch(() => {});
      });
      t.exception();
    });
    const err = await fx.loop.runUntilComplete(task).catch((e: unknown) => e);
    expect((err as CancelledError).message).toBe('my message');
    expect(ran).toBe(false);
  });

  it('test_tasks.test_cancel_yield', async () => {
    const t = fx.loop.createTask(async () => {
      await sleep(0);
      await sleep(0);
      return 12;
    });
    await fx.runBriefly();
    t.cancel();
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(t.cancelled()).toBe(true);
    expect(t.cancel()).toBe(false);
  });

  it('test_tasks.test_cancel_inner_future', async () => {
    const f = fx.loop.createFuture();
    const t = fx.loop.createTask(async () => {
      await f;
      return 12;
    });
    await fx.runBriefly();
    f.cancel();
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(f.cancelled()).toBe(true);
    expect(t.cancelled()).toBe(true);
  });

  it('test_tasks.test_cancel_both_task_and_inner_future', async () => {
    const f = fx.loop.createFuture();
    const t = fx.loop.createTask(async () => {
      await f;
      return 12;
    });
    await fx.runBriefly();
    f.cancel();
    t.cancel();
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(f.cancelled()).toBe(true);
    expect(t.cancelled()).toBe(true);
  });

  it('test_tasks.test_cancel_task_catching', async () => {
    const fut1 = fx.loop.createFuture();
    const fut2 = fx.loop.createFuture();
    const t = fx.loop.createTask(async () => {
      await fut1;
      try {
        await fut2;
      } catch (e) {
        if (e instanceof CancelledError) return 42;
        throw e;
      }
      return 0;
    });
    await fx.runBriefly();
    expect(t._futWaiter).toBe(fut1);
    fut1.setResult(null);
    await fx.runBriefly();
    expect(t._futWaiter).toBe(fut2);
    t.cancel();
    expect(fut2.cancelled()).toBe(true);
    expect(await fx.loop.runUntilComplete(t)).toBe(42);
    expect(t.cancelled()).toBe(false);
  });

  it('test_tasks.test_cancel_task_ignoring', async () => {
    const fut1 = fx.loop.createFuture();
    const fut2 = fx.loop.createFuture();
    const fut3 = fx.loop.createFuture<number>();
    const t = fx.loop.createTask(async () => {
      await fut1;
      try {
        await fut2;
      } catch {
        // ignored
      }
      return await fut3;
    });
    await fx.runBriefly();
    expect(t._futWaiter).toBe(fut1);
    fut1.setResult(null);
    await fx.runBriefly();
    expect(t._futWaiter).toBe(fut2);
    t.cancel();
    expect(fut2.cancelled()).toBe(true);
    await fx.runBriefly();
    expect(t._futWaiter).toBe(fut3);
    fut3.setResult(42);
    expect(await fx.loop.runUntilComplete(t)).toBe(42);
    expect(fut3.cancelled()).toBe(false);
    expect(t.cancelled()).toBe(false);
  });

  it('test_tasks.test_cancel_current_task: the next await is cancelled at once', async () => {
    const t: Task<number> = fx.loop.createTask(async () => {
      t.cancel();
      expect(t._mustCancel).toBe(true);
      await sleep(100);
      return 12;
    });
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(t.cancelled()).toBe(true);
    expect(t._mustCancel).toBe(false);
    expect(fx.loop.time()).toBe(0);
  });

  it('test_tasks.test_cancel_at_end: cancelled right before returning', async () => {
    const t: Task<number> = fx.loop.createTask(async () => {
      t.cancel();
      return 12;
    });
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(t.cancelled()).toBe(true);
    expect(t._mustCancel).toBe(false);
  });

  it('test_tasks.test_cancel_awaited_task (bpo-34872): the next awaited task is cancelled too', async () => {
    const fut = fx.loop.createFuture();
    let nested: Task<void> | null = null;
    const task: Task<void> = fx.loop.createTask(async () => {
      nested = fx.loop.createTask(async () => {
        await fut;
      });
      await sleep(0);
      task.cancel();
      await nested;
    });
    await expect(fx.loop.runUntilComplete(task)).rejects.toBeInstanceOf(CancelledError);
    expect(task.cancelled()).toBe(true);
    expect(nested!.cancelled()).toBe(true);
    expect(fut.cancelled()).toBe(true);
  });

  it('test_tasks.test_sleep_cancel: cancelling drops the sleep timer', async () => {
    const t = fx.loop.createTask(() => sleep(10, 'yeah'));
    await fx.runBriefly();
    expect(fx.loop._heap.size).toBe(1);
    const timer = fx.loop._heap.peek()!;
    expect(timer.cancelled()).toBe(false);
    t.cancel();
    await fx.runBriefly();
    expect(timer.cancelled()).toBe(true);
  });

  it('test_tasks.test_task_cancel_sleeping_task', async () => {
    const r = await fx.run(async () => {
      const sleeper = fx.loop.createTask(() => sleep(5000));
      fx.loop.callLater(0.1, () => sleeper.cancel());
      try {
        await sleeper;
        return 'slept in';
      } catch {
        return 'cancelled';
      }
    });
    expect(r).toBe('cancelled');
    expect(fx.loop.time()).toBeCloseTo(0.1, 9);
  });

  it('test_tasks.test_task_cancel_waiter_future', async () => {
    const fut = fx.loop.createFuture();
    const task = fx.loop.createTask(async () => {
      await fut;
    });
    await fx.runBriefly();
    expect(task._futWaiter).toBe(fut);
    task.cancel();
    await fx.runBriefly();
    await expect(fx.loop.runUntilComplete(task)).rejects.toBeInstanceOf(CancelledError);
    expect(task._futWaiter).toBe(null);
    expect(fut.cancelled()).toBe(true);
  });

  it('test_tasks.test_yield_future_passes_cancel: outer → inner → waiter', async () => {
    let proof = 0;
    const waiter = fx.loop.createFuture();
    async function inner(): Promise<void> {
      try {
        await waiter;
      } catch (e) {
        proof += 1;
        throw e;
      }
    }
    const f = fx.loop.createTask(async () => {
      try {
        await inner();
        proof += 10;
      } catch {
        proof += 100;
      }
    });
    await fx.runBriefly();
    f.cancel();
    await fx.loop.runUntilComplete(f);
    expect(proof).toBe(101);
    expect(waiter.cancelled()).toBe(true);
  });

  it('a task can catch CancelledError, clean up with more awaits, and re-raise', async () => {
    const rec: unknown[] = [];
    const t = fx.loop.createTask(async () => {
      try {
        await sleep(100);
      } catch (e) {
        rec.push((e as CancelledError).code);
        await sleep(1);
        rec.push('cleaned up', fx.loop.time());
        throw e;
      }
    });
    fx.loop.callLater(5, () => t.cancel());
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(rec).toEqual(['TW_CANCELLED', 'cleaned up', 6]);
  });

  it('cancelling a task waiting on a done sleep(0) delivers CancelledError at its resumption', async () => {
    const rec: string[] = [];
    const t = fx.loop.createTask(async () => {
      try {
        await sleep(0);
        rec.push('not cancelled');
      } catch {
        rec.push('cancelled');
      }
    });
    await fx.loop.runUntilComplete(sleep(0, undefined, fx.loop));
    t.cancel();
    await fx.loop.runUntilComplete(t);
    expect(rec).toEqual(['cancelled']);
  });
});

describe('AbortSignal and generator tasks', () => {
  const fx = useLoop();

  it('createTask({signal}): aborting cancels the task with the reason as message', async () => {
    const ac = new AbortController();
    const t = fx.loop.createTask(() => sleep(100), { signal: ac.signal });
    fx.loop.callLater(1, () => ac.abort(new Error('user left')));
    const err = await fx.loop.runUntilComplete(t).catch((e: unknown) => e);
    expect((err as CancelledError).code).toBe('TW_CANCELLED');
    expect((err as CancelledError).message).toBe('user left');
  });

  it('an already-aborted signal cancels before the body runs', async () => {
    let ran = false;
    const t = fx.loop.createTask(
      async () => {
        ran = true;
      },
      { signal: AbortSignal.abort() },
    );
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(ran).toBe(false);
  });

  it('generator tasks yield Futures, PEP 3156 style, and are cancellable', async () => {
    const loop = fx.loop;
    const rec: unknown[] = [];
    function* worker(): Generator<Future<unknown> | null, string, any> {
      const v = yield sleep(1, 'one', loop);
      rec.push(v, loop.time());
      yield null; // bare yield: one iteration
      try {
        yield sleep(100, undefined, loop);
      } catch (e) {
        rec.push((e as CancelledError).code);
      }
      return 'done';
    }
    const t = loop.createTask(worker);
    loop.callLater(2, () => t.cancel());
    expect(await loop.runUntilComplete(t)).toBe('done');
    expect(rec).toEqual(['one', 1, 'TW_CANCELLED']);
  });
});

describe('more test_tasks ports', () => {
  const fx = useLoop();

  it('test_task_awaits_on_itself: fails with an error instead of hanging', async () => {
    const box: { task: Task<unknown> | null } = { task: null };
    box.task = fx.loop.createTask(async () => {
      await box.task!;
    });
    await expect(fx.loop.runUntilComplete(box.task)).rejects.toThrow(/Task cannot await on itself/);
    // The error is thrown at the await, so the body can catch it; generator tasks alike.
    const caught: { task: Task<unknown> | null } = { task: null };
    caught.task = fx.loop.createTask(async () => {
      try {
        await caught.task!;
      } catch (e) {
        return e instanceof InvalidStateError ? 'caught' : 'other';
      }
      return 'no error';
    });
    expect(await fx.loop.runUntilComplete(caught.task)).toBe('caught');
    const gen: { task: Task<unknown> | null } = { task: null };
    gen.task = fx.loop.createTask(function* () {
      yield gen.task;
    });
    await expect(fx.loop.runUntilComplete(gen.task)).rejects.toThrow(/Task cannot await on itself/);
  });

  it('test_baseexception_during_cancel (an Error instead of SystemExit): the task fails with it, not cancelled', async () => {
    const baseExc = new RangeError('instead of the cancel');
    const task = fx.loop.createTask(async () => {
      try {
        await (async () => {
          await sleep(10);
        })();
      } catch (e) {
        if (e instanceof CancelledError) throw baseExc;
        throw e;
      }
    });
    await fx.runBriefly();
    task.cancel();
    expect(task.done()).toBe(false);
    await fx.runBriefly();
    expect(task.done()).toBe(true);
    expect(task.cancelled()).toBe(false);
    expect(task.exception()).toBe(baseExc);
  });

  it('test_current_task_with_interleaving_tasks', async () => {
    expect(currentTask(fx.loop)).toBe(null);
    const fut1 = fx.loop.createFuture<boolean>();
    const fut2 = fx.loop.createFuture<boolean>();
    const seen: boolean[] = [];
    const task1: Task<void> = fx.loop.createTask(async () => {
      seen.push(currentTask() === task1);
      await fut1;
      seen.push(currentTask() === task1);
      fut2.setResult(true);
    });
    const task2: Task<void> = fx.loop.createTask(async () => {
      seen.push(currentTask() === task2);
      fut1.setResult(true);
      await fut2;
      seen.push(currentTask() === task2);
    });
    await fx.loop.runUntilComplete(fx.loop.createTask(() => wait([task1, task2])));
    expect(seen).toEqual([true, true, true, true]);
    expect(currentTask(fx.loop)).toBe(null);
  });

  it('test_sleep_when_delay_is_nan: the task fails (asyncio ValueError; here TypeError)', async () => {
    const t = fx.loop.createTask(async () => {
      await sleep(Number.NaN);
    });
    await expect(fx.loop.runUntilComplete(t)).rejects.toThrow(/NaN/);
  });

  it('test_stop_while_run_in_complete: stop() inside a task ends runUntilComplete early; the task stays pending', async () => {
    let x = 0;
    const t = fx.loop.createTask(async () => {
      while (x < 10) {
        await sleep(0.1);
        x += 1;
        if (x === 2) fx.loop.stop();
      }
    });
    await expect(fx.loop.runUntilComplete(t)).rejects.toThrow('Event loop stopped before Future completed.');
    expect(t.done()).toBe(false);
    expect(x).toBe(2);
    expect(fx.loop.time()).toBeCloseTo(0.2);
    t.cancel();
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
  });

  it('test_task_cancel_message_getter / test_cancel_with_message_then_future_exception', async () => {
    const t = fx.loop.createTask(async () => {});
    expect(t._cancelMessage).toBe(undefined);
    t.cancel('my message');
    expect(t._cancelMessage).toBe('my message');
    await expect(fx.loop.runUntilComplete(t)).rejects.toThrow('my message');
    for (const msg of [undefined, 'my message']) {
      const outer = fx.loop.createTask(async () => {
        const task = fx.loop.createTask(() => sleep(10));
        await sleep(0);
        task.cancel(msg);
        await wait([task]);
        task.exception();
      });
      const err = await fx.loop.runUntilComplete(outer).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CancelledError);
      expect((err as CancelledError).message).toBe(msg ?? 'cancelled');
    }
  });
});

describe('test_tasks: loops, ensureFuture, names', () => {
  const fx = useLoop();

  it('test_other_loop_future: awaiting a Future of another loop fails the task instead of hanging', async () => {
    const other = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    try {
      const fut = other.createFuture<number>();
      const t = fx.loop.createTask(async () => {
        await fut;
      });
      await expect(fx.loop.runUntilComplete(t)).rejects.toThrow(/got Future .* attached to a different loop/);
    } finally {
      other.close();
    }
  });

  it('test_ensure_future_future / test_ensure_future_task / test_ensure_future_neither', async () => {
    const fOrig = fx.loop.createFuture<string>();
    fOrig.setResult('ko');
    const f = ensureFuture(fOrig);
    await fx.loop.runUntilComplete(f);
    expect(f).toBe(fOrig);
    expect(f.result()).toBe('ko');
    const tOrig = fx.loop.createTask(async () => 'ok');
    const t = ensureFuture(tOrig);
    expect(await fx.loop.runUntilComplete(t)).toBe('ok');
    expect(t).toBe(tOrig);
    const other = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    try {
      expect(() => ensureFuture(fOrig, other)).toThrow(InvalidStateError);
      expect(() => ensureFuture(tOrig, other)).toThrow(InvalidStateError);
    } finally {
      other.close();
    }
    expect(ensureFuture(fOrig, fx.loop)).toBe(fOrig);
    expect(() => ensureFuture('ok' as unknown as Future<string>, fx.loop)).toThrow(TypeError);
  });

  it('test_sleep_zero: a callback scheduled before sleep(0) runs before the task resumes; the value comes back', async () => {
    let result = 0;
    const inc = (n: number): void => {
      result += n;
    };
    await fx.run(async () => {
      fx.loop.callSoon(inc, 1);
      expect(result).toBe(0);
      const num = await sleep(0, 10);
      expect(result).toBe(1);
      inc(num);
    });
    expect(result).toBe(11);
  });

  it('test_wait_invalid_args: a single Future is a TypeError, an empty list an error', async () => {
    await fx.run(async () => {
      const fut = fx.loop.createFuture();
      await expect(wait(fut as unknown as Future<unknown>[])).rejects.toBeInstanceOf(TypeError);
      await expect(wait([])).rejects.toBeInstanceOf(InvalidStateError);
    });
  });

  it('test_task_set_name_pylong: a non-string name becomes a string', async () => {
    const t = fx.loop.createTask(async () => 123, { name: 987654321 as unknown as string });
    expect(t.getName()).toBe('987654321');
    t.setName(123456789 as unknown as string);
    expect(t.getName()).toBe('123456789');
    await fx.loop.runUntilComplete(t);
  });
});

describe('test_tasks: creating tasks', () => {
  const fx = useLoop();

  it('test_create_task_with_noncoroutine / test_error_in_call_soon: a refused task is never registered', () => {
    expect(() => fx.loop.createTask(1 as unknown as () => void)).toThrow(TypeError);
    expect(allTasks(fx.loop).size).toBe(0);
    const closed = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    closed.close();
    expect(() => closed.createTask(async () => {})).toThrow();
    expect(allTasks(closed).size).toBe(0);
  });
});

describe('more test_tasks ports', () => {
  const fx = useLoop();

  it('test_task_basics (test_tasks): a task awaiting two nested async functions', async () => {
    const inner1 = async (): Promise<number> => 42;
    const inner2 = async (): Promise<number> => 1000;
    const outer = async (): Promise<number> => {
      const a = await inner1();
      const b = await inner2();
      return a + b;
    };
    expect(await fx.loop.runUntilComplete(fx.loop.createTask(outer))).toBe(1042);
  });

  it('test_sleep (test_tasks): two half sleeps on the virtual clock; the second gives its value back', async () => {
    const times: number[] = [];
    const sleeper = async (dt: number, arg: string): Promise<string> => {
      await sleep(dt / 2);
      times.push(fx.loop.time());
      const res = await sleep(dt / 2, arg);
      times.push(fx.loop.time());
      return res;
    };
    const t = fx.loop.createTask(() => sleeper(0.1, 'yeah'));
    await fx.loop.runUntilComplete(t);
    expect(t.done()).toBe(true);
    expect(t.result()).toBe('yeah');
    expect(times[0]).toBeCloseTo(0.05, 9);
    expect(times[1]).toBeCloseTo(0.1, 9);
    expect(fx.loop.time()).toBeCloseTo(0.1, 9);
  });

  it('test_current_task (test_tasks): the task inside its body, null for the loop outside it', async () => {
    expect(currentTask(fx.loop)).toBe(null);
    const seen: unknown[] = [];
    const task: Task<void> = fx.loop.createTask(async () => {
      seen.push(currentTask(), currentTask(undefined), currentTask(fx.loop));
    });
    await fx.loop.runUntilComplete(task);
    expect(seen).toEqual([task, task, task]);
    expect(currentTask(fx.loop)).toBe(null);
  });

  it('test_current_task_no_running_loop / test_current_task_no_running_loop_implicit (test_tasks): with no loop running, the implicit form throws', () => {
    expect(fx.loop.isRunning()).toBe(false);
    expect(currentTask(fx.loop)).toBe(null);
    // asyncio.current_task() asks for the running loop: RuntimeError('no running event loop').
    expect(() => currentTask()).toThrow(InvalidStateError);
    expect(() => currentTask()).toThrow('no running event loop');
  });

  it('currentTask() without a loop is null (not an error) in a plain callback and between turns of a running loop', async () => {
    const seen: unknown[] = [];
    fx.loop.callSoon(() => seen.push(currentTask()));
    const t = fx.loop.createTask(async () => {
      await sleep(1);
    });
    const done = fx.loop.runUntilComplete(t);
    await new Promise((r) => setImmediate(r));
    seen.push(fx.loop.isRunning() ? currentTask() : 'not running');
    await done;
    expect(seen).toEqual([null, null]);
  });

  it('test_task_cancel_message_setter (test_tasks): a message changed after cancel() is the one the task dies of', async () => {
    const t = fx.loop.createTask(async () => {});
    t.cancel('my message');
    t._cancelMessage = 'my new message';
    expect(t._cancelMessage).toBe('my new message');
    const err = await fx.loop.runUntilComplete(t).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).message).toBe('my new message');
  });
});

describe('tracebacks (test_tasks)', () => {
  const fx = useLoop();

  it('test_task_source_traceback (test_tasks): in debug mode a task records where it was created', async () => {
    fx.loop.setDebug(true);
    const task = (function createTheTask() {
      return fx.loop.createTask(async () => {});
    })();
    expect(task._sourceTraceback).toContain('createTheTask');
    expect(task._sourceTraceback).toContain('tasks.test.ts');
    await fx.loop.runUntilComplete(task);
  });

  it('test_exception_traceback (test_tasks, bpo-28843): the exception of a failed task keeps its stack', async () => {
    async function foo(): Promise<void> {
      throw new RangeError('1 / 0');
    }
    await fx.run(async () => {
      const task = fx.loop.createTask(foo);
      await sleep(0);
      const exc = task.exception() as Error;
      expect(exc).toBeInstanceOf(RangeError);
      expect(exc.stack).toContain('foo');
    });
  });
});

describe('a cancel request pending when the awaited Future is already done (asyncio Task.__step)', () => {
  const fx = useLoop();

  it('test_cancel_with_message_then_future_result (test_tasks), cancelled twice: the first message, the awaited Future\'s own CancelledError, wins', async () => {
    const seen: string[] = [];
    const t = fx.loop.createTask(async () => {
      try {
        await sleep(10);
      } catch (e) {
        seen.push((e as Error).message);
        throw e;
      }
    });
    await fx.runBriefly();
    expect(t.cancel('a')).toBe(true); // cancels the sleep Future with 'a'
    expect(t.cancel('b')).toBe(true); // the Future is done: a pending request (asyncio _must_cancel)
    const err = await fx.loop.runUntilComplete(t).then(
      () => null,
      (e: unknown) => e,
    );
    // asyncio 3.13: the task sees CancelledError('a'), and cancelling() is 2.
    expect(seen).toEqual(['a']);
    expect((err as Error).message).toBe('a');
    expect(t.cancelling()).toBe(2);
  });

  it('generator tasks too: the awaited Future\'s CancelledError is the one thrown in', async () => {
    const seen: string[] = [];
    const f = fx.loop.createFuture();
    const t = fx.loop.createTask(function* () {
      try {
        yield f;
      } catch (e) {
        seen.push((e as Error).message);
        throw e;
      }
    });
    await fx.runBriefly();
    f.cancel('first');
    t.cancel('second');
    await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual(['first']);
  });

  it('a cancel landing after the awaited gather failed: CancelledError is thrown in and the gather\'s exception counts as retrieved', async () => {
    const seen: unknown[] = [];
    await (async () => {
      const child = fx.loop.createFuture();
      // A GatheringFuture's cancel() on a done gather marks nothing retrieved (asyncio's does not either).
      const g = gather(child);
      const t = fx.loop.createTask(async () => {
        try {
          await g;
        } catch (e) {
          seen.push(e);
          throw e;
        }
      });
      await fx.runBriefly();
      child.setException(new RangeError('x'));
      // Next iteration: the gather's done callback fails it (scheduling the task's wake-up), then this cancel finds
      // the gather done: a pending request.
      fx.loop.callSoon(() => {
        expect(g.done()).toBe(true);
        expect(g.cancel()).toBe(false);
        t.cancel();
      });
      await expect(fx.loop.runUntilComplete(t)).rejects.toBeInstanceOf(CancelledError);
    })();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(CancelledError);
    await collectGarbage();
    // asyncio: no "Future exception was never retrieved" (its __wakeup read the exception with result()).
    expect(fx.take()).toEqual([]);
  });
});
