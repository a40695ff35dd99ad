/**
 * Clients of the game server: a headless bot ({@link runBot}) that joins a room over a long-lived session, sends
 * signed move inputs with sequence numbers and reads the state broadcast every tick; and a cheater
 * ({@link runCheater}) that sends what a tampering, replaying or lagging client sends, so the refusals can be seen.
 *
 * @module
 */
import type { ConnectionOptions } from 'node:tls';
import {
  RpcProtocol, SESSION_KIND, TAG_SIZE, TulipError, getRunningLoop, openSession, sleep,
} from '../../src/index.js';
import type {
  ClientCertificateSource, ClientTlsBuildOptions, Clock, EventLoop, Future, Keyring, MessageMeta, RpcProtocolOptions,
  Session, Task, Transport,
} from '../../src/index.js';
import type { JoinReply, RoomState } from './server.js';

/** Options of {@link runBot}. Times are seconds, rates per second. */
export interface BotOptions {
  /** Server port. */
  port: number;
  /** Server host. Default `'127.0.0.1'`. */
  host?: string;
  /**
   * Client mTLS options with this bot's certificate (`tulip://<ca>/player/<id>`), pinned to the CA root. Give this
   * or `rotator`.
   */
  tls?: ConnectionOptions;
  /**
   * The bot's certificate source instead of fixed `tls` (pki's `CertRotator`): each new connection uses the newest
   * certificate, and the session moves to a new connection before the old certificate expires (make-before-break).
   */
  rotator?: ClientCertificateSource;
  /** How TLS options are built from `rotator.current` (pin, servername), for pki's `clientTlsOptions`. */
  tlsBuild?: ClientTlsBuildOptions;
  /** Message keys shared with the server. */
  keyring: Keyring;
  /** The room to join. */
  room: string;
  /** The loop. Default the running loop. */
  loop?: EventLoop;
  /** Inputs per second. Default 20 (one per server tick). */
  inputRate?: number;
  /** Stop by itself after this long (leave the room, close the session). Default: run until {@link Bot.stop}. */
  duration?: number;
  /** Lifetime of each input: a later one is refused by the server as expired, not applied late. Default 1. */
  inputTtl?: number;
  /** Seconds between heartbeats. Default 1. */
  heartbeatInterval?: number;
  /** The server is considered gone after this long silent. Default 3. */
  idleTimeout?: number;
  /** Random numbers for the moves, in [0, 1). Default `Math.random`. */
  random?: () => number;
  /**
   * Keep every received state's tick number in {@link BotStats.ticks} (for soak tests; 20 numbers a second at the
   * default tick rate). Default false: only the counters ({@link BotStats.tickRepeats}, {@link BotStats.ticksMissed}).
   */
  recordTicks?: boolean;
}

/** What a bot saw and did. */
export interface BotStats {
  /** The id the server knows the bot by (from its certificate), once joined. */
  id: string | null;
  /** The room. */
  room: string;
  /** Times `room.join` was called (again after each reconnect: joining is idempotent). */
  joins: number;
  /** Inputs sent. */
  inputsSent: number;
  /** `state` broadcasts received. */
  statesReceived: number;
  /** The last state received, or null. */
  lastState: RoomState | null;
  /** The tick number of every state received, in arrival order (only with {@link BotOptions.recordTicks}; else empty). */
  ticks: number[];
  /**
   * States whose tick was not above the previous one's: a duplicate or a reordered state reached the application.
   * Must stay 0, across reconnects and certificate rotations too (the server's ticks only increase).
   */
  tickRepeats: number;
  /**
   * Ticks skipped between two states received (latest-wins replaced a state while writing to the bot was paused, or
   * the bot was out of its room, e.g. between a lost connection and its next join).
   */
  ticksMissed: number;
  /** The highest input seq the server acknowledged (applied) in a state. */
  acked: number;
  /** Connections the session made (1, plus one per reconnect). */
  connects: number;
  /** Smoothed heartbeat round trip, seconds, or null. */
  rtt: number | null;
  /** Errors the bot met (codes), e.g. `TW_SESSION_CLOSED` while the server drains. */
  errors: string[];
}

/** A running bot. */
export interface Bot {
  /** The bot's session (for inspection). */
  readonly session: Session;
  /** Live counters. */
  readonly stats: BotStats;
  /** The bot's task; resolves with its stats after it left and closed. */
  readonly task: Task<BotStats>;
  /** Resolves once the bot is in its room (the first `room.join` answered); cancelled if it stops first. */
  joined(): Future<JoinReply>;
  /** Leaves the room, closes the session, resolves with the stats. Idempotent. */
  stop(): Promise<BotStats>;
}

function codeOf(err: unknown): string {
  return TulipError.isTulipError(err) ? err.code : err instanceof Error ? err.name : String(err);
}

/** Starts a bot (see the module doc); it connects, joins and plays in its own task. */
export function runBot(options: BotOptions): Bot {
  const loop = options.loop ?? getRunningLoop();
  const random = options.random ?? Math.random;
  const period = 1 / (options.inputRate ?? 20);
  const ttl = options.inputTtl ?? 1;
  const session = openSession({
    loop,
    host: options.host ?? '127.0.0.1',
    port: options.port,
    ...(options.rotator !== undefined ? { rotator: options.rotator, tlsBuild: options.tlsBuild } : { tls: options.tls }),
    keyring: options.keyring,
    heartbeatInterval: options.heartbeatInterval ?? 1,
    idleTimeout: options.idleTimeout ?? 3,
    backoff: { base: 0.05, cap: 1 },
    shutdownTimeout: 1,
    logger: {},
    name: `bot ${options.room}`,
  });
  const stats: BotStats = {
    id: null, room: options.room, joins: 0, inputsSent: 0, statesReceived: 0, lastState: null, ticks: [], tickRepeats: 0,
    ticksMissed: 0, acked: 0, connects: 0, rtt: null, errors: [],
  };
  const recordTicks = options.recordTicks ?? false;
  session.onNotify('state', (state: RoomState) => {
    stats.statesReceived += 1;
    const previous = stats.lastState?.tick;
    if (previous !== undefined) {
      if (state.tick <= previous) stats.tickRepeats += 1;
      else stats.ticksMissed += state.tick - previous - 1;
    }
    if (recordTicks) stats.ticks.push(state.tick);
    stats.lastState = state;
    const me = stats.id === null ? undefined : state.players.find((p) => p.id === stats.id);
    if (me !== undefined && me.ack > stats.acked) stats.acked = me.ack;
  });
  const joinedFuture = loop.createFuture<JoinReply>();
  joinedFuture.addDoneCallback(() => undefined); // nobody may await it (a bot stopped before joining)
  let stopping = false;

  const task = loop.createTask(async () => {
    let seq = 0;
    let joinedOn = -1;
    const until = options.duration === undefined ? Infinity : loop.time() + options.duration;
    try {
      while (!stopping && loop.time() < until) {
        try {
          // Join again on every new connection: the server dropped us from the room when the old one closed.
          if (session.connects !== joinedOn) {
            await session.whenConnected();
            joinedOn = session.connects;
            stats.joins += 1;
            const reply = await session.call<JoinReply>('room.join', { room: options.room }, { timeout: 2 });
            stats.id = reply.you;
            // Back in a place the server kept (joined false: a reconnect, or this bot restarted within the rejoin
            // grace): go on above the seq it applied last, which a restarted bot would otherwise reuse (refused as
            // stale). A fresh join starts the sequence over, so the seq kept here is fine.
            if (!reply.joined) seq = Math.max(seq, reply.state.players.find((p) => p.id === reply.you)?.ack ?? 0);
            if (!joinedFuture.done()) joinedFuture.setResult(reply);
          }
          seq += 1;
          const dx = Math.round((random() * 2 - 1) * 100) / 100;
          const dy = Math.round((random() * 2 - 1) * 100) / 100;
          await session.notify('input', { room: options.room, seq, dx, dy }, { ttl });
          stats.inputsSent += 1;
        } catch (err) {
          stats.errors.push(codeOf(err));
          if (codeOf(err) === 'TW_SESSION_CLOSED') break;
          joinedOn = -1; // try joining again
        }
        await sleep(period);
      }
      if (session.connected) {
        try {
          await session.call('room.leave', {}, { timeout: 1 });
        } catch (err) {
          stats.errors.push(codeOf(err));
        }
      }
    } finally {
      await session.close();
      stats.connects = session.connects;
      stats.rtt = session.rtt;
      if (!joinedFuture.done()) joinedFuture.cancel('the bot stopped before it joined');
    }
    return stats;
  }, { name: `bot task ${options.room}` });

  return {
    session,
    get stats() {
      stats.connects = session.connects;
      stats.rtt = session.rtt;
      return stats;
    },
    task,
    joined: () => joinedFuture,
    async stop() {
      stopping = true;
      if (!session.connected) void session.close();
      // A bot waiting for a connection that will not come (the server is gone): close the session under it.
      const nudge = loop.callLater(1, () => void session.close());
      try {
        return await task;
      } finally {
        nudge.cancel();
      }
    },
  };
}

// ---- the cheater ------------------------------------------------------------------------------------------------

/** A clock that can be set off by some seconds (a lagging or lying client). */
class ShiftedClock implements Clock {
  readonly autojump = false;
  /** Seconds added to the wall clock. */
  offset = 0;
  readonly #base: Clock;
  constructor(base: Clock) {
    this.#base = base;
  }
  time(): number {
    return this.#base.time();
  }
  epoch(): number {
    return this.#base.epoch() + this.offset;
  }
}

/**
 * A hand-rolled client on the plain RPC protocol that can capture the exact bytes of a frame it signed (to tamper
 * with them or send them twice) and sign with a clock set back (to produce a stale input). It answers the
 * server's PINGs, so only what it sends on purpose is refused.
 */
class CheaterProtocol extends RpcProtocol {
  #capturing = false;
  #captured: Buffer[] = [];
  #write: ((data: Uint8Array) => void) | null = null;

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    // A man in the middle of its own connection: every write passes here, and can be held back.
    const write = transport.write.bind(transport);
    this.#write = write;
    transport.write = (data: Uint8Array): void => {
      if (this.#capturing) this.#captured.push(Buffer.from(data));
      else write(data);
    };
  }

  override otherMessageReceived(message: unknown, meta: MessageMeta): void {
    if (meta.kind === SESSION_KIND.PING) this.sendMessage(message, { kind: SESSION_KIND.PONG });
  }

  /** Runs `send`, and returns the signed frame(s) it produced instead of writing them. */
  capture(send: () => void): Buffer {
    this.flush();
    this.#capturing = true;
    try {
      send();
      this.flush();
    } finally {
      this.#capturing = false;
    }
    return Buffer.concat(this.#captured.splice(0));
  }

  /** Writes bytes as they are, past the signing layer. */
  writeRaw(bytes: Uint8Array): void {
    this.#write!(bytes);
  }
}

/** Options of {@link runCheater}. */
export interface CheaterOptions {
  /** Server port. */
  port: number;
  /** Server host. Default `'127.0.0.1'`. */
  host?: string;
  /** Client mTLS options with the cheater's own (valid) certificate. */
  tls: ConnectionOptions;
  /** Message keys shared with the server (the cheater is a real player with the real keys). */
  keyring: Keyring;
  /** The room it joins. */
  room: string;
  /** Inputs sent at once to overrun the per-player rate limit. Default 30. */
  burst?: number;
  /** The loop. Default the running loop. */
  loop?: EventLoop;
}

/** What {@link runCheater} sent, by the code the server should refuse it with. */
export interface CheaterReport {
  /** Messages sent that the server must refuse, by expected code (the burst is counted in `burst`). */
  expected: Record<string, number>;
  /** Genuine inputs sent (the first one, and the burst). */
  genuine: number;
  /** Inputs in the burst (the server accepts what its token bucket allows and refuses the rest as TW_RATE_LIMITED). */
  burst: number;
  /** The highest seq the server acknowledged in a state broadcast before the cheater left. */
  acked: number;
}

/**
 * Joins `room` as a real player, then sends one of each refused kind: a tampered input (one payload byte flipped
 * after signing: `TW_BAD_SIGNATURE`), a replayed one (the same signed bytes again: `TW_REPLAYED_MESSAGE`), one signed
 * two minutes in the past (`TW_SIGNATURE_EXPIRED`), one for a room it is not in (`GAME_NOT_IN_ROOM`), one with an old
 * sequence number (`GAME_STALE_SEQ`), a malformed one (`TW_BAD_PAYLOAD`), then a burst over the rate limit
 * (`TW_RATE_LIMITED`). Resolves once a state broadcast acknowledged its accepted inputs; then it disconnects.
 */
export async function runCheater(options: CheaterOptions): Promise<CheaterReport> {
  const loop = options.loop ?? getRunningLoop();
  const clock = new ShiftedClock(loop.clock);
  const room = options.room;
  const burst = options.burst ?? 30;
  let acked = 0;
  const protoOptions: RpcProtocolOptions = { keyring: options.keyring, side: 'client', clock, logger: {}, maxRejections: 1000 };
  const [, proto] = await loop.createConnection(() => new CheaterProtocol(protoOptions), options.host ?? '127.0.0.1', options.port,
    { ssl: options.tls });
  let me: string | null = null;
  try {
    proto.onNotify('state', (state: RoomState) => {
      const ack = state.players.find((p) => p.id === me)?.ack ?? 0;
      if (ack > acked) acked = ack;
    });
    const reply = await proto.call<JoinReply>('room.join', { room }, { timeout: 2 });
    me = reply.you;
    const expected: Record<string, number> = {};
    const expect = (code: string): void => {
      expected[code] = (expected[code] ?? 0) + 1;
    };

    // 1. Tampered: the genuine input's signed bytes with the last payload byte flipped (the tag is the last 32).
    const frame = proto.capture(() => proto.notify('input', { room, seq: 1, dx: 1, dy: 0 }));
    const tampered = Buffer.from(frame);
    tampered[tampered.length - TAG_SIZE - 1]! ^= 0x01;
    proto.writeRaw(tampered);
    expect('TW_BAD_SIGNATURE');
    // 2. The genuine bytes (accepted), then the very same bytes again: a replay.
    proto.writeRaw(frame);
    proto.writeRaw(frame);
    expect('TW_REPLAYED_MESSAGE');
    // 3. Stale: signed by a clock two minutes behind (a lagging client, or an input held back and sent late).
    clock.offset = -120;
    proto.notify('input', { room, seq: 2, dx: 1, dy: 0 });
    proto.flush();
    clock.offset = 0;
    expect('TW_SIGNATURE_EXPIRED');
    // 4. A room it never joined.
    proto.notify('input', { room: `not-${room}`, seq: 3, dx: 1, dy: 0 });
    expect('GAME_NOT_IN_ROOM');
    // 5. Signed now, but with the sequence number of an input already applied.
    proto.notify('input', { room, seq: 1, dx: 1, dy: 0 });
    expect('GAME_STALE_SEQ');
    // 6. Not an input at all.
    proto.notify('input', { room, seq: 'x', dx: 'far' });
    expect('TW_BAD_PAYLOAD');
    // 7. A burst far over the per-player rate.
    for (let i = 0; i < burst; i++) proto.notify('input', { room, seq: 10 + i, dx: 0, dy: 1 });
    proto.flush();
    // Wait until a tick applied what was accepted (at least the genuine seq 1 and the start of the burst).
    const deadline = loop.time() + 5;
    while (acked < 10 && loop.time() < deadline) await sleep(0.02);
    return { expected, genuine: 1 + burst, burst, acked };
  } finally {
    proto.close();
  }
}
