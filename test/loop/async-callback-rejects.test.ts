/**
 * A callback that throws is reported ("Exception in callback <name>", with its handle) and the loop goes on
 * (asyncio's Handle._run). An async function given to callSoon / callLater / callAt, or as a Future's done
 * callback, that failed after its first await (or at once: an async function never throws, it rejects) was not:
 * its rejected Promise was dropped, an unhandled rejection, which ends a Node process. asyncio never runs such a
 * body at all (a coroutine function passed to call_soon only makes a coroutine nobody awaits); tulipwire runs it,
 * so it now reports its rejection as it reports a throw.
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

describe('an async callback that rejects', () => {
  it('callSoon, callLater, callAt and a done callback: each rejection is reported with its handle; nothing is unhandled', async () => {
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    const reports: ExceptionContext[] = [];
    loop.setExceptionHandler((_loop, context) => {
      reports.push(context);
    });
    const soon = loop.callSoon(async function soonCb(tag: string) {
      await null;
      throw new Error(tag);
    }, 'soon');
    const later = loop.callLater(1, async function laterCb() {
      throw new Error('later');
    });
    const at = loop.callAt(2, async function atCb() {
      await null;
      throw new Error('at');
    });
    const fut = loop.createFuture<number>();
    fut.addDoneCallback(async function doneCb() {
      throw new Error('done');
    });
    loop.callLater(3, function finish() {
      fut.setResult(1);
      loop.callSoon(() => loop.stop());
    });
    await loop.runForever();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    loop.close();
    expect(unhandled).toEqual([]);
    expect(reports.map((c) => [c.message, (c.exception as Error).message])).toEqual([
      ['Exception in callback soonCb', 'soon'],
      ['Exception in callback laterCb', 'later'],
      ['Exception in callback atCb', 'at'],
      ['Exception in callback doneCb', 'done'],
    ]);
    expect(reports.slice(0, 3).map((c) => c.handle)).toEqual([soon, later, at]);
  });

  it('an async callback that resolves is not reported', async () => {
    const loop = new EventLoop();
    const reports: ExceptionContext[] = [];
    loop.setExceptionHandler((_loop, context) => {
      reports.push(context);
    });
    let ran = false;
    loop.callSoon(async () => {
      await null;
      ran = true;
    });
    loop.callSoon(() => loop.stop());
    await loop.runForever();
    await new Promise((r) => setImmediate(r));
    loop.close();
    expect([ran, reports, unhandled]).toEqual([true, [], []]);
  });
});
