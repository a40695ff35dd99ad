/**
 * An idempotent request must run once while its nonce is remembered, also when its caller gave up on the first
 * attempt. A caller that times out sends CANCEL, then retries with the same IdempotencyKey (the usual pattern). The
 * server aborts the handler's `ctx.signal` and cancels its Task; a handler that does not watch the signal and awaits
 * a native promise (a database client, fetch) cannot be interrupted there, so it finishes its work and returns, and
 * the cancel lands as the Task's body returns: the Task ends cancelled. The endpoint then treated the request as
 * cancelled before anything ran: answered TW_CANCELLED and abandoned its idempotency entry, so the retry (or a copy
 * already waiting for the first attempt) ran the handler a second time: a double charge. Now a handler that
 * finished is answered, and cached, with its result (wire-format RPC rule 3: "or the result, if the handler finished
 * anyway"). Real mutual TLS on 127.0.0.1, port 0; the handler is held by a gate, nothing is timed.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { portOf, useWireTls, untilOn, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import type { Future } from '../../src/loop/index.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';
import type { RpcContext } from '../../src/wire/rpc.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x6c);

interface Charger {
  runs: number;
  aborted: number;
  release(): void;
  connect(): Promise<RpcProtocol>;
}

// A server whose `charge` handler counts its runs, notes its signal aborting, and waits (on a native promise) for
// the test to release it; and a way to open client connections to it. One nonce store for all its connections.
async function chargeServer(): Promise<Charger> {
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  const state = { runs: 0, aborted: 0 };
  const router = new RpcRouter();
  router.handle('charge', async (amount: number, ctx: RpcContext) => {
    state.runs++;
    ctx.signal.addEventListener('abort', () => { state.aborted++; });
    await gate;                     // a native promise: not a cancellation point
    return `charged ${amount}`;
  });
  const nonceStore = new MemoryNonceStore();
  const keyring = oneKeyRing(SECRET);
  const srv = await fx.loop.createServer(() => new RpcProtocol({ keyring, side: 'server', logger: {}, router, nonceStore }),
    '127.0.0.1', 0, { ssl: wx.ca.serverOptions });
  wx.servers.push(srv);
  return {
    get runs() { return state.runs; },
    get aborted() { return state.aborted; },
    release: () => open(),
    connect: async () => {
      const [, client] = await fx.loop.createConnection(() => new RpcProtocol({ keyring: oneKeyRing(SECRET), side: 'client', logger: {} }),
        '127.0.0.1', portOf(srv), { ssl: wx.ca.clientOptions });
      wx.clients.push(client);
      return client;
    },
  };
}

async function settle(f: Future<unknown>): Promise<unknown> {
  try {
    return await f;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe('a cancelled idempotent request whose handler finished anyway', () => {
  it('is cached with its result: the retry (on a new connection) gets it, the handler ran once', async () => {
    await fx.run(async () => {
      const server = await chargeServer();
      const key = new IdempotencyKey();
      const first = (await server.connect()).call('charge', 5, { idempotent: key });
      await untilOn(fx.loop, () => server.runs === 1);
      first.cancel();                                   // the caller gives up: a CANCEL goes to the server
      await untilOn(fx.loop, () => server.aborted === 1);
      server.release();                                 // the handler ignored the signal and finishes its work
      expect(await settle(first)).toBe('TW_CANCELLED');
      const retry = (await server.connect()).call('charge', 5, { idempotent: key });
      expect(await settle(retry)).toBe('charged 5');
      expect(server.runs).toBe(1);
    });
  });

  it('a copy already waiting for the first attempt gets its result instead of running it again', async () => {
    await fx.run(async () => {
      const server = await chargeServer();
      const key = new IdempotencyKey();
      const client = await server.connect();
      const first = client.call('charge', 7, { idempotent: key });
      await untilOn(fx.loop, () => server.runs === 1);
      const copy = (await server.connect()).call('charge', 7, { idempotent: key });   // waits for the first attempt
      first.cancel();
      await untilOn(fx.loop, () => server.aborted === 1);
      server.release();
      expect(await settle(copy)).toBe('charged 7');
      expect(server.runs).toBe(1);
      // And the server answered the cancelled call with the result too (exactly one reply, rule 3), which the
      // client ignores: its call was already cancelled. A later retry still gets the cached outcome.
      expect(await settle(client.call('charge', 7, { idempotent: key }))).toBe('charged 7');
      expect(server.runs).toBe(1);
    });
  });
});
