/**
 * The game server of the example: rooms, `room.join`/`room.leave` RPCs, a fixed-rate tick loop driven by
 * `loop.callLater`, signed player inputs (notifications `input` with a per-player sequence number), the room state
 * broadcast to every player of the room on every tick (latest-wins: a player who stalls gets the newest state when
 * it reads again, never a backlog of stale ones), idle peers dropped by the session heartbeats, a player whose
 * connection ended keeping its place for a few seconds (it comes back by connecting again with its certificate),
 * and a count of every refused input by its code.
 *
 * Everything rides on tulipwire's session server (`serveSessions`): mutual TLS pinned to the example's private CA,
 * every message signed and checked (MAC, expiry, replay) before it reaches a handler, players identified by their
 * certificate (`tulip://<ca>/player/<id>`), never by a token they could copy.
 *
 * @module
 */
import type { TlsOptions } from 'node:tls';
import {
  BadPayload, RateLimited, RpcError, TokenBucket, getRunningLoop, isPeerIdentity, serveSessions,
} from '../../src/index.js';
import type {
  DrainResult, EventLoop, Keyring, NotifyContext, RpcContext, ServerCertificateSource, SessionConnection,
  SessionServer, TimerHandle, WireLogger,
} from '../../src/index.js';

/** Where a player is and what the server last applied for it (one entry of {@link RoomState.players}). */
export interface PlayerState {
  /** The player's id: the `<id>` of its certificate identity `tulip://<ca>/player/<id>`. */
  readonly id: string;
  /** Position, world units, `0 ≤ x ≤ worldSize`. */
  readonly x: number;
  /** Position, world units, `0 ≤ y ≤ worldSize`. */
  readonly y: number;
  /** The highest input sequence number applied so far (the client reconciles its prediction with it). */
  readonly ack: number;
  /** Present (true) while the player's connection is gone and its place is kept ({@link GameServerOptions.rejoinGrace}). */
  readonly away?: true;
}

/** The `state` notification the server broadcasts to every player of a room on every tick. */
export interface RoomState {
  /** The room's name. */
  readonly room: string;
  /** The tick this state belongs to (1, 2, …). */
  readonly tick: number;
  /** Every player in the room, sorted by id. */
  readonly players: readonly PlayerState[];
}

/** What `room.join` answers. */
export interface JoinReply {
  /** The room joined. */
  readonly room: string;
  /** The caller's id. */
  readonly you: string;
  /**
   * False when the caller already was in that room (join is idempotent: nothing changed; within the rejoin grace
   * too): its inputs go on above its `ack` in {@link state}. True for a fresh join, which starts its input sequence
   * over (seq from 1).
   */
  readonly joined: boolean;
  /** The room's state now (players sorted by id), so the client can render before the first tick. */
  readonly state: RoomState;
}

/** The codes inputs are refused with, beside the wire's own (`TW_BAD_SIGNATURE`, `TW_SIGNATURE_EXPIRED`, …). */
export const INPUT_REJECTION = Object.freeze({
  /** An input for a room the player is not in (or before any join). */
  NOT_IN_ROOM: 'GAME_NOT_IN_ROOM',
  /** An input whose `seq` is not above the last one accepted (a duplicate or a late resend). */
  STALE_SEQ: 'GAME_STALE_SEQ',
  /** More inputs than the per-player token bucket allows (RateLimited's code). */
  RATE_LIMITED: RateLimited.code,
  /** An input that is not `{room, seq, dx, dy}` with finite numbers. */
  BAD_INPUT: BadPayload.code,
} as const);

/** Options of {@link startGameServer}. Times are seconds, rates per second. */
export interface GameServerOptions {
  /** Message keys shared with the clients. */
  keyring: Keyring;
  /** Server mTLS options (pki's `serverTlsOptions(issued, {pin})`). */
  tls: TlsOptions;
  /**
   * Renews the server certificate under the running server (pki's `CertRotator`): new connections get each renewed
   * one (`setSecureContext`), open ones keep theirs until the players moved to a new connection. Default none.
   */
  rotator?: ServerCertificateSource;
  /**
   * Seconds before a certificate's notAfter (the player's or the server's, whichever is earlier) at which a
   * connection gets its RECONNECT notice; the player's session then moves to a new connection with its renewed
   * certificate while the old one still plays (make-before-break). Default the session server's (`RECONNECT_NOTICE`, 30).
   */
  reconnectNotice?: number;
  /** Address. Default `'127.0.0.1'`. */
  host?: string;
  /** Port; 0 picks a free one (read {@link GameServer.port}). Default 0. */
  port?: number;
  /** The loop. Default the running loop. */
  loop?: EventLoop;
  /** Simulation and broadcast rate, ticks per second. Default 20 (Source and Apex tick rates; Colyseus' patch rate). */
  tickRate?: number;
  /** The world is a square of this side, world units. Default 100. */
  worldSize?: number;
  /** Distance one input moves a player at most (|dx|, |dy| ≤ 1 times this), world units. Default 1. */
  step?: number;
  /** Players per room; one more is refused with `GAME_ROOM_FULL`. Default 16. */
  maxPlayersPerRoom?: number;
  /** Sustained inputs per second per player. Default 60 (three per 20 Hz tick). */
  inputRate?: number;
  /** Inputs a player may send at once above the rate. Default 10. */
  inputBurst?: number;
  /** Inputs kept per player between two ticks; more are refused as rate limited. Default 16. */
  maxPendingInputs?: number;
  /** Seconds between signed PINGs (both ways). Default 1: dead peers are noticed in seconds, not in 45 s. */
  heartbeatInterval?: number;
  /** A player silent this long is dropped (PeerTimeout) and leaves its room (after {@link rejoinGrace}). Default 3. */
  idleTimeout?: number;
  /**
   * Seconds a player whose last connection ended without a successor (a lost network, an idle drop, a certificate
   * that expired before its renewal could move the session) keeps its place: it stays in its room's state, marked
   * `away`, with its position and `ack`, and gets it back by connecting again with a certificate of the same
   * identity (its next `room.join` answers `joined: false` and the current state). Then it leaves. `room.leave` and
   * the server's drain are not waited for. Default 5; 0 leaves at once.
   */
  rejoinGrace?: number;
  /** Clock skew allowed on message expiry, seconds. Default 1: a stale input is refused, not applied late. */
  skew?: number;
  /** Called after every tick with its number (for tests and instrumentation); a throw goes to the loop's exception handler and the ticks go on. */
  onTick?: (tick: number) => void;
  /** Called with each connection the session server let in, after the game counted it (tests, instrumentation). */
  onConnection?: (connection: SessionConnection) => void;
  /**
   * Called when a connection ended, after the game updated its players (a player whose session moved to a newer
   * connection is already re-pointed to it), with the reason as in {@link GameServerStats.disconnects}.
   */
  onDisconnect?: (connection: SessionConnection, reason: Error | null) => void;
  /** Where the session server logs connection closes (default silent). Rejections are counted, not logged. */
  logger?: Pick<WireLogger, 'warn'>;
}

/** The counters of a {@link GameServer}. */
export interface GameServerStats {
  /** Ticks run. */
  ticks: number;
  /** Ticks that started more than one tick period late (the loop was stalled). */
  lateTicks: number;
  /** Inputs applied. */
  inputsAccepted: number;
  /**
   * Refused messages by code: the wire's (`TW_BAD_SIGNATURE` tampered, `TW_SIGNATURE_EXPIRED` stale,
   * `TW_REPLAYED_MESSAGE` replayed, …: checked before any handler runs) and the game's ({@link INPUT_REJECTION}).
   */
  rejected: Record<string, number>;
  /** `state` notifications sent (one per player per tick). */
  broadcasts: number;
  /** Successful joins that changed something; repeated joins are not counted. */
  joins: number;
  /** Leaves (by `room.leave`, or by disconnecting and not coming back within the rejoin grace). */
  leaves: number;
  /** Players who came back within the rejoin grace, on a new connection. */
  rejoins: number;
  /** Players away now: connection gone, place kept. */
  away: number;
  /** Connections accepted. */
  connections: number;
  /** Connections ended, by the reason's code (`TW_PEER_TIMEOUT` for an idle peer, `closed` for a clean close). */
  disconnects: Record<string, number>;
  /** Messages the session layer's per-connection limit refused (before the game saw them). */
  sessionRateLimited: number;
  /** Players in a room now (away ones included). */
  online: number;
  /** What the graceful drain reported at {@link GameServer.stop}, else null. */
  drain: DrainResult | null;
}

/** A running game server. */
export interface GameServer {
  /** The port it listens on. */
  readonly port: number;
  /** The session server underneath (connections, drain, broadcast). */
  readonly sessions: SessionServer;
  /** A copy of the counters. */
  stats(): GameServerStats;
  /** The state of `room` as the last tick left it, or null when nobody is in it. */
  room(room: string): RoomState | null;
  /** Room names with at least one player. */
  rooms(): string[];
  /**
   * Stops the tick loop, then drains the session server (GOAWAY to every player, in-flight RPCs finish, the rest
   * closed at `drainTimeout`), and resolves with the final counters.
   */
  stop(options?: { drainTimeout?: number }): Promise<GameServerStats>;
}

interface Player {
  readonly id: string;
  readonly identity: string;
  room: string | null;
  x: number;
  y: number;
  lastSeq: number;
  ack: number;
  pending: { seq: number; dx: number; dy: number }[];
  readonly bucket: TokenBucket;
  conn: SessionConnection | null;
  // While away: the timer that makes it leave at the end of the rejoin grace.
  awayTimer: TimerHandle | null;
}

const ROOM_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * Starts a game server (see the module doc) and resolves once it listens.
 * @throws TransportError when the address cannot be bound; RangeError for a rate, size or time out of range (before listening)
 */
export async function startGameServer(options: GameServerOptions): Promise<GameServer> {
  const loop = options.loop ?? getRunningLoop();
  const tickRate = options.tickRate ?? 20;
  const period = 1 / tickRate;
  const worldSize = options.worldSize ?? 100;
  const step = options.step ?? 1;
  const maxPlayers = options.maxPlayersPerRoom ?? 16;
  const inputRate = options.inputRate ?? 60;
  const inputBurst = options.inputBurst ?? 10;
  const maxPending = options.maxPendingInputs ?? 16;
  const rejoinGrace = options.rejoinGrace ?? 5;
  // Checked before listening: a bad number found later failed every join (the token bucket) or the tick loop.
  const check = (name: string, v: number, ok: boolean): void => {
    if (!ok) throw new RangeError(`startGameServer: ${name} out of range, got ${v}`);
  };
  check('tickRate', tickRate, tickRate > 0 && Number.isFinite(tickRate));
  check('worldSize', worldSize, worldSize > 0 && Number.isFinite(worldSize));
  check('step', step, step >= 0 && Number.isFinite(step));
  check('maxPlayersPerRoom', maxPlayers, maxPlayers >= 1);
  check('maxPendingInputs', maxPending, maxPending >= 1);
  check('rejoinGrace', rejoinGrace, rejoinGrace >= 0);
  check('inputBurst', inputBurst, inputBurst >= 1); // each input takes a whole token
  void new TokenBucket({ rate: inputRate, burst: inputBurst, clock: loop.clock }); // RangeError for a bad inputRate/inputBurst
  let stopped = false; // stop() began: away players leave at once

  const stats: GameServerStats = {
    ticks: 0, lateTicks: 0, inputsAccepted: 0, rejected: {}, broadcasts: 0, joins: 0, leaves: 0, rejoins: 0, away: 0,
    connections: 0, disconnects: {}, sessionRateLimited: 0, online: 0, drain: null,
  };
  const reject = (code: string): void => {
    stats.rejected[code] = (stats.rejected[code] ?? 0) + 1;
  };
  const players = new Map<string, Player>(); // by certificate identity
  const rooms = new Map<string, Set<Player>>();
  const lastStates = new Map<string, RoomState>();
  const byEndpoint = new Map<unknown, SessionConnection>();

  // Every message the wire refused (bad MAC, expired, replayed, malformed) is reported to the logger's `info` hook
  // with its code, before any handler could see it: that is where the game counts them.
  const logger: WireLogger = {
    info: (_message, fields) => reject(typeof fields.code === 'string' ? fields.code : 'TW_BAD_DATA'),
    ...(options.logger?.warn !== undefined ? { warn: options.logger.warn } : {}),
  };

  const sessions = await serveSessions({
    keyring: options.keyring,
    tls: options.tls,
    ...(options.rotator !== undefined ? { rotator: options.rotator } : {}),
    ...(options.reconnectNotice !== undefined ? { reconnectNotice: options.reconnectNotice } : {}),
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    loop,
    heartbeatInterval: options.heartbeatInterval ?? 1,
    idleTimeout: options.idleTimeout ?? 3,
    skew: options.skew ?? 1,
    logger,
    onConnection: (c) => {
      stats.connections += 1;
      byEndpoint.set(c.rpc, c);
      // A player away (its connection gone, its place kept) is back: the same certificate identity connected again.
      const p = players.get(isPeerIdentity(c.peer) ? c.peer.identity ?? '' : '');
      if (p !== undefined && p.conn === null) comeBack(p, c);
      options.onConnection?.(c);
    },
    onDisconnect: (c, reason) => {
      byEndpoint.delete(c.rpc);
      stats.sessionRateLimited += c.rateLimited;
      const code = (reason as { code?: unknown } | null)?.code;
      const key = typeof code === 'string' ? code : 'closed';
      stats.disconnects[key] = (stats.disconnects[key] ?? 0) + 1;
      for (const p of players.values()) {
        // A player whose newer connection (a reconnect) already took over keeps its place; so does one whose session
        // moved to a successor connection (make-before-break): its state now goes there.
        if (p.conn === c) {
          const next = c.current ?? otherConnectionOf(p);
          if (next !== null && next !== c) {
            p.conn = next;
          } else {
            p.conn = null;
            goAway(p);
          }
        }
      }
      options.onDisconnect?.(c, reason);
    },
  });

  // Another open connection of the player's certificate (a second session: another tab or device), where its state
  // goes once the one it joined on last ends; null when it has none (it is away then).
  function otherConnectionOf(p: Player): SessionConnection | null {
    for (const o of sessions.connections) {
      if (o.isLost || o.goawayAt !== null || !isPeerIdentity(o.peer) || o.peer.identity !== p.identity) continue;
      const target = o.current;
      if (target !== null) return target;
    }
    return null;
  }

  function playerOf(ctx: RpcContext | NotifyContext): Player {
    const peer = isPeerIdentity(ctx.peer) ? ctx.peer : null;
    if (peer === null || peer.identity === null || peer.kind !== 'player' || peer.id === null) {
      throw new RpcError('only player certificates (tulip://<ca>/player/<id>) may play', { remoteCode: 'GAME_NOT_A_PLAYER' });
    }
    let p = players.get(peer.identity);
    if (p === undefined) {
      p = {
        id: peer.id, identity: peer.identity, room: null, x: worldSize / 2, y: worldSize / 2, lastSeq: 0, ack: 0, pending: [],
        bucket: new TokenBucket({ rate: inputRate, burst: inputBurst, clock: loop.clock }), conn: null, awayTimer: null,
      };
      players.set(peer.identity, p);
    }
    return p;
  }

  function snapshot(room: string): RoomState {
    const members = [...(rooms.get(room) ?? [])].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      room, tick: stats.ticks,
      players: members.map((p) => (p.conn === null
        ? { id: p.id, x: round(p.x), y: round(p.y), ack: p.ack, away: true as const }
        : { id: p.id, x: round(p.x), y: round(p.y), ack: p.ack })),
    };
  }

  // The player's connection ended with no successor: it keeps its place for rejoinGrace seconds, then leaves.
  function goAway(p: Player): void {
    if (p.room === null || rejoinGrace <= 0 || stopped) {
      leaveRoom(p);
      return;
    }
    if (p.awayTimer !== null) return;
    stats.away += 1;
    p.awayTimer = loop.callLater(rejoinGrace, () => {
      p.awayTimer = null;
      stats.away -= 1;
      if (p.conn === null) leaveRoom(p);
    });
  }

  // An away player connected again (or joined on a connection the game had not tied to it yet): back in its place.
  function comeBack(p: Player, c: SessionConnection): void {
    p.conn = c;
    if (p.awayTimer === null) return;
    p.awayTimer.cancel();
    p.awayTimer = null;
    stats.away -= 1;
    stats.rejoins += 1;
  }

  function leaveRoom(p: Player): boolean {
    if (p.awayTimer !== null) {
      p.awayTimer.cancel();
      p.awayTimer = null;
      stats.away -= 1;
    }
    if (p.room === null) return false;
    const members = rooms.get(p.room);
    members?.delete(p);
    if (members !== undefined && members.size === 0) {
      rooms.delete(p.room);
      lastStates.delete(p.room);
    }
    p.room = null;
    p.pending.length = 0;
    stats.leaves += 1;
    stats.online = [...players.values()].filter((q) => q.room !== null).length;
    return true;
  }

  sessions.handle('room.join', (params: unknown, ctx) => {
    const room = (params as { room?: unknown } | null)?.room;
    if (typeof room !== 'string' || !ROOM_RE.test(room)) throw new BadPayload('room.join takes {room}: 1-32 characters a-z 0-9 -');
    const p = playerOf(ctx);
    // The connection the state goes to: the one this join came on (after a reconnect, the new one).
    const on = byEndpoint.get(ctx.endpoint);
    if (on !== undefined) comeBack(p, on);
    if (p.room === room) return { room, you: p.id, joined: false, state: snapshot(room) } satisfies JoinReply;
    const members = rooms.get(room) ?? new Set<Player>();
    if (members.size >= maxPlayers) {
      throw new RpcError(`room ${room} is full (${maxPlayers} players)`, { remoteCode: 'GAME_ROOM_FULL', data: { max: maxPlayers } });
    }
    leaveRoom(p);
    rooms.set(room, members);
    members.add(p);
    p.room = room;
    // A fresh join starts the player's input sequence over: a client that restarted (a new process with the same
    // certificate) numbers from 1 again, and the record of its identity outlives its connections. Kept, every
    // input it sent was refused as stale until its seq passed the old one (minutes of not moving).
    p.lastSeq = 0;
    p.ack = 0;
    stats.joins += 1;
    stats.online = [...players.values()].filter((q) => q.room !== null).length;
    return { room, you: p.id, joined: true, state: snapshot(room) } satisfies JoinReply;
  });

  sessions.handle('room.leave', (_params: unknown, ctx) => {
    const p = playerOf(ctx);
    const room = p.room;
    return { room, left: leaveRoom(p) };
  });

  // Inputs are fire-and-forget notifications, verified (MAC, expiry, replay) by the wire before this runs. They
  // are queued and applied at the next tick, in sequence order, as game servers batch inputs per tick.
  sessions.onNotify('input', (params: unknown, ctx) => {
    const input = params as { room?: unknown; seq?: unknown; dx?: unknown; dy?: unknown } | null;
    if (input === null || typeof input !== 'object' || typeof input.room !== 'string' || !Number.isSafeInteger(input.seq)
      || typeof input.dx !== 'number' || typeof input.dy !== 'number' || !Number.isFinite(input.dx) || !Number.isFinite(input.dy)) {
      reject(INPUT_REJECTION.BAD_INPUT);
      return;
    }
    const p = players.get(isPeerIdentity(ctx.peer) ? ctx.peer.identity ?? '' : '');
    if (p === undefined || p.room !== input.room) {
      reject(INPUT_REJECTION.NOT_IN_ROOM);
      return;
    }
    const seq = input.seq as number;
    if (seq <= p.lastSeq) {
      reject(INPUT_REJECTION.STALE_SEQ);
      return;
    }
    if (p.bucket.take() !== 0 || p.pending.length >= maxPending) {
      reject(INPUT_REJECTION.RATE_LIMITED);
      return;
    }
    p.lastSeq = seq;
    p.pending.push({ seq, dx: clamp(input.dx, -1, 1), dy: clamp(input.dy, -1, 1) });
    stats.inputsAccepted += 1;
  });

  // The tick loop: callLater re-armed each tick against a fixed schedule, so the rate does not drift with the
  // time a tick takes; after a stall it resynchronises instead of running a burst of catch-up ticks.
  let timer: TimerHandle | null = null;
  let nextAt = loop.time() + period;
  const tick = (): void => {
    const now = loop.time();
    if (now - nextAt > period) {
      stats.lateTicks += 1;
      nextAt = now;
    }
    stats.ticks += 1;
    for (const [room, members] of rooms) {
      for (const p of members) {
        for (const i of p.pending) {
          p.x = clamp(p.x + i.dx * step, 0, worldSize);
          p.y = clamp(p.y + i.dy * step, 0, worldSize);
          p.ack = i.seq;
        }
        p.pending.length = 0;
      }
      const state = snapshot(room);
      lastStates.set(room, state);
      for (const p of members) {
        const c = p.conn;
        if (c === null || c.isLost || c.goawayAt !== null) continue;
        try {
          c.notify('state', state, { latest: true });
          stats.broadcasts += 1;
        } catch {
          // closing: onDisconnect removes the player
        }
      }
    }
    nextAt += period;
    // The next tick is armed before the hook runs: a hook that throws (the loop's exception handler gets it) must
    // not end the tick loop, which stopped every room for good.
    timer = loop.callLater(Math.max(0, nextAt - loop.time()), tick);
    options.onTick?.(stats.ticks);
  };
  timer = loop.callLater(period, tick);

  const copy = (): GameServerStats => ({
    ...stats,
    rejected: { ...stats.rejected },
    disconnects: { ...stats.disconnects },
    sessionRateLimited: stats.sessionRateLimited + [...sessions.connections].reduce((n, c) => n + c.rateLimited, 0),
  });

  return {
    port: sessions.port!,
    sessions,
    stats: copy,
    room: (name) => lastStates.get(name) ?? null,
    rooms: () => [...rooms.keys()].sort(),
    async stop(stopOptions = {}) {
      timer?.cancel();
      timer = null;
      // Nobody comes back to a server that stops: away players leave now, and so does everyone the drain closes.
      stopped = true;
      for (const p of players.values()) if (p.awayTimer !== null && p.conn === null) leaveRoom(p);
      stats.drain = await sessions.drain({ timeout: stopOptions.drainTimeout ?? 1 });
      return copy();
    },
  };
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

// Positions go out with two decimals: a few bytes less per player per tick (at game tick rates, bytes are what count).
function round(v: number): number {
  return Math.round(v * 100) / 100;
}
