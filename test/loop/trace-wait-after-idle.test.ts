/**
 * The trace record's `wait` is "the select() timeout of step 2" (docs/event-loop-internals.md, "Watching the loop").
 * asyncio computes that timeout, blocks in select() with it, then runs the timers and callbacks of the same
 * iteration. tulipwire's loop goes idle instead and computes step 2 again when woken, by then finding work ready:
 * every iteration that had waited (for a timer with the real clock, for I/O, for a manual clock.advance()) reported
 * `wait: 0`, and `null` (nothing scheduled, wait to be woken) never appeared. Only autojump jumps showed a wait.
 */
import { describe, expect, it } from 'vitest';
import { EventLoop, VirtualClock } from '../../src/index.js';
import type { TraceRecord } from '../../src/index.js';

function traced(loop: EventLoop): TraceRecord[] {
  const recs: TraceRecord[] = [];
  loop.setTracer((r) => recs.push(r));
  return recs;
}

describe('trace record wait: the timeout the loop waited with', () => {
  it('a virtual clock moved by hand: the iteration the advance wakes reports the wait to the timer it went idle with', async () => {
    const clock = new VirtualClock();
    const loop = new EventLoop({ clock });
    const recs = traced(loop);
    loop.callLater(5, function due() {
      loop.stop();
    });
    const done = loop.runForever();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    clock.advance(5);
    await done;
    loop.close();
    expect(recs.map((r) => [r.time, r.wait, r.jumped, r.callbacks])).toEqual([[5, 5, false, ['due']]]);
  });

  it('woken by a callSoon from outside (I/O): wait is the timeout to the pending timer, or null with no timer', async () => {
    const clock = new VirtualClock();
    const loop = new EventLoop({ clock });
    const recs = traced(loop);
    const far = loop.callLater(10, function far() {});
    const done = loop.runForever();
    await new Promise((r) => setImmediate(r));
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        loop.callSoon(function io() {
          far.cancel();
        });
        resolve();
      }, 5),
    );
    await new Promise((r) => setImmediate(r));
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        loop.callSoon(function io2() {
          loop.stop();
        });
        resolve();
      }, 5),
    );
    await done;
    loop.close();
    expect(recs.map((r) => [r.wait, r.callbacks])).toEqual([
      [10, ['io']],
      [null, ['io2']],
    ]);
  });

  it('the real clock: the iteration a timer wakes reports a wait above 0, at most the delay', async () => {
    const loop = new EventLoop();
    const recs = traced(loop);
    loop.callLater(0.05, function due() {
      loop.stop();
    });
    await loop.runForever();
    loop.close();
    const rec = recs.find((r) => r.callbacks.includes('due'))!;
    expect(rec.timersDue).toBe(1);
    expect(rec.wait).toBeGreaterThan(0);
    expect(rec.wait).toBeLessThanOrEqual(0.05);
  });

  it('an iteration that did not wait still reports 0, and an autojump its jump', async () => {
    const clock = new VirtualClock({ autojump: true });
    const loop = new EventLoop({ clock });
    const recs = traced(loop);
    loop.callSoon(function first() {
      loop.callSoon(function second() {});
    });
    loop.callLater(3, function later() {
      loop.stop();
    });
    await loop.runForever();
    loop.close();
    expect(recs.map((r) => [r.time, r.wait, r.jumped, r.callbacks])).toEqual([
      [0, 0, false, ['first']],
      [0, 0, false, ['second']],
      [3, 3, true, ['later']],
    ]);
  });
});
