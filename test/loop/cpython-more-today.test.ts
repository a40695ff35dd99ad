/**
 * More ports of CPython 3.13 Lib/test/test_asyncio cases that had none yet: test_tasks.py, test_futures.py,
 * test_locks.py, test_queues.py, test_taskgroups.py and test_pep492.py. One `it` per case (or per pair of cases
 * that are one check here), the CPython name first. Virtual clock throughout; no timed assertions.
 *
 * Where JavaScript or tulipwire differs, the title says so ("deliberately different: …", or "JS: …" where the
 * language decides) and the test asserts tulipwire's behaviour.
 */
import { describe, expect, it } from 'vitest';
import {
  BoundedSemaphore, Condition, EventLoop, Future, InvalidStateError, Lock, Queue, Semaphore, Task, TaskGroup,
  VirtualClock, allTasks, asCompleted, currentTask, ensureFuture, gather, getRunningLoop, shield, sleep, wrapPromise,
} from '../../src/index.js';
import { collectGarbage, useLoop } from '../support/loop.js';

describe('test_tasks.py', () => {
  const fx = useLoop();

  it('test_as_completed (test_tasks): plain and async iteration; results in completion order on the virtual clock', async () => {
    for (const method of ['try_iterator', 'try_async_iterator'] as const) {
      const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
      const completed = new Set<string>();
      const sleeper = (dt: number, x: string) => async (): Promise<string> => {
        await sleep(dt);
        completed.add(x);
        return x;
      };
      const res = await loop.runUntilComplete(async () => {
        const values: string[] = [];
        const aws = [sleeper(0.01, 'b'), sleeper(0.15, 'c'), sleeper(0.01, 'a')];
        if (method === 'try_iterator') {
          for (const f of asCompleted(aws)) values.push(await f);
        } else {
          for await (const f of asCompleted(aws)) values.push(await f);
        }
        return values;
      });
      expect(loop.time()).toBeCloseTo(0.15, 9);
      expect(res.slice(0, 2).sort()).toEqual(['a', 'b']);
      expect(res[2]).toBe('c');
      loop.close();
    }
  });

  it('test_bare_create_task / test_bare_create_named_task (test_tasks): createTask from inside a task, with and without a name', async () => {
    await fx.run(async () => {
      const task = getRunningLoop().createTask(async () => 1);
      expect(task).toBeInstanceOf(Task);
      expect(await task).toBe(1);
      const named = getRunningLoop().createTask(async () => {}, { name: 'No-op' });
      expect(named.getName()).toBe('No-op');
      await named;
    });
  });

  it('test_coroutine_non_gen_function (test_tasks): an async function runs to its value', async () => {
    expect(await fx.loop.runUntilComplete(async () => 'test')).toBe('test');
  });

  it('test_coroutine_non_gen_function_return_future (test_tasks), JS: an async function returning a Future adopts it, so the task\'s result is the Future\'s result, not the Future', async () => {
    // asyncio: res == fut (a coroutine may return a Future as a plain value). JavaScript resolves a returned
    // thenable, and a Future is one, so the task waits for it and gives its result.
    const fut = fx.loop.createFuture<string>();
    const t1 = fx.loop.createTask(async () => fut);
    const t2 = fx.loop.createTask(async () => {
      fut.setResult('test');
    });
    expect(await fx.loop.runUntilComplete(t1)).toBe('test');
    expect(t2.result()).toBeUndefined();
  });

  it('test_create_task_with_async_function / test_create_task_with_asynclike_function (test_tasks): an async function, or a function returning a custom thenable, twice each', async () => {
    for (let i = 0; i < 2; i++) {
      const task = fx.loop.createTask(async () => {});
      expect(task).toBeInstanceOf(Task);
      await fx.loop.runUntilComplete(task);
    }
    // CoroLikeObject: an awaitable that is not a coroutine. Here: a function returning a bare thenable.
    const coroLike = (): PromiseLike<number> => ({
      then(onF, onR) {
        return Promise.resolve(42).then(onF, onR);
      },
    });
    for (let i = 0; i < 2; i++) {
      const task = fx.loop.createTask(coroLike);
      expect(task).toBeInstanceOf(Task);
      expect(await fx.loop.runUntilComplete(task)).toBe(42);
    }
  });

  it('test_current_task_with_implicit_loop (test_tasks): currentTask(loop), currentTask(undefined) and currentTask() agree; null once done', async () => {
    const task: Task<void> = fx.loop.createTask(async () => {
      expect(currentTask(fx.loop)).toBe(task);
      expect(currentTask(undefined)).toBe(task);
      expect(currentTask()).toBe(task);
    });
    await fx.loop.runUntilComplete(task);
    expect(currentTask(fx.loop)).toBeNull();
  });

  it('test_ensure_future_awaitable / test_ensure_future_task_awaitable (test_tasks): an awaitable object is wrapped on the given loop', async () => {
    // class Aw: __await__ delegating to a coroutine; here an object whose then() delegates to a promise.
    const aw = { then: (onF: (v: string) => unknown, onR: (e: unknown) => unknown) => Promise.resolve('ok').then(onF, onR) };
    const fut = ensureFuture(aw as PromiseLike<string>, fx.loop);
    expect(fut.getLoop()).toBe(fx.loop);
    await fx.loop.runUntilComplete(fut);
    expect(fut.result()).toBe('ok');
    // Aw() whose __await__ is sleep(0, result='ok'): the thenable is a tulipwire Future's then.
    const aw2 = { then: (onF: (v: string) => unknown, onR: (e: unknown) => unknown) => sleep(0, 'ok', fx.loop).then(onF, onR) };
    const task = ensureFuture(aw2 as PromiseLike<string>, fx.loop);
    await fx.loop.runUntilComplete(task);
    expect(task.done()).toBe(true);
    expect(task.result()).toBe('ok');
  });

  it('test_ensure_future_coroutine (test_tasks): a function becomes a Task of the given or the running loop; without either it is refused', async () => {
    const notmuch = async (): Promise<string> => 'ok';
    const t = ensureFuture(notmuch, fx.loop);
    expect(t).toBeInstanceOf(Task);
    expect(t.getLoop()).toBe(fx.loop);
    await fx.loop.runUntilComplete(t);
    expect(t.result()).toBe('ok');
    // asyncio: RuntimeError 'no current event loop'; here InvalidStateError 'no running event loop'.
    expect(() => ensureFuture(notmuch)).toThrow(InvalidStateError);
    expect(() => ensureFuture(notmuch)).toThrow(/no running event loop/);
    const t2 = await fx.run(() => ({ t: ensureFuture(notmuch) }));
    expect(t2.t.getLoop()).toBe(fx.loop);
    expect(await fx.loop.runUntilComplete(t2.t)).toBe('ok');
  });

  it('test_ensure_future_error_msg (test_tasks): a Future of another loop than the one given is refused (asyncio ValueError; here InvalidStateError), same message', () => {
    const other = new EventLoop({ clock: new VirtualClock() });
    const f = fx.loop.createFuture();
    expect(() => ensureFuture(f, other)).toThrow(InvalidStateError);
    expect(() => ensureFuture(f, other)).toThrow('The future belongs to a different loop than the one specified as the loop argument');
    other.close();
  });

  it('test_foobar (test_tasks): a Future subclass whose getLoop throws can still be awaited by a task', async () => {
    class Fut<T> extends Future<T> {
      override getLoop(): EventLoop {
        throw new Error('AttributeError');
      }
    }
    const fut = new Fut<number>(fx.loop);
    fx.loop.callLater(0.1, () => fut.setResult(1));
    const task = fx.loop.createTask(async () => {
      await fut;
      return 'spam';
    });
    expect(await fx.loop.runUntilComplete(task)).toBe('spam');
  });

  it('test_issue46672 (test_tasks): gather refusing an argument after a function leaves nothing to report', async () => {
    const ran: string[] = [];
    await fx.run(async () => {
      const coro = async (): Promise<string> => {
        ran.push('abc');
        return 'abc';
      };
      expect(() => gather(coro, 42 as unknown as Promise<unknown>)).toThrow(TypeError);
      await sleep(0);
      await sleep(0);
    });
    // As in asyncio (3.13 checked): the function before the bad argument already became a Task and runs.
    expect(ran).toEqual(['abc']);
    expect(fx.records).toEqual([]);
  });

  it('test_set_result_causes_invalid_state (test_tasks): a task finished behind its back by Future.setResult gives that result, and its first step reports InvalidStateError "step(): already done"', async () => {
    let started = false;
    const task = fx.loop.createTask(async () => {
      started = true;
      await sleep(0.1);
      return 10;
    });
    Future.prototype.setResult.call(task, 'spam');
    expect(await fx.loop.runUntilComplete(task)).toBe('spam');
    expect(started).toBe(false);
    const recs = fx.take();
    expect(recs).toHaveLength(1);
    expect(recs[0]!.message).toMatch(/^Exception in callback /);
    expect(recs[0]!.exception).toBeInstanceOf(InvalidStateError);
    expect(String((recs[0]!.exception as Error).message)).toMatch(/step\(\): already done/);
  });

  it('test_set_exception_causes_invalid_state (test_tasks): the same through Future.setException; the task fails with that exception', async () => {
    class MyExc extends Error {}
    let started = false;
    const task = fx.loop.createTask(async () => {
      started = true;
      await sleep(0.1);
      return 10;
    });
    Future.prototype.setException.call(task, new MyExc());
    await expect(fx.loop.runUntilComplete(task)).rejects.toBeInstanceOf(MyExc);
    expect(started).toBe(false);
    const recs = fx.take();
    expect(recs).toHaveLength(1);
    expect(recs[0]!.message).toMatch(/^Exception in callback /);
    expect(recs[0]!.exception).toBeInstanceOf(InvalidStateError);
    expect(String((recs[0]!.exception as Error).message)).toMatch(/step\(\): already done/);
  });

  it('test_success (test_tasks, gather): done only after the last child, results in argument order, one done callback (with and without returnExceptions)', async () => {
    for (const kwargs of [[], [{ returnExceptions: false }]] as const) {
      const [a, b, c] = [fx.loop.createFuture<number>(), fx.loop.createFuture<number>(), fx.loop.createFuture<number>()];
      const fut = fx.loop.callSoon(() => {}) && gather(a, b, c, ...kwargs);
      const calls: unknown[] = [];
      fut.addDoneCallback((f) => calls.push(f));
      b.setResult(1);
      a.setResult(2);
      await fx.runBriefly();
      expect(calls).toEqual([]);
      expect(fut.done()).toBe(false);
      c.setResult(3);
      await fx.runBriefly();
      expect(calls).toEqual([fut]);
      expect(fut.result()).toEqual([2, 1, 3]);
    }
  });

  it('test_task_repr (test_tasks): state, name, wait_for while suspended, result when done (asyncio also shows the coroutine, its line and the callbacks)', async () => {
    const t = fx.loop.createTask(async () => 'abc', { name: 'TestTask' });
    t.addDoneCallback(() => {});
    expect(String(t)).toBe('<Task pending name=TestTask>');
    t.cancel(); // does not take effect at once
    expect(String(t)).toBe('<Task cancelling name=TestTask>');
    await expect(fx.loop.runUntilComplete(t)).rejects.toMatchObject({ name: 'CancelledError' });
    expect(String(t)).toBe('<Task cancelled name=TestTask>');
    const t2 = fx.loop.createTask(async () => 'abc', { name: 'TestTask' });
    await fx.loop.runUntilComplete(t2);
    expect(String(t2)).toBe('<Task finished name=TestTask result=abc>');
    // test_task_repr_wait_for: a task suspended on a Future names it, and stops naming it once resumed.
    const fut = fx.loop.createFuture<number>();
    const t3 = fx.loop.createTask(async () => fut, { name: 'Waiter' });
    await fx.runBriefly();
    expect(String(t3)).toBe('<Task pending name=Waiter wait_for=<Future pending>>');
    t3.cancel();
    expect(String(t3)).toBe('<Task cancelling name=Waiter wait_for=<Future cancelled>>');
    await expect(fx.loop.runUntilComplete(t3)).rejects.toMatchObject({ name: 'CancelledError' });
    expect(String(t3)).toBe('<Task cancelled name=Waiter>');
    const t4 = fx.loop.createTask(async () => {
      throw new TypeError('nope');
    }, { name: 'Failing' });
    await expect(fx.loop.runUntilComplete(t4)).rejects.toThrow('nope');
    expect(String(t4)).toBe('<Task finished name=Failing exception=TypeError: nope>');
  });

  it('test_task_repr_autogenerated (test_tasks): Task-N names differ and increase', async () => {
    const t1 = fx.loop.createTask(async () => 123);
    const t2 = fx.loop.createTask(async () => 123);
    expect(String(t1)).not.toBe(String(t2));
    const m1 = /^<Task pending name=Task-(\d+)/.exec(String(t1));
    const m2 = /^<Task pending name=Task-(\d+)/.exec(String(t2));
    expect(m1).not.toBeNull();
    expect(m2).not.toBeNull();
    expect(Number(m1![1])).toBeLessThan(Number(m2![1]));
    await fx.loop.runUntilComplete(t1);
    await fx.loop.runUntilComplete(t2);
  });

  it('test_task_repr_name_not_str (test_tasks): setName with a non-string stores its string form', async () => {
    const t = fx.loop.createTask(async () => 123);
    t.setName(new Set([6]) as unknown as string);
    expect(t.getName()).toBe('[object Set]');
    await fx.loop.runUntilComplete(t);
  });

  it('test_shield_coroutine_use_running_loop / test_shield_coroutine_without_loop (test_tasks)', async () => {
    const coro = async (): Promise<number> => 42;
    const outer = await fx.run(() => ({ f: shield(coro) }));
    expect(outer.f.getLoop()).toBe(fx.loop);
    expect(await fx.loop.runUntilComplete(outer.f)).toBe(42);
    // asyncio: RuntimeError 'no current event loop'.
    expect(() => shield(coro)).toThrow(/no running event loop/);
  });

  it('test_as_completed_coroutine_use_running_loop / test_as_completed_coroutine_without_loop (test_tasks)', async () => {
    const coro = async (): Promise<number> => 42;
    await fx.run(async () => {
      const futs = [...asCompleted([coro])];
      expect(futs).toHaveLength(1);
      expect(await futs[0]).toBe(42);
    });
    expect(() => [...asCompleted([coro])]).toThrow(/no running event loop/);
  });

  it('test_log_destroyed_pending_task (test_tasks), deliberately different: the loop holds a pending task strongly, so GC never destroys it; close() reports it instead', async () => {
    fx.loop.setDebug(true);
    let task: Task<void> | null = ensureFuture(async () => {
      await fx.loop.createFuture();
      throw new Error('code never reached');
    }, fx.loop) as unknown as Task<void>;
    const name = task.getName();
    expect(allTasks(fx.loop)).toEqual(new Set([task]));
    await fx.runBriefly();
    task = null;
    await collectGarbage();
    const left = [...allTasks(fx.loop)];
    expect(left.map((t) => t.getName())).toEqual([name]);
    expect(fx.records).toEqual([]);
    fx.loop.close();
    const recs = fx.take();
    expect(recs.map((r) => r.message)).toEqual(['Task was destroyed but it is pending!']);
    expect(recs[0]!.task).toBe(left[0]);
  });
});

describe('test_futures.py', () => {
  const fx = useLoop();

  it('test_future_exception_never_retrieved (test_futures): without debug, the default handler logs "Future exception was never retrieved" once, with the exception and no creation stack', async () => {
    fx.loop.setExceptionHandler(null); // the default handler writes to the loop's logger (fx.warnings)
    (function createTheFuture() {
      const f = fx.loop.createFuture();
      f.setException(new RangeError('memory error'));
    })();
    await fx.runBriefly();
    await collectGarbage();
    const logged = fx.warnings.filter((w) => w.includes('never retrieved'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/^Future exception was never retrieved\n/);
    expect(logged[0]).toContain('RangeError: memory error');
    expect(logged[0]).not.toContain('created at:');
  });

  it('test_wrap_future_use_running_loop / test_wrap_future_without_loop (test_futures), with a Promise for the concurrent Future: wrapPromise binds to the running loop, and wants one', async () => {
    const p = Promise.resolve(42);
    const f = await fx.run(() => ({ f: wrapPromise(p) }));
    expect(f.f.getLoop()).toBe(fx.loop);
    expect(await fx.loop.runUntilComplete(f.f)).toBe(42);
    expect(() => wrapPromise(p)).toThrow(/no running event loop/);
  });

  it('test_wrap_future_cancel (test_futures), with a Promise: cancelling the wrapper leaves it cancelled when the Promise settles later', async () => {
    let resolve!: (v: number) => void;
    const p = new Promise<number>((r) => (resolve = r));
    const f = wrapPromise(p, fx.loop);
    f.cancel();
    resolve(42);
    await fx.runBriefly();
    await p;
    expect(f.cancelled()).toBe(true);
  });
});

describe('test_locks.py / test_pep492.py', () => {
  const fx = useLoop();
  const primitives = (): [string, Lock | Condition | Semaphore][] => [
    ['Lock', new Lock()], ['Condition', new Condition()], ['Semaphore', new Semaphore()], ['BoundedSemaphore', new BoundedSemaphore()],
  ];

  it('test_lock / test_semaphore (test_locks) and test_context_manager_with_await (test_pep492), JS: awaiting a primitive is no acquire (it is no thenable), it just gives the primitive back', async () => {
    await fx.run(async () => {
      for (const [, p] of primitives()) {
        expect('then' in p).toBe(false);
        expect(await (p as unknown as PromiseLike<unknown>)).toBe(p);
        expect(p.locked()).toBe(false);
      }
      const sem = new Semaphore();
      await (sem as unknown as PromiseLike<unknown>);
      expect(sem.value).toBe(1);
    });
  });

  it('test_context_manager_async_with (test_pep492): withLock holds Lock, Condition, Semaphore and BoundedSemaphore across awaits, and releases', async () => {
    for (const [, p] of primitives()) {
      await fx.run(async () => {
        await sleep(0.01);
        expect(p.locked()).toBe(false);
        const r = await p.withLock(async () => {
          expect(p.locked()).toBe(true);
          await sleep(0.01);
          expect(p.locked()).toBe(true);
        });
        expect(r).toBeUndefined(); // `async with lock as _lock`: _lock is None
        expect(p.locked()).toBe(false);
      });
      expect(p.locked()).toBe(false);
    }
  });

  it('test_ambiguous_loops (test_locks): a Lock or Condition first used on one loop refuses another ("is bound to a different event loop"; asyncio RuntimeError, here InvalidStateError)', async () => {
    const other = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    const lock = new Lock();
    const cond2 = new Condition();
    await other.runUntilComplete(async () => {
      // A lock binds to a loop when a caller has to wait (asyncio's fast path binds nothing either).
      await lock.acquire();
      const b = other.createTask(() => lock.acquire());
      await sleep(0);
      lock.release();
      await b;
      lock.release();
      // A condition binds when it is waited on.
      const w = other.createTask(() => cond2.withLock(() => cond2.wait()));
      await sleep(0);
      w.cancel();
      await expect(w).rejects.toMatchObject({ name: 'CancelledError' });
    });
    await fx.run(async () => {
      // wrong_loop_in_lock: acquired at once through the fast path; a Condition over it finds the mismatch once it waits.
      await lock.acquire();
      const cond = new Condition(lock);
      await expect(cond.acquire()).rejects.toThrow(InvalidStateError);
      await expect(cond.acquire()).rejects.toThrow('Lock is bound to a different event loop');
      lock.release();
      // wrong_loop_in_cond
      await cond2.acquire();
      await expect(cond2.wait()).rejects.toThrow('Condition is bound to a different event loop');
      expect(cond2.locked()).toBe(true);
      cond2.release();
    });
    other.close();
  });
});

describe('test_queues.py', () => {
  const fx = useLoop();

  it('test_str (test_queues): String(queue) is its repr: no id, getters, putters, tasks', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      expect(String(q).startsWith('<Queue')).toBe(true);
      expect(String(q)).toBe(q.toString());
      const q1 = new Queue<number>();
      await TaskGroup.run(async (tg) => {
        const getter = tg.createTask(() => q1.get());
        await sleep(0);
        expect(String(q1)).toContain('getters=1');
        q1.putNowait(0);
        expect(await getter).toBe(0);
      });
      const q2 = new Queue<number>(1);
      await TaskGroup.run(async (tg) => {
        q2.putNowait(1);
        const putter = tg.createTask(() => q2.put(2));
        await sleep(0);
        expect(String(q2)).toContain('putters=1');
        q2.getNowait();
        await putter;
      });
      const q3 = new Queue<number>();
      q3.putNowait(1);
      expect(String(q3)).toContain('tasks=1');
    });
  });
});

describe('test_taskgroups.py', () => {
  const fx = useLoop();

  it('test_coro_closed_when_tg_closed (test_taskgroups): createTask on a finished group throws "is finished" and never calls the function', async () => {
    await fx.run(async () => {
      const tg = new TaskGroup();
      await tg.run(() => undefined);
      let called = false;
      expect(() => tg.createTask(async () => {
        called = true;
      })).toThrow(/is finished/);
      await sleep(0);
      expect(called).toBe(false);
    });
  });
});
