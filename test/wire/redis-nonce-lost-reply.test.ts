/**
 * RedisNonceStore reserved with `SET key 1 PX ttl NX` and read a nil as "already reserved". When the connection drops
 * after Redis ran the SET but before its reply arrived, ioredis (with the store's own fail-closed client too) sends
 * the command again once it has reconnected; that second SET finds the key the first one wrote, answers nil, and a
 * nonce seen for the first time was refused as a replay: the message dropped and counted against the peer, and an
 * idempotent request could then never run (each retry a "replay" of an attempt that never ran, until its nonce
 * expired). Each reserve now writes a token of its own and confirms a nil with a GET: its own token means it won.
 *
 * A real redis-server, reached through a real TCP proxy on 127.0.0.1 that drops one reply and closes the client's
 * connection (the network cut), so ioredis reconnects and re-sends.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';
import { RedisNonceStore } from '../../src/wire/redis-nonces.js';

let redis: RedisServer;
beforeAll(async () => { redis = await startRedis(); }, 30_000);
afterAll(async () => { await redis?.stop(); });

/** A proxy to Redis; `cutNextReply()` makes it drop the next bytes Redis sends and close that client connection. */
async function cuttingProxy(port: number) {
  let cut = false;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const r = net.connect(port, '127.0.0.1');
    sockets.add(c);
    sockets.add(r);
    c.on('data', (d) => r.write(d));
    r.on('data', (d) => {
      if (cut) {
        cut = false;
        cuts++;
        c.destroy();
        r.destroy();
        return;
      }
      c.write(d);
    });
    for (const s of [c, r]) {
      s.on('error', () => undefined);
      s.on('close', () => { sockets.delete(s); (s === c ? r : c).destroy(); });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cutNextReply: () => { cut = true; },
    get cuts() { return cuts; },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('RedisNonceStore when a reply is lost after Redis ran the SET', () => {
  it('a fresh nonce is still reserved (true), and only once: a replay of it is false', async () => {
    const proxy = await cuttingProxy(redis.port);
    const store = new RedisNonceStore({ redis: proxy.url, prefix: `lost:${randomBytes(4).toString('hex')}:` });
    try {
      expect(await store.reserve(randomBytes(16), 30)).toBe(true);   // connected
      const n = randomBytes(16);
      proxy.cutNextReply();
      expect(await store.reserve(n, 30)).toBe(true);
      expect(proxy.cuts).toBe(1);
      expect(await store.reserve(n, 30)).toBe(false);
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('the same for reserves sent together in one pipeline', async () => {
    const proxy = await cuttingProxy(redis.port);
    const store = new RedisNonceStore({ redis: proxy.url, prefix: `lostp:${randomBytes(4).toString('hex')}:` });
    try {
      const seen = randomBytes(16);
      expect(await store.reserve(seen, 30)).toBe(true);
      const fresh = [randomBytes(16), randomBytes(16), randomBytes(16)];
      proxy.cutNextReply();
      const results = await Promise.all([...fresh, seen].map((n) => store.reserve(n, 30)));
      expect(proxy.cuts).toBe(1);
      expect(results).toEqual([true, true, true, false]);
      expect(await Promise.all(fresh.map((n) => store.reserve(n, 30)))).toEqual([false, false, false]);
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});
