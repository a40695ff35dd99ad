/**
 * run(main, {setup}) with an async setup (`setup: async (loop) => { … }`) that fails. setup is called before main
 * starts and is not awaited; its rejected Promise was dropped, an unhandled rejection, which ends a Node process
 * while main runs. It now goes to the loop's exception handler as "run() setup failed" (the handler setup installed
 * before its first await already sees it), and main runs on.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock, run, sleep } from '../../src/index.js';
import type { ExceptionContext } from '../../src/index.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe('run() with an async setup that rejects', () => {
  it('the rejection reaches the exception handler; main runs and returns; nothing is unhandled', async () => {
    const reports: ExceptionContext[] = [];
    const result = await run(
      async () => {
        await sleep(1);
        return 'main done';
      },
      {
        clock: new VirtualClock({ autojump: true }),
        handleSignals: false,
        setup: async (loop) => {
          loop.setExceptionHandler((_loop, context) => {
            reports.push(context);
          });
          await null;
          throw new RangeError('could not open the trace file');
        },
      },
    );
    expect(result).toBe('main done');
    expect(unhandled).toEqual([]);
    expect(reports.map((c) => [c.message, (c.exception as Error).message])).toEqual([['run() setup failed', 'could not open the trace file']]);
  });
});
