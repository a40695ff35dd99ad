/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_timeouts.py cases: the repr of an active scope, and a scope
 * entered outside any task. Virtual clock throughout; no timed assertions.
 */
import { describe, expect, it } from 'vitest';
import { Timeout, timeout } from '../../src/index.js';
import { awaitWithoutTask } from '../support/await-without-task.js';
import { useLoop } from '../support/loop.js';

describe('test_timeouts.py', () => {
  const fx = useLoop();

  it('test_timeouts.TimeoutTests.test_repr_active: when= is rounded to 3 decimals, as asyncio (round(when, 3))', async () => {
    // asyncio 3.13 timeouts.py __repr__: `when = round(self._when, 3)`. With the clock at 1.23456 a 10 s scope
    // prints "when=11.235" (asyncio "11.235" too; a whole number prints as "11" in JavaScript, "11.0" in Python).
    // Bug found by this port: tulipwire printed the raw deadline ("when=11.23456"); fixed in Timeout.toString.
    fx.clock!.advance(1.23456);
    await fx.run(async () => {
      await timeout(10, (cm) => {
        expect(String(cm)).toMatch(/^<Timeout \[active\] when=\d+(\.\d*)?>$/);
        expect(String(cm)).toBe('<Timeout [active] when=11.235>');
        expect(cm.when()).toBeCloseTo(11.23456, 9);
      });
    });
  });

  it('test_timeouts.TimeoutTests.test_timeout_without_task: inside a running loop but outside any task, entering throws "task"; reschedule then says "has not been entered"', async () => {
    // The older port ran with no loop at all; asyncio's case runs __aenter__ from a plain callback of the loop.
    await fx.run(async () => {
      const cm = new Timeout(fx.loop.time() + 0.01);
      await expect(awaitWithoutTask(() => cm._enter())).rejects.toThrow(/task/);
      expect(() => cm.reschedule(0.02)).toThrow(/has not been entered/);
      await expect(awaitWithoutTask(() => timeout(0.01, () => 1))).rejects.toThrow(/task/);
    });
  });
});
