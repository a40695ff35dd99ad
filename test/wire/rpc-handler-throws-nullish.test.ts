/**
 * A handler may throw anything, and JavaScript lets it throw `null` or `undefined` (a rejected promise with no
 * reason: `Promise.reject()`, a library calling `reject()` bare). The endpoint read a Task-run handler's ending with
 * `task.exception() == null`, which is also true for those: it took the failure for a success, called
 * `task.result()`, which threw the nullish value out of the done callback, and the request got no reply at all
 * (the caller waited for its timeout; an idempotent request's cache entry stayed "running" forever, so every retry
 * waited too). A notification handler failing that way was never reported. Now each is a failure like any other:
 * `TW_RPC` "internal error" to the caller, the failure reported to the loop's exception handler.
 * Real mutual TLS on 127.0.0.1, port 0.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { portOf, useWireTls, untilOn, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import { sleep } from '../../src/loop/index.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x5a);

async function pair(router: RpcRouter): Promise<RpcProtocol> {
  const keyring = oneKeyRing(SECRET);
  const srv = await fx.loop.createServer(() => new RpcProtocol({ keyring, side: 'server', logger: {}, router }),
    '127.0.0.1', 0, { ssl: wx.ca.serverOptions });
  wx.servers.push(srv);
  const [, client] = await fx.loop.createConnection(() => new RpcProtocol({ keyring: oneKeyRing(SECRET), side: 'client', logger: {} }),
    '127.0.0.1', portOf(srv), { ssl: wx.ca.clientOptions });
  wx.clients.push(client);
  return client;
}

async function outcome(f: PromiseLike<unknown>): Promise<unknown> {
  try {
    return { ok: await f };
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
}

describe('a Task-run handler that throws null or undefined', () => {
  it('is answered TW_RPC "internal error" and reported, as any other throw', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      router.handle('undef', async () => { await sleep(0); throw undefined; });
      router.handle('nul', async () => { await sleep(0); throw null; });
      router.handle('bare', () => Promise.reject());   // a plain function returning a promise: also a Task
      router.handle('fine', async () => 'ok');
      const client = await pair(router);
      for (const m of ['undef', 'nul', 'bare']) {
        expect(await outcome(client.call(m, null, { timeout: 10 }))).toEqual({ code: 'TW_RPC', message: 'internal error' });
      }
      // The connection kept serving.
      expect(await client.call('fine')).toBe('ok');
      const reports = fx.take().map((c) => c.message);
      expect(reports).toEqual(['RPC handler undef failed', 'RPC handler nul failed', 'RPC handler bare failed']);
    });
  });

  it('an idempotent one: the outcome is cached, so a retry gets it at once and the handler ran once', async () => {
    await fx.run(async () => {
      let runs = 0;
      const router = new RpcRouter();
      router.handle('charge', async () => { runs++; await sleep(0); throw undefined; });
      const client = await pair(router);
      const key = new IdempotencyKey();
      expect(await outcome(client.call('charge', 1, { idempotent: key, timeout: 10 }))).toEqual({ code: 'TW_RPC', message: 'internal error' });
      expect(await outcome(client.call('charge', 1, { idempotent: key, timeout: 10 }))).toEqual({ code: 'TW_RPC', message: 'internal error' });
      expect(runs).toBe(1);
      expect(fx.take().map((c) => c.message)).toEqual(['RPC handler charge failed']);
    });
  });

  it('a notification handler that rejects with undefined is reported', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      router.onNotify('tick', async () => { await sleep(0); throw undefined; });
      const client = await pair(router);
      client.notify('tick', 1);
      await untilOn(fx.loop, () => fx.records.length > 0, 5);
      expect(fx.take().map((c) => c.message)).toEqual(['notification handler tick failed']);
    });
  });
});
