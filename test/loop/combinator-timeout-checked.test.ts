/**
 * `waitFor`, `asCompleted` and `wait` refuse a timeout that is not a number of seconds (NaN, or `undefined` from a
 * JavaScript caller that left it out; `null` is "no limit") with a TypeError before they start anything. They used
 * to fail only once the timer was set, after a function given to them had already been made a Task: the call threw,
 * and the function ran anyway, in a task nobody could reach.
 */
import { describe, expect, it } from 'vitest';
import { asCompleted, sleep, wait, waitFor } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('combinators check their timeout first', () => {
  const fx = useLoop();

  for (const bad of [Number.NaN, undefined]) {
    it(`waitFor(fn, ${String(bad)}) throws TypeError and never runs fn`, async () => {
      let ran = false;
      await fx.run(async () => {
        const fn = async (): Promise<number> => {
          ran = true;
          return 1;
        };
        await expect(waitFor(fn, bad as unknown as number)).rejects.toThrow(TypeError);
        await sleep(1);
      });
      expect(ran).toBe(false);
    });
  }

  it('asCompleted([fn], {timeout: NaN}) throws TypeError and never runs fn', async () => {
    let ran = false;
    await fx.run(async () => {
      const fn = async (): Promise<number> => {
        ran = true;
        return 2;
      };
      expect(() => asCompleted([fn], { timeout: Number.NaN })).toThrow(TypeError);
      await sleep(1);
    });
    expect(ran).toBe(false);
  });

  it('wait(fs, {timeout: NaN}) throws TypeError; null still means no limit', async () => {
    await fx.run(async () => {
      const f = fx.loop.createFuture<number>();
      await expect(wait([f], { timeout: Number.NaN })).rejects.toThrow(TypeError);
      fx.loop.callLater(1, () => f.setResult(3));
      const [done] = await wait([f], { timeout: null });
      expect(done.has(f)).toBe(true);
      expect(await waitFor(sleep(1, 'ok'), null)).toBe('ok');
    });
  });
});
