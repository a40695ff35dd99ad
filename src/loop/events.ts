/**
 * Contracts of the loop: {@link Handle}, {@link TimerHandle}, the exception-handler context, trace records and the
 * logger hook. The scheduling itself lives in `event-loop.ts`.
 */
import type { EventLoop } from './event-loop.js';

/** Context passed to an exception handler (asyncio's `call_exception_handler` dict, camelCased). */
export interface ExceptionContext {
  /** What went wrong, one line. Always present. */
  message: string;
  /** The error, when there is one. */
  exception?: unknown;
  /** The Future involved (e.g. "Future exception was never retrieved"). */
  future?: unknown;
  /** The Task involved. */
  task?: unknown;
  /** The Handle whose callback threw. */
  handle?: Handle;
  /** The Protocol involved (transports). */
  protocol?: unknown;
  /** The Transport involved (transports). */
  transport?: unknown;
  /** The socket involved (transports). */
  socket?: unknown;
  /** In debug mode: the stack where the handle, future or task was created. */
  sourceTraceback?: string;
  /** Anything else a caller wants to attach. */
  [key: string]: unknown;
}

/** An exception handler: called with the loop and the context; whatever it throws goes to the default handler. */
export type ExceptionHandler = (loop: EventLoop, context: ExceptionContext) => void;

/** Where the loop writes warnings (slow callbacks in debug mode) and the default handler's reports. */
export interface LoopLogger {
  /** A warning, e.g. "Executing <Handle f> took 0.123 seconds". */
  warn(message: string): void;
  /** An error report from the default exception handler. */
  error(message: string): void;
}

/** One record per loop iteration, given to the function set with `loop.setTracer(fn)`. */
export interface TraceRecord {
  /** Iteration number, from 1 for the loop's first iteration. */
  iteration: number;
  /** `loop.time()` when the iteration started, seconds. */
  time: number;
  /** How long the iteration would have waited for I/O (asyncio's select timeout), seconds; null = until woken. */
  wait: number | null;
  /** True when a virtual clock with autojump jumped to the next timer before this iteration. */
  jumped: boolean;
  /** How many timers became due and joined the ready queue. */
  timersDue: number;
  /** How many callbacks were ready when the iteration took its snapshot (asyncio's `ntodo`). */
  ready: number;
  /** Names of the callbacks run, in order (cancelled handles are skipped and not listed). */
  callbacks: string[];
  /** How many `deferToIterationEnd` callbacks ran at the end. */
  deferred: number;
  /**
   * Names of the callbacks queued for the next iteration when this one ended (scheduled by this iteration's
   * callbacks, or from outside while it ran), in the order they will run; cancelled handles are left out. Due
   * timers are not in it: they join at the next iteration's step 4, behind these.
   */
  nextReady: string[];
  /** Timers in the heap when the iteration ended, cancelled ones still in it included (asyncio `len(loop._scheduled)`). */
  timers: number;
  /** How many of {@link timers} are cancelled but not yet dropped (asyncio `loop._timer_cancelled_count`). */
  cancelledTimers: number;
  /**
   * True when the heap was rebuilt without its cancelled timers before this iteration (more than
   * `MIN_SCHEDULED_TIMER_HANDLES` timers, more than `MIN_CANCELLED_TIMER_HANDLES_FRACTION` of them cancelled).
   */
  compacted: boolean;
  /** Real time the iteration took, seconds. */
  duration: number;
}

/** A tracer: receives one {@link TraceRecord} per iteration. */
export type Tracer = (record: TraceRecord) => void;

/** @internal A task as the target of a step handle (see `Handle._task`). */
export interface StepTarget {
  _name: string;
  _start(): void;
  _wakeup(fut: unknown): void;
}

/** @internal What a Handle needs from its loop. */
export interface HandleOwner {
  /** @internal */
  _timerHandleCancelled(handle: TimerHandle): void;
}

/**
 * A callback scheduled with `callSoon` (asyncio's `events.Handle`). Cancel it before it runs and it never runs.
 */
export class Handle {
  /** @internal */ _callback: ((...args: any[]) => unknown) | null;
  /** @internal 0: no argument, 1: one argument in `_arg`, 2: the arguments in `_args`. */ _nargs: number;
  /** @internal */ _arg: unknown;
  /** @internal */ _args: unknown[] | undefined;
  /** @internal */ _cancelled = false;
  /**
   * @internal A task step instead of a callback: `_task._start()` when `_arg` is null, else `_task._wakeup(_arg)`.
   * No closure per task or per await, and the loop knows a step starts here.
   */
  _task: StepTarget | null = null;
  /** @internal */ _loop: HandleOwner;
  /** @internal Creation stack in debug mode. */ _sourceTraceback: string | undefined = undefined;
  /** @internal Name for traces and messages (default: the callback's name). */ _name: string | undefined = undefined;

  /** @internal Created by the loop; use `loop.callSoon`. */
  constructor(callback: (...args: any[]) => unknown, nargs: number, arg: unknown, args: unknown[] | undefined, loop: HandleOwner) {
    this._callback = callback;
    this._nargs = nargs;
    this._arg = arg;
    this._args = args;
    this._loop = loop;
  }

  /** Cancels the callback; a no-op when it has already run or was cancelled. */
  cancel(): void {
    if (!this._cancelled) {
      this._cancelled = true;
      this._callback = null;
      this._task = null;
      this._arg = undefined;
      this._args = undefined;
    }
  }

  /** True once {@link cancel} was called. */
  cancelled(): boolean {
    return this._cancelled;
  }

  /** A readable name: the callback's name, or the name given by the loop (e.g. `Task-3.step`). */
  name(): string {
    if (this._name !== undefined) return this._name;
    const task = this._task;
    if (task !== null) return `${task._name}.${this._arg === null ? 'start' : 'step'}`;
    const cb = this._callback;
    if (cb === null) return '<cancelled>';
    return cb.name || '<anonymous>';
  }

  /**
   * `<Handle name>`, or `<Handle cancelled>` once cancelled (the callback is dropped then), as asyncio's repr. In
   * debug mode, as asyncio's, it ends with where the handle was made: `<Handle name created at file.ts:12>`.
   */
  toString(): string {
    const src = this._sourceTraceback;
    return `<${this.constructor.name} ${this._reprInfo()}${src === undefined ? '' : createdAt(src)}>`;
  }

  /** @internal What toString shows inside the brackets. */
  _reprInfo(): string {
    if (this._cancelled && this._name === undefined) return 'cancelled';
    return `${this.name()}${this._cancelled ? ' cancelled' : ''}`;
  }
}

/** A callback scheduled for a time (`callLater`/`callAt`); ordered by `when`, ties in scheduling order. */
export class TimerHandle extends Handle {
  /** @internal */ _when: number;
  /** @internal Scheduling sequence number: the FIFO tie-break for equal `when`. */ _seq: number;
  /** @internal True while in the loop's heap. */ _scheduled = false;

  /** @internal Created by the loop; use `loop.callLater`/`loop.callAt`. */
  constructor(when: number, seq: number, callback: (...args: any[]) => unknown, nargs: number, arg: unknown, args: unknown[] | undefined, loop: HandleOwner) {
    super(callback, nargs, arg, args, loop);
    this._when = when;
    this._seq = seq;
  }

  /** The loop time (seconds) the callback is scheduled for. */
  when(): number {
    return this._when;
  }

  /** @internal `<TimerHandle when=10 name>`, `<TimerHandle cancelled when=10>`, as asyncio's repr. */
  override _reprInfo(): string {
    if (this._cancelled && this._name === undefined) return `cancelled when=${this._when}`;
    return `when=${this._when} ${super._reprInfo()}`;
  }

  /** Cancels the timer; the loop drops it from its heap (compacting once most of the heap is cancelled). */
  override cancel(): void {
    if (!this._cancelled) {
      super.cancel();
      if (this._scheduled) this._loop._timerHandleCancelled(this);
    }
  }
}

/** ` created at file:line` from the first frame of a captured stack (a `file://` URL shown as its path), or ''. */
function createdAt(stack: string): string {
  for (const line of stack.split('\n')) {
    const m = /([^\s()]+):(\d+):\d+\)?\s*$/.exec(line);
    if (m !== null) return ` created at ${m[1]!.replace(/^file:\/\//, '')}:${m[2]}`;
  }
  return '';
}
