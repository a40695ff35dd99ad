/**
 * A RESPONSE or ERROR of the wrong shape whose id can still be read answers that call: the call fails at once with
 * a local TW_BAD_PAYLOAD naming the problem (the message is also refused and counted as any malformed message), so
 * the caller does not wait for its timeout for a reply that already came. The connection keeps serving.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { memoryRpcPair, until as untilIn } from '../support/rpc-pair.js';
import { Keyring } from '../../src/wire/keyring.js';
import { KIND } from '../../src/wire/envelope.js';
import type { Future } from '../../src/loop/index.js';

const fx = useLoop({ real: true });

function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 7));
  return k;
}
const pair = () => memoryRpcPair(fx.loop, keyring(), {}, {});
const until = (pred: () => boolean): Promise<void> => untilIn(fx.loop, pred);

describe('a malformed reply with a readable id', () => {
  it.each([
    ['RESPONSE with a third element', KIND.RESPONSE, (id: number) => [id, 'ok', 'extra'], /RESPONSE payload must be \[id, result\]/],
    ['ERROR whose code is not a string', KIND.ERROR, (id: number) => [id, 42, 'no', null], /ERROR payload must be/],
    ['ERROR of three elements', KIND.ERROR, (id: number) => [id, 'APP_X', 'no'], /ERROR payload must be/],
  ])('%s fails that call at once with a local TW_BAD_PAYLOAD; other calls and the connection carry on', async (_name, kind, body, why) => {
    await fx.run(async () => {
      const { s, c } = await pair();
      const held: Future<string>[] = [];
      s.handle('held', () => { const f = fx.loop.createFuture<string>(); held.push(f); return f; });
      s.handle('echo', (p: unknown) => p);
      const bad = c.call('held', null, { timeout: 30 });
      const good = c.call('held', null, { timeout: 30 });
      await until(() => held.length === 2);
      s.sendMessage(body(1), { kind });
      const err = await bad.then(() => null, (e: { code?: string; remote?: boolean; message?: string }) => e);
      expect(err?.code).toBe('TW_BAD_PAYLOAD');
      expect(err?.remote).toBeFalsy();
      expect(err?.message).toMatch(why);
      expect(err?.message).toMatch(/call held/);
      await until(() => c.rejected.length > 0);
      expect(c.rejected.map((e) => e.code)).toEqual(['TW_BAD_PAYLOAD']);
      // The other call is still answered, on the same connection.
      held[1]!.setResult('fine');
      expect(await good).toBe('fine');
      expect(await c.call('echo', 7)).toBe(7);
      expect(c.rpc!.pendingCalls).toBe(0);
      held[0]!.setResult('late'); // its reply now matches no call and is ignored
      expect(await c.call('echo', 8)).toBe(8);
      expect(c.lost).toBeUndefined();
    });
  });

  it('a malformed reply whose id matches no call is refused and changes nothing', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('echo', (p: unknown) => p);
      s.sendMessage([99, 'ok', 'extra'], { kind: KIND.RESPONSE });
      await until(() => c.rejected.length > 0);
      expect(c.rejected.map((e) => e.code)).toEqual(['TW_BAD_PAYLOAD']);
      expect(await c.call('echo', 1)).toBe(1);
    });
  });
});
