/**
 * The Redis nonce store: replay protection shared by several server processes or machines.
 *
 * One `SET <prefix><nonce> <token> PX <ttl ms> NX` per nonce: Redis answers `OK` to the first caller and nil to every
 * later one while the key lives, atomically, so two servers sharing one Redis cannot both accept a replayed
 * message. Never GET-then-SET. Reserves made in the same tick go out as one pipeline (one write, one round trip),
 * so the store keeps up under load without a Redis round trip per message.
 *
 * `<token>` is unique to each reserve call. ioredis sends a command again after a reconnect when its reply was lost
 * (the connection dropped after Redis ran it): that second SET then finds the key the first one wrote and answers
 * nil, which read as a replay and refused a message seen for the first time (an idempotent request then could never
 * run: every retry was a "replay" of an attempt that never ran). So a nil is confirmed with a `GET`: the key holding
 * this call's own token means the call won.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { StoreUnavailable } from '../errors.js';
import { REDIS_COMMAND_TIMEOUT } from '../constants.js';
import { checkTtl } from './nonces.js';
import type { NonceStore } from './nonces.js';

/** Options of {@link RedisNonceStore}. */
export interface RedisNonceStoreOptions {
  /**
   * An ioredis client (the store uses it and never closes it), or a `redis://` URL (the store opens a client with
   * auto-pipelining, one retry per command and a {@link REDIS_COMMAND_TIMEOUT} timeout, and `close()` quits it).
   * A client you pass keeps its own settings: with ioredis's defaults a command waits through ~20 reconnect
   * attempts before failing, so build it with {@link openFailClosedRedis} (or the same options) to fail fast.
   */
  redis: Redis | string;
  /** Key prefix, so several applications can share one Redis. Default `'tulipwire:nonce:'`. */
  prefix?: string;
}

interface Pending {
  key: string;
  px: number;
  // This call's own value for the key (see the module comment).
  token: string;
  resolve: (won: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Opens an ioredis client for a store that must fail closed: a command fails (instead of queueing forever) when
 * Redis is down, after one reconnect attempt or {@link REDIS_COMMAND_TIMEOUT} seconds.
 */
export function openFailClosedRedis(url: string): Redis {
  const client = new Redis(url, {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    commandTimeout: REDIS_COMMAND_TIMEOUT * 1000,
    connectTimeout: REDIS_COMMAND_TIMEOUT * 1000,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
  });
  // ioredis prints "Unhandled error event" for every failed reconnect unless someone listens; the failures reach
  // callers as rejected commands, wrapped in StoreUnavailable.
  client.on('error', () => {});
  return client;
}

/**
 * A {@link NonceStore} in Redis (`SET key <token> PX ttl NX`, a nil confirmed by `GET key`), shared by every store
 * that uses the same Redis and prefix.
 *
 * Fails closed: when Redis cannot be reached, `reserve` rejects with `StoreUnavailable` (cause: the ioredis error),
 * so a message is refused rather than accepted without a replay check.
 */
export class RedisNonceStore implements NonceStore {
  readonly #client: Redis;
  readonly #owned: boolean;
  readonly #prefix: string;
  #batch: Pending[] = [];
  #closed = false;
  // Tokens: this store's random id and a counter, unique per reserve call across stores and processes.
  readonly #id = randomBytes(9).toString('base64url');
  #count = 0;

  constructor(options: RedisNonceStoreOptions) {
    if (typeof options.redis === 'string') {
      this.#client = openFailClosedRedis(options.redis);
      this.#owned = true;
    } else {
      this.#client = options.redis;
      this.#owned = false;
    }
    this.#prefix = options.prefix ?? 'tulipwire:nonce:';
  }

  /** The key prefix in use. */
  get prefix(): string {
    return this.#prefix;
  }

  /** {@inheritDoc NonceStore.reserve} */
  reserve(nonce: Uint8Array, ttl: number): Promise<boolean> {
    if (this.#closed) return Promise.reject(new StoreUnavailable('the nonce store is closed'));
    try {
      checkTtl(ttl);
      if (!(nonce instanceof Uint8Array)) throw new TypeError('nonce must be a Uint8Array');
    } catch (err) {
      return Promise.reject(err);
    }
    const key = this.#prefix + Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('base64url');
    const px = Math.max(1, Math.ceil(ttl * 1000));
    const token = `${this.#id}.${(++this.#count).toString(36)}`;
    return new Promise<boolean>((resolve, reject) => {
      this.#batch.push({ key, px, token, resolve, reject });
      // The first reserve of a tick schedules the flush; the rest of the tick joins its pipeline.
      if (this.#batch.length === 1) queueMicrotask(() => this.#flush());
    });
  }

  #flush(): void {
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length === 0) return;
    try {
      this.#send(batch);
    } catch (err) {
      // A client that throws synchronously (misconfigured, closed) still fails closed, never unhandled.
      for (const p of batch) p.reject(unavailable(err));
    }
  }

  #send(batch: Pending[]): void {
    if (batch.length === 1) {
      const p = batch[0]!;
      this.#client.set(p.key, p.token, 'PX', p.px, 'NX').then(
        (reply) => {
          if (reply === 'OK') p.resolve(true);
          else this.#confirm([p]);
        },
        (err: unknown) => p.reject(unavailable(err)),
      );
      return;
    }
    const pipeline = this.#client.pipeline();
    for (const p of batch) pipeline.set(p.key, p.token, 'PX', p.px, 'NX');
    pipeline.exec().then(
      (results) => {
        const taken: Pending[] = [];
        batch.forEach((p, i) => {
          const [err, reply] = results?.[i] ?? [new Error('no reply in the pipeline'), null];
          if (err) p.reject(unavailable(err));
          else if (reply === 'OK') p.resolve(true);
          else taken.push(p);
        });
        if (taken.length > 0) this.#confirm(taken);
      },
      (err: unknown) => {
        for (const p of batch) p.reject(unavailable(err));
      },
    );
  }

  // The SET found the key: a replay, unless the value is this call's own token (its SET ran once already, and the
  // reply was lost and the command sent again). One GET each, pipelined when several; a failure fails closed.
  #confirm(taken: Pending[]): void {
    const settle = (p: Pending, value: unknown): void => p.resolve(value === p.token);
    try {
      if (taken.length === 1) {
        const p = taken[0]!;
        this.#client.get(p.key).then((v) => settle(p, v), (err: unknown) => p.reject(unavailable(err)));
        return;
      }
      const pipeline = this.#client.pipeline();
      for (const p of taken) pipeline.get(p.key);
      pipeline.exec().then(
        (results) => {
          taken.forEach((p, i) => {
            const [err, v] = results?.[i] ?? [new Error('no reply in the pipeline'), null];
            if (err) p.reject(unavailable(err));
            else settle(p, v);
          });
        },
        (err: unknown) => {
          for (const p of taken) p.reject(unavailable(err));
        },
      );
    } catch (err) {
      for (const p of taken) p.reject(unavailable(err));
    }
  }

  /** Quits the client if the store opened it (a client it was given stays open). Later reserves reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#owned) return;
    try {
      await this.#client.quit();
    } catch {
      // Redis already gone: nothing left to release but the socket.
    }
    this.#client.disconnect();
  }
}

function unavailable(err: unknown): StoreUnavailable {
  const detail = err instanceof Error ? err.message : String(err);
  return new StoreUnavailable(`redis: ${detail}`, { cause: err });
}
