/**
 * An async generator is no task body: asyncio's `create_task` refuses one at once ("a coroutine was expected, got
 * <async_generator …>"). `loop.createTask(async function* () {…})` used to drive the generator object as if it were
 * a plain generator: every `next()` gave a Promise, taken for a bare yield, so the task stepped forever (a busy
 * loop that starved nothing else but never ended) and the body never ran past its first await. Now the function is
 * refused with TypeError when the task is made, and a body that returns an async generator object fails its task
 * with TypeError. The same for a task whose body throws `null` at run() shutdown: reported as any failure.
 */
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('async generators as task bodies', () => {
  const fx = useLoop();

  it('createTask(async function* …) throws TypeError and schedules nothing', async () => {
    await fx.run(async () => {
      let ran = false;
      async function* ticks(): AsyncGenerator<number> {
        ran = true;
        yield 1;
      }
      const before = fx.loop._tasks.size;
      expect(() => fx.loop.createTask(ticks as never)).toThrow(TypeError);
      expect(() => fx.loop.createTask(ticks as never)).toThrow(/async generator function \(ticks\)/);
      expect(fx.loop._tasks.size).toBe(before);
      await sleep(0.01);
      expect(ran).toBe(false);
    });
  });

  it('a body returning an async generator object fails its task with TypeError, at once', async () => {
    await fx.run(async () => {
      async function* ticks(): AsyncGenerator<number> {
        yield 1;
      }
      const t = fx.loop.createTask((() => ticks()) as never);
      // waitFor bounds the old behaviour (the task never ended); virtual time, so no real wait.
      await expect(waitFor(t, 60)).rejects.toThrow(/returned an async generator/);
      expect(t.exception()).toBeInstanceOf(TypeError);
    });
  });
});
