/**
 * The bounded wait queue for calls made while a session is disconnected.
 *
 * A call that finds no usable connection takes a waiter (a loop Future) and awaits it; the session wakes every
 * waiter once a connection is established, and each woken call checks again (the connection may already be gone).
 * The queue is bounded: a waiter beyond `maxSize` is refused at once with SessionClosed, and closing the queue
 * fails every waiter with the close reason, so nothing waits without bound. A waiter that is done (cancelled by its
 * Task, failed by its call's timeout) frees its slot at once: it leaves the queue through its done callback, and
 * until that runs (the loop runs done callbacks in a later iteration) it is neither counted nor woken.
 */

import { SessionClosed } from '../errors.js';

/** What the queue needs of a waiter: the loop's `Future<void>` has exactly this shape. */
export interface Waiter {
  /** True once resolved, failed or cancelled. */
  done(): boolean;
  /** Wakes the waiter. */
  setResult(value: undefined): void;
  /** Fails the waiter. */
  setException(error: unknown): void;
  /** Runs `fn` once the waiter is done (also when cancelled). */
  addDoneCallback(fn: (w: this) => void): void;
}

/** A FIFO of waiters with a fixed bound; see the module comment. */
export class WaitQueue<W extends Waiter> {
  /** Most waiters held at once. */
  readonly maxSize: number;
  readonly #create: () => W;
  readonly #waiters = new Set<W>();
  #closedWith: Error | null = null;

  /**
   * @param maxSize most waiters held at once (>= 0; 0 refuses every wait)
   * @param create makes a fresh waiter (e.g. `() => loop.createFuture<void>()`)
   */
  constructor(maxSize: number, create: () => W) {
    if (!(maxSize >= 0)) throw new RangeError(`queue size must be >= 0, got ${maxSize}`);
    this.maxSize = maxSize;
    this.#create = create;
  }

  /** Waiters held now (not counting those already done). */
  get size(): number {
    this.#purge();
    return this.#waiters.size;
  }

  // Forgets the waiters already done, whose done callback has not run yet.
  #purge(): void {
    for (const w of this.#waiters) if (w.done()) this.#waiters.delete(w);
  }

  /** The error the queue was closed with, or null while open. */
  get closedWith(): Error | null {
    return this.#closedWith;
  }

  /**
   * A new waiter to await until the next {@link wakeAll}.
   * @throws SessionClosed when the queue is closed (the close reason as `cause`) or holds `maxSize` waiters already
   */
  wait(): W {
    if (this.#closedWith !== null) throw this.#closedWith;
    if (this.#waiters.size >= this.maxSize) this.#purge();
    if (this.#waiters.size >= this.maxSize) {
      throw new SessionClosed(`session call queue is full (${this.maxSize} calls waiting for a connection)`);
    }
    const w = this.#create();
    this.#waiters.add(w);
    w.addDoneCallback(() => this.#waiters.delete(w));
    return w;
  }

  /** Wakes every waiter in arrival order; returns how many. */
  wakeAll(): number {
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) if (!w.done()) w.setResult(undefined);
    return ws.length;
  }

  /** Fails every waiter, and every later {@link wait}, with `error` (a SessionClosed). Closing twice keeps the first error. */
  close(error: Error = new SessionClosed()): void {
    if (this.#closedWith === null) this.#closedWith = error;
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) if (!w.done()) w.setException(this.#closedWith);
  }
}
