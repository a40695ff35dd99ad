/**
 * examples/loop-internals: the example's `main()` runs, and its walk pins the iteration structure the docs
 * describe (docs/event-loop-internals.md shows the same output).
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../examples/loop-internals/main.js';

describe('examples/loop-internals', () => {
  it('prints one line per iteration, deterministic on the virtual clock', async () => {
    const lines: string[] = [];
    const r = await main({ print: (l) => lines.push(l) });
    expect(r.result).toBe('pong');
    expect(lines[0]).toMatch(/^iter/);
    expect(r.walk.length).toBe(r.records.length);
    expect(r.records.map((x) => x.callbacks)).toEqual([
      ['main.start'],
      ['plainA', 'plainB', 'w1.start', 'w2.start', 'waiter.start', 'sleeper.start'],
      ['plainC', 'w1.step'],
      ['w2.step', 'main.step'],
      ['w2.step'],
      ['main.step'],
      ['timerHalf'],
      ['resolveReply'],
      ['waiter.step'],
      ['main.step'],
      ['cancelSleeper'],
      ['sleeper.step'],
      ['main.step'],
      ['stopWhenDone'],
    ]);
    expect(r.records.filter((x) => x.jumped).map((x) => [x.time, x.wait])).toEqual([
      [0.5, 0.5],
      [1, 0.5],
      [2, 1],
    ]);
    expect(r.records.find((x) => x.deferred > 0)?.callbacks).toEqual(['waiter.step']);
    expect(r.events).toContain('#12 sleeper: TW_CANCELLED at t=2, cleaning up');
    // Identical output on a second run (virtual clock).
    const again = await main({ print: () => {} });
    expect(again.walk).toEqual(r.walk);
  });

  it('runs on the real clock too', async () => {
    // Timers 125 ms apart: a stalled turn must not merge two of them into one iteration.
    const r = await main({ real: true, timeScale: 0.25, print: () => {} });
    expect(r.result).toBe('pong');
    expect(r.records.length).toBeGreaterThanOrEqual(14);
  });
});
