/**
 * examples/game-server: a bot whose connection drops in the middle of play (between two ticks, with inputs in
 * flight) comes back by itself: its session reconnects, it joins again and finds its kept place (`joined: false`),
 * its inputs go on above the server's `ack` (none refused as stale), it never sees a tick twice or out of order, and
 * the other player's broadcasts never stop. A bot stopped mid-run leaves its room; the other one plays on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../src/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';
import { runBot } from '../../examples/game-server/bot.js';
import type { Bot } from '../../examples/game-server/bot.js';
import { startGameServer } from '../../examples/game-server/server.js';
import type { GameServer } from '../../examples/game-server/server.js';

const fx = useLoop({ real: true });
let ca: TestCA;
type Creds = Awaited<ReturnType<TestCA['issueClient']>>;
const creds: Record<string, Creds> = {};
const servers: GameServer[] = [];
const bots: Bot[] = [];

beforeAll(async () => {
  ca = await makeTestCA({ name: 'game.test' });
  for (const id of ['gina', 'hank']) creds[id] = await ca.issueClient(`player/${id}`);
}, 60_000);
afterAll(async () => { await ca?.cleanup(); });
afterEach(async () => {
  const bs = bots.splice(0);
  const vs = servers.splice(0);
  await fx.loop.runUntilComplete(async () => {
    for (const b of bs) await b.stop();
    for (const v of vs) await v.sessions.close();
  });
});

const fast = { heartbeatInterval: 0.2, idleTimeout: 0.8 } as const;

async function until(pred: () => boolean, what: string, timeout = 10): Promise<void> {
  const end = fx.loop.time() + timeout;
  while (!pred()) {
    if (fx.loop.time() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(0.02);
  }
}

describe('examples/game-server: a bot whose connection drops mid-play', () => {
  it('reconnects, finds its place, goes on above its ack; nothing refused, no tick twice; the other bot never stops', async () => {
    await fx.run(async () => {
      const keyring = new Keyring();
      keyring.add('game-test', Buffer.alloc(32, 0x47));
      const server = await startGameServer({ keyring, tls: ca.serverOptions, ...fast, rejoinGrace: 3 });
      servers.push(server);
      const play = (id: string): Bot => {
        const b = runBot({ port: server.port, keyring, tls: creds[id]!.options, room: 'red', ...fast, random: () => 0.6 });
        bots.push(b);
        return b;
      };
      const gina = play('gina');
      const hank = play('hank');
      await gina.joined();
      await hank.joined();
      await until(() => gina.stats.acked >= 10 && hank.stats.acked >= 10, 'both playing');

      // Mid-tick: wait for a tick, then cut gina's connection at once (no close_notify, no room.leave).
      const t = server.stats().ticks;
      await until(() => server.stats().ticks > t, 'a tick');
      gina.session.link!.transport!.abort();
      const ackAtDrop = server.room('red')!.players.find((p) => p.id === 'gina')!.ack;
      const hankStates = hank.stats.statesReceived;
      await until(() => gina.stats.connects >= 2 && gina.stats.joins >= 2, 'gina back on a new connection');
      await until(() => (server.room('red')?.players.find((p) => p.id === 'gina')?.ack ?? 0) > ackAtDrop + 5, 'gina moving again');

      expect(server.stats()).toMatchObject({ rejected: {}, rejoins: 1, leaves: 0, away: 0, online: 2 });
      expect(server.room('red')!.players.map((p) => p.id)).toEqual(['gina', 'hank']);
      expect(hank.stats.statesReceived).toBeGreaterThan(hankStates + 5); // the room never stopped for him
      expect(gina.stats.tickRepeats).toBe(0);
      expect(hank.stats.tickRepeats).toBe(0);

      // gina stops mid-run: she leaves the room; hank plays on alone.
      const ginaStats = await gina.stop();
      bots.splice(bots.indexOf(gina), 1);
      expect(ginaStats.inputsSent).toBeGreaterThanOrEqual(ginaStats.acked);
      await until(() => server.room('red')?.players.length === 1, 'gina gone from the state');
      expect(server.stats()).toMatchObject({ leaves: 1, online: 1, rejected: {} });
      const after = hank.stats.statesReceived;
      await until(() => hank.stats.statesReceived > after + 3, 'hank still getting states');
      expect(hank.stats.lastState!.players.map((p) => p.id)).toEqual(['hank']);
    });
  }, 40_000);
});
