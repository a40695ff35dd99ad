/**
 * run(main) with an async generator function as main (`async function* main() {…}`, easy to type for `async
 * function`). asyncio.run(agen()) refuses it: "a coroutine was expected, got <async_generator …>". tulipwire's
 * run() took it, since it is a function, and the Task drove the async generator object as if it were a generator
 * (it has next() and throw()): each next() gave a Promise, taken for a bare yield, so the task spun one iteration
 * after another and run() never returned, with the body's first line never run.
 */
import { describe, expect, it } from 'vitest';
import { run } from '../../src/index.js';

describe('run() refuses an async generator function as main', () => {
  it('TypeError before any loop is made; the body never runs', async () => {
    let bodyRan = false;
    let setupRan = false;
    async function* main(): AsyncGenerator<number> {
      bodyRan = true;
      yield 1;
    }
    let guard: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      run(main as unknown as () => Promise<void>, { handleSignals: false, setup: () => (setupRan = true) }).then(
        () => 'returned',
        (e: unknown) => e,
      ),
      new Promise<string>((resolve) => {
        guard = setTimeout(() => resolve('run() did not return within 2 s'), 2000);
      }),
    ]);
    clearTimeout(guard);
    expect(outcome).toBeInstanceOf(TypeError);
    expect((outcome as Error).message).toBe('run() takes a function (async or generator), not an async generator function');
    expect(setupRan).toBe(false);
    expect(bodyRan).toBe(false);
  });
});
