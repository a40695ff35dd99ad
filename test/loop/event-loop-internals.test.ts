/**
 * What a lecture on the loop's internals showed, pinned: the teaching session's findings (docs/event-loop-internals.md,
 * "Watching the loop" and "Testing on the virtual clock"). Each behaviour fix here failed on the code before it.
 */
import { describe, expect, it } from 'vitest';
import { EventLoop, VirtualClock, run, sleep, getRunningLoop } from '../../src/index.js';
import type { ExceptionContext, TimerHandle, TraceRecord } from '../../src/index.js';
import { collectGarbage } from '../support/loop.js';

const quiet = { warn: () => {}, error: () => {} };

describe('an un-awaited task that fails', () => {
  it('is reported by run() when main is over, naming the task (Node may exit before any GC)', async () => {
    const seen: ExceptionContext[] = [];
    await run(
      async () => {
        getRunningLoop().createTask(async () => {
          await sleep(0.01);
          throw new Error('orphan boom');
        }, { name: 'orphan' });
        await sleep(0.1);
      },
      { handleSignals: false, logger: quiet, clock: new VirtualClock({ autojump: true }), setup: (l) => l.setExceptionHandler((_l, c) => seen.push(c)) },
    );
    expect(seen.map((c) => c.message)).toEqual(['Task exception was never retrieved']);
    expect(String(seen[0]!.future)).toBe('<Task finished name=orphan exception=Error: orphan boom>');
    expect((seen[0]!.exception as Error).message).toBe('orphan boom');
  });

  it('is not reported when its exception was read, when it was cancelled, or when it succeeded', async () => {
    const seen: ExceptionContext[] = [];
    await run(
      async () => {
        const loop = getRunningLoop();
        const awaited = loop.createTask(async () => {
          throw new Error('awaited');
        });
        await awaited.then(null, () => {});
        const read = loop.createTask(async () => {
          throw new Error('read');
        });
        await sleep(0);
        await sleep(0);
        expect((read.exception() as Error).message).toBe('read');
        loop.createTask(() => sleep(10), { name: 'cancelled-at-shutdown' });
        loop.createTask(async () => 1);
        const f = loop.createFuture();
        f.setException(new Error('future read'));
        expect(() => f.result()).toThrow('future read');
        await sleep(0);
      },
      { handleSignals: false, logger: quiet, setup: (l) => l.setExceptionHandler((_l, c) => seen.push(c)) },
    );
    expect(seen).toEqual([]);
  });

  it('a plain Future failed and never read is reported too (Future exception was never retrieved)', async () => {
    const seen: ExceptionContext[] = [];
    await run(
      async () => {
        getRunningLoop().createFuture().setException(new RangeError('nobody looked'));
      },
      { handleSignals: false, logger: quiet, setup: (l) => l.setExceptionHandler((_l, c) => seen.push(c)) },
    );
    expect(seen.map((c) => [c.message, String(c.future)])).toEqual([
      ['Future exception was never retrieved', '<Future finished exception=RangeError: nobody looked>'],
    ]);
  });

  it('the garbage-collection report names the Future as well (it is gone: its description)', async () => {
    const seen: ExceptionContext[] = [];
    const loop = new EventLoop({ logger: quiet });
    loop.setExceptionHandler((_l, c) => seen.push(c));
    await loop.runUntilComplete(async () => {
      loop.createTask(async () => {
        throw new Error('collected');
      }, { name: 'lost' });
      await sleep(0);
      await sleep(0);
    });
    await collectGarbage();
    expect(seen.map((c) => [c.message, c.future])).toEqual([['Task exception was never retrieved', '<Task finished name=lost exception=Error: collected>']]);
    loop.close();
  });
});

describe('trace records answer the natural questions', () => {
  it('nextReady: what an iteration queued for the next one (callSoon), ahead of callLater(0)', async () => {
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    const recs: TraceRecord[] = [];
    loop.setTracer((r) => recs.push(r));
    const order: string[] = [];
    loop.callSoon(function first() {
      order.push('first');
      loop.callLater(0, function later0() {
        order.push('later0');
      });
      loop.callSoon(function soon() {
        order.push('soon');
      });
      loop.callSoon(function dropped() {}).cancel();
    });
    loop.callSoon(function stopper() {
      loop.callSoon(() => loop.stop());
    });
    await loop.runForever();
    expect(order).toEqual(['first', 'soon', 'later0']);
    expect(recs.map((r) => [r.callbacks, r.nextReady, r.timersDue])).toEqual([
      [['first', 'stopper'], ['soon', '<anonymous>'], 0],
      [['soon', '<anonymous>', 'later0'], [], 1],
    ]);
    loop.close();
  });

  it('timers, cancelledTimers, compacted: the heap as asyncio keeps it (same numbers as len(_scheduled))', async () => {
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    const recs: TraceRecord[] = [];
    loop.setTracer((r) => recs.push(r));
    const hs: TimerHandle[] = [];
    for (let i = 0; i < 200; i++) hs.push(loop.callLater(1 + (i % 10), () => {}));
    hs[199]!.cancel();
    loop.callSoon(function cancelMost() {
      for (let i = 0; i < 150; i++) hs[i]!.cancel();
    });
    loop.callLater(20, () => loop.stop());
    await loop.runForever();
    // #1 runs cancelMost (the one cancelled timer is not at the top: it stays); #2 rebuilds the heap first
    // (151 of 201 cancelled > 50 %), then 5 timers fall due. Python 3.13's len(_scheduled) and
    // _timer_cancelled_count read 201 151, then 47 0 and 45 0: on its real clock the five "1 s" timers were
    // scheduled microseconds apart, so they fell due over two iterations; on the virtual clock they are equal.
    expect(recs.slice(0, 3).map((r) => [r.timers, r.cancelledTimers, r.compacted, r.timersDue])).toEqual([
      [201, 151, false, 0],
      [45, 0, true, 5],
      [40, 0, false, 5],
    ]);
    expect(recs.at(-1)!.timers).toBe(0);
    loop.close();
  });

  it('a cancelled TimerHandle still says when it was for (asyncio: <TimerHandle cancelled when=…>)', () => {
    const loop = new EventLoop({ clock: new VirtualClock() });
    const h = loop.callLater(5, function tick() {});
    expect(String(h)).toBe('<TimerHandle when=5 tick>');
    h.cancel();
    expect(String(h)).toBe('<TimerHandle cancelled when=5>');
    const s = loop.callSoon(function soon() {});
    s.cancel();
    expect(String(s)).toBe('<Handle cancelled>');
    loop.close();
  });
});

describe('stepping the loop by hand (asyncio test_utils.run_once)', () => {
  it('loop.stop() then runForever() runs exactly one iteration; clock.advance() moves a manual clock', async () => {
    const clock = new VirtualClock();
    const loop = new EventLoop({ clock });
    const recs: TraceRecord[] = [];
    loop.setTracer((r) => recs.push(r));
    const runOnce = async (): Promise<void> => {
      loop.stop();
      await loop.runForever();
    };
    const log: string[] = [];
    const t = loop.createTask(async () => {
      log.push(`sleeping at ${loop.time()}`);
      await sleep(5);
      log.push(`woke at ${loop.time()}`);
      return 'done';
    }, { name: 'T' });
    await runOnce();
    await runOnce();
    expect(log).toEqual(['sleeping at 0']);
    clock.advance(5);
    await runOnce(); // the sleep's timer falls due and resolves its Future
    expect(t.done()).toBe(false);
    await runOnce(); // the task's wake-up step
    expect(t.result()).toBe('done');
    expect(recs.map((r) => [r.time, r.callbacks])).toEqual([
      [0, ['T.start']],
      [0, []],
      [5, ['setResultUnlessCancelled']],
      [5, ['T.step']],
    ]);
    loop.close();
  });
});
