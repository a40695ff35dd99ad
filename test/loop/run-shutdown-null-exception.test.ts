/**
 * A task left running when `main` is over is cancelled by `run()`; if it fails on the way out, the failure is
 * reported to the exception handler as "unhandled exception during run() shutdown" (asyncio's
 * `_cancel_all_tasks`). A task that throws `null` or `undefined` there has failed as surely as one throwing an
 * Error, but the check was `exception() !== null`, so a `throw null` on the way out was never reported.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock, getRunningLoop, run, sleep } from '../../src/index.js';
import type { ExceptionContext, Task } from '../../src/index.js';

describe('run() shutdown reports a leftover task failing with null or undefined', () => {
  for (const thrown of [null, undefined]) {
    it(`throw ${String(thrown)} on the cancel`, async () => {
      const recs: ExceptionContext[] = [];
      let leftover: Task<void> | null = null;
      await run(async () => {
        leftover = getRunningLoop().createTask(async () => {
          try {
            await sleep(3600);
          } catch {
            throw thrown;
          }
        });
        await sleep(0);
      }, {
        clock: new VirtualClock({ autojump: true }),
        handleSignals: false,
        setup: (loop) => loop.setExceptionHandler((_l, ctx) => {
          recs.push(ctx);
        }),
      });
      expect(leftover!.done()).toBe(true);
      expect(leftover!.cancelled()).toBe(false);
      expect(recs.map((r) => [r.message, r.exception, r.task])).toEqual([['unhandled exception during run() shutdown', thrown, leftover]]);
    });
  }
});
