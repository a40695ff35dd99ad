/**
 * {@link Task}: a Future that drives an async function (or a `function*` generator yielding Futures, PEP 3156
 * style) on the loop, one atomic step at a time, with asyncio's cancellation.
 *
 * How a step stays atomic without blocking (docs/event-loop-internals.md#atomic-task-steps): a step starts when the
 * task starts or when the Future it awaits wakes it (a ready callback), and `rt.inFlight` counts it. It ends when,
 * inside the task, `then()` is called on a pending Future of ours (the task suspends; see `Future.then`) or when the
 * task's promise settles. After each ready callback the loop lets microtasks run until no step is in flight, so the
 * task reaches its next suspension before the loop runs the next callback, exactly as asyncio's `Task.__step`.
 */
import { CancelledError, InvalidStateError, isCancelledError } from '../errors.js';
import type { EventLoop } from './event-loop.js';
import { callReaction, CANCELLED, ERRORED, FINISHED, Future, PENDING, reprFuture, wrapPromise } from './futures.js';
import { foreignTaskInContext, rt } from './state.js';

/** What `createTask` accepts: an async function, or a generator function yielding Futures. */
export type TaskFunction<T> = () => PromiseLike<T> | T | Generator<unknown, T, any>;

/** Options of `loop.createTask`. */
export interface TaskOptions {
  /** The task's name (default `Task-N`). */
  name?: string;
  /** Cancels the task when this signal aborts (the abort reason's message becomes the cancel message). */
  signal?: AbortSignal;
}

let taskCounter = 0;

/**
 * A scheduled async function (asyncio's `Task`). Created by `loop.createTask(fn)`; its first step runs on the
 * loop's next iteration, never synchronously. The loop holds a strong reference while it is pending.
 */
export class Task<T = unknown> extends Future<T> {
  /** @internal */ _fn: TaskFunction<T> | null;
  /** @internal Explicit name, or null for `Task-<_id>` (built only when asked for). */ _nameOrNull: string | null;
  /** @internal */ _id: number;
  /** @internal True from the start of an atomic step until the task suspends or settles. */ _stepping = false;
  /** @internal asyncio `_must_cancel`: throw CancelledError into the task at its next resumption. */ _mustCancel = false;
  /** @internal */ _numCancelsRequested = 0;
  /** @internal The Future the task is suspended on (asyncio `_fut_waiter`). */ _futWaiter: Future<any> | null = null;
  /** @internal The Future of the most recent registration (the await the task is suspended on). */ _regFut: Future<any> | null = null;
  /** @internal The resume functions of that await. */ _resF: ((v: any) => unknown) | null | undefined = null;
  /** @internal */ _resR: ((e: any) => unknown) | null | undefined = null;
  /** @internal */ _resD: Future<any> | null = null;
  /**
   * @internal Older registrations of the same step: an explicit `fut.then(a, b)` (or `finally`) inside a task
   * looks like an await, but the task goes on to its real await; those run as plain reactions when their Future
   * is done, in registration order.
   */
  _stale: StaleReaction[] | null = null;
  /** @internal The CancelledError the task's body ended with. */ _cancelledExc: CancelledError | null = null;
  /** @internal Generator tasks: the generator. */ _gen: Generator<unknown, T, any> | null = null;
  /** @internal True when the body was started inside the foreign-await store (`rt.als`). */ _tracked = false;
  /**
   * @internal True while the body runs or is suspended outside a tracked step: its step was abandoned because it
   * awaited a foreign promise (counted in `rt.foreign`). Its next `then()` on a pending Future in its own async
   * context becomes a real suspension again.
   */
  _foreign = false;
  /**
   * @internal False for the Tasks made on the caller's behalf (by `gather()` or `runUntilComplete()` for a
   * function): `close()` does not report them pending, as asyncio's `_log_destroy_pending = False`. On the prototype (true), so an ordinary Task pays nothing for it.
   */
  declare _logDestroyPending: boolean;
  /** @internal */ _signal: AbortSignal | null = null;
  /** @internal */ _onAbort: (() => void) | null = null;

  /** @internal Use `loop.createTask(fn, opts)`. */
  constructor(fn: TaskFunction<T>, loop: EventLoop, options?: TaskOptions) {
    super(loop);
    // asyncio's create_task refuses an async generator at once ("a coroutine was expected"): driven as a task body,
    // its object would pass for a generator whose every next() is a bare yield, and the task would spin forever.
    if (Object.prototype.toString.call(fn) === '[object AsyncGeneratorFunction]') {
      throw new TypeError(`a Task cannot run an async generator function (${fn.name || 'anonymous'}): iterate it with for await inside an async function`);
    }
    this._fn = fn;
    const name = options?.name;
    this._nameOrNull = name == null ? null : String(name);
    this._id = ++taskCounter;
    loop._callSoonStep(this, null);
    loop._tasks.add(this as Task<unknown>);
    const signal = options?.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.cancel(abortMessage(signal));
      } else {
        this._signal = signal;
        this._onAbort = () => this.cancel(abortMessage(signal));
        signal.addEventListener('abort', this._onAbort, { once: true });
      }
    }
  }

  /** The task's name. */
  getName(): string {
    return this._nameOrNull ?? `Task-${this._id}`;
  }

  /** @internal The name (for traces and messages). */
  get _name(): string {
    return this._nameOrNull ?? `Task-${this._id}`;
  }

  /** Renames the task. */
  setName(name: string): void {
    this._nameOrNull = String(name);
  }

  /**
   * Requests cancellation (asyncio `Task.cancel`): the `await` the task is suspended on throws `CancelledError`
   * (or, if it is running or about to resume, its next resumption does). The task may catch it and clean up.
   * Returns false when the task is already done. Each call increments {@link cancelling}.
   */
  override cancel(msg?: string): boolean {
    this._markRetrieved(); // asyncio's `_log_traceback = False`, also on a done task
    if (this._state !== PENDING) return false;
    this._numCancelsRequested++;
    const w = this._futWaiter;
    // Leave _futWaiter set: it may be a Task that catches and ignores the cancel, so we may cancel it again later.
    // While the loop still holds this task's step (rt.task), its registration may be an explicit `fut.then(a, b)`
    // of a body that is still running, not its await: wait for the step's await (`_suspendOn`, or `_endOfStep`).
    if (w !== null && !(rt.task === (this as Task<unknown>) && w === this._regFut) && w.cancel(msg)) return true;
    this._mustCancel = true;
    this._cancelMessage = msg;
    return true;
  }

  /**
   * @internal The loop is done with this task's step (its follow-up hop ran): the registration it holds is its
   * await, so a cancel requested while that was not known yet (see `cancel`) cancels it now.
   */
  _endOfStep(): void {
    if (this._mustCancel && this._state === PENDING && !this._stepping) {
      const w = this._regFut;
      if (w !== null && w === this._futWaiter && w.cancel(this._cancelMessage)) this._mustCancel = false;
    }
  }

  /** How many cancellation requests are pending (asyncio 3.11 `cancelling()`). */
  cancelling(): number {
    return this._numCancelsRequested;
  }

  /** Decrements {@link cancelling} and returns the new count (used by timeouts and TaskGroup). */
  uncancel(): number {
    if (this._numCancelsRequested > 0) {
      this._numCancelsRequested--;
      if (this._numCancelsRequested === 0) this._mustCancel = false;
    }
    return this._numCancelsRequested;
  }

  /** A Task's result comes from its function. @throws InvalidStateError always. */
  override setResult(_value: T): void {
    throw new InvalidStateError('Task does not support setResult()');
  }

  /** A Task's exception comes from its function. @throws InvalidStateError always. */
  override setException(_exception: unknown): void {
    throw new InvalidStateError('Task does not support setException()');
  }

  /**
   * As asyncio's repr, without the coroutine: `<Task pending name=Task-1 wait_for=<Future pending>>` while it is
   * suspended on a Future (`cancelling` once a cancel is requested), `<Task finished name=Task-1 result=42>` or
   * `… exception=Error: boom>` when done, `<Task cancelled name=Task-1>`.
   */
  override toString(): string {
    return super.toString();
  }

  /** @internal */
  override _reprInfo(): string {
    const pending = this._state === PENDING;
    const state = pending && this._numCancelsRequested > 0 ? 'cancelling' : this._stateName();
    const w = this._futWaiter;
    const waitFor = pending && w !== null ? ` wait_for=${reprFuture(w)}` : '';
    return `${state} name=${this._name}${waitFor}${this._outcomeRepr()}`;
  }

  /** @internal */
  override _makeCancelledError(): CancelledError {
    if (this._cancelledExc !== null) return this._cancelledExc;
    return new CancelledError(this._cancelMessage);
  }

  // ---- stepping ---------------------------------------------------------------------------------------------

  /** @internal The first step (a ready callback). */
  _start(): void {
    if (this._state !== PENDING) {
      // Finished behind its back (`Future.prototype.setResult.call(task, v)`): the body never runs, and the step
      // fails loudly, as asyncio's `__step` does ("Exception in callback …").
      this._fn = null;
      this._loop._tasks.delete(this as Task<unknown>);
      throw new InvalidStateError(`step(): already done: ${String(this)}`);
    }
    const fn = this._fn!;
    this._fn = null;
    if (this._mustCancel) {
      // Cancelled before it started: asyncio throws into the unstarted coroutine, so the body never runs.
      this._mustCancel = false;
      this._finish(false, new CancelledError(this._cancelMessage));
      return;
    }
    rt.task = this as Task<unknown>;
    this._stepping = true;
    rt.inFlight++;
    let r: unknown;
    try {
      const als = rt.als;
      if (als === null) {
        r = fn();
      } else {
        this._tracked = true;
        r = als.run(this as Task<unknown>, fn);
      }
    } catch (e) {
      this._endStep();
      this._finish(false, e);
      return;
    }
    if (r !== null && typeof r === 'object' && typeof (r as Generator).next === 'function' && typeof (r as Generator).throw === 'function' && typeof (r as PromiseLike<T>).then !== 'function') {
      this._endStep();
      // An async generator object (a plain function returned one): not a body a Task can drive (see the constructor).
      if (typeof (r as AsyncGenerator)[Symbol.asyncIterator] === 'function') {
        this._finish(false, new TypeError('a Task body returned an async generator: iterate it with for await inside an async function'));
        return;
      }
      this._gen = r as Generator<unknown, T, any>;
      this._genStep(false, undefined);
      return;
    }
    if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof (r as PromiseLike<T>).then === 'function') {
      if (this._tracked) {
        this._awaitBodyTracked(r as PromiseLike<T>);
        return;
      }
      (r as PromiseLike<T>).then(
        (v) => this._finish(true, v),
        (e) => this._finish(false, e),
      );
      return;
    }
    this._endStep();
    this._finish(true, r as T);
  }

  /**
   * @internal Waits for the body's promise from inside the task's async context: when the body returned a Future,
   * this then() is the task's own await, and `Future.then` checks the context to know whose code is calling.
   */
  _awaitBodyTracked(r: PromiseLike<T>): void {
    rt.als!.run(this as Task<unknown>, thenIn, r, (v: T) => this._finish(true, v), (e: unknown) => this._finish(false, e));
  }

  /**
   * @internal Called by `Future.then` when this task awaits the pending Future `fut`: while stepping (the step ends
   * here), or right after an earlier registration of the same step (`rt.task` is kept until the loop has let the
   * step's follow-up microtasks run), in which case this later one is the real await.
   */
  _suspend(fut: Future<any>, onF: ((v: any) => unknown) | null | undefined, onR: ((e: any) => unknown) | null | undefined, derived: Future<any>): void {
    if (this._stepping) {
      this._stepping = false;
      rt.inFlight--;
    } else if (this._regFut !== null) {
      (this._stale ??= []).push({ fut: this._regFut, onF: this._resF, onR: this._resR, derived: this._resD! });
    }
    // Awaiting itself, or a Future of another loop, would never wake (or wake on the wrong loop): the await throws
    // on the next iteration instead (asyncio's RuntimeError). Kept out of line: this is every await's path.
    if (fut._loop !== this._loop || fut === (this as Future<any>)) {
      this._suspendOn(failedFuture(this._loop, badAwaitError(this, fut)), onF, onR, derived);
      return;
    }
    this._suspendOn(fut, onF, onR, derived);
  }

  private _suspendOn(fut: Future<any>, onF: ((v: any) => unknown) | null | undefined, onR: ((e: any) => unknown) | null | undefined, derived: Future<any>): void {
    this._futWaiter = fut;
    this._regFut = fut;
    this._resF = onF;
    this._resR = onR;
    this._resD = derived;
    if (fut._state !== PENDING) {
      // sleep(0): a done Future that still yields one iteration.
      this._loop._callSoonStep(this, fut);
    } else {
      fut._addCallback(this);
    }
    if (this._mustCancel && fut.cancel(this._cancelMessage)) this._mustCancel = false;
  }

  /**
   * @internal Called by `Future.then` when this task's body, running untracked after a foreign await (`_foreign`),
   * awaits the pending Future `fut`: the task is suspended on it exactly as in `_suspend`, so its wake-up is a
   * tracked atomic step again and `cancel()` (also one requested while it ran untracked) throws into the body.
   */
  _suspendForeign(fut: Future<any>, onF: ((v: any) => unknown) | null | undefined, onR: ((e: any) => unknown) | null | undefined, derived: Future<any>): void {
    this._clearForeign();
    this._suspend(fut, onF, onR, derived);
  }

  /** @internal The step in flight did not reach a suspension (a foreign await): it is no longer counted. */
  _abandonStep(): void {
    if (this._stepping) {
      this._stepping = false;
      rt.inFlight--;
    }
    if (this._tracked && !this._foreign && this._state === PENDING) {
      this._foreign = true;
      rt.foreign++;
    }
  }

  /** @internal */
  _clearForeign(): void {
    if (this._foreign) {
      this._foreign = false;
      rt.foreign--;
    }
  }

  /** @internal Done callback of the awaited Future: resumes the task (a new atomic step). */
  _wakeup(fut: unknown): void {
    return this._wakeupFrom(fut as Future<any>);
  }

  /** @internal */
  _wakeupFrom(fut: Future<any>): void {
    if (this._gen !== null) {
      this._futWaiter = null;
      if (this._mustCancel) {
        this._mustCancel = false;
        this._genStep(true, this._pendingCancelError(fut));
      } else if (fut._state === FINISHED) {
        this._genStep(false, fut._result);
      } else {
        const err = fut._state === CANCELLED ? fut._makeCancelledError() : fut._exception;
        fut._markRetrieved();
        this._genStep(true, err);
      }
      return;
    }
    const stale = this._stale;
    if (stale !== null) {
      const i = stale.findIndex((r) => r.fut === fut);
      if (i >= 0) {
        const r = stale[i]!;
        stale.splice(i, 1);
        if (stale.length === 0) this._stale = null;
        runPlainReaction(fut, r);
        return;
      }
    }
    if (this._regFut !== fut) return;
    this._futWaiter = null;
    this._regFut = null;
    const onF = this._resF;
    const onR = this._resR;
    const d = this._resD!;
    this._resF = this._resR = null;
    this._resD = null;
    rt.task = this as Task<unknown>;
    this._stepping = true;
    rt.inFlight++;
    let handler: ((v: any) => unknown) | null | undefined;
    let arg: unknown;
    if (this._mustCancel) {
      this._mustCancel = false;
      handler = onR;
      arg = this._pendingCancelError(fut);
    } else if (fut._state === FINISHED) {
      handler = onF;
      arg = fut._result;
    } else {
      handler = onR;
      arg = fut._state === CANCELLED ? fut._makeCancelledError() : fut._exception;
      fut._markRetrieved();
    }
    if (typeof handler === 'function') callReaction(handler, arg, d);
    else if (handler === onF) d._settleQuiet(arg);
    else d.setException(arg);
  }

  /** @internal The CancelledError thrown into the task for a pending cancel request. */
  _makeCancelError(): CancelledError {
    return new CancelledError(this._cancelMessage);
  }

  /**
   * @internal The CancelledError a pending cancel request throws into the task as it wakes from `fut` (asyncio's
   * `__step`: `if not isinstance(exc, CancelledError): exc = self._make_cancelled_error()`): the CancelledError the
   * awaited Future ended with, when it was cancelled or failed with one (a second `cancel('b')` after the one that
   * cancelled the Future, or a gather's children, with 'a' does not replace 'a'), else a new one. Either way `fut`'s
   * exception counts as retrieved, as asyncio's `__wakeup` reads it with `result()`.
   */
  _pendingCancelError(fut: Future<any>): CancelledError {
    const s = fut._state;
    if (s === CANCELLED) return fut._makeCancelledError();
    if (s === ERRORED) {
      fut._markRetrieved();
      if (isCancelledError(fut._exception)) return fut._exception;
    }
    return this._makeCancelError();
  }

  /** @internal Ends the current step (the task settled or suspended). */
  _endStep(): void {
    if (this._stepping) {
      this._stepping = false;
      rt.inFlight--;
      if (rt.task === (this as Task<unknown>)) rt.task = null;
    }
  }

  /** @internal The task's body ended with a value (ok) or an exception. */
  _finish(ok: boolean, v: unknown): void {
    this._endStep();
    this._clearForeign();
    if (this._state !== PENDING) return;
    this._futWaiter = null;
    if (this._regFut !== null) {
      // The body ended after registering this: it was an explicit `fut.then(a, b)`, not an await. It stays a plain
      // reaction, run when its Future is done (`_wakeupFrom` finds it among the stale ones).
      (this._stale ??= []).push({ fut: this._regFut, onF: this._resF, onR: this._resR, derived: this._resD! });
      this._regFut = null;
      this._resF = this._resR = null;
      this._resD = null;
    }
    this._loop._tasks.delete(this as Task<unknown>);
    this._detachSignal();
    if (ok) {
      if (this._mustCancel) {
        // Cancelled right before the body returned (asyncio does the same).
        this._mustCancel = false;
        this._cancelledExc = new CancelledError(this._cancelMessage);
        this._state = CANCELLED;
        this._scheduleCallbacks();
      } else {
        this._state = FINISHED;
        this._result = v as T;
        this._scheduleCallbacks();
      }
    } else if (isCancelledError(v)) {
      this._cancelledExc = v;
      this._cancelMessage = v.message;
      this._state = CANCELLED;
      this._scheduleCallbacks();
    } else {
      this._setExceptionInternal(v, 'Task exception was never retrieved');
    }
  }

  /** @internal One step of a generator task: send a value or throw an error into it. */
  _genStep(isThrow: boolean, value: unknown): void {
    if (this._state !== PENDING) return;
    const gen = this._gen!;
    const prev = rt.task;
    rt.task = this as Task<unknown>;
    let r: IteratorResult<unknown, T>;
    try {
      const als = rt.als;
      if (this._tracked && als !== null) {
        // Each send runs in the task's async context, as an async body does (currentTask() checks it).
        r = als.run(this as Task<unknown>, genSend<T>, gen, isThrow, value);
      } else {
        r = isThrow ? gen.throw(value) : gen.next(value);
      }
    } catch (e) {
      rt.task = prev;
      this._finish(false, e);
      return;
    }
    rt.task = prev;
    if (r.done === true) {
      this._finish(true, r.value);
      return;
    }
    let y = r.value;
    if (y === null || y === undefined) {
      // A bare yield: resume on the next iteration (asyncio's `sleep(0)`).
      const h = this._loop._callSoon1(() => this._genResumeBare(), undefined);
      h._name = `${this._name}.step`;
      return;
    }
    if (!(y instanceof Future)) {
      if (typeof (y as PromiseLike<unknown>).then === 'function') {
        y = wrapPromise(y as PromiseLike<unknown>, this._loop);
      } else {
        const err = new TypeError(`Task got bad yield: ${String(y)}`);
        this._loop._callSoon1(() => this._genThrow(err), undefined);
        return;
      }
    }
    const fut = y as Future<unknown>;
    if (fut._loop !== this._loop || fut === (this as Future<unknown>)) {
      const err = badAwaitError(this, fut);
      this._loop._callSoon1(() => this._genThrow(err), undefined);
      return;
    }
    this._futWaiter = fut;
    if (fut._state !== PENDING) this._loop._callSoonStep(this, fut);
    else fut._addCallback(this);
    if (this._mustCancel && fut.cancel(this._cancelMessage)) this._mustCancel = false;
  }

  /**
   * @internal Throws `err` (a bad yield's error) into the generator, or the CancelledError of a cancel requested
   * meanwhile: asyncio's `__step` replaces its RuntimeError with the cancel (`if self._must_cancel: …`).
   */
  _genThrow(err: unknown): void {
    if (this._mustCancel) {
      this._mustCancel = false;
      this._genStep(true, this._makeCancelError());
    } else {
      this._genStep(true, err);
    }
  }

  /** @internal */
  _genResumeBare(): void {
    if (this._mustCancel) {
      this._mustCancel = false;
      this._genStep(true, this._makeCancelError());
    } else {
      this._genStep(false, undefined);
    }
  }

  /** @internal */
  _detachSignal(): void {
    if (this._signal !== null && this._onAbort !== null) {
      this._signal.removeEventListener('abort', this._onAbort);
      this._signal = null;
      this._onAbort = null;
    }
  }
}

Task.prototype._logDestroyPending = true;

/** @internal An older registration of a task (see `Task._stale`). */
interface StaleReaction {
  fut: Future<any>;
  onF: ((v: any) => unknown) | null | undefined;
  onR: ((e: any) => unknown) | null | undefined;
  derived: Future<any>;
}

function runPlainReaction(fut: Future<any>, r: StaleReaction): void {
  if (fut._state === FINISHED) {
    if (typeof r.onF === 'function') callReaction(r.onF, fut._result, r.derived);
    else r.derived._settleQuiet(fut._result);
  } else {
    const err = fut._state === CANCELLED ? fut._makeCancelledError() : fut._exception;
    fut._markRetrieved();
    if (typeof r.onR === 'function') callReaction(r.onR, err, r.derived);
    else r.derived.setException(err);
  }
}

/** `p.then(onV, onE)`, as a plain function (no closure over the caller's locals on the hot path). */
function thenIn<T>(p: PromiseLike<T>, onV: (v: T) => void, onE: (e: unknown) => void): void {
  p.then(onV, onE);
}

/** One send into a generator task's generator, as a plain function (see {@link thenIn}). */
function genSend<T>(gen: Generator<unknown, T, any>, isThrow: boolean, value: unknown): IteratorResult<unknown, T> {
  return isThrow ? gen.throw(value) : gen.next(value);
}

function badAwaitError(task: Task<any>, fut: Future<any>): InvalidStateError {
  if (fut === task) return new InvalidStateError(`Task cannot await on itself: ${task}`);
  return new InvalidStateError(`Task ${task} got Future ${fut} attached to a different loop`);
}

/** A Future already failed with `exc` (nobody else sees it, so no "never retrieved" bookkeeping). */
function failedFuture(loop: EventLoop, exc: unknown): Future<any> {
  const f = new Future<any>(loop);
  f._state = ERRORED;
  f._exception = exc;
  return f;
}

function abortMessage(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r.message;
  return r === undefined ? 'aborted' : String(r);
}

/**
 * The task whose code is running (asyncio's `current_task()`), or null outside a task while a loop is running (in
 * one of its callbacks, or between its turns). With foreign-await tracking
 * (`run()` turns it on) this stays right after the task awaited a promise not made by tulipwire.
 * @param loop only a task of this loop counts; with it, the call never throws.
 * @throws InvalidStateError when called without `loop` while no loop is running (asyncio's RuntimeError).
 */
export function currentTask(loop?: EventLoop): Task<unknown> | null {
  let t = rt.task;
  if (rt.foreign > 0) {
    // A task resumed from a foreign await runs outside the loop's step bookkeeping, maybe while another task's
    // step is in flight: its async context names it.
    const f = foreignTaskInContext();
    if (f !== null) t = f;
  }
  // `rt.task` only says whose step is in flight; with tracking on, code of another origin running in the same
  // microtask hops (a plain callback's promise chain) is told apart by its async context.
  if (t !== null && t._tracked && rt.als !== null && rt.als.getStore() !== t) return null;
  if (t === null) {
    // asyncio's current_task() without a loop asks for the running loop, and there is none (test_current_task_no_running_loop_implicit).
    if (loop === undefined && rt.executing === null && rt.running.length === 0) throw new InvalidStateError('no running event loop');
    return null;
  }
  if (loop !== undefined && t._loop !== loop) return null;
  return t;
}

/** Every pending task of `loop` (default: the running loop). Strong references: pending tasks are never lost. */
export function allTasks(loop?: EventLoop): Set<Task<unknown>> {
  const l = loop ?? rt.executing ?? rt.task?._loop ?? rt.running[rt.running.length - 1];
  if (l === undefined) return new Set();
  return new Set([...l._tasks].filter((t) => t._state === PENDING));
}

