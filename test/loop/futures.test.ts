/**
 * Future semantics, ported from CPython's test_futures (BaseFutureTests) plus the thenable behaviour JavaScript
 * adds: `await fut`, chaining, wrapPromise, and "exception never retrieved" through FinalizationRegistry.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, Future, InvalidStateError, allTasks, isFuture, sleep, waitFor, wrapPromise } from '../../src/index.js';
import { collectGarbage, useLoop } from '../support/loop.js';

describe('Future', () => {
  const fx = useLoop();

  it('test_futures.test_initial_state', () => {
    const f = fx.loop.createFuture();
    expect(f.cancelled()).toBe(false);
    expect(f.done()).toBe(false);
    f.cancel();
    expect(f.cancelled()).toBe(true);
  });

  it('test_futures.test_constructor_without_loop: needs a running loop', () => {
    expect(() => new Future()).toThrow(InvalidStateError);
  });

  it('test_futures.test_constructor_use_running_loop', async () => {
    const { f } = await fx.run(() => ({ f: new Future() }));
    expect(f.getLoop()).toBe(fx.loop);
  });

  it('test_futures.test_cancel', () => {
    const f = fx.loop.createFuture();
    expect(f.cancel()).toBe(true);
    expect(f.cancelled()).toBe(true);
    expect(f.done()).toBe(true);
    expect(() => f.result()).toThrow(CancelledError);
    expect(() => f.exception()).toThrow(CancelledError);
    expect(() => f.setResult(null)).toThrow(InvalidStateError);
    expect(() => f.setException(new Error())).toThrow(InvalidStateError);
    expect(f.cancel()).toBe(false);
  });

  it('test_futures.test_future_cancel_message_getter: the message reaches the CancelledError', () => {
    const f = fx.loop.createFuture();
    f.cancel('my message');
    try {
      f.result();
      expect.unreachable();
    } catch (e) {
      expect((e as CancelledError).code).toBe('TW_CANCELLED');
      expect((e as CancelledError).message).toBe('my message');
    }
  });

  it('test_futures.test_result', () => {
    const f = fx.loop.createFuture<number>();
    expect(() => f.result()).toThrow(InvalidStateError);
    f.setResult(42);
    expect(f.cancelled()).toBe(false);
    expect(f.done()).toBe(true);
    expect(f.result()).toBe(42);
    expect(f.exception()).toBe(null);
    expect(() => f.setResult(null as never)).toThrow(InvalidStateError);
    expect(() => f.setException(new Error())).toThrow(InvalidStateError);
    expect(f.cancel()).toBe(false);
  });

  it('test_futures.test_exception', () => {
    const exc = new RangeError('x');
    const f = fx.loop.createFuture();
    expect(() => f.exception()).toThrow(InvalidStateError);
    f.setException(exc);
    expect(f.done()).toBe(true);
    expect(() => f.result()).toThrow(exc);
    expect(f.exception()).toBe(exc);
    expect(() => f.setResult(null)).toThrow(InvalidStateError);
    expect(f.cancel()).toBe(false);
  });

  it('test_futures.test_isfuture', () => {
    expect(isFuture(fx.loop.createFuture())).toBe(true);
    expect(isFuture(Promise.resolve())).toBe(false);
    expect(isFuture({ then() {} })).toBe(false);
  });

  it('test_futures.test_future_repr', () => {
    const f = fx.loop.createFuture<number>();
    expect(String(f)).toBe('<Future pending>');
    f.setResult(3);
    expect(String(f)).toBe('<Future finished result=3>');
    const c = fx.loop.createFuture();
    c.cancel();
    expect(String(c)).toBe('<Future cancelled>');
  });

  it('test_futures.test_callbacks_invoked_on_set_result: through callSoon, in registration order', async () => {
    const rec: string[] = [];
    const f = fx.loop.createFuture<number>();
    f.addDoneCallback((x) => rec.push(`a${x.result()}`));
    f.addDoneCallback((x) => rec.push(`b${x.result()}`));
    f.setResult(10);
    expect(rec).toEqual([]); // never synchronously
    await fx.runBriefly();
    expect(rec).toEqual(['a10', 'b10']);
  });

  it('test_futures.test_callbacks_invoked_on_set_exception', async () => {
    const rec: unknown[] = [];
    const f = fx.loop.createFuture();
    const e = new Error('x');
    f.addDoneCallback((x) => rec.push(x.exception()));
    f.setException(e);
    await fx.runBriefly();
    expect(rec).toEqual([e]);
  });

  it('test_futures.test_remove_done_callback: returns the count removed', async () => {
    const rec: number[] = [];
    const f = fx.loop.createFuture();
    const cb1 = (): number => rec.push(1);
    const cb2 = (): number => rec.push(2);
    const cb3 = (): number => rec.push(3);
    f.addDoneCallback(cb1);
    f.addDoneCallback(cb2);
    f.addDoneCallback(cb1);
    f.addDoneCallback(cb3);
    expect(f.removeDoneCallback(cb1)).toBe(2);
    expect(f.removeDoneCallback(cb1)).toBe(0);
    f.setResult(null);
    await fx.runBriefly();
    expect(rec).toEqual([2, 3]);
  });

  it('test_futures.test_callbacks_remove_first_and_second_callback', async () => {
    const rec: number[] = [];
    const f = fx.loop.createFuture();
    const cbs = [1, 2, 3].map((i) => (): number => rec.push(i));
    for (const c of cbs) f.addDoneCallback(c);
    f.removeDoneCallback(cbs[0]!);
    f.removeDoneCallback(cbs[1]!);
    f.setResult(null);
    await fx.runBriefly();
    expect(rec).toEqual([3]);
  });

  it('test_futures.test_callbacks_remove_first_callback / test_callbacks_remove_third_callback', async () => {
    for (const [removed, expected] of [
      [0, [17, 100]],
      [2, [42, 17]],
    ] as const) {
      const bag: number[] = [];
      const f = fx.loop.createFuture<string>();
      const cbs = [42, 17, 100].map((v) => (): number => bag.push(v));
      for (const c of cbs) f.addDoneCallback(c);
      f.removeDoneCallback(cbs[removed]!);
      f.removeDoneCallback(cbs[removed]!);
      expect(bag).toEqual([]);
      f.setResult('foo');
      await fx.runBriefly();
      expect(bag).toEqual(expected);
      expect(f.result()).toBe('foo');
    }
  });

  it('removing the first callback, then adding one, keeps registration order', async () => {
    const bag: number[] = [];
    const f = fx.loop.createFuture<null>();
    const cb1 = (): number => bag.push(1);
    f.addDoneCallback(cb1);
    f.addDoneCallback(() => bag.push(2));
    f.removeDoneCallback(cb1);
    f.addDoneCallback(() => bag.push(3));
    f.addDoneCallback(cb1);
    f.setResult(null);
    await fx.runBriefly();
    expect(bag).toEqual([2, 3, 1]);
  });

  it('test_futures.test_schedule_callbacks_list_mutation_1: a callback removing the others once done removes nothing', async () => {
    const bag: string[] = [];
    const f = fx.loop.createFuture<number>();
    const str = (): number => bag.push('str');
    let removed = -1;
    f.addDoneCallback((x) => {
      removed = x.removeDoneCallback(str);
    });
    f.addDoneCallback(str);
    f.addDoneCallback(str);
    f.setResult(1);
    await fx.runBriefly();
    expect(removed).toBe(0);
    expect(bag).toEqual(['str', 'str']);
  });

  it('test_futures.test_set_result_unless_cancelled: setResult on a cancelled Future throws; it stays cancelled', () => {
    const f = fx.loop.createFuture<number>();
    f.cancel();
    expect(() => f.setResult(2)).toThrow(InvalidStateError);
    expect(f.cancelled()).toBe(true);
  });

  it('addDoneCallback on a done Future schedules it (never runs it synchronously)', async () => {
    const f = fx.loop.createFuture();
    f.setResult(1);
    const rec: number[] = [];
    f.addDoneCallback(() => rec.push(1));
    expect(rec).toEqual([]);
    await fx.runBriefly();
    expect(rec).toEqual([1]);
  });

  it('await works in any async function, and chaining follows Promise rules', async () => {
    const f = fx.loop.createFuture<number>();
    fx.loop.callLater(1, () => f.setResult(20));
    const chained = f.then((v) => v + 1).then((v) => v * 2);
    const outside = (async () => (await f) + 100)();
    await fx.run(() => sleep(2));
    expect(await chained).toBe(42);
    expect(await outside).toBe(120);
    const g = fx.loop.createFuture();
    g.setException(new Error('e'));
    expect(await g.catch((e: Error) => e.message)).toBe('e');
    const order: string[] = [];
    const c = fx.loop.createFuture<number>();
    c.cancel('stop');
    const r = await c.finally(() => order.push('finally')).then(
      () => 'fulfilled',
      (e: CancelledError) => e.code,
    );
    expect([r, order]).toEqual(['TW_CANCELLED', ['finally']]);
  });

  it('a Future is structurally a Promise for TypeScript', () => {
    const p: Promise<number> = fx.loop.createFuture<number>();
    expect(Object.prototype.toString.call(p)).toBe('[object Future]');
  });

  it('wrapPromise turns a native Promise into a Future', async () => {
    const r = await fx.run(async () => {
      const ok = wrapPromise(Promise.resolve(5));
      const bad = wrapPromise(Promise.reject(new Error('no')));
      const v = await ok;
      const e = await bad.then(
        () => null,
        (x: Error) => x.message,
      );
      return [v, e, ok instanceof Future];
    });
    expect(r).toEqual([5, 'no', true]);
  });

  it('test_futures.test_tb_logger_exception_unretrieved: "Future exception was never retrieved" at GC', async () => {
    (() => {
      const f = fx.loop.createFuture();
      f.setException(new RangeError('lost'));
    })();
    await collectGarbage();
    const recs = fx.take();
    expect(recs.map((r) => r.message)).toEqual(['Future exception was never retrieved']);
    expect(String(recs[0]!.exception)).toBe('RangeError: lost');
  });

  it('test_futures.test_tb_logger_exception_retrieved / result_unretrieved: no report', async () => {
    (() => {
      const f = fx.loop.createFuture();
      f.setException(new RangeError('seen'));
      f.exception();
      const g = fx.loop.createFuture();
      g.setResult(1);
      const h = fx.loop.createFuture();
      h.setException(new Error('awaited'));
      h.then(undefined, () => {});
      const c = fx.loop.createFuture();
      c.cancel();
    })();
    await fx.runBriefly();
    await collectGarbage();
    expect(fx.take()).toEqual([]);
  });

  it('test_futures.test_tb_logger_not_called_after_cancel: cancel() on a failed Future silences the report', async () => {
    (() => {
      const f = fx.loop.createFuture();
      f.setException(new Error('cancelled later'));
      expect(f.cancel()).toBe(false);
    })();
    await collectGarbage();
    expect(fx.take()).toEqual([]);
  });

  it('test_futures.test_tb_logger_abandoned: a Future never done reports nothing', async () => {
    (() => {
      fx.loop.createFuture();
    })();
    await collectGarbage();
    expect(fx.take()).toEqual([]);
  });

  it('test_futures.test_future_cancel_message_setter: a message changed after cancel() is the one awaiters see', async () => {
    const f = fx.loop.createFuture();
    f.cancel('my message');
    f._cancelMessage = 'my new message';
    await expect(fx.loop.runUntilComplete(f)).rejects.toThrow('my new message');
    expect(f._cancelMessage).toBe('my new message');
  });

  it('test_futures.test_future_source_traceback: debug mode records where a Future was created', () => {
    fx.loop.setDebug(true);
    const f = fx.loop.createFuture();
    expect(f._sourceTraceback).toContain('futures.test.ts');
    fx.loop.setDebug(false);
    expect(fx.loop.createFuture()._sourceTraceback).toBe(undefined);
  });
});

describe('more test_futures ports', () => {
  const fx = useLoop();

  it('test_yield_from_twice (test_futures): the second await of a done Future gives the same value without yielding', async () => {
    const f = fx.loop.createFuture<number>();
    const rec: unknown[] = [];
    const t = fx.loop.createTask(async () => {
      rec.push('A');
      const x = await f;
      rec.push(['B', x]);
      fx.loop.callSoon(() => rec.push('next iteration'));
      const y = await f;
      rec.push(['C', y]);
    });
    await fx.runBriefly();
    expect(rec).toEqual(['A']);
    f.setResult(42);
    await fx.loop.runUntilComplete(t);
    // asyncio: "The second 'yield from f' does not yield f", so C comes before the callback scheduled after B.
    expect(rec).toEqual(['A', ['B', 42], ['C', 42], 'next iteration']);
  });

  it('test_tb_logger_result_unretrieved / test_tb_logger_result_retrieved (test_futures): a result is never reported', async () => {
    (() => {
      const f = fx.loop.createFuture();
      f.setResult(42);
      const g = fx.loop.createFuture();
      g.setResult(42);
      expect(g.result()).toBe(42);
    })();
    await collectGarbage();
    expect(fx.take()).toEqual([]);
  });

  it('test_tb_logger_exception_result_retrieved (test_futures): result() throwing the exception counts as retrieving it', async () => {
    (() => {
      const f = fx.loop.createFuture();
      f.setException(new RangeError('boom'));
      expect(() => f.result()).toThrow(RangeError);
    })();
    await collectGarbage();
    expect(fx.take()).toEqual([]);
  });

  it('test_future_exception_never_retrieved_debug (test_futures): the report names where the Future was created', async () => {
    fx.loop.setDebug(true);
    (function createTheFuture() {
      const f = fx.loop.createFuture();
      f.setException(new RangeError('lost in debug'));
    })();
    fx.loop.setDebug(false);
    await fx.runBriefly();
    await collectGarbage();
    const recs = fx.take();
    expect(recs).toHaveLength(1);
    expect(recs[0]!.message).toBe('Future exception was never retrieved');
    expect(String(recs[0]!.exception)).toBe('RangeError: lost in debug');
    expect(recs[0]!.sourceTraceback).toContain('createTheFuture');
  });
});

describe('test_futures2 ports', () => {
  const fx = useLoop();

  it('test_recursive_repr_for_pending_tasks (test_futures2, bpo-42183): a result that holds its own Future formats as "..."', async () => {
    const f = fx.loop.createFuture<unknown>();
    f.setResult(f);
    expect(String(f)).toBe('<Future finished result=...>');
    const g = fx.loop.createFuture<unknown>();
    g.setResult([g, 1]);
    expect(String(g)).toBe('<Future finished result=...,1>');
    // The CPython scenario: a waiter whose result holds every task, itself among them: it formats, with "...".
    const waiter = await fx.run(async () => [await waitFor(fx.loop.createTask(async () => [...allTasks()]), 10)]);
    const all = waiter[0]!.find((t) => t.done())!;
    expect(String(all)).toMatch(/^<Task finished name=Task-\d+ result=/);
    expect(String(all)).toContain('...');
  });

  it('test_future_traceback (test_futures2): awaiting a failed task again and again does not grow the stack', async () => {
    const future = fx.loop.createTask(async function raiseExc() {
      throw new TypeError('42');
    });
    const stacks = await fx.run(async () => {
      const seen: string[] = [];
      for (let i = 0; i < 5; i++) {
        try {
          await future;
        } catch (e) {
          expect(e).toBeInstanceOf(TypeError);
          seen.push((e as Error).stack!);
        }
      }
      return seen;
    });
    expect(new Set(stacks).size).toBe(1);
    expect(stacks[0]!.split('raiseExc').length - 1).toBe(1);
  });
});
