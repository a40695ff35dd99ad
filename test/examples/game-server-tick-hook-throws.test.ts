/**
 * examples/game-server: an `onTick` hook that throws (instrumentation with a bug) must not stop the game. The tick
 * re-armed its timer only after calling the hook, so one throw ended the tick loop for good: no more inputs applied,
 * no more state broadcasts, with every player still connected. Now the next tick is armed first; the throw goes to
 * the loop's exception handler (once per throwing tick) and the game goes on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSession, sleep } from '../../src/index.js';
import type { Session } from '../../src/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';
import { startGameServer } from '../../examples/game-server/server.js';
import type { GameServer, RoomState } from '../../examples/game-server/server.js';

const fx = useLoop({ real: true });
let ca: TestCA;
let bob: Awaited<ReturnType<TestCA['issueClient']>>;
const servers: GameServer[] = [];
const sessions: Session[] = [];

beforeAll(async () => {
  ca = await makeTestCA({ name: 'game.test' });
  bob = await ca.issueClient('player/bob');
}, 60_000);
afterAll(async () => { await ca?.cleanup(); });
afterEach(async () => {
  const ss = sessions.splice(0);
  const vs = servers.splice(0);
  await fx.loop.runUntilComplete(async () => {
    for (const s of ss) await s.close();
    for (const v of vs) await v.sessions.close();
  });
});

async function until(pred: () => boolean, what: string, timeout = 5): Promise<void> {
  const end = fx.loop.time() + timeout;
  while (!pred()) {
    if (fx.loop.time() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(0.02);
  }
}

describe('examples/game-server: a throwing onTick hook', () => {
  it('is reported to the exception handler and the ticks, inputs and broadcasts go on', async () => {
    await fx.run(async () => {
      const keyring = new Keyring();
      keyring.add('game-test', Buffer.alloc(32, 0x47));
      const server = await startGameServer({
        keyring, tls: ca.serverOptions, heartbeatInterval: 0.2, idleTimeout: 0.8,
        onTick: (tick) => { if (tick === 3) throw new Error('metrics exporter broke at tick 3'); },
      });
      servers.push(server);
      const s = openSession({ port: server.port, keyring, tls: bob.options, heartbeatInterval: 0.2, idleTimeout: 0.8, logger: {} });
      sessions.push(s);
      let last: RoomState | null = null;
      s.onNotify('state', (state: RoomState) => { last = state; });
      await s.call('room.join', { room: 'red' });
      await until(() => server.stats().ticks >= 8, 'eight ticks');
      await s.notify('input', { room: 'red', seq: 1, dx: 1, dy: 0 });
      await until(() => (last as RoomState | null)?.players[0]?.ack === 1, 'the input applied after the throw');
      expect((last as RoomState | null)!.tick).toBeGreaterThan(3);
      const records = fx.take();
      expect(records.map((r) => String(r.exception))).toEqual(['Error: metrics exporter broke at tick 3']);
    });
  }, 30_000);
});
