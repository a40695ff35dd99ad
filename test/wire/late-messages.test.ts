/**
 * A message that expired on the way, on a connection whose keys are bound to its TLS session, is refused
 * (SignatureExpired) but no longer counts toward `maxRejections` (found by a game developer's trial: a client that
 * stalled for 7 s resumed with a kernel buffer of 0.5 s snapshots, each was refused, and the 16th closed its
 * connection). Its MAC verified and the keys are this connection's own, so only the peer can have sent it: late,
 * not forged. With unbound keys (anyone holding the shared key could write it) it counts as before.
 * The sender here runs on a clock 60 s behind, so every message it signs arrives expired.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { sleep } from '../../src/loop/index.js';
import '../../src/net/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import type { MessageProtocolOptions } from '../../src/wire/message-protocol.js';
import { useLoop } from '../support/loop.js';
import { Recorder, serveRecorders, useWireTls } from '../support/wire-tls.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 0x4c));
  return k;
}

async function run(bindToTls: boolean) {
  const { port, protocols } = await serveRecorders(fx.loop, wx.ca.serverOptions, wx.servers, { keyring: ring(), bindToTls, maxRejections: 16, skew: 1 });
  const behind = new VirtualClock({ epochStart: Date.now() / 1000 - 60 });
  const options: Partial<MessageProtocolOptions> = { bindToTls, clock: behind };
  const [, late] = await fx.loop.createConnection(() => new Recorder({ keyring: ring(), side: 'client', logger: {}, ...options }),
    '127.0.0.1', port, { ssl: wx.ca.clientOptions });
  wx.clients.push(late);
  for (let i = 0; i < 40; i++) late.sendMessage({ snapshot: i }, { ttl: 0.5 });
  const end = fx.loop.time() + 5;
  while (fx.loop.time() < end && (protocols[0] === undefined || (protocols[0].rejected.length < 40 && protocols[0].lost.length === 0))) await sleep(0.01);
  return { server: protocols[0]!, late };
}

describe('late messages from the peer itself', () => {
  it('bound keys: 40 expired messages are refused one by one and the connection stays up', async () => {
    await fx.run(async () => {
      const { server, late } = await run(true);
      expect(server.tlsBound).toBe(true);
      expect(server.rejected).toHaveLength(40);
      expect(new Set(server.rejected.map((e) => e.code))).toEqual(new Set(['TW_SIGNATURE_EXPIRED']));
      expect(server.lost).toEqual([]);
      expect(server.closeReason).toBeNull();
      expect(server.got).toEqual([]);
      expect(late.transport?.isClosing()).toBe(false);
    });
  }, 30_000);

  it('unbound keys: they count, and the 16th closes the connection as before', async () => {
    await fx.run(async () => {
      const { server } = await run(false);
      expect(server.tlsBound).toBe(false);
      expect(server.rejected).toHaveLength(16);
      expect(server.closeReason).toMatchObject({ code: 'TW_SIGNATURE_EXPIRED' });
    });
  }, 30_000);
});
