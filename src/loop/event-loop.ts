/**
 * {@link EventLoop}: asyncio's event loop on top of Node's own (libuv) loop.
 *
 * One *iteration* is asyncio's `BaseEventLoop._run_once`: drop cancelled timers, compute the wait, move due timers
 * to the ready queue, snapshot the ready queue and run exactly that many callbacks (each one's resumed task step
 * runs to its next suspension before the next callback), then run `deferToIterationEnd` callbacks.
 *
 * One *turn* is one libuv callback (a `setImmediate`, or the one Node timer armed for the nearest TimerHandle) in
 * which iterations run back to back for at most {@link LOOP_TURN_BUDGET} (~1 ms), so Node's I/O phases are never
 * starved; I/O callbacks enter the ready queue through `callSoon`, which arms the `setImmediate` when the loop is
 * idle. `docs/event-loop-internals.md` maps this onto libuv's phases.
 */
import { constants as osConstants } from 'node:os';
import { inspect } from 'node:util';
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import {
  LOOP_TURN_BUDGET,
  MAXIMUM_SELECT_TIMEOUT,
  MIN_CANCELLED_TIMER_HANDLES_FRACTION,
  MIN_SCHEDULED_TIMER_HANDLES,
  SLOW_CALLBACK_DURATION,
  TASK_STEP_HOP_CAP,
} from '../constants.js';
import { InvalidStateError, LoopClosedError } from '../errors.js';
import { systemClock, type Clock } from './clock.js';
import { Handle, TimerHandle, type ExceptionContext, type ExceptionHandler, type LoopLogger, type StepTarget, type Tracer } from './events.js';
import { Future, PENDING, wrapPromise } from './futures.js';
import { captureStack, enableForeignAwaitTracking, rt } from './state.js';
import { Task, type TaskFunction, type TaskOptions } from './tasks.js';
import { TimerHeap } from './timer-heap.js';

/** Options of {@link EventLoop}. */
/** @internal Something that holds an OS handle for this loop (a listening server, a socket transport). */
export interface OpenResource {
  /** What it is, for the warning `run()` logs. */
  readonly _resourceKind: 'server' | 'transport';
  /** Closes it now (a server stops listening and aborts its connections; a transport aborts). */
  _abortOpen(): void;
}

export interface EventLoopOptions {
  /** Where time comes from (default the real clock). A `VirtualClock` makes timers deterministic. */
  clock?: Clock;
  /** Debug mode: slow-callback warnings and creation tracebacks (default false). */
  debug?: boolean;
  /** In debug mode, callbacks slower than this are logged, seconds (default {@link SLOW_CALLBACK_DURATION}). */
  slowCallbackDuration?: number;
  /** Where warnings and the default exception handler's reports go (default `console`). */
  logger?: LoopLogger;
  /**
   * Turn on foreign-await tracking for the process now (see `enableForeignAwaitTracking`), so tasks that await
   * promises not made by tulipwire keep their identity from their first such await. Default false: the loop turns
   * it on by itself at the first foreign await it sees. `run()` passes true.
   */
  trackForeignAwaits?: boolean;
}

function noop(): void {}

/** A deferred callback's name for reports (`<anonymous>`, or `<unnamed>` when its `name` getter throws). */
function callbackName(cb: () => void): string {
  try {
    return cb.name || '<anonymous>';
  } catch {
    return '<unnamed>';
  }
}

/** A handle's name for traces and reports; a callback whose `name` getter throws is `<unnamed>`. */
function safeName(h: Handle): string {
  try {
    return h.name();
  } catch {
    return '<unnamed>';
  }
}

/** `String(h)`, or `<Handle <unnamed>>` when its name cannot be read. */
function safeString(h: Handle): string {
  try {
    return h.toString();
  } catch {
    return '<Handle <unnamed>>';
  }
}

/** A signal this loop can handle: its name (`'SIGTERM'`) or its number on this platform. */
export type SignalSpec = NodeJS.Signals | number;

/** The signal's name, checked as asyncio's `_check_signal` checks (TypeError for the type, RangeError for the value). */
function signalName(sig: unknown): NodeJS.Signals {
  const table = osConstants.signals as Record<string, number>;
  if (typeof sig === 'string') {
    if (Object.hasOwn(table, sig)) return sig as NodeJS.Signals;
    throw new RangeError(`invalid signal ${JSON.stringify(sig)}`);
  }
  if (typeof sig === 'number') {
    for (const name of Object.keys(table)) if (table[name] === sig) return name as NodeJS.Signals;
    throw new RangeError(`invalid signal number ${sig}`);
  }
  throw new TypeError(`sig must be a signal name or number, not ${typeof sig}`);
}

/**
 * One context value as the default exception handler prints it (asyncio prints `repr(value)`): its own `toString`
 * when it has one (handles, futures, tasks, errors), a socket as `<TLSSocket local -> remote>`, anything else as
 * `util.inspect` two levels deep, cut at 200 characters; never `[object Object]`, and never a throw.
 */
function contextValue(v: unknown): string {
  try {
    if (v === null || typeof v !== 'object') return typeof v === 'string' ? v : String(v);
    let text = '[object ';
    try {
      text = String(v);
    } catch {
      // No usable toString (a null-prototype object, a toString that throws): inspect shows it below.
    }
    if (!text.startsWith('[object ')) return text;
    const sock = v as { remoteAddress?: unknown; remotePort?: unknown; localAddress?: unknown; localPort?: unknown };
    if ('remoteAddress' in sock && 'localPort' in sock) {
      return `<${v.constructor?.name ?? 'Socket'} ${String(sock.localAddress)}:${String(sock.localPort)} -> ${String(sock.remoteAddress)}:${String(sock.remotePort)}>`;
    }
    const shown = inspect(v, { depth: 1, breakLength: Infinity, maxArrayLength: 10, maxStringLength: 80 });
    return shown.length > 200 ? `${shown.slice(0, 199)}…` : shown;
  } catch {
    return '<unprintable>';
  }
}

/**
 * An exception as the default exception handler prints it: an Error's stack, anything else as {@link contextValue};
 * never a throw (a thrown null-prototype object or a throwing `toString`/`stack` getter must not lose the report).
 */
function exceptionText(exc: unknown): string {
  try {
    if (exc instanceof Error) {
      const stack = exc.stack;
      if (typeof stack === 'string') return stack;
    }
  } catch {
    // A throwing stack getter: fall back to the value itself.
  }
  return contextValue(exc);
}

/** Awaited by the turn to let microtasks run (one resolved Promise, not a new one per hop). */
const RESOLVED = Promise.resolve();

/** Node's timing milestones: its `idleTime` getter reads libuv's idle-time counter directly (see `_callSoonFromIo`). */
const nodeTiming = performance.nodeTiming;

const consoleLogger: LoopLogger = {
  warn: (m) => console.warn(m),
  error: (m) => console.error(m),
};

interface ChangeableClock extends Clock {
  onChange(listener: () => void): () => void;
}

function isChangeable(c: Clock): c is ChangeableClock {
  return typeof (c as Partial<ChangeableClock>).onChange === 'function';
}

/** asyncio's event loop. Times are seconds. */
export class EventLoop {
  /** The loop's clock; `clock.epoch()` gives wall time for expiries. */
  readonly clock: Clock;
  /** In debug mode, callbacks slower than this many seconds are logged. */
  slowCallbackDuration: number;

  /** @internal */ _debug: boolean;
  /** @internal */ _closed = false;
  /** @internal */ _running = false;
  /** @internal */ _stopping = false;
  /** @internal True while a turn executes (callSoon then needs no wake-up). */ _inTurn = false;
  /**
   * @internal Callbacks for the next iteration: `_ready[0 .. _readyN)`. The ready queue is two arrays swapped at
   * each iteration, with the count kept apart so no array is ever truncated (`length = 0` is a slow path in V8).
   */
  _ready: (Handle | null)[] = [];
  /** @internal */ _readyN = 0;
  /** @internal The array of the previous batch, reused. */ _spare: (Handle | null)[] = [];
  /** @internal */ _heap = new TimerHeap();
  /** @internal */ _seq = 0;
  /** @internal */ _deferred: (() => void)[] = [];
  /** @internal */ _immediate: ReturnType<typeof setImmediate> | null = null;
  /** @internal */ _timer: ReturnType<typeof setTimeout> | null = null;
  /** @internal */ _timerWhen = Infinity;
  /** @internal */ _exceptionHandler: ExceptionHandler | null = null;
  /** @internal */ _tracer: Tracer | null = null;
  /** @internal */ _iteration = 0;
  /** @internal Pending tasks, strongly held (asyncio's weak set loses fire-and-forget tasks). */ _tasks = new Set<Task<unknown>>();
  /**
   * @internal Listening servers and open socket transports on this loop (src/net registers them while they hold an
   * OS handle), so `run()` can close what `main` left open: an open socket keeps Node's process alive.
   */
  _open = new Set<OpenResource>();
  /** @internal */ _runResolve: (() => void) | null = null;
  /** @internal */ _logger: LoopLogger;
  /** @internal Timers within this of now are due (asyncio `clock_resolution`). */ _clockResolution: number;
  /** @internal A virtual clock: time moves only when told, so no Node timer is ever armed. */ _virtual: boolean;
  /** @internal */ _unsubscribeClock: (() => void) | null = null;
  /**
   * @internal Autojump: set when the loop found nothing ready and gave libuv one turn (all microtasks drained, I/O
   * polled) before jumping; cleared when a callback runs. Only a loop idle across that turn jumps.
   */
  _idleTurn = false;
  /** @internal libuv's idle time (ms) when a read last ran the turn itself (see `_callSoonFromIo`). */
  _ioIdle = -1;
  /** @internal Signal handlers: the process listener of each signal, which queues the handler's callback. */
  _signals = new Map<NodeJS.Signals, () => void>();

  readonly #turnFromImmediate = (): void => {
    this._immediate = null;
    this.#startTurn();
  };
  readonly #turnFromTimer = (): void => {
    this._timer = null;
    this._timerWhen = Infinity;
    this.#startTurn();
  };
  readonly #turnBound = (): void => this.#turn();
  readonly #clockChanged = (): void => {
    if (!this._inTurn && this._running && this._immediate === null) this._armImmediate();
  };

  /** A new, stopped loop. */
  constructor(options: EventLoopOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this._debug = options.debug ?? false;
    this.slowCallbackDuration = options.slowCallbackDuration ?? SLOW_CALLBACK_DURATION;
    this._logger = options.logger ?? consoleLogger;
    this._virtual = isChangeable(this.clock);
    this._clockResolution = this._virtual ? 0 : 1e-6;
    if (options.trackForeignAwaits === true) enableForeignAwaitTracking();
  }

  /** Monotonic time in seconds from the loop's clock (asyncio `loop.time()`). */
  time(): number {
    return this.clock.time();
  }

  // ---- scheduling ---------------------------------------------------------------------------------------------

  /**
   * Schedules `callback(...args)` for the next iteration, FIFO. Callable from anywhere, also from Node I/O
   * callbacks outside an iteration: it wakes the loop.
   * @throws LoopClosedError when the loop is closed.
   */
  callSoon<A extends unknown[]>(callback: (...args: A) => unknown, ...args: A): Handle {
    if (this._closed) throw new LoopClosedError();
    const n = args.length;
    const h = new Handle(callback as (...a: unknown[]) => unknown, n > 1 ? 2 : n, n === 1 ? args[0] : undefined, n > 1 ? args : undefined, this);
    if (this._debug) h._sourceTraceback = debugCheck(callback, 'callSoon', 3);
    this._ready[this._readyN++] = h;
    if (!this._inTurn && this._immediate === null && this._running) this._armImmediate();
    return h;
  }

  /** @internal callSoon with exactly one argument and no rest array (Future callbacks, task steps). */
  _callSoon1(callback: (a: unknown) => unknown, arg: unknown): Handle {
    if (this._closed) throw new LoopClosedError();
    const h = new Handle(callback, 1, arg, undefined, this);
    if (this._debug) h._sourceTraceback = captureStack(3);
    this._ready[this._readyN++] = h;
    if (!this._inTurn && this._immediate === null && this._running) this._armImmediate();
    return h;
  }

  /** @internal Schedules a task step: its start (`fut` null) or its wake-up by the done Future `fut`. */
  _callSoonStep(task: StepTarget, fut: unknown): Handle {
    if (this._closed) throw new LoopClosedError();
    const h = new Handle(noop, 0, fut, undefined, this);
    h._task = task;
    if (this._debug) h._sourceTraceback = captureStack(3);
    this._ready[this._readyN++] = h;
    if (!this._inTurn && this._immediate === null && this._running) this._armImmediate();
    return h;
  }

  /**
   * Schedules `callback(...args)` `delay` seconds from now.
   * @throws TypeError when `delay` is not a number; LoopClosedError when the loop is closed.
   */
  callLater<A extends unknown[]>(delay: number, callback: (...args: A) => unknown, ...args: A): TimerHandle {
    if (typeof delay !== 'number' || Number.isNaN(delay)) throw new TypeError(`delay must be a number of seconds, got ${String(delay)}`);
    return this.#callAt(this.clock.time() + delay, callback as (...a: unknown[]) => unknown, args);
  }

  /**
   * Schedules `callback(...args)` at loop time `when` (seconds). Timers fire in `when` order, ties in
   * scheduling order.
   * @throws TypeError when `when` is not a number; LoopClosedError when the loop is closed.
   */
  callAt<A extends unknown[]>(when: number, callback: (...args: A) => unknown, ...args: A): TimerHandle {
    if (typeof when !== 'number' || Number.isNaN(when)) throw new TypeError(`when must be a number of seconds, got ${String(when)}`);
    return this.#callAt(when, callback as (...a: unknown[]) => unknown, args);
  }

  #callAt(when: number, callback: (...a: unknown[]) => unknown, args: unknown[]): TimerHandle {
    if (this._closed) throw new LoopClosedError();
    const n = args.length;
    const t = new TimerHandle(when, this._seq++, callback, n > 1 ? 2 : n, n === 1 ? args[0] : undefined, n > 1 ? args : undefined, this);
    if (this._debug) t._sourceTraceback = debugCheck(callback, 'callAt', 4);
    t._scheduled = true;
    this._heap.push(t);
    // Outside a turn the wait must be recomputed (a sooner timer, or a virtual clock's next jump).
    if (!this._inTurn && this._immediate === null && this._running) this._armImmediate();
    return t;
  }

  /** @internal */
  _timerHandleCancelled(_t: TimerHandle): void {
    this._heap.cancelled++;
  }

  /**
   * @internal (used by transports to flush corked writes) Runs `cb` once right after the ready callbacks of the
   * current iteration (and the task steps they resumed) have all run, in the same libuv turn. Called outside an
   * iteration, it runs after the next iteration (and schedules one). Several calls in one iteration run FIFO.
   */
  deferToIterationEnd(cb: () => void): void {
    if (this._closed) throw new LoopClosedError();
    this._deferred.push(cb);
    if (!this._inTurn && this._immediate === null && this._running) this._armImmediate();
  }

  /** A pending Future bound to this loop. */
  createFuture<T = unknown>(): Future<T> {
    return new Future<T>(this);
  }

  /**
   * Wraps `fn` (an async function, or a generator function yielding Futures) in a Task whose first step runs on
   * the next iteration.
   * @throws LoopClosedError when the loop is closed.
   */
  createTask<T>(fn: TaskFunction<T>, options?: TaskOptions): Task<T> {
    if (this._closed) throw new LoopClosedError();
    if (typeof fn !== 'function') throw new TypeError('createTask() takes a function (async or generator)');
    return new Task<T>(fn, this, options);
  }

  // ---- running ------------------------------------------------------------------------------------------------

  /** True while inside `runForever()` / `runUntilComplete()`. */
  isRunning(): boolean {
    return this._running;
  }

  /** True once `close()` was called. */
  isClosed(): boolean {
    return this._closed;
  }

  /**
   * Runs iterations until `stop()` is called; the Promise resolves once the loop has stopped.
   * @throws LoopClosedError when closed; InvalidStateError when already running (as a rejection).
   */
  runForever(): Promise<void> {
    if (this._closed) return Promise.reject(new LoopClosedError());
    if (this._running) return Promise.reject(new InvalidStateError('This event loop is already running'));
    this._running = true;
    rt.running.push(this);
    if (isChangeable(this.clock)) this._unsubscribeClock = this.clock.onChange(this.#clockChanged);
    const p = new Promise<void>((resolve) => {
      this._runResolve = resolve;
    });
    this._armImmediate();
    return p;
  }

  /**
   * Runs the loop until `future` is done and returns its result (or throws its exception). A function is wrapped
   * in a Task first, a native Promise in a Future. It may be awaited from a task of another running loop (unlike
   * asyncio's, which would block the thread): both loops keep running, each its own `getRunningLoop()`.
   * @throws LoopClosedError when closed; InvalidStateError when the loop is already running, `future` is a Future
   *   of another loop, or the loop is stopped before the Future is done; TypeError when `future` is neither a
   *   Future, a function nor a thenable.
   */
  async runUntilComplete<T>(future: Future<T> | TaskFunction<T> | PromiseLike<T>): Promise<T> {
    if (this._closed) throw new LoopClosedError();
    if (this._running) throw new InvalidStateError('This event loop is already running');
    if (future instanceof Future) {
      if (future._loop !== this) throw new InvalidStateError('The future belongs to a different loop than the one specified as the loop argument');
    } else if (typeof future !== 'function' && (future === null || typeof future !== 'object' || typeof (future as PromiseLike<T>).then !== 'function')) {
      throw new TypeError('A Future, a function or a Promise is required');
    }
    let fut: Future<T>;
    if (future instanceof Future) {
      fut = future;
    } else if (typeof future === 'function') {
      const task = this.createTask(future as TaskFunction<T>);
      // Stopped before it is done, this throws; close() need not report the task too (asyncio's run_until_complete).
      task._logDestroyPending = false;
      fut = task;
    } else {
      fut = wrapPromise(future, this);
    }
    const stopWhenDone = (): void => this.stop();
    fut.addDoneCallback(stopWhenDone);
    try {
      await this.runForever();
    } finally {
      fut.removeDoneCallback(stopWhenDone);
    }
    if (!fut.done()) throw new InvalidStateError('Event loop stopped before Future completed.');
    return fut.result();
  }

  /** Stops the loop after the current iteration (callbacks already scheduled still run on the next run). */
  stop(): void {
    this._stopping = true;
    if (this._running && !this._inTurn && this._immediate === null) this._armImmediate();
  }

  /**
   * Closes the loop: drops scheduled callbacks and timers. Tasks still pending are reported through the exception
   * handler ("Task was destroyed but it is pending!"), except the Tasks `gather()` and `runUntilComplete()` made for
   * functions they were given (asyncio's `_log_destroy_pending = False`). Idempotent.
   * @throws InvalidStateError when the loop is running.
   */
  close(): void {
    if (this._running) throw new InvalidStateError('Cannot close a running event loop');
    if (this._closed) return;
    for (const sig of [...this._signals.keys()]) this.removeSignalHandler(sig);
    for (const t of this._tasks) {
      if (t._state === PENDING && t._logDestroyPending) this.callExceptionHandler({ message: 'Task was destroyed but it is pending!', task: t });
    }
    this._closed = true;
    this._tasks.clear();
    this._ready = [];
    this._readyN = 0;
    this._spare = [];
    this._heap.clear();
    this._deferred.length = 0;
    this.#disarm();
  }

  // ---- signals ------------------------------------------------------------------------------------------------

  /**
   * Calls `callback(...args)` on this loop each time the process receives `sig` (asyncio `add_signal_handler`). The
   * signal only queues the callback (as `callSoon`, which wakes an idle loop), so it runs between other callbacks,
   * never inside one, and an exception from it goes to the exception handler. `sig` is a name (`'SIGTERM'`) or a
   * number. A second call for the same signal replaces the first handler. While a handler is set, Node's default
   * action for the signal (exit, for SIGINT, SIGTERM, SIGHUP) does not happen, and `run()`'s own SIGINT/SIGTERM
   * cancel of `main` steps aside for it, as asyncio's Runner does when the loop handles SIGINT. `close()` removes
   * every handler. Unlike asyncio's (Unix only, `NotImplementedError` on Windows' Proactor loop) this works wherever
   * Node emits the signal, e.g. SIGINT, SIGBREAK and SIGHUP on Windows.
   * @throws TypeError when `sig` is neither a string nor a number, or `callback` is not a function or is an async
   *   function (asyncio: "coroutines cannot be used with add_signal_handler()"; start a task from a plain callback);
   *   RangeError when `sig` is not a signal of this platform; InvalidStateError when it cannot be caught (SIGKILL,
   *   SIGSTOP) or the loop is not on the main thread (Node delivers signals there only); LoopClosedError when closed.
   */
  addSignalHandler<A extends unknown[]>(sig: SignalSpec, callback: (...args: A) => unknown, ...args: A): void {
    if (typeof callback !== 'function') throw new TypeError('a signal handler must be a function');
    if (callback.constructor.name === 'AsyncFunction' || callback.constructor.name === 'AsyncGeneratorFunction') {
      throw new TypeError('coroutines cannot be used with addSignalHandler()');
    }
    const name = signalName(sig);
    if (this._closed) throw new LoopClosedError();
    if (!isMainThread) throw new InvalidStateError(`signal handlers only work in the main thread (${name} is never delivered to a worker)`);
    const listener = (): void => {
      if (!this._closed) this.callSoon(callback, ...args);
    };
    const previous = this._signals.get(name);
    try {
      process.on(name, listener);
    } catch (e) {
      // libuv refuses a signal it cannot catch (EINVAL for SIGKILL and SIGSTOP).
      throw new InvalidStateError(`${name} cannot be caught`, { cause: e });
    }
    if (previous !== undefined) process.off(name, previous);
    this._signals.set(name, listener);
  }

  /**
   * Removes the handler of `sig` (asyncio `remove_signal_handler`); once no listener is left Node's default action
   * for it is back. Returns true when a handler was removed, false when there was none.
   * @throws TypeError / RangeError as {@link addSignalHandler} for a `sig` that is not a signal.
   */
  removeSignalHandler(sig: SignalSpec): boolean {
    const name = signalName(sig);
    const listener = this._signals.get(name);
    if (listener === undefined) return false;
    this._signals.delete(name);
    process.off(name, listener);
    return true;
  }

  // ---- errors, debug, tracing ---------------------------------------------------------------------------------

  /** Sets the exception handler (`null` restores the default). */
  setExceptionHandler(handler: ExceptionHandler | null): void {
    if (handler !== null && typeof handler !== 'function') throw new TypeError('the exception handler must be a function or null');
    this._exceptionHandler = handler;
  }

  /** The exception handler, or null when the default is in use. */
  getExceptionHandler(): ExceptionHandler | null {
    return this._exceptionHandler;
  }

  /** The default handler: writes the context (and the exception's stack) to the loop's logger. */
  defaultExceptionHandler(context: ExceptionContext): void {
    const lines = [context.message || 'Unhandled exception in event loop'];
    for (const key of Object.keys(context).sort()) {
      if (key === 'message' || key === 'exception' || key === 'sourceTraceback') continue;
      lines.push(`${key}: ${contextValue(context[key])}`);
    }
    if (context.sourceTraceback !== undefined) lines.push(`created at:\n${context.sourceTraceback}`);
    const exc = context.exception;
    if (exc !== undefined) lines.push(exceptionText(exc));
    this._logger.error(lines.join('\n'));
  }

  /**
   * Reports `context` to the exception handler (or the default one). Never throws: an error in the handler is
   * reported through the default handler, and so is the rejection of an async handler (it is not awaited).
   */
  callExceptionHandler(context: ExceptionContext): void {
    if (this._debug && context.sourceTraceback === undefined) {
      const src = (context.handle ?? context.task ?? context.future) as { _sourceTraceback?: string } | undefined;
      if (src?._sourceTraceback !== undefined) context = { ...context, sourceTraceback: src._sourceTraceback };
    }
    const h = this._exceptionHandler;
    if (h === null) {
      try {
        this.defaultExceptionHandler(context);
      } catch (e) {
        // A defaultExceptionHandler overridden (or broken) to throw: the logger is the last resort, as asyncio's.
        this.#logLastResort('Exception in default exception handler', e);
      }
      return;
    }
    let r: unknown;
    try {
      r = h(this, context);
    } catch (e) {
      this.#handlerFailed(e, context);
      return;
    }
    // An async handler: its rejection would be an unhandled rejection, which ends a Node process.
    if (r instanceof Promise) r.then(undefined, (e: unknown) => this.#handlerFailed(e, context));
  }

  /** The custom exception handler threw (or its Promise rejected): report that through the default handler. */
  #handlerFailed(e: unknown, context: ExceptionContext): void {
    try {
      this.defaultExceptionHandler({ message: 'Unhandled error in exception handler', exception: e, context });
    } catch (e2) {
      this.#logLastResort('Exception in default exception handler while handling an unexpected error in custom exception handler', e2);
    }
  }

  // asyncio's logger.error(msg, exc_info=True) for a throwing default handler: the message, then the error's stack.
  #logLastResort(message: string, exc: unknown): void {
    try {
      this._logger.error(`${message}\n${exceptionText(exc)}`);
    } catch {
      // A throwing logger: nothing left to report to.
    }
  }

  /** Turns debug mode on or off (slow-callback warnings, creation tracebacks in reports). */
  setDebug(enabled: boolean): void {
    this._debug = enabled;
  }

  /** True in debug mode. */
  getDebug(): boolean {
    return this._debug;
  }

  /**
   * Sets a function that receives one {@link TraceRecord} per iteration (`null` removes it). One that throws (or,
   * async, rejects; it is not awaited) is reported as "Exception in tracer" and the loop goes on.
   */
  setTracer(tracer: Tracer | null): void {
    this._tracer = tracer;
  }

  /** The tracer, or null. */
  getTracer(): Tracer | null {
    return this._tracer;
  }

  /** Iterations run so far. */
  get iterations(): number {
    return this._iteration;
  }

  // ---- the libuv bridge ---------------------------------------------------------------------------------------

  /**
   * @internal `callSoon(callback)` for a transport's read, from its Node I/O callback. When libuv *waited* for I/O
   * since the last turn a read ran this way, the turn runs now, in libuv's poll phase, instead of in the check phase
   * after it (no `setImmediate` is armed for it). Reads that follow without a wait in between (the other sockets of
   * the same epoll batch, further TLS records of the same read, or every read of a loop too busy to wait) queue as
   * a `callSoon` does and share one turn in the check phase. Whether libuv waited is its idle-time counter
   * (`performance.nodeTiming.idleTime`, ~50 ns to read), which grows only while the poll phase blocks: no
   * `setImmediate` has to mark the end of each poll phase (that marker cost a check-phase callback per read).
   * @throws LoopClosedError when the loop is closed.
   */
  _callSoonFromIo(callback: () => void): void {
    if (this._closed) throw new LoopClosedError();
    const h = new Handle(callback as (...a: unknown[]) => unknown, 0, undefined, undefined, this);
    if (this._debug) h._sourceTraceback = captureStack(3);
    this._ready[this._readyN++] = h;
    if (this._inTurn || !this._running) return;
    const idle = nodeTiming.idleTime;
    if (idle === this._ioIdle) {
      if (this._immediate === null) this._armImmediate();
      return;
    }
    this._ioIdle = idle;
    if (this._immediate !== null) {
      clearImmediate(this._immediate);
      this._immediate = null;
    }
    this.#startTurn();
  }

  /**
   * @internal A Future done after `ms` real milliseconds, whatever the loop's clock: `run()`'s shutdown waits for the
   * kernel to close aborted sockets, which no VirtualClock speeds up (and one moved only by `advance()` would never
   * end a `sleep()`).
   */
  _realDelay(ms: number): Future<void> {
    const fut = new Future<void>(this);
    setTimeout(() => {
      if (!fut.done() && !this._closed) fut.setResult(undefined);
    }, ms);
    return fut;
  }

  /** @internal */
  _armImmediate(): void {
    if (this._immediate === null) this._immediate = setImmediate(this.#turnFromImmediate);
  }

  #disarm(): void {
    if (this._immediate !== null) {
      clearImmediate(this._immediate);
      this._immediate = null;
    }
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
      this._timerWhen = Infinity;
    }
  }

  /** Nothing is ready: wait for a callSoon (I/O), the Node timer of the nearest TimerHandle, or a clock change. */
  #idle(wait: number | null): void {
    if (wait === null || this._virtual) return;
    const when = this._heap.peek()!._when;
    if (this._timer !== null) {
      if (this._timerWhen <= when) return;
      clearTimeout(this._timer);
    }
    this._timer = setTimeout(this.#turnFromTimer, Math.max(1, Math.ceil(wait * 1000)));
    this._timerWhen = when;
  }

  #finishRun(): void {
    this._stopping = false;
    this._idleTurn = false;
    this._running = false;
    this.#disarm();
    const i = rt.running.lastIndexOf(this);
    if (i >= 0) rt.running.splice(i, 1);
    if (this._unsubscribeClock !== null) {
      this._unsubscribeClock();
      this._unsubscribeClock = null;
    }
    const r = this._runResolve;
    this._runResolve = null;
    r?.();
  }

  #cleanHeap(): void {
    const heap = this._heap;
    if (heap.size > MIN_SCHEDULED_TIMER_HANDLES && heap.cancelled / heap.size > MIN_CANCELLED_TIMER_HANDLES_FRACTION) {
      heap.compact();
      this.#tCompacted = this._tracer !== null;
      return;
    }
    for (;;) {
      const top = heap.peek();
      if (top === undefined || !top._cancelled) break;
      heap.pop();
      top._scheduled = false;
      heap.cancelled--;
    }
  }

  /**
   * A resumed task did not reach a suspension within the hop cap (it awaits a foreign promise): stop waiting. With
   * foreign-await tracking the task is marked `_foreign` (its async context keeps naming it); without, tracking is
   * turned on now for the tasks started from here on.
   */
  #abandonStep(): void {
    const t = rt.task;
    if (t !== null) {
      t._abandonStep();
      if (!t._tracked && rt.als === null) {
        enableForeignAwaitTracking();
        if (this._debug) {
          this.#warn(
            `${t.toString()} awaited a promise not made by tulipwire before foreign-await tracking was on: it stays untracked (currentTask() is null after that await and its awaits are not cancellation points); tracking is on from now on (use run() or enableForeignAwaitTracking())`,
          );
        }
      }
    }
    rt.task = null;
    rt.inFlight = 0;
  }

  /** Logs a warning; a logger that throws is ignored (the turn must not fail halfway through a batch). */
  /** @internal Logs a warning to the loop's logger; a logger that throws is ignored. */
  _warnSafe(message: string): void {
    this.#warn(message);
  }

  #warn(message: string): void {
    try {
      this._logger.warn(message);
    } catch {
      // Nowhere left to report it.
    }
  }

  /** Starts a turn outside any task's async context, so plain callbacks never see a task's store. */
  #startTurn(): void {
    const als = rt.als;
    if (als !== null && als.getStore() !== undefined) als.run(undefined as unknown as Task<unknown>, this.#turnBound);
    else this.#turn();
  }

  #callbackFailed(h: Handle, e: unknown): void {
    this.callExceptionHandler({ message: `Exception in callback ${safeName(h)}`, exception: e, handle: h });
  }

  // ---- the turn: a re-entrant state machine ---------------------------------------------------------------------
  //
  // A turn runs iterations synchronously and stops only at a *hop*: where a resumed task step must reach its next
  // suspension (or microtasks queued by plain callbacks must run) before the next callback. A hop registers
  // `#resume` as a reaction of one resolved Promise and returns; the reaction re-enters `#run()`, which picks up
  // at the saved stage. The turn's progress lives in the `#t*` fields below. An `async` turn with `await` did the
  // same with one generator resume of a large frame per hop (~25% of a Future round trip: bench/loop.ts).

  /** The batch being run (null between iterations). */ #tBatch: (Handle | null)[] | null = null;
  /** Its length (asyncio's `ntodo`). */ #tN = 0;
  /** Index of the next (or current) callback of the batch. */ #tI = 0;
  /** Stage of the current callback: 0 start, 1 run (after the pre-step hop), 2 drain its step, 3 after the follow-up hop. */ #tStage = 0;
  /** Hops spent waiting for the current step (capped at TASK_STEP_HOP_CAP). */ #tHops = 0;
  /** The current callback. */ #tH: Handle | null = null;
  /** True once a plain callback ran since microtasks were last drained. */ #tDirty = false;
  /** True while the iteration's deferred callbacks run; `#tDI` is the next one. */ #tInDeferred = false;
  #tDI = 0;
  /** Wall time the turn started, and its work count (see the budget check). */ #tStart = 0;
  #tWork = 0;
  /** The loop that was executing when this turn began (restored when it ends). */ #tPrev: EventLoop | null = null;
  /** Debug mode: when the current callback started. */ #tT0 = 0;
  // Tracing: the current iteration's record in the making.
  #tNames: string[] | null = null;
  #tTraceStart = 0;
  #tIterTime = 0;
  #tWait: number | null = 0;
  /**
   * The wait computed when the loop last went idle (undefined while it has not since the last iteration): the
   * iteration that runs once it is woken reports it as its `wait`, since its own step 2 finds work ready and 0.
   */
  #tIdleWait: number | null | undefined = undefined;
  #tJumped = false;
  #tTimersDue = 0;
  /** The heap was compacted since the last trace record (set only while a tracer is on). */ #tCompacted = false;
  #tCompactedThis = false;
  readonly #resume = (): void => this.#drive();

  /** One libuv turn: iterations back to back until idle, stopped, or over the ~1 ms budget. */
  #turn(): void {
    if (!this._running || this._inTurn) return;
    this._inTurn = true;
    this.#tPrev = rt.executing;
    rt.executing = this;
    this.#tStart = systemClock.time();
    this.#tWork = 0;
    this.#tDirty = false;
    this.#tBatch = null;
    this.#drive();
  }

  /** Runs the turn until it ends or stops at a hop. */
  #drive(): void {
    try {
      if (this.#run()) return;
    } catch (e) {
      // Only a bug in the loop itself gets here; report it and keep the loop alive (the batch's rest is dropped).
      if (this.#tBatch !== null) {
        this.#tBatch = null;
        this._spare = [];
      }
      this.#tH = null;
      this.#tStage = 0;
      if (this.#tInDeferred) {
        // The deferred callbacks that already ran are done; the others (corked writes' flushes) still run.
        this._deferred.splice(0, this.#tDI);
        this.#tInDeferred = false;
        this.#tDI = 0;
      }
      this.callExceptionHandler({ message: 'internal error in the event loop', exception: e });
      if (this._running) this._armImmediate();
    }
    this._inTurn = false;
    rt.executing = this.#tPrev;
    this.#tPrev = null;
  }

  /**
   * After a callback ran: the stage to hop to next, 2 while the task step it resumed is still in flight (up to the
   * hop cap, then the step is abandoned), 3 when the step suspended (let its follow-up microtasks run while it is
   * still the current task: the `await` right after an explicit `fut.then(a, b)` registers there; then forget it),
   * or 0 when there is nothing to wait for.
   */
  #stepWait(): number {
    if (rt.inFlight > 0) {
      if (++this.#tHops <= TASK_STEP_HOP_CAP) return 2;
      this.#abandonStep();
    }
    return rt.task !== null ? 3 : 0;
  }

  /** Lets pending microtasks run, then continues the turn. */
  #hop(): true {
    void RESOLVED.then(this.#resume);
    return true;
  }

  /** Steps 1–3 of an iteration; false when the turn ends here (idle, or waiting for libuv). */
  #beginIteration(): boolean {
    const heap = this._heap;
    const clock = this.clock;
    // 1. Heap hygiene: drop cancelled timers at the top, or rebuild when most are cancelled.
    if (heap.cancelled > 0) this.#cleanHeap();

    // 2. The wait asyncio would give select(): 0 when anything is ready, else until the nearest timer.
    let wait: number | null = 0;
    let jumped = false;
    if (this._readyN === 0 && !this._stopping && this._deferred.length === 0) {
      const top = heap.peek();
      if (top === undefined) {
        wait = null;
      } else {
        wait = top._when - clock.time();
        if (wait <= this._clockResolution) wait = 0;
        else if (wait > MAXIMUM_SELECT_TIMEOUT) wait = MAXIMUM_SELECT_TIMEOUT;
      }
      if (wait !== 0) {
        // A deadline at Infinity never comes (`sleep(Infinity)`): nothing to jump to, wait for I/O as with no timer.
        if (wait !== null && clock.autojump && clock.jumpTo !== undefined && top!._when !== Infinity) {
          if (!this._idleTurn) {
            // Idle only if still idle after libuv's next turn: promise work still in the microtask queue (an
            // async store, a foreign promise resolved by a callback) may be about to callSoon.
            this._idleTurn = true;
            if (this.#tIdleWait === undefined) this.#tIdleWait = wait;
            this._armImmediate();
            return false;
          }
          this._idleTurn = false;
          clock.jumpTo(top!._when);
          jumped = true;
        } else {
          if (this.#tIdleWait === undefined) this.#tIdleWait = wait;
          this.#idle(wait);
          return false;
        }
      }
    }
    // Woken from a wait (a timer's Node timeout, a callSoon from I/O, a clock change): the record gives the wait
    // the loop went idle with, as asyncio's record of this iteration would give the timeout its select() had.
    const idleWait = this.#tIdleWait;
    this.#tIdleWait = undefined;
    if (idleWait !== undefined && !jumped) wait = idleWait;
    const tracer = this._tracer;
    if (tracer !== null) {
      this.#tTraceStart = systemClock.time();
      this.#tIterTime = clock.time();
      this.#tNames = [];
      this.#tWait = wait;
      this.#tJumped = jumped;
      this.#tCompactedThis = this.#tCompacted;
      this.#tCompacted = false;
    } else {
      this.#tNames = null;
    }

    // 3. Timers now due join the ready queue, in (when, seq) order.
    let timersDue = 0;
    if (heap.size > 0) {
      const end = clock.time() + this._clockResolution;
      for (;;) {
        const t = heap.peek();
        if (t === undefined) break;
        if (t._cancelled) {
          heap.pop();
          t._scheduled = false;
          heap.cancelled--;
          continue;
        }
        if (t._when > end) break;
        heap.pop();
        t._scheduled = false;
        this._ready[this._readyN++] = t;
        timersDue++;
      }
    }
    if (tracer !== null) this.#tTimersDue = timersDue;

    // 4 starts: the snapshot; anything scheduled from now on waits for the next iteration (asyncio's `ntodo`).
    const n = this._readyN;
    if (n !== 0) this._idleTurn = false;
    this.#tBatch = this._ready;
    this.#tN = n;
    // (#tStage, #tInDeferred and #tDI are back at 0 / false / 0 whenever an iteration ends.)
    this.#tI = 0;
    this._ready = this._spare;
    this._readyN = 0;
    return true;
  }

  /** Runs one callback of the batch. */
  #runHandle(h: Handle): void {
    const task = h._task;
    if (task !== null) {
      try {
        const fut = h._arg;
        if (fut === null) task._start();
        else task._wakeup(fut);
      } catch (e) {
        this.#callbackFailed(h, e);
      }
    } else {
      const cb = h._callback!;
      let r: unknown;
      try {
        const k = h._nargs;
        if (k === 1) r = cb(h._arg);
        else if (k === 0) r = cb();
        else r = cb(...h._args!);
      } catch (e) {
        this.#callbackFailed(h, e);
        return;
      }
      // An async callback (`callSoon(async () => …)`): its rejection is reported as a throw is, not left to be an
      // unhandled rejection, which ends a Node process.
      if (r instanceof Promise) {
        const message = `Exception in callback ${safeName(h)}`;
        r.then(undefined, (e: unknown) => this.callExceptionHandler({ message, exception: e, handle: h }));
      }
    }
  }

  /**
   * The turn's body, resumable: returns true when it stopped at a hop (`#resume` continues it), false when the
   * turn is over.
   */
  #run(): boolean {
    const debug = this._debug;
    for (;;) {
      if (this.#tBatch === null && !this.#beginIteration()) return false;
      const batch = this.#tBatch!;
      const n = this.#tN;

      // 4. Run the snapshot. Each resumed task step runs to its next suspension before the next callback.
      if (!this.#tInDeferred) {
        // Locals in the loop, written back to the fields only at a hop.
        let i = this.#tI;
        let stage = this.#tStage;
        const names = this.#tNames;
        while (i < n) {
          let h: Handle;
          if (stage === 0) {
            h = batch[i]!;
            batch[i] = null;
            if (h._cancelled) {
              i++;
              continue;
            }
            if (names !== null) names.push(safeName(h));
            if (debug) this.#tT0 = systemClock.time();
            stage = 1;
            // Before a task step starts, let microtasks queued by earlier plain callbacks run, so none of their
            // then() calls is taken for the new step's suspension.
            if (h._task !== null && this.#tDirty) {
              this.#tH = h;
              this.#tI = i;
              this.#tStage = 1;
              return this.#hop();
            }
          } else {
            h = this.#tH!;
          }
          if (stage === 1) {
            this.#runHandle(h);
            this.#tHops = 0;
            stage = 2;
          }
          if (stage === 2) {
            const next = this.#stepWait();
            if (next !== 0) {
              this.#tH = h;
              this.#tI = i;
              this.#tStage = next;
              return this.#hop();
            }
            this.#tDirty = true;
          } else {
            // stage 3: back from the follow-up hop.
            rt.task?._endOfStep();
            rt.task = null;
            this.#tDirty = false;
          }
          this.#tH = null;
          stage = 0;
          i++;
          if (debug) {
            const dt = systemClock.time() - this.#tT0;
            if (dt >= this.slowCallbackDuration) this.#warn(`Executing ${safeString(h)} took ${dt.toFixed(3)} seconds`);
          }
        }
        this.#tI = i;
        this.#tStage = 0;
        this._spare = batch;
        if (this._deferred.length === 0) {
          if (!this.#endIteration(n, 0)) return false;
          continue;
        }
        this.#tInDeferred = true;
      }

      // 5. End of iteration: transports flush corked writes here, in the same libuv turn.
      const deferred = this._deferred;
      while (this.#tDI < deferred.length) {
        if (this.#tStage === 0) {
          const cb = deferred[this.#tDI]!;
          try {
            cb();
          } catch (e) {
            this.callExceptionHandler({ message: `Exception in deferred callback ${callbackName(cb)}`, exception: e });
          }
          this.#tHops = 0;
          this.#tStage = 2;
        }
        if (this.#tStage === 2) {
          const next = this.#stepWait();
          if (next !== 0) {
            this.#tStage = next;
            return this.#hop();
          }
        } else {
          rt.task?._endOfStep();
          rt.task = null;
        }
        this.#tStage = 0;
        this.#tDI++;
      }
      const deferredRun = this.#tDI;
      deferred.length = 0;
      this.#tDI = 0;
      this.#tInDeferred = false;
      if (!this.#endIteration(n, deferredRun)) return false;
    }
  }

  /** Closes the iteration (trace record, stop, turn budget); false when the turn ends with it. */
  #endIteration(n: number, deferredRun: number): boolean {
    this.#tBatch = null;
    this._iteration++;
    const tracer = this._tracer;
    if (tracer !== null && this.#tNames !== null) {
      const duration = systemClock.time() - this.#tTraceStart;
      const nextReady: string[] = [];
      const ready = this._ready;
      for (let i = 0; i < this._readyN; i++) {
        const h = ready[i]!;
        if (h !== null && !h._cancelled) nextReady.push(safeName(h));
      }
      let r: unknown;
      try {
        r = tracer({
          iteration: this._iteration,
          time: this.#tIterTime,
          wait: this.#tWait,
          jumped: this.#tJumped,
          timersDue: this.#tTimersDue,
          ready: n,
          callbacks: this.#tNames,
          deferred: deferredRun,
          nextReady,
          timers: this._heap.size,
          cancelledTimers: this._heap.cancelled,
          compacted: this.#tCompactedThis,
          duration,
        });
      } catch (e) {
        this.callExceptionHandler({ message: 'Exception in tracer', exception: e });
      }
      // An async tracer: its rejection would be an unhandled rejection, which ends a Node process.
      if (r instanceof Promise) r.then(undefined, (e: unknown) => this.callExceptionHandler({ message: 'Exception in tracer', exception: e }));
      this.#tNames = null;
    }
    if (this._stopping) {
      this.#finishRun();
      return false;
    }
    // Each iteration weighs at least 8, so the clock is read at least every 8 iterations however few callbacks
    // they run: a turn of long callbacks still yields to libuv (I/O, process.nextTick) close to the budget.
    this.#tWork += n + 8;
    if (this.#tWork >= 64) {
      this.#tWork = 0;
      if (systemClock.time() - this.#tStart >= LOOP_TURN_BUDGET) {
        // Yield to libuv so I/O (poll phase) runs; continue in its check phase.
        this._armImmediate();
        return false;
      }
    }
    return true;
  }
}

/**
 * Debug mode's check of a callback (asyncio `_check_callback`: a non-function would only fail when it runs), then
 * the creation stack (`skip` counts this frame too). Out of line, so callSoon stays as small as without it.
 */
function debugCheck(callback: unknown, method: string, skip: number): string {
  if (typeof callback !== 'function') throw new TypeError(`a callable object was expected by ${method}(), got ${String(callback)}`);
  return captureStack(skip);
}
