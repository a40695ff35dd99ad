/**
 * A rotation soak of examples/game-server over real mutual TLS on 127.0.0.1, as a studio would run before trusting
 * it: three bots whose client certificates live 3 s (and, in the second case, a server certificate of 4 s too)
 * rotate several times each while they play. Across every rotation: each bot stays in its room (the server's
 * membership never drops it, no leave), gets the state broadcast of every tick exactly once and in order (tick
 * numbers strictly increasing, none skipped: nothing is paused on loopback, so latest-wins never supersedes one),
 * keeps its inputs acknowledged, has none refused and meets no error; the connections of each player go back to one
 * after each make-before-break overlap; and the server's counters show only the expected disconnect reasons.
 *
 * One exception, the one docs/sessions.md allows ("Certificate rotation (make-before-break)", "No connection
 * outlives a certificate"): a move that is not done by the old connection's notAfter. With these lifetimes the
 * renewal comes 1 s (client) or 1.33 s (server) before notAfter, and the move needs the renewal, a TLS handshake
 * and a round trip for the hello; a stalled or CPU-starved test process (a loaded 2-core CI machine) can take longer.
 * Both ends then close the old connection at notAfter (the server with SessionClosed, "connection closed at
 * certificate expiry"), and what it had not delivered is lost as on any lost connection. So a connection ended at
 * expiry is allowed, and so are the ticks it was given after its RECONNECT notice (and, when it was lost before the
 * successor said its hello, a leave and re-join of its player): nothing else. Every other tick still arrives once
 * and in order, and a gap anywhere else (a notification lost by a completed move), a duplicate, a timeout or a leave
 * not caused by such an expiry fails the soak.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CertRotator, serverTlsOptions, sleep } from '../../src/index.js';
import type { IssuedCertificate, PeerIdentity, SessionConnection } from '../../src/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';
import { runBot } from '../../examples/game-server/bot.js';
import type { Bot, BotStats } from '../../examples/game-server/bot.js';
import { INPUT_REJECTION, startGameServer } from '../../examples/game-server/server.js';
import type { GameServer, GameServerStats } from '../../examples/game-server/server.js';

const fx = useLoop({ real: true });
let ca: TestCA;
const servers: GameServer[] = [];
const bots: Bot[] = [];
const rotators: CertRotator[] = [];

beforeAll(async () => { ca = await makeTestCA({ name: 'game-rotation.test' }); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });
// Runs before useLoop's afterEach closes the loop: stop whatever a failed test left running.
afterEach(async () => {
  const bs = bots.splice(0);
  const vs = servers.splice(0);
  for (const r of rotators.splice(0)) r.stop();
  await fx.loop.runUntilComplete(async () => {
    for (const b of bs) await b.stop();
    for (const v of vs) await v.sessions.close();
  });
  // A bot stopped while its session is in a connection attempt (a make-before-break try for a renewed certificate)
  // cancels that attempt. Cancelled before its ClientHello, the server drops the connection without a report
  // (src/net/server.ts: a peer that leaves before its first byte began no handshake); cancelled inside the
  // handshake, node:tls's client closes without an alert and the server reports "TLS handshake failed: … socket
  // hang up". Each session is closed once and has at most one attempt in flight, so at most one such record per
  // bot is explained; the bound stays loose (< 20) because one CI run, before the server's change, saw 7 in a test
  // and not all of them are accounted for. Any other exception-handler record fails the test (useLoop's own check,
  // after this).
  const recs = fx.take();
  const hangups = recs.filter((r) => r.message === 'TLS handshake failed' && /socket hang up|ECONNRESET/.test(String(r.exception)));
  expect(recs.filter((r) => !hangups.includes(r)).map((r) => `${r.message}: ${String(r.exception)}`)).toEqual([]);
  expect(hangups.length, hangups.map((r) => String(r.exception)).join('; ')).toBeLessThan(20);
});

function ring(): Keyring {
  const k = new Keyring();
  k.add('game-rot', Buffer.alloc(32, 0x52));
  return k;
}

const PLAYERS = [['ann', 'red'], ['ben', 'red'], ['cat', 'blue']] as const;
const CLIENT_LIFETIME = 3;

/** What one soak run saw. */
interface Soak {
  bots: { id: string; room: string; stats: BotStats; renewals: number; ackAtMove: number[]; moveTimes: number[]; serials: string[] }[];
  /** The server's counters just before the bots left (so leaves by the final `room.leave` are not in them). */
  during: GameServerStats;
  /** Ticks at which a bot that had joined was missing from its room's state on the server (unexplained ones). */
  missing: string[];
  /** Those explained by a connection closed at certificate expiry before its successor joined (see the module doc). */
  missingAtExpiry: number;
  /** Per player, the ticks whose state went to a connection after its RECONNECT notice that then ended at expiry. */
  sentToExpiring: Map<string, Set<number>>;
  /** Per player, ticks at which it was out of its room after a connection of it ended at expiry (re-joined later). */
  outAtExpiry: Map<string, Set<number>>;
  /** Leaves, each with the end of the connection that caused it (`'expiry'` is the only one allowed). */
  drops: string[];
  /** Per player, the reason of each disconnect that left it with no connection open (`'expiry'` only allowed). */
  zeroes: Map<string, string[]>;
  /** Per player, its number of open connections after every connect and disconnect, in order. */
  counts: Map<string, number[]>;
  /**
   * Per player, the reasons its connections ended with (as `stats.disconnects` counts them, except `'expiry'` for
   * the server's close at a certificate's notAfter, which it counts as `TW_SESSION_CLOSED`).
   */
  reasons: Map<string, string[]>;
  /** Connections the server closed at a certificate's notAfter. */
  expiries: number;
  /** Latest-wins states replaced (never sent) or dropped, summed over every connection of each player. */
  superseded: Map<string, number>;
  serverRenewals: number;
  serverSerials: string[];
}

/**
 * Issues the certificates (outside the loop: webcrypto promises), then runs the server and the bots for `duration`
 * seconds on the test's loop with rotators renewing the client certificates (and the server's, with
 * `serverLifetime`), sampling the server's rooms and connections on every tick.
 */
async function soak(duration: number, serverLifetime: number | null): Promise<Soak> {
  const pin = ca.ca.rootPin;
  const serverCert = serverLifetime === null ? ca.server
    : await ca.ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], lifetime: serverLifetime });
  const certs: IssuedCertificate[] = [];
  for (const [id] of PLAYERS) certs.push(await ca.ca.issueClient({ identity: `player/${id}`, lifetime: CLIENT_LIFETIME }));
  const renew = (c: IssuedCertificate): Promise<IssuedCertificate> => ca.ca.renew(c);

  return fx.run(async () => {
    const loop = fx.loop;
    const keyring = ring();
    const serverRotator = serverLifetime === null ? null : new CertRotator({ loop, initial: serverCert, renew });
    if (serverRotator !== null) rotators.push(serverRotator.start());
    const clientRotators = certs.map((c) => new CertRotator({ loop, initial: c, renew }));
    for (const r of clientRotators) rotators.push(r.start());

    const missing: string[] = [];
    let missingAtExpiry = 0;
    const counts = new Map<string, number[]>();
    const zeroes = new Map<string, string[]>();
    // How each connection ended, and which connection each tick's state went to (and whether it had its notice).
    const ended = new Map<SessionConnection, string>();
    const sentTo = new Map<string, Map<number, { conn: SessionConnection; noticed: boolean }>>();
    const outAt = new Map<string, Map<number, SessionConnection>>();
    const dropCause = new Map<string, SessionConnection>();
    const dropped: { id: string; conn: SessionConnection }[] = [];
    let leavesSeen = 0;
    const why = (reason: Error | null): string => {
      const code = (reason as { code?: unknown } | null)?.code;
      if (code === 'TW_SESSION_CLOSED' && /^connection closed at certificate expiry/.test(reason!.message)) return 'expiry';
      return typeof code === 'string' ? code : 'closed';
    };
    const superseded = new Map<string, number>();
    const joinedIds = new Set<string>();
    const serverSerials: string[] = [];
    const reasons = new Map<string, string[]>();
    const open = new Map<string, number>();
    const idOf = (c: SessionConnection): string => (c.peer as PeerIdentity | null)?.id ?? '?';
    const count = (c: SessionConnection, delta: number): void => {
      const id = idOf(c);
      open.set(id, (open.get(id) ?? 0) + delta);
      counts.set(id, [...(counts.get(id) ?? []), open.get(id)!]);
    };
    const addSuperseded = (c: SessionConnection): void => {
      superseded.set(idOf(c), (superseded.get(idOf(c)) ?? 0) + c.superseded + c.heldDropped);
    };
    let server: GameServer | null = null;
    let sampling = true; // off once the counters are taken (the bots then leave)
    server = await startGameServer({
      keyring,
      tls: serverTlsOptions(serverCert, { pin }),
      ...(serverRotator !== null ? { rotator: serverRotator } : {}),
      // The notice half a lifetime ahead: the rotators renew at 2/3, so the session moves as soon as it has its
      // renewed certificate, about a second before the old one expires.
      reconnectNotice: CLIENT_LIFETIME / 2,
      heartbeatInterval: 0.5,
      idleTimeout: 5, // a loaded CI machine must not drop a healthy bot: no idle drop is tested here
      // No rejoin grace: a player dropped with a connection closed at expiry must show as a leave here, so the soak
      // sees every move the session layer did not finish (the grace would hide them behind a rejoin).
      rejoinGrace: 0,
      logger: {},
      onConnection: (c) => { if (sampling) count(c, 1); },
      onDisconnect: (c, reason) => {
        if (!sampling) return;
        const w = why(reason);
        ended.set(c, w);
        count(c, -1);
        if (open.get(idOf(c)) === 0) zeroes.set(idOf(c), [...(zeroes.get(idOf(c)) ?? []), w]);
        addSuperseded(c);
        reasons.set(idOf(c), [...(reasons.get(idOf(c)) ?? []), w]);
        // Called after the game updated its players: a leave counted now was caused by this connection's end.
        const leaves = server?.stats().leaves ?? 0;
        if (leaves > leavesSeen) {
          dropCause.set(idOf(c), c);
          dropped.push({ id: idOf(c), conn: c });
        }
        leavesSeen = leaves;
      },
      onTick: (tick) => {
        const s = server;
        if (s === null || !sampling) return;
        for (const [id, room] of PLAYERS) {
          if (!joinedIds.has(id)) continue;
          if (!(s.room(room)?.players.some((p) => p.id === id) ?? false)) {
            const cause = dropCause.get(id);
            if (cause === undefined) missing.push(`tick ${tick}: ${id} not in ${room}`);
            else outAt.set(id, (outAt.get(id) ?? new Map()).set(tick, cause));
            continue;
          }
          dropCause.delete(id);
          // The connection this tick's state went to: the session's current one (the game notifies through any).
          const conn = [...s.sessions.connections].find((c) => idOf(c) === id && c.current !== null)?.current ?? null;
          if (conn !== null) sentTo.set(id, (sentTo.get(id) ?? new Map()).set(tick, { conn, noticed: conn.noticeSent }));
        }
        for (const c of s.sessions.connections) {
          const serial = ((c.transport?.getExtraInfo('sslObject', null) as { getCertificate?(): { serialNumber?: string } | null } | null)
            ?.getCertificate?.()?.serialNumber ?? '').toLowerCase();
          if (serial !== '' && !serverSerials.includes(serial)) serverSerials.push(serial);
        }
      },
    });
    servers.push(server);
    const gs = server;

    const ackAtMove = PLAYERS.map(() => [] as number[]);
    const moveTimes = PLAYERS.map(() => [] as number[]);
    const serials = PLAYERS.map(() => [] as string[]);
    const running = PLAYERS.map(([, room], i) => {
      const b = runBot({
        port: gs.port, keyring, rotator: clientRotators[i]!, tlsBuild: { servername: 'localhost', pin }, room,
        heartbeatInterval: 0.5, idleTimeout: 5, recordTicks: true,
      });
      bots.push(b);
      return b;
    });
    for (const [i, b] of running.entries()) {
      await b.joined();
      joinedIds.add(PLAYERS[i]![0]);
    }
    // Play; at every move to a new connection, note how far the inputs were acknowledged, and the client
    // certificate the new connection presented.
    const seen = running.map(() => 0);
    const end = loop.time() + duration;
    while (loop.time() < end) {
      for (const [i, b] of running.entries()) {
        if (b.session.connects !== seen[i]) {
          seen[i] = b.session.connects;
          ackAtMove[i]!.push(b.stats.acked);
          moveTimes[i]!.push(loop.time());
          const serial = clientRotators[i]!.current.cert.serial;
          if (!serials[i]!.includes(serial)) serials[i]!.push(serial);
        }
      }
      await sleep(0.05);
    }
    // Let the last moves settle (and a player dropped at an expiry re-join), then take the counters while
    // everyone still plays.
    const settle = loop.time() + 4;
    while (loop.time() < settle && (PLAYERS.some(([id]) => open.get(id) !== 1) || gs.stats().online !== PLAYERS.length)) {
      await sleep(0.05);
    }
    for (const [i, b] of running.entries()) {
      ackAtMove[i]!.push(b.stats.acked);
      moveTimes[i]!.push(loop.time());
    }
    for (const c of gs.sessions.connections) addSuperseded(c);
    const during = gs.stats();
    sampling = false;

    // Ticks excused by an expiry: sent to a connection after its notice that then ended at notAfter, or while its
    // player was out of the room after such a connection was lost before its successor joined.
    const atExpiry = (c: SessionConnection): boolean => ended.get(c) === 'expiry';
    const sentToExpiring = new Map(PLAYERS.map(([id]) => [id, new Set([...(sentTo.get(id) ?? new Map()).entries()]
      .filter(([, v]) => v.noticed && atExpiry(v.conn)).map(([t]) => t))]));
    const outAtExpiry = new Map(PLAYERS.map(([id]) => [id, new Set([...(outAt.get(id) ?? new Map()).entries()]
      .filter(([, c]) => atExpiry(c)).map(([t]) => t))]));
    for (const [id, ticks] of outAt) {
      for (const [t, c] of ticks) {
        if (atExpiry(c)) missingAtExpiry += 1;
        else missing.push(`tick ${t}: ${id} not in its room after a connection ended with ${ended.get(c) ?? 'nothing yet'}`);
      }
    }
    const result: Soak = {
      bots: running.map((b, i) => ({
        id: PLAYERS[i]![0], room: PLAYERS[i]![1], stats: structuredClone(b.stats), renewals: clientRotators[i]!.renewals,
        ackAtMove: ackAtMove[i]!, moveTimes: moveTimes[i]!, serials: serials[i]!,
      })),
      during, missing: [...missing], missingAtExpiry, sentToExpiring, outAtExpiry,
      drops: dropped.map((d) => `${d.id}: ${ended.get(d.conn) ?? '?'}`), zeroes,
      counts, reasons, expiries: [...ended.values()].filter((w) => w === 'expiry').length,
      superseded, serverRenewals: serverRotator?.renewals ?? 0, serverSerials,
    };
    for (const b of bots.splice(0)) await b.stop();
    await gs.stop({ drainTimeout: 1 });
    servers.splice(0);
    for (const r of rotators.splice(0)) r.stop();
    return result;
  });
}

/** The assertions both cases share (see the module doc). */
function checkSoak(r: Soak, minMoves: number): void {
  // Room membership never dropped a bot: no tick without it, no leave, each joined once (re-joins change nothing).
  // Except after a connection closed at certificate expiry before its successor said its hello (module doc): then
  // the player left with it, and joined again on its next connection.
  expect(r.missing).toEqual([]);
  expect(r.drops.filter((d) => !d.endsWith(': expiry')), 'leaves not caused by an expiry').toEqual([]);
  expect(r.during.leaves).toBe(r.drops.length);
  expect(r.during.joins).toBe(PLAYERS.length + r.during.leaves);
  expect(r.during.online).toBe(PLAYERS.length);
  for (const b of r.bots) {
    const s = b.stats;
    // No error, but a room.join (not idempotent) cut by a connection closed at expiry: TransportClosed, as
    // docs/sessions.md "What happens to a call when its connection is lost" says; the bot joins again.
    const expiries = (r.reasons.get(b.id) ?? []).filter((w) => w === 'expiry').length;
    expect(s.errors.filter((e) => e !== 'TW_TRANSPORT_CLOSED'), b.id).toEqual([]);
    expect(s.errors.length, `${b.id}: ${s.errors.join(' ')}`).toBeLessThanOrEqual(expiries);
    // Rotated several times, and moved to a new connection with each renewed certificate.
    expect(b.renewals, b.id).toBeGreaterThanOrEqual(minMoves);
    expect(s.connects, b.id).toBeGreaterThanOrEqual(1 + minMoves);
    expect(b.serials.length, b.id).toBeGreaterThanOrEqual(1 + minMoves);
    // Every tick exactly once and in order: strictly increasing, and contiguous (no gap: nothing was superseded),
    // but for the ticks an expiry lost (module doc; docs/sessions.md "Certificate rotation (make-before-break)").
    expect(s.tickRepeats, b.id).toBe(0);
    const excused = new Set([...r.sentToExpiring.get(b.id)!, ...r.outAtExpiry.get(b.id)!]);
    let lostAtExpiry = 0;
    const bad = s.ticks.flatMap((t, i) => {
      if (i === 0 || t === s.ticks[i - 1]! + 1) return [];
      if (t <= s.ticks[i - 1]!) return [`${s.ticks[i - 1]}->${t}`];
      const skipped = Array.from({ length: t - s.ticks[i - 1]! - 1 }, (_, k) => s.ticks[i - 1]! + 1 + k);
      lostAtExpiry += skipped.length;
      return skipped.every((k) => excused.has(k)) ? [] : [`${s.ticks[i - 1]}->${t}`];
    });
    expect(bad, `${b.id}: ticks not one after the other (none lost at an expiry)`).toEqual([]);
    expect(s.ticksMissed, b.id).toBe((r.superseded.get(b.id) ?? 0) + lostAtExpiry);
    expect(r.superseded.get(b.id) ?? 0, b.id).toBe(0); // loopback: writing is never paused
    expect(s.statesReceived, b.id).toBe(s.ticks.length);
    expect(s.ticks.length + lostAtExpiry, b.id).toBeGreaterThan(20 * 2 * minMoves * 0.5);
    // Inputs keep being acknowledged: never less than at the move before, and more of them applied in any two
    // seconds (two moves can come one tick apart when the loop stalls: the client's and the server's renewals, or
    // a move that missed its notAfter and the next one; no state need carry a newer ack in between).
    const msg = `${b.id}: acked ${b.ackAtMove.join(' ')} at ${b.moveTimes.map((t) => t.toFixed(2)).join(' ')}`;
    for (let i = 1; i < b.ackAtMove.length; i++) {
      expect(b.ackAtMove[i]!, msg).toBeGreaterThanOrEqual(b.ackAtMove[i - 1]!);
      let j = i - 1;
      while (j >= 0 && b.moveTimes[i]! - b.moveTimes[j]! < 2) j -= 1;
      if (j >= 0) expect(b.ackAtMove[i]!, msg).toBeGreaterThan(b.ackAtMove[j]!);
    }
    expect(b.ackAtMove[b.ackAtMove.length - 1]!, msg).toBeGreaterThan(b.ackAtMove[0]!);
    // Its connections went back to one after every overlap, and never more than the old, the new and a probe.
    // (counts: after each connect and disconnect of the player, in order)
    const counts = r.counts.get(b.id)!;
    expect(Math.max(...counts), b.id).toBeLessThanOrEqual(3);
    // Never without a connection, but after one closed at expiry before the successor was let in.
    expect(Math.min(...counts), `${b.id}: ${counts.join('')}`).toBeGreaterThanOrEqual(0);
    expect(r.zeroes.get(b.id) ?? [], `${b.id}: ${counts.join('')}`).toEqual((r.zeroes.get(b.id) ?? []).map(() => 'expiry'));
    expect(counts[counts.length - 1], b.id).toBe(1);
    // Each move an overlap, or (a move that missed notAfter, module doc) a moment without a connection.
    let overlaps = 0;
    for (let i = 1; i < counts.length; i++) if (counts[i - 1]! > 1 && counts[i] === 1) overlaps += 1;
    expect(overlaps + (r.zeroes.get(b.id)?.length ?? 0), `${b.id}: ${counts.join('')}`).toBeGreaterThanOrEqual(minMoves);
    // Each old connection (and each probe) was closed by the client once the session was off it: never by a
    // timeout, and by the server only at notAfter when the move missed it (module doc).
    expect(r.reasons.get(b.id)!.filter((w) => w !== 'closed' && w !== 'expiry'), b.id).toEqual([]);
  }
  // Nothing refused: no input rejected (stale seq, expired, replayed…), no session-level limit hit; but for inputs
  // a player dropped at an expiry (above) sent before it joined again.
  const { [INPUT_REJECTION.NOT_IN_ROOM]: notInRoom = 0, ...rejected } = r.during.rejected;
  expect(rejected).toEqual({});
  if (r.drops.length === 0) expect(notInRoom).toBe(0);
  expect(r.during.sessionRateLimited).toBe(0);
}

describe('examples/game-server under certificate rotation', () => {
  it('3 s client certificates rotate under three playing bots: every tick once and in order, no room left, nothing refused', async () => {
    const r = await soak(8, null);
    checkSoak(r, 3);
    // Every old connection was closed by its client once the session had moved off it, none by a timeout; by the
    // server (TW_SESSION_CLOSED) only at notAfter, for a move that missed it (module doc).
    expect(r.during.disconnects).toEqual({
      ...(r.during.disconnects.closed !== undefined ? { closed: r.during.disconnects.closed } : {}),
      ...(r.expiries > 0 ? { TW_SESSION_CLOSED: r.expiries } : {}),
    });
    expect((r.during.disconnects.closed ?? 0) + r.expiries).toBeGreaterThanOrEqual(3 * PLAYERS.length);
    expect(r.during.connections).toBe((r.during.disconnects.closed ?? 0) + r.expiries + PLAYERS.length);
  }, 40_000);

  it('the server certificate (4 s) rotates too: the bots move to connections with the renewed one, still every tick once', async () => {
    const r = await soak(8, 4);
    checkSoak(r, 3);
    expect(r.serverRenewals).toBeGreaterThanOrEqual(2);
    expect(r.serverSerials.length).toBeGreaterThanOrEqual(3);
    // Old connections and probes that found no later server certificate: all closed by the client (or at notAfter
    // by the server, for a move that missed it).
    expect(r.during.disconnects).toEqual({
      ...(r.during.disconnects.closed !== undefined ? { closed: r.during.disconnects.closed } : {}),
      ...(r.expiries > 0 ? { TW_SESSION_CLOSED: r.expiries } : {}),
    });
    expect(r.during.connections).toBe((r.during.disconnects.closed ?? 0) + r.expiries + PLAYERS.length);
  }, 40_000);
});
