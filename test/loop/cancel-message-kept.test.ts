/**
 * Deliberately different from asyncio (docs/event-loop-internals.md, "Where tulipwire does better"): a Task
 * cancelled with a message gives that message to everyone who looks. CPython 3.13 gives it only to the first
 * retrieval (`_make_cancelled_error` hands out the saved exception once and clears it): after `await t` raised
 * `CancelledError('why')`, `t.result()` raises `CancelledError()` and `gather(t, return_exceptions=True)` returns
 * `[CancelledError('')]` (observed with CPython 3.13.0; a differential fuzzer against it sees only this difference in
 * messages).
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, gather, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('the cancel message of a cancelled Task', () => {
  const fx = useLoop();

  it('every retrieval sees it: await, result(), exception(), gather(returnExceptions)', async () => {
    await fx.run(async () => {
      const t = fx.loop.createTask(() => sleep(10));
      await sleep(0);
      t.cancel('why');
      await expect(t).rejects.toMatchObject({ name: 'CancelledError', message: 'why' });
      expect(() => t.result()).toThrow(CancelledError);
      expect(() => t.result()).toThrow('why');
      expect(() => t.exception()).toThrow('why');
      const [r] = await gather(t, { returnExceptions: true });
      expect(r).toBeInstanceOf(CancelledError);
      expect((r as CancelledError).message).toBe('why');
    });
  });
});
