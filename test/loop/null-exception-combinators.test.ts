/**
 * JavaScript can throw `null` and `undefined` (`throw null`, `Promise.reject()`), so a tulipwire Future can fail with
 * an exception that is `null`: its state is errored, `exception()` returns `null`, `result()` throws `null`. The
 * combinators and structured-concurrency helpers must read the Future's state, not `exception() !== null`, or they
 * take such a failure for a success: gather() called `result()` inside its done callback (which threw out of the
 * callback, so the gather never settled), shield() likewise, wait({returnWhen: FIRST_EXCEPTION}) did not return
 * on it, a TaskGroup let the failed child pass as done, and run() did not report a leftover task failing so.
 */
import { describe, expect, it } from 'vitest';
import { ErrorGroup, FIRST_EXCEPTION, TaskGroup, gather, shield, sleep, wait, waitFor } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

const failWith = (v: null | undefined, delay = 0) => async (): Promise<never> => {
  await sleep(delay);
  throw v;
};

describe('a Future that fails with null or undefined is a failure everywhere', () => {
  const fx = useLoop();

  for (const v of [null, undefined]) {
    it(`gather rejects with ${String(v)} (and returnExceptions lists it)`, async () => {
      await fx.run(async () => {
        const other = fx.loop.createTask(() => sleep(0.01));
        const g = gather(fx.loop.createTask(failWith(v)), other);
        let caught: unknown = 'nothing thrown';
        try {
          await waitFor(g, 5);
        } catch (e) {
          caught = e;
        }
        expect(caught).toBe(v);
        await other;
        const r = await waitFor(gather(fx.loop.createTask(failWith(v)), fx.loop.createTask(async () => 7), { returnExceptions: true }), 5);
        expect(r).toEqual([v, 7]);
      });
    });

    it(`the last child of a gather failing with ${String(v)} settles it`, async () => {
      await fx.run(async () => {
        const g = gather(fx.loop.createTask(async () => 1), fx.loop.createTask(failWith(v, 0.01)), { returnExceptions: true });
        expect(await waitFor(g, 5)).toEqual([1, v]);
      });
    });

    it(`shield passes a failure with ${String(v)} on`, async () => {
      await fx.run(async () => {
        const s = shield(fx.loop.createTask(failWith(v, 0.01)));
        let caught: unknown = 'nothing thrown';
        try {
          await waitFor(s, 5);
        } catch (e) {
          caught = e;
        }
        expect(caught).toBe(v);
      });
    });

    it(`wait(FIRST_EXCEPTION) returns when a Future fails with ${String(v)}`, async () => {
      await fx.run(async () => {
        const bad = fx.loop.createTask(failWith(v, 0.01));
        const slow = fx.loop.createTask(() => sleep(3600));
        const [done, pending] = await wait([bad, slow], { returnWhen: FIRST_EXCEPTION, timeout: 7200 });
        expect([...done]).toEqual([bad]);
        expect([...pending]).toEqual([slow]);
        slow.cancel();
      });
    });

    it(`a TaskGroup child failing with ${String(v)} aborts the group, which throws it`, async () => {
      await fx.run(async () => {
        let sibling: ReturnType<typeof fx.loop.createTask> | null = null;
        let caught: unknown = 'nothing thrown';
        try {
          await waitFor(async () => {
            const tg = new TaskGroup();
            await tg.run(async () => {
              tg.createTask(failWith(v, 0.01));
              sibling = tg.createTask(() => sleep(3600));
            });
          }, 5);
        } catch (e) {
          caught = e;
        }
        expect(sibling!.cancelled()).toBe(true);
        expect(caught).toBeInstanceOf(ErrorGroup);
        expect((caught as ErrorGroup).errors).toEqual([v]);
      });
    });
  }
});
