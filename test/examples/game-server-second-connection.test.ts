/**
 * examples/game-server: one player (one certificate) with two sessions open at once (a second tab, a second device
 * with the same certificate). The state goes to the connection the player joined on last; when that one closes while
 * the other is still open, the player must go on playing on the other. Before the fix the server marked the player
 * away as if it had no connection left, stopped sending it the state, and after the rejoin grace took it out of its
 * room, so every input of the connection still open was refused as GAME_NOT_IN_ROOM.
 *
 * Also the adversarial room moves: joining a second room leaves the first (one room per player), leaving a room one
 * is not in changes nothing, and inputs after leaving (or for the old room after a move) are refused.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSession, sleep } from '../../src/index.js';
import type { Session } from '../../src/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';
import { INPUT_REJECTION, startGameServer } from '../../examples/game-server/server.js';
import type { GameServer, JoinReply, RoomState } from '../../examples/game-server/server.js';

const fx = useLoop({ real: true });
let ca: TestCA;
type Creds = Awaited<ReturnType<TestCA['issueClient']>>;
const creds: Record<string, Creds> = {};
const servers: GameServer[] = [];
const sessions: Session[] = [];

beforeAll(async () => {
  ca = await makeTestCA({ name: 'game.test' });
  for (const id of ['erin', 'frank']) creds[id] = await ca.issueClient(`player/${id}`);
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

function ring(): Keyring {
  const k = new Keyring();
  k.add('game-test', Buffer.alloc(32, 0x47));
  return k;
}

const fast = { heartbeatInterval: 0.2, idleTimeout: 0.8 } as const;

async function until(pred: () => boolean, what: string, timeout = 5): Promise<void> {
  const end = fx.loop.time() + timeout;
  while (!pred()) {
    if (fx.loop.time() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(0.02);
  }
}

describe('examples/game-server: one player, two connections', () => {
  it('the connection it joined on last closes: it plays on through the other, never away, never out of its room', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await startGameServer({ keyring, tls: ca.serverOptions, ...fast, rejoinGrace: 0.5 });
      servers.push(server);
      const open = (): { s: Session; states: RoomState[] } => {
        const s = openSession({ port: server.port, keyring, tls: creds.erin!.options, ...fast, logger: {}, backoff: { base: 0.05, cap: 0.2 } });
        sessions.push(s);
        const states: RoomState[] = [];
        s.onNotify('state', (st: RoomState) => { states.push(st); });
        return { s, states };
      };
      const a = open();
      expect(await a.s.call<JoinReply>('room.join', { room: 'red' })).toMatchObject({ joined: true });
      await until(() => a.states.length > 0, 'a state on the first connection');
      const b = open();
      expect(await b.s.call<JoinReply>('room.join', { room: 'red' })).toMatchObject({ joined: false });
      await until(() => b.states.length > 0, 'the state moved to the second connection');

      await b.s.close(); // the second tab closes
      const tick = server.stats().ticks;
      await until(() => server.stats().ticks > tick + 15, 'the rejoin grace (0.5 s) and more');
      expect(server.stats()).toMatchObject({ away: 0, leaves: 0, online: 1 });
      expect(server.room('red')!.players).toEqual([expect.not.objectContaining({ away: true })]);
      // The first connection gets the state again, and its inputs are applied.
      const seen = a.states.length;
      await until(() => a.states.length > seen, 'a state on the first connection again');
      await a.s.notify('input', { room: 'red', seq: 1, dx: 1, dy: 0 });
      await until(() => server.room('red')?.players[0]?.ack === 1, 'its input applied');
      expect(server.stats().rejected).toEqual({});
    });
  }, 30_000);

  it('room moves: a second join leaves the first room, leaving a room one is not in changes nothing, inputs after leaving are refused', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await startGameServer({ keyring, tls: ca.serverOptions, ...fast, rejoinGrace: 0 });
      servers.push(server);
      const s = openSession({ port: server.port, keyring, tls: creds.frank!.options, ...fast, logger: {} });
      sessions.push(s);
      const states: RoomState[] = [];
      s.onNotify('state', (st: RoomState) => { states.push(st); });
      expect(await s.call('room.leave', {})).toEqual({ room: null, left: false }); // in no room yet
      expect(server.stats().leaves).toBe(0);
      await s.call('room.join', { room: 'red' });
      await s.notify('input', { room: 'red', seq: 1, dx: 1, dy: 0 });
      await until(() => server.room('red')?.players[0]?.ack === 1, 'seq 1 applied in red');
      const moved = await s.call<JoinReply>('room.join', { room: 'blue' });
      expect(moved).toMatchObject({ room: 'blue', joined: true });
      expect(server.rooms()).toEqual(['blue']); // red emptied and forgotten
      expect(server.stats()).toMatchObject({ joins: 2, leaves: 1, online: 1 });
      await until(() => states.at(-1)?.room === 'blue', 'the blue state');
      const sinceMove = states.length;
      await s.notify('input', { room: 'red', seq: 2, dx: 1, dy: 0 }); // for the room it left
      await s.notify('input', { room: 'blue', seq: 1, dx: 0, dy: 1 }); // a fresh join numbers from 1
      await until(() => server.room('blue')?.players[0]?.ack === 1, 'seq 1 applied in blue');
      await sleep(0.2);
      expect(states.slice(sinceMove).every((st) => st.room === 'blue')).toBe(true);
      expect(await s.call('room.leave', {})).toEqual({ room: 'blue', left: true });
      expect(await s.call('room.leave', {})).toEqual({ room: null, left: false });
      await s.notify('input', { room: 'blue', seq: 2, dx: 0, dy: 1 }); // after leaving
      await until(() => (server.stats().rejected[INPUT_REJECTION.NOT_IN_ROOM] ?? 0) === 2, 'both refused as not in room');
      expect(server.stats()).toMatchObject({ leaves: 2, online: 0 });
      expect(server.rooms()).toEqual([]);
    });
  }, 30_000);
});
