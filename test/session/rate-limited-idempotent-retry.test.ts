/**
 * An idempotent call that the session server's rate limit refused never ran, so a retry with the same
 * IdempotencyKey (the documented way to retry an operation yourself) must run it, once: the refusal happens after
 * the nonce store reserved the request's nonce, and the retry arrives as a duplicate. Over real mutual TLS on
 * 127.0.0.1 with the test CA's certificates; bounded waits, no timed assertions.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x5e);

describe('an idempotent request refused by the rate limit', () => {
  it('is run by a retry with the same IdempotencyKey (once), not refused as a replay', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      // One token, refilled every 50 ms: the second request in a row is refused.
      const server = await sx.serve(keyring, { rate: 20, burst: 1 });
      let runs = 0;
      server.handle('buy', () => { runs += 1; return `bought ${runs}`; });
      const s = sx.open(keyring, server.port!);
      await s.whenConnected();
      const key = new IdempotencyKey();
      const settled = await Promise.allSettled([s.call('buy', 1), s.call('buy', 2, { idempotent: key })]);
      expect(settled[0]).toMatchObject({ status: 'fulfilled', value: 'bought 1' });
      const refused = (settled[1] as PromiseRejectedResult).reason as { code: string; retryAfter: number };
      expect(refused).toMatchObject({ code: 'TW_RATE_LIMITED', remote: true });
      expect(runs).toBe(1);
      await sleep(refused.retryAfter + 0.1);
      // The operation never ran: the retry runs it. A copy right behind it is refused by the rate limit again.
      const again = await Promise.allSettled([s.call('buy', 2, { idempotent: key }), s.call('buy', 2, { idempotent: key })]);
      expect(again[0]).toMatchObject({ status: 'fulfilled', value: 'bought 2' });
      expect(again[1]).toMatchObject({ status: 'rejected', reason: { code: 'TW_RATE_LIMITED' } });
      await sleep(0.1);
      // A further copy of the same key gets the cached outcome; nothing ran twice.
      expect(await s.call('buy', 2, { idempotent: key })).toBe('bought 2');
      expect(runs).toBe(2);
    });
  }, 20_000);
});
