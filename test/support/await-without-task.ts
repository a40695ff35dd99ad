/** Shared by the CPython loop ports that enter a scope outside any task (cpython-test-timeouts, cpython-test-taskgroups). */
import { getRunningLoop } from '../../src/index.js';

/** asyncio's `test_utils.await_without_task`: runs `fn` in a plain callback of the running loop (no task) and rethrows what it threw. */
export async function awaitWithoutTask(fn: () => unknown): Promise<void> {
  let exc: unknown = null;
  let threw = false;
  const loop = getRunningLoop();
  const done = loop.createFuture<void>();
  loop.callSoon(() => {
    try {
      const r = fn();
      if (r instanceof Promise) {
        r.then(() => done.setResult(), (e: unknown) => {
          threw = true;
          exc = e;
          done.setResult();
        });
        return;
      }
    } catch (e) {
      threw = true;
      exc = e;
    }
    done.setResult();
  });
  await done;
  if (threw) throw exc;
}
