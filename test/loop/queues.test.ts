/**
 * Queue, LifoQueue, PriorityQueue: ports of CPython's test_queues (QueueGetTests, QueuePutTests, the join and
 * shutdown mixins run against all three classes, as CPython does).
 */
import { describe, expect, it } from 'vitest';
import {
  CancelledError,
  Event,
  InvalidStateError,
  LifoQueue,
  PriorityQueue,
  Queue,
  QueueEmpty,
  QueueFull,
  QueueShutDown,
  TaskGroup,
  TimeoutError,
  gather,
  sleep,
  waitFor,
} from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('QueueBasicTests', () => {
  const fx = useLoop();

  it('test_empty / test_full', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      expect(q.empty()).toBe(true);
      await q.put(1);
      expect(q.empty()).toBe(false);
      expect(await q.get()).toBe(1);
      expect(q.empty()).toBe(true);
      expect(q.full()).toBe(false);
      const q1 = new Queue<number>(1);
      await q1.put(1);
      expect(q1.full()).toBe(true);
    });
  });

  it('test_maxsize: the putter blocks after two items and resumes one iteration after a get', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(2);
      expect(q.maxsize).toBe(2);
      const haveBeenPut: number[] = [];
      const t = fx.loop.createTask(async () => {
        for (let i = 0; i < 3; i++) {
          await q.put(i);
          haveBeenPut.push(i);
        }
        return true;
      });
      for (let i = 0; i < 2; i++) await sleep(0);
      expect(haveBeenPut).toEqual([0, 1]);
      expect(await q.get()).toBe(0);
      await sleep(0);
      expect(haveBeenPut).toEqual([0, 1, 2]);
      expect(await q.get()).toBe(1);
      expect(await q.get()).toBe(2);
      expect(t.done()).toBe(true);
      expect(t.result()).toBe(true);
    });
  });
});

describe('QueueGetTests', () => {
  const fx = useLoop();

  it('test_blocking_get', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      q.putNowait(1);
      expect(await q.get()).toBe(1);
    });
  });

  it('test_get_with_putters', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(1);
      await q.put(1);
      const waiter = fx.loop.createFuture<null>();
      q._putters.push(waiter);
      expect(await q.get()).toBe(1);
      expect(waiter.done()).toBe(true);
      expect(waiter.result()).toBe(null);
    });
  });

  it('test_blocking_get_wait', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      const started = new Event();
      let finished = false;
      const t = fx.loop.createTask(async () => {
        started.set();
        const res = await q.get();
        finished = true;
        return res;
      });
      await started.wait();
      expect(finished).toBe(false);
      fx.loop.callLater(0.01, () => q.putNowait(1));
      expect(await t).toBe(1);
      expect(finished).toBe(true);
      expect(fx.loop.time()).toBeCloseTo(0.01, 9);
    });
  });

  it('test_nonblocking_get / test_nonblocking_get_exception', () => {
    const q = new Queue<number>();
    q.putNowait(1);
    expect(q.getNowait()).toBe(1);
    expect(() => q.getNowait()).toThrow(QueueEmpty);
  });

  it('test_get_cancelled_race', async () => {
    await fx.run(async () => {
      const q = new Queue<string>();
      const t1 = fx.loop.createTask(() => q.get());
      const t2 = fx.loop.createTask(() => q.get());
      await sleep(0);
      t1.cancel();
      await sleep(0);
      expect(t1.done()).toBe(true);
      await q.put('a');
      await sleep(0);
      expect(await t2).toBe('a');
    });
  });

  it('test_get_with_waiting_putters', async () => {
    await fx.run(async () => {
      const q = new Queue<string>(1);
      fx.loop.createTask(() => q.put('a'));
      fx.loop.createTask(() => q.put('b'));
      expect(await q.get()).toBe('a');
      expect(await q.get()).toBe('b');
    });
  });

  it('test_why_are_getters_waiting', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(1);
      await TaskGroup.run((tg) => {
        tg.createTask(async () => {
          for (let i = 0; i < 5; i++) await q.put(i);
        });
        tg.createTask(async () => {
          for (let i = 0; i < 5; i++) await q.get();
        });
      });
      expect(q.empty()).toBe(true);
    });
  });

  it('test_cancelled_getters_not_being_held_in_self_getters', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(5);
      await expect(waitFor(() => q.get(), 0.1)).rejects.toBeInstanceOf(TimeoutError);
      expect(q._getters.length).toBe(0);
    });
  });
});

describe('QueuePutTests', () => {
  const fx = useLoop();

  it('test_blocking_put', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      await q.put(1);
      expect(await q.get()).toBe(1);
    });
  });

  it('test_blocking_put_wait', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(1);
      const started = new Event();
      let finished = false;
      fx.loop.callLater(0.01, () => q.getNowait());
      const t = fx.loop.createTask(async () => {
        started.set();
        await q.put(1);
        await q.put(2);
        finished = true;
      });
      await started.wait();
      expect(finished).toBe(false);
      await t;
      expect(finished).toBe(true);
    });
  });

  it('test_get_cancel_drop_one_pending_reader: a cancelled reader loses no item', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      let reader = fx.loop.createTask(() => q.get());
      await sleep(0);
      q.putNowait(1);
      q.putNowait(2);
      reader.cancel();
      try {
        await reader;
      } catch (e) {
        expect(e).toBeInstanceOf(CancelledError);
        reader = fx.loop.createTask(() => q.get());
        await reader;
      }
      expect(reader.result()).toBe(1);
    });
  });

  it('test_get_cancel_drop_many_pending_readers', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      let r2: Promise<number> | null = null;
      let r3: Promise<number> | null = null;
      await TaskGroup.run(async (tg) => {
        const reader1 = tg.createTask(() => q.get());
        const reader2 = tg.createTask(() => q.get());
        const reader3 = tg.createTask(() => q.get());
        r2 = reader2;
        r3 = reader3;
        await sleep(0);
        q.putNowait(1);
        q.putNowait(2);
        reader1.cancel();
        await expect(reader1).rejects.toBeInstanceOf(CancelledError);
        await reader3;
      });
      expect(new Set([await r2!, await r3!])).toEqual(new Set([1, 2]));
    });
  });

  it('test_put_cancel_drop', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(1);
      q.putNowait(1);
      let writer = fx.loop.createTask(() => q.put(2));
      await sleep(0);
      expect(q.getNowait()).toBe(1);
      writer.cancel();
      try {
        await writer;
      } catch {
        writer = fx.loop.createTask(() => q.put(2));
        await writer;
      }
      expect(q.getNowait()).toBe(2);
      expect(q.qsize()).toBe(0);
    });
  });

  it('test_nonblocking_put_exception / test_float_maxsize', async () => {
    const q = new Queue<number>(1);
    q.putNowait(1);
    expect(() => q.putNowait(2)).toThrow(QueueFull);
    const f = new Queue<number>(1.3);
    f.putNowait(1);
    f.putNowait(2);
    expect(f.full()).toBe(true);
    expect(() => f.putNowait(3)).toThrow(QueueFull);
  });

  it('test_nonblocking_put', () => {
    const q = new Queue<number>();
    q.putNowait(1);
    expect(q.getNowait()).toBe(1);
  });

  it('test_put_cancelled: a put into an unbounded queue completes before the get returns', async () => {
    await fx.run(async () => {
      const q = new Queue<number>();
      const t = fx.loop.createTask(async () => {
        await q.put(1);
        return true;
      });
      expect(await q.get()).toBe(1);
      expect(t.done()).toBe(true);
      expect(t.result()).toBe(true);
    });
  });

  it('test_put_cancelled_race', async () => {
    await fx.run(async () => {
      const q = new Queue<string>(1);
      const putA = fx.loop.createTask(() => q.put('a'));
      const putB = fx.loop.createTask(() => q.put('b'));
      const putC = fx.loop.createTask(() => q.put('X'));
      await sleep(0);
      expect(putA.done()).toBe(true);
      expect(putB.done()).toBe(false);
      putC.cancel();
      await sleep(0);
      expect(putC.done()).toBe(true);
      expect(q.getNowait()).toBe('a');
      await sleep(0);
      expect(q.getNowait()).toBe('b');
      await putB;
    });
  });

  it('test_put_with_waiting_getters', async () => {
    await fx.run(async () => {
      const q = new Queue<string>();
      const t = fx.loop.createTask(() => q.get());
      await sleep(0);
      await q.put('a');
      expect(await t).toBe('a');
    });
  });

  it('test_why_are_putters_waiting', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(2);
      await TaskGroup.run((tg) => {
        tg.createTask(async () => {
          await sleep(0);
          const n = q.qsize();
          for (let i = 0; i < n; i++) q.getNowait();
        });
        for (let i = 0; i < 4; i++) tg.createTask(() => q.put(i));
      });
    });
  });

  it('test_cancelled_puts_not_being_held_in_self_putters', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(1);
      q.putNowait(1);
      const t = fx.loop.createTask(() => q.put(1));
      await sleep(0);
      expect(q._putters.length).toBe(1);
      t.cancel();
      await expect(t).rejects.toBeInstanceOf(CancelledError);
      expect(q._putters.length).toBe(0);
    });
  });

  it('test_cancelled_put_silence_value_error_exception', async () => {
    await fx.run(async () => {
      const q = new Queue<number>(1);
      q.putNowait(1);
      const t = fx.loop.createTask(() => q.put(1));
      await sleep(0);
      q.getNowait();
      t.cancel();
      await expect(t).rejects.toBeInstanceOf(CancelledError);
    });
  });
});

describe('LifoQueueTests / PriorityQueueTests', () => {
  const fx = useLoop();

  it('LifoQueueTests.test_order', async () => {
    await fx.run(async () => {
      const q = new LifoQueue<number>();
      for (const i of [1, 3, 2]) await q.put(i);
      expect([await q.get(), await q.get(), await q.get()]).toEqual([2, 3, 1]);
    });
  });

  it('PriorityQueueTests.test_order, tuples, and a custom comparator', async () => {
    await fx.run(async () => {
      const q = new PriorityQueue<number>();
      for (const i of [1, 3, 2]) await q.put(i);
      expect([await q.get(), await q.get(), await q.get()]).toEqual([1, 2, 3]);
      const t = new PriorityQueue<[number, string]>();
      for (const x of [[2, 'b'], [1, 'z'], [1, 'a'], [0, 'q']] as [number, string][]) t.putNowait(x);
      expect([t.getNowait(), t.getNowait(), t.getNowait(), t.getNowait()]).toEqual([[0, 'q'], [1, 'a'], [1, 'z'], [2, 'b']]);
      const d = new PriorityQueue<number>(0, { compare: (a, b) => b - a });
      for (let i = 0; i < 50; i++) d.putNowait((i * 37) % 50);
      const out: number[] = [];
      while (!d.empty()) out.push(d.getNowait());
      expect(out).toEqual([...Array(50).keys()].reverse());
    });
  });
});

for (const Q of [Queue, LifoQueue, PriorityQueue] as const) {
  describe(`${Q.name}: _QueueJoinTestMixin / _QueueShutdownTestMixin`, () => {
    const fx = useLoop();

    it('test_task_done_underflow', () => {
      expect(() => new Q<number>().taskDone()).toThrow(InvalidStateError);
    });

    it('test_task_done: join() waits until every item is processed', async () => {
      await fx.run(async () => {
        const q = new Q<number>();
        for (let i = 0; i < 100; i++) q.putNowait(i);
        let acc = 0;
        let running = true;
        await TaskGroup.run(async (tg) => {
          const workers = [0, 1].map(() =>
            tg.createTask(async () => {
              while (running) {
                acc += await q.get();
                q.taskDone();
              }
            }),
          );
          await q.join();
          expect(acc).toBe(4950);
          running = false;
          for (let i = 0; i < workers.length; i++) q.putNowait(0);
        });
      });
    });

    it('test_join_empty_queue / test_format', async () => {
      await fx.run(async () => {
        const q = new Q<number>();
        await q.join();
        await q.join();
        expect(String(q)).toBe(`<${Q.name} maxsize=0 size=0>`);
        q.shutdown();
        expect(String(q)).toBe(`<${Q.name} maxsize=0 size=0 shutdown>`);
      });
    });

    it('test_shutdown_empty', async () => {
      await fx.run(async () => {
        const q = new Q<string>();
        const getTask = fx.loop.createTask(() => q.get());
        await sleep(0);
        q.shutdown();
        expect(q.qsize()).toBe(0);
        await q.join();
        await sleep(0);
        expect(getTask.done()).toBe(true);
        await expect(getTask).rejects.toBeInstanceOf(QueueShutDown);
        await expect(q.put('data')).rejects.toBeInstanceOf(QueueShutDown);
        expect(() => q.putNowait('data')).toThrow(QueueShutDown);
        await expect(q.get()).rejects.toBeInstanceOf(QueueShutDown);
        expect(() => q.getNowait()).toThrow(QueueShutDown);
      });
    });

    it('test_shutdown_nonempty', async () => {
      await fx.run(async () => {
        const q = new Q<string>(1);
        q.putNowait('data');
        const joinTask = fx.loop.createTask(() => q.join());
        const putTask = fx.loop.createTask(() => q.put('data2'));
        await sleep(0);
        expect(putTask.done()).toBe(false);
        q.shutdown();
        expect(q.qsize()).toBe(1);
        await sleep(0);
        expect(putTask.done()).toBe(true);
        await expect(putTask).rejects.toBeInstanceOf(QueueShutDown);
        expect(await q.get()).toBe('data');
        await sleep(0);
        expect(joinTask.done()).toBe(false);
        await expect(q.put('data')).rejects.toBeInstanceOf(QueueShutDown);
        await expect(q.get()).rejects.toBeInstanceOf(QueueShutDown);
        q.taskDone();
        await sleep(0);
        expect(joinTask.done()).toBe(true);
        await joinTask;
        expect(() => q.taskDone()).toThrow(InvalidStateError);
      });
    });

    it('test_shutdown_immediate', async () => {
      await fx.run(async () => {
        const q = new Q<string>();
        q.putNowait('data');
        const joinTask = fx.loop.createTask(() => q.join());
        q.shutdown(true);
        expect(q.qsize()).toBe(0);
        await sleep(0);
        expect(joinTask.done()).toBe(true);
        await joinTask;
        await expect(q.get()).rejects.toBeInstanceOf(QueueShutDown);
        expect(() => q.taskDone()).toThrow(InvalidStateError);
      });
    });

    it('test_shutdown_immediate_with_unfinished', async () => {
      await fx.run(async () => {
        const q = new Q<string>();
        q.putNowait('data');
        q.putNowait('data');
        const joinTask = fx.loop.createTask(() => q.join());
        expect(await q.get()).toBe('data');
        q.shutdown(true);
        expect(q.qsize()).toBe(0);
        await sleep(0);
        expect(joinTask.done()).toBe(false);
        q.taskDone();
        expect(() => q.taskDone()).toThrow(InvalidStateError);
        await sleep(0);
        expect(joinTask.done()).toBe(true);
      });
    });

    it('shutdown wakes every blocked getter (and, immediate, every blocked putter) with QueueShutDown (queues.py 3.13)', async () => {
      await fx.run(async () => {
        const empty = new Q<string>();
        const getters = [0, 1, 2].map(() => fx.loop.createTask(() => empty.get()));
        await sleep(0);
        empty.shutdown();
        const got = await gather(...getters, { returnExceptions: true });
        expect(got.every((r) => r instanceof QueueShutDown)).toBe(true);

        const full = new Q<string>(1);
        full.putNowait('a');
        const putters = [0, 1].map((i) => fx.loop.createTask(() => full.put(`p${i}`)));
        await sleep(0);
        full.shutdown(true);
        expect(full.qsize()).toBe(0);
        const put = await gather(...putters, { returnExceptions: true });
        expect(put.every((r) => r instanceof QueueShutDown)).toBe(true);
        await full.join();
        expect(String(full)).toContain('shutdown');
      });
    });
  });
}
