/**
 * Idempotent RPC across two server instances that share replay protection through a real redis-server (as two
 * processes would). Without a shared outcome store, a retry that lands on the instance which ran the call gets its
 * outcome, and a retry that lands on the other instance is refused with TW_REPLAYED_MESSAGE (its nonce is in Redis,
 * its outcome is not in that instance's cache): never run a second time. With a RedisOutcomeStore the other
 * instance answers too, waiting while the first instance still runs the call.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';
import { createMemoryPair } from '../../src/net/memory-transport.js';
import { Keyring } from '../../src/wire/keyring.js';
import { RedisNonceStore } from '../../src/wire/redis-nonces.js';
import { IdempotencyKey, RedisOutcomeStore } from '../../src/wire/idempotency.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';
import type { RejectionError } from '../../src/wire/message-protocol.js';
import { RpcError } from '../../src/errors.js';
import { sleep } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
let redis: RedisServer;
const stores: { close(): Promise<void> }[] = [];

beforeAll(async () => { redis = await startRedis(); }, 60_000);
afterAll(async () => { await redis?.stop(); });
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

class Server extends RpcProtocol {
  readonly rejected: RejectionError[] = [];
  override messageRejected(error: RejectionError): void {
    this.rejected.push(error);
  }
}

/**
 * Two server "processes" sharing one Redis for nonces and idempotent outcomes (each its own clients): returns
 * `connect(instance)`, which opens an in-memory connection from a fresh client to that instance.
 */
function sharedInstances(keyring: Keyring, router: RpcRouter, prefix: string): (instance: number) => Promise<{ server: Server; client: RpcProtocol }> {
  const instances = [0, 1].map(() => {
    const nonceStore = new RedisNonceStore({ redis: redis.url, prefix: `${prefix}:` });
    const outcomeStore = new RedisOutcomeStore({ redis: redis.url, prefix: `${prefix}-outcome:` });
    stores.push(nonceStore, outcomeStore);
    return { nonceStore, outcomeStore };
  });
  return async (instance) => {
    const server = new Server({ keyring, side: 'server', logger: {}, router, ...instances[instance]! });
    const client = new RpcProtocol({ keyring, side: 'client', logger: {} });
    createMemoryPair(fx.loop, client, server);
    await sleep(0);
    return { server, client };
  };
}

describe('idempotent RPC with a Redis nonce store shared by two server instances', () => {
  it('runs once; the instance that ran it answers retries, the other refuses them', async () => {
    await fx.run(async () => {
      const keyring = new Keyring();
      keyring.add('k1', Buffer.alloc(32, 3));
      let charges = 0;
      const router = new RpcRouter();
      router.handle('charge', (n: number) => ({ n, chargeNo: ++charges }));
      // Two "processes": each its own RedisNonceStore (own client) on the same Redis, so each its own outcome cache.
      const instances = [0, 1].map(() => {
        const nonceStore = new RedisNonceStore({ redis: redis.url, prefix: 'rpc-test:' });
        stores.push(nonceStore);
        return nonceStore;
      });
      const connect = async (instance: number) => {
        const server = new Server({ keyring, side: 'server', logger: {}, router, nonceStore: instances[instance]! });
        const client = new RpcProtocol({ keyring, side: 'client', logger: {} });
        createMemoryPair(fx.loop, client, server);
        await sleep(0);
        return { server, client };
      };
      const key = new IdempotencyKey();
      const a = await connect(0);
      expect(await a.client.call('charge', 7, { idempotent: key })).toEqual({ n: 7, chargeNo: 1 });
      // retry on a new connection to the same instance: answered from its cache
      const b = await connect(0);
      expect(await b.client.call('charge', 7, { idempotent: key })).toEqual({ n: 7, chargeNo: 1 });
      expect(b.server.stats.duplicates).toBe(1);
      // retry on the other instance: Redis knows the nonce, that instance has no outcome: refused, not run
      const c = await connect(1);
      await expect(c.client.call('charge', 7, { idempotent: key })).rejects.toMatchObject({ code: 'TW_REPLAYED_MESSAGE', remote: true });
      expect(c.server.rejected.map((e) => e.code)).toEqual(['TW_REPLAYED_MESSAGE']);
      expect(charges).toBe(1);
      // a new operation runs on either instance
      expect(await c.client.call('charge', 8, { idempotent: new IdempotencyKey() })).toEqual({ n: 8, chargeNo: 2 });
    });
  });

  it('with a shared RedisOutcomeStore the other instance answers the retry, waiting while the first still runs', async () => {
    await fx.run(async () => {
      const keyring = new Keyring();
      keyring.add('k1', Buffer.alloc(32, 4));
      let charges = 0;
      const started = fx.loop.createFuture<void>();
      const release = fx.loop.createFuture<void>();
      const router = new RpcRouter();
      router.handle('charge', async (n: number) => {
        charges++;
        if (!started.done()) started.setResult();
        await release;
        return { n, chargeNo: charges };
      });
      router.handle('refuse', () => { throw new RpcError('no', { remoteCode: 'APP_NO' }); });
      const connect = sharedInstances(keyring, router, 'rpc-shared');
      const key = new IdempotencyKey();
      const a = await connect(0);
      const first = a.client.call('charge', 5, { idempotent: key });
      await started;
      const b = await connect(1);
      const retry = b.client.call('charge', 5, { idempotent: key });   // instance 1 sees "running" and polls
      for (let i = 0; i < 400 && b.server.stats.duplicates === 0; i++) await sleep(0.005);
      expect(b.server.stats.duplicates).toBe(1);
      release.setResult();
      expect(await first).toEqual({ n: 5, chargeNo: 1 });
      expect(await retry).toEqual({ n: 5, chargeNo: 1 });
      // errors a handler threw are shared the same way
      const ekey = new IdempotencyKey();
      await expect(a.client.call('refuse', null, { idempotent: ekey })).rejects.toMatchObject({ remoteCode: 'APP_NO' });
      await expect(b.client.call('refuse', null, { idempotent: ekey })).rejects.toMatchObject({ remoteCode: 'APP_NO' });
      expect(charges).toBe(1);
      expect(b.server.rejected).toEqual([]);
    });
  });

  it('a retry that takes over an abandoned first attempt keeps its running marker, so another instance waits for it', async () => {
    await fx.run(async () => {
      const keyring = new Keyring();
      keyring.add('k1', Buffer.alloc(32, 5));
      let runs = 0;
      const release = fx.loop.createFuture<void>();
      const router = new RpcRouter();
      router.handle('charge', async (n: number) => {
        const run = ++runs;
        if (run === 1) await fx.loop.createFuture<void>();   // the first run is cancelled by its caller
        await release;
        return { n, run };
      });
      const connect = sharedInstances(keyring, router, 'rpc-takeover');
      const key = new IdempotencyKey();
      const a = await connect(0);
      const first = a.client.call('charge', 1, { idempotent: key });
      for (let i = 0; i < 400 && runs === 0; i++) await sleep(0.005);
      const b = await connect(0);
      const retry = b.client.call('charge', 1, { idempotent: key });   // same instance: waits on the first run
      for (let i = 0; i < 400 && b.server.stats.duplicates === 0; i++) await sleep(0.005);
      first.cancel();   // the first run is abandoned; the waiting retry runs it
      for (let i = 0; i < 400 && runs < 2; i++) await sleep(0.005);
      expect(runs).toBe(2);
      await sleep(0.05);   // the outcome store's writes for the takeover have landed in Redis
      const c = await connect(1);
      const elsewhere = c.client.call('charge', 1, { idempotent: key });   // must see "running" and wait
      await sleep(0.1);
      release.setResult();
      expect(await retry).toEqual({ n: 1, run: 2 });
      expect(await elsewhere).toEqual({ n: 1, run: 2 });
      expect(runs).toBe(2);
      expect(c.server.rejected).toEqual([]);
    });
  });
});
