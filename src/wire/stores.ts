/** The replay-cache stores, for the wire barrel to re-export: the `NonceStore` contract, memory and Redis. */
export { MemoryNonceStore, nonceKey } from './nonces.js';
export type { NonceStore, MemoryNonceStoreOptions } from './nonces.js';
export { RedisNonceStore, openFailClosedRedis } from './redis-nonces.js';
export type { RedisNonceStoreOptions } from './redis-nonces.js';
