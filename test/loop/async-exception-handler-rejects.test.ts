/**
 * An async exception handler (`loop.setExceptionHandler(async (loop, ctx) => { await report(ctx); })`, natural in
 * JavaScript for a handler that ships reports somewhere) that fails. callExceptionHandler promises never to throw
 * and to report a failing handler through the default handler ("Unhandled error in exception handler"), but it
 * only caught a synchronous throw: the async handler's rejected Promise was dropped, an unhandled rejection, which
 * ends a Node process (the default since Node 15) over a report the loop was trying to make.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/index.js';
import type { ExceptionContext } from '../../src/index.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

describe('an async exception handler that rejects', () => {
  it('the rejection is reported through the default handler with the context it was given; nothing is unhandled', async () => {
    const errors: string[] = [];
    const loop = new EventLoop({ logger: { warn: () => {}, error: (m) => errors.push(m) } });
    const seen: ExceptionContext[] = [];
    loop.setExceptionHandler(async (_loop, context) => {
      seen.push(context);
      await null;
      throw new RangeError(`could not ship: ${context.message}`);
    });
    loop.callSoon(function thrower() {
      throw new Error('boom');
    });
    loop.callSoon(() => loop.stop());
    await loop.runForever();
    await settle();
    loop.close();
    expect(seen.map((c) => c.message)).toEqual(['Exception in callback thrower']);
    expect(unhandled).toEqual([]);
    expect(errors).toHaveLength(1);
    const lines = errors[0]!.split('\n');
    expect(lines[0]).toBe('Unhandled error in exception handler');
    expect(lines[1]).toMatch(/^context: /);
    expect(errors[0]).toContain('RangeError: could not ship: Exception in callback thrower');
  });

  it('an async handler that resolves reports nothing more, and the loop keeps running', async () => {
    const errors: string[] = [];
    const loop = new EventLoop({ logger: { warn: () => {}, error: (m) => errors.push(m) } });
    const seen: string[] = [];
    loop.setExceptionHandler(async (_loop, context) => {
      await null;
      seen.push(context.message);
    });
    let after = false;
    loop.callSoon(function thrower() {
      throw new Error('boom');
    });
    loop.callSoon(() => {
      after = true;
      loop.stop();
    });
    await loop.runForever();
    await settle();
    loop.close();
    expect([after, seen, errors, unhandled]).toEqual([true, ['Exception in callback thrower'], [], []]);
  });
});
