/**
 * run(main) (asyncio.run / Runner: test_runners), debug mode (slow callbacks, creation tracebacks) and the tracer.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CancelledError, EventLoop, InvalidStateError, VirtualClock, allTasks, run, sleep } from '../../src/index.js';
import type { EventLoop as Loop, TraceRecord } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { runSignalled } from '../support/signalled-child.js';
import type { ChildOutcome } from '../support/signalled-child.js';

describe('run() (test_runners)', () => {
  it('test_asyncio_run_return: returns the result; the loop is closed afterwards', async () => {
    let seen: Loop | null = null;
    const r = await run(
      async () => {
        await sleep(1);
        return 42;
      },
      { clock: new VirtualClock({ autojump: true }), setup: (l) => (seen = l), handleSignals: false },
    );
    expect(r).toBe(42);
    expect(seen!.isClosed()).toBe(true);
  });

  it('test_asyncio_run_only_coro / test_run_non_coro / test_run_future: run() wants a function; nothing is left behind', async () => {
    const before = process.listenerCount('SIGINT');
    for (const bad of [1, null, Promise.resolve(1)]) {
      await expect(run(bad as unknown as () => void)).rejects.toBeInstanceOf(TypeError);
    }
    expect(process.listenerCount('SIGINT')).toBe(before);
  });

  it('test_asyncio_run_raises: the exception comes out', async () => {
    await expect(
      run(
        async () => {
          await sleep(0);
          throw new RangeError('spam');
        },
        { clock: new VirtualClock({ autojump: true }), handleSignals: false },
      ),
    ).rejects.toBeInstanceOf(RangeError);
  });

  it('test_asyncio_run_cancels_hanging_tasks: leftover tasks are cancelled and awaited before close', async () => {
    const rec: string[] = [];
    let loop: Loop | null = null;
    await run(
      async () => {
        loop!.createTask(async () => {
          try {
            await sleep(1000);
          } catch (e) {
            rec.push((e as CancelledError).code);
            await sleep(1); // cleanup may await
            rec.push('cleaned');
            throw e;
          }
        });
        await sleep(0);
        return 'main done';
      },
      { clock: new VirtualClock({ autojump: true }), setup: (l) => (loop = l), handleSignals: false },
    );
    expect(rec).toEqual(['TW_CANCELLED', 'cleaned']);
    expect(allTasks(loop!).size).toBe(0);
  });

  it('test_asyncio_run_reports_hanging_tasks_errors: an error during shutdown goes to the exception handler', async () => {
    const msgs: string[] = [];
    await run(
      async () => {
        const l = (await import('../../src/index.js')).getRunningLoop();
        l.createTask(async () => {
          try {
            await sleep(1000);
          } finally {
            // eslint-disable-next-line no-unsafe-finally
            throw new RangeError('bad cleanup');
          }
        });
        await sleep(0);
      },
      {
        clock: new VirtualClock({ autojump: true }),
        handleSignals: false,
        setup: (l) => l.setExceptionHandler((_l, ctx) => msgs.push(`${ctx.message}: ${String(ctx.exception)}`)),
      },
    );
    expect(msgs).toEqual(['unhandled exception during run() shutdown: RangeError: bad cleanup']);
  });

  it('debug: true turns on debug mode', async () => {
    const dbg = await run(async () => (await import('../../src/index.js')).getRunningLoop().getDebug(), { debug: true, handleSignals: false });
    expect(dbg).toBe(true);
  });

  const fixture = fileURLToPath(new URL('./fixtures/run-signal.ts', import.meta.url));
  const child = (mode: string, signals: number): Promise<ChildOutcome> => runSignalled(fixture, mode, 'SIGINT', signals);

  it('SIGINT cancels the main task, which may clean up; run() then throws CancelledError("SIGINT")', async () => {
    const r = await child('cooperative', 1);
    expect(r.out).toContain('main saw TW_CANCELLED');
    expect(r.out).toContain('run threw TW_CANCELLED SIGINT');
    expect(r.code).toBe(3);
  });

  it('test_interrupt_cancelled_task (test_runners): main cancelled by its own code, then SIGINT: its own CancelledError comes out', async () => {
    const r = await child('self-cancelled', 0);
    expect(r.out).toContain('main saw TW_CANCELLED self');
    expect(r.out).toContain('cleanup saw TW_CANCELLED SIGINT');
    // asyncio's Runner raises KeyboardInterrupt only when the signal's cancel was the last one (uncancel() == 0).
    expect(r.out).toContain('run threw TW_CANCELLED self');
    expect(r.code).toBe(3);
  });

  it('a second SIGINT exits at once (130) when main ignores the first', async () => {
    const r = await child('stubborn', 2);
    expect(r.out).toContain('main saw TW_CANCELLED');
    expect(r.code).toBe(130);
  });
});

describe('debug mode', () => {
  const fx = useLoop({ real: true, debug: true, slowCallbackDuration: 0.005 });

  it('test_base_events slow callback: "Executing <Handle …> took … seconds"', async () => {
    function busy(): void {
      const end = performance.now() + 20;
      while (performance.now() < end) {
        // a callback that blocks the loop for 20 ms
      }
    }
    fx.loop.callSoon(busy);
    fx.loop.callSoon(() => fx.loop.stop());
    await fx.loop.runForever();
    expect(fx.warnings.length).toBe(1);
    const took = /^Executing <Handle busy created at [^>]*runners\.test\.ts:\d+> took (\d+\.\d{3}) seconds$/.exec(fx.warnings[0]!);
    expect(took, fx.warnings[0]).not.toBeNull();
    expect(Number(took![1])).toBeGreaterThanOrEqual(0.02); // no upper bound: a loaded machine may preempt it
  });

  it('a slow task step is reported with the task name', async () => {
    await fx.run(async () => {
      const t = fx.loop.createTask(
        async () => {
          await sleep(0);
          const end = performance.now() + 20;
          while (performance.now() < end) {
            // the step blocks the loop
          }
        },
        { name: 'slowpoke' },
      );
      await t;
    });
    expect(fx.warnings.some((w) => /^Executing <Handle slowpoke\.step( created at [^>]+)?> took/.test(w))).toBe(true);
  });

  it('test_base_events test_default_exc_handler_callback (debug): the context carries the creation traceback', async () => {
    function failing(): void {
      throw new RangeError('x');
    }
    fx.loop.callSoon(failing);
    fx.loop.callSoon(() => fx.loop.stop());
    await fx.loop.runForever();
    const [ctx] = fx.take();
    expect(ctx!.message).toBe('Exception in callback failing');
    expect(ctx!.sourceTraceback).toContain('runners.test.ts');
  });

  it('setDebug / getDebug', () => {
    const loop = new EventLoop({ clock: new VirtualClock() });
    expect(loop.getDebug()).toBe(false);
    loop.setDebug(true);
    expect(loop.getDebug()).toBe(true);
    loop.close();
  });
});

describe('tracer', () => {
  const fx = useLoop();

  it('one record per iteration: ready count, timers due, wait, jump, callback names', async () => {
    const recs: TraceRecord[] = [];
    fx.loop.setTracer((r) => recs.push(r));
    function tick(): void {}
    fx.loop.callLater(2, tick);
    fx.loop.callLater(2, tick);
    fx.loop.callSoon(tick);
    fx.loop.callLater(3, () => fx.loop.stop());
    await fx.loop.runForever();
    fx.loop.setTracer(null);
    expect(recs.map((r) => [r.iteration, r.time, r.wait, r.jumped, r.timersDue, r.ready, r.callbacks])).toEqual([
      [1, 0, 0, false, 0, 1, ['tick']],
      [2, 2, 2, true, 2, 2, ['tick', 'tick']],
      [3, 3, 1, true, 1, 1, ['<anonymous>']],
    ]);
    expect(recs.every((r) => r.duration >= 0 && r.deferred === 0)).toBe(true);
  });

  it('names task steps Task-name.start / .step', async () => {
    const names: string[] = [];
    fx.loop.setTracer((r) => names.push(...r.callbacks));
    await fx.loop.runUntilComplete(fx.loop.createTask(() => sleep(1, undefined, fx.loop), { name: 'napper' }));
    expect(names.slice(0, 3)).toEqual(['napper.start', 'setResultUnlessCancelled', 'napper.step']);
  });

  it('a throwing tracer is reported and the loop keeps running', async () => {
    fx.loop.setTracer(() => {
      throw new RangeError('tracer bug');
    });
    fx.loop.callSoon(() => fx.loop.stop());
    await fx.loop.runForever();
    fx.loop.setTracer(null);
    expect(fx.take().map((r) => r.message)).toEqual(['Exception in tracer']);
  });
});

describe('run() from a running loop (test_runners)', () => {
  const fx = useLoop();

  it('test_asyncio_run_from_running_loop (test_runners): run() inside run() throws, and the inner main never runs', async () => {
    let innerRan = false;
    const outer = run(
      async () => {
        await run(async () => (innerRan = true), { handleSignals: false });
      },
      { handleSignals: false },
    );
    await expect(outer).rejects.toThrow('run() cannot be called from a running event loop');
    expect(innerRan).toBe(false);
  });

  it('test_recursive_run (test_runners): run() from a task or a callback of a test loop throws too', async () => {
    let innerRan = false;
    const errors: unknown[] = [];
    fx.loop.callSoon(() => {
      run(async () => (innerRan = true), { handleSignals: false }).catch((e: unknown) => errors.push(e));
    });
    await fx.run(async () => {
      await run(async () => (innerRan = true), { handleSignals: false }).catch((e: unknown) => errors.push(e));
    });
    expect(innerRan).toBe(false);
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e).toBeInstanceOf(InvalidStateError);
  });
});
