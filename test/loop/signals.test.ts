/**
 * loop.addSignalHandler / removeSignalHandler (asyncio's `add_signal_handler` / `remove_signal_handler`; the
 * behaviour of CPython's test_unix_events SelectorEventLoopSignalTests, checked on real signals rather than on a
 * mocked `signal` module). In this process only SIGWINCH is sent (its default action is to do nothing, so a
 * signal arriving after a handler is gone cannot end the test runner); SIGINT and SIGTERM run in a child process.
 */
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { EventLoop, sleep } from '../../src/index.js';
import { runSignalled } from '../support/signalled-child.js';
import type { ChildOutcome } from '../support/signalled-child.js';

const SIG = 'SIGWINCH';

/** Sends SIGWINCH to this process and waits until Node has emitted it (it arrives on a later libuv turn). */
function raise(): Promise<void> {
  return new Promise((resolve) => {
    const seen = (): void => {
      process.off(SIG, seen);
      setImmediate(resolve);
    };
    process.on(SIG, seen);
    process.kill(process.pid, SIG);
  });
}

describe('addSignalHandler (test_unix_events SelectorEventLoopSignalTests)', () => {
  it('test_check_signal: a name or a number of this platform; TypeError for another type, RangeError for no signal', () => {
    const loop = new EventLoop();
    try {
      expect(() => loop.addSignalHandler('SIGFOO' as NodeJS.Signals, () => {})).toThrow(RangeError);
      expect(() => loop.addSignalHandler(-1, () => {})).toThrow(/invalid signal number -1/);
      expect(() => loop.addSignalHandler(1000, () => {})).toThrow(RangeError);
      expect(() => loop.addSignalHandler({} as unknown as number, () => {})).toThrow(TypeError);
      expect(() => loop.removeSignalHandler('SIGFOO' as NodeJS.Signals)).toThrow(RangeError);
      expect(() => loop.removeSignalHandler(null as unknown as number)).toThrow(TypeError);
      // A number names the same signal as its name.
      loop.addSignalHandler(osConstants.signals.SIGWINCH, () => {});
      expect(loop.removeSignalHandler(SIG)).toBe(true);
    } finally {
      loop.close();
    }
  });

  it('test_add_signal_handler_coroutine_error: an async function is refused (TypeError), as is a non-function', () => {
    const loop = new EventLoop();
    try {
      expect(() => loop.addSignalHandler(SIG, async () => {})).toThrow(/coroutines cannot be used with addSignalHandler\(\)/);
      expect(() => loop.addSignalHandler(SIG, 'x' as unknown as () => void)).toThrow(TypeError);
      expect(loop.removeSignalHandler(SIG)).toBe(false);
    } finally {
      loop.close();
    }
  });

  it('test_add_signal_handler_install_error: SIGKILL and SIGSTOP cannot be caught (InvalidStateError, nothing registered)', () => {
    const loop = new EventLoop();
    const before = process.listenerCount('SIGKILL');
    try {
      for (const sig of ['SIGKILL', 'SIGSTOP'] as const) {
        expect(() => loop.addSignalHandler(sig, () => {})).toThrow(expect.objectContaining({ code: 'TW_INVALID_STATE', message: `${sig} cannot be caught` }));
        expect(loop.removeSignalHandler(sig)).toBe(false);
      }
      expect(process.listenerCount('SIGKILL')).toBe(before);
    } finally {
      loop.close();
    }
  });

  it('test_add_signal_handler: the signal queues the callback with its arguments; it runs as a loop callback', async () => {
    const loop = new EventLoop();
    const seen: string[] = [];
    await loop.runUntilComplete(async () => {
      loop.addSignalHandler(SIG, (a: number, b: string) => {
        seen.push(`handler ${a} ${b} running=${String(loop.isRunning())}`);
      }, 1, 'two');
      await raise();
      await sleep(0);
      await raise();
      await sleep(0);
    });
    expect(seen).toEqual(['handler 1 two running=true', 'handler 1 two running=true']);
    loop.close();
  });

  it('a second add for the same signal replaces the first (one process listener, the new callback)', async () => {
    const loop = new EventLoop();
    const before = process.listenerCount(SIG);
    const seen: string[] = [];
    await loop.runUntilComplete(async () => {
      loop.addSignalHandler(SIG, () => seen.push('first'));
      loop.addSignalHandler(SIG, () => seen.push('second'));
      expect(process.listenerCount(SIG)).toBe(before + 1);
      await raise();
      await sleep(0);
    });
    expect(seen).toEqual(['second']);
    expect(loop.removeSignalHandler(SIG)).toBe(true);
    expect(loop.removeSignalHandler(SIG)).toBe(false);
    expect(process.listenerCount(SIG)).toBe(before);
    loop.close();
  });

  it('a signal while the loop is not running waits in the ready queue for the next run, as asyncio', async () => {
    const loop = new EventLoop();
    const seen: string[] = [];
    loop.addSignalHandler(SIG, () => seen.push('handled'));
    await raise();
    expect(seen).toEqual([]);
    await loop.runUntilComplete(async () => {
      await sleep(0);
    });
    expect(seen).toEqual(['handled']);
    loop.close();
  });

  it('an exception from the handler goes to the exception handler; the handler stays installed', async () => {
    const loop = new EventLoop();
    const reports: string[] = [];
    loop.setExceptionHandler((_l, ctx) => reports.push(`${ctx.message}: ${String(ctx.exception)}`));
    let calls = 0;
    await loop.runUntilComplete(async () => {
      loop.addSignalHandler(SIG, () => {
        calls++;
        throw new RangeError('boom');
      });
      await raise();
      await sleep(0);
      await raise();
      await sleep(0);
    });
    expect(calls).toBe(2);
    expect(reports).toHaveLength(2);
    expect(reports[0]).toMatch(/RangeError: boom/);
    loop.close();
  });

  it('test_close: close() removes every handler; a closed loop refuses new ones (LoopClosedError)', async () => {
    const loop = new EventLoop();
    const before = process.listenerCount(SIG);
    loop.addSignalHandler(SIG, () => {});
    loop.addSignalHandler('SIGUSR2', () => {});
    expect(process.listenerCount(SIG)).toBe(before + 1);
    loop.close();
    expect(process.listenerCount(SIG)).toBe(before);
    expect(process.listenerCount('SIGUSR2')).toBe(0);
    expect(() => loop.addSignalHandler(SIG, () => {})).toThrow(expect.objectContaining({ code: 'TW_LOOP_CLOSED' }));
    expect(loop.removeSignalHandler(SIG)).toBe(false);
  });

  it('in a worker thread it is refused (InvalidStateError): Node delivers signals to the main thread only', async () => {
    // The worker loads TypeScript through tsx's API (a worker's `--import tsx` does not cover its own entry file).
    const entry = new URL('./fixtures/signal-worker.ts', import.meta.url).href;
    const src = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })
      .catch((e) => require('node:worker_threads').parentPort.postMessage('load failed ' + e.message));`;
    const w = new Worker(src, { eval: true });
    const msg = await new Promise<string>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(msg).toBe('TW_INVALID_STATE signal handlers only work in the main thread (SIGWINCH is never delivered to a worker)');
  }, 30_000);
});

describe('signals that end a process, in a child process', () => {
  const fixture = fileURLToPath(new URL('./fixtures/signal-handler.ts', import.meta.url));
  const child = (mode: string, signal: NodeJS.Signals, times: number): Promise<ChildOutcome> => runSignalled(fixture, mode, signal, times);

  it('under run(), a SIGINT the program handles goes to its handler, twice, not to run()\'s cancel or exit', async () => {
    const r = await child('run-handled', 'SIGINT', 2);
    expect(r.out).toBe('ready\nhandler int 1\nready\nhandler int 2\nrun returned drained\n');
    expect(r.code).toBe(0);
  }, 30_000);

  it('a handled SIGTERM does not end the process; the handler runs inside the running loop', async () => {
    const r = await child('handled', 'SIGTERM', 1);
    expect(r.out).toBe('ready\nhandled SIGTERM, running true\nclosed, SIGTERM listeners 0\n');
    expect(r.code).toBe(0);
  }, 30_000);

  it('once the handler is removed, SIGTERM ends the process as Node\'s default does', async () => {
    const r = await child('removed', 'SIGTERM', 1);
    expect(r.out).toBe('removed true\nready\n');
    expect(r.signal).toBe('SIGTERM');
  }, 30_000);
});
