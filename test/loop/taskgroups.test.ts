/**
 * TaskGroup: ports of CPython's test_taskgroups (numbered as there), plus cpython main's TaskGroup.cancel().
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, ErrorGroup, Event, InvalidStateError, TaskGroup, currentTask, sleep } from '../../src/index.js';
import type { Task } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

class MyExc extends Error {}

function errorTypes(e: unknown): Set<string> {
  expect(e).toBeInstanceOf(ErrorGroup);
  return new Set((e as ErrorGroup).errors.map((x) => (x as Error).constructor.name));
}

function zeroDivision(): never {
  throw new RangeError('division by zero');
}

describe('TestTaskGroup', () => {
  const fx = useLoop();

  it('test_taskgroup_01: waits for every child', async () => {
    await fx.run(async () => {
      let t1: Task<number> | null = null;
      let t2: Task<number> | null = null;
      await TaskGroup.run((g) => {
        t1 = g.createTask(() => sleep(0.1, 42));
        t2 = g.createTask(() => sleep(0.2, 11));
      });
      expect(t1!.result()).toBe(42);
      expect(t2!.result()).toBe(11);
      expect(fx.loop.time()).toBeCloseTo(0.2, 9);
    });
  });

  it('test_taskgroup_02: children created while the body runs', async () => {
    await fx.run(async () => {
      let t2: Task<number> | null = null;
      await TaskGroup.run(async (g) => {
        g.createTask(() => sleep(0.1, 42));
        await sleep(0.15);
        t2 = g.createTask(() => sleep(0.2, 11));
      });
      expect(t2!.result()).toBe(11);
    });
  });

  it('test_taskgroup_03: cancelling one child explicitly is fine', async () => {
    await fx.run(async () => {
      let t1: Task<number> | null = null;
      let t2: Task<number> | null = null;
      await TaskGroup.run(async (g) => {
        t1 = g.createTask(() => sleep(1, 42));
        await sleep(0.15);
        t1.cancel();
        t2 = g.createTask(() => sleep(0.2, 11));
      });
      expect(t1!.cancelled()).toBe(true);
      expect(t2!.result()).toBe(11);
    });
  });

  it('test_taskgroup_04: a failing child cancels its siblings; ErrorGroup', async () => {
    await fx.run(async () => {
      let num = 0;
      let t2Cancel = false;
      let t2: Task<void> | null = null;
      const runner = async (): Promise<void> => {
        await TaskGroup.run((g) => {
          g.createTask(async () => {
            await sleep(0.1);
            zeroDivision();
          });
          t2 = g.createTask(async () => {
            try {
              await sleep(1);
            } catch (e) {
              t2Cancel = true;
              throw e;
            }
            num += 1;
          });
        });
        num += 10;
      };
      const err = await fx.loop.createTask(runner).catch((e: unknown) => e);
      expect(errorTypes(err)).toEqual(new Set(['RangeError']));
      expect(num).toBe(0);
      expect(t2Cancel).toBe(true);
      expect(t2!.cancelled()).toBe(true);
    });
  });

  it('test_cancel_children_on_child_error: the body is cancelled too', async () => {
    await fx.run(async () => {
      let num = 0;
      let t2Cancel = false;
      let runnerCancel = false;
      const foo1 = async (): Promise<void> => {
        await sleep(0.1);
        zeroDivision();
      };
      const runner = async (): Promise<void> => {
        await TaskGroup.run(async (g) => {
          g.createTask(foo1);
          g.createTask(foo1);
          g.createTask(foo1);
          g.createTask(async () => {
            try {
              await sleep(5);
            } catch (e) {
              t2Cancel = true;
              throw e;
            }
            num += 1;
          });
          try {
            await sleep(10);
          } catch (e) {
            runnerCancel = true;
            throw e;
          }
        });
        num += 10;
      };
      const err = await fx.loop.createTask(runner).catch((e: unknown) => e);
      expect(errorTypes(err)).toEqual(new Set(['RangeError']));
      expect(num).toBe(0);
      expect(t2Cancel).toBe(true);
      expect(runnerCancel).toBe(true);
    });
  });

  it('test_cancellation / test_taskgroup_07: cancelling the parent cancels every child and propagates', async () => {
    await fx.run(async () => {
      let num = 0;
      const foo = async (): Promise<void> => {
        try {
          await sleep(5);
        } catch (e) {
          num += 1;
          throw e;
        }
      };
      const r = fx.loop.createTask(() =>
        TaskGroup.run(async (g) => {
          for (let i = 0; i < 5; i++) g.createTask(foo);
          try {
            await sleep(10);
          } catch (e) {
            num += 10;
            throw e;
          }
        }),
      );
      await sleep(0.1);
      expect(r.done()).toBe(false);
      r.cancel();
      await expect(r).rejects.toBeInstanceOf(CancelledError);
      expect(num).toBe(15);
    });
  });

  it('test_taskgroup_08: children failing in cleanup after a parent cancel give an ErrorGroup', async () => {
    await fx.run(async () => {
      const r = fx.loop.createTask(() =>
        TaskGroup.run(async (g) => {
          for (let i = 0; i < 5; i++) {
            g.createTask(async () => {
              try {
                await sleep(10);
              } finally {
                zeroDivision();
              }
            });
          }
          await sleep(10);
        }),
      );
      await sleep(0.1);
      r.cancel();
      expect(errorTypes(await r.catch((e: unknown) => e))).toEqual(new Set(['RangeError']));
    });
  });

  it('test_taskgroup_09 / test_taskgroup_10: a failing body cancels the children', async () => {
    await fx.run(async () => {
      for (const wait of [true, false]) {
        const ts: Task<number>[] = [];
        const err = await TaskGroup.run(async (g) => {
          ts.push(g.createTask(() => sleep(1, 42)), g.createTask(() => sleep(2, 11)));
          if (wait) await sleep(0.1);
          zeroDivision();
        }).catch((e: unknown) => e);
        expect(errorTypes(err)).toEqual(new Set(['RangeError']));
        expect(ts.every((t) => t.cancelled())).toBe(true);
      }
    });
  });

  it('test_taskgroup_11 / test_taskgroup_12: nested groups nest their ErrorGroups', async () => {
    await fx.run(async () => {
      for (const extra of [false, true]) {
        const r = fx.loop.createTask(() =>
          TaskGroup.run(async (g1) => {
            if (extra) g1.createTask(() => sleep(10));
            await TaskGroup.run(async (g2) => {
              for (let i = 0; i < 5; i++) {
                g2.createTask(async () => {
                  try {
                    await sleep(10);
                  } finally {
                    zeroDivision();
                  }
                });
              }
              await sleep(10);
            });
          }),
        );
        await sleep(0.1);
        r.cancel();
        const err = await r.catch((e: unknown) => e);
        expect(errorTypes(err)).toEqual(new Set(['ErrorGroup']));
        expect(errorTypes((err as ErrorGroup).errors[0])).toEqual(new Set(['RangeError']));
      }
    });
  });

  it('test_taskgroup_13 / test_taskgroup_14', async () => {
    await fx.run(async () => {
      const crashAfter = (t: number) => async (): Promise<void> => {
        await sleep(t);
        throw new MyExc(String(t));
      };
      const e13 = await TaskGroup.run(async (g1) => {
        g1.createTask(crashAfter(0.1));
        await TaskGroup.run((g2) => {
          g2.createTask(crashAfter(10));
        });
      }).catch((e: unknown) => e);
      expect(errorTypes(e13)).toEqual(new Set(['MyExc']));
      const e14 = await TaskGroup.run(async (g1) => {
        g1.createTask(crashAfter(10));
        await TaskGroup.run((g2) => {
          g2.createTask(crashAfter(0.1));
        });
      }).catch((e: unknown) => e);
      expect(errorTypes(e14)).toEqual(new Set(['ErrorGroup']));
      expect(errorTypes((e14 as ErrorGroup).errors[0])).toEqual(new Set(['MyExc']));
    });
  });

  it('test_taskgroup_15 / test_taskgroup_16: a child error while the body handles an outside cancel', async () => {
    await fx.run(async () => {
      for (const nested of [false, true]) {
        const body = (): Promise<unknown> =>
          TaskGroup.run(async (g1) => {
            g1.createTask(async () => {
              await sleep(0.3);
              zeroDivision();
            });
            try {
              await sleep(10);
            } catch (e) {
              await sleep(0.5);
              throw e;
            }
          });
        const r = fx.loop.createTask(nested ? async () => await fx.loop.createTask(body) : body);
        await sleep(0.1);
        r.cancel();
        expect(errorTypes(await r.catch((e: unknown) => e))).toEqual(new Set(['RangeError']));
      }
    });
  });

  it('test_taskgroup_17 / test_taskgroup_18', async () => {
    await fx.run(async () => {
      let num = 0;
      const r17 = fx.loop.createTask(() =>
        TaskGroup.run(async () => {
          try {
            await sleep(10);
          } catch (e) {
            num += 10;
            throw e;
          }
        }),
      );
      await sleep(0.1);
      r17.cancel();
      await expect(r17).rejects.toBeInstanceOf(CancelledError);
      expect(num).toBe(10);
      const r18 = fx.loop.createTask(() =>
        TaskGroup.run(async () => {
          try {
            await sleep(10);
          } catch {
            num += 10;
            throw new MyExc();
          }
        }),
      );
      await sleep(0.1);
      r18.cancel();
      expect(errorTypes(await r18.catch((e: unknown) => e))).toEqual(new Set(['MyExc']));
      expect(num).toBe(20);
    });
  });

  it('test_taskgroup_19: the body error and the child error come together', async () => {
    await fx.run(async () => {
      const err = await fx.loop
        .createTask(() =>
          TaskGroup.run(async (g) => {
            g.createTask(async () => {
              await sleep(0.1);
              zeroDivision();
            });
            try {
              await sleep(10);
            } finally {
              // eslint-disable-next-line no-unsafe-finally
              throw new MyExc();
            }
          }),
        )
        .catch((e: unknown) => e);
      expect(errorTypes(err)).toEqual(new Set(['MyExc', 'RangeError']));
    });
  });

  it('test_taskgroup_task_name', async () => {
    await fx.run(async () => {
      await TaskGroup.run((g) => {
        const t = g.createTask(async () => {}, { name: 'yolo' });
        expect(t.getName()).toBe('yolo');
      });
    });
  });

  it('test_taskgroup_no_create_task_after_failure', async () => {
    await fx.run(async () => {
      const err = await TaskGroup.run(async (g) => {
        g.createTask(async () => zeroDivision());
        try {
          await sleep(10);
        } catch {
          expect(() => g.createTask(async () => {})).toThrow(/shutting down/);
        }
      }).catch((e: unknown) => e);
      expect(errorTypes(err)).toEqual(new Set(['RangeError']));
    });
  });

  it('test_taskgroup_already_entered / double_enter / finished / not_entered / without_parent_task', async () => {
    await fx.run(async () => {
      const tg = new TaskGroup();
      expect(() => tg.createTask(async () => {})).toThrow(InvalidStateError);
      await tg.run(async () => {
        await expect(tg.run(() => {})).rejects.toBeInstanceOf(InvalidStateError);
      });
      await expect(tg.run(() => {})).rejects.toBeInstanceOf(InvalidStateError);
      expect(() => tg.createTask(async () => {})).toThrow(/finished/);
    });
    await expect(new TaskGroup().run(() => {})).rejects.toBeInstanceOf(InvalidStateError);
  });

  it('test_cancelling_level_preserved', async () => {
    await fx.run(async () => {
      await TaskGroup.run((tg) => {
        tg.createTask(async () => {
          await sleep(0);
          throw new MyExc();
        });
      }).catch(() => {});
      expect(currentTask()!.cancelling()).toBe(0);
    });
  });

  it('test_nested_groups_both_cancelled', async () => {
    await fx.run(async () => {
      const raiseAfter = (e: new () => Error) => async (): Promise<void> => {
        await sleep(0);
        throw new e();
      };
      const outerErr = await TaskGroup.run(async (outer) => {
        const innerErr = await TaskGroup.run((inner) => {
          inner.createTask(raiseAfter(MyExc));
          outer.createTask(raiseAfter(SyntaxError));
        }).catch((e: unknown) => e);
        expect(errorTypes(innerErr)).toEqual(new Set(['MyExc']));
        expect(currentTask()!.cancelling()).toBe(1);
      }).catch((e: unknown) => e);
      expect(errorTypes(outerErr)).toEqual(new Set(['SyntaxError']));
      expect(currentTask()!.cancelling()).toBe(0);
    });
  });

  it('test_error_and_cancel: an outside cancel survives the group (gh-155433)', async () => {
    await fx.run(async () => {
      const event = new Event();
      const inner = async (): Promise<void> => {
        const err = await TaskGroup.run(async (tg) => {
          tg.createTask(async () => {
            event.set();
            await sleep(0);
            throw new MyExc();
          });
          await sleep(1);
          throw new Error('Sleep in group should have been cancelled');
        }).catch((e: unknown) => e);
        expect(errorTypes(err)).toEqual(new Set(['MyExc']));
        expect(currentTask()!.cancelling()).toBe(1);
        await sleep(1);
        throw new Error('Sleep after group should have been cancelled');
      };
      const t = fx.loop.createTask(inner);
      await event.wait();
      expect(t.cancelling()).toBe(0);
      t.cancel();
      expect(t.cancelling()).toBe(1);
      await expect(t).rejects.toBeInstanceOf(CancelledError);
      expect(t.cancelled()).toBe(true);
    });
  });

  it('TaskGroup.cancel() (cpython 3.15): a quiet early exit, also before entry', async () => {
    await fx.run(async () => {
      const rec: string[] = [];
      const v = await TaskGroup.run(async (tg) => {
        tg.createTask(async () => {
          try {
            await sleep(10);
          } catch (e) {
            rec.push('child cancelled');
            throw e;
          }
        });
        await sleep(1);
        tg.cancel();
        await sleep(5);
        rec.push('not reached');
      });
      expect(v).toBe(undefined);
      expect(rec).toEqual(['child cancelled']);
      expect(fx.loop.time()).toBe(1);
      expect(currentTask()!.cancelling()).toBe(0);
      const early = new TaskGroup();
      early.cancel();
      let bodyAwaitCancelled = false;
      await early.run(async () => {
        try {
          await sleep(1);
        } catch (e) {
          bodyAwaitCancelled = e instanceof CancelledError;
          throw e;
        }
      });
      expect(bodyAwaitCancelled).toBe(true);
    });
  });

  it('returns the body value', async () => {
    expect(await fx.run(() => TaskGroup.run(async (tg) => (await tg.createTask(() => sleep(1, 'x'))) + 'y'))).toBe('xy');
  });
});

describe('TestTaskGroup (20-25, exit raises)', () => {
  const fx = useLoop();
  const tasksOf = (g: TaskGroup): number => Number(/tasks=(\d+)/.exec(String(g))?.[1] ?? 0);
  class MyBaseExc extends Error {}

  it('test_taskgroup_20 / test_taskgroup_20a (plain errors: no BaseException in JS): the body failing in cleanup joins the child error', async () => {
    await fx.run(async () => {
      const err = await TaskGroup.run(async (g) => {
        g.createTask(async () => {
          await sleep(0.1);
          zeroDivision();
        });
        try {
          await sleep(10);
        } finally {
          // eslint-disable-next-line no-unsafe-finally
          throw new MyBaseExc('in finally');
        }
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(errorTypes(err)).toEqual(new Set(['MyBaseExc', 'RangeError']));
      expect(currentTask()!.cancelling()).toBe(0);
    });
  });

  it('test_taskgroup_21a: a child error and a different body error in cleanup', async () => {
    await fx.run(async () => {
      const err = await TaskGroup.run(async (g) => {
        g.createTask(async () => {
          await sleep(0.1);
          throw new MyBaseExc('child');
        });
        try {
          await sleep(10);
        } finally {
          // eslint-disable-next-line no-unsafe-finally
          throw new TypeError('body');
        }
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(errorTypes(err)).toEqual(new Set(['MyBaseExc', 'TypeError']));
    });
  });

  it('test_taskgroup_22: cancelling the runner while only the exit waits for children', async () => {
    await fx.run(async () => {
      const children: Task<number>[] = [];
      const r = fx.loop.createTask(() =>
        TaskGroup.run((g) => {
          children.push(g.createTask(async () => (await sleep(1), 42)));
          children.push(g.createTask(async () => (await sleep(2), 11)));
        }),
      );
      await sleep(0.05);
      r.cancel();
      await expect(r).rejects.toBeInstanceOf(CancelledError);
      expect(children.every((c) => c.cancelled())).toBe(true);
      expect(fx.loop.time()).toBeCloseTo(0.05);
    });
  });

  it('test_taskgroup_23: finished children leave the group while the body runs', async () => {
    await fx.run(async () => {
      await TaskGroup.run(async (g) => {
        for (let count = 0; count < 10; count++) {
          await sleep(0.1);
          g.createTask(() => sleep(0.3));
          if (count === 5) expect(tasksOf(g)).toBeLessThan(5);
        }
        await sleep(1.35);
        expect(tasksOf(g)).toBe(0);
      });
    });
  });

  it('test_taskgroup_24: a child creates more children; the group waits for them', async () => {
    await fx.run(async () => {
      const done: number[] = [];
      const coro1 = (delay: number) => async (): Promise<void> => {
        await sleep(delay);
        done.push(delay);
      };
      await TaskGroup.run((g) => {
        g.createTask(async () => {
          await sleep(0.1);
          g.createTask(coro1(0.1));
          g.createTask(coro1(0.2));
        });
      });
      expect(done).toEqual([0.1, 0.2]);
      expect(fx.loop.time()).toBeCloseTo(0.3);
    });
  });

  it('test_taskgroup_25: hydras keep spawning until hercules fails; the group ends with his error alone', async () => {
    await fx.run(async () => {
      let nhydras = 0;
      const err = await TaskGroup.run((g) => {
        const hydra = async (): Promise<void> => {
          nhydras++;
          await sleep(0.01);
          g.createTask(hydra);
          g.createTask(hydra);
        };
        g.createTask(hydra);
        g.createTask(async () => {
          while (nhydras < 10) await sleep(0.015);
          zeroDivision();
        });
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(errorTypes(err)).toEqual(new Set(['RangeError']));
      expect(nhydras).toBeGreaterThanOrEqual(10);
    });
  });

  it('test_taskgroup_context_manager_exit_raises (cpython#95289): a cleanup error inside the body joins the child error; cancelling() back to 0', async () => {
    class CustomException extends Error {}
    await fx.run(async () => {
      const task = currentTask()!;
      const err = await TaskGroup.run(async (tg) => {
        // asyncio's `async with database():` whose __aexit__ raises.
        try {
          tg.createTask(async () => {
            throw new CustomException('child');
          });
          await sleep(1);
        } finally {
          // eslint-disable-next-line no-unsafe-finally
          throw new CustomException('exit');
        }
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ErrorGroup);
      expect(task.cancelling()).toBe(0);
      expect((err as ErrorGroup).errors.length).toBe(2);
      expect((err as ErrorGroup).errors.every((e) => e instanceof CustomException)).toBe(true);
    });
  });
});
