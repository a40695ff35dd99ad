/**
 * Foreign awaits: a Task that awaits a promise not made by tulipwire (`fs/promises`, `node:crypto`, `Promise.all`,
 * a `setTimeout` promise) keeps its identity: `currentTask()` is right afterwards, its next await on a tulipwire
 * Future is a real cancellation point (CancelledError thrown into the body), `timeout()`/`TaskGroup`/`waitFor`
 * work around it, and a task is never reported done while its body still runs. Also: autojump only jumps once
 * the loop is truly idle (microtasks drained, one libuv turn). Atomic-step ordering stays exact under tracking.
 */
import { webcrypto } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelledError,
  ErrorGroup,
  Event,
  EventLoop,
  Lock,
  TaskGroup,
  TimeoutError,
  VirtualClock,
  currentTask,
  enableForeignAwaitTracking,
  foreignAwaitTracking,
  getRunningLoop,
  isCancelledError,
  run,
  sleep,
  timeout,
  waitFor,
  wrapPromise,
} from '../../src/index.js';
import type { Task } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

/** A promise tulipwire knows nothing about, settled by a Node timer (a macrotask outside the loop). */
function nodeTimer(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A promise settled in libuv's check phase. */
function nodeImmediate(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

let dir = '';
let file = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tw-foreign-'));
  file = join(dir, 'data.txt');
  await writeFile(file, 'tulipwire');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the issue repro, through run()', () => {
  it('run() turns tracking on: currentTask, a cancellation point after a foreign await, timeout()', async () => {
    const seen: unknown[] = [];
    const out = await run(
      async () => {
        await nodeTimer(10);
        seen.push(['after foreign await', currentTask()?.getName() ?? null]);
        const loop = getRunningLoop();
        const t = loop.createTask(async () => {
          await nodeTimer(5);
          try {
            await sleep(10);
          } catch (e) {
            seen.push(['inner saw', (e as CancelledError).code]);
            throw e;
          }
        });
        await sleep(0.05);
        expect(t.done()).toBe(false);
        t.cancel();
        try {
          await t;
        } catch (e) {
          seen.push(['task', (e as CancelledError).code]);
        }
        expect(t.cancelled()).toBe(true);
        return await timeout(1, async () => 1);
      },
      { handleSignals: false },
    );
    expect(foreignAwaitTracking()).toBe(true);
    expect(out).toBe(1);
    expect(seen).toEqual([
      ['after foreign await', 'main'],
      ['inner saw', 'TW_CANCELLED'],
      ['task', 'TW_CANCELLED'],
    ]);
  });
});

describe('foreign awaits inside tasks', () => {
  // The real clock: a virtual clock's autojump cannot see fs or a Node timer, and would jump while they run.
  const fx = useLoop({ real: true, trackForeignAwaits: true });

  it('fs/promises and node:crypto: currentTask() is the task afterwards, in every task', async () => {
    const names: (string | null)[] = [];
    await fx.run(async () => {
      const body = async (): Promise<void> => {
        const text = await readFile(file, 'utf8');
        expect(text).toBe('tulipwire');
        names.push(currentTask()?.getName() ?? null);
        await webcrypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
        names.push(currentTask()?.getName() ?? null);
        await sleep(0);
        names.push(currentTask()?.getName() ?? null);
      };
      const a = fx.loop.createTask(body, { name: 'a' });
      const b = fx.loop.createTask(body, { name: 'b' });
      await a;
      await b;
      expect(currentTask()?.getName()).not.toBe('a');
    });
    expect(names.filter((n) => n === 'a')).toHaveLength(3);
    expect(names.filter((n) => n === 'b')).toHaveLength(3);
  });

  it('after fs/promises the next sleep() is a cancellation point: the body catches CancelledError and cleans up', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      const t = fx.loop.createTask(async () => {
        await readFile(file);
        rec.push('read');
        try {
          await sleep(3600);
          rec.push('slept');
        } catch (e) {
          rec.push(isCancelledError(e) ? 'cancelled' : 'other');
          await sleep(0.001); // cleanup may still await
          rec.push('cleaned up');
          throw e;
        }
      });
      while (!rec.includes('read')) await sleep(0.001);
      await sleep(0);
      t.cancel('stop');
      await expect(t).rejects.toThrow(CancelledError);
      expect(t.cancelled()).toBe(true);
    });
    expect(rec).toEqual(['read', 'cancelled', 'cleaned up']);
  });

  it('Promise.all over foreign promises and Futures: identity kept, the next await cancellable', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      const t = fx.loop.createTask(
        async () => {
          const [text, , v] = await Promise.all([readFile(file, 'utf8'), nodeImmediate(), sleep(0.01, 7)]);
          rec.push(`${currentTask()?.getName()}:${text}:${v}`);
          const [x, y] = await Promise.all([sleep(0.01, 'x'), sleep(0.02, 'y')]);
          rec.push(`${currentTask()?.getName()}:${x}${y}`);
          await nodeImmediate();
          try {
            await new Event().wait();
          } catch (e) {
            rec.push(`${currentTask()?.getName()}:${(e as Error).name}`);
            throw e;
          }
        },
        { name: 'all' },
      );
      while (rec.length < 2) await sleep(0.001);
      for (let i = 0; i < 20 && !t.done(); i++) await nodeImmediate();
      await sleep(0);
      t.cancel();
      await expect(t).rejects.toThrow(CancelledError);
    });
    expect(rec).toEqual(['all:tulipwire:7', 'all:xy', 'all:CancelledError']);
  });

  it('many concurrent tasks awaiting foreign promises, then cancelled: each body sees CancelledError', async () => {
    const N = 60;
    const inBody: number[] = [];
    const sawCancel: number[] = [];
    let finishedBody = 0;
    await fx.run(async () => {
      const lock = new Lock();
      const tasks: Task<void>[] = [];
      for (let i = 0; i < N; i++) {
        tasks.push(
          fx.loop.createTask(async () => {
            // Three kinds of foreign awaits, interleaved across tasks.
            if (i % 3 === 0) await readFile(file);
            else if (i % 3 === 1) await nodeImmediate();
            else await Promise.all([nodeImmediate(), Promise.resolve(i)]);
            expect(currentTask()).toBe(tasks[i]);
            inBody.push(i);
            try {
              if (i % 2 === 0) await sleep(3600);
              else await lock.acquire(); // the lock is held by main: a waiter queue
            } catch (e) {
              if (isCancelledError(e) && currentTask() === tasks[i]) sawCancel.push(i);
              throw e;
            }
            finishedBody++;
          }),
        );
      }
      await lock.acquire();
      while (inBody.length < N) await nodeImmediate();
      await sleep(0);
      for (const t of tasks) t.cancel();
      const results = await Promise.allSettled(tasks.map((t) => wrapPromise(t)));
      expect(results.every((r) => r.status === 'rejected' && isCancelledError(r.reason))).toBe(true);
      expect(tasks.every((t) => t.cancelled())).toBe(true);
      expect(lock.locked()).toBe(true);
      lock.release();
    });
    expect(sawCancel.sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
    expect(finishedBody).toBe(0);
  });

  it('a cancel requested while the task is inside a foreign await lands on its next tulipwire await', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      const t = fx.loop.createTask(async () => {
        await nodeTimer(250); // long enough that a stalled CI machine still cancels while it is pending
        rec.push('back');
        try {
          await sleep(0);
        } catch (e) {
          rec.push(`caught ${(e as CancelledError).message}`);
          throw e;
        }
        rec.push('not reached');
      });
      await sleep(0.001); // the task is inside its 250 ms foreign await
      expect(rec).toEqual([]);
      t.cancel('late');
      expect(t.done()).toBe(false);
      await expect(t).rejects.toThrow('late');
    });
    // Reported done only after the body ran to its end.
    expect(rec).toEqual(['back', 'caught late']);
  });

  it('a task is never reported done while its body still runs after a foreign await', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      const t = fx.loop.createTask(async () => {
        await nodeTimer(5);
        rec.push('body 1');
        await nodeImmediate();
        rec.push('body 2');
        return 'v';
      });
      t.cancel(); // before it starts: the body never runs (asyncio)
      await expect(t).rejects.toThrow(CancelledError);
      const u = fx.loop.createTask(async () => {
        await nodeTimer(5);
        rec.push('u 1');
        await nodeImmediate();
        rec.push('u 2');
        return 'u';
      });
      await sleep(0);
      u.cancel();
      // No tulipwire await left in the body: it returns, and the pending cancel marks it cancelled (asyncio).
      await expect(u).rejects.toThrow(CancelledError);
      expect(rec).toEqual(['u 1', 'u 2']);
    });
  });

  it('timeout() around a body that awaits foreign promises raises TimeoutError at the next tulipwire await', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      await readFile(file);
      const err = await timeout(0.05, async () => {
        await readFile(file);
        rec.push(`inside ${currentTask()?.getName()}`);
        await sleep(10);
        rec.push('not reached');
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      // waitFor: the inner task is cancelled on timeout and waited for.
      const inner: string[] = [];
      const err2 = await waitFor(async () => {
        await nodeImmediate();
        try {
          await sleep(10);
        } catch (e) {
          inner.push('inner cancelled');
          throw e;
        }
      }, 0.05).catch((e: unknown) => e);
      expect(err2).toBeInstanceOf(TimeoutError);
      expect(inner).toEqual(['inner cancelled']);
      expect(await timeout(null, async () => (await readFile(file, 'utf8')).length)).toBe(9);
    });
    expect(rec[0]).toMatch(/^inside Task-\d+$/);
    expect(rec).toHaveLength(1);
  });

  it('TaskGroup around foreign awaits: a failing child cancels its siblings and the body, errors raised together', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      await nodeImmediate();
      const err = await TaskGroup.run(async (tg) => {
        tg.createTask(async () => {
          await readFile(file);
          await sleep(0.05);
          throw new Error('boom');
        });
        for (const n of ['s1', 's2']) {
          tg.createTask(async () => {
            await nodeImmediate();
            try {
              await sleep(3600);
            } catch (e) {
              rec.push(`${n} cancelled`);
              throw e;
            }
          });
        }
        await readFile(file);
        try {
          await sleep(3600);
        } catch (e) {
          rec.push('body cancelled');
          throw e;
        }
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ErrorGroup);
      expect((err as ErrorGroup).errors.map((e) => (e as Error).message)).toEqual(['boom']);
      // And a TaskGroup entered right after a foreign await finds its parent task.
      const v = await TaskGroup.run(async (tg) => {
        const c = tg.createTask(async () => {
          await readFile(file);
          return currentTask()?.getName();
        });
        await c;
        return c.result() === c.getName();
      });
      expect(v).toBe(true);
    });
    expect(rec.sort()).toEqual(['body cancelled', 's1 cancelled', 's2 cancelled']);
  });

  it('plain callbacks never see a task: currentTask() is null in callSoon callbacks scheduled after foreign awaits', async () => {
    const seen: (string | null)[] = [];
    await fx.run(async () => {
      await nodeTimer(2);
      // Scheduled from the untracked stretch, outside any loop turn: the turn must not inherit the task's context.
      fx.loop.callSoon(() => seen.push(currentTask()?.getName() ?? null));
      await sleep(0);
      seen.push(currentTask()?.getName() ?? 'lost');
    });
    expect(seen[0]).toBe(null);
    expect(seen[1]).toMatch(/^Task-\d+$/);
  });
});

describe('atomic-step ordering under tracking', () => {
  const fx = useLoop({ trackForeignAwaits: true });

  it('test_wait: [3, 1, 2], also after the tasks awaited foreign promises', async () => {
    for (const foreignFirst of [false, true]) {
      await fx.run(async () => {
        if (foreignFirst) await readFile(file);
        const ev = new Event();
        const result: number[] = [];
        const c = (n: number) => async (): Promise<void> => {
          if (foreignFirst) await nodeImmediate();
          if (await ev.wait()) result.push(n);
        };
        const t1 = fx.loop.createTask(c(1));
        const t2 = fx.loop.createTask(c(2));
        // After foreign awaits every task is waiting on the Event before main goes on (libuv turns, FIFO).
        if (foreignFirst) for (let i = 0; i < 5; i++) await nodeImmediate();
        await sleep(0);
        expect(result).toEqual([]);
        const t3 = fx.loop.createTask(c(3));
        if (foreignFirst) for (let i = 0; i < 5; i++) await nodeImmediate();
        ev.set();
        await sleep(0);
        expect(result).toEqual(foreignFirst ? [1, 2, 3] : [3, 1, 2]);
        await t1;
        await t2;
        await t3;
      });
    }
  });

  it('steps interleave one await at a time (asyncio order)', async () => {
    const rec: string[] = [];
    await fx.run(async () => {
      const w = (n: string) => async (): Promise<void> => {
        for (let i = 0; i < 3; i++) {
          rec.push(`${n}${i}`);
          await Promise.resolve(); // a native hop inside the step: part of the step
          rec.push(`${n}${i}'`);
          await sleep(0);
        }
      };
      const a = fx.loop.createTask(w('a'));
      const b = fx.loop.createTask(w('b'));
      await a;
      await b;
    });
    expect(rec).toEqual(["a0", "a0'", "b0", "b0'", "a1", "a1'", "b1", "b1'", "a2", "a2'", "b2", "b2'"]);
  });
});

describe('autojump only when the loop is truly idle', () => {
  it('promise work still in the microtask queue (an async store) schedules its callback before time jumps', async () => {
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    const store = {
      async reserve(): Promise<boolean> {
        for (let i = 0; i < 300; i++) await null; // a deep in-memory async chain, more hops than any cap
        return true;
      },
    };
    const at: [string, number][] = [];
    await loop.runUntilComplete(async () => {
      loop.callLater(10, () => at.push(['timer', loop.time()]));
      loop.callSoon(() => {
        // A plain callback (a Protocol's dataReceived) starting promise work that ends in a callSoon.
        void store.reserve().then(() => loop.callSoon(() => at.push(['reserved', loop.time()])));
        void nodeImmediate().then(() => loop.callSoon(() => at.push(['immediate', loop.time()])));
      });
      await sleep(20);
    });
    loop.close();
    expect(at).toEqual([
      ['reserved', 0],
      ['immediate', 0],
      ['timer', 10],
    ]);
  });

  it('an hour of timers still runs at once, in order', async () => {
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    const fired: number[] = [];
    await loop.runUntilComplete(async () => {
      for (let i = 3600; i >= 1; i--) loop.callLater(i, () => fired.push(i));
      await sleep(3601);
    });
    loop.close();
    expect(fired).toEqual([...Array(3600).keys()].map((i) => i + 1));
  });
});

describe('tracking is process-wide and idempotent', () => {
  it('enableForeignAwaitTracking() twice keeps one store', () => {
    enableForeignAwaitTracking();
    enableForeignAwaitTracking();
    expect(foreignAwaitTracking()).toBe(true);
  });
});
