/**
 * run(main, {setup}) when it cannot start main: a `setup` that throws, or a `main` that is no function
 * (`run(main())`, a Promise). asyncio.run() is `with Runner(...) as runner: runner.run(main)`, so its loop is closed
 * whatever fails; tulipwire's run() left the loop it made open, with the signal handlers `setup` had installed:
 * the process listener stayed, Node's default action for the signal (exit on Ctrl-C) stayed off, and each signal
 * queued a callback on a loop that never runs again.
 */
import { describe, expect, it } from 'vitest';
import { run } from '../../src/index.js';
import type { EventLoop } from '../../src/index.js';

describe('run() closes its loop when main cannot start', () => {
  it('a setup that throws: its error comes out, the loop is closed and its signal handlers are gone', async () => {
    const before = process.listenerCount('SIGHUP');
    let seen: EventLoop | null = null;
    let mainRan = false;
    await expect(
      run(
        async () => {
          mainRan = true;
        },
        {
          handleSignals: false,
          setup: (loop) => {
            seen = loop;
            loop.addSignalHandler('SIGHUP', () => {});
            throw new RangeError('setup failed');
          },
        },
      ),
    ).rejects.toThrow('setup failed');
    expect(mainRan).toBe(false);
    expect(seen!.isClosed()).toBe(true);
    expect(process.listenerCount('SIGHUP')).toBe(before);
  });

  it('a main that is no function (a Promise: run(main()) instead of run(main)): TypeError before setup runs, no loop left behind', async () => {
    const before = process.listenerCount('SIGHUP');
    let setupRan = false;
    for (const bad of [Promise.resolve(1), 42, null]) {
      const err = await run(bad as unknown as () => void, {
        handleSignals: false,
        setup: (loop) => {
          setupRan = true;
          loop.addSignalHandler('SIGHUP', () => {});
        },
      }).catch((e: unknown) => e);
      expect(setupRan).toBe(false);
      expect(process.listenerCount('SIGHUP')).toBe(before);
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/^run\(\) takes a function/);
    }
  });
});
