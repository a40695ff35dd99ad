/**
 * The Redis {@link TokenStore}: several servers share access tokens, generations and used refresh-token ids.
 *
 * Keys (under `prefix`, default `tulipwire:token:`): `at:<id>` → the access record as JSON with `PX ttl`;
 * `gen:<account>` → the generation, bumped with `INCR` (atomic, never expires); `rt:<id>` → `SET NX PX` for
 * single-use refresh tokens; `epoch` → the epoch second the store's state begins (`SET NX`, never expires: a Redis
 * that comes back empty gets a new one, see {@link RedisTokenStore.stateSince}). Every failure to reach Redis
 * rejects with `StoreUnavailable` (fail closed).
 */
import { Redis } from 'ioredis';
import { StoreUnavailable } from '../errors.js';
import { REDIS_COMMAND_TIMEOUT } from '../constants.js';
import type { AccessRecord, TokenStore } from './token-store.js';
import { checkTtl } from './token-store.js';

/** Options of {@link RedisTokenStore}. */
export interface RedisTokenStoreOptions {
  /** An ioredis client (never closed by the store) or a `redis://` URL (the store opens and closes its own). */
  redis: Redis | string;
  /** Key prefix. Default `'tulipwire:token:'`. */
  prefix?: string;
}

/** A {@link TokenStore} in Redis; see the module comment for the keys. */
export class RedisTokenStore implements TokenStore {
  readonly #client: Redis;
  readonly #owned: boolean;
  readonly #prefix: string;
  #closed = false;

  constructor(options: RedisTokenStoreOptions) {
    if (typeof options.redis === 'string') {
      // Fail closed: one reconnect attempt per command, a bounded wait, auto-pipelining under load.
      this.#client = new Redis(options.redis, {
        enableAutoPipelining: true,
        maxRetriesPerRequest: 1,
        commandTimeout: REDIS_COMMAND_TIMEOUT * 1000,
        connectTimeout: REDIS_COMMAND_TIMEOUT * 1000,
        retryStrategy: (times: number) => Math.min(times * 100, 1000),
      });
      this.#client.on('error', () => {}); // failures reach callers as StoreUnavailable
      this.#owned = true;
    } else {
      this.#client = options.redis;
      this.#owned = false;
    }
    this.#prefix = options.prefix ?? 'tulipwire:token:';
  }

  async #run<T>(op: (c: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailable('the token store is closed');
    try {
      return await op(this.#client);
    } catch (err) {
      throw new StoreUnavailable(`redis: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** {@inheritDoc TokenStore.putAccess} */
  async putAccess(id: string, record: AccessRecord, ttl: number): Promise<void> {
    checkTtl(ttl);
    await this.#run((c) => c.set(this.#prefix + 'at:' + id, JSON.stringify(record), 'PX', Math.max(1, Math.ceil(ttl * 1000))));
  }

  /** {@inheritDoc TokenStore.getAccess} */
  async getAccess(id: string): Promise<AccessRecord | null> {
    const raw = await this.#run((c) => c.get(this.#prefix + 'at:' + id));
    if (raw === null) return null;
    try {
      return JSON.parse(raw) as AccessRecord;
    } catch {
      return null; // not ours: treat as unknown (refused)
    }
  }

  /** {@inheritDoc TokenStore.deleteAccess} */
  async deleteAccess(id: string): Promise<boolean> {
    return (await this.#run((c) => c.del(this.#prefix + 'at:' + id))) > 0;
  }

  /** {@inheritDoc TokenStore.getGeneration} */
  async getGeneration(accountId: string): Promise<number> {
    const raw = await this.#run((c) => c.get(this.#prefix + 'gen:' + accountId));
    return raw === null ? 0 : Number(raw);
  }

  /** {@inheritDoc TokenStore.bumpGeneration} */
  async bumpGeneration(accountId: string): Promise<number> {
    return this.#run((c) => c.incr(this.#prefix + 'gen:' + accountId));
  }

  /** {@inheritDoc TokenStore.claimOnce} */
  async claimOnce(id: string, ttl: number): Promise<boolean> {
    checkTtl(ttl);
    const reply = await this.#run((c) => c.set(this.#prefix + 'rt:' + id, '1', 'PX', Math.max(1, Math.ceil(ttl * 1000)), 'NX'));
    return reply === 'OK';
  }

  /**
   * {@inheritDoc TokenStore.stateSince} For this store: the value of the `epoch` key, set (`SET NX`, to `now`, by
   * default this machine's clock) by the first store that finds it missing: at the first use of a fresh Redis, and again after Redis lost
   * its data (no persistence and a crash or reboot, `FLUSHALL`, a replica promoted empty), which took the key with
   * it. A Redis restored from an older snapshot brings the old key back and is not detected: see
   * docs/security-model.md.
   */
  async stateSince(now: number = Math.floor(Date.now() / 1000)): Promise<number> {
    const key = this.#prefix + 'epoch';
    const raw = await this.#run(async (c) => {
      const [[setErr], [getErr, value]] = (await c.multi().set(key, String(Math.floor(now)), 'NX').get(key).exec()) as [Error | null, unknown][];
      if (setErr !== null || getErr !== null) throw setErr ?? getErr;
      return value;
    });
    const since = Number(raw);
    if (typeof raw !== 'string' || !Number.isSafeInteger(since)) {
      throw new StoreUnavailable(`redis: the key ${key} holds ${JSON.stringify(raw)}, not an epoch second`);
    }
    return since;
  }

  /** Quits the client if the store opened it. Later calls reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#owned) return;
    try {
      await this.#client.quit();
    } catch {
      // already gone
    }
    this.#client.disconnect();
  }
}
