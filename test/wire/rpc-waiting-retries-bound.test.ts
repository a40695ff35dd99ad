/**
 * maxInFlight bounds what one connection makes a server hold for its peer, idempotent retries waiting for their
 * first attempt included. Before the fix a copy of an idempotent request that arrived while the first attempt ran
 * always waited (a waiter closure with its params, and with an outcome store a 50 ms poll of Redis each), with no
 * bound: a peer re-sending one slow idempotent request grew the server's memory for as long as the first attempt
 * ran, where any other request beyond maxInFlight is answered TW_TOO_MANY_IN_FLIGHT at once. Real mutual TLS on
 * 127.0.0.1, port 0; the handler is held by a gate, no timing is asserted.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { portOf, useWireTls, untilOn, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import type { Future } from '../../src/loop/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x71);
const MAX_IN_FLIGHT = 3;

const ring = (): Keyring => oneKeyRing(SECRET);

const until = (pred: () => boolean, seconds = 5): Promise<void> => untilOn(fx.loop, pred, seconds);

function codeOf(f: Future<unknown>): string | undefined {
  return f.done() && !f.cancelled() && f.exception() !== null ? (f.exception() as { code?: string }).code : undefined;
}

describe('idempotent retries waiting for their first attempt count towards maxInFlight', () => {
  it('retries beyond maxInFlight are answered TW_TOO_MANY_IN_FLIGHT at once; the others get the one outcome', async () => {
    await fx.run(async () => {
      let runs = 0;
      let open!: () => void;
      const gate = new Promise<void>((r) => { open = r; });
      const router = new RpcRouter();
      router.handle('charge', async (n: number) => { runs++; await gate; return n * 10; });
      const keyring = ring();
      const servers: RpcProtocol[] = [];
      const srv = await fx.loop.createServer(() => {
        const p = new RpcProtocol({ keyring, side: 'server', logger: {}, router, maxInFlight: MAX_IN_FLIGHT });
        servers.push(p);
        return p;
      }, '127.0.0.1', 0, { ssl: wx.ca.serverOptions });
      wx.servers.push(srv);
      const [, client] = await fx.loop.createConnection(() => new RpcProtocol({ keyring: ring(), side: 'client', logger: {} }),
        '127.0.0.1', portOf(srv), { ssl: wx.ca.clientOptions });
      wx.clients.push(client);

      const key = new IdempotencyKey();
      const first = client.call<number>('charge', 7, { idempotent: key });
      await until(() => runs === 1);
      const retries = Array.from({ length: MAX_IN_FLIGHT + 2 }, () => client.call<number>('charge', 7, { idempotent: key }));
      // One running plus MAX_IN_FLIGHT - 1 waiting fill the connection's budget; the 3 retries after them are refused.
      await until(() => retries.filter((f) => f.done()).length === 3);
      expect(retries.map(codeOf)).toEqual([undefined, undefined, 'TW_TOO_MANY_IN_FLIGHT', 'TW_TOO_MANY_IN_FLIGHT', 'TW_TOO_MANY_IN_FLIGHT']);
      expect(first.done()).toBe(false);
      open();
      expect(await first).toBe(70);
      expect(await retries[0]!).toBe(70);
      expect(await retries[1]!).toBe(70);
      // Refused for the budget, never cached: once the first attempt is done a retry gets its outcome.
      expect(await client.call<number>('charge', 7, { idempotent: key })).toBe(70);
      expect(runs).toBe(1);
      expect(servers[0]!.closeReason).toBeNull();
    });
  });
});
