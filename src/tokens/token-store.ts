/**
 * Where `TokenService` keeps its server-side state: access tokens with their TTL, each account's token generation,
 * and the refresh-token ids already used. `MemoryTokenStore` for one process; `RedisTokenStore` for several
 * servers (./redis-token-store.ts). Same pattern as the nonce stores: atomic steps, fail closed.
 *
 * Stores never see a bearer token: the service hands them `base64url(SHA-256(token))`, so a dump of the store does
 * not yield usable access tokens.
 */
import { StoreUnavailable } from '../errors.js';
import { systemClock } from '../loop/clock.js';
import type { Clock } from '../loop/clock.js';

/** What the server remembers about one access token. */
export interface AccessRecord {
  /** The account the token was issued to (as a string). */
  accountId: string;
  /** The account's token generation when it was issued; a later bump revokes it. */
  generation: number;
  /** The account's roles when the token was issued. */
  roles: string[];
  /** The roles the token grants (the subset of the account's roles it was issued for). */
  scope: string[];
  /** When it was issued, epoch seconds. */
  issuedAt: number;
  /** When it expires, epoch seconds. */
  expiresAt: number;
}

/** The server-side state of a {@link TokenService}. Every method is atomic on its own. */
export interface TokenStore {
  /** Stores `record` under `id` for `ttl` seconds (after which it may be forgotten). */
  putAccess(id: string, record: AccessRecord, ttl: number): Promise<void>;
  /** The record under `id`, or null when unknown or forgotten. */
  getAccess(id: string): Promise<AccessRecord | null>;
  /** Forgets `id`; true when it was there. */
  deleteAccess(id: string): Promise<boolean>;
  /** The account's current token generation (0 when never bumped). */
  getGeneration(accountId: string): Promise<number>;
  /** Increments the account's generation and returns the new value (atomic: concurrent bumps each count). */
  bumpGeneration(accountId: string): Promise<number>;
  /** True exactly once per `id` within `ttl` seconds (a NonceStore `reserve`): single-use refresh tokens. */
  claimOnce(id: string, ttl: number): Promise<boolean>;
  /**
   * The epoch second from which this store's memory is complete. A store can lose its state (the process holding a
   * {@link MemoryTokenStore} restarts; a Redis without persistence crashes, reboots or is flushed) and with it every
   * generation bump and every used refresh-token id, which would make revoked and used refresh tokens good again;
   * `TokenService` refuses a refresh token signed before this second instead. `now` is the caller's epoch second
   * (the service's clock, the one its tokens are signed with), for a store that has to start its state now. Optional:
   * leave it out only for a store whose state cannot be lost.
   */
  stateSince?(now: number): Promise<number>;
  /** Releases what the store opened itself. Later calls reject with StoreUnavailable. */
  close(): Promise<void>;
}

/** Options of {@link MemoryTokenStore}. */
export interface MemoryTokenStoreOptions {
  /** Where time comes from (monotonic `time()`, for TTLs). Default the system clock. */
  clock?: Clock;
}

/**
 * A map whose entries expire: O(1) per operation, expired entries evicted a few at a time from a queue ordered by
 * insertion (each entry is checked against its own expiry on read, so eviction order only affects memory).
 */
class ExpiringMap<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();
  readonly #queue: { key: string; until: number }[] = [];
  #head = 0;

  readonly clock: Clock;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    const now = this.clock.time();
    this.#evict(now);
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V, ttl: number): void {
    const now = this.clock.time();
    this.#evict(now);
    const until = now + ttl;
    this.#entries.set(key, { value, until });
    this.#queue.push({ key, until });
  }

  /** Sets `key` only when absent (or expired); true when it did. */
  setIfAbsent(key: string, value: V, ttl: number): boolean {
    if (this.get(key) !== undefined) return false;
    this.set(key, value, ttl);
    return true;
  }

  delete(key: string): boolean {
    const had = this.get(key) !== undefined;
    this.#entries.delete(key);
    return had;
  }

  clear(): void {
    this.#entries.clear();
    this.#queue.length = 0;
    this.#head = 0;
  }

  // Looks at up to 16 of the oldest queued entries (TTLs differ, so the queue is only roughly ordered: an entry
  // with a long TTL at the head delays, but never breaks, eviction of the ones behind it).
  #evict(now: number): void {
    for (let n = 0; n < 16 && this.#head < this.#queue.length; n++) {
      const q = this.#queue[this.#head]!;
      if (q.until > now) {
        // Not expired yet: rotate it to the back so shorter-lived entries behind it get looked at.
        if (this.#queue.length - this.#head > 1) this.#queue.push(q);
        else break;
      } else {
        const e = this.#entries.get(q.key);
        if (e !== undefined && e.until <= now) this.#entries.delete(q.key);
      }
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

/** The in-process {@link TokenStore}: state lives as long as the process. */
export class MemoryTokenStore implements TokenStore {
  readonly #access: ExpiringMap<AccessRecord>;
  readonly #claims: ExpiringMap<true>;
  readonly #generations = new Map<string, number>();
  readonly #since: number;
  #closed = false;

  constructor(options: MemoryTokenStoreOptions = {}) {
    const clock = options.clock ?? systemClock;
    this.#access = new ExpiringMap(clock);
    this.#claims = new ExpiringMap(clock);
    this.#since = Math.floor(clock.epoch());
  }

  /** {@inheritDoc TokenStore.stateSince} For this store: when it was made (its state dies with the process). */
  async stateSince(): Promise<number> {
    this.#check();
    return this.#since;
  }

  /** How many access records are held (expired ones not yet evicted included). */
  get size(): number {
    return this.#access.size;
  }

  #check(): void {
    if (this.#closed) throw new StoreUnavailable('the token store is closed');
  }

  /** {@inheritDoc TokenStore.putAccess} */
  async putAccess(id: string, record: AccessRecord, ttl: number): Promise<void> {
    this.#check();
    checkTtl(ttl);
    this.#access.set(id, structuredClone(record), ttl);
  }

  /** {@inheritDoc TokenStore.getAccess} */
  async getAccess(id: string): Promise<AccessRecord | null> {
    this.#check();
    const r = this.#access.get(id);
    return r === undefined ? null : structuredClone(r);
  }

  /** {@inheritDoc TokenStore.deleteAccess} */
  async deleteAccess(id: string): Promise<boolean> {
    this.#check();
    return this.#access.delete(id);
  }

  /** {@inheritDoc TokenStore.getGeneration} */
  async getGeneration(accountId: string): Promise<number> {
    this.#check();
    return this.#generations.get(accountId) ?? 0;
  }

  /** {@inheritDoc TokenStore.bumpGeneration} */
  async bumpGeneration(accountId: string): Promise<number> {
    this.#check();
    const next = (this.#generations.get(accountId) ?? 0) + 1;
    this.#generations.set(accountId, next);
    return next;
  }

  /** {@inheritDoc TokenStore.claimOnce} */
  async claimOnce(id: string, ttl: number): Promise<boolean> {
    this.#check();
    checkTtl(ttl);
    return this.#claims.setIfAbsent(id, true, ttl);
  }

  /** Forgets everything and refuses further calls. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#access.clear();
    this.#claims.clear();
    this.#generations.clear();
  }
}

/** Checks a TTL: finite seconds > 0. */
export function checkTtl(ttl: number): void {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) throw new RangeError(`ttl must be > 0 seconds, got ${String(ttl)}`);
}
