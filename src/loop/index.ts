/** The loop area's public exports, re-exported by src/index.ts. */
export * from './clock.js';
export { Handle, TimerHandle } from './events.js';
export type { ExceptionContext, ExceptionHandler, LoopLogger, TraceRecord, Tracer } from './events.js';
export { EventLoop } from './event-loop.js';
export type { EventLoopOptions, SignalSpec } from './event-loop.js';
export { Future, isFuture, wrapPromise } from './futures.js';
export type { DoneCallback } from './futures.js';
export { Task, currentTask, allTasks } from './tasks.js';
export type { TaskFunction, TaskOptions } from './tasks.js';
export { getRunningLoop, enableForeignAwaitTracking, foreignAwaitTracking } from './state.js';
export {
  sleep,
  gather,
  shield,
  wait,
  waitFor,
  asCompleted,
  ensureFuture,
  GatheringFuture,
  AsCompletedIterator,
  FIRST_COMPLETED,
  FIRST_EXCEPTION,
  ALL_COMPLETED,
} from './combinators.js';
export type { Awaitable, GatherOptions, WaitOptions, ReturnWhen, AsCompletedOptions } from './combinators.js';
export { Timeout, timeout, timeoutAt } from './timeouts.js';
export type { TimeoutState } from './timeouts.js';
export { TaskGroup } from './task-group.js';
export { Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier } from './locks.js';
export { Queue, PriorityQueue, LifoQueue, defaultCompare } from './queues.js';
export type { Compare } from './queues.js';
export { run } from './runners.js';
export type { RunOptions } from './runners.js';
