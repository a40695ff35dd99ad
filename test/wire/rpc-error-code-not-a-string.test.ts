/**
 * An ERROR payload carries its code and message as str (docs/wire-format.md, RPC), and a receiver refuses one that
 * does not: TW_BAD_PAYLOAD, counted against the side that sent it. A handler written in JavaScript can throw
 * `new RpcError('not found', {remoteCode: 404})` (an HTTP status, a database errno), or an error whose message is no
 * string; the endpoint sent those values as they were, so the caller got a local "the reply to call … is malformed"
 * instead of the error, and its connection counted a rejection against the server for each (the 16th closes the
 * connection with every other call on it). The same for a notification handler's refusal. Now the code and message
 * travel as their string form ("404"), also when an idempotent outcome is cached and answers a retry.
 * Real mutual TLS on 127.0.0.1, port 0.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { portOf, useWireTls, untilOn, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import { RpcError, TulipError } from '../../src/errors.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';
import type { RejectionError } from '../../src/wire/message-protocol.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x4e);

class Client extends RpcProtocol {
  rejected: RejectionError[] = [];
  override messageRejected(e: RejectionError): void { this.rejected.push(e); }
}

async function outcome(f: PromiseLike<unknown>): Promise<unknown> {
  try {
    return { ok: await f };
  } catch (e) {
    const r = e as RpcError;
    return { code: r.code, remoteCode: r.remoteCode, message: r.message };
  }
}

describe('an error whose code or message is not a string', () => {
  it('reaches the caller as its string form, and nothing is counted against the server', async () => {
    await fx.run(async () => {
      let runs = 0;
      const router = new RpcRouter();
      router.handle('find', () => { throw new RpcError('not found', { remoteCode: 404 as unknown as string }); });
      router.handle('charge', () => { runs++; throw new RpcError('declined', { remoteCode: 51 as unknown as string, data: { retry: false } }); });
      router.handle('odd', () => {
        const e = new RpcError('x', { remoteCode: 'APP_ODD' });
        (e as { message: unknown }).message = 7;
        throw e;
      });
      router.onNotify('move', () => { throw new RpcError('not your turn', { remoteCode: 409 as unknown as string }); });
      const srv = await fx.loop.createServer(() => new RpcProtocol({ keyring: oneKeyRing(SECRET), side: 'server', logger: {}, router }),
        '127.0.0.1', 0, { ssl: wx.ca.serverOptions });
      wx.servers.push(srv);
      const unmatched: TulipError[] = [];
      const [, client] = await fx.loop.createConnection(() => new Client({ keyring: oneKeyRing(SECRET), side: 'client', logger: {},
        onUnmatchedError: (e) => { unmatched.push(e); } }), '127.0.0.1', portOf(srv), { ssl: wx.ca.clientOptions });
      wx.clients.push(client);

      expect(await outcome(client.call('find', null))).toEqual({ code: 'TW_RPC', remoteCode: '404', message: 'not found' });
      expect(await outcome(client.call('odd', null))).toEqual({ code: 'TW_RPC', remoteCode: 'APP_ODD', message: '7' });
      const key = new IdempotencyKey();
      const first = await outcome(client.call('charge', 1, { idempotent: key }));
      expect(first).toEqual({ code: 'TW_RPC', remoteCode: '51', message: 'declined' });
      expect(await outcome(client.call('charge', 1, { idempotent: key }))).toEqual(first);   // from the cache
      expect(runs).toBe(1);
      client.notify('move', { x: 1 });
      await untilOn(fx.loop, () => unmatched.length === 1);
      expect(unmatched[0]).toMatchObject({ remoteCode: '409', message: 'not your turn' });
      expect(client.rejected).toEqual([]);
    });
  });
});
