/**
 * Queues (asyncio `queues.py`, 3.13 with `shutdown`): {@link Queue}, {@link PriorityQueue}, {@link LifoQueue}.
 * Getters and putters wait FIFO; a getter cancelled after it was woken passes the wake-up on, so no item is lost.
 */
import { InvalidStateError, QueueEmpty, QueueFull, QueueShutDown } from '../errors.js';
import type { EventLoop } from './event-loop.js';
import type { Future } from './futures.js';
import { Event } from './locks.js';
import { getRunningLoop } from './state.js';

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

/** A FIFO queue for tasks (asyncio `Queue`). `maxsize <= 0` means unbounded. */
export class Queue<T> {
  #loop: EventLoop | null = null;
  readonly #maxsize: number;
  /** @internal */ _getters: Future<null>[] = [];
  /** @internal */ _putters: Future<null>[] = [];
  #unfinished = 0;
  readonly #finished = new Event();
  #shutdown = false;
  /** @internal The items; subclasses keep their own order. */ protected _queue: T[] = [];
  /** @internal Index of the FIFO head in `_queue` (so `get` is O(1) amortised). */ #head = 0;

  /** A queue holding at most `maxsize` items (default 0: unbounded). */
  constructor(maxsize = 0) {
    this.#maxsize = maxsize;
    this.#finished.set();
  }

  /** @internal Stores an item (FIFO: at the end). */
  protected _put(item: T): void {
    this._queue.push(item);
  }

  /** @internal Removes the next item (FIFO: the head). */
  protected _get(): T {
    const item = this._queue[this.#head]!;
    this._queue[this.#head] = undefined as T;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this._queue.length) {
      this._queue = this._queue.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** @internal */
  protected _size(): number {
    return this._queue.length - this.#head;
  }

  /** How many items are queued. */
  qsize(): number {
    return this._size();
  }

  /** The capacity (0: unbounded). */
  get maxsize(): number {
    return this.#maxsize;
  }

  /** True when no item is queued. */
  empty(): boolean {
    return this._size() === 0;
  }

  /** True when `maxsize` items are queued. */
  full(): boolean {
    return this.#maxsize > 0 && this._size() >= this.#maxsize;
  }

  /**
   * Puts an item, waiting (FIFO) while the queue is full. Cancellable.
   * @throws QueueShutDown once the queue is shut down.
   */
  async put(item: T): Promise<void> {
    while (this.full()) {
      if (this.#shutdown) throw new QueueShutDown();
      const putter = this.#getLoop().createFuture<null>();
      this._putters.push(putter);
      try {
        await putter;
      } catch (e) {
        putter.cancel();
        remove(this._putters, putter);
        if (!this.full() && !putter.cancelled()) this.#wakeupNext(this._putters);
        throw e;
      }
    }
    this.putNowait(item);
  }

  /**
   * Puts an item without waiting.
   * @throws QueueShutDown once shut down; QueueFull when full.
   */
  putNowait(item: T): void {
    if (this.#shutdown) throw new QueueShutDown();
    if (this.full()) throw new QueueFull();
    this._put(item);
    this.#unfinished++;
    this.#finished.clear();
    this.#wakeupNext(this._getters);
  }

  /**
   * Removes and returns an item, waiting (FIFO) while the queue is empty. Cancellable: a cancelled getter never
   * loses an item.
   * @throws QueueShutDown once shut down and empty (immediately, for `shutdown(true)`).
   */
  async get(): Promise<T> {
    while (this.empty()) {
      if (this.#shutdown) throw new QueueShutDown();
      const getter = this.#getLoop().createFuture<null>();
      this._getters.push(getter);
      try {
        await getter;
      } catch (e) {
        getter.cancel();
        remove(this._getters, getter);
        if (!this.empty() && !getter.cancelled()) this.#wakeupNext(this._getters);
        throw e;
      }
    }
    return this.getNowait();
  }

  /**
   * Removes and returns an item without waiting.
   * @throws QueueEmpty when empty; QueueShutDown when empty and shut down.
   */
  getNowait(): T {
    if (this.empty()) {
      if (this.#shutdown) throw new QueueShutDown();
      throw new QueueEmpty();
    }
    const item = this._get();
    this.#wakeupNext(this._putters);
    return item;
  }

  /**
   * Marks one item taken with get() as processed (for {@link join}).
   * @throws InvalidStateError when called more times than items were put (asyncio ValueError).
   */
  taskDone(): void {
    if (this.#unfinished <= 0) throw new InvalidStateError('taskDone() called too many times');
    this.#unfinished--;
    if (this.#unfinished === 0) this.#finished.set();
  }

  /** Waits until every item put has been marked done with {@link taskDone}. */
  async join(): Promise<void> {
    if (this.#unfinished > 0) await this.#finished.wait();
  }

  /**
   * Shuts the queue down (asyncio 3.13): puts raise QueueShutDown at once; gets raise it once the queue is empty.
   * With `immediate`, queued items are dropped (counted as done, so `join()` returns) and gets raise at once.
   * Every blocked getter and putter is woken.
   */
  shutdown(immediate = false): void {
    this.#shutdown = true;
    if (immediate) {
      while (!this.empty()) {
        this._get();
        if (this.#unfinished > 0) this.#unfinished--;
      }
      if (this.#unfinished === 0) this.#finished.set();
    }
    for (const g of this._getters.splice(0)) if (!g.done()) g.setResult(null);
    for (const p of this._putters.splice(0)) if (!p.done()) p.setResult(null);
  }

  /** True once {@link shutdown} was called. */
  get isShutdown(): boolean {
    return this.#shutdown;
  }

  /** `<Queue maxsize=0 size=2 getters=1>`. */
  toString(): string {
    let s = `maxsize=${this.#maxsize} size=${this._size()}`;
    if (this._getters.length > 0) s += ` getters=${this._getters.length}`;
    if (this._putters.length > 0) s += ` putters=${this._putters.length}`;
    if (this.#unfinished > 0) s += ` tasks=${this.#unfinished}`;
    if (this.#shutdown) s += ' shutdown';
    return `<${this.constructor.name} ${s}>`;
  }

  #getLoop(): EventLoop {
    const loop = getRunningLoop();
    if (this.#loop === null) this.#loop = loop;
    else if (this.#loop !== loop) throw new InvalidStateError(`${this.constructor.name} is bound to a different event loop`);
    return loop;
  }

  #wakeupNext(waiters: Future<null>[]): void {
    while (waiters.length > 0) {
      const w = waiters.shift()!;
      if (!w.done()) {
        w.setResult(null);
        break;
      }
    }
  }
}

/** A comparator: negative when `a` comes out first. */
export type Compare<T> = (a: T, b: T) => number;

/** The default order: numbers and strings by `<`; arrays (tuples like `[priority, item]`) element by element. */
export function defaultCompare(a: unknown, b: unknown): number {
  if (Array.isArray(a) && Array.isArray(b)) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const c = defaultCompare(a[i], b[i]);
      if (c !== 0) return c;
    }
    return a.length - b.length;
  }
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** A queue that returns the smallest item first (asyncio `PriorityQueue`; a binary heap). */
export class PriorityQueue<T> extends Queue<T> {
  readonly #compare: Compare<T>;

  /** A priority queue of at most `maxsize` items (0: unbounded), ordered by `compare` (default {@link defaultCompare}). */
  constructor(maxsize = 0, options: { compare?: Compare<T> } = {}) {
    super(maxsize);
    this.#compare = options.compare ?? (defaultCompare as Compare<T>);
  }

  /**
   * @internal heapq's `heappush`. Every comparison happens before the heap changes, so a `compare` that throws
   * leaves the queue as it was (the put fails and nothing is stored).
   */
  protected override _put(item: T): void {
    const a = this._queue;
    const cmp = this.#compare;
    let i = a.length;
    let j = i;
    while (j > 0) {
      const p = (j - 1) >> 1;
      if (!(cmp(item, a[p]!) < 0)) break; // heapq's `newitem < parent`
      j = p;
    }
    a.push(item);
    while (i > j) {
      const p = (i - 1) >> 1;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = item;
  }

  /**
   * @internal `heapq.heappop` (Lib/heapq.py `_siftup`), the same moves and comparisons, so items that compare equal
   * come out in asyncio's order: the smaller child moves up (the right one on a tie) down to a leaf, where the last
   * item goes, then that item sifts up (`_siftdown`). A textbook sift-down that stops early pops ties in another
   * order. The comparisons all come before the moves, so a `compare` that throws leaves the queue unchanged.
   */
  protected override _get(): T {
    const a = this._queue;
    const top = a[0]!;
    const n = a.length - 1; // the heap's size once `top` is out
    if (n === 0) {
      a.pop();
      return top;
    }
    const last = a[n]!;
    const cmp = this.#compare;
    // Every comparison comes first, on the heap as it is, so a `compare` that throws leaves the queue unchanged.
    // The smaller child (the right one on a tie) moves up at each level down to a leaf: find that leaf.
    let leaf = 0;
    for (let c = 1; c < n; c = 2 * leaf + 1) {
      if (c + 1 < n && !(cmp(a[c]!, a[c + 1]!) < 0)) c++;
      leaf = c;
    }
    // Where `last` comes to rest sifting up from the leaf: past every node of the path whose item (which has moved
    // up one level by then) it is smaller than.
    let target = leaf;
    while (target > 0 && cmp(last, a[target]!) < 0) target = (target - 1) >> 1;
    // Now move: each node on the root-to-target path takes its child's item on that path, and `last` goes at target.
    a.pop();
    const t1 = target + 1; // 1-based, so its bits below the leading one spell the path from the root
    let prev = 0;
    for (let b = 31 - Math.clz32(t1) - 1; b >= 0; b--) {
      const node = (t1 >>> b) - 1;
      a[prev] = a[node]!;
      prev = node;
    }
    a[target] = last;
    return top;
  }

  /** @internal */
  protected override _size(): number {
    return this._queue.length;
  }
}

/** A queue that returns the most recently added item first (asyncio `LifoQueue`). */
export class LifoQueue<T> extends Queue<T> {
  /** @internal */
  protected override _get(): T {
    return this._queue.pop()!;
  }

  /** @internal */
  protected override _size(): number {
    return this._queue.length;
  }
}
