/**
 * Per-test cleanups: {@link useCleanups} registers an `afterEach` that runs what the test pushed, last first, each
 * awaited (servers closed before the temp directories they live in are removed).
 */
import { afterEach } from 'vitest';

/** The list a test pushes its cleanups onto; emptied after each test. */
export function useCleanups(): (() => void | Promise<void>)[] {
  const list: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of list.splice(0).reverse()) await c();
  });
  return list;
}
