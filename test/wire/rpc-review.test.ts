/**
 * RPC behaviours the documentation promises that the other rpc*.test.ts files did not exercise, each through a real
 * MessageProtocol (signed, verified, replay-checked against a real MemoryNonceStore) over the in-memory transport
 * pair, on the real clock (see rpc-protocol.test.ts for why).
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { Recording, memoryRpcPair, until as untilIn } from '../support/rpc-pair.js';
import { createMemoryPair } from '../../src/net/memory-transport.js';
import { Keyring } from '../../src/wire/keyring.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { RpcProtocol } from '../../src/wire/rpc.js';
import type { RpcProtocolOptions } from '../../src/wire/rpc.js';
import { sleep } from '../../src/loop/index.js';
import type { TulipError } from '../../src/errors.js';

const fx = useLoop({ real: true });
const pair = (server: Partial<RpcProtocolOptions> = {}, client: Partial<RpcProtocolOptions> = {}) =>
  memoryRpcPair(fx.loop, keyring(), server, client);
const until = (pred: () => boolean): Promise<void> => untilIn(fx.loop, pred);


function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 11));
  return k;
}



const codeOf = (f: PromiseLike<unknown>): Promise<string> =>
  Promise.resolve(f).then(() => 'ok', (e: TulipError) => e.code);

describe('RPC review', () => {
  it('an idempotent retry never expires after its first attempt, also when that one was stamped at its batch start', async () => {
    await fx.run(async () => {
      const nonceStore = new MemoryNonceStore({ clock: fx.loop.clock });
      const expiries: number[] = [];
      class Watching extends Recording {
        override sendMessage(m: unknown, o?: Parameters<RpcProtocol['sendMessage']>[1]): number {
          const seq = super.sendMessage(m, o);
          if (o?.nonce !== undefined) expiries.push(this._lastExpiresAt);
          return seq;
        }
      }
      const ring = keyring();
      const s = new Recording({ keyring: ring, side: 'server', logger: {}, nonceStore });
      const c = new Watching({ keyring: ring, side: 'client', logger: {} });
      createMemoryPair(fx.loop, c, s);
      await sleep(0);
      await sleep(0);
      let runs = 0;
      s.handle('charge', () => ++runs);
      const key = new IdempotencyKey();
      // One step: a notification starts the iteration's batch (its time stamps every message of the batch), then
      // 60 ms pass before the idempotent call joins the same batch.
      c.notify('tick');
      const until0 = Date.now() + 60;
      while (Date.now() < until0) { /* the batch ages */ }
      const first = await c.call('charge', null, { idempotent: key });
      await sleep(0.02);
      const second = await c.call('charge', null, { idempotent: key });
      expect([first, second, runs]).toEqual([1, 1, 1]);
      expect(expiries).toHaveLength(2);
      expect(key.expiresAt).toBe(expiries[0]);
      expect(expiries[1]).toBeLessThanOrEqual(expiries[0]!);
    });
  });

  it('a handler result or call params holding NaN/Infinity fail at once with TW_BAD_PAYLOAD, not after the timeout', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('nan', () => ({ x: NaN }));
      s.handle('inf', () => [1, -Infinity]);
      s.handle('echo', (p: unknown) => p);
      const t0 = fx.loop.time();
      expect(await codeOf(c.call('nan', null, { timeout: 10 }))).toBe('TW_BAD_PAYLOAD');
      expect(await codeOf(c.call('inf', null, { timeout: 10 }))).toBe('TW_BAD_PAYLOAD');
      expect(await codeOf(c.call('echo', { y: Infinity }, { timeout: 10 }))).toBe('TW_BAD_PAYLOAD');
      expect(fx.loop.time() - t0).toBeLessThan(5);   // answered, not timed out (the timeouts were 10 s)
      expect(await c.call('echo', { y: 2.5 })).toEqual({ y: 2.5 });
    });
    // The server reports its handlers' unencodable results to the loop's exception handler.
    const seen = fx.take().map((r) => String((r.exception as { code?: string } | undefined)?.code ?? r.message));
    expect(seen.every((x) => /TW_BAD_PAYLOAD|encode/i.test(x))).toBe(true);
  });

  it('an idempotent request refused before running (TooManyInFlight) is evaluated afresh on retry', async () => {
    await fx.run(async () => {
      const nonceStore = new MemoryNonceStore({ clock: fx.loop.clock });
      const release = fx.loop.createFuture<void>();
      let runs = 0;
      const { s, c } = await pair({ nonceStore, maxInFlight: 1 });
      s.handle('hold', async () => { await release; return 'held'; });
      s.handle('charge', () => ++runs);
      const holding = c.call('hold', null, { timeout: null });
      await until(() => s.rpc!.inFlight === 1);
      const key = new IdempotencyKey();
      expect(await codeOf(c.call('charge', null, { idempotent: key }))).toBe('TW_TOO_MANY_IN_FLIGHT');
      release.setResult();
      expect(await holding).toBe('held');
      expect(await c.call('charge', null, { idempotent: key })).toBe(1);
      expect(await c.call('charge', null, { idempotent: key })).toBe(1);
      expect(runs).toBe(1);
      await nonceStore.close();
    });
  });

  it('an idempotent request cancelled by the caller is evaluated afresh on retry', async () => {
    await fx.run(async () => {
      const nonceStore = new MemoryNonceStore({ clock: fx.loop.clock });
      const { s, c } = await pair({ nonceStore });
      let runs = 0;
      const gate = fx.loop.createFuture<void>();
      s.handle('charge', async () => { runs++; if (runs === 1) await gate; return runs; });
      const key = new IdempotencyKey();
      const first = c.call('charge', null, { idempotent: key });
      await until(() => runs === 1);
      first.cancel();
      await until(() => s.rpc!.inFlight === 0);
      expect(await c.call('charge', null, { idempotent: key })).toBe(2);
      await nonceStore.close();
    });
  });

  it('maxInFlight also bounds a peer that reuses one id for many running requests', async () => {
    await fx.run(async () => {
      const { s, c } = await pair({ maxInFlight: 2 });
      const release = fx.loop.createFuture<void>();
      let running = 0;
      s.handle('slow', async () => { running++; await release; running--; return 'done'; });
      // ids name the caller's pending calls; a hostile or buggy caller may still send the same id again
      for (let i = 0; i < 5; i++) c.sendMessage([1, 'slow', null], { kind: 1 });
      await until(() => running >= 2);
      await sleep(0.02);
      expect(running).toBe(2);
      expect(s.rpc!.inFlight).toBe(2);
      release.setResult();
      await until(() => s.rpc!.inFlight === 0);
      expect(s.rpc!.inFlight).toBe(0);
    });
  });

  it('connection loss aborts every running request, also older ones whose id the peer reused', async () => {
    await fx.run(async () => {
      const { s, c, ct } = await pair();
      const aborted: unknown[] = [];
      s.handle('hang', (_p, ctx) => {
        const f = fx.loop.createFuture<never>();
        ctx.signal.addEventListener('abort', () => { aborted.push(ctx.signal.reason); f.setException(ctx.signal.reason); });
        return f;
      });
      for (let i = 0; i < 3; i++) c.sendMessage([7, 'hang', null], { kind: 1 });
      await until(() => s.rpc!.inFlight === 3);
      ct.abort();
      await until(() => aborted.length === 3 && s.rpc!.inFlight === 0);
      expect(aborted.map((e) => (e as TulipError).code)).toEqual(Array(3).fill('TW_TRANSPORT_CLOSED'));
      expect(s.rpc!.inFlight).toBe(0);
    });
  });

  it('a CANCEL for an unknown id and replies to no pending call are ignored; a reply after the timeout too', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      let finish: (() => void) | null = null;
      s.handle('late', () => { const f = fx.loop.createFuture<string>(); finish = () => { if (!f.done()) f.setResult('late'); }; return f; });
      s.handle('ok', () => 'ok');
      c.sendMessage([12345], { kind: 5 });
      s.sendMessage([999, 'stray'], { kind: 2 });
      s.sendMessage([998, 'APP_X', 'stray', null], { kind: 3 });
      const f = c.call('late', null, { timeout: 0.05 });
      expect(await codeOf(f)).toBe('TW_TIMEOUT');
      finish!();   // the handler's Future was cancelled by the CANCEL the timeout sent: nothing more to answer
      await until(() => s.rpc!.inFlight === 0);
      expect(s.rpc!.inFlight).toBe(0);
      // the same id answered twice: the second reply is ignored
      const g = c.call('ok');
      expect(await g).toBe('ok');
      s.sendMessage([2, 'again'], { kind: 2 });
      await sleep(0.02);
      expect(c.rpc!.pendingCalls).toBe(0);
      expect(s.rejected).toEqual([]);
      expect(c.rejected).toEqual([]);
    });
  });

  it('a CANCEL while the security factory runs: the handler never runs, the slot is released', async () => {
    await fx.run(async () => {
      const gate = fx.loop.createFuture<void>();
      let ran = 0;
      const { s, c } = await pair({ securityContext: async () => { await gate; return { hasRole: () => true }; } });
      s.handle('x', () => ++ran);
      const f = c.call('x', null, { timeout: null });
      await until(() => s.rpc!.inFlight === 1);
      f.cancel();
      await until(() => s.rpc!.inFlight === 0);
      await sleep(0.02);
      expect(s.rpc!.inFlight).toBe(0);
      expect(ran).toBe(0);
    });
  });

  it('a notification handler with roles on an endpoint without a security factory is refused with a nil-id Forbidden', async () => {
    await fx.run(async () => {
      const unmatched: TulipError[] = [];
      const { s, c } = await pair({}, { onUnmatchedError: (e) => unmatched.push(e) });
      let ran = 0;
      s.onNotify('admin.note', () => { ran++; }, { roles: 'admin' });
      c.notify('admin.note', 1);
      c.notify('nobody.listens', 1);
      await until(() => unmatched.length > 0);
      await sleep(0.02);
      expect(unmatched.map((e) => [e.code, (e as unknown as { role: string }).role])).toEqual([['TW_FORBIDDEN', 'admin']]);
      expect(ran).toBe(0);
    });
  });
});
