/**
 * The loop fixture (CPython's test_asyncio `functional.py`): each test gets its own {@link EventLoop} whose exception
 * handler records every context. `afterEach` closes the loop and fails the test if anything was recorded that the
 * test did not take with {@link LoopFixture.take}.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, beforeEach, expect } from 'vitest';
import { EventLoop, VirtualClock } from '../../src/index.js';
import type { ExceptionContext, EventLoopOptions } from '../../src/index.js';

/** What {@link useLoop} gives a test. */
export interface LoopFixture {
  /** This test's loop. */
  readonly loop: EventLoop;
  /** Its virtual clock (null with `{ real: true }`). */
  readonly clock: VirtualClock | null;
  /** Contexts the exception handler received and the test has not taken yet. */
  readonly records: ExceptionContext[];
  /** Takes (and clears) the recorded contexts, so afterEach does not fail on them. */
  take(): ExceptionContext[];
  /** `loop.runUntilComplete(fn)`. */
  run<T>(fn: () => Promise<T> | T): Promise<T>;
  /** Warnings the loop logged (slow callbacks). */
  readonly warnings: string[];
  /** asyncio's `test_utils.run_briefly`: runs a no-op task to completion (two iterations). */
  runBriefly(): Promise<void>;
}

/** Runs a full garbage collection and lets FinalizationRegistry callbacks run. */
export async function collectGarbage(): Promise<void> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Options of {@link useLoop}. */
export interface UseLoopOptions extends Omit<EventLoopOptions, 'clock' | 'logger'> {
  /** Use the real clock instead of a virtual one (for tests with sockets). Default false. */
  real?: boolean;
  /** Autojump the virtual clock. Default true. */
  autojump?: boolean;
}

/** Registers beforeEach/afterEach hooks and returns the fixture (its fields are valid inside each test). */
export function useLoop(options: UseLoopOptions = {}): LoopFixture {
  let loop: EventLoop | null = null;
  let clock: VirtualClock | null = null;
  let records: ExceptionContext[] = [];
  let warnings: string[] = [];
  const fx: LoopFixture = {
    get loop() {
      return loop!;
    },
    get clock() {
      return clock;
    },
    get records() {
      return records;
    },
    get warnings() {
      return warnings;
    },
    take() {
      const r = records;
      records = [];
      return r;
    },
    run(fn) {
      return loop!.runUntilComplete(async () => fn());
    },
    async runBriefly() {
      await loop!.runUntilComplete(loop!.createTask(async () => {}));
    },
  };
  beforeEach(() => {
    records = [];
    warnings = [];
    clock = options.real === true ? null : new VirtualClock({ autojump: options.autojump ?? true });
    const { real: _r, autojump: _a, ...loopOptions } = options;
    loop = new EventLoop({
      // Tests await foreign promises (fs, certificate issuing) inside tasks: track them, as run() does, so await
      // attribution is exact. A test of the bare lazy default passes trackForeignAwaits: false.
      trackForeignAwaits: true,
      ...loopOptions,
      ...(clock !== null ? { clock } : {}),
      logger: { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    });
    loop.setExceptionHandler((_l, ctx) => {
      records.push(ctx);
    });
  });
  afterEach(() => {
    const l = loop!;
    if (l.isRunning()) l.stop();
    else l.close();
    const left = records.map((r) => `${r.message}${r.exception !== undefined ? `: ${String(r.exception)}` : ''}`);
    records = [];
    expect(left, 'unexpected exception-handler records').toEqual([]);
  });
  return fx;
}
