/**
 * A timer at `Infinity` (`sleep(Infinity)`, "sleep forever"; `timeout(Infinity, …)`; `callLater(Infinity, …)`)
 * never fires. An autojump VirtualClock jumped to it as soon as the loop idled with it as the nearest timer (while
 * the program waited for I/O), so `sleep(Infinity)` returned, `loop.time()` became Infinity, and from then on every
 * timer was due at once. Now the clock does not jump to a deadline that never comes: the loop waits for I/O, as it
 * does with no timer at all. (A real clock already waited: its poll is capped at 24 h.)
 */
import { describe, expect, it } from 'vitest';
import { sleep, timeout } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('autojump and a timer at Infinity', () => {
  const fx = useLoop({ autojump: true });

  it('sleep(Infinity) keeps sleeping while the loop waits for an outside event; time does not move', async () => {
    await fx.run(async () => {
      const forever = fx.loop.createTask(() => sleep(Infinity));
      let fired = false;
      const never = fx.loop.callLater(Infinity, () => {
        fired = true;
      });
      // An event from outside the loop (a real timer stands for I/O): the loop is idle until then.
      const outside = fx.loop.createFuture<string>();
      const t = setTimeout(() => fx.loop.callSoon(() => outside.setResult('io')), 50);
      try {
        expect(await outside).toBe('io');
      } finally {
        clearTimeout(t);
      }
      expect(fx.loop.time()).toBe(0);
      expect(forever.done()).toBe(false);
      expect(fired).toBe(false);
      // Finite timers still jump as before.
      await sleep(2);
      expect(fx.loop.time()).toBe(2);
      expect(forever.done()).toBe(false);
      forever.cancel();
      never.cancel();
      await expect(forever).rejects.toMatchObject({ name: 'CancelledError' });
    });
  });

  it('timeout(Infinity) never expires', async () => {
    await fx.run(async () => {
      const outside = fx.loop.createFuture<number>();
      const t = setTimeout(() => fx.loop.callSoon(() => outside.setResult(7)), 50);
      try {
        const r = await timeout(Infinity, async (scope) => {
          const v = await outside;
          expect(scope.expired()).toBe(false);
          return v;
        });
        expect(r).toBe(7);
      } finally {
        clearTimeout(t);
      }
      expect(fx.loop.time()).toBe(0);
    });
  });
});
