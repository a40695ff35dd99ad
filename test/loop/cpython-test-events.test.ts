/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_events.py cases about the loop: HandleTests and TimerTests (the
 * Handle and TimerHandle repr, in debug mode too, and a callback that raises) and
 * GetEventLoopTestsMixin.test_get_event_loop_returns_running_loop (its get_running_loop half). Each `it` names its
 * CPython case (`file.Class.test_name`). Virtual clock throughout; no timed assertions.
 *
 * Where tulipwire deliberately differs the title says so (asyncio's repr also shows the callback's own
 * `at file:line`; JavaScript functions do not carry their source position). Skipped: test_timer_comparison and
 * test_hash (JavaScript has no operator overloading or __hash__: timers are ordered by the loop's heap, pinned
 * elsewhere), policies and `get_event_loop`, and the thread/executor/subprocess/signal cases (out of scope here;
 * the signal handlers have test/loop/signals.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { EventLoop, InvalidStateError, VirtualClock, getRunningLoop, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

function noop(..._args: unknown[]): void {}

describe('test_events.py', () => {
  const fx = useLoop();

  it('test_events.HandleTests.test_handle_repr, deliberately different: <Handle noop>, the name without "()" and source location (JS functions carry no file:line); <Handle cancelled> once cancelled', () => {
    // asyncio: '<Handle noop() at file.py:12>', then '<Handle cancelled>'.
    const h = fx.loop.callSoon(noop, 1, 2);
    expect(String(h)).toBe('<Handle noop>');
    h.cancel();
    expect(String(h)).toBe('<Handle cancelled>');
    // asyncio's functools.partial case: the callback's own name shows (a bound function is "bound noop").
    const bound = fx.loop.callSoon(noop.bind(null, 1), 3);
    expect(String(bound)).toBe('<Handle bound noop>');
    bound.cancel();
    // An anonymous callback still gives a readable repr.
    const anon = fx.loop.callSoon((() => () => {})());
    expect(String(anon)).toBe('<Handle <anonymous>>');
    anon.cancel();
  });

  it('test_events.TimerTests.test_timer_repr: <TimerHandle when=123 noop>, then <TimerHandle cancelled when=123>', () => {
    const h = fx.loop.callAt(123, noop);
    expect(String(h)).toBe('<TimerHandle when=123 noop>');
    h.cancel();
    expect(String(h)).toBe('<TimerHandle cancelled when=123>');
  });

  it('test_events.HandleTests.test_callback_with_exception: the handler gets message "Exception in callback …", the exception and the handle (and sourceTraceback in debug mode)', async () => {
    const err = new RangeError('value');
    function callback(): void {
      throw err;
    }
    const h = fx.loop.callSoon(callback);
    await fx.runBriefly();
    const [ctx, ...more] = fx.take();
    expect(more).toEqual([]);
    expect(ctx!.message).toMatch(/^Exception in callback/);
    expect(ctx!.exception).toBe(err);
    expect(ctx!.handle).toBe(h);
    expect(Object.keys(ctx!).sort()).toEqual(['exception', 'handle', 'message']);
    // asyncio passes 'source_traceback': h._source_traceback, which is None unless in debug mode.
    fx.loop.setDebug(true);
    const h2 = fx.loop.callSoon(callback);
    await fx.runBriefly();
    const [ctx2] = fx.take();
    expect(ctx2!.handle).toBe(h2);
    expect(typeof ctx2!.sourceTraceback).toBe('string');
    expect(String(ctx2!.sourceTraceback)).toContain('cpython-test-events');
  });

  it('test_events.GetEventLoopTestsMixin.test_get_event_loop_returns_running_loop: getRunningLoop() throws "no running event loop" outside the loop, returns it inside, and throws again after (asyncio: RuntimeError; here InvalidStateError)', async () => {
    expect(() => getRunningLoop()).toThrow(InvalidStateError);
    expect(() => getRunningLoop()).toThrow(/no running event loop/);
    const seen: EventLoop[] = [];
    await fx.loop.runUntilComplete(async () => {
      seen.push(getRunningLoop());
      await sleep(0);
      seen.push(getRunningLoop()); // still, after a suspension
      // In a plain callback of the loop, too.
      const f = fx.loop.createFuture<EventLoop>();
      fx.loop.callSoon(() => f.setResult(getRunningLoop()));
      seen.push(await f);
    });
    expect(seen).toEqual([fx.loop, fx.loop, fx.loop]);
    expect(() => getRunningLoop()).toThrow(/no running event loop/);
  });
});

describe('test_events.py HandleTests / TimerTests (debug repr)', () => {
  it('test_events.HandleTests.test_handle_repr_debug and TimerTests.test_timer_repr_debug: in debug mode the repr ends with where the handle was made, cancelled or not', () => {
    const loop = new EventLoop({ debug: true, clock: new VirtualClock() });
    try {
      function noop(): void {}
      const here = /cpython-test-events\.test\.ts:(\d+)/;
      const h = loop.callSoon(noop); const line = Number(new Error().stack!.match(here)![1]);
      expect(String(h)).toBe(`<Handle noop created at ${import.meta.filename}:${line}>`);
      h.cancel();
      expect(String(h)).toBe(`<Handle cancelled created at ${import.meta.filename}:${line}>`);

      const th = loop.callLater(10, noop); const tline = Number(new Error().stack!.match(here)![1]);
      expect(String(th)).toBe(`<TimerHandle when=10 noop created at ${import.meta.filename}:${tline}>`);
      th.cancel();
      expect(String(th)).toBe(`<TimerHandle cancelled when=10 created at ${import.meta.filename}:${tline}>`);

      // Without debug mode nothing is captured, so nothing is shown (asyncio's test_handle_repr).
      const quiet = new EventLoop({ clock: new VirtualClock() });
      expect(String(quiet.callSoon(noop))).toBe('<Handle noop>');
      quiet.close();
    } finally {
      loop.close();
    }
  });
});
