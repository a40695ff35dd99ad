/**
 * timeout / timeoutAt scopes: ports of CPython's test_timeouts (TimeoutTests), on the virtual clock.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, ErrorGroup, InvalidStateError, TaskGroup, Timeout, TimeoutError, currentTask, sleep, timeout, timeoutAt } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

function zeroDivision(): never {
  throw new RangeError('division by zero');
}

describe('TimeoutTests', () => {
  const fx = useLoop();

  it('test_timeout_basic', async () => {
    await fx.run(async () => {
      let cm: Timeout | null = null;
      const err = await timeout(0.01, async (s) => {
        cm = s;
        await sleep(10);
      }).catch((e: unknown) => e);
      expect((err as TimeoutError).code).toBe('TW_TIMEOUT');
      expect((err as TimeoutError).cause).toBeInstanceOf(CancelledError);
      expect(cm!.expired()).toBe(true);
      expect(fx.loop.time()).toBeCloseTo(0.01, 9);
    });
  });

  it('test_timeout_at_basic', async () => {
    await fx.run(async () => {
      const deadline = fx.loop.time() + 0.01;
      let cm: Timeout | null = null;
      await expect(
        timeoutAt(deadline, async (s) => {
          cm = s;
          await sleep(10);
        }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(cm!.expired()).toBe(true);
      expect(cm!.when()).toBe(deadline);
    });
  });

  it('test_nested_timeouts: only the topmost scope raises TimeoutError', async () => {
    await fx.run(async () => {
      const deadline = fx.loop.time() + 0.01;
      let cancelled = false;
      let cm1: Timeout | null = null;
      let cm2: Timeout | null = null;
      await expect(
        timeoutAt(deadline, async (s1) => {
          cm1 = s1;
          try {
            await timeoutAt(deadline, async (s2) => {
              cm2 = s2;
              await sleep(10);
            });
          } catch (e) {
            if (e instanceof CancelledError) cancelled = true;
            throw e;
          }
        }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(cancelled).toBe(true);
      expect(cm1!.expired()).toBe(true);
      expect(cm2!.expired()).toBe(true);
    });
  });

  it('test_waiter_cancelled: the body sees CancelledError first', async () => {
    await fx.run(async () => {
      let cancelled = false;
      await expect(
        timeout(0.01, async () => {
          try {
            await sleep(10);
          } catch (e) {
            cancelled = e instanceof CancelledError;
            throw e;
          }
        }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(cancelled).toBe(true);
    });
  });

  it('test_timeout_not_called / test_timeout_disabled / test_timeout_at_disabled', async () => {
    await fx.run(async () => {
      let cm: Timeout | null = null;
      const v = await timeout(10, async (s) => {
        cm = s;
        await sleep(0.01);
        return 'v';
      });
      expect(v).toBe('v');
      expect(cm!.expired()).toBe(false);
      expect(cm!.when()!).toBeGreaterThan(fx.loop.time());
      await timeout(null, async (s) => {
        await sleep(0.01);
        expect(s.when()).toBe(null);
        expect(String(s)).toBe('<Timeout [active] when=null>');
      });
      await timeoutAt(null, () => sleep(0.01));
    });
  });

  it('test_timeout_zero / test_timeout_zero_sleep_zero / test_timeout_in_the_past_sleep_zero', async () => {
    await fx.run(async () => {
      for (const [delay, body] of [
        [0, 10],
        [0, 0],
        [-11, 0],
      ] as const) {
        const t0 = fx.loop.time();
        let cm: Timeout | null = null;
        await expect(
          timeout(delay, async (s) => {
            cm = s;
            await sleep(body);
          }),
        ).rejects.toBeInstanceOf(TimeoutError);
        expect(cm!.expired()).toBe(true);
        expect(cm!.when()!).toBeLessThanOrEqual(fx.loop.time());
        expect(fx.loop.time()).toBe(t0);
      }
    });
  });

  it('test_foreign_exception_passed', async () => {
    await fx.run(async () => {
      let cm: Timeout | null = null;
      await expect(
        timeout(0.01, (s) => {
          cm = s;
          throw new RangeError('key');
        }),
      ).rejects.toBeInstanceOf(RangeError);
      expect(cm!.expired()).toBe(false);
    });
  });

  it('test_foreign_exception_on_timeout: an error raised while cancelled passes through', async () => {
    await fx.run(async () => {
      const crash = async (): Promise<void> => {
        try {
          await sleep(1);
        } finally {
          // eslint-disable-next-line no-unsafe-finally
          throw new RangeError('crash in cleanup');
        }
      };
      await expect(timeout(0.01, crash)).rejects.toBeInstanceOf(RangeError);
    });
  });

  it('test_foreign_cancel_doesnt_timeout_if_not_expired', async () => {
    await fx.run(async () => {
      let cm: Timeout | null = null;
      await expect(
        timeout(10, async (s) => {
          cm = s;
          currentTask()!.cancel();
          await sleep(10);
        }),
      ).rejects.toBeInstanceOf(CancelledError);
      expect(cm!.expired()).toBe(false);
      currentTask()!.uncancel();
    });
  });

  it('test_outer_task_is_not_cancelled', async () => {
    await fx.run(async () => {
      const task = fx.loop.createTask(async () => {
        await expect(timeout(0.001, () => sleep(10))).rejects.toBeInstanceOf(TimeoutError);
      });
      await task;
      expect(task.cancelled()).toBe(false);
      expect(task.done()).toBe(true);
      expect(task.cancelling()).toBe(0);
    });
  });

  it('test_nested_timeouts_loop_busy: the outer scope interrupts work after the inner one timed out', async () => {
    await fx.run(async () => {
      const t0 = fx.loop.time();
      await expect(
        timeout(0.1, async () => {
          try {
            await timeout(0.01, async () => {
              fx.clock!.advance(0.1); // the loop was busy for 0.1 s
              await sleep(1);
            });
          } catch (e) {
            // As in CPython's assertRaises(TimeoutError): anything else (here the CancelledError, since both
            // deadlines passed in the same iteration) goes on to the outer scope.
            if (!(e instanceof TimeoutError)) throw e;
          }
          await sleep(10);
        }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(fx.loop.time() - t0).toBeLessThanOrEqual(1);
    });
  });

  it('test_nested_timeouts_concurrent: the outer deadline passes while the inner scope runs', async () => {
    await fx.run(async () => {
      await expect(
        timeout(0.002, async () => {
          try {
            await timeout(0.1, async () => {
              fx.clock!.advance(0.01); // "crunch some numbers" (CPython's time.sleep(0.01))
              await sleep(1);
            });
          } catch (e) {
            if (!(e instanceof TimeoutError)) throw e;
          }
        }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(currentTask()!.cancelling()).toBe(0);
    });
  });

  it('test_timeout_exception_context: an error whose cleanup is cancelled becomes TimeoutError caused by the CancelledError', async () => {
    await fx.run(async () => {
      const e = await timeout(0.01, async () => {
        try {
          zeroDivision();
        } finally {
          await sleep(1);
        }
      }).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(TimeoutError);
      expect((e as TimeoutError).cause).toBeInstanceOf(CancelledError);
    });
  });

  it('test_foreign_exception_on_timeout_2: the last error raised in cleanup after the timeout passes through', async () => {
    await fx.run(async () => {
      let scope: Timeout | null = null;
      const e = await timeout(0.01, async (s) => {
        scope = s;
        try {
          try {
            throw new TypeError('ValueError');
          } finally {
            await sleep(1);
          }
        } finally {
          try {
            // eslint-disable-next-line no-unsafe-finally
            throw new SyntaxError('KeyError');
          } finally {
            zeroDivision();
          }
        }
      }).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(RangeError);
      expect(scope!.expired()).toBe(true);
      expect(currentTask()!.cancelling()).toBe(0);
    });
  });

  it('test_repr_disabled', async () => {
    await fx.run(async () => {
      await timeout(null, (cm) => {
        expect(String(cm)).toBe('<Timeout [active] when=null>');
      });
    });
  });

  it('test_timeout_already_entered / test_timeout_double_enter / test_timeout_not_entered', async () => {
    await fx.run(async () => {
      let cm: Timeout | null = null;
      await timeout(0.01, (s) => {
        cm = s;
        expect(() => s._enter()).toThrow(/has already been entered/);
      });
      expect(() => cm!._enter()).toThrow(/has already been entered/);
      const fresh = new Timeout(fx.loop.time() + 0.01);
      expect(() => fresh.reschedule(0.02)).toThrow(/has not been entered/);
    });
  });

  it('test_reschedule', async () => {
    await fx.run(async () => {
      const fut = fx.loop.createFuture<{ s: Timeout }>();
      const deadline1 = fx.loop.time() + 10;
      const deadline2 = deadline1 + 20;
      const task = fx.loop.createTask(() =>
        timeoutAt(deadline1, async (s) => {
          fut.setResult({ s });
          await sleep(50);
        }),
      );
      const { s: cm } = await fut;
      expect(cm.when()).toBe(deadline1);
      cm.reschedule(deadline2);
      expect(cm.when()).toBe(deadline2);
      cm.reschedule(null);
      expect(cm.when()).toBe(null);
      task.cancel();
      await expect(task).rejects.toBeInstanceOf(CancelledError);
      expect(cm.expired()).toBe(false);
    });
  });

  it('reschedule extends a running deadline (the body finishes in time)', async () => {
    await fx.run(async () => {
      const v = await timeout(1, async (s) => {
        s.reschedule(fx.loop.time() + 5);
        await sleep(3);
        return 'made it';
      });
      expect(v).toBe('made it');
    });
  });

  it('test_repr_active / test_repr_expired / test_repr_finished', async () => {
    await fx.run(async () => {
      let cm: Timeout | null = null;
      await timeout(10, (s) => {
        expect(String(s)).toMatch(/^<Timeout \[active\] when=\d+(\.\d*)?>$/);
        cm = s;
      });
      expect(String(cm)).toBe('<Timeout [finished]>');
      await timeout(0.01, async (s) => {
        cm = s;
        await sleep(10);
      }).catch(() => {});
      expect(String(cm)).toBe('<Timeout [expired]>');
    });
  });

  it('test_nested_timeout_in_finally', async () => {
    await fx.run(async () => {
      let inner: unknown = null;
      const outer = await timeout(0.01, async () => {
        try {
          await sleep(1);
        } finally {
          inner = await timeout(0.01, () => sleep(10)).catch((e: unknown) => e);
        }
      }).catch((e: unknown) => e);
      expect(outer).toBeInstanceOf(TimeoutError);
      expect(inner).toBeInstanceOf(TimeoutError);
    });
  });

  it('test_timeout_after_cancellation: a timeout in cleanup after a caught cancel', async () => {
    await fx.run(async () => {
      try {
        currentTask()!.cancel();
        await sleep(1);
      } catch {
        // the cancel is caught
      } finally {
        await expect(timeout(0, () => sleep(1))).rejects.toBeInstanceOf(TimeoutError);
      }
      currentTask()!.uncancel();
    });
  });

  it('test_cancel_in_timeout_after_cancellation', async () => {
    await fx.run(async () => {
      try {
        currentTask()!.cancel();
        await sleep(1);
      } catch {
        // caught
      } finally {
        await expect(
          timeout(1, async () => {
            currentTask()!.cancel();
            await sleep(2);
          }),
        ).rejects.toBeInstanceOf(CancelledError);
      }
      currentTask()!.uncancel();
      currentTask()!.uncancel();
    });
  });

  it('test_timeout_finished / test_timeout_expired / test_timeout_expiring: reschedule refused', async () => {
    await fx.run(async () => {
      let cm: Timeout | null = null;
      await timeout(0.01, (s) => {
        cm = s;
      });
      expect(() => cm!.reschedule(0.02)).toThrow(/finished/);
      await timeout(0.01, async (s) => {
        cm = s;
        await sleep(1);
      }).catch(() => {});
      expect(() => cm!.reschedule(0.02)).toThrow(/expired/);
      await timeout(0.01, async (s) => {
        await expect(sleep(1)).rejects.toBeInstanceOf(CancelledError);
        expect(() => s.reschedule(0.02)).toThrow(/expiring/);
      });
    });
  });

  it('test_timeout_without_task', async () => {
    await expect(timeout(0.01, () => 1)).rejects.toBeInstanceOf(InvalidStateError);
  });

  it('test_timeout_taskgroup: the timeout converts the cancel; the group reports the crash', async () => {
    await fx.run(async () => {
      const err = await timeout(0.01, () =>
        TaskGroup.run(async (tg) => {
          tg.createTask(async () => {
            try {
              await sleep(2);
            } finally {
              // eslint-disable-next-line no-unsafe-finally
              throw new RangeError('crash in cleanup');
            }
          });
          try {
            throw new SyntaxError('body error');
          } finally {
            await sleep(1);
          }
        }),
      ).catch((e: unknown) => e);
      // The body's SyntaxError is replaced by the CancelledError its `finally` got (as in CPython, where the
      // ValueError is only the context); the timeout turns that into TimeoutError inside the group's exit, and
      // the group reports the child's crash.
      expect(err).toBeInstanceOf(ErrorGroup);
      expect((err as ErrorGroup).errors.map((e) => (e as Error).name)).toEqual(['RangeError']);
    });
  });
});
