/**
 * `sendMessage(m, {notAfter})` caps the message's expiresAt at `notAfter`. A `notAfter` before the message's issue
 * time used to be written as it was: an envelope with expiresAt < issuedAt, which the peer refuses as
 * TW_MALFORMED_ENVELOPE (counted towards maxRejections) while the sender was told nothing. It is now a RangeError
 * naming both times, with nothing sent and no sequence number used, as for any other lifetime the peer would
 * refuse (a ttl over maxTtl). A `notAfter` equal to the issue time still sends (a message that lives only within the
 * skew allowance). Real mutual TLS on 127.0.0.1, port 0.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { Recorder, serveRecorders, useWireTls, untilOn, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import { Keyring } from '../../src/wire/keyring.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x44);

const ring = (): Keyring => oneKeyRing(SECRET);

const until = (pred: () => boolean, seconds = 5): Promise<void> => untilOn(fx.loop, pred, seconds);

describe('sendMessage with a notAfter in the past', () => {
  it('throws RangeError naming both times, sends nothing; the peer rejects nothing and the next message is seq 1', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serveRecorders(fx.loop, wx.ca.serverOptions, wx.servers, { keyring: ring() });
      const [, c] = await fx.loop.createConnection(() => new Recorder({ keyring: ring(), side: 'client', logger: {} }),
        '127.0.0.1', port, { ssl: wx.ca.clientOptions });
      wx.clients.push(c);
      const past = Math.floor(fx.loop.clock.epoch()) - 10;
      let err: unknown = null;
      try {
        c.sendMessage('late', { notAfter: past });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RangeError);
      expect((err as Error).message).toContain(`notAfter ${past}`);
      expect((err as Error).message).toMatch(/issued at \d+(\.\d+)? s/);
      expect(c.stats.sent).toBe(0);
      c.sendMessage('ok');
      await until(() => (protocols[0]?.got.length ?? 0) === 1);
      const s = protocols[0]!;
      expect(s.got.map(([m, meta]) => [m, meta.seq])).toEqual([['ok', 1]]);
      expect(s.rejected).toEqual([]);
    });
  });
});
