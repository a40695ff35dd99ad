/**
 * The default exception handler with a thrown value that cannot be turned into a string. JavaScript lets code throw
 * anything: a null-prototype object (`String()` throws "Cannot convert object to primitive value"), an object whose
 * `toString` throws, an Error whose `stack` getter throws. The handler formatted the exception with `String(exc)`,
 * threw, and only "Exception in default exception handler" and that TypeError reached the logger: the report
 * itself ("Exception in callback thrower", its handle) was lost. Python's logging never loses it (a failing
 * `str()` prints `<exception str() failed>`); the other context values were already printed safely.
 */
import { describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/index.js';

async function reports(thrown: () => unknown): Promise<string[]> {
  const errors: string[] = [];
  const loop = new EventLoop({ logger: { warn: () => {}, error: (m) => errors.push(m) } });
  loop.callSoon(function thrower() {
    throw thrown();
  });
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  loop.close();
  return errors;
}

describe('the default exception handler never loses a report to an unprintable exception', () => {
  it('a null-prototype object: the report keeps its message and handle, the value is shown by util.inspect', async () => {
    const errors = await reports(() => Object.assign(Object.create(null) as object, { code: 7 }));
    expect(errors).toHaveLength(1);
    const lines = errors[0]!.split('\n');
    expect(lines[0]).toBe('Exception in callback thrower');
    expect(lines[1]).toBe('handle: <Handle thrower>');
    expect(lines[2]).toBe('[Object: null prototype] { code: 7 }');
  });

  it('an object whose toString throws', async () => {
    const errors = await reports(() => ({
      toString(): string {
        throw new Error('no string for you');
      },
    }));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.split('\n').slice(0, 2)).toEqual(['Exception in callback thrower', 'handle: <Handle thrower>']);
    expect(errors[0]).not.toContain('no string for you');
  });

  it('an Error whose stack getter throws: shown as name and message', async () => {
    const errors = await reports(() => {
      const e = new RangeError('boom');
      Object.defineProperty(e, 'stack', {
        get(): string {
          throw new Error('stack unavailable');
        },
      });
      return e;
    });
    expect(errors).toEqual(['Exception in callback thrower\nhandle: <Handle thrower>\nRangeError: boom']);
  });

  it('the same context given to callExceptionHandler directly, with a custom key', async () => {
    const errors: string[] = [];
    const loop = new EventLoop({ logger: { warn: () => {}, error: (m) => errors.push(m) } });
    loop.callExceptionHandler({ message: 'custom report', exception: Object.create(null), peer: 'a' });
    loop.close();
    expect(errors).toEqual(['custom report\npeer: a\n[Object: null prototype] {}']);
  });
});
