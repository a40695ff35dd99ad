/**
 * VirtualClock's inputs from JavaScript. `advance('5')` passed the `seconds >= 0` check ('5' >= 0 is true) and
 * added a string: `time()` became '05', and every timer scheduled after it was due at a string ('051' for
 * callLater(1)). `new VirtualClock({start: NaN})` gave a clock whose time was NaN: no timer was ever due (every
 * comparison with NaN is false) and advance() could not repair it. Now a TypeError for what is not a number, a
 * RangeError for NaN, negative advances and non-finite starts, and the clock stays as it was.
 */
import { describe, expect, it } from 'vitest';
import { EventLoop, VirtualClock } from '../../src/index.js';

describe('VirtualClock refuses what is not a number of seconds', () => {
  it('advance(): TypeError for a string, null or undefined; RangeError for NaN and negatives; time unchanged', () => {
    const clock = new VirtualClock({ epochStart: 1_700_000_000 });
    for (const bad of ['5', null, undefined, 5n]) {
      expect(() => clock.advance(bad as unknown as number)).toThrow(TypeError);
    }
    expect(() => clock.advance(NaN)).toThrow(RangeError);
    expect(() => clock.advance(-1)).toThrow("time can't go backwards");
    expect(clock.time()).toBe(0);
    expect(clock.epoch()).toBe(1_700_000_000);
    clock.advance(2.5);
    expect(clock.time()).toBe(2.5);
  });

  it('a loop on it still schedules numbers after a refused advance', () => {
    const clock = new VirtualClock();
    const loop = new EventLoop({ clock });
    expect(() => clock.advance('5' as unknown as number)).toThrow(TypeError);
    expect(loop.callLater(1, () => {}).when()).toBe(1);
    loop.close();
  });

  it('start and epochStart: a finite number, else TypeError / RangeError', () => {
    expect(() => new VirtualClock({ start: '10' as unknown as number })).toThrow(TypeError);
    expect(() => new VirtualClock({ start: NaN })).toThrow(RangeError);
    expect(() => new VirtualClock({ start: Infinity })).toThrow(RangeError);
    expect(() => new VirtualClock({ epochStart: NaN })).toThrow(RangeError);
    expect(() => new VirtualClock({ epochStart: '1700000000' as unknown as number })).toThrow(TypeError);
    const ok = new VirtualClock({ start: 10, epochStart: 1_700_000_000 });
    expect([ok.time(), ok.epoch()]).toEqual([10, 1_700_000_000]);
  });

  it('jumpTo() with a string does nothing (the loop only passes numbers)', () => {
    const clock = new VirtualClock();
    clock.jumpTo('7' as unknown as number);
    expect(clock.time()).toBe(0);
    clock.jumpTo(7);
    expect(clock.time()).toBe(7);
  });
});
