/**
 * The server files an idempotent request under (key id, peer identity, method, nonce) (docs/wire-format.md, RPC,
 * Idempotency). The parts are joined so that no two different tuples give the same key: identities and method
 * names may hold any character, '/' included (`--id player/42`). Joined with '/', peer "player" calling "42/charge"
 * and peer "player/42" calling "charge" with the same nonce filed under one key, so the second got the first's
 * outcome without running. Now each is its own request (here, with no nonce store, the second runs; with one, a
 * reused nonce that has no outcome of its own is TW_REPLAYED_MESSAGE, never another request's outcome).
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { memoryRpcPair } from '../support/rpc-pair.js';
import { Keyring } from '../../src/wire/keyring.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';

const fx = useLoop({ real: true });

describe('the idempotency key of a request', () => {
  it("two (peer, method) pairs that read the same joined with '/' are different keys", async () => {
    await fx.run(async () => {
      const keyring = new Keyring();
      keyring.add('k1', Buffer.alloc(32, 9));
      let peer = 'tulip://ca/client/player/42';
      const { s, c } = await memoryRpcPair(fx.loop, keyring, { peerKey: () => peer });
      const ran: string[] = [];
      s.handle('charge', () => { ran.push('charge'); return 'charged player/42'; });
      s.handle('42/charge', () => { ran.push('42/charge'); return 'charged player'; });
      const key = new IdempotencyKey();
      expect(await c.call('charge', null, { idempotent: key })).toBe('charged player/42');
      peer = 'tulip://ca/client/player';
      expect(await c.call('42/charge', null, { idempotent: key })).toBe('charged player');
      expect(ran).toEqual(['charge', '42/charge']);
      // Each tuple keeps its own outcome: retries get it without running again.
      peer = 'tulip://ca/client/player/42';
      expect(await c.call('charge', null, { idempotent: key })).toBe('charged player/42');
      peer = 'tulip://ca/client/player';
      expect(await c.call('42/charge', null, { idempotent: key })).toBe('charged player');
      expect(ran).toEqual(['charge', '42/charge']);
    });
  });
});
