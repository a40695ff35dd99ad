/**
 * Nonce stores: the `remember_nonce` of Ronacher's talk "Writing Secure APIs" (PyCon Russia 2014), without its race.
 *
 * The talk's handler did `if not nonce_has_been_used(n): modify(); remember_nonce(n)`, so two copies of one request
 * arriving together both pass the check. A {@link NonceStore} has one atomic operation instead, `reserve`: check and
 * remember in a single step, so exactly one caller wins. Reserve first, act second.
 *
 * {@link MemoryNonceStore} is the embedded default; `RedisNonceStore` (./redis-nonces.ts) shares replay protection
 * between processes and machines.
 */
import { ReplayCacheFull, StoreUnavailable } from '../errors.js';
import { NONCE_BUCKET_WIDTH, NONCE_CACHE_MAX_ENTRIES, NONCE_EVICT_BUDGET } from '../constants.js';
import { systemClock } from '../loop/clock.js';
import type { Clock } from '../loop/clock.js';

/** A replay cache: remembers nonces for a while, and says whether one is new. */
export interface NonceStore {
  /**
   * Remembers `nonce` for `ttl` seconds, atomically.
   *
   * Resolves `true` exactly once per nonce within `ttl` (the first caller, also when several calls race, and also
   * across stores sharing one backend), `false` for every later call until the nonce is forgotten. After `ttl` the
   * nonce may be forgotten. The TTL should cover the message's remaining validity plus the clock-skew allowance.
   *
   * @param nonce the nonce bytes (tulipwire uses 16 random bytes)
   * @param ttl seconds, > 0
   * @throws ReplayCacheFull (rejected promise) when a bounded store is full: it fails closed rather than forget early
   * @throws StoreUnavailable (rejected promise) when the backend cannot be reached or the store is closed. A
   *   MessageProtocol treats any other rejection as StoreUnavailable too (the message is refused, not counted
   *   against the peer).
   */
  reserve(nonce: Uint8Array, ttl: number): Promise<boolean>;
  /** Releases what the store opened itself (never a client it was given). Later `reserve` calls reject. */
  close(): Promise<void>;
}

/** Options of {@link MemoryNonceStore}. */
export interface MemoryNonceStoreOptions {
  /**
   * Where time comes from: its wall-clock `epoch()`, the clock a receiver checks message expiry on, so a nonce is
   * kept exactly as long as its message can be accepted, also across a step of the wall clock (Redis, too, expires
   * keys on its wall clock). Default the system clock.
   */
  clock?: Clock;
  /** Most nonces held at once; when full (after evicting everything expired) `reserve` rejects. Default {@link NONCE_CACHE_MAX_ENTRIES}. */
  maxEntries?: number;
}

/** Turns nonce bytes into a Map key: one char per byte, so distinct nonces never collide. */
export function nonceKey(nonce: Uint8Array): string {
  if (!(nonce instanceof Uint8Array)) throw new TypeError('nonce must be a Uint8Array');
  return Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('latin1');
}

/** Checks a TTL argument: finite seconds > 0. */
export function checkTtl(ttl: number): void {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw new RangeError(`ttl must be a finite number of seconds > 0, got ${String(ttl)}`);
  }
}

/**
 * The in-process nonce store.
 *
 * `reserve` is one synchronous check-and-set (no `await` between the lookup and the insert), so concurrent calls
 * cannot both win. Each entry is filed in a time bucket of {@link NONCE_BUCKET_WIDTH} seconds by its expiry; every
 * `reserve` evicts at most {@link NONCE_EVICT_BUDGET} expired entries from the oldest buckets, so the work per call
 * is O(1) amortised and memory is bounded by the nonces that can still be valid (peak rate × TTL) plus one bucket.
 * A lookup compares the entry's exact expiry, so correctness never depends on how far eviction has got.
 *
 * When `maxEntries` unexpired nonces are held, `reserve` rejects with `ReplayCacheFull`: forgetting an unexpired
 * nonce early would re-open replay, so the store fails closed.
 */
export class MemoryNonceStore implements NonceStore {
  readonly #clock: Clock;
  readonly #maxEntries: number;
  // nonce key → expiry, epoch seconds. The source of truth: an entry is live iff its expiry > now.
  readonly #entries = new Map<string, number>();
  // bucket index (floor(expiry / width)) → keys that expire in it. A key whose entry was replaced after expiring
  // may sit in an old bucket too; eviction only deletes an entry whose own expiry has passed.
  readonly #buckets = new Map<number, string[]>();
  // Min-heap of the bucket indices present in #buckets (at most maxTtl / width + 1 of them).
  readonly #heap: number[] = [];
  // The bucket being drained and how far: eviction resumes here so a big bucket is spread over many calls.
  #draining: { index: number; keys: string[]; pos: number } | null = null;
  #closed = false;

  constructor(options: MemoryNonceStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    const max = options.maxEntries ?? NONCE_CACHE_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxEntries must be an integer >= 1, got ${String(max)}`);
    this.#maxEntries = max;
  }

  /** How many nonces the store holds (expired ones not yet evicted included). */
  get size(): number {
    return this.#entries.size;
  }

  /** The configured capacity, entries. */
  get maxEntries(): number {
    return this.#maxEntries;
  }

  /** {@inheritDoc NonceStore.reserve} */
  reserve(nonce: Uint8Array, ttl: number): Promise<boolean> {
    try {
      return Promise.resolve(this.reserveSync(nonce, ttl));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The synchronous form of {@link reserve}, for callers on a hot path that want no promise.
   * @throws ReplayCacheFull when full; StoreUnavailable when closed; RangeError/TypeError on bad arguments
   */
  reserveSync(nonce: Uint8Array, ttl: number): boolean {
    if (this.#closed) throw new StoreUnavailable('the nonce store is closed');
    checkTtl(ttl);
    const key = nonceKey(nonce);
    // Wall time, not monotonic: the message this nonce protects is accepted while the wall clock says so, and a
    // nonce measured on the monotonic clock was forgotten early after the wall clock stepped back.
    const now = this.#clock.epoch();
    this.#evict(now, NONCE_EVICT_BUDGET);
    const expiry = this.#entries.get(key);
    if (expiry !== undefined && expiry > now) return false;
    if (expiry === undefined && this.#entries.size >= this.#maxEntries) {
      // Full: evict everything that has expired (amortised: each entry is evicted once), then decide.
      this.#evict(now, Infinity);
      if (this.#entries.size >= this.#maxEntries) {
        throw new ReplayCacheFull(`the nonce store holds its maximum of ${this.#maxEntries} unexpired nonces`);
      }
    }
    const until = now + ttl;
    this.#entries.set(key, until);
    this.#file(key, until);
    return true;
  }

  /** Forgets every nonce and refuses further reserves. */
  close(): Promise<void> {
    this.#closed = true;
    this.#entries.clear();
    this.#buckets.clear();
    this.#heap.length = 0;
    this.#draining = null;
    return Promise.resolve();
  }

  #file(key: string, until: number): void {
    const index = Math.floor(until / NONCE_BUCKET_WIDTH);
    const bucket = this.#buckets.get(index);
    if (bucket !== undefined) {
      bucket.push(key);
      return;
    }
    // A bucket under eviction was taken out of #buckets: an expiry that lands in its slot (the wall clock stepped
    // back meanwhile) starts a bucket of its own, which the heap holds until it is due.
    this.#buckets.set(index, [key]);
    heapPush(this.#heap, index);
  }

  // Evicts up to `budget` entries from buckets that lie wholly in the past.
  #evict(now: number, budget: number): void {
    let done = 0;
    while (done < budget) {
      if (this.#draining === null) {
        const head = this.#heap[0];
        // A bucket [i*w, (i+1)*w) holds only expired entries once now >= (i+1)*w.
        if (head === undefined || (head + 1) * NONCE_BUCKET_WIDTH > now) return;
        heapPop(this.#heap);
        const keys = this.#buckets.get(head) ?? [];
        this.#buckets.delete(head);
        this.#draining = { index: head, keys, pos: 0 };
      }
      const d = this.#draining;
      while (d.pos < d.keys.length && done < budget) {
        const key = d.keys[d.pos++]!;
        const expiry = this.#entries.get(key);
        if (expiry !== undefined) {
          if (expiry <= now) this.#entries.delete(key);
          // Live again (the wall clock stepped back since this bucket was due) and filed here only: file it again, or
          // no bucket would hold it any more and it would never be evicted.
          else if (Math.floor(expiry / NONCE_BUCKET_WIDTH) === d.index) this.#file(key, expiry);
        }
        done++;
      }
      if (d.pos >= d.keys.length) this.#draining = null;
    }
  }
}

function heapPush(heap: number[], value: number): void {
  heap.push(value);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]! <= value) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = value;
}

function heapPop(heap: number[]): void {
  const last = heap.pop()!;
  if (heap.length === 0) return;
  let i = 0;
  const n = heap.length;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap[child + 1]! < heap[child]!) child++;
    if (heap[child]! >= last) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
}
