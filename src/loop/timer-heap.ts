/**
 * @internal The loop's timer heap: a binary min-heap of {@link TimerHandle}s keyed by `(when, seq)`, so timers
 * due at the same time fire in scheduling order (asyncio leaves that order undefined). Cancelled timers stay in the
 * heap until they surface or until {@link TimerHeap.compact} rebuilds it.
 */
import type { TimerHandle } from './events.js';

function less(a: TimerHandle, b: TimerHandle): boolean {
  return a._when < b._when || (a._when === b._when && a._seq < b._seq);
}

/** @internal */
export class TimerHeap {
  /** The heap array; index 0 is the earliest timer. */
  readonly items: TimerHandle[] = [];
  /** How many entries are cancelled but still in the heap. */
  cancelled = 0;

  get size(): number {
    return this.items.length;
  }

  peek(): TimerHandle | undefined {
    return this.items[0];
  }

  push(t: TimerHandle): void {
    const a = this.items;
    let i = a.length;
    a.push(t);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (!less(t, parent)) break;
      a[i] = parent;
      i = p;
    }
    a[i] = t;
  }

  pop(): TimerHandle | undefined {
    const a = this.items;
    const n = a.length;
    if (n === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (n > 1) this.#siftDown(0, last);
    return top;
  }

  #siftDown(i: number, t: TimerHandle): void {
    const a = this.items;
    const n = a.length;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && less(a[r]!, a[c]!)) c = r;
      if (!less(a[c]!, t)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = t;
  }

  /** Drops every cancelled entry and re-heapifies, O(n) (asyncio does this once >50 % of >100 timers are cancelled). */
  compact(): void {
    const a = this.items;
    let j = 0;
    for (let i = 0; i < a.length; i++) {
      const t = a[i]!;
      if (t._cancelled) t._scheduled = false;
      else a[j++] = t;
    }
    a.length = j;
    for (let i = (j >> 1) - 1; i >= 0; i--) this.#siftDown(i, a[i]!);
    this.cancelled = 0;
  }

  clear(): void {
    for (const t of this.items) t._scheduled = false;
    this.items.length = 0;
    this.cancelled = 0;
  }
}
