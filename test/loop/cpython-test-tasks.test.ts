/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_tasks.py cases. One `it` per case (or per pair of cases that are
 * one check here), the CPython name first. Virtual clock throughout; no timed assertions.
 *
 * Where JavaScript or tulipwire differs, the title says so ("deliberately different: …", or "JS: …" where the
 * language decides) and the test asserts tulipwire's behaviour.
 *
 * Skipped, with the reason: the unported test_tasks names are about things tulipwire or JavaScript lacks: contextvars
 * (test_context_1..6, test_get_context), implicit exception chaining (`__context__`:
 * test_exception_chaining_after_await*), Python tracebacks of a cancelled await
 * (test_cancel_traceback_for_future_result/_exception), `get_coro`/`get_stack`/`print_stack`, the C/Python
 * implementation switches and refcount or GC segfault checks, the `_enter_task`/`_leave_task`/`_register_task`
 * internals, threads (run_coroutine_threadsafe), the task-factory cases (no setTaskFactory) and coroutine-object
 * introspection (iscoroutine, types.coroutine).
 */
import { describe, expect, it } from 'vitest';
import {
  EventLoop, Future, InvalidStateError, Task, VirtualClock, allTasks, asCompleted, currentTask, ensureFuture, gather,
  getRunningLoop, shield, sleep,
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

  it('test_tasks.BaseTaskTests.test_task_class: the result, done(), and getLoop() is the loop the task was made on, for a second loop too', async () => {
    async function notmuch(): Promise<string> {
      return 'ok';
    }
    const t = fx.loop.createTask(notmuch);
    expect(t.getLoop()).toBe(fx.loop);
    await fx.loop.runUntilComplete(t);
    expect(t.done()).toBe(true);
    expect(t.result()).toBe('ok');
    expect(t.getLoop()).toBe(fx.loop);

    // A task made on another loop belongs to that loop (asyncio: new_event_loop(), new_task(loop, …)).
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    try {
      const t2 = loop.createTask(notmuch);
      expect(t2.getLoop()).toBe(loop);
      expect(t2.getLoop()).not.toBe(fx.loop);
      expect(await loop.runUntilComplete(t2)).toBe('ok');
      // Nor can the first loop run it: it is another loop's Future.
      const t3 = loop.createTask(notmuch);
      await expect(fx.loop.runUntilComplete(t3)).rejects.toThrow();
      await loop.runUntilComplete(t3);
    } finally {
      loop.close();
    }
  });

  it('test_tasks.GenericTaskTests.test_future_subclass: Task is a subclass of Future (issubclass(asyncio.Task, asyncio.Future))', async () => {
    expect(Object.getPrototypeOf(Task.prototype)).toBe(Future.prototype);
    const t = fx.loop.createTask(async () => 1);
    expect(t).toBeInstanceOf(Future);
    // A plain Future is not a Task.
    expect(fx.loop.createFuture()).not.toBeInstanceOf(Task);
    expect(await fx.loop.runUntilComplete(t)).toBe(1);
  });
});
