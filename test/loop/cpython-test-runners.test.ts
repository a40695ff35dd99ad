/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_runners.py cases: run()'s debug mode, its setup hook (in place of
 * loop_factory), main's result never formatted, SIGINT while main runs (in a child process, on the real clock,
 * asserting only what it printed) and a hanging task's error at shutdown. Each `it` names its CPython case
 * (`file.Class.test_name`). Virtual clock otherwise; no timed assertions.
 *
 * Where JavaScript or tulipwire differs, the title says so ("deliberately different: …", or "JS: …" where the
 * language decides) and the test asserts tulipwire's behaviour. Skipped: the asyncio.Runner class cases (test_run,
 * test_explicit_close, test_double_close, test_second_with_block_raises, test_run_keeps_context: tulipwire has only
 * `run()`, and no contextvars), and test_asyncio_run_without_uncancel (a duck-typed Task).
 */
import { spawn } from 'node:child_process';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CancelledError, VirtualClock, getRunningLoop, run, sleep } from '../../src/index.js';
import type { EventLoop, ExceptionContext, Task } from '../../src/index.js';

describe('test_runners.py', () => {
  it('test_runners.RunTests.test_asyncio_run_debug: the loop main runs on has the debug mode run() was given (default off)', async () => {
    // asyncio's other half (debug=None follows PYTHONASYNCIODEBUG / -X dev) has no counterpart: tulipwire reads no
    // environment switch, so the default is simply off.
    const clock = (): VirtualClock => new VirtualClock({ autojump: true });
    const main = async (): Promise<boolean> => getRunningLoop().getDebug();
    expect(await run(main, { debug: false, clock: clock(), handleSignals: false })).toBe(false);
    expect(await run(main, { debug: true, clock: clock(), handleSignals: false })).toBe(true);
    expect(await run(main, { clock: clock(), handleSignals: false })).toBe(false);
  });

  it('test_runners.RunTests.test_asyncio_run_loop_factory, deliberately different: no loop_factory; setup(loop) is called once, before main, with the loop main runs on', async () => {
    // asyncio: run(main(), loop_factory=factory) calls factory() once and main sees that loop. tulipwire always
    // makes an EventLoop; `clock` picks its time source and `setup(loop)` is the hook for everything else.
    const seen: EventLoop[] = [];
    const order: string[] = [];
    const r = await run(
      async () => {
        order.push('main');
        return getRunningLoop();
      },
      {
        clock: new VirtualClock({ autojump: true }),
        handleSignals: false,
        setup: (l) => {
          order.push('setup');
          seen.push(l);
        },
      },
    );
    expect(seen.length).toBe(1);
    expect(r).toBe(seen[0]);
    expect(order).toEqual(['setup', 'main']);
  });

  it('test_runners.RunnerTests.test_no_repr_is_call_on_the_task_result (gh-112559): run() never formats main\'s result', async () => {
    class MyResult {
      reprCount = 0;
      toString(): string {
        this.reprCount++;
        return 'MyResult';
      }
      [Symbol.toPrimitive](): string {
        this.reprCount++;
        return 'MyResult';
      }
      [inspect.custom](): string {
        this.reprCount++;
        return 'MyResult';
      }
    }
    const result = await run(async () => new MyResult(), { clock: new VirtualClock({ autojump: true }), handleSignals: false });
    expect(result).toBeInstanceOf(MyResult);
    expect(result.reprCount).toBe(0);
    // Debug mode too (it formats tasks for its reports, but only when it reports).
    const dbg = await run(async () => new MyResult(), { clock: new VirtualClock({ autojump: true }), handleSignals: false, debug: true });
    expect(dbg.reprCount).toBe(0);
  });

  const index = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
  /** Runs `body` (an ES module body that imports from `index`) in a child Node and returns what it printed. */
  function child(body: string): Promise<{ out: string; code: number | null }> {
    const code = `import { run, sleep, getRunningLoop, CancelledError } from ${JSON.stringify(index)};\n${body}`;
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      p.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      p.on('error', reject);
      p.on('exit', (c) => resolve({ out: out + err, code: c }));
      setTimeout(() => p.kill('SIGKILL'), 20_000).unref();
    });
  }

  it('test_runners.RunnerTests.test_interrupt_call_soon: main spins on sleep(0); SIGINT cancels it; it raises a new CancelledError; run() throws CancelledError("SIGINT") (asyncio: KeyboardInterrupt)', async () => {
    // "The only case when task is not suspended by waiting a future": the signal arrives between steps.
    const r = await child(`
      try {
        await run(async () => {
          getRunningLoop().callLater(0.1, () => process.kill(process.pid, 'SIGINT'));
          let caught = false;
          try {
            for (;;) await sleep(0);
          } catch (e) {
            caught = e instanceof CancelledError;
          }
          process.stdout.write('main caught ' + caught + '\\n');
          throw new CancelledError();
        });
        process.stdout.write('run returned\\n');
      } catch (e) {
        process.stdout.write('run threw ' + e.code + ' ' + e.message + '\\n');
      }
    `);
    expect(r.out).toContain('main caught true');
    expect(r.out).toContain('run threw TW_CANCELLED SIGINT');
    expect(r.code).toBe(0);
  });

  it('test_runners.RunnerTests.test_interrupt_wait: SIGINT while main awaits a Future cancels the Future and main; run() throws CancelledError("SIGINT") (asyncio: KeyboardInterrupt)', async () => {
    // Bug found by this port: with main waiting on a Future and no timer left, the loop arms no Node timer and
    // signal listeners hold nothing open, so Node exited (code 13, "unsettled top-level await") before the signal
    // was delivered, with main pending and nothing printed. asyncio.run() blocks in select() until the signal;
    // run() now holds the process open until it is over (runners.ts keepProcessAlive).
    const r = await child(`
      let fut = null;
      try {
        await run(async () => {
          const loop = getRunningLoop();
          fut = loop.createFuture();
          loop.callLater(0.1, () => process.kill(process.pid, 'SIGINT'));
          let caught = false;
          try {
            await fut;
          } catch (e) {
            caught = e instanceof CancelledError;
          }
          process.stdout.write('main caught ' + caught + '\\n');
          throw new CancelledError();
        });
        process.stdout.write('run returned\\n');
      } catch (e) {
        process.stdout.write('run threw ' + e.code + ' ' + e.message + '\\n');
      }
      process.stdout.write('fut cancelled ' + fut.cancelled() + '\\n');
    `);
    expect(r.out).toContain('main caught true');
    expect(r.out).toContain('run threw TW_CANCELLED SIGINT');
    expect(r.out).toContain('fut cancelled true');
    expect(r.code).toBe(0);
  });

  it('test_runners.RunnerTests.test_debug: run(main, {debug: true}) runs main on a loop in debug mode', async () => {
    expect(await run(async () => getRunningLoop().getDebug(), { debug: true, clock: new VirtualClock({ autojump: true }), handleSignals: false })).toBe(true);
  });

  it('test_runners.RunnerTests.test_non_debug: run(main, {debug: false}) runs main on a loop not in debug mode', async () => {
    expect(await run(async () => getRunningLoop().getDebug(), { debug: false, clock: new VirtualClock({ autojump: true }), handleSignals: false })).toBe(false);
  });

  it('test_runners.RunTests.test_asyncio_run_closes_gens_after_hanging_tasks_errors: main\'s error wins; the hanging task is cancelled and done, and its error on the way out is reported as "unhandled exception during run() shutdown" (asyncio: …asyncio.run() shutdown)', async () => {
    class FancyExit extends Error {}
    let lazyboy: Task<void> | null = null;
    let spinnerClosed = false;
    const recs: ExceptionContext[] = [];
    async function* fidget(): AsyncGenerator<number> {
      try {
        for (;;) {
          yield 1;
          await sleep(1);
        }
      } finally {
        spinnerClosed = true;
      }
    }
    const main = async (): Promise<void> => {
      lazyboy = getRunningLoop().createTask(async () => {
        try {
          for await (const _ of fidget()) { /* the meaning of life */ }
        } catch (e) {
          if (e instanceof CancelledError) throw new RangeError('1 / 0');
          throw e;
        }
      });
      await sleep(0);
      throw new FancyExit();
    };
    await expect(run(main, {
      clock: new VirtualClock({ autojump: true }),
      handleSignals: false,
      setup: (loop) => loop.setExceptionHandler((_l, ctx) => {
        recs.push(ctx);
      }),
    })).rejects.toBeInstanceOf(FancyExit);
    expect(lazyboy!.done()).toBe(true);
    // asyncio checks the async generator is finalized (ag_frame is None): its finally ran.
    expect(spinnerClosed).toBe(true);
    expect(recs.length).toBe(1);
    expect(recs[0]!.message).toBe('unhandled exception during run() shutdown');
    expect(recs[0]!.exception).toBeInstanceOf(RangeError);
    expect(recs[0]!.task).toBe(lazyboy);
  });
});
