/**
 * examples/game-server: bad numbers in its options are refused by startGameServer with a RangeError, before it
 * listens. A zero `inputRate`/`inputBurst` was found only when the first player joined (its token bucket threw in the
 * room.join handler, so every join failed with an internal error while the server ran on), and a zero or NaN
 * `tickRate` (a tick period of Infinity or NaN), a full room of 0 players or a NaN rejoin grace got through to the
 * loop and the handlers unchecked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/wire/keyring.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';
import { startGameServer } from '../../examples/game-server/server.js';
import type { GameServerOptions } from '../../examples/game-server/server.js';

const fx = useLoop({ real: true });
let ca: TestCA;
beforeAll(async () => { ca = await makeTestCA({ name: 'game.test' }); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });

describe('examples/game-server: bad options', () => {
  it.each([
    ['tickRate 0', { tickRate: 0 }],
    ['tickRate NaN', { tickRate: Number.NaN }],
    ['inputRate 0', { inputRate: 0 }],
    ['inputBurst -1', { inputBurst: -1 }],
    ['inputBurst 0.5 (every input refused)', { inputBurst: 0.5 }],
    ['maxPlayersPerRoom 0', { maxPlayersPerRoom: 0 }],
    ['maxPendingInputs 0', { maxPendingInputs: 0 }],
    ['worldSize -1', { worldSize: -1 }],
    ['rejoinGrace NaN', { rejoinGrace: Number.NaN }],
  ] as [string, Partial<GameServerOptions>][])('%s is refused with RangeError before the server listens', async (_name, bad) => {
    await fx.run(async () => {
      const keyring = new Keyring();
      keyring.add('game-test', Buffer.alloc(32, 0x47));
      await expect(startGameServer({ keyring, tls: ca.serverOptions, ...bad })).rejects.toThrow(RangeError);
    });
  });
});
