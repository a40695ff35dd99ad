/**
 * Idempotency: the `handle_request` of Ronacher's talk "Writing Secure APIs" (PyCon Russia 2014), without its race.
 *
 * The talk's server did `if not nonce_has_been_used(n): perform_modification(); remember_nonce(n)` and answered
 * with a freshly signed result. A retry of an already handled request thus did nothing and got no answer, and two
 * copies arriving together both ran. Here a request marked idempotent is filed under its peer and nonce *before*
 * it runs ({@link IdempotencyCache.begin}); a copy that arrives while it runs waits for the same outcome, and a copy
 * that arrives after gets the cached outcome, re-signed for the connection it came on. Nothing runs twice while the
 * nonce is remembered.
 *
 * Several server processes sharing a Redis nonce store can share outcomes too: give them one
 * {@link RedisOutcomeStore}. A retry that lands on another process then gets the outcome (waiting while the first
 * process still runs it) instead of `TW_REPLAYED_MESSAGE`.
 *
 * A client keeps one {@link IdempotencyKey} per logical operation and passes it to every attempt. Every attempt
 * carries the key's nonce and expires at the same instant as the first one, so no attempt can be accepted after
 * the server may have forgotten the nonce (which would run the operation again).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { StoreUnavailable, TulipError } from '../errors.js';
import { IDEMPOTENCY_CACHE_MAX_ENTRIES } from '../constants.js';
import { systemClock } from '../loop/clock.js';
import type { Clock } from '../loop/clock.js';
import { openFailClosedRedis } from './redis-nonces.js';

/** Bytes in an idempotency nonce: the envelope's 128-bit nonce. */
export const IDEMPOTENCY_NONCE_SIZE = 16;

/**
 * The client's handle on one logical operation that may be retried (on the same connection or a new one).
 *
 * The first call that uses the key fixes {@link expiresAt} (epoch seconds); later calls send the same nonce with a
 * TTL that ends at that same instant, and fail with `TimeoutError` once it has passed.
 */
export class IdempotencyKey {
  /** The nonce every attempt carries (16 bytes). */
  readonly nonce: Buffer;
  /** Epoch seconds at which the first attempt (and so every attempt) expires; null until the first attempt is sent. */
  expiresAt: number | null = null;

  /**
   * @param nonce 16 bytes to reuse (e.g. persisted across a restart); default 16 fresh random bytes
   * @throws RangeError when `nonce` is not 16 bytes
   */
  constructor(nonce?: Uint8Array) {
    if (nonce !== undefined && nonce.byteLength !== IDEMPOTENCY_NONCE_SIZE) {
      throw new RangeError(`an idempotency nonce is ${IDEMPOTENCY_NONCE_SIZE} bytes, got ${nonce.byteLength}`);
    }
    this.nonce = nonce === undefined ? randomBytes(IDEMPOTENCY_NONCE_SIZE) : Buffer.from(nonce);
  }
}

/** What {@link IdempotencyCache.begin} found. */
export type IdempotencyBegin<V> =
  /** Nobody has run this request: run it, then call `complete(value)` (or `abandon()` if nothing happened). */
  | { readonly status: 'new'; complete(value: V): void; abandon(): void }
  /**
   * It is running: `wait(cb)` calls `cb` with its outcome, or with `undefined` if it was abandoned, synchronously
   * from `complete`/`abandon` (a callback, not a promise, so a loop on a virtual clock sees it at once). It returns a
   * function that takes `cb` back (it is then never called, and nothing holds it): a waiter whose connection closed
   * drops its wait instead of keeping that connection reachable until the first run ends.
   */
  | { readonly status: 'pending'; wait(callback: (value: V | undefined) => void): () => void }
  /** It ran: this is its outcome. */
  | { readonly status: 'done'; readonly value: V };

/** Options of {@link IdempotencyCache}. */
export interface IdempotencyCacheOptions {
  /**
   * Where time comes from: its wall-clock `epoch()`. An outcome is kept until its request's `expiresAt` + skew, a
   * wall-clock instant (the one its retries are accepted by), so it is measured on that clock, also across a step
   * of the wall clock. Default the system clock.
   */
  clock?: Clock;
  /**
   * Most finished outcomes kept; beyond it the oldest is forgotten. Default {@link IDEMPOTENCY_CACHE_MAX_ENTRIES}.
   * Forgetting is safe: the nonce store still refuses the retry (ReplayedMessage), it just gets no cached answer.
   */
  maxEntries?: number;
}

interface Pending<V> {
  until: number;
  waiters: ((value: V | undefined) => void)[];
}

/**
 * Outcomes of idempotent requests, keyed by peer identity and nonce, each kept until its request's nonce expires.
 *
 * `begin` is one synchronous check-and-set, so two copies of a request can never both get `'new'`. Running entries
 * are never evicted (they are bounded by the calls in flight); finished ones are kept at most `maxEntries`, in
 * insertion order, and expired ones are dropped as they are met. Share one cache between every connection of a
 * server (as the nonce store is shared) so a retry on a new connection finds the first attempt.
 */
export class IdempotencyCache<V = unknown> {
  readonly #clock: Clock;
  readonly #maxEntries: number;
  readonly #pending = new Map<string, Pending<V>>();
  // key → {until, value}; Map order is insertion order, which is completion order.
  readonly #done = new Map<string, { until: number; value: V }>();
  // key → until, for requests abandoned before anything ran: the nonce store still remembers their nonce, so a retry
  // arrives as a duplicate, and this is how it learns that it may run (bounded like #done).
  readonly #abandoned = new Map<string, number>();

  /** @throws RangeError when `maxEntries` is not an integer >= 1 */
  constructor(options: IdempotencyCacheOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    const max = options.maxEntries ?? IDEMPOTENCY_CACHE_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxEntries must be an integer >= 1, got ${String(max)}`);
    this.#maxEntries = max;
  }

  /** The cache key of a request: the peer's identity string and the request's nonce (distinct inputs never collide). */
  static key(peer: string, nonce: Uint8Array): string {
    const n = Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('hex');
    return `${n}:${peer}`;
  }

  /** Finished outcomes held (expired ones not yet met included). */
  get size(): number {
    return this.#done.size;
  }

  /** Requests running now. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Looks the request up and, when nobody has run it, files it as running.
   *
   * @param key from {@link IdempotencyCache.key}
   * @param ttl seconds the outcome is kept after this call (the nonce's remaining lifetime); <= 0 keeps nothing
   *   once the request finishes
   */
  begin(key: string, ttl: number): IdempotencyBegin<V> {
    const found = this.lookup(key);
    if (found !== null) return found;
    const entry: Pending<V> = { until: this.#clock.epoch() + ttl, waiters: [] };
    this.#abandoned.delete(key);
    this.#pending.set(key, entry);
    let settled = false;
    const settle = (value: V | undefined, keep: boolean): void => {
      if (settled) return;
      settled = true;
      if (this.#pending.get(key) === entry) this.#pending.delete(key);
      if (entry.until > this.#clock.epoch()) {
        if (keep) this.#store(key, entry.until, value as V);
        else this.#remember(this.#abandoned, key, entry.until);
      }
      // A waiter that throws must not keep the others from hearing the outcome: report it after all ran.
      let failure: unknown = null;
      // A snapshot: a waiter may take another one back (its connection closing) while these run.
      for (const w of entry.waiters.splice(0)) {
        try {
          w(value);
        } catch (err) {
          failure ??= err;
        }
      }
      if (failure !== null) throw failure;
    };
    return {
      status: 'new',
      complete: (value: V) => settle(value, true),
      abandon: () => settle(undefined, false),
    };
  }

  /** Looks the request up without filing it: null when nobody ran it (or its outcome was forgotten). */
  lookup(key: string): Exclude<IdempotencyBegin<V>, { status: 'new' }> | null {
    const running = this.#pending.get(key);
    if (running !== undefined) {
      return {
        status: 'pending',
        wait: (callback) => {
          running.waiters.push(callback);
          return () => {
            const i = running.waiters.indexOf(callback);
            if (i >= 0) running.waiters.splice(i, 1);
          };
        },
      };
    }
    const done = this.#done.get(key);
    if (done !== undefined) {
      if (done.until > this.#clock.epoch()) return { status: 'done', value: done.value };
      this.#done.delete(key);
    }
    return null;
  }

  /**
   * True when the request was filed and then abandoned (refused or cancelled before anything ran) and nobody has
   * begun it since: a copy that reuses its nonce may run it (see {@link begin}). False once that is forgotten (after
   * its ttl, or evicted beyond `maxEntries`): callers then refuse the copy, which is safe.
   */
  wasAbandoned(key: string): boolean {
    const until = this.#abandoned.get(key);
    if (until === undefined) return false;
    if (until > this.#clock.epoch()) return true;
    this.#abandoned.delete(key);
    return false;
  }

  /** Forgets everything; running requests still settle their waiters. */
  clear(): void {
    this.#done.clear();
    this.#abandoned.clear();
  }

  #store(key: string, until: number, value: V): void {
    this.#remember(this.#done, key, { until, value });
  }

  #remember<E extends number | { until: number }>(map: Map<string, E>, key: string, entry: E): void {
    map.delete(key);
    map.set(key, entry);
    const now = this.#clock.epoch();
    // Drop expired entries at the head (O(1) amortised: each entry is dropped once), then enforce the bound.
    for (const [k, e] of map) {
      if (map.size > this.#maxEntries || (typeof e === 'number' ? e : e.until) <= now) map.delete(k);
      else break;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sharing outcomes between processes

/** What {@link OutcomeStore.get} found: the finished outcome's bytes, a marker that it is running, or nothing. */
export type SharedOutcome = Uint8Array | 'running' | null;

/**
 * A second tier behind the in-process {@link IdempotencyCache}, shared by server processes: for each idempotent
 * request, a "running" marker while it runs, then its encoded outcome, each for the nonce's remaining lifetime.
 * Keys are {@link IdempotencyCache.key} strings. Every method rejects with `StoreUnavailable` when the backend cannot
 * be reached (callers then refuse the retry: fail closed, never run twice).
 */
export interface OutcomeStore {
  /** Marks `key` as running for `ttl` seconds, unless something is already stored under it. */
  markRunning(key: string, ttl: number): Promise<void>;
  /** Stores the finished outcome (replacing the marker) for `ttl` seconds. */
  store(key: string, outcome: Uint8Array, ttl: number): Promise<void>;
  /** Removes the marker: the request was refused or cancelled before anything ran, so a retry may run it. */
  forget(key: string): Promise<void>;
  /** What is stored under `key`. */
  get(key: string): Promise<SharedOutcome>;
  /** Releases what the store opened itself (never a client it was given). */
  close(): Promise<void>;
}

/** Options of {@link RedisOutcomeStore}. */
export interface RedisOutcomeStoreOptions {
  /** An ioredis client (used, never closed), or a `redis://` URL (a fail-closed client is opened and closed by `close()`). */
  redis: Redis | string;
  /** Key prefix. Default `'tulipwire:outcome:'`. */
  prefix?: string;
}

/**
 * An {@link OutcomeStore} in Redis: `SET key "" PX ttl NX` marks a request running, `SET key <outcome> PX ttl` stores
 * its outcome, `DEL` forgets it, `GET` reads it (an empty value is the marker; outcomes are never empty).
 */
export class RedisOutcomeStore implements OutcomeStore {
  readonly #client: Redis;
  readonly #owned: boolean;
  readonly #prefix: string;
  #closed = false;

  /** Opens a fail-closed client when given a URL; a client you pass is used as it is and never closed. */
  constructor(options: RedisOutcomeStoreOptions) {
    if (typeof options.redis === 'string') {
      this.#client = openFailClosedRedis(options.redis);
      this.#owned = true;
    } else {
      this.#client = options.redis;
      this.#owned = false;
    }
    this.#prefix = options.prefix ?? 'tulipwire:outcome:';
  }

  /** {@inheritDoc OutcomeStore.markRunning} */
  async markRunning(key: string, ttl: number): Promise<void> {
    await this.#run(() => this.#client.set(this.#prefix + key, '', 'PX', toPx(ttl), 'NX'));
  }

  /** {@inheritDoc OutcomeStore.store} */
  async store(key: string, outcome: Uint8Array, ttl: number): Promise<void> {
    if (outcome.byteLength === 0) throw new RangeError('an outcome is never empty (the empty value is the running marker)');
    await this.#run(() => this.#client.set(this.#prefix + key, Buffer.from(outcome), 'PX', toPx(ttl)));
  }

  /** {@inheritDoc OutcomeStore.forget} */
  async forget(key: string): Promise<void> {
    await this.#run(() => this.#client.del(this.#prefix + key));
  }

  /** {@inheritDoc OutcomeStore.get} */
  async get(key: string): Promise<SharedOutcome> {
    const v = await this.#run(() => this.#client.getBuffer(this.#prefix + key));
    if (v === null) return null;
    return v.length === 0 ? 'running' : v;
  }

  /** Quits the client if the store opened it. Later calls reject with StoreUnavailable. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#owned) return;
    try {
      await this.#client.quit();
    } catch {
      // Redis already gone.
    }
    this.#client.disconnect();
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailable('the outcome store is closed');
    try {
      return await op();
    } catch (err) {
      throw TulipError.isTulipError(err) ? err : new StoreUnavailable('Redis outcome store unavailable', { cause: err });
    }
  }
}

function toPx(ttl: number): number {
  if (!Number.isFinite(ttl)) throw new RangeError(`ttl must be finite seconds, got ${String(ttl)}`);
  return Math.max(1, Math.ceil(ttl * 1000));
}
