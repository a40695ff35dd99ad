/**
 * A bad ttl is refused where it is written (found by a game developer's trial: `notify`/`call` with ttl -1 or NaN
 * failed later, asynchronously, as RpcError "the call could not be sent" with the RangeError in `cause`; ttl 301
 * was sent and then refused by the server as TW_MALFORMED_ENVELOPE, counted toward its rejections).
 */
import { describe, expect, it } from 'vitest';
import { Keyring } from '../../src/wire/keyring.js';
import { checkMessageTtl } from '../../src/wire/rpc.js';
import { useLoop } from '../support/loop.js';
import { memoryRpcPair } from '../support/rpc-pair.js';
import { useMtlsSessions } from '../support/sessions.js';

const fx = useLoop({ real: true });
const { ring, serve, open } = useMtlsSessions(fx, 0x6e);

function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 9));
  return k;
}

describe('ttl checked at once', () => {
  it('checkMessageTtl: TypeError for a non-number or NaN, RangeError for negative or infinite; undefined and 0 are fine', () => {
    for (const bad of [NaN, '1', null]) expect(() => checkMessageTtl(bad)).toThrow(TypeError);
    for (const bad of [-1, -0.001, Infinity]) expect(() => checkMessageTtl(bad)).toThrow(RangeError);
    for (const good of [undefined, 0, 0.5, 300]) expect(() => checkMessageTtl(good)).not.toThrow();
  });

  it('RpcProtocol.call/notify throw synchronously, with nothing sent; over maxTtl is a RangeError naming it', async () => {
    await fx.run(async () => {
      const { s, c } = await memoryRpcPair(fx.loop, keyring());
      let served = 0;
      s.handle('x', () => ++served);
      s.onNotify('n', () => { served++; });
      expect(() => c.call('x', null, { ttl: -1 })).toThrow(RangeError);
      expect(() => c.call('x', null, { ttl: NaN })).toThrow(TypeError);
      expect(() => c.notify('n', null, { ttl: -1 })).toThrow(RangeError);
      expect(() => c.notify('n', null, { ttl: 301 })).toThrow('ttl 301 s is over maxTtl 300 s: the peer would refuse the message');
      await expect(c.call('x', null, { ttl: 301 })).rejects.toThrow(RangeError);
      expect(await c.call('x', null, { ttl: 300 })).toBe(1);
      expect(s.rejected).toEqual([]);
    });
  });

  it('Session.call/notify throw synchronously too (no Task that fails later as RpcError)', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      const sess = open(keyring, server.port!);
      expect(() => sess.notify('n', null, { ttl: -1 })).toThrow(RangeError);
      expect(() => sess.notify('n', null, { ttl: NaN })).toThrow(TypeError);
      expect(() => sess.call('x', null, { ttl: Infinity })).toThrow(RangeError);
      await sess.whenConnected();
    });
  }, 20_000);
});
