/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_futures.py cases: an exception never retrieved, wrapping a
 * concurrent Future (here a Promise), and set_exception with a class. Each `it` names its CPython case. Virtual clock
 * throughout; no timed assertions.
 *
 * A difference found and fixed: `setException(RangeError)` stored the constructor, where asyncio instantiates an
 * exception class. Skipped: the `__eq__`-mutation cases (test_remove_done_callbacks_list_mutation/_clear,
 * test_schedule_callbacks_list_mutation_2: removeDoneCallback compares by identity, so no user code runs during the
 * scan), duck-typed Futures (DuckTests: `isFuture` is `instanceof`), and test_futures2's two contextvars
 * handler-context cases.
 */
import { describe, expect, it } from 'vitest';
import { wrapPromise } from '../../src/index.js';
import type { Future } from '../../src/index.js';
import { collectGarbage, useLoop } from '../support/loop.js';

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

  it('test_futures.BaseFutureTests.test_exception_class: setException(RangeError) stores an instance, as asyncio instantiates the class (this port found the constructor itself stored)', async () => {
    const f = fx.loop.createFuture();
    f.setException(RangeError);
    expect(f.exception()).toBeInstanceOf(RangeError);
    await expect(fx.run(() => f)).rejects.toBeInstanceOf(RangeError);
    const g = fx.loop.createFuture();
    g.setException(Error);
    expect(g.exception()).toBeInstanceOf(Error);
    // An instance, or any other value, is stored as given.
    const e = new TypeError('t');
    const h: Future<unknown> = fx.loop.createFuture();
    h.setException(e);
    expect(h.exception()).toBe(e);
  });
});
