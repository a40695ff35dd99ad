/**
 * Combinators over Futures and Tasks (asyncio `tasks.py`): {@link sleep}, {@link gather}, {@link wait},
 * {@link waitFor}, {@link shield}, {@link asCompleted}. Each follows asyncio's cancellation rules, pinned by
 * `test/loop/combinators.test.ts`.
 *
 * "Awaitables" here are tulipwire Futures and Tasks, async functions (wrapped in a Task, like a coroutine passed to
 * `ensure_future`) and native Promises (wrapped with `wrapPromise`; cancelling the wrapper cannot stop them).
 */
import { InvalidStateError, TimeoutError, isCancelledError } from '../errors.js';
import type { EventLoop } from './event-loop.js';
import type { TimerHandle } from './events.js';
import { CANCELLED, ERRORED, FINISHED, Future, PENDING, wrapPromise } from './futures.js';
import { getRunningLoop } from './state.js';
import type { Task, TaskFunction } from './tasks.js';
import { Queue } from './queues.js';
import { timeout } from './timeouts.js';

/** Something a combinator can wait for. */
export type Awaitable<T> = Future<T> | PromiseLike<T> | TaskFunction<T>;

function setResultUnlessCancelled<T>(fut: Future<T>, value: T): void {
  if (fut._state === PENDING) fut.setResult(value);
}

/** A timeout is seconds or null (no limit): refused before a combinator starts anything (a Task for a function). */
function checkTimeout(value: unknown, what: string): void {
  if (value !== null && (typeof value !== 'number' || Number.isNaN(value))) {
    throw new TypeError(`${what} must be a number of seconds or null, got ${String(value)}`);
  }
}

/**
 * A Future that resolves to `value` after `delay` seconds. `delay <= 0` yields exactly one loop iteration
 * (asyncio's bare `sleep(0)`). Awaiting it in a Task is a cancellation point: `task.cancel()` makes the await throw
 * `CancelledError` and drops the timer.
 * @param loop the loop (default: the running loop).
 */
export function sleep<T = undefined>(delay: number, value?: T, loop?: EventLoop): Future<T> {
  const l = loop ?? getRunningLoop();
  if (!(delay > 0)) {
    if (Number.isNaN(delay)) throw new TypeError('Invalid delay: NaN (not a number)');
    // Done already, but an awaiting task still yields one iteration.
    const fut = new Future<T>(l);
    fut._state = FINISHED;
    fut._result = value as T;
    fut._forceYield = true;
    return fut;
  }
  const sf = new SleepFuture<T>(l);
  sf._timer = l.callLater(delay, setResultUnlessCancelled, sf as Future<T>, value as T);
  return sf;
}

/** A sleep's Future: cancelling it drops its timer at once (asyncio's `finally: h.cancel()`). */
class SleepFuture<T> extends Future<T> {
  /** @internal */ _timer: TimerHandle | null = null;
  override cancel(msg?: string): boolean {
    if (!super.cancel(msg)) return false;
    this._timer?.cancel();
    this._timer = null;
    return true;
  }
}

/**
 * asyncio's `ensure_future`: a Future stays itself, a function becomes a Task, a thenable is wrapped.
 * @throws TypeError for anything else; InvalidStateError for a Future of another loop than `loop`.
 */
export function ensureFuture<T>(aw: Awaitable<T>, loop?: EventLoop): Future<T> {
  if (aw instanceof Future) {
    if (loop !== undefined && aw._loop !== loop) throw new InvalidStateError('The future belongs to a different loop than the one specified as the loop argument');
    return aw;
  }
  const l = loop ?? getRunningLoop();
  if (typeof aw === 'function') return l.createTask(aw);
  if (aw !== null && typeof aw === 'object' && typeof (aw as PromiseLike<T>).then === 'function') return wrapPromise(aw, l);
  throw new TypeError('a Future, a Task, an async function or a Promise is required');
}

/** Options of {@link gather}. */
export interface GatherOptions {
  /** Return exceptions (and CancelledErrors) in the result list instead of failing on the first one. */
  returnExceptions?: boolean;
}

/** The Future `gather()` returns: cancelling it cancels every child (asyncio's `_GatheringFuture`). */
export class GatheringFuture<T> extends Future<T> {
  /** @internal */ _children: Future<unknown>[];
  /** @internal */ _cancelRequested = false;

  /** @internal */
  constructor(children: Future<unknown>[], loop: EventLoop) {
    super(loop);
    this._children = children;
  }

  /**
   * Cancels every child still pending. Like `Task.cancel`, the gather Future is not cancelled at once: it
   * finishes (with CancelledError) once its children are done. Returns true when any child was cancelled.
   */
  override cancel(msg?: string): boolean {
    if (this._state !== PENDING) return false;
    let ret = false;
    for (const child of this._children) if (child.cancel(msg)) ret = true;
    // If any child was cancelled, the cancel propagates whatever returnExceptions says (cpython issue 32684).
    if (ret) this._cancelRequested = true;
    return ret;
  }
}

function isGatherOptions(x: unknown): x is GatherOptions {
  return x !== null && typeof x === 'object' && !(x instanceof Future) && typeof (x as PromiseLike<unknown>).then !== 'function' && Object.getPrototypeOf(x) === Object.prototype;
}

type Awaited_<A> = A extends Future<infer T> ? T : A extends PromiseLike<infer T> ? T : A extends () => PromiseLike<infer T> ? T : A extends () => infer T ? T : unknown;

/**
 * Runs awaitables concurrently; resolves to their results in argument order (asyncio `gather`). Without
 * `returnExceptions` the first exception (or a child's cancellation, as CancelledError) fails the gather, and the
 * other children keep running. Cancelling the returned Future cancels every child.
 * Call as `gather(a, b, c)` or `gather(a, b, {returnExceptions: true})`.
 */
export function gather<A extends Awaitable<unknown>[]>(...args: [...A] | [...A, GatherOptions]): GatheringFuture<{ [K in keyof A]: Awaited_<A[K]> }> {
  let options: GatherOptions = {};
  const last = args[args.length - 1];
  if (args.length > 0 && isGatherOptions(last)) {
    options = last;
    args = args.slice(0, -1) as [...A];
  }
  const returnExceptions = options.returnExceptions === true;
  const aws = args as Awaitable<unknown>[];
  type R = { [K in keyof A]: Awaited_<A[K]> };
  if (aws.length === 0) {
    const loop = getRunningLoop();
    const outer = new GatheringFuture<R>([], loop);
    outer.setResult([] as unknown as R);
    return outer;
  }
  const argToFut = new Map<unknown, Future<unknown>>();
  const children: Future<unknown>[] = [];
  let loop: EventLoop | undefined;
  let nfuts = 0;
  let nfinished = 0;
  const doneFuts: Future<unknown>[] = [];
  let outer: GatheringFuture<R> | null = null;

  const doneCallback = (fut: Future<unknown>): void => {
    nfinished++;
    if (outer === null || outer._state !== PENDING) {
      if (fut._state !== CANCELLED) fut.exception(); // mark retrieved
      return;
    }
    if (!returnExceptions) {
      if (fut._state === CANCELLED) {
        outer.setException(fut._makeCancelledError());
        return;
      }
      // The state, not `exception() !== null`: JavaScript can throw null or undefined, and that is a failure too.
      const exc = fut.exception();
      if (fut._state === ERRORED) {
        outer.setException(exc);
        return;
      }
    }
    if (nfinished === nfuts) {
      const results: unknown[] = [];
      for (const f of children) {
        if (f._state === CANCELLED) results.push(f._makeCancelledError());
        else {
          const e = f.exception();
          results.push(f._state === ERRORED ? e : f.result());
        }
      }
      if (outer._cancelRequested) outer.setException(fut._makeCancelledError());
      else outer.setResult(results as unknown as R);
    }
  };

  for (const arg of aws) {
    // The same Future (or Promise) twice is one child, as in asyncio; a function is a new Task each time.
    let fut = typeof arg === 'function' ? undefined : argToFut.get(arg);
    if (fut === undefined) {
      fut = ensureFuture(arg, loop);
      loop ??= fut._loop;
      // A Task made here for a function: the caller cannot reach it, so close() does not report it pending
      // (asyncio's gather sets `_log_destroy_pending = False`).
      if (typeof arg === 'function') (fut as Task<unknown>)._logDestroyPending = false;
      nfuts++;
      if (typeof arg !== 'function') argToFut.set(arg, fut);
      if (fut._state !== PENDING) doneFuts.push(fut);
      else fut.addDoneCallback(doneCallback);
    }
    children.push(fut);
  }
  outer = new GatheringFuture<R>(children, loop!);
  for (const f of doneFuts) doneCallback(f);
  return outer;
}

/**
 * Waits for `inner` while shielding it from cancellation (asyncio `shield`): cancelling the caller (or the
 * returned Future) leaves `inner` running; the caller still sees CancelledError. Cancelling `inner` itself
 * cancels the returned Future.
 */
export function shield<T>(aw: Awaitable<T>): Future<T> {
  const inner = ensureFuture(aw);
  if (inner._state !== PENDING) return inner;
  const outer = new Future<T>(inner._loop);
  const innerDone = (f: Future<T>): void => {
    if (outer._state === CANCELLED) {
      if (f._state !== CANCELLED) f.exception(); // mark retrieved
      return;
    }
    if (outer._state !== PENDING) return;
    if (f._state === CANCELLED) outer.cancel();
    else {
      const e = f.exception();
      if (f._state === ERRORED) outer.setException(e);
      else outer.setResult(f.result());
    }
  };
  const outerDone = (): void => {
    if (inner._state === PENDING) inner.removeDoneCallback(innerDone);
  };
  inner.addDoneCallback(innerDone);
  outer.addDoneCallback(outerDone);
  return outer;
}

/** `wait()` returns when any awaitable finishes. */
export const FIRST_COMPLETED = 'FIRST_COMPLETED';
/** `wait()` returns when any awaitable fails (or all finish). */
export const FIRST_EXCEPTION = 'FIRST_EXCEPTION';
/** `wait()` returns when all awaitables finish. */
export const ALL_COMPLETED = 'ALL_COMPLETED';
/** When {@link wait} returns. */
export type ReturnWhen = typeof FIRST_COMPLETED | typeof FIRST_EXCEPTION | typeof ALL_COMPLETED;

/** Options of {@link wait}. */
export interface WaitOptions {
  /** Seconds to wait at most (default null: no limit). On timeout, wait returns; it never cancels anything. */
  timeout?: number | null;
  /** When to return (default ALL_COMPLETED). */
  returnWhen?: ReturnWhen;
}

/**
 * Waits for the given Futures/Tasks (asyncio `wait`) and resolves to `[done, pending]` Sets of them. Never cancels
 * anything; cancelling the caller leaves them running.
 * @throws InvalidStateError when the collection is empty; TypeError for a bad `returnWhen` or a `timeout` that is
 *   neither a number of seconds nor null (NaN).
 */
export async function wait<T>(aws: Iterable<Future<T> | PromiseLike<T>>, options: WaitOptions = {}): Promise<[Set<Future<T>>, Set<Future<T>>]> {
  const returnWhen = options.returnWhen ?? ALL_COMPLETED;
  if (returnWhen !== FIRST_COMPLETED && returnWhen !== FIRST_EXCEPTION && returnWhen !== ALL_COMPLETED) {
    throw new TypeError(`Invalid returnWhen value: ${String(returnWhen)}`);
  }
  const timeoutDelay = options.timeout ?? null;
  checkTimeout(timeoutDelay, 'timeout');
  const loop = getRunningLoop();
  const fs = new Set<Future<T>>();
  // Futures as they are (asyncio's wait takes them from any loop); a Promise is wrapped.
  for (const a of aws) fs.add(a instanceof Future ? a : ensureFuture(a as Awaitable<T>, loop));
  if (fs.size === 0) throw new InvalidStateError('Set of Tasks/Futures is empty.');
  const waiter = loop.createFuture<null>();
  let timeoutHandle: TimerHandle | null = null;
  if (timeoutDelay !== null) timeoutHandle = loop.callLater(timeoutDelay, releaseWaiter, waiter);
  let counter = fs.size;
  const onCompletion = (f: Future<T>): void => {
    counter--;
    if (counter <= 0 || returnWhen === FIRST_COMPLETED || (returnWhen === FIRST_EXCEPTION && f._state === ERRORED)) {
      timeoutHandle?.cancel();
      if (waiter._state === PENDING) waiter.setResult(null);
    }
  };
  for (const f of fs) f.addDoneCallback(onCompletion);
  try {
    await waiter;
  } finally {
    timeoutHandle?.cancel();
    for (const f of fs) f.removeDoneCallback(onCompletion);
  }
  const done = new Set<Future<T>>();
  const pending = new Set<Future<T>>();
  for (const f of fs) (f._state !== PENDING ? done : pending).add(f);
  return [done, pending];
}

function releaseWaiter(waiter: Future<any>): void {
  if (waiter._state === PENDING) waiter.setResult(null);
}

/** @internal Cancels `fut` and waits until it is done, without awaiting `fut` itself (asyncio `_cancel_and_wait`). */
export async function cancelAndWait(fut: Future<any>): Promise<void> {
  const waiter = fut._loop.createFuture<null>();
  const cb = (): void => releaseWaiter(waiter);
  fut.addDoneCallback(cb);
  try {
    fut.cancel();
    await waiter;
  } finally {
    fut.removeDoneCallback(cb);
  }
}

/**
 * Waits for `aw` for at most `timeoutSeconds` (asyncio 3.12 `wait_for`, built on {@link timeout}): on timeout the
 * inner Task is cancelled, waited for, and `TimeoutError` (cause: the CancelledError) is thrown. `null` waits
 * without limit; `<= 0` times out at once unless `aw` is already done.
 * @throws TypeError when `timeoutSeconds` is neither a number of seconds nor null (NaN, a missing argument), before
 *   anything starts.
 */
export async function waitFor<T>(aw: Awaitable<T>, timeoutSeconds: number | null): Promise<T> {
  checkTimeout(timeoutSeconds, 'timeoutSeconds');
  if (typeof aw === 'function' && (timeoutSeconds === null || timeoutSeconds > 0)) {
    // asyncio 3.12 awaits a coroutine inline, in the calling task; so does this with a function.
    return timeout(timeoutSeconds, aw as () => PromiseLike<T> | T);
  }
  const fut = ensureFuture(aw);
  if (timeoutSeconds !== null && timeoutSeconds <= 0) {
    if (fut._state !== PENDING) return fut.result();
    await cancelAndWait(fut);
    try {
      return fut.result();
    } catch (e) {
      // Whatever ends with a CancelledError after our cancel timed out, also a Future that is finished with one
      // rather than cancelled (a gather(), whose cancel cancels its children): asyncio's `except CancelledError`.
      if (isCancelledError(e)) throw new TimeoutError(undefined, { cause: e });
      throw e;
    }
  }
  return timeout(timeoutSeconds, () => fut);
}

/** Options of {@link asCompleted}. */
export interface AsCompletedOptions {
  /** Seconds until iteration throws TimeoutError (default null: no limit). */
  timeout?: number | null;
}

/**
 * Iterates awaitables in completion order (asyncio 3.13 `as_completed`). `for await (const f of asCompleted(xs))`
 * yields the original Futures/Tasks as they finish (await or `.result()` each); a plain `for ... of` yields
 * awaitables of the next result (the first one awaited gets the first result). Throws TimeoutError once `timeout`
 * passes.
 * @throws TypeError when `timeout` is neither a number of seconds nor null (NaN), before anything starts.
 */
export function asCompleted<T>(aws: Iterable<Awaitable<T>>, options: AsCompletedOptions = {}): AsCompletedIterator<T> {
  return new AsCompletedIterator<T>(aws, options.timeout ?? null);
}

/** The iterator {@link asCompleted} returns (asyncio's `_AsCompletedIterator`). */
export class AsCompletedIterator<T> implements AsyncIterableIterator<Future<T>> {
  readonly #todo = new Set<Future<T>>();
  // Finished Futures, boxed (awaiting get() would adopt a bare Future), null for the timeout's sentinel: a Queue as
  // in asyncio, so any number of next() calls may wait at once, each for its own item, FIFO.
  readonly #done = new Queue<{ f: Future<T> } | null>();
  #todoLeft: number;
  #timeoutHandle: TimerHandle | null = null;
  readonly #onCompletion = (f: Future<T>): void => {
    if (this.#todo.size === 0) return; // the timeout was here first
    this.#todo.delete(f);
    this.#done.putNowait({ f });
    if (this.#todo.size === 0) this.#timeoutHandle?.cancel();
  };

  /** @internal Use {@link asCompleted}. */
  constructor(aws: Iterable<Awaitable<T>>, timeoutSeconds: number | null) {
    checkTimeout(timeoutSeconds, 'timeout');
    const loop = getRunningLoop();
    for (const a of new Set(aws)) this.#todo.add(ensureFuture(a, loop));
    for (const f of this.#todo) f.addDoneCallback(this.#onCompletion);
    if (this.#todo.size > 0 && timeoutSeconds !== null) {
      this.#timeoutHandle = loop.callLater(timeoutSeconds, () => {
        for (const f of this.#todo) {
          f.removeDoneCallback(this.#onCompletion);
          this.#done.putNowait(null);
        }
        this.#todo.clear();
      });
    }
    this.#todoLeft = this.#todo.size;
  }

  // Boxed: an async function returning a Future (a thenable) would resolve to its result instead.
  async #next(): Promise<{ f: Future<T> }> {
    const box = await this.#done.get();
    if (box === null) throw new TimeoutError();
    return box;
  }

  /** Async iteration: the next Future to finish. */
  async next(): Promise<IteratorResult<Future<T>>> {
    if (this.#todoLeft === 0) return { done: true, value: undefined };
    this.#todoLeft--;
    return { done: false, value: (await this.#next()).f };
  }

  /** This iterator. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Plain iteration (asyncio's pre-3.13 form): one awaitable per input, each giving the result of the next Future
   * to finish. Like asyncio's coroutines, each starts waiting only when first awaited, so whichever is awaited
   * first gets the first result.
   */
  *[Symbol.iterator](): Iterator<PromiseLike<T>> {
    while (this.#todoLeft > 0) {
      this.#todoLeft--;
      yield new NextResult<T>(() => this.#next().then((box) => box.f.result()));
    }
  }
}

/** An awaitable that starts `start` at its first `then()` (the not-yet-started coroutine of asyncio). */
class NextResult<T> implements PromiseLike<T> {
  #start: (() => Promise<T>) | null;
  #promise: Promise<T> | null = null;

  constructor(start: () => Promise<T>) {
    this.#start = start;
  }

  then<R1 = T, R2 = never>(onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null, onRejected?: ((reason: any) => R2 | PromiseLike<R2>) | null): Promise<R1 | R2> {
    if (this.#promise === null) {
      const start = this.#start!;
      this.#start = null;
      this.#promise = start();
    }
    return this.#promise.then(onFulfilled, onRejected);
  }
}
