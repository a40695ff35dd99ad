/**
 * A tracer that throws is reported as "Exception in tracer" and the loop goes on (docs/event-loop-internals.md,
 * "Watching the loop"). An async tracer (`loop.setTracer(async (r) => { await sink.write(r); })`) that failed was
 * not: its rejected Promise was dropped, an unhandled rejection, which ends a Node process.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLoop, VirtualClock } from '../../src/index.js';
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

describe('an async tracer that rejects', () => {
  it('each rejection is reported as "Exception in tracer"; every iteration is still traced and nothing is unhandled', async () => {
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    const reports: ExceptionContext[] = [];
    loop.setExceptionHandler((_loop, context) => {
      reports.push(context);
    });
    const iterations: number[] = [];
    loop.setTracer(async (record) => {
      iterations.push(record.iteration);
      await null;
      throw new RangeError(`sink full at ${record.iteration}`);
    });
    loop.callSoon(function first() {
      loop.callSoon(function second() {
        loop.callLater(1, function last() {
          loop.stop();
        });
      });
    });
    await loop.runForever();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    loop.close();
    expect(iterations).toEqual([1, 2, 3]);
    expect(unhandled).toEqual([]);
    expect(reports.map((c) => [c.message, (c.exception as Error).message])).toEqual([
      ['Exception in tracer', 'sink full at 1'],
      ['Exception in tracer', 'sink full at 2'],
      ['Exception in tracer', 'sink full at 3'],
    ]);
  });
});
