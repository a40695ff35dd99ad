/**
 * Synchronisation primitives (asyncio `locks.py`): {@link Lock}, {@link Event}, {@link Condition},
 * {@link Semaphore}, {@link BoundedSemaphore}, {@link Barrier}. Waiters are served FIFO; a waiter cancelled after
 * it was woken passes its wake-up on, so no permit is ever lost (cpython issues 32734, 45997). Each primitive binds
 * to the loop it is first used from. `acquire()`/`release()` work explicitly; `withLock(fn)` is the `async with`.
 */
import { BrokenBarrierError, InvalidStateError, isCancelledError } from '../errors.js';
import type { EventLoop } from './event-loop.js';
import type { Future } from './futures.js';
import { getRunningLoop } from './state.js';

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

/** asyncio's `_LoopBoundMixin`: a primitive belongs to the loop it is first used from. */
class LoopBound {
  #loop: EventLoop | null = null;

  /** @internal */
  _getLoop(): EventLoop {
    const loop = getRunningLoop();
    if (this.#loop === null) this.#loop = loop;
    else if (this.#loop !== loop) throw new InvalidStateError(`${this.constructor.name} is bound to a different event loop`);
    return loop;
  }
}

/** Something `withLock` can hold: acquire, then release in `finally`. */
interface Acquirable {
  acquire(): Promise<boolean>;
  release(): void;
}

async function withAcquired<T>(lock: Acquirable, body: () => PromiseLike<T> | T): Promise<T> {
  await lock.acquire();
  try {
    return await body();
  } finally {
    lock.release();
  }
}

/** A mutual-exclusion lock (asyncio `Lock`), FIFO-fair. */
export class Lock extends LoopBound {
  /** @internal */ _waiters: Future<boolean>[] | null = null;
  /** @internal */ _locked = false;

  /** True while held. */
  locked(): boolean {
    return this._locked;
  }

  /** Acquires the lock, waiting FIFO behind earlier waiters; resolves to true. Cancellable while waiting. */
  async acquire(): Promise<true> {
    if (!this._locked && (this._waiters === null || this._waiters.every((w) => w.cancelled()))) {
      this._locked = true;
      return true;
    }
    const waiters = (this._waiters ??= []);
    const fut = this._getLoop().createFuture<boolean>();
    waiters.push(fut);
    try {
      try {
        await fut;
      } finally {
        remove(waiters, fut);
      }
    } catch (e) {
      // Woken but cancelled before it could take the lock: pass the wake-up on.
      if (isCancelledError(e) && !this._locked) this.#wakeUpFirst();
      throw e;
    }
    this._locked = true;
    return true;
  }

  /**
   * Releases the lock and wakes the first waiter.
   * @throws InvalidStateError when the lock is not held.
   */
  release(): void {
    if (!this._locked) throw new InvalidStateError('Lock is not acquired.');
    this._locked = false;
    this.#wakeUpFirst();
  }

  /** Runs `body` holding the lock (asyncio's `async with lock:`) and returns its value. */
  withLock<T>(body: () => PromiseLike<T> | T): Promise<T> {
    return withAcquired(this, body);
  }

  /** `<Lock [locked, waiters:2]>`. */
  override toString(): string {
    const n = this._waiters?.length ?? 0;
    return `<Lock [${this._locked ? 'locked' : 'unlocked'}${n > 0 ? `, waiters:${n}` : ''}]>`;
  }

  #wakeUpFirst(): void {
    const w = this._waiters;
    if (w === null || w.length === 0) return;
    const fut = w[0]!;
    if (!fut.done()) fut.setResult(true);
  }
}

/** An event flag tasks can wait for (asyncio `Event`). */
export class Event extends LoopBound {
  /** @internal */ _waiters: Future<boolean>[] = [];
  /** @internal */ _value = false;

  /** True once set (until cleared). */
  isSet(): boolean {
    return this._value;
  }

  /** Sets the flag and wakes every waiter. */
  set(): void {
    if (!this._value) {
      this._value = true;
      for (const fut of this._waiters) if (!fut.done()) fut.setResult(true);
    }
  }

  /** Clears the flag. */
  clear(): void {
    this._value = false;
  }

  /** Waits until the flag is set; resolves to true. Cancellable. */
  async wait(): Promise<true> {
    if (this._value) return true;
    const fut = this._getLoop().createFuture<boolean>();
    this._waiters.push(fut);
    try {
      await fut;
      return true;
    } finally {
      remove(this._waiters, fut);
    }
  }

  /** `<Event [set, waiters:1]>`. */
  override toString(): string {
    const n = this._waiters.length;
    return `<Event [${this._value ? 'set' : 'unset'}${n > 0 ? `, waiters:${n}` : ''}]>`;
  }
}

/** A condition variable (asyncio `Condition`) over a {@link Lock} (a new one by default). */
export class Condition extends LoopBound {
  /** @internal */ _lock: Lock;
  /** @internal */ _waiters: Future<boolean>[] = [];

  /** A condition over `lock` (default a new Lock). */
  constructor(lock?: Lock) {
    super();
    this._lock = lock ?? new Lock();
  }

  /** True while the underlying lock is held. */
  locked(): boolean {
    return this._lock.locked();
  }

  /** Acquires the underlying lock. */
  acquire(): Promise<true> {
    return this._lock.acquire();
  }

  /** Releases the underlying lock. @throws InvalidStateError when it is not held. */
  release(): void {
    this._lock.release();
  }

  /** Runs `body` holding the underlying lock. */
  withLock<T>(body: () => PromiseLike<T> | T): Promise<T> {
    return withAcquired(this, body);
  }

  /**
   * Releases the lock, waits to be notified, re-acquires the lock (even when cancelled) and resolves to true.
   * @throws InvalidStateError when the lock is not held.
   */
  async wait(): Promise<true> {
    if (!this.locked()) throw new InvalidStateError('cannot wait on un-acquired lock');
    const fut = this._getLoop().createFuture<boolean>();
    this.release();
    try {
      try {
        this._waiters.push(fut);
        try {
          await fut;
          return true;
        } finally {
          remove(this._waiters, fut);
        }
      } finally {
        // Re-acquire even if cancelled; re-raise the most recent cancellation afterwards.
        let err: unknown = null;
        for (;;) {
          try {
            await this.acquire();
            break;
          } catch (e) {
            if (!isCancelledError(e)) throw e;
            err = e;
          }
        }
        if (err !== null) throw err;
      }
    } catch (e) {
      // We were notified but are not going to use it: pass the notification on.
      this.#notify(1);
      throw e;
    }
  }

  /** Waits until `predicate()` is truthy (checked under the lock) and resolves to its value. */
  async waitFor<T>(predicate: () => T): Promise<T> {
    let result = predicate();
    while (!result) {
      await this.wait();
      result = predicate();
    }
    return result;
  }

  /**
   * Wakes up to `n` waiters (default 1).
   * @throws InvalidStateError when the lock is not held.
   */
  notify(n = 1): void {
    if (!this.locked()) throw new InvalidStateError('cannot notify on un-acquired lock');
    this.#notify(n);
  }

  /** Wakes every waiter. @throws InvalidStateError when the lock is not held. */
  notifyAll(): void {
    this.notify(this._waiters.length);
  }

  /** `<Condition [locked, waiters:1]>`. */
  override toString(): string {
    const n = this._waiters.length;
    return `<Condition [${this.locked() ? 'locked' : 'unlocked'}${n > 0 ? `, waiters:${n}` : ''}]>`;
  }

  #notify(n: number): void {
    let idx = 0;
    for (const fut of this._waiters) {
      if (idx >= n) break;
      if (!fut.done()) {
        idx++;
        fut.setResult(false);
      }
    }
  }
}

/** A counting semaphore (asyncio `Semaphore`), FIFO-fair; a cancelled waiter never loses a permit. */
export class Semaphore extends LoopBound {
  /** @internal */ _waiters: Future<boolean>[] | null = null;
  /** @internal */ _value: number;

  /**
   * A semaphore with `value` permits (default 1).
   * @throws RangeError when `value` is negative.
   */
  constructor(value = 1) {
    super();
    if (!(value >= 0)) throw new RangeError('Semaphore initial value must be >= 0');
    this._value = value;
  }

  /** Permits available now. */
  get value(): number {
    return this._value;
  }

  /** True when `acquire()` would wait. */
  locked(): boolean {
    return this._value === 0 || (this._waiters ?? []).some((w) => !w.cancelled());
  }

  /** Takes a permit, waiting FIFO when none is free; resolves to true. Cancellable while waiting. */
  async acquire(): Promise<true> {
    if (!this.locked()) {
      this._value--;
      return true;
    }
    const waiters = (this._waiters ??= []);
    const fut = this._getLoop().createFuture<boolean>();
    waiters.push(fut);
    try {
      try {
        await fut;
      } finally {
        remove(waiters, fut);
      }
    } catch (e) {
      // Woken (a permit was handed to us) but cancelled: give the permit back.
      if (isCancelledError(e) && fut.done() && !fut.cancelled()) this._value++;
      throw e;
    } finally {
      while (this._value > 0) if (!this.#wakeUpNext()) break;
    }
    return true;
  }

  /** Returns a permit and wakes the first waiter. */
  release(): void {
    this._value++;
    this.#wakeUpNext();
  }

  /** Runs `body` holding one permit and returns its value. */
  withLock<T>(body: () => PromiseLike<T> | T): Promise<T> {
    return withAcquired(this, body);
  }

  /** Same as {@link withLock}. */
  withPermit<T>(body: () => PromiseLike<T> | T): Promise<T> {
    return withAcquired(this, body);
  }

  /** `<Semaphore [unlocked, value:2]>`. */
  override toString(): string {
    const n = this._waiters?.length ?? 0;
    return `<${this.constructor.name} [${this.locked() ? 'locked' : `unlocked, value:${this._value}`}${n > 0 ? `, waiters:${n}` : ''}]>`;
  }

  #wakeUpNext(): boolean {
    const w = this._waiters;
    if (w === null) return false;
    for (const fut of w) {
      if (!fut.done()) {
        this._value--;
        fut.setResult(true);
        return true;
      }
    }
    return false;
  }
}

/** A {@link Semaphore} that refuses to be released above its initial value. */
export class BoundedSemaphore extends Semaphore {
  /** @internal */ _boundValue: number;

  /** A bounded semaphore with `value` permits (default 1). */
  constructor(value = 1) {
    super(value);
    this._boundValue = value;
  }

  /** Returns a permit. @throws InvalidStateError when released more times than acquired (asyncio ValueError). */
  override release(): void {
    if (this._value >= this._boundValue) throw new InvalidStateError('BoundedSemaphore released too many times');
    super.release();
  }
}

type BarrierState = 'filling' | 'draining' | 'resetting' | 'broken';

/** A barrier for `parties` tasks (asyncio 3.11 `Barrier`). */
export class Barrier extends LoopBound {
  readonly #cond = new Condition();
  readonly #parties: number;
  #state: BarrierState = 'filling';
  /** @internal Tasks inside wait() (asyncio `_count`). */ _count = 0;

  /**
   * A barrier that opens once `parties` tasks wait on it.
   * @throws RangeError when `parties` < 1.
   */
  constructor(parties: number) {
    super();
    if (!(parties >= 1)) throw new RangeError('parties must be > 0');
    this.#parties = parties;
  }

  /**
   * Waits until `parties` tasks are waiting, then releases them all; resolves to this task's arrival index
   * (0 … parties-1).
   * @throws BrokenBarrierError when the barrier is reset or aborted while waiting.
   */
  wait(): Promise<number> {
    return this.#cond.withLock(async () => {
      await this.#block();
      try {
        const index = this._count;
        this._count++;
        if (index + 1 === this.#parties) this.#release();
        else await this.#wait();
        return index;
      } finally {
        this._count--;
        this.#exit();
      }
    });
  }

  /** Puts the barrier back to its empty state; current waiters get BrokenBarrierError. */
  reset(): Promise<void> {
    return this.#cond.withLock(() => {
      if (this._count > 0) {
        if (this.#state !== 'resetting') this.#state = 'resetting';
      } else {
        this.#state = 'filling';
      }
      this.#cond.notifyAll();
    });
  }

  /** Breaks the barrier: current and future waiters get BrokenBarrierError. */
  abort(): Promise<void> {
    return this.#cond.withLock(() => {
      this.#state = 'broken';
      this.#cond.notifyAll();
    });
  }

  /** How many tasks must wait for the barrier to open. */
  get parties(): number {
    return this.#parties;
  }

  /** How many tasks wait now (0 while draining). */
  get nWaiting(): number {
    return this.#state === 'filling' ? this._count : 0;
  }

  /** True once aborted. */
  get broken(): boolean {
    return this.#state === 'broken';
  }

  /** `<Barrier [filling, waiters:1/3]>`. */
  override toString(): string {
    return `<Barrier [${this.#state}${this.broken ? '' : `, waiters:${this.nWaiting}/${this.#parties}`}]>`;
  }

  async #block(): Promise<void> {
    await this.#cond.waitFor(() => this.#state !== 'draining' && this.#state !== 'resetting');
    if (this.#state === 'broken') throw new BrokenBarrierError('Barrier aborted');
  }

  #release(): void {
    this.#state = 'draining';
    this.#cond.notifyAll();
  }

  async #wait(): Promise<void> {
    await this.#cond.waitFor(() => this.#state !== 'filling');
    if (this.#state === 'broken' || this.#state === 'resetting') throw new BrokenBarrierError('Abort or reset of barrier');
  }

  #exit(): void {
    if (this._count === 0) {
      if (this.#state === 'resetting' || this.#state === 'draining') this.#state = 'filling';
      this.#cond.notifyAll();
    }
  }
}
