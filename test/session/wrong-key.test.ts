/**
 * Two ends with different shared keys: the connection ends with PeerTimeout, and its message now says that the peer
 * was not silent but that everything it sent was refused, with the last check that failed and a hint (found by a
 * game developer's trial: "peer silent for 1.001 s, idle timeout 1 s" when every message had failed its MAC).
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/loop/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x29);

describe('PeerTimeout with a wrong keyring', () => {
  it('names the refused messages and the last failed check, not only the silence', async () => {
    await fx.run(async () => {
      const server = await sx.serve(sx.ring(), { idleTimeout: 0.6, heartbeatInterval: 0.1 });
      const other = new Keyring();
      other.add('k1', Buffer.alloc(32, 0x30)); // the same key id, another secret
      const s = sx.open(other, server.port!, { idleTimeout: 0.6, heartbeatInterval: 0.1, backoff: { attempts: 0 } });
      const reason = await s.closed;
      const last = s.lastError as { code?: string; message: string } | null;
      expect(last).toMatchObject({
        code: 'TW_PEER_TIMEOUT',
        message: expect.stringMatching(/^peer silent for \d+\.\d{3} s, idle timeout 0\.6 s: nothing it sent in that time verified, \d+ messages refused, the last TW_BAD_SIGNATURE .*\(the two ends do not share the same keyring\?\)$/),
      });
      expect(reason).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      await sleep(0.05);
      fx.take();
    });
  }, 20_000);
});
