/**
 * An idempotent request's outcome is kept "until the request's expiresAt + the skew allowance" (docs/wire-format.md,
 * RPC, Idempotency): a wall-clock instant, the one its retries are accepted by. IdempotencyCache measured that span
 * on the monotonic clock, so after the wall clock stepped back (an NTP correction, a VM snapshot restored) it forgot
 * the outcome while a retry was still acceptable. On a server without a nonce store (nothing else remembers the
 * request) the retry then ran the handler a second time. The cache now measures on `clock.epoch()`, like the
 * expiry it mirrors. Real mutual TLS on 127.0.0.1, port 0; both ends read a clock whose wall time the test steps.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { portOf, useWireTls, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import type { Clock } from '../../src/loop/clock.js';
import { IdempotencyCache, IdempotencyKey } from '../../src/wire/idempotency.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x2b);

/** Monotonic time `mono`; wall time `mono + offset` (moving `offset` steps the wall clock). */
class SteppedClock implements Clock {
  readonly autojump = false;
  mono = 0;
  offset = 1_767_225_600;
  time(): number { return this.mono; }
  epoch(): number { return this.mono + this.offset; }
}

describe('idempotent outcomes are kept on the wall clock', () => {
  it('a retry after the wall clock stepped back 20 s gets the outcome; the handler ran once', async () => {
    await fx.run(async () => {
      const clock = new SteppedClock();
      let runs = 0;
      const router = new RpcRouter();
      router.handle('charge', (amount: number) => { runs++; return `charged ${amount} (#${runs})`; });
      const srv = await fx.loop.createServer(() => new RpcProtocol({ keyring: oneKeyRing(SECRET), side: 'server', logger: {}, router, clock }),
        '127.0.0.1', 0, { ssl: wx.ca.serverOptions });
      wx.servers.push(srv);
      const [, client] = await fx.loop.createConnection(() => new RpcProtocol({ keyring: oneKeyRing(SECRET), side: 'client', logger: {}, clock }),
        '127.0.0.1', portOf(srv), { ssl: wx.ca.clientOptions });
      wx.clients.push(client);
      const key = new IdempotencyKey();
      expect(await client.call('charge', 5, { idempotent: key })).toBe('charged 5 (#1)');
      clock.offset -= 20;     // the machine's wall clock steps back 20 s
      clock.mono += 36;       // 36 s later: past the outcome's 35 s of monotonic time, 16 s into its wall-clock window
      expect(await client.call('charge', 5, { idempotent: key })).toBe('charged 5 (#1)');
      expect(runs).toBe(1);
    });
  });

  it('IdempotencyCache: an outcome is found until the wall clock passes its ttl, whatever the monotonic time', () => {
    const clock = new SteppedClock();
    const cache = new IdempotencyCache<string>({ clock });
    const begun = cache.begin('k', 10);
    if (begun.status !== 'new') throw new Error('expected a new entry');
    begun.complete('done');
    clock.offset -= 100;
    clock.mono += 50;
    expect(cache.lookup('k')).toMatchObject({ status: 'done', value: 'done' });
    clock.offset += 111;      // 11 s of wall time after the begin
    expect(cache.lookup('k')).toBeNull();
  });
});
