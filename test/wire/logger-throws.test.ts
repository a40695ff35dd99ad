/**
 * The `logger` a MessageProtocol is given is user code, and a throwing one (a structured logger that cannot
 * serialize a field, a log sink that is down) must not change what the connection does: the exception goes to the
 * loop's exception handler, and the connection still closes for its reason. Before the fix the warning that
 * announces a close was logged before the close itself, so a throw skipped the close: behind a nonce store (where
 * rejections are reported from a callback once the store answered) the connection was doomed but stayed open,
 * reading nothing, for good. Real mutual TLS on 127.0.0.1, port 0.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { Recorder, serveRecorders, useWireTls, untilOn } from '../support/wire-tls.js';
import '../../src/net/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x19);

const until = (pred: () => boolean, seconds = 5): Promise<void> => untilOn(fx.loop, pred, seconds);

describe('a logger that throws', () => {
  it('at maxRejections behind a nonce store: the connection still closes for its reason; the logger error is reported', async () => {
    await fx.run(async () => {
      const server = new Keyring();
      server.add('k1', SECRET);
      const store = new MemoryNonceStore();
      const logger = { warn: (): void => { throw new Error('log sink down'); } };
      const { port, protocols } = await serveRecorders(fx.loop, wx.ca.serverOptions, wx.servers,
        { keyring: server, nonceStore: store, maxRejections: 2, logger });
      const ring = new Keyring();
      ring.add('k1', SECRET);
      const [, c] = await fx.loop.createConnection(() => new Recorder({ keyring: ring, side: 'client', logger: {} }),
        '127.0.0.1', port, { ssl: wx.ca.clientOptions });
      wx.clients.push(c);
      // One batch: a good message (it waits for the store), then two under a key the server does not hold.
      c.sendMessage('good');
      ring.remove('k1');
      ring.add('k9', Buffer.alloc(32, 0x77));
      c.sendMessage('bad 1');
      c.sendMessage('bad 2');
      await until(() => c.lost.length === 1);
      const s = protocols[0]!;
      expect(s.got.map(([m]) => m)).toEqual(['good']);
      expect(s.rejected.map((e) => e.code)).toEqual(['TW_UNKNOWN_KEY_ID', 'TW_UNKNOWN_KEY_ID']);
      expect(s.closeReason?.code).toBe('TW_UNKNOWN_KEY_ID');
      const records = fx.take();
      expect(records.map((r) => (r.exception as Error | undefined)?.message)).toContain('log sink down');
      await store.close();
    });
  });
});
