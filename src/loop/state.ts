/**
 * @internal Shared mutable state of the loop area: which task is stepping, which loop is executing a turn, and how
 * many task steps are in flight (ASYNCIO-NOTES §0). A plain object read on every await, so it stays monomorphic;
 * nothing outside `src/loop/` may touch it.
 */
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
}

/** @internal */
export const rt: Runtime = { task: null, inFlight: 0, executing: null, running: [] };

/**
 * The running event loop: the loop executing a turn, or the loop of the task that is stepping, or the loop inside
 * `runForever()` (asyncio's `get_running_loop`).
 * @throws InvalidStateError when no loop is running.
 */
export function getRunningLoop(): EventLoop {
  const l = rt.executing;
  if (l !== null) return l;
  const t = rt.task;
  if (t !== null) return t._loop;
  const r = rt.running;
  if (r.length > 0) return r[r.length - 1]!;
  throw new InvalidStateError('no running event loop');
}

/** @internal The creation stack (debug mode), without this frame and its caller's loop frames. */
export function captureStack(skip = 2): string {
  const s = new Error().stack ?? '';
  return s.split('\n').slice(skip, skip + 10).join('\n');
}
