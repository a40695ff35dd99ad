/** The loop area's public exports, re-exported by src/index.ts. */
export * from './clock.js';
export { Handle, TimerHandle } from './events.js';
export type { ExceptionContext, ExceptionHandler, LoopLogger, TraceRecord, Tracer } from './events.js';
export { EventLoop } from './event-loop.js';
export type { EventLoopOptions } from './event-loop.js';
export { Future, isFuture, wrapPromise } from './futures.js';
export type { DoneCallback } from './futures.js';
export { Task, currentTask, allTasks } from './tasks.js';
export type { TaskFunction, TaskOptions } from './tasks.js';
export { getRunningLoop } from './state.js';
export { sleep } from './combinators.js';
