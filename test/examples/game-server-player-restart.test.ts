/**
 * examples/game-server: a player whose client restarts (a new process, the same certificate) can play again at
 * once. The server keeps each player's record (by certificate identity) for its whole life, with the last input
 * `seq` it accepted; a restarted client numbers its inputs from 1 again. Before the fix every input of the restarted
 * client was refused as GAME_STALE_SEQ until its seq passed the old one (at 20 inputs/s, a player who had played
 * ten minutes could not move for ten minutes):
 * - after the player had left (room.leave, or its rejoin grace ran out), a fresh join (`joined: true`) kept the old
 *   seq; now a fresh join starts the input sequence over;
 * - within the rejoin grace (`joined: false`: its place, position and `ack` kept) the bot numbered from 1 anyway;
 *   now the bot continues from the `ack` the join answered.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSession, sleep } from '../../src/index.js';
import type { Session } from '../../src/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';
import { runBot } from '../../examples/game-server/bot.js';
import type { Bot } from '../../examples/game-server/bot.js';
import { INPUT_REJECTION, startGameServer } from '../../examples/game-server/server.js';
import type { GameServer, JoinReply } from '../../examples/game-server/server.js';

const fx = useLoop({ real: true });
let ca: TestCA;
type Creds = Awaited<ReturnType<TestCA['issueClient']>>;
let alice: Creds;
const servers: GameServer[] = [];
const bots: Bot[] = [];
const sessions: Session[] = [];

beforeAll(async () => {
  ca = await makeTestCA({ name: 'game.test' });
  alice = await ca.issueClient('player/alice');
}, 60_000);
afterAll(async () => { await ca?.cleanup(); });
afterEach(async () => {
  const bs = bots.splice(0);
  const ss = sessions.splice(0);
  const vs = servers.splice(0);
  await fx.loop.runUntilComplete(async () => {
    for (const b of bs) await b.stop();
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

async function until(pred: () => boolean, what: string, timeout = 10): Promise<void> {
  const end = fx.loop.time() + timeout;
  while (!pred()) {
    if (fx.loop.time() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(0.02);
  }
}

describe('examples/game-server: a restarted client (same certificate, seq from 1 again)', () => {
  it('after it left the room, its fresh join starts the input sequence over: its inputs are applied', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await startGameServer({ keyring, tls: ca.serverOptions, ...fast });
      servers.push(server);
      const open = (): Session => {
        const s = openSession({ port: server.port, keyring, tls: alice.options, ...fast, logger: {}, backoff: { base: 0.05, cap: 0.2 } });
        sessions.push(s);
        return s;
      };
      const first = open();
      expect(await first.call<JoinReply>('room.join', { room: 'red' })).toMatchObject({ joined: true });
      for (let seq = 1; seq <= 40; seq++) {
        await first.notify('input', { room: 'red', seq, dx: 0.5, dy: 0 });
        await sleep(0.025); // under the game's 60 inputs/s
      }
      await until(() => server.room('red')?.players[0]?.ack === 40, 'seq 40 applied');
      expect(await first.call('room.leave', {})).toEqual({ room: 'red', left: true });
      await first.close();

      // The client restarts: a new session, the same certificate, numbering from 1.
      const second = open();
      const reply = await second.call<JoinReply>('room.join', { room: 'red' });
      expect(reply).toMatchObject({ joined: true });
      expect(reply.state.players).toEqual([expect.objectContaining({ id: 'alice', ack: 0 })]);
      for (let seq = 1; seq <= 3; seq++) await second.notify('input', { room: 'red', seq, dx: 0.5, dy: 0 });
      await until(() => server.room('red')?.players[0]?.ack === 3, 'the restarted client\'s seq 3 applied', 3);
      expect(server.stats().rejected[INPUT_REJECTION.STALE_SEQ]).toBeUndefined();
    });
  }, 30_000);

  it('within the rejoin grace, a restarted bot continues from the ack its join answered: nothing refused', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await startGameServer({ keyring, tls: ca.serverOptions, ...fast, rejoinGrace: 5 });
      servers.push(server);
      const crashed = runBot({ port: server.port, keyring, tls: alice.options, room: 'red', ...fast });
      bots.push(crashed);
      await crashed.joined();
      await until(() => crashed.stats.acked >= 10, 'ten inputs applied');
      // The process dies: its connection drops with no room.leave, and its session is gone with it.
      crashed.session.link!.transport!.abort();
      await crashed.session.close();
      await crashed.stop();
      await until(() => server.stats().away === 1, 'alice away');

      const restarted = runBot({ port: server.port, keyring, tls: alice.options, room: 'red', ...fast });
      bots.push(restarted);
      const reply = await restarted.joined();
      expect(reply.joined).toBe(false);
      const ackBefore = reply.state.players.find((p) => p.id === 'alice')!.ack;
      expect(ackBefore).toBeGreaterThanOrEqual(10);
      await until(() => (server.room('red')?.players.find((p) => p.id === 'alice')?.ack ?? 0) >= ackBefore + 5,
        'the restarted bot\'s inputs applied', 3);
      expect(server.stats().rejected[INPUT_REJECTION.STALE_SEQ]).toBeUndefined();
      expect(server.stats().rejoins).toBe(1);
    });
  }, 30_000);
});
