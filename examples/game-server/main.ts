/**
 * The game-server example end to end: a private CA (in a temp dir, or `dir`), a game server over mutual TLS, N bots
 * playing in two rooms for `duration` seconds, and a cheater whose tampered, replayed, stale, out-of-room and
 * flooding inputs are refused and counted. It ends with a graceful drain and prints a summary.
 *
 *     npx tsx examples/game-server/main.ts                # ~3 s, 4 bots and a cheater
 *     npx tsx examples/game-server/main.ts --bots 8 --duration 10
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { exampleFlags } from '../shared/args.js';
import {
  Keyring, PrivateCA, TulipError, clientTlsOptions, getRunningLoop, run, serverTlsOptions, sleep,
} from '../../src/index.js';
import type { DrainResult } from '../../src/index.js';
import { runBot, runCheater } from './bot.js';
import type { BotStats, CheaterReport } from './bot.js';
import { startGameServer } from './server.js';

/** Options of {@link main}. Times are seconds. */
export interface GameExampleOptions {
  /** Bots to run. Default 4 (spread over two rooms). */
  bots?: number;
  /** How long the bots play. Default 3. */
  duration?: number;
  /** Also run the cheater. Default true. */
  cheater?: boolean;
  /** Server ticks per second. Default 20. */
  tickRate?: number;
  /** A directory holding (or to hold) the CA. Default a temp dir, removed at the end. */
  dir?: string;
  /** Where the summary goes. Default `console.log`; `() => {}` for silence. */
  print?: (line: string) => void;
}

/** What {@link main} reports. */
export interface GameExampleResult {
  /** Ticks the server ran. */
  ticks: number;
  /** Inputs the server applied. */
  inputsAccepted: number;
  /** Refused messages by code (wire and game codes). */
  rejected: Record<string, number>;
  /** `state` messages the server sent. */
  broadcasts: number;
  /** Connections ended, by reason code. */
  disconnects: Record<string, number>;
  /** Per bot: id, room, inputs sent, broadcasts received, highest acknowledged seq, connects. */
  bots: Pick<BotStats, 'id' | 'room' | 'inputsSent' | 'statesReceived' | 'acked' | 'connects' | 'rtt'>[];
  /** What the cheater sent (null without one). */
  cheater: CheaterReport | null;
  /** The graceful drain's report. */
  drain: DrainResult | null;
  /** Wall time the run took, seconds. */
  seconds: number;
}

/** Runs the example (see the module doc) on its own event loop and returns what happened. */
export async function main(options: GameExampleOptions = {}): Promise<GameExampleResult> {
  const print = options.print ?? ((line: string) => console.log(line));
  const botCount = options.bots ?? 4;
  const duration = options.duration ?? 3;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'tulipwire-game-'));
  try {
    // Certificates first, outside the loop: issuing awaits webcrypto and fs promises, which are not loop Futures
    // (inside a Task, await them through wrapPromise).
    let ca: PrivateCA;
    try {
      ca = await PrivateCA.load({ dir });
    } catch (err) {
      if (!(TulipError.isTulipError(err) && err.code === 'TW_CA_NOT_FOUND')) throw err;
      ca = await PrivateCA.init({ dir, name: 'game.tulipwire' });
    }
    const pin = ca.rootPin;
    const serverTls = serverTlsOptions(await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }), { pin });
    const playerTls = async (id: string) =>
      clientTlsOptions(await ca.issueClient({ identity: `player/${id}` }), { servername: 'localhost', pin });
    const botTls: ConnectionOptions[] = [];
    for (let i = 0; i < botCount; i++) botTls.push(await playerTls(`bot-${i + 1}`));
    const cheaterTls = await playerTls('cheater');
    // The message keys: every connection's direction keys are derived from this secret and its TLS session.
    const keyring = new Keyring();
    keyring.add('game-1', randomBytes(32));

    return await run(async () => {
      const loop = getRunningLoop();
      const started = loop.time();
      const server = await startGameServer({ keyring, tls: serverTls, tickRate: options.tickRate });
      const bots = [];
      for (let i = 0; i < botCount; i++) {
        bots.push(runBot({ port: server.port, keyring, tls: botTls[i]!, room: i % 2 === 0 ? 'red' : 'blue' }));
      }
      for (const b of bots) await b.joined();
      let cheater: CheaterReport | null = null;
      if (options.cheater ?? true) {
        cheater = await runCheater({ port: server.port, keyring, tls: cheaterTls, room: 'red' });
      }
      await sleep(Math.max(0, duration - (loop.time() - started)));
      // Graceful shutdown with everyone still connected: GOAWAY, in-flight calls finish, then close.
      const final = await server.stop({ drainTimeout: 1 });
      const botStats = [];
      for (const b of bots) botStats.push(await b.stop());

      const result: GameExampleResult = {
        ticks: final.ticks,
        inputsAccepted: final.inputsAccepted,
        rejected: final.rejected,
        broadcasts: final.broadcasts,
        disconnects: final.disconnects,
        bots: botStats.map(({ id, room, inputsSent, statesReceived, acked, connects, rtt }) => ({ id, room, inputsSent, statesReceived, acked, connects, rtt })),
        cheater,
        drain: final.drain,
        seconds: loop.time() - started,
      };
      printSummary(result, print);
      return result;
    }, { handleSignals: false });
  } finally {
    if (ownDir) await rm(dir, { recursive: true, force: true });
  }
}

function printSummary(r: GameExampleResult, print: (line: string) => void): void {
  print(`game server: ${r.ticks} ticks in ${r.seconds.toFixed(1)} s, ${r.inputsAccepted} inputs applied, ${r.broadcasts} state broadcasts sent`);
  print('');
  print('bot        room   inputs sent   states received   acked seq   rtt (ms)');
  for (const b of r.bots) {
    print(`${(b.id ?? '?').padEnd(10)} ${b.room.padEnd(6)} ${String(b.inputsSent).padStart(11)}   ${String(b.statesReceived).padStart(15)}   ${String(b.acked).padStart(9)}   ${b.rtt === null ? '-' : (b.rtt * 1000).toFixed(2)}`);
  }
  print('');
  print('refused messages by code');
  for (const [code, n] of Object.entries(r.rejected).sort()) print(`  ${code.padEnd(22)} ${n}`);
  if (r.cheater !== null) print(`  (the cheater sent ${Object.values(r.cheater.expected).reduce((a, b) => a + b, 0)} bad inputs and a burst of ${r.cheater.burst})`);
  if (r.drain !== null) print(`drain: ${r.drain.connections} connections, ${r.drain.closedInTime} closed in time, ${r.drain.closedAtTimeout} at the timeout`);
}

function parseArgs(argv: string[]): GameExampleOptions {
  const f = exampleFlags('usage: npx tsx examples/game-server/main.ts [flags]', {
    bots: { type: 'number', help: 'bots to run (default 4, over two rooms)' },
    duration: { type: 'number', help: 'seconds the bots play (default 3)' },
    'tick-rate': { type: 'number', help: 'server ticks per second (default 20)' },
    'no-cheater': { type: 'boolean', help: 'leave out the bot that sends forged inputs' },
  }, argv);
  const o: GameExampleOptions = {};
  if (f['bots'] !== undefined) o.bots = f['bots'] as number;
  if (f['duration'] !== undefined) o.duration = f['duration'] as number;
  if (f['tick-rate'] !== undefined) o.tickRate = f['tick-rate'] as number;
  if (f['no-cheater'] === true) o.cheater = false;
  return o;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(parseArgs(process.argv.slice(2))).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
