/**
 * RPC edge cases found in a bug hunt, each over a real RpcProtocol pair (signed, verified envelopes) on the in-memory
 * transport pair, as rpc-protocol.test.ts sets it up, plus one over mutual TLS on 127.0.0.1:
 *
 * - values the encoder used to write and the receiver refuses (a Date, a Map, a bigint…): a handler returning one
 *   used to leave its caller waiting for the timeout; a call or notify with one used to be sent and dropped;
 * - a call timeout that is not a number used to throw after the request was sent, leaving a call nobody settles;
 * - a CANCEL of the wrong length used to be obeyed instead of refused as malformed;
 * - an error reply's data could replace inherited members of the rebuilt error (toString) with strings;
 * - an IdempotencyKey whose first attempt could not be sent used to have its window running anyway.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { memoryRpcPair, until as untilIn } from '../support/rpc-pair.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import '../../src/net/index.js';
import type { Server } from '../../src/net/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { KIND } from '../../src/wire/envelope.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';
import type { RpcContext, RpcProtocolOptions } from '../../src/wire/rpc.js';
import { sleep } from '../../src/loop/index.js';
import type { Future } from '../../src/loop/index.js';
import { BadPayload, Forbidden, RpcError } from '../../src/errors.js';

const fx = useLoop({ real: true });
const pair = (server: Partial<RpcProtocolOptions> = {}, client: Partial<RpcProtocolOptions> = {}) =>
  memoryRpcPair(fx.loop, keyring(), server, client);
const until = (pred: () => boolean): Promise<void> => untilIn(fx.loop, pred);

function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 7));
  return k;
}




/** The error a Future failed with, or null if it succeeded. */
async function failure(f: Future<unknown>): Promise<unknown> {
  return f.then(() => null, (e: unknown) => e);
}

/** Resolves on a library Future when `ctx.signal` aborts. */
function untilAborted(ctx: RpcContext): Future<never> {
  const f = fx.loop.createFuture<never>();
  ctx.signal.addEventListener('abort', () => { if (!f.done()) f.setException(ctx.signal.reason); });
  return f;
}

describe('results and params the peer would refuse', () => {
  it.each([
    ['a Date (inline handler)', () => ({ at: new Date(0) }), false],
    ['a Map (async handler)', () => new Map([['a', 1]]), true],
    ['a bigint inside an array', () => [1, 2n], false],
    ['a class instance', () => new (class Point { x = 1; })(), false],
    ['a Uint16Array', () => new Uint16Array(2), true],
    ['a key "constructor"', () => ({ constructor: 'x' }), false],
    ['nesting beyond maxDepth', () => { let v: unknown = []; for (let i = 0; i < 40; i++) v = [v]; return v; }, false],
  ])('a handler returning %s: the caller gets TW_BAD_PAYLOAD at once, the server keeps serving', async (_what, make, isAsync) => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('bad', isAsync ? async () => make() : () => make());
      s.handle('ok', () => 'still serving');
      // The timeout is long and not what ends the call: before the fix the result was sent, the client dropped it
      // as a bad payload, and the call failed with TW_TIMEOUT after 30 s (the test's own timeout first).
      const err = await failure(c.call('bad', null, { timeout: 30 }));
      expect(err).toBeInstanceOf(BadPayload);
      expect(err).toMatchObject({ code: 'TW_BAD_PAYLOAD', remote: true, message: expect.stringMatching(/^the result could not be encoded/) });
      expect(await c.call('ok')).toBe('still serving');
      expect(c.rejected).toEqual([]);   // nothing reached the client that it had to refuse
      expect(s.rejected).toEqual([]);
      const records = fx.take();
      expect(records.map((r) => [r.message, (r.exception as { code?: string }).code])).toEqual([['the result of request 1 could not be sent', 'TW_BAD_PAYLOAD']]);
    });
  });

  it('an idempotent request whose result cannot be encoded: the caller and its retry get TW_BAD_PAYLOAD', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      let runs = 0;
      s.handle('when', () => { runs++; return new Date(0); });
      const key = new IdempotencyKey();
      await expect(c.call('when', null, { idempotent: key })).rejects.toMatchObject({ code: 'TW_BAD_PAYLOAD', remote: true });
      await expect(c.call('when', null, { idempotent: key })).rejects.toMatchObject({ code: 'TW_BAD_PAYLOAD', remote: true });
      expect(runs).toBeGreaterThanOrEqual(1);
      fx.take();
    });
  });

  it('a call with params the peer would refuse fails at once with BadPayload, and nothing is written', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      let ran = 0;
      s.handle('take', () => { ran++; return 'ran'; });
      for (const params of [{ at: new Date(0) }, new Set([1]), [undefined, 5n], { n: new Float32Array(1) }]) {
        const f = c.call('take', params);
        expect(f.done()).toBe(true);   // failed synchronously, before any I/O
        const err = await failure(f);
        expect(err).toBeInstanceOf(BadPayload);
        expect(err).toMatchObject({ code: 'TW_BAD_PAYLOAD', remote: false });
      }
      expect(c.stats.sent).toBe(0);
      expect(c.rpc!.pendingCalls).toBe(0);
      // The connection is fine: a good call goes through, and it is the first message the server saw.
      expect(await c.call('take', [1, 'two', null, Buffer.from([3])])).toBe('ran');
      expect(ran).toBe(1);
      expect(s.stats.received).toBe(1);
      expect(s.rejected).toEqual([]);
    });
  });

  it('a notification with params the peer would refuse throws BadPayload, nothing is written', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      const got: unknown[] = [];
      s.onNotify('note', (p) => { got.push(p); });
      expect(() => c.notify('note', { at: new Date(0) })).toThrow(BadPayload);
      expect(() => c.notify('note', new Map())).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
      expect(c.stats.sent).toBe(0);
      c.notify('note', { at: 0 });
      await until(() => got.length > 0);
      expect(got).toEqual([{ at: 0 }]);
      expect(s.rejected).toEqual([]);
    });
  });

  it('Dates travel when both ends allow them (encode and decode options)', async () => {
    await fx.run(async () => {
      const both = { encode: { allowDate: true }, decode: { allowDate: true } };
      const { s, c } = await pair(both, both);
      s.handle('next', (d: Date) => new Date(d.getTime() + 1000));
      expect(await c.call('next', new Date(0))).toEqual(new Date(1000));
    });
  });
});

describe('bug hunt', () => {
  it('a timeout that is not a number throws before anything is sent (no call left unsettled)', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      let ran = 0;
      s.handle('x', () => { ran++; return 1; });
      for (const timeout of [Number.NaN, '5' as unknown as number]) {
        expect(() => c.call('x', null, { timeout })).toThrow(TypeError);
      }
      expect(c.stats.sent).toBe(0);
      expect(c.rpc!.pendingCalls).toBe(0);
      expect(await c.call('x', null, { timeout: 5 })).toBe(1);
      expect(await c.call('x', null, { timeout: null })).toBe(1);
      expect(ran).toBe(2);
    });
  });

  it('a CANCEL of the wrong length is refused as malformed and does not cancel anything', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      const release = fx.loop.createFuture<string>();
      let aborted = false;
      s.handle('slow', async (_p, ctx: RpcContext) => {
        ctx.signal.addEventListener('abort', () => { aborted = true; });
        return await release;
      });
      const call = c.call('slow');
      await until(() => s.rpc!.inFlight === 1);
      c.sendMessage([1, 'extra'], { kind: KIND.CANCEL });
      await until(() => s.rejected.length > 0);
      expect(s.rejected.map((e) => e.code)).toEqual(['TW_BAD_PAYLOAD']);
      expect(aborted).toBe(false);
      release.setResult('finished');
      expect(await call).toBe('finished');
    });
  });

  it('a well-formed CANCEL aborts the handler (control for the test above)', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('slow', async (_p, ctx: RpcContext) => await untilAborted(ctx));
      const call = c.call('slow');
      await until(() => s.rpc!.inFlight === 1);
      c.sendMessage([1], { kind: KIND.CANCEL });
      await expect(call).rejects.toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_CANCELLED', remote: true });
      expect(s.rejected).toEqual([]);
    });
  });

  it("an error reply's data sets the error's own fields only, never inherited members such as toString", async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('evil', () => {
        throw new RpcError('no', { remoteCode: 'TW_FORBIDDEN', data: { role: 'admin', toString: 'pwned', valueOf: 1, hasOwnProperty: 'x' } });
      });
      const err = await failure(c.call('evil'));
      expect(err).toBeInstanceOf(Forbidden);
      expect(err).toMatchObject({ code: 'TW_FORBIDDEN', role: 'admin', remote: true });
      expect(typeof (err as Forbidden).toString).toBe('function');
      expect(String(err)).toBe('Forbidden: no');
      expect(Object.hasOwn(err as object, 'valueOf')).toBe(false);
    });
  });

  it('an IdempotencyKey whose first attempt could not be sent starts its window with the attempt that is sent', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      let runs = 0;
      s.handle('charge', (p: { amount: number }) => { runs++; return p.amount; });
      const key = new IdempotencyKey();
      // The first attempt cannot be encoded: nothing is sent...
      await expect(c.call('charge', { amount: Number.NaN }, { idempotent: key, ttl: 0.05 })).rejects.toMatchObject({ code: 'TW_BAD_PAYLOAD' });
      expect(key.expiresAt).toBeNull();
      await sleep(0.1);   // longer than that attempt's ttl
      // ...so this is the first attempt the server sees, with a window of its own (before the fix: "the idempotency
      // window of this operation closed", a TimeoutError without anything ever sent).
      expect(await c.call('charge', { amount: 5 }, { idempotent: key })).toBe(5);
      expect(runs).toBe(1);
    });
  });
});

describe('over mutual TLS on 127.0.0.1', () => {
  let ca: TestCA;
  const servers: Server[] = [];
  const clients: RpcProtocol[] = [];
  beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
  afterAll(async () => { await ca?.cleanup(); });
  afterEach(async () => {
    await fx.loop.runUntilComplete(async () => {
      for (const t of clients.splice(0)) t.close();
      for (const srv of servers.splice(0)) {
        srv.close();
        srv.abortClients();
        await srv.waitClosed();
      }
    });
  });

  it('a handler returning a Date: the caller gets TW_BAD_PAYLOAD promptly, then the next call succeeds', async () => {
    await fx.run(async () => {
      const ring = keyring();
      const router = new RpcRouter().handle('now', () => new Date(0)).handle('ping', () => 'pong');
      const server = await fx.loop.createServer(() => new RpcProtocol({ keyring: ring, side: 'server', logger: {}, router }),
        '127.0.0.1', 0, { ssl: ca.serverOptions });
      servers.push(server);
      const port = (server.sockets[0] as { address(): { port: number } }).address().port;
      const [, client] = await fx.loop.createConnection(() => new RpcProtocol({ keyring: ring, side: 'client', logger: {} }),
        '127.0.0.1', port, { ssl: ca.clientOptions });
      clients.push(client);
      await expect(client.call('now', null, { timeout: 30 })).rejects.toMatchObject({ code: 'TW_BAD_PAYLOAD', remote: true });
      expect(await client.call('ping')).toBe('pong');
      expect(fx.take().map((r) => r.message)).toEqual(['the result of request 1 could not be sent']);
    });
  });
});
