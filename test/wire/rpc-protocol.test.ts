/**
 * RpcProtocol (RpcEndpoint inside a real MessageProtocol: signed, verified, replay-checked) over the in-memory
 * transport pair. rpc.test.ts runs the same protocol over real mTLS sockets.
 *
 * The real clock is used: MessageProtocol learns a nonce reservation's result from a promise, which a loop on an
 * autojump VirtualClock does not wait for, so it would jump past the call timeouts first.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { Recording, memoryRpcPair, until as untilIn } from '../support/rpc-pair.js';
import { createMemoryPair } from '../../src/net/memory-transport.js';
import { Keyring } from '../../src/wire/keyring.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { RpcRouter } from '../../src/wire/rpc.js';
import type { RpcProtocolOptions } from '../../src/wire/rpc.js';
import { currentTask, sleep } from '../../src/loop/index.js';
import type { Future } from '../../src/loop/index.js';
import { BadPayload, CancelledError } from '../../src/errors.js';

const fx = useLoop({ real: true });
const pair = (server: Partial<RpcProtocolOptions> = {}, client: Partial<RpcProtocolOptions> = {}) =>
  memoryRpcPair(fx.loop, keyring(), server, client);
const until = (pred: () => boolean): Promise<void> => untilIn(fx.loop, pred);

function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 7));
  return k;
}




describe('RpcProtocol over a memory pair', () => {
  it('calls, errors and notifications through signed envelopes', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('add', ([a, b]: [number, number]) => a + b);
      const got: unknown[] = [];
      c.onNotify('hello', (p) => { got.push(p); });
      expect(await c.call('add', [2, 3])).toBe(5);
      await expect(c.call('missing')).rejects.toMatchObject({ code: 'TW_METHOD_NOT_FOUND', remote: true });
      s.notify('hello', { from: 'server' });
      await until(() => got.length > 0);
      expect(got).toEqual([{ from: 'server' }]);
      expect(s.stats.received).toBe(2);
      expect(c.rejected).toEqual([]);
      expect(s.rejected).toEqual([]);
    });
  });

  it('an idempotent retry on a new connection sharing the nonce store is answered from the first run', async () => {
    await fx.run(async () => {
      const nonceStore = new MemoryNonceStore({ clock: fx.loop.clock });
      const router = new RpcRouter();
      let effects = 0;
      const release = fx.loop.createFuture<void>(); // the first run charges until the retry is waiting for it
      router.handle('charge', async (n: number) => { effects++; await release; return { charged: n, effects }; });
      const one = await pair({ nonceStore, router });
      const key = new IdempotencyKey();
      const first = one.c.call('charge', 10, { idempotent: key, timeout: null });
      await until(() => effects === 1); // the first run has started
      one.ct.abort();   // the client's connection dies while the server is still charging
      await expect(first).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      const two = await pair({ nonceStore, router });
      // the retry arrives while the first run is still going: it waits for it
      const retry = two.c.call('charge', 10, { idempotent: key });
      await until(() => two.s.stats.duplicates === 1);
      release.setResult(undefined);
      expect(await retry).toEqual({ charged: 10, effects: 1 });
      const three = await pair({ nonceStore, router });
      expect(await three.c.call('charge', 10, { idempotent: key })).toEqual({ charged: 10, effects: 1 });
      expect(effects).toBe(1);
      expect(two.s.stats.duplicates).toBe(1);
      expect(three.s.stats.duplicates).toBe(1);
      // a non-idempotent call is never confused with it
      expect(await three.c.call('charge', 3)).toEqual({ charged: 3, effects: 2 });
      await nonceStore.close();
    });
  });

  it('connection loss fails pending calls with TransportClosed; calls after it fail at once', async () => {
    await fx.run(async () => {
      const { s, c, st } = await pair();
      s.handle('slow', () => sleep(5, 'late'));
      const f = c.call('slow', null, { timeout: null });
      await sleep(0.01);
      st.abort();
      await expect(f).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      await expect(c.call('slow')).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      expect(() => c.notify('x')).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_CLOSED' }));
    });
  });

  it('a malformed RPC payload counts as a rejection on the receiving MessageProtocol', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('x', () => 1);
      c.sendMessage({ not: 'an array' }, { kind: 1 });
      await until(() => fx.records.length > 0); // the server's nil-id ERROR is back at the client
      expect(s.rejected.map((e) => e.code)).toEqual(['TW_BAD_PAYLOAD']);
      expect(s.stats.rejected).toBe(1);
      // the id was unreadable, so the answer is a nil-id ERROR, which the client reports (no onUnmatchedError set)
      expect(fx.take().map((r) => [r.message, (r.exception as { code: string }).code]))
        .toEqual([['the peer sent an error that matches no call', 'TW_BAD_PAYLOAD']]);
      expect(await c.call('x')).toBe(1);
    });
  });

  it('a response the client cannot verify never resolves the call: rejected there, the call times out', async () => {
    await fx.run(async () => {
      const shared = Buffer.alloc(32, 7);
      const serverRing = new Keyring();
      serverRing.add('k1', shared);
      serverRing.add('k2', Buffer.alloc(32, 9));   // the server signs with a key the client does not hold
      const clientRing = new Keyring();
      clientRing.add('k1', shared);
      const s = new Recording({ keyring: serverRing, side: 'server', logger: {} });
      const c = new Recording({ keyring: clientRing, side: 'client', logger: {} });
      createMemoryPair(fx.loop, c, s);
      await sleep(0);
      let ran = 0;
      s.handle('x', () => ++ran);
      await expect(c.call('x', null, { timeout: 0.2 })).rejects.toMatchObject({ code: 'TW_TIMEOUT' });
      expect(ran).toBe(1);   // the request verified (k1) and ran
      expect(c.rejected.map((e) => e.code)).toEqual(['TW_UNKNOWN_KEY_ID']);
      expect(s.rejected).toEqual([]);
    });
  });

  it('messages of other kinds reach otherMessageReceived', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      const other: unknown[] = [];
      s.otherMessageReceived = (m, meta) => { other.push([m, meta.kind]); };
      c.sendMessage('plain', { kind: 16 });
      await until(() => other.length > 0);
      expect(other).toEqual([['plain', 16]]);
    });
  });

  it('a plain handler runs inline (no Task) and answers in the same iteration; async and {task: true} handlers get a Task', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      const seen: Record<string, string | null> = {};
      s.handle('plain', () => { seen['plain'] = currentTask()?.getName() ?? null; return 'p'; });
      s.handle('tasked', () => { seen['tasked'] = currentTask()?.getName() ?? null; return 't'; }, { task: true });
      s.handle('async', async () => { seen['async'] = currentTask()?.getName() ?? null; return 'a'; });
      expect(await c.call('plain')).toBe('p');
      expect(await c.call('tasked')).toBe('t');
      expect(await c.call('async')).toBe('a');
      expect(seen).toEqual({ plain: null, tasked: 'rpc tasked #2', async: 'rpc async #3' });
    });
  });

  it('inline handlers: a throw is an error reply, a CancelledError a cancelled reply, a returned Future waits and can be cancelled', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('boom', () => { throw new BadPayload('nope'); });
      s.handle('cancel-me', () => { throw new CancelledError('inside'); });
      let later: Future<string> | null = null;
      s.handle('later', () => (later = fx.loop.createFuture<string>()));
      await expect(c.call('boom')).rejects.toMatchObject({ code: 'TW_BAD_PAYLOAD', remote: true });
      await expect(c.call('cancel-me')).rejects.toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_CANCELLED', remote: true });
      const first = c.call('later');
      await until(() => later !== null);
      expect(s.rpc!.inFlight).toBe(1); // in flight while its Future is pending
      later!.setResult('done');
      expect(await first).toBe('done');
      later = null;
      const second = c.call('later');
      await until(() => later !== null);
      second.cancel();
      await until(() => later!.cancelled());
      expect(later!.cancelled()).toBe(true); // the caller's CANCEL cancelled the Task awaiting it
      expect(s.rpc!.inFlight).toBe(0);
    });
  });

  it('an inline notification handler that throws is reported, and the connection keeps serving', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      const got: unknown[] = [];
      s.onNotify('bad', () => { throw new Error('handler bug'); });
      s.onNotify('good', (p) => { got.push(p); });
      c.notify('bad', 1);
      c.notify('good', 2);
      await until(() => got.length > 0);
      expect(got).toEqual([2]);
      expect(fx.take().map((r) => r.message)).toEqual(['notification handler bad failed']);
    });
  });
});
