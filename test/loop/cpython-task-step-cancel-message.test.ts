/**
 * Which CancelledError a pending cancel request throws into a task when the Future it awaited is done with a
 * CancelledError as its *exception* (not cancelled): asyncio's `Task.__step` (Lib/asyncio/tasks.py, and the C
 * `task_step_impl`) keeps the exception the wake-up brought when it is a CancelledError:
 *
 *     if self._must_cancel:
 *         if not isinstance(exc, exceptions.CancelledError):
 *             exc = self._make_cancelled_error()
 *
 * and `__wakeup` passes whatever `future.result()` raised. The common way to get there: a task awaiting a gather()
 * is cancelled twice (say by a timeout and by its caller) in different iterations; the first cancel reached the
 * children, the second finds them done (gather.cancel() returns false, so the task only gets `_must_cancel`), and
 * the gather then fails with the child's CancelledError (gather's `_cancel_requested` path sets it as the exception).
 * asyncio's task sees the first message; tulipwire threw a new CancelledError with the second.
 *
 * The expected messages are CPython 3.13's for the same programs (`CancelledError('m1')`, `CancelledError('inner')`).
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, gather, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('Task step: a pending cancel keeps the CancelledError the awaited Future failed with', () => {
  const fx = useLoop();

  const awaitingGather = () =>
    fx.loop.createTask(async () => {
      try {
        await gather(() => sleep(10), { returnExceptions: true });
        return 'not cancelled';
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    });

  it('gather cancelled with m1, the task cancelled again with m8 an iteration later: the task sees m1', async () => {
    const out = await fx.run(async () => {
      const t = awaitingGather();
      await sleep(0);
      await sleep(0);
      t.cancel('m1');
      await sleep(0);
      t.cancel('m8');
      return t;
    });
    expect(out).toBe('CancelledError: m1');
  });

  it('the second cancel from a callback of the next iteration: the task sees m1', async () => {
    const out = await fx.run(async () => {
      const t = awaitingGather();
      await sleep(0);
      await sleep(0);
      t.cancel('m1');
      fx.loop.callSoon(() => t.cancel('m8'));
      return t;
    });
    expect(out).toBe('CancelledError: m1');
  });

  it('a Future failed with CancelledError("inner"), then task.cancel("outer"): the task sees "inner"; a plain error gives "outer"', async () => {
    const [inner, plain, cancelling] = await fx.run(async () => {
      const run = async (exc: unknown): Promise<[string, number]> => {
        const fut = fx.loop.createFuture<void>();
        const t = fx.loop.createTask(async () => {
          try {
            await fut;
            return 'no error';
          } catch (e) {
            return (e as Error).message;
          }
        });
        await sleep(0);
        fut.setException(exc);
        t.cancel('outer');
        return [await t, t.cancelling()];
      };
      const a = await run(new CancelledError('inner'));
      const b = await run(new RangeError('v'));
      return [a[0], b[0], a[1]];
    });
    expect(inner).toBe('inner');
    expect(plain).toBe('outer');
    expect(cancelling).toBe(1);
  });
});
