/**
 * examples/game-server over real mutual TLS on 127.0.0.1: three bots in two rooms receive their room's state on
 * every tick (and only their room's), a repeated join changes nothing, a cheater's tampered, replayed, stale,
 * out-of-room, stale-seq, malformed and flooding inputs are each refused and counted by code, a hung client is
 * dropped by the heartbeats and leaves its room, and a drain stops everything. A player whose connection ends
 * keeps its place for the rejoin grace (away, position and ack kept) and gets it back with a new connection of its
 * certificate, or leaves when the grace is over. Then `main()` end to end.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSession, sleep } from '../../src/index.js';
import type { Session } from '../../src/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';
import { runBot, runCheater } from '../../examples/game-server/bot.js';
import type { Bot } from '../../examples/game-server/bot.js';
import { INPUT_REJECTION, startGameServer } from '../../examples/game-server/server.js';
import type { GameServer, JoinReply, RoomState } from '../../examples/game-server/server.js';
import { main } from '../../examples/game-server/main.js';

const fx = useLoop({ real: true });
let ca: TestCA;
type Creds = Awaited<ReturnType<TestCA['issueClient']>>;
const creds: Record<string, Creds> = {};
const servers: GameServer[] = [];
const bots: Bot[] = [];
const sessions: Session[] = [];

beforeAll(async () => {
  ca = await makeTestCA({ name: 'game.test' });
  // Certificates are issued outside the loop (webcrypto promises are not loop Futures).
  for (const id of ['alice', 'bob', 'carol', 'dave', 'mallory']) creds[id] = await ca.issueClient(`player/${id}`);
}, 60_000);
afterAll(async () => { await ca?.cleanup(); });
// Runs before useLoop's afterEach closes the loop: stop whatever a failed test left running.
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

describe('examples/game-server', () => {
  it('rooms, per-room state broadcasts, idempotent join, refused inputs by code, idle drop, drain', async () => {
    await fx.run(async () => {
      const keyring = ring();
      // No rejoin grace here: a player who disconnects or is dropped leaves at once (the next test keeps places).
      const server = await startGameServer({ keyring, tls: ca.serverOptions, ...fast, inputBurst: 10, rejoinGrace: 0 });
      servers.push(server);
      const play = (id: string, room: string): Bot => {
        const b = runBot({ port: server.port, keyring, tls: creds[id]!.options, room, ...fast, random: () => 0.75 });
        bots.push(b);
        return b;
      };
      const alice = play('alice', 'red');
      const bob = play('bob', 'red');
      const carol = play('carol', 'blue');
      const replies = [await alice.joined(), await bob.joined(), await carol.joined()];
      expect(replies.map((r) => [r.you, r.room, r.joined])).toEqual([['alice', 'red', true], ['bob', 'red', true], ['carol', 'blue', true]]);

      // Every bot gets its own room's state on every tick, and sees its inputs applied (ack).
      await until(() => [alice, bob, carol].every((b) => b.stats.statesReceived >= 10 && b.stats.acked >= 5), 'ten states per bot');
      const red = alice.stats.lastState!;
      expect(red.room).toBe('red');
      expect(red.players.map((p) => p.id)).toEqual(['alice', 'bob']);
      expect(bob.stats.lastState!.players.map((p) => p.id)).toEqual(['alice', 'bob']);
      expect(carol.stats.lastState).toMatchObject({ room: 'blue', players: [{ id: 'carol' }] });
      for (const p of red.players) {
        // random() = 0.75 moves by (+0.5, +0.5) per input from the centre (50, 50), one step per applied input
        expect(p.x).toBeCloseTo(Math.min(100, 50 + 0.5 * p.ack), 5);
        expect(p.y).toBeCloseTo(Math.min(100, 50 + 0.5 * p.ack), 5);
        expect(p.ack).toBeGreaterThan(0);
      }
      expect(server.room('red')!.tick).toBeGreaterThanOrEqual(red.tick);
      expect(server.rooms()).toEqual(['blue', 'red']);

      // Joining again is idempotent: nothing changes, the answer carries the current state.
      const again = await alice.session.call<JoinReply>('room.join', { room: 'red' });
      expect(again).toMatchObject({ room: 'red', you: 'alice', joined: false });
      expect(again.state.players.map((p) => p.id)).toEqual(['alice', 'bob']);
      expect(server.stats().joins).toBe(3);

      // The honest bots had nothing refused.
      expect(server.stats().rejected).toEqual({});

      // The cheater: every bad input refused with its own code; the genuine ones applied.
      const report = await runCheater({ port: server.port, keyring, tls: creds.mallory!.options, room: 'red', burst: 30 });
      expect(report.expected).toEqual({
        TW_BAD_SIGNATURE: 1, TW_REPLAYED_MESSAGE: 1, TW_SIGNATURE_EXPIRED: 1, [INPUT_REJECTION.NOT_IN_ROOM]: 1,
        [INPUT_REJECTION.STALE_SEQ]: 1, TW_BAD_PAYLOAD: 1,
      });
      expect(report.acked).toBeGreaterThanOrEqual(10); // seq 1 and the start of the burst were applied
      // The cheater returned once a tick applied its seq 10; a few more ticks let the rest of the burst land.
      const ticks = server.stats().ticks;
      await until(() => server.stats().ticks >= ticks + 3, 'three more ticks');
      const rejected = server.stats().rejected;
      const { TW_RATE_LIMITED: limited, ...rest } = rejected;
      expect(rest).toEqual(report.expected);
      // The bucket held ≤ 10 tokens (one went to seq 1) and refills at 60/s: most of the burst is refused, never all.
      expect(limited).toBeGreaterThanOrEqual(10);
      expect(limited).toBeLessThan(30);
      // The accepted ones (30 − refused) were applied, the highest of them acknowledged.
      expect(report.acked).toBeGreaterThanOrEqual(10 + (30 - limited!) - 1);
      await until(() => (alice.stats.lastState?.tick ?? 0) > ticks, 'a state after the burst');

      // A hung client (stops reading, so it answers no PING, and sends nothing: its own heartbeat is slow) is
      // dropped by the server's heartbeats and leaves its room.
      const dave = openSession({ port: server.port, keyring, tls: creds.dave!.options, heartbeatInterval: 30, idleTimeout: 60,
        logger: {}, backoff: { base: 0.05, cap: 0.2 }, shutdownTimeout: 0.5 });
      sessions.push(dave);
      await dave.call('room.join', { room: 'red' });
      await until(() => alice.stats.lastState!.players.some((p) => p.id === 'dave'), 'dave in the red room');
      dave.link!.transport!.pauseReading();
      await until(() => (server.stats().disconnects.TW_PEER_TIMEOUT ?? 0) >= 1, 'the idle drop');
      const tickAfterDrop = server.stats().ticks;
      await until(() => (alice.stats.lastState as RoomState).tick > tickAfterDrop, 'a state after the drop');
      expect(alice.stats.lastState!.players.map((p) => p.id)).toEqual(['alice', 'bob']); // dave dropped, mallory gone
      expect(server.stats().leaves).toBeGreaterThanOrEqual(2); // mallory disconnected, dave dropped

      // Graceful stop: drain with the bots connected, then the bots leave.
      const t0 = fx.loop.time();
      const final = await server.stop({ drainTimeout: 1 });
      expect(fx.loop.time() - t0).toBeLessThan(1 + 2); // the drain timeout plus its close grace, with room for a loaded machine
      expect(final.drain).toMatchObject({ closedAtTimeout: 0 });
      expect(final.drain!.connections).toBeGreaterThanOrEqual(3);
      const stats = await Promise.all(bots.splice(0).map((b) => b.stop()));
      for (const s of stats) {
        expect(s.statesReceived).toBeGreaterThanOrEqual(10);
        expect(s.inputsSent).toBeGreaterThanOrEqual(s.acked);
      }
      await dave.close();
      sessions.splice(0);
      servers.splice(0);
      expect(final.broadcasts).toBeGreaterThanOrEqual(stats.reduce((n, s) => n + s.statesReceived, 0));
    });
  }, 40_000);

  it('rejoin grace: a player whose connection ended stays in its room marked away, gets its place back on a new connection, and leaves once the grace is over', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await startGameServer({ keyring, tls: ca.serverOptions, ...fast, rejoinGrace: 1 });
      servers.push(server);
      const alice = runBot({ port: server.port, keyring, tls: creds.alice!.options, room: 'red', ...fast, random: () => 0.75 });
      bots.push(alice);
      await alice.joined();
      const open = () => openSession({ port: server.port, keyring, tls: creds.carol!.options, ...fast, logger: {},
        backoff: { base: 0.05, cap: 0.2 } });
      const first = open();
      sessions.push(first);
      expect(await first.call<JoinReply>('room.join', { room: 'red' })).toMatchObject({ you: 'carol', joined: true });
      await first.notify('input', { room: 'red', seq: 1, dx: 1, dy: -1 });
      await until(() => server.room('red')?.players.find((p) => p.id === 'carol')?.ack === 1, 'carol moved');
      const before = server.room('red')!.players.find((p) => p.id === 'carol')!;
      expect(before).toEqual({ id: 'carol', x: 51, y: 49, ack: 1 });

      // Her connection ends (no room.leave): she stays in the room, away, where she was.
      await first.close();
      await until(() => server.stats().away === 1, 'carol away');
      const tick = server.stats().ticks;
      await until(() => (alice.stats.lastState?.tick ?? 0) > tick, 'a state after she went away');
      expect(alice.stats.lastState!.players.find((p) => p.id === 'carol')).toEqual({ ...before, away: true });
      expect(server.stats()).toMatchObject({ leaves: 0, rejoins: 0, online: 2 });

      // A new connection with her certificate, within the grace: her place again, position and ack kept.
      const second = open();
      sessions.push(second);
      await second.whenConnected();
      await until(() => server.stats().rejoins === 1, 'carol back');
      expect(server.stats()).toMatchObject({ away: 0, leaves: 0, joins: 2 });
      const again = await second.call<JoinReply>('room.join', { room: 'red' });
      expect(again).toMatchObject({ you: 'carol', joined: false });
      expect(again.state.players.find((p) => p.id === 'carol')).toEqual(before);
      // Her inputs go on from the seq she had reached.
      await second.notify('input', { room: 'red', seq: 2, dx: 1, dy: 1 });
      await until(() => server.room('red')?.players.find((p) => p.id === 'carol')?.ack === 2, 'carol moved again');
      expect(server.room('red')!.players.find((p) => p.id === 'carol')).toEqual({ id: 'carol', x: 52, y: 50, ack: 2 });

      // Gone for longer than the grace: she leaves.
      await second.close();
      await until(() => server.stats().away === 1, 'carol away again');
      await until(() => server.stats().leaves === 1, 'carol gone after the grace', 5);
      expect(server.stats()).toMatchObject({ away: 0, rejoins: 1, online: 1 });
      const left = server.stats().ticks;
      await until(() => server.stats().ticks > left, 'a tick after she left');
      expect(server.room('red')!.players.map((p) => p.id)).toEqual(['alice']);
      sessions.splice(0);
    });
  }, 40_000);

  it('main(): a short run with two bots and the cheater reports ticks, refusals by code and a clean drain', async () => {
    const lines: string[] = [];
    const r = await main({ bots: 2, duration: 1.5, print: (l) => lines.push(l) });
    expect(r.ticks).toBeGreaterThan(5);
    expect(r.bots).toHaveLength(2);
    for (const b of r.bots) {
      expect(b.statesReceived).toBeGreaterThan(0);
      expect(b.acked).toBeGreaterThan(0);
    }
    expect(r.bots.map((b) => [b.id, b.room])).toEqual([['bot-1', 'red'], ['bot-2', 'blue']]);
    const { TW_RATE_LIMITED: limited, ...rest } = r.rejected;
    expect(rest).toEqual(r.cheater!.expected);
    expect(limited).toBeGreaterThan(0);
    expect(r.drain).toMatchObject({ closedAtTimeout: 0 });
    const text = lines.join('\n');
    expect(text).toContain('TW_BAD_SIGNATURE');
    expect(text).toContain('bot-1');
  }, 40_000);
});
