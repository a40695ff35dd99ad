/**
 * A readable walk through the event loop: a small program (plain callbacks, a timer, two tasks sharing a Lock,
 * a Future resolved by a timer, a cancellation, an end-of-iteration flush) runs under `loop.setTracer(fn)`, and
 * every iteration is printed: what was ready, which timers fell due, how long asyncio's `select()` would have
 * waited, and which callbacks ran. docs/event-loop-internals.md explains the output line by line.
 *
 *     npx tsx examples/loop-internals/main.ts            # virtual clock: the same output every run
 *     npx tsx examples/loop-internals/main.ts --real     # the real clock (times and durations vary)
 */
import { pathToFileURL } from 'node:url';
import { exampleFlags } from '../shared/args.js';
import { CancelledError, EventLoop, Lock, VirtualClock, sleep } from '../../src/index.js';
import type { TraceRecord } from '../../src/index.js';

/** Options of {@link main}. */
export interface LoopInternalsOptions {
  /** Use the real clock instead of a virtual one with autojump (default false: deterministic output). */
  real?: boolean;
  /** Where lines go (default `console.log`); pass `() => {}` to stay quiet. */
  print?: (line: string) => void;
  /** Multiplies every delay of the program (default 1: timers at 0.5, 1 and 2 s). */
  timeScale?: number;
}

/** What {@link main} returns. */
export interface LoopInternalsResult {
  /** One trace record per iteration. */
  records: TraceRecord[];
  /** The printed walk: one line per iteration. */
  walk: string[];
  /** What the program itself did, in order (the `log()` calls), each with the iteration it happened in. */
  events: string[];
  /** The main task's result. */
  result: string;
}

function fmt(x: number | null): string {
  if (x === null) return '∞';
  return Number.isInteger(x) ? String(x) : x.toFixed(3);
}

/** Runs the program under the tracer; prints and returns the walk. */
export async function main(options: LoopInternalsOptions = {}): Promise<LoopInternalsResult> {
  const print = options.print ?? ((line: string) => console.log(line));
  const k = options.timeScale ?? 1;
  const loop = new EventLoop(options.real === true ? {} : { clock: new VirtualClock({ autojump: true }) });
  const records: TraceRecord[] = [];
  const events: string[] = [];
  const log = (what: string): void => {
    events.push(`#${loop.iterations + 1} ${what}`);
  };
  loop.setTracer((r) => records.push(r));

  // The program. Names matter: the tracer lists callbacks by name, tasks as <name>.start / <name>.step.
  const lock = new Lock();
  function plainA(): void {
    log('plainA runs; schedules plainC with callSoon (next iteration)');
    loop.callSoon(plainC);
  }
  function plainB(): void {
    log('plainB runs');
  }
  function plainC(): void {
    log('plainC runs, one iteration after plainA');
  }
  function timerHalf(): void {
    log('timer at 0.5 fires');
  }
  function flush(): void {
    log('deferToIterationEnd: runs after every callback of this iteration');
  }
  const reply = loop.createFuture<string>();
  function resolveReply(): void {
    log('timer at 1 resolves the reply Future (its waiter wakes next iteration)');
    reply.setResult('pong');
  }

  const mainTask = loop.createTask(async () => {
    loop.callSoon(plainA);
    loop.callSoon(plainB);
    loop.callLater(0.5 * k, timerHalf);
    loop.callLater(1 * k, resolveReply);

    const worker = (name: string) => async (): Promise<void> => {
      await lock.acquire();
      try {
        log(`${name} holds the lock`);
        await sleep(0); // one iteration, lock still held: the other worker waits FIFO
        log(`${name} releases the lock`);
      } finally {
        lock.release();
      }
    };
    const w1 = loop.createTask(worker('w1'), { name: 'w1' });
    const w2 = loop.createTask(worker('w2'), { name: 'w2' });

    const waiter = loop.createTask(
      async () => {
        const v = await reply;
        log(`waiter got ${v}`);
        loop.deferToIterationEnd(flush);
        return v;
      },
      { name: 'waiter' },
    );

    const sleeper = loop.createTask(
      async () => {
        try {
          await sleep(3600);
        } catch (e) {
          log(`sleeper: ${(e as CancelledError).code} at t=${fmt(loop.time())}, cleaning up`);
          throw e;
        }
      },
      { name: 'sleeper' },
    );
    loop.callLater(2 * k, function cancelSleeper() {
      log('timer at 2 cancels the sleeper');
      sleeper.cancel();
    });

    await w1;
    await w2;
    const v = await waiter;
    try {
      await sleeper;
    } catch {
      // cancelled, as planned
    }
    return v;
  }, { name: 'main' });
  const result = await loop.runUntilComplete(mainTask);
  loop.close();

  const walk = records.map((r) => {
    const wait = r.wait === null ? 'idle' : `wait=${fmt(r.wait)}${r.jumped ? ' (jumped)' : ''}`;
    const timers = r.timersDue > 0 ? ` timers=${r.timersDue}` : '';
    const deferred = r.deferred > 0 ? ` +deferred ${r.deferred}` : '';
    return `#${String(r.iteration).padEnd(3)} t=${fmt(r.time).padEnd(5)} ${wait.padEnd(20)} ready=${r.ready}${timers}  ${r.callbacks.join(', ')}${deferred}`;
  });
  print('iter t      select() wait        ready  what ran, in order');
  for (const line of walk) print(line);
  print('');
  print('what the program saw:');
  for (const e of events) print(`  ${e}`);
  return { records, walk, events, result };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const flags = exampleFlags('usage: npx tsx examples/loop-internals/main.ts [--real]', {
    real: { type: 'boolean', help: 'run on the real clock instead of the virtual one' },
  });
  main({ real: flags['real'] === true }).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
