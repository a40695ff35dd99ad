/**
 * @internal Shared mutable state of the loop area: which task is stepping, which loop is executing a turn, and how
 * many task steps are in flight (docs/event-loop-internals.md#atomic-task-steps). A plain object read on every
 * await, so it stays monomorphic; nothing outside `src/loop/` may touch it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidStateError } from '../errors.js';
import type { EventLoop } from './event-loop.js';
import type { Task } from './tasks.js';

/** @internal */
export interface Runtime {
  /** The task whose atomic step is running, or null (asyncio's `_current_tasks[loop]`). */
  task: Task<unknown> | null;
  /** Task steps in flight: +1 when a step starts, -1 when the task suspends on a pending Future or settles. */
  inFlight: number;
  /** The loop whose turn is executing right now (set across the whole turn, microtasks included). */
  executing: EventLoop | null;
  /** Loops inside `runForever()`, most recent last. */
  running: EventLoop[];
  /**
   * Foreign-await tracking (null until enabled): every task started afterwards runs its body under this store, so
   * code resuming after a foreign promise still knows its task. Off by default: Promise hooks slow every await in
   * the process (docs/event-loop-internals.md, "Foreign awaits").
   */
  als: AsyncLocalStorage<Task<unknown>> | null;
  /** Tasks whose body runs (or is suspended) outside a tracked step: their last step awaited a foreign promise. */
  foreign: number;
}

/** @internal */
export const rt: Runtime = { task: null, inFlight: 0, executing: null, running: [], als: null, foreign: 0 };

/**
 * Turns on foreign-await tracking for the whole process (idempotent): from now on every Task runs its body inside
 * an `AsyncLocalStorage` store, so after it awaits a promise not made by tulipwire (`fs/promises`, `Promise.all`,
 * a third-party client) `currentTask()` is still right and its next `await` on a tulipwire Future is a real
 * cancellation point. `run()` turns it on; a loop turns it on by itself the first time it sees a task await a
 * foreign promise (that first task stays untracked). Tasks already started when it is turned on stay untracked.
 * Cost: Node's promise hooks, about 40% more CPU per `await` anywhere in the process (bench/loop.ts).
 */
export function enableForeignAwaitTracking(): void {
  rt.als ??= new AsyncLocalStorage<Task<unknown>>();
}

/** True once {@link enableForeignAwaitTracking} (or `run()`, or a loop's first foreign await) turned tracking on. */
export function foreignAwaitTracking(): boolean {
  return rt.als !== null;
}

/** @internal The task whose body is running untracked in the current async context (see `Task._foreign`), or null. */
export function foreignTaskInContext(): Task<unknown> | null {
  const s = rt.als!.getStore();
  return s !== undefined && s._foreign && s._state === 0 ? s : null;
}

/**
 * @internal The loop whose code is running in this context: the loop executing a turn, or the loop of the task that
 * is stepping (or running untracked after a foreign await); null outside them, even while some loop is inside
 * `runForever()` between turns (asyncio's `_get_running_loop()`, minus the fallback of {@link getRunningLoop}).
 */
export function runningLoopOrNull(): EventLoop | null {
  const l = rt.executing;
  if (l !== null) return l;
  const t = rt.task;
  if (t !== null) return t._loop;
  if (rt.foreign > 0) {
    const f = foreignTaskInContext();
    if (f !== null) return f._loop;
  }
  return null;
}

/**
 * The running event loop: the loop executing a turn, or the loop of the task that is stepping, or the loop inside
 * `runForever()` (asyncio's `get_running_loop`).
 * @throws InvalidStateError when no loop is running.
 */
export function getRunningLoop(): EventLoop {
  // runningLoopOrNull() inlined by hand: sleep(0) and new Future() without a loop come through here.
  const l = rt.executing;
  if (l !== null) return l;
  const t = rt.task;
  if (t !== null) return t._loop;
  if (rt.foreign > 0) {
    const f = foreignTaskInContext();
    if (f !== null) return f._loop;
  }
  const r = rt.running;
  if (r.length > 0) return r[r.length - 1]!;
  throw new InvalidStateError('no running event loop');
}

/** This directory, as it appears in stack frames (src/loop/ under tsx, dist/loop/ once built). */
const LOOP_DIR = dirname(fileURLToPath(import.meta.url)) + sep;

/**
 * @internal The creation stack (debug mode): from the first frame outside src/loop/ on, so it starts at the code that
 * called `callSoon()`/`createFuture()`/`createTask()` (asyncio's `_source_traceback[-1]` is that caller's line), not
 * at the loop's own method. `skip` lines (the "Error" line and known frames) are dropped first. A stack made only of
 * loop frames is kept from its last frame.
 */
export function captureStack(skip = 2): string {
  const lines = (new Error().stack ?? '').split('\n');
  let i = skip;
  while (i < lines.length - 1 && lines[i]!.includes(LOOP_DIR)) i++;
  return lines.slice(i, i + 10).join('\n');
}
