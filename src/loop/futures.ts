/**
 * {@link Future}: asyncio's Future, and a thenable, so `await fut` works in any async function.
 *
 * Done callbacks always run through `loop.callSoon` (asyncio `futures.py:170`), never synchronously. Awaiting a
 * pending Future inside a Task is the Task's suspension point: `then()` notices the stepping task (a module
 * variable; AsyncLocalStorage made awaits 2–3x slower on Node 20), ends its atomic step and records the Future as
 * the one the task waits on, so `task.cancel()` can cancel it and make the `await` throw `CancelledError`.
 */
import { CancelledError, InvalidStateError } from '../errors.js';
import type { EventLoop } from './event-loop.js';
import type { StepTarget } from './events.js';
import { captureStack, foreignTaskInContext, getRunningLoop, rt } from './state.js';

/** @internal Future states (asyncio `_PENDING`, `_FINISHED` with a result or an exception, `_CANCELLED`). */
export const PENDING = 0;
/** @internal */
export const FINISHED = 1;
/** @internal */
export const ERRORED = 2;
/** @internal */
export const CANCELLED = 3;

/** A done callback: receives the Future once it is done. */
export type DoneCallback<T> = (future: Future<T>) => void;

/** @internal A registration: a done callback, or a Task awaiting the Future (woken with a step handle). */
type Waiter = DoneCallback<any> | StepTarget;

interface Unretrieved {
  loop: EventLoop;
  message: string;
  exception: unknown;
  sourceTraceback: string | undefined;
  /** The Future's description when it failed (`<Task finished name=… exception=…>`): it is gone by the time this is reported. */
  future: string;
  /** A weak reference to the Future, its entry in {@link pendingReports} (so `run()` can report it before GC does). */
  ref: WeakRef<Future<any>>;
}

// "exception was never retrieved": registered on setException, unregistered as soon as someone reads the exception
// (result(), exception(), an await). Held values never reference the Future itself, or it could never be collected.
const unretrieved = new FinalizationRegistry<Unretrieved>((held) => {
  pendingReports.get(held.loop)?.delete(held.ref);
  const ctx: Record<string, unknown> = { message: held.message, exception: held.exception, future: held.future };
  if (held.sourceTraceback !== undefined) ctx.sourceTraceback = held.sourceTraceback;
  held.loop.callExceptionHandler(ctx as { message: string });
});

/**
 * Per loop, weak references to its failed Futures whose exception nobody has read yet. Garbage collection may never
 * come in a short program (Node exits first), so `run()` reports those still alive when `main` is over
 * ({@link reportUnretrieved}), as CPython's reference counting reports them about when the last reference goes.
 * An entry leaves when the exception is read or the Future is collected.
 */
const pendingReports = new WeakMap<EventLoop, Set<WeakRef<Future<any>>>>();
/** What each registered Future was registered with (its entry in {@link pendingReports} is `.ref`). */
const reportRefs = new WeakMap<Future<any>, Unretrieved>();

/** A description for reports; `<Future>` when formatting throws (a result or exception with a hostile toString). */
function describeFuture(f: Future<any>): string {
  try {
    return f.toString();
  } catch {
    return `<${f.constructor.name}>`;
  }
}

/**
 * @internal Reports, through `loop`'s exception handler, every failed Future of `loop` still alive whose exception
 * was never retrieved ("Task exception was never retrieved", with the Future as `future`), and forgets them (no
 * second report at GC). `run()` calls it when `main` and the tasks it cancelled are done.
 */
export function reportUnretrieved(loop: EventLoop): void {
  const refs = pendingReports.get(loop);
  if (refs === undefined) return;
  pendingReports.delete(loop);
  for (const ref of refs) {
    const f = ref.deref();
    const held = f === undefined ? undefined : reportRefs.get(f);
    if (f === undefined || held === undefined || !f._logPending) continue;
    f._logPending = false;
    unretrieved.unregister(f);
    reportRefs.delete(f);
    const ctx: Record<string, unknown> = { message: held.message, exception: held.exception, future: f };
    if (held.sourceTraceback !== undefined) ctx.sourceTraceback = held.sourceTraceback;
    loop.callExceptionHandler(ctx as { message: string });
  }
}

/** Futures whose toString() is running (the recursion guard of {@link Future.toString}). */
const formatting = new Set<Future<any>>();

/**
 * The longest text a Future's repr shows for its result or exception: longer is cut in the middle (`start...end`),
 * as asyncio formats a result with `reprlib.repr`. A repr is one line of a log or an error message (the default
 * exception handler prints the `task`/`future` of every report, loop close reports every pending Task): a megabyte
 * result must not make it a megabyte.
 */
const REPR_VALUE_LIMIT = 120;
/**
 * How many Futures deep a repr shows Futures inside Futures (a Task's `wait_for=`, a result that is a Future);
 * deeper ones show as `<Task ...>`. reprlib's `maxlevel` is 6 too. Without it a chain of Tasks each waiting on the next
 * formats the whole chain: output quadratic in its length at loop close, a RangeError past a few thousand.
 */
const REPR_MAX_DEPTH = 6;

/** `String(value)` for a repr: never throws (`<unprintable Name>`), cut to {@link REPR_VALUE_LIMIT}. */
function reprValue(value: unknown): string {
  let s: string;
  try {
    s = String(value);
  } catch {
    s = `<unprintable ${typeName(value)}>`;
  }
  if (s.length <= REPR_VALUE_LIMIT) return s;
  const head = Math.ceil((REPR_VALUE_LIMIT - 3) / 2);
  return `${s.slice(0, head)}...${s.slice(s.length - (REPR_VALUE_LIMIT - 3 - head))}`;
}

/** @internal A Future's repr for another Future's (a Task's `wait_for=`): never throws (a subclass's own toString may). */
export function reprFuture(f: Future<any>): string {
  try {
    return String(f.toString());
  } catch {
    return `<${typeName(f)}>`;
  }
}

// The constructor's name, for a value that cannot be printed (a null-prototype object: `object`).
function typeName(value: unknown): string {
  try {
    const name = (value as { constructor?: { name?: unknown } } | null | undefined)?.constructor?.name;
    return typeof name === 'string' && name !== '' ? name : typeof value;
  } catch {
    return typeof value; // a revoked Proxy
  }
}

/**
 * The result of an asynchronous operation (asyncio's `Future`). Create one with `loop.createFuture()`; a Future is
 * bound to one loop. `await fut` gives the result, throws the exception, or throws `CancelledError`.
 */
export class Future<T = unknown> implements PromiseLike<T> {
  // Invariant: _state only moves PENDING → FINISHED | ERRORED | CANCELLED, once; callbacks are scheduled exactly then.
  /** @internal */ _state = PENDING;
  /** @internal */ _result: T | undefined = undefined;
  /** @internal */ _exception: unknown = undefined;
  /** @internal */ _loop: EventLoop;
  /** @internal First done callback (most Futures have one: the awaiting task, as the Task itself). */ _cb0: Waiter | null = null;
  /** @internal Further done callbacks, in registration order. */ _cbs: Waiter[] | null = null;
  /** @internal */ _cancelMessage: string | undefined = undefined;
  /** @internal A done Future that still makes an awaiting task yield one iteration (`sleep(0)`). */ _forceYield = false;
  /** @internal True while registered as "exception never retrieved". */ _logPending = false;
  /** @internal Creation stack in debug mode. */ _sourceTraceback: string | undefined = undefined;

  /**
   * A pending Future bound to `loop` (default: the running loop).
   * @throws InvalidStateError when no loop is given and none is running.
   */
  constructor(loop?: EventLoop) {
    const l = loop ?? getRunningLoop();
    this._loop = l;
    if (l._debug) this._sourceTraceback = captureStack(3);
  }

  /** The loop this Future belongs to. */
  getLoop(): EventLoop {
    return this._loop;
  }

  /** True once the Future has a result, an exception, or was cancelled. */
  done(): boolean {
    return this._state !== PENDING;
  }

  /** True when the Future was cancelled. */
  cancelled(): boolean {
    return this._state === CANCELLED;
  }

  /**
   * The result.
   * @throws CancelledError when cancelled; InvalidStateError while pending; the stored exception when it has one.
   */
  result(): T {
    const s = this._state;
    if (s === FINISHED) return this._result as T;
    if (s === CANCELLED) throw this._makeCancelledError();
    if (s === PENDING) throw new InvalidStateError('Result is not set.');
    this._markRetrieved();
    throw this._exception;
  }

  /**
   * The exception, or null when the Future has a result.
   * @throws CancelledError when cancelled; InvalidStateError while pending.
   */
  exception(): unknown {
    const s = this._state;
    if (s === CANCELLED) throw this._makeCancelledError();
    if (s === PENDING) throw new InvalidStateError('Exception is not set.');
    this._markRetrieved();
    return s === ERRORED ? this._exception : null;
  }

  /**
   * Cancels the Future and schedules its callbacks. Returns false when it was already done.
   * @param msg becomes the message of the `CancelledError` awaiters see.
   */
  cancel(msg?: string): boolean {
    // Whoever cancels no longer cares about the exception: no "never retrieved" report (asyncio clears
    // `__log_traceback` first, even when the Future is already done).
    this._markRetrieved();
    if (this._state !== PENDING) return false;
    this._state = CANCELLED;
    this._cancelMessage = msg;
    this._scheduleCallbacks();
    return true;
  }

  /**
   * Marks the Future done with `value` and schedules its callbacks.
   * @throws InvalidStateError when it is already done.
   */
  setResult(value: T): void {
    if (this._state !== PENDING) throw new InvalidStateError(`${this._stateName()}: ${this}`);
    this._state = FINISHED;
    this._result = value;
    this._scheduleCallbacks();
  }

  /**
   * Marks the Future done with `exception` and schedules its callbacks. If nobody ever reads it, the loop's
   * exception handler hears "Future exception was never retrieved" once the Future is garbage-collected. An error
   * class (`setException(RangeError)`) is instantiated first, as asyncio does.
   * @throws InvalidStateError when it is already done.
   */
  setException(exception: unknown): void {
    if (this._state !== PENDING) throw new InvalidStateError(`${this._stateName()}: ${this}`);
    // An error class stands for an instance of it, as asyncio's `set_exception(RuntimeError)` (`exception()` and
    // awaiters get `new RangeError()`, not the constructor).
    if (typeof exception === 'function' && (exception === Error || exception.prototype instanceof Error)) {
      exception = new (exception as new () => Error)();
    }
    this._setExceptionInternal(exception, 'Future exception was never retrieved');
  }

  /**
   * Adds a callback run (through `loop.callSoon`) with this Future once it is done; at once scheduled when it
   * already is.
   */
  addDoneCallback(fn: DoneCallback<T>): void {
    if (this._state !== PENDING) {
      this._loop._callSoon1(fn as (a: unknown) => void, this);
    } else if (this._cb0 === null && this._cbs === null) {
      this._cb0 = fn;
    } else {
      (this._cbs ??= []).push(fn);
    }
  }

  /** Removes every registration of `fn`; returns how many were removed. */
  removeDoneCallback(fn: DoneCallback<T>): number {
    let n = 0;
    if (this._cb0 === fn) {
      this._cb0 = null;
      n++;
    }
    const cbs = this._cbs;
    if (cbs !== null) {
      const kept = cbs.filter((c) => c !== fn);
      n += cbs.length - kept.length;
      this._cbs = kept.length > 0 ? kept : null;
    }
    return n;
  }

  /**
   * Promise-style chaining (so `await fut` works). Inside a Task, awaiting a pending Future suspends the task's
   * atomic step. Returns a new Future for the value `onFulfilled`/`onRejected` return. A call with only one of the
   * two callbacks (`fut.then(cb)`, and `catch`/`finally`) is never the task's suspension: V8's `await` always
   * passes both resolving functions, so such a call is code registering a reaction, and the task goes on running.
   */
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Future<R1 | R2> {
    if (typeof onFulfilled !== 'function' || typeof onRejected !== 'function') return this._thenPlain(onFulfilled, onRejected);
    const derived = new Future<R1 | R2>(this._loop);
    if (this._state === PENDING || this._forceYield) {
      if (rt.foreign !== 0) {
        // A task resumed from a foreign await (untracked) awaits this Future: a real suspension again.
        const f = foreignTaskInContext();
        if (f !== null) {
          f._suspendForeign(this, onFulfilled, onRejected, derived);
          return derived;
        }
      }
      const t = rt.task;
      if (t !== null && (t._stepping || t._regFut !== null)) {
        // The task awaits this Future: its step ends here (docs/event-loop-internals.md#atomic-task-steps). `rt.task`
        // only says that this task's step is in flight; other code (a plain callback's promise chain, another task's
        // continuation) may run in the same microtask hops. With tracking on, the async context tells exactly whose
        // code calls then().
        const als = rt.als;
        if (als === null || !t._tracked || als.getStore() === t) {
          t._suspend(this, onFulfilled, onRejected, derived);
          return derived;
        }
      }
    }
    this._react(derived, onFulfilled, onRejected);
    return derived;
  }

  /** @internal `then()` as a plain reaction, never a task's suspension (`catch`, `finally`, library code). */
  _thenPlain<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Future<R1 | R2> {
    const derived = new Future<R1 | R2>(this._loop);
    this._react(derived, onFulfilled, onRejected);
    return derived;
  }

  /** @internal Registers a Promise-style reaction that settles `derived`. */
  _react<R1, R2>(
    derived: Future<R1 | R2>,
    onFulfilled: ((value: T) => R1 | PromiseLike<R1>) | null | undefined,
    onRejected: ((reason: any) => R2 | PromiseLike<R2>) | null | undefined,
  ): void {
    if (this._state === PENDING) {
      const thenReaction = (f: Future<T>): void => settleDerived(f, derived, onFulfilled, onRejected);
      (thenReaction as { _tulipThen?: boolean })._tulipThen = true;
      this._addCallback(thenReaction);
    } else if (this._forceYield && this._loop._running) {
      this._loop._callSoon1(() => settleDerived(this, derived, onFulfilled, onRejected), undefined);
    } else {
      // Already done: Promise semantics (asynchronous, but without waiting for a loop iteration; asyncio's
      // `await done_future` does not yield either).
      queueMicrotask(() => settleDerived(this, derived, onFulfilled, onRejected));
    }
  }

  /** Promise-style `catch` (a reaction, never the calling task's suspension). */
  catch<R = never>(onRejected?: ((reason: any) => R | PromiseLike<R>) | null): Future<T | R> {
    return this._thenPlain(undefined, onRejected);
  }

  /** Promise-style `finally` (a reaction, never the calling task's suspension). */
  finally(onFinally?: (() => void) | null): Future<T> {
    if (typeof onFinally !== 'function') return this._thenPlain();
    return this._thenPlain(
      (v) => {
        onFinally();
        return v;
      },
      (e) => {
        onFinally();
        throw e;
      },
    );
  }

  /** Makes a Future structurally a Promise for TypeScript (`const p: Promise<T> = fut` type-checks). */
  get [Symbol.toStringTag](): string {
    return this.constructor.name;
  }

  /**
   * `<Future pending>`, `<Future finished result=…>`, as asyncio's repr. A result that formats this Future again (a
   * Future holding itself, or a list holding it) shows it as `...` (asyncio's `reprlib.recursive_repr` guard). Never
   * throws, and stays bounded: a result or exception is shown as `String(value)` cut to 120 characters
   * (`<unprintable Name>` when that throws), Futures inside Futures 6 levels deep (`<Future ...>` below).
   */
  toString(): string {
    if (formatting.has(this)) return '...';
    if (formatting.size >= REPR_MAX_DEPTH) return `<${this.constructor.name} ...>`;
    formatting.add(this);
    try {
      return `<${this.constructor.name} ${this._reprInfo()}>`;
    } finally {
      formatting.delete(this);
    }
  }

  /** @internal What {@link toString} shows inside `<Future …>` (asyncio's `_repr_info`): the state, then the result or exception. */
  _reprInfo(): string {
    return `${this._stateName()}${this._outcomeRepr()}`;
  }

  /** @internal ` result=…` or ` exception=…` once done with one, else empty. */
  _outcomeRepr(): string {
    const s = this._state;
    return s === FINISHED ? ` result=${reprValue(this._result)}` : s === ERRORED ? ` exception=${reprValue(this._exception)}` : '';
  }

  /** @internal */
  _stateName(): string {
    const s = this._state;
    return s === PENDING ? 'pending' : s === CANCELLED ? 'cancelled' : 'finished';
  }

  /** @internal The CancelledError awaiters of a cancelled Future see. */
  _makeCancelledError(): CancelledError {
    return new CancelledError(this._cancelMessage);
  }

  /** @internal */
  _setExceptionInternal(exception: unknown, message: string): void {
    this._state = ERRORED;
    this._exception = exception;
    this._logPending = true;
    // Format the stack now: V8's unformatted stack keeps every frame's receiver alive (a Task's own `_start`
    // frame among them), which would keep this Future from ever being collected, and so from being reported.
    if (exception instanceof Error) void exception.stack;
    const loop = this._loop;
    const ref = new WeakRef<Future<any>>(this);
    const held: Unretrieved = { loop, message, exception, sourceTraceback: this._sourceTraceback, future: describeFuture(this), ref };
    unretrieved.register(this, held, this);
    let refs = pendingReports.get(loop);
    if (refs === undefined) pendingReports.set(loop, (refs = new Set()));
    refs.add(ref);
    reportRefs.set(this, held);
    this._scheduleCallbacks();
  }

  /** @internal Someone saw the exception: no "never retrieved" report. */
  _markRetrieved(): void {
    if (this._logPending) {
      this._logPending = false;
      unretrieved.unregister(this);
      const held = reportRefs.get(this);
      if (held !== undefined) {
        reportRefs.delete(this);
        pendingReports.get(this._loop)?.delete(held.ref);
      }
    }
  }

  /** @internal Settles a fresh Future that nobody can have observed yet (no callbacks to schedule). */
  _settleQuiet(value: unknown): void {
    if (this._state !== PENDING) return;
    if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function') {
      chain(this, value as PromiseLike<T>);
    } else if (this._cb0 === null && this._cbs === null) {
      this._state = FINISHED;
      this._result = value as T;
    } else {
      this.setResult(value as T);
    }
  }

  /** @internal */
  _addCallback(fn: Waiter): void {
    if (this._cb0 === null && this._cbs === null) this._cb0 = fn;
    else (this._cbs ??= []).push(fn);
  }

  /** @internal */
  _scheduleCallbacks(): void {
    const cb0 = this._cb0;
    const cbs = this._cbs;
    if (cb0 === null && cbs === null) return;
    this._cb0 = null;
    this._cbs = null;
    const loop = this._loop;
    if (!loop._running) {
      // Promise-style reactions (then/await outside a task) must not wait for a loop that may never run again;
      // done callbacks proper wait for the loop (asyncio). A closed loop runs nothing, so there everything goes.
      const all = loop._closed;
      const one = (cb: Waiter): void => {
        if (typeof cb !== 'function') {
          if (all) queueMicrotask(() => cb._wakeup(this));
          else loop._callSoonStep(cb, this);
        } else if (all || (cb as { _tulipThen?: boolean })._tulipThen === true) {
          queueMicrotask(() => cb(this));
        } else {
          loop._callSoon1(cb as (a: unknown) => void, this);
        }
      };
      if (cb0 !== null) one(cb0);
      if (cbs !== null) for (const cb of cbs) one(cb);
      return;
    }
    if (cb0 !== null) {
      if (typeof cb0 === 'function') loop._callSoon1(cb0 as (a: unknown) => void, this);
      else loop._callSoonStep(cb0, this);
    }
    if (cbs !== null) {
      for (let i = 0; i < cbs.length; i++) {
        const cb = cbs[i]!;
        if (typeof cb === 'function') loop._callSoon1(cb as (a: unknown) => void, this);
        else loop._callSoonStep(cb, this);
      }
    }
  }
}

/** @internal Runs a then() reaction for a done Future `f` and settles `derived` with what it returns. */
export function settleDerived<T, R1, R2>(
  f: Future<T>,
  derived: Future<R1 | R2>,
  onFulfilled: ((value: T) => R1 | PromiseLike<R1>) | null | undefined,
  onRejected: ((reason: any) => R2 | PromiseLike<R2>) | null | undefined,
): void {
  if (derived._state !== PENDING) return;
  let handler: ((v: any) => unknown) | null | undefined;
  let arg: unknown;
  if (f._state === FINISHED) {
    handler = onFulfilled;
    arg = f._result;
    if (typeof handler !== 'function') {
      derived._settleQuiet(arg);
      return;
    }
  } else {
    arg = f._state === CANCELLED ? f._makeCancelledError() : f._exception;
    f._markRetrieved();
    handler = onRejected;
    if (typeof handler !== 'function') {
      derived.setException(arg);
      return;
    }
  }
  callReaction(handler, arg, derived);
}

/** @internal Calls a reaction and settles `derived` with its outcome. */
export function callReaction(handler: (v: any) => unknown, arg: unknown, derived: Future<any>): void {
  let v: unknown;
  try {
    v = handler(arg);
  } catch (e) {
    if (derived._state === PENDING) derived.setException(e);
    return;
  }
  derived._settleQuiet(v);
}

function chain<T>(target: Future<T>, source: PromiseLike<T>): void {
  if (source === (target as unknown)) {
    target.setException(new TypeError('a Future cannot resolve to itself'));
    return;
  }
  const onValue = (v: T): void => {
    if (target._state === PENDING) target.setResult(v);
  };
  const onError = (e: unknown): void => {
    if (target._state === PENDING) target.setException(e);
  };
  // A reaction returned a Future: following it is no task's await.
  if (source instanceof Future) source._thenPlain(onValue, onError);
  else source.then(onValue, onError);
}

/** True when `value` is a tulipwire {@link Future} (Tasks included). */
export function isFuture(value: unknown): value is Future<unknown> {
  return value instanceof Future;
}

/**
 * Turns a native Promise (or any thenable) into a {@link Future} of `loop` (default: the running loop). Awaiting
 * the Future inside a Task is a cancellation point; cancelling it does not stop the underlying operation.
 */
export function wrapPromise<T>(promise: PromiseLike<T> | T, loop?: EventLoop): Future<T> {
  if (promise instanceof Future && (loop === undefined || promise._loop === loop)) return promise as Future<T>;
  const fut = new Future<T>(loop);
  Promise.resolve(promise).then(
    (v) => {
      if (fut._state === PENDING) fut.setResult(v);
    },
    (e) => {
      if (fut._state === PENDING) fut.setException(e);
    },
  );
  return fut;
}
