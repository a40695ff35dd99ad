/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_locks.py cases (with test_pep492.py's lock cases, which check the
 * same primitives under `async with`): reprs, `async with` as withLock, loop binding, and what JavaScript refuses
 * where asyncio raises. Each `it` names its CPython case. Virtual clock throughout; no timed assertions.
 *
 * Where JavaScript or tulipwire differs, the title says so ("deliberately different: …", or "JS: …" where the
 * language decides) and the test asserts tulipwire's behaviour.
 */
import { describe, expect, it } from 'vitest';
import { BoundedSemaphore, Condition, Event, EventLoop, InvalidStateError, Lock, Semaphore, VirtualClock, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

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

describe('test_locks.py', () => {
  const fx = useLoop();

  it('test_locks.LockTests.test_lock_doesnt_accept_loop_parameter, JS: the type checker refuses a loop argument (asyncio: TypeError at run time)', async () => {
    // asyncio: Lock(loop=loop) etc. raise "TypeError: Lock.__init__() got an unexpected keyword argument 'loop'".
    // TypeScript has no keyword arguments: passing a loop is a compile error, which `tsc --noEmit` checks through
    // the @ts-expect-error lines below (never run: at run time JavaScript would just take the extra argument).
    const refused = (loop: EventLoop): unknown[] => [
      // @ts-expect-error Lock takes no arguments
      new Lock(loop),
      // @ts-expect-error Event takes no arguments
      new Event(loop),
      // @ts-expect-error Condition takes a Lock, not a loop
      new Condition(loop),
      // @ts-expect-error Semaphore takes a number of permits
      new Semaphore(loop),
      // @ts-expect-error BoundedSemaphore takes a number of permits
      new BoundedSemaphore(loop),
    ];
    expect(typeof refused).toBe('function');
    // What asyncio does instead of a loop argument: each primitive binds to the loop it is first used from.
    await fx.run(async () => {
      const lock = new Lock();
      await lock.acquire();
      const waiter = fx.loop.createTask(() => lock.acquire());
      await sleep(0);
      lock.release();
      expect(await waiter).toBe(true);
      lock.release();
    });
  });

  it('test_locks.LockTests.test_lock_by_with_statement, JS: no primitive has Symbol.dispose, so `using` (the only synchronous scope) cannot hold one; it stays unlocked', () => {
    // asyncio: `with lock:` raises TypeError "'Lock' object does not support the context manager protocol" and the
    // lock stays unlocked. JavaScript's synchronous scope is `using`, which needs [Symbol.dispose]; without it
    // `using x = lock` throws TypeError before the body runs. Holding a primitive always awaits (withLock/acquire).
    for (const lock of [new Lock(), new Condition(), new Semaphore(), new BoundedSemaphore()]) {
      expect((lock as unknown as Record<symbol, unknown>)[Symbol.dispose]).toBeUndefined();
      expect(lock.locked()).toBe(false);
    }
  });

  it('test_locks.EventTests.test_repr: ends with [unset]>, [set]>, waiters:1 while one waits (asyncio also shows the class path and id)', async () => {
    await fx.run(async () => {
      const ev = new Event();
      expect(String(ev).endsWith('[unset]>')).toBe(true);
      expect(String(ev)).toBe('<Event [unset]>');
      ev.set();
      expect(String(ev).endsWith('[set]>')).toBe(true);
      ev.clear();
      // asyncio appends a mock to _waiters; here a real waiter.
      const w = fx.loop.createTask(() => ev.wait());
      await sleep(0);
      expect(String(ev)).toContain('waiters:1');
      expect(String(ev)).toBe('<Event [unset, waiters:1]>');
      ev.set();
      expect(await w).toBe(true);
      expect(String(ev)).toBe('<Event [set]>');
    });
  });

  it('test_locks.ConditionTests.test_repr: unlocked, locked, waiters:1, waiters:2', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      expect(String(cond)).toContain('unlocked');
      expect(String(cond)).toBe('<Condition [unlocked]>');
      await cond.acquire();
      expect(String(cond)).toBe('<Condition [locked]>');
      // asyncio appends mocks to _waiters; here real waiters, each of which releases the lock while it waits.
      const w1 = fx.loop.createTask(() => cond.withLock(() => cond.wait()));
      const w2 = fx.loop.createTask(() => cond.withLock(() => cond.wait()));
      cond.release();
      await sleep(0);
      await sleep(0);
      await sleep(0);
      expect(String(cond)).toContain('waiters:2');
      await cond.withLock(() => {
        expect(String(cond)).toBe('<Condition [locked, waiters:2]>');
        cond.notify(1);
      });
      await w1;
      expect(String(cond)).toBe('<Condition [unlocked, waiters:1]>');
      await cond.withLock(() => cond.notifyAll());
      await w2;
      expect(String(cond)).toBe('<Condition [unlocked]>');
    });
  });

  it('test_locks.ConditionTests.test_context_manager: withLock (async with cond) holds the lock inside, not after', async () => {
    await fx.run(async () => {
      const cond = new Condition();
      expect(cond.locked()).toBe(false);
      await cond.withLock(() => {
        expect(cond.locked()).toBe(true);
      });
      expect(cond.locked()).toBe(false);
    });
  });
});
