/**
 * The server side of long-lived sessions: {@link serveSessions} listens for mutual-TLS connections and serves RPCs
 * on each with the session rules:
 *
 * - **No connection outlives a certificate.** node:tls checks expiry only at the handshake, so each
 *   connection is closed at the earlier `notAfter` of the two certificates, after a signed RECONNECT notice
 *   `reconnectNotice` seconds before, so the client opens its next connection (with its renewed certificate) first.
 * - **Heartbeats both ways**: a PING every `heartbeatInterval`, PeerTimeout after `idleTimeout` of silence.
 * - **Per-peer limits, each a typed refusal, never an unbounded queue**: connections per certificate identity
 *   (GOAWAY `TW_TOO_MANY_CONNECTIONS`, then close), RPCs in flight per connection (`TooManyInFlight` reply), and a
 *   token bucket per connection (`RateLimited` reply carrying `retryAfter` seconds).
 * - **Slow consumers**: a peer that stops reading pauses its connection's writing; notifications sent with `latest`
 *   (state snapshots) are then held latest-wins, and a connection whose transport holds more than `maxWriteBuffer`
 *   bytes is aborted with SlowConsumer (docs/sessions.md, "Backpressure").
 * - **One copy of each notification per client session**: a tulipwire client names its session on each connection
 *   (SESSION `[sessionId, active]`), and a notification to any connection of that session (a `broadcast` included)
 *   goes to the session's current connection only: the one the client moved to last (make-before-break), after a
 *   `["moved"]` marker on the previous one, so the client keeps their order (docs/sessions.md). When the current
 *   connection ends before the client's activation of its joined successor arrived (a move not finished by
 *   notAfter), the server hands the session to that successor itself, if it closes later than the old one.
 * - **Graceful drain**: {@link SessionServer.drain} stops accepting, sends each peer a signed GOAWAY, lets in-flight
 *   RPCs finish, then closes the rest; it returns within its timeout (plus a short, fixed close grace).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { TlsOptions, TLSSocket } from 'node:tls';
import {
  CLOSE_GRACE, DRAIN_GRACE, DRAIN_TIMEOUT, IDEMPOTENCY_CACHE_MAX_ENTRIES, MAX_CONNECTIONS_PER_IDENTITY, MESSAGE_BURST,
  MESSAGE_RATE, RECONNECT_NOTICE, SESSION_QUEUE_SIZE,
} from '../constants.js';
import {
  BadPayload, RateLimited, SessionClosed, SlowConsumer, TooManyConnections, TransportClosed, TransportError,
} from '../errors.js';
import { encode } from '../wire/codec.js';
import type { EventLoop, TimerHandle } from '../loop/index.js';
import { getRunningLoop, sleep } from '../loop/index.js';
import type { Transport } from '../net/transports.js';
// Installs loop.createConnection/createServer (src/net extends EventLoop by declaration merging).
import '../net/connect.js';
import type { NonceStore } from '../wire/nonces.js';
import { MemoryNonceStore } from '../wire/nonces.js';
import type { IdempotencyCache } from '../wire/idempotency.js';
import { RPC_KIND, RpcRouter, defaultPeerKey } from '../wire/rpc.js';
import type {
  CallOptions, HandlerOptions, NotifyHandler, RpcHandler, RpcOutcome, RpcSecurity,
  SecurityContextFactory,
} from '../wire/rpc.js';
import type { Keyring } from '../wire/keyring.js';
import type { MessageMeta } from '../wire/signing.js';
import type { WireLogger } from '../wire/message-protocol.js';
import type { Future } from '../loop/index.js';
import { ConnectionCounter, TokenBucket } from './rate-limit.js';
import { SESSION_KIND, SessionProtocolBase, checkSessionProtocolOptions } from './protocol.js';
import type { ConnectionNotifyOptions, SessionProtocolOptions } from './protocol.js';

/** The part of src/net's `Server` a session server uses. */
export interface ListeningServer {
  /** Stops listening; open connections stay. */
  close(): void;
  /** Resolves once the server is closed and its connections are gone (TLS handshakes in progress included). */
  waitClosed(): PromiseLike<void>;
  /** Closes every connection it accepted, dropping handshakes in progress. */
  closeClients?(): void;
  /** Aborts every connection it accepted, handshakes in progress included. */
  abortClients?(): void;
  /** Swaps the certificate for new connections (rotation). */
  setSecureContext?(options: TlsOptions): void;
  /** The listening sockets. */
  readonly sockets: readonly unknown[];
}

/** Anything that can hand new certificates to a listening server (pki's `CertRotator` fits). */
export interface ServerCertificateSource {
  /** Makes `server` swap in each new certificate; returns a function that stops it. */
  attachServer(server: { setSecureContext(options: TlsOptions): void }): () => void;
}

/** Options of {@link SessionServer} and {@link serveSessions}. Times are seconds. */
export interface SessionServerOptions<S extends RpcSecurity = RpcSecurity> {
  /** The message keys (shared with the clients). */
  keyring: Keyring;
  /** Address to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** Port; 0 picks a free one (read it from {@link SessionServer.port}). Default 0. */
  port?: number;
  /** Server mTLS options (pki's `serverTlsOptions(...)`). Required by {@link serveSessions}. */
  tls?: TlsOptions;
  /** Renews the server certificate under the listening server (pki's `CertRotator`); open connections keep theirs. */
  rotator?: ServerCertificateSource;
  /** The loop. Default the running loop. */
  loop?: EventLoop;
  /** Replay cache shared by every connection (and by a restarted server, to answer retries). Default a fresh MemoryNonceStore. */
  nonceStore?: NonceStore;
  /** Idempotent outcomes; default the cache RpcProtocol shares per nonce store. */
  idempotencyCache?: IdempotencyCache<RpcOutcome>;
  /** The handler table (default a fresh one; add to it with {@link SessionServer.handle}). */
  router?: RpcRouter<S>;
  /** Builds `ctx.security` per request (tokens' `authorize`). */
  securityContext?: SecurityContextFactory<S>;
  /** Seconds between PINGs. Default `HEARTBEAT_INTERVAL` (5). */
  heartbeatInterval?: number;
  /** A client silent this long is dropped with PeerTimeout. Default `IDLE_TIMEOUT` (15). */
  idleTimeout?: number;
  /** Bytes a connection's transport may hold before it is aborted with SlowConsumer. Default `MAX_WRITE_BUFFER` (8 MiB). */
  maxWriteBuffer?: number;
  /**
   * Connections one certificate identity may hold. Default {@link MAX_CONNECTIONS_PER_IDENTITY}. A connection that got
   * its RECONNECT notice admits one successor beyond it, if the successor closes later (make-before-break at 1 too).
   */
  maxConnectionsPerIdentity?: number;
  /** RPCs one connection may have running; one more is answered TooManyInFlight. Default `MAX_IN_FLIGHT` (64). */
  maxInFlight?: number;
  /** Sustained messages per second per connection. Default {@link MESSAGE_RATE}. */
  rate?: number;
  /** Burst allowed per connection, messages. Default {@link MESSAGE_BURST}. */
  burst?: number;
  /** The RECONNECT notice goes this long before a certificate's notAfter. Default {@link RECONNECT_NOTICE}. */
  reconnectNotice?: number;
  /** TLS handshake timeout. Default net's (60). */
  handshakeTimeout?: number;
  /** Listen backlog (raise it for reconnect storms). Default net's (`SERVER_BACKLOG`, 100). */
  backlog?: number;
  /** TLS close_notify timeout, after which a closing connection is aborted. Default net's (30). */
  shutdownTimeout?: number;
  /** Lifetime of sent messages. Default `MESSAGE_TTL`. */
  ttl?: number;
  /** Clock skew allowed. Default `CLOCK_SKEW`. */
  skew?: number;
  /**
   * Bind the message keys to the TLS session (docs/wire-format.md §4.2). Default `'auto'`: bound on TLS. `false`
   * lets a peer whose TLS library has no exporter (Python's `ssl`) connect; both ends must agree.
   */
  bindToTls?: boolean | 'auto';
  /** Where closes and rejections are logged (`{}` is silent). */
  logger?: WireLogger;
  /** The string connections are counted under. Default the certificate's `tulip://` identity (`defaultPeerKey`). */
  identityOf?: (peer: unknown) => string;
  /** Called with each accepted connection (after the limits let it in). */
  onConnection?: (connection: SessionConnection<S>) => void;
  /** Called when a connection ends, with the reason this side closed it (PeerTimeout, …) or the transport's error. */
  onDisconnect?: (connection: SessionConnection<S>, reason: Error | null) => void;
}

/** Options of {@link SessionServer.drain}. */
export interface DrainOptions {
  /** Seconds in-flight RPCs get before the remaining connections are closed. Default {@link DRAIN_TIMEOUT}. */
  timeout?: number;
}

/** What {@link SessionServer.drain} reports. */
export interface DrainResult {
  /** Connections open when the drain began. */
  readonly connections: number;
  /** Of those, closed before the timeout, or with nothing in flight at it (the client left, or nothing was in flight). */
  readonly closedInTime: number;
  /** Of those, closed at the timeout with calls still running. */
  readonly closedAtTimeout: number;
}

// How often a drain looks for connections with nothing in flight, seconds.
const DRAIN_POLL = 0.01;
// A refused message is answered with an error at most this often per connection, seconds (a flood stays a flood of
// drops, not of replies).
const REFUSAL_REPLY_INTERVAL = 1;

// Client session ids are opaque byte strings of this many bytes (tulipwire clients send 16 random ones).
const SESSION_ID_MIN = 8;
const SESSION_ID_MAX = 64;

/**
 * The connections of one client session (those that named the same session id under the same certificate identity,
 * or a connection alone when its client names none). Notifications to any of them go to {@link target} only.
 */
class SessionGroup<S extends RpcSecurity> {
  /** `identity \n sessionId` (hex), or null for a client that named no session (a group of one). */
  readonly key: string | null;
  /** Members in the order they joined (a lost one leaves at its connectionLost). */
  readonly members: SessionConnection<S>[] = [];

  constructor(key: string | null) {
    this.key = key;
  }

  /**
   * The connection the session's notifications go to: the open member the client activated last, or that the
   * server handed them to when the current one began to close (a joined standby that outlives it, see
   * SessionConnection's #handOver); when none is activated (the first connection, before its activation arrives, or
   * every activated one is lost), the oldest open member, so the target never moves without an activation or a
   * hand-over (each with its `moved` marker) while it is open. A member that was told `["moved"]` is never the
   * target again unless the client activates it again (not a stale activation, see SessionConnection's #activate):
   * its client takes nothing more from it (it orders newer connections' messages as if none could follow, and
   * closes it), so falling back to it when the current one is lost would deliver out of order, or not at all. Null
   * then, until another connection of the session joins.
   */
  target(): SessionConnection<S> | null {
    let best: SessionConnection<S> | null = null;
    for (const m of this.members) {
      if (m.isLost || m.moved) continue;
      if (best === null || m.activatedAt > best.activatedAt) best = m;
    }
    return best;
  }
}

// A notification given to a connection before its client's first message (queued: that message may name a session
// whose current connection is another one).
interface EarlyNotification {
  readonly method: string;
  readonly params: unknown;
  readonly options: ConnectionNotifyOptions;
  // Sent by broadcast: the session's other connections got it already, so it is dropped if this one joins them.
  readonly broadcast: boolean;
  // When it was queued (the server's stamp): a broadcast queued after the session's current connection began to
  // close did not reach it there, so it is not dropped.
  readonly stamp: number;
}

/**
 * Idempotent requests the rate limit refused. The refusal comes after the nonce store reserved the request's nonce
 * and before RPC filed it, so a retry with the same IdempotencyKey arrives as a duplicate that RPC, finding no
 * outcome, would refuse as a replay (TW_REPLAYED_MESSAGE) although nothing ran. Remembered here instead: such a
 * retry is served as a first attempt, once (the entry goes as it is let through, and from then on RPC's cache has
 * it). Kept until the nonce expires, and bounded: one forgotten early is refused as a replay, never run twice.
 */
class RefusedRequests {
  // key → epoch second after which the nonce is forgotten anyway; Map order is insertion order.
  readonly #entries = new Map<string, number>();

  add(key: string, until: number, now: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, until);
    for (const [k, u] of this.#entries) {
      if (this.#entries.size > IDEMPOTENCY_CACHE_MAX_ENTRIES || u <= now) this.#entries.delete(k);
      else break;
    }
  }

  // True (and forgotten) when `key` was refused and its nonce has not expired.
  take(key: string, now: number): boolean {
    const until = this.#entries.get(key);
    if (until === undefined) return false;
    this.#entries.delete(key);
    return until > now;
  }
}

interface ServerHooks<S extends RpcSecurity> {
  loop: EventLoop;
  refused: RefusedRequests;
  // Random per server, told to clients in SESSION ["joined", serverId]: a client orders notifications only across
  // connections of one server.
  serverId: Uint8Array;
  groups: Map<string, SessionGroup<S>>;
  // The next stamp (increasing per server): activations, hand-overs, queued notifications.
  stamp(): number;
  counter: ConnectionCounter;
  identityOf: (peer: unknown) => string;
  rate: number;
  burst: number;
  reconnectNotice: number;
  draining(): boolean;
  connections(): Iterable<SessionConnection<S>>;
  added(c: SessionConnection<S>): void;
  removed(c: SessionConnection<S>, reason: Error | null): void;
}

/**
 * One client connection of a {@link SessionServer} (its protocol): call or notify the client through it, read
 * its certificate identity and RTT, close it.
 */
export class SessionConnection<S extends RpcSecurity = RpcSecurity> extends SessionProtocolBase<S> {
  /** The string this connection is counted under (the certificate identity); set at `connectionMade`. */
  identity = '';
  /** Epoch second at which this connection is closed (the earlier certificate notAfter); Infinity without certificates. */
  closesAt = Infinity;
  /** Messages refused by the rate limit. */
  rateLimited = 0;
  /** Loop time at which a GOAWAY was sent, or null. */
  goawayAt: number | null = null;
  /** True once this connection was let in (counted against its identity). */
  admitted = false;
  /** True once the RECONNECT notice went out (the connection closes at {@link closesAt}). */
  noticeSent = false;
  /**
   * The connection let in beyond `maxConnectionsPerIdentity` to replace this noticed one (make-before-break), or
   * null. Each noticed connection admits at most one, and only one that closes later than it does.
   */
  successor: SessionConnection<S> | null = null;
  /**
   * The session id the client named (hex; SESSION `[sessionId, active]`), or null: an older client that names none
   * (its connection is a session of its own), or before its first message.
   */
  sessionId: string | null = null;
  /**
   * True once the client's first message arrived: its SESSION hello or, from an older client, any other. Before
   * that, notifications to this connection are queued (at most {@link SESSION_QUEUE_SIZE}), since the hello may name
   * a session whose current connection is another one.
   */
  ready = false;
  /** When the client moved its session's notifications to this connection (an increasing stamp; 0: never). */
  activatedAt = 0;
  /**
   * True once a newer connection of the same client session took over its notifications (`["moved"]` sent): the
   * client activated it, or this one began to close while it was current and the server handed them over; or
   * its own activation arrived after that of a connection which joined later (stale: ignored).
   */
  moved = false;
  readonly #hooks: ServerHooks<S>;
  // The client session this connection belongs to, from `ready` on (kept after the loss, to forward to the session).
  #group: SessionGroup<S> | null = null;
  #early: EarlyNotification[] = [];
  // The noticed connection this one was let in for, beyond the limit (its `successor` is this), or null.
  #predecessor: SessionConnection<S> | null = null;
  #bucket: TokenBucket | null = null;
  #noticeTimer: TimerHandle | null = null;
  #closeTimer: TimerHandle | null = null;
  // Why the connection closes at closesAt ("the client certificate expires at …"), once the cap is scheduled.
  #capReason = '';
  #lastRefusalReply = -Infinity;
  // The stamp at which this connection began to close (this side's close, or the client's EOF), or null: from then
  // on nothing more can be written to the client's reading side, so it hands its session's notifications over.
  #leavingAt: number | null = null;

  /** @internal Made by {@link SessionServer.protocolFactory}. */
  constructor(hooks: ServerHooks<S>, options: SessionProtocolOptions<S>) {
    super(options);
    this.#hooks = hooks;
  }

  /** RPCs of the client running here now. */
  get inFlight(): number {
    return this.rpc?.inFlight ?? 0;
  }

  /**
   * The connection notifications to this one go to now: the current connection of its client session (the one the
   * client moved to last), itself for a client that names no session, or null when the session has none open.
   */
  get current(): SessionConnection<S> | null {
    if (this.#group === null) return this.isLost ? null : this;
    return SessionConnection.#targetOf(this.#group);
  }

  // The group's target, after a hand-over from a target whose transport is closing without close() or eofReceived()
  // having handed over: an abort (SlowConsumer, PeerTimeout, SessionServer.abort) or net's own force close (a socket
  // error). Nothing can be sent there any more and its connectionLost comes only a few turns later, so its successor
  // takes over now (#handOver) instead of `notify` failing with TransportClosed and `broadcast` skipping the
  // session meanwhile. Resolved here, where `current` and `deliver` read the target, so a broadcast counts the
  // session under its new target (one copy; a hand-over inside deliver would let the successor count again).
  static #targetOf<T extends RpcSecurity>(group: SessionGroup<T>): SessionConnection<T> | null {
    const target = group.target();
    if (target === null || target.#leavingAt !== null || target.transport?.isClosing() !== true) return target;
    target.#handOver();
    return group.target();
  }

  /**
   * Sends notification `method` to the client session of this connection, on its current connection ({@link
   * current}: after make-before-break the newer one, never both), so each notification reaches the session once.
   * With `latest`, held while writing is paused (latest-wins, docs/sessions.md "Backpressure"). Before the client's
   * first message it is queued (see {@link ready}).
   * @throws TransportClosed when the session has no current connection open (those it moved away from do not
   *   count); BadPayload when `params` cannot be encoded.
   *   A client that says nothing while more than {@link SESSION_QUEUE_SIZE} wait for it is aborted with SlowConsumer.
   */
  override notify(method: string, params?: unknown, options: ConnectionNotifyOptions = {}): void {
    this.deliver(method, params, options, false);
  }

  /** @internal {@link notify}, marked as part of a broadcast (see {@link EarlyNotification}). */
  deliver(method: string, params: unknown, options: ConnectionNotifyOptions, broadcast: boolean): void {
    if (!this.ready && this.admitted && !this.isLost && this.transport !== null && !this.transport.isClosing()) {
      encode([method, params]); // BadPayload now, as a sent one would
      const key = options.latest === undefined ? null : options.latest === true ? method : options.latest;
      if (key !== null) {
        const i = this.#early.findIndex((e) => e.options.latest !== undefined
          && (e.options.latest === true ? e.method : e.options.latest) === key);
        if (i >= 0) {
          this.#early.splice(i, 1);
          this.superseded += 1;
        }
      }
      this.#early.push({ method, params, options, broadcast, stamp: this.#hooks.stamp() });
      if (this.#early.length > SESSION_QUEUE_SIZE) {
        this.closeFor(new SlowConsumer(`the client sent nothing while ${this.#early.length} notifications waited for its first message`,
          { buffered: this.#early.length, limit: SESSION_QUEUE_SIZE }), true);
      }
      return;
    }
    if (this.#group !== null) {
      const target = SessionConnection.#targetOf(this.#group);
      // Not on this connection when the client moved away from it, even while it stays open for its calls.
      if (target === null) throw new TransportClosed('the client session has no current connection open');
      if (target !== this) {
        target.deliver(method, params, options, broadcast);
        return;
      }
    }
    super.notify(method, params, options);
  }

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    const h = this.#hooks;
    this.identity = h.identityOf(this.peer);
    if (h.draining()) {
      this.#refuse('TW_SESSION_CLOSED', 'the server is draining: connect again later', new SessionClosed('the server is draining'));
      return;
    }
    this.closesAt = this.#capOf(transport).closeAt;
    if (!h.counter.acquire(this.identity) && !this.#replaces(h)) {
      const err = new TooManyConnections(`${this.identity} already holds ${h.counter.max} connections (maxConnectionsPerIdentity)`);
      this.#refuse(err.code, err.message, err);
      return;
    }
    this.admitted = true;
    this.#bucket = new TokenBucket({ rate: h.rate, burst: h.burst, clock: h.loop.clock });
    this.#scheduleCertificateCap(transport);
    // The first message doubles as the welcome: the client counts the connection as up once it verifies it.
    this.sendControl(SESSION_KIND.PING, [this.heartbeat!.ping()]);
    h.added(this);
  }

  override messageReceived(message: unknown, meta: MessageMeta): void {
    // An older client's first message is anything but a SESSION hello: its connection is a session of its own.
    if (!this.ready && this.admitted && meta.kind !== SESSION_KIND.SESSION) this.#becomeReady(null);
    if (this.#limited(message, meta, true)) {
      this.heartbeat?.received();
      return;
    }
    super.messageReceived(message, meta);
  }

  override duplicateNonce(message: unknown, meta: MessageMeta): boolean {
    if (!this.ready && this.admitted) this.#becomeReady(null);
    if (this.#limited(message, meta, false)) {
      this.heartbeat?.received();
      return true;
    }
    // A retry of an idempotent request the rate limit refused: it never ran, so it runs now, as a first attempt.
    const refusedKey = this.#refusedKey(message, meta);
    if (refusedKey !== null && this.#hooks.refused.take(refusedKey, this.#hooks.loop.clock.epoch())) {
      super.messageReceived(message, meta);
      return true;
    }
    return super.duplicateNonce(message, meta);
  }

  // The key of an idempotent REQUEST in RefusedRequests (identity, key id, method, nonce), or null for anything else.
  #refusedKey(message: unknown, meta: MessageMeta): string | null {
    if (meta.kind !== RPC_KIND.REQUEST || !Array.isArray(message) || typeof message[1] !== 'string') return null;
    const o = message[3] as { idempotent?: unknown } | null | undefined;
    if (typeof o !== 'object' || o === null || o.idempotent !== true) return null;
    return `${this.identity}\n${meta.kid}\n${message[1]}\n${Buffer.from(meta.nonce).toString('hex')}`;
  }

  /**
   * A client's SESSION `[sessionId, active]`: its first message names the client session this connection belongs
   * to; `active` true moves the session's notifications here (the client did so when it switched to this
   * connection). Anything else is a rejected message (BadPayload).
   */
  override sessionReceived(message: unknown, _meta: MessageMeta): void {
    if (!this.admitted) return;
    const m = Array.isArray(message) && message.length === 2 ? message as unknown[] : null;
    const id = m?.[0];
    const active = m?.[1];
    if (!(id instanceof Uint8Array) || id.length < SESSION_ID_MIN || id.length > SESSION_ID_MAX || typeof active !== 'boolean') {
      this.rejectMessage(new BadPayload(`a SESSION payload from a client must be [sessionId (${SESSION_ID_MIN}-${SESSION_ID_MAX} bytes), active]`));
      if (!this.ready) this.#becomeReady(null);
      return;
    }
    const hex = Buffer.from(id).toString('hex');
    if (!this.ready) {
      this.#becomeReady(hex, active);
      return;
    }
    if (this.sessionId !== hex) {
      this.rejectMessage(new BadPayload('a connection cannot change its session id'));
      return;
    }
    if (active) this.#activate();
  }

  // The client spoke: join its session (`sessionId`, or a group of one), then send what was queued meanwhile. An
  // active hello (a client with no other connection open: a reconnect after a loss) takes the session's
  // notifications at once, ahead of what was queued: an older member the server still holds is a dead one, which
  // would otherwise get them (the welcome sent to this connection included) until the client's activation came.
  #becomeReady(sessionId: string | null, active = false): void {
    this.ready = true;
    const h = this.#hooks;
    let group: SessionGroup<S> | undefined;
    let joined = false;
    if (sessionId !== null) {
      this.sessionId = sessionId;
      // Scoped by the certificate identity: another identity naming the same id gets a session of its own.
      const key = `${this.identity}\n${sessionId}`;
      group = h.groups.get(key);
      joined = group !== undefined && group.target() !== null;
      if (group === undefined) {
        group = new SessionGroup<S>(key);
        h.groups.set(key, group);
      }
      // Ahead of any notification here: the client orders this connection's behind its older ones from now on.
      this.sendControl(SESSION_KIND.SESSION, ['joined', h.serverId]);
    } else {
      group = new SessionGroup<S>(null);
    }
    group.members.push(this);
    this.#group = group;
    if (active) this.#activate();
    // A standby whose hello arrives while the session's current connection is closing (its notAfter came while
    // this hello was on its way) takes over at once if it outlives that one (#handOver). The broadcasts queued here
    // since that one began to close reached nobody (it could not send them), so they are not dropped below.
    let leftAt: number | null = null;
    const target = group.target();
    if (!active && target !== null && target !== this && target.#leavingAt !== null) {
      const at = target.#leavingAt;
      target.#handOver();
      if (group.target() !== target) leftAt = at;
    }
    const early = this.#early;
    this.#early = [];
    for (const e of early) {
      // A broadcast reached every connection: the session's current one got its copy (a tulipwire client names
      // its session on a connection before it opens the next, so that one was there for it). Not after an active
      // hello: its client had no other connection open, so none of them delivered it.
      if (joined && !active && e.broadcast && (leftAt === null || e.stamp < leftAt)) continue;
      try {
        this.deliver(e.method, e.params, e.options, e.broadcast);
      } catch {
        break; // closing: nothing more can be sent here
      }
    }
  }

  // The client moved its session's notifications here: the previous current connection gets the "moved" marker
  // after the last one it carried, and its held latest-wins ones (never written) come here instead.
  #activate(): void {
    const group = this.#group;
    if (group === null || group.key === null) return;
    const previous = group.target();
    // Stale: a client activates its connections in the order it opens them (each newer one once, on its own
    // socket), so an activation read after that of a connection which joined later was overtaken on the way (its
    // socket was slower); the client has moved past this one already. Taking it would tell the client's newest
    // connection "moved" and leave the session current on one its client is closing: nothing current until that
    // newest one ends. Ignored instead (a target that got the session by an activation or a hand-over, activatedAt
    // > 0, stays), and this one, which gets nothing more, hears "moved" so its client stops waiting for it (it holds
    // the newer connection's notifications behind it until then).
    if (previous !== null && previous !== this && previous.activatedAt > 0
      && group.members.indexOf(previous) > group.members.indexOf(this)) {
      if (!this.moved) {
        this.moved = true;
        this.sendControl(SESSION_KIND.SESSION, ['moved']);
      }
      return;
    }
    this.activatedAt = this.#hooks.stamp();
    this.moved = false; // the client came back to it: current again
    if (previous === null || previous === this) return;
    this.#takeOver(previous);
  }

  // `previous` stops being its session's current connection and this one starts: the held latest-wins
  // notifications (never written) come here, and `previous` gets the "moved" marker after the last one it carried.
  #takeOver(previous: SessionConnection<S>): void {
    for (const h of previous.takeHeld()) {
      try {
        this.notify(h.method, h.params, { latest: h.key, ...(h.ttl !== undefined ? { ttl: h.ttl } : {}) });
      } catch {
        previous.heldDropped += 1;
      }
    }
    previous.moved = true;
    previous.sendControl(SESSION_KIND.SESSION, ['moved']);
  }

  // This connection ends (this side closes it, the client closed its side, or it is lost) while it is its session's
  // current one: nothing written here from now on reaches the client. A joined standby of the session that
  // outlives it (closes later: a make-before-break successor with a renewed certificate, whose activation has not
  // arrived yet) takes over now, as if the client had activated it: its client delivers what comes there once this
  // one said "moved" or is gone (docs/sessions.md, point 3), so order and once-only hold. Not one that closes no
  // later (a probe that found no later server certificate, which its client closes without switching to it), one
  // already told "moved", or one that is closing too. Without such a successor nothing changes: the held ones are
  // flushed here (a graceful close), and what is sent meanwhile is lost, as on any lost connection.
  #handOver(): void {
    this.#leavingAt ??= this.#hooks.stamp();
    const group = this.#group;
    if (group === null || group.key === null || this.moved || group.target() !== this) return;
    let next: SessionConnection<S> | null = null;
    for (const m of group.members) {
      if (m === this || m.isLost || m.moved || m.#leavingAt !== null || m.transport === null || m.transport.isClosing()
        || !(m.closesAt > this.closesAt)) continue;
      if (next === null || m.activatedAt > next.activatedAt) next = m;
    }
    if (next === null) return;
    next.activatedAt = this.#hooks.stamp();
    next.#takeOver(this);
  }

  /**
   * Closes as the base does (held latest-wins ones flushed, then close_notify); first, when this is its session's
   * current connection and a joined standby of the session closes later (a make-before-break successor whose
   * activation has not arrived), that one takes over the session's notifications and the held ones, and this one
   * gets `["moved"]` (docs/sessions.md, "Certificate rotation").
   */
  override close(): void {
    // Ahead of the base's flush of the held ones: with a successor they go there instead.
    if (this.#leavingAt === null && !this.isLost) this.#handOver();
    super.close();
  }

  /**
   * The client closed its side (its own cap at notAfter, …) and reads nothing more here: as in {@link close}, a
   * joined successor takes over the session's notifications first; then as the base does.
   */
  override eofReceived(): boolean | void {
    if (this.#leavingAt === null && !this.isLost) this.#handOver();
    return super.eofReceived();
  }

  override connectionLost(exc: Error | null): void {
    this.#noticeTimer?.cancel();
    this.#closeTimer?.cancel();
    this.#noticeTimer = this.#closeTimer = null;
    this.#early = [];
    // A joined successor that outlives this one takes over (#handOver); otherwise the fallback of target() below.
    if (!this.isLost) this.#handOver();
    // Held latest-wins notifications never written here go to the session's next connection, if it has one open.
    const held = this.takeHeld();
    super.connectionLost(exc);
    const group = this.#group;
    if (group !== null) {
      const i = group.members.indexOf(this);
      if (i >= 0) group.members.splice(i, 1);
      const next = group.target();
      // Forgotten once no member is open (one the client moved away from still belongs to the session).
      if (group.members.length === 0 && group.key !== null && this.#hooks.groups.get(group.key) === group) {
        this.#hooks.groups.delete(group.key);
      }
      for (const h of held) {
        try {
          if (next === null) throw new SessionClosed('no connection left');
          next.notify(h.method, h.params, { latest: h.key, ...(h.ttl !== undefined ? { ttl: h.ttl } : {}) });
        } catch {
          this.heldDropped += 1;
        }
      }
    } else {
      this.heldDropped += held.length;
    }
    // A successor that ends before its predecessor gives the slot back: the client's next try (a failed probe, a
    // dropped network) is let in again, instead of being refused until the predecessor closes at notAfter.
    if (this.#predecessor !== null) {
      if (this.#predecessor.successor === this) this.#predecessor.successor = null;
      this.#predecessor = null;
    }
    if (this.admitted) {
      this.admitted = false;
      this.#hooks.counter.release(this.identity);
      this.#hooks.removed(this, this.whyEnded() ?? exc);
    }
  }

  /**
   * Sends a signed GOAWAY: the client makes no new calls here and reconnects elsewhere (or later). Sent once.
   * @param timeout seconds until this side closes the connection (told to the client)
   */
  sendGoaway(code: string, message: string, timeout: number): void {
    if (this.goawayAt !== null) return;
    this.goawayAt = this.#hooks.loop.time();
    // A client that has not spoken yet gets what was queued for it first (as a session of its own: it is going away).
    if (!this.ready && this.admitted) this.#becomeReady(null);
    // Held latest-wins state goes first: a client with no calls in flight closes as soon as it reads the GOAWAY.
    this.flushHeld();
    this.sendControl(SESSION_KIND.GOAWAY, [code, message, timeout]);
  }

  // Refuses the connection with a GOAWAY naming the error, then closes it (after the GOAWAY is flushed).
  #refuse(code: string, message: string, reason: Error): void {
    this.sendGoaway(code, message, 0);
    this.closeFor(reason);
  }

  // Rate limit: REQUEST, NOTIFY and application messages take a token; control, replies and CANCEL never do (a
  // limited peer must still be able to answer pings and receive its replies). `first`: the message's nonce was new
  // (not a duplicate, which another copy may have run).
  #limited(message: unknown, meta: MessageMeta, first: boolean): boolean {
    const kind = meta.kind;
    // SESSION too: a dropped activation would leave the session's notifications on the connection it leaves.
    if (this.#bucket === null || kind === RPC_KIND.RESPONSE || kind === RPC_KIND.ERROR || kind === RPC_KIND.CANCEL
      || kind === SESSION_KIND.PING || kind === SESSION_KIND.PONG || kind === SESSION_KIND.SESSION) return false;
    const wait = this.#bucket.take();
    if (wait === 0) return false;
    this.rateLimited += 1;
    const err = new RateLimited(`message rate limit of ${this.#hooks.rate}/s (burst ${this.#hooks.burst}) exceeded; retry after ${wait.toFixed(3)} s`,
      { retryAfter: wait });
    if (kind === RPC_KIND.REQUEST && Array.isArray(message) && typeof message[0] === 'number') {
      // Every refused request is answered, so no call waits for a reply that never comes.
      this.sendControl(RPC_KIND.ERROR, [message[0], err.code, err.message, { retryAfter: wait }]);
      // Its nonce is spent, but it never ran: a retry with the same idempotency key may run it (RefusedRequests). Not
      // for a duplicate: an earlier copy may have run (here or in another process sharing the nonce store).
      const key = first ? this.#refusedKey(message, meta) : null;
      if (key !== null) this.#hooks.refused.add(key, meta.expiresAt + this.skew, this.#hooks.loop.clock.epoch());
    } else {
      const now = this.#hooks.loop.time();
      if (now - this.#lastRefusalReply >= REFUSAL_REPLY_INTERVAL) {
        this.#lastRefusalReply = now;
        this.sendControl(RPC_KIND.ERROR, [null, err.code, err.message, { retryAfter: wait }]);
      }
    }
    return true;
  }

  // At the identity's limit, a connection is still let in as the successor of one of the identity's connections
  // that got its RECONNECT notice and closes earlier than this one would (so a client limited to one connection
  // still moves without a gap; a client whose certificate is about to expire cannot use this to open more).
  #replaces(h: ServerHooks<S>): boolean {
    for (const c of h.connections()) {
      if (c.identity === this.identity && c.noticeSent && c.successor === null && !c.isLost
        && c.closesAt < this.closesAt) {
        c.successor = this;
        this.#predecessor = c;
        h.counter.acquire(this.identity, true);
        return true;
      }
    }
    return false;
  }

  // The earlier notAfter of the two certificates, and which one it is.
  #capOf(transport: Transport): { closeAt: number; which: string } {
    const peerNotAfter = notAfterOf(this.peer);
    const ownNotAfter = ownCertificateNotAfter(transport);
    return { closeAt: Math.min(peerNotAfter, ownNotAfter),
      which: peerNotAfter <= ownNotAfter ? 'the client certificate' : 'the server certificate' };
  }

  // Closes the connection at the earlier notAfter of the two certificates, with a RECONNECT notice before.
  #scheduleCertificateCap(transport: Transport): void {
    const { closeAt, which } = this.#capOf(transport);
    this.closesAt = closeAt;
    if (!Number.isFinite(closeAt)) return;
    const loop = this.#hooks.loop;
    const delay = closeAt - loop.clock.epoch();
    const noticeDelay = Math.max(0, delay - this.#hooks.reconnectNotice);
    this.#capReason = `${which} expires at ${new Date(closeAt * 1000).toISOString()}`;
    this.#noticeTimer = loop.callLater(noticeDelay, () => this.#sendNotice());
    this.#closeTimer = loop.callLater(Math.max(0, delay), () => this.#closeAtCap());
  }

  #sendNotice(): void {
    this.#noticeTimer?.cancel();
    this.#noticeTimer = null;
    this.noticeSent = true;
    this.sendControl(SESSION_KIND.RECONNECT, [this.closesAt, this.#capReason]);
  }

  #closeAtCap(): void {
    this.#closeTimer?.cancel();
    this.#closeTimer = null;
    this.closeFor(new SessionClosed(`connection closed at certificate expiry: ${this.#capReason}`));
  }

  /**
   * Re-checks the certificate cap on the wall clock once per heartbeat: the notice and the close are loop timers
   * (monotonic time), which a forward step of the wall clock leaves late, so a connection outlived its certificate
   * by the size of the step. Sends the notice, or closes, now when their wall-clock time has come.
   */
  override heartbeatTick(): void {
    if (this.isLost || this.endReason !== null) return;
    const now = this.#hooks.loop.clock.epoch();
    if (this.#noticeTimer !== null && now >= this.closesAt - this.#hooks.reconnectNotice) this.#sendNotice();
    if (this.#closeTimer !== null && now >= this.closesAt) this.#closeAtCap();
  }
}

/** A peer identity's `notAfter` (epoch seconds), or Infinity when there is none (no TLS). */
function notAfterOf(peer: unknown): number {
  if (typeof peer !== 'object' || peer === null) return Infinity;
  const n = (peer as { notAfter?: unknown }).notAfter;
  return typeof n === 'number' && Number.isFinite(n) ? n : Infinity;
}

/** This side's certificate's notAfter on a TLS transport (epoch seconds), or Infinity. */
export function ownCertificateNotAfter(transport: Transport): number {
  // 'sslObject' is the TLS socket; 'socket' would be the plain socket under it, which has no certificate.
  const socket = transport.getExtraInfo('sslObject', null) as TLSSocket | null;
  const cert = socket !== null && typeof socket.getX509Certificate === 'function' ? socket.getX509Certificate() : undefined;
  if (cert === undefined) return Infinity;
  const t = Date.parse(cert.validTo) / 1000;
  return Number.isFinite(t) ? t : Infinity;
}

/**
 * The session rules over any transport: {@link protocolFactory} makes the protocol of each accepted connection.
 * {@link serveSessions} makes one and listens; use the class directly to serve over other transports (an in-memory
 * pair in tests).
 */
export class SessionServer<S extends RpcSecurity = RpcSecurity> {
  /** The handler table every connection serves. */
  readonly router: RpcRouter<S>;
  /** The loop everything runs on. */
  readonly loop: EventLoop;
  /** The replay cache shared by every connection. */
  readonly nonceStore: NonceStore;
  /** Connection counts per identity. */
  readonly counter: ConnectionCounter;
  /** 8 random bytes naming this server to clients (SESSION `["joined", serverId]`): they order notifications per server. */
  readonly serverId: Uint8Array = randomBytes(8);
  readonly #options: SessionServerOptions<S>;
  readonly #connections = new Set<SessionConnection<S>>();
  // Client sessions with an open connection, by `identity \n sessionId`.
  readonly #groups = new Map<string, SessionGroup<S>>();
  // Shared by every connection: a retry may come on the client's next connection.
  readonly #refused = new RefusedRequests();
  #stamps = 0;
  #listening: ListeningServer | null = null;
  #detachRotator: (() => void) | null = null;
  #draining = false;
  #closed = false;
  // True from the first listen() on (false again if its bind failed): a server listens once.
  #listenStarted = false;
  #port: number | null = null;

  /**
   * @throws RangeError when `heartbeatInterval`, `idleTimeout`, `maxWriteBuffer` or `rate` is not a positive number,
   *   `burst` < 1, `reconnectNotice` is negative or not a number, or `maxConnectionsPerIdentity` < 1 (checked here,
   *   not when the first client connects)
   */
  constructor(options: SessionServerOptions<S>) {
    checkSessionProtocolOptions(options);
    const notice = options.reconnectNotice;
    if (notice !== undefined && !(notice >= 0)) throw new RangeError(`reconnectNotice must be a number of seconds >= 0, got ${notice}`);
    this.#options = options;
    this.loop = options.loop ?? getRunningLoop();
    // The same check each connection's bucket makes, once here.
    void new TokenBucket({ rate: options.rate ?? MESSAGE_RATE, burst: options.burst ?? MESSAGE_BURST, clock: this.loop.clock });
    // Each message takes one token: a bucket smaller than one refuses every message, with retryAfter Infinity.
    if (options.burst !== undefined && !(options.burst >= 1)) throw new RangeError(`burst must be >= 1 message, got ${options.burst}`);
    this.router = options.router ?? new RpcRouter<S>();
    this.nonceStore = options.nonceStore ?? new MemoryNonceStore({ clock: this.loop.clock });
    this.counter = new ConnectionCounter(options.maxConnectionsPerIdentity ?? MAX_CONNECTIONS_PER_IDENTITY);
  }

  /** The connections let in and still open. */
  get connections(): ReadonlySet<SessionConnection<S>> {
    return this.#connections;
  }

  /** True from the start of {@link drain} on: new connections are refused with GOAWAY. */
  get draining(): boolean {
    return this.#draining;
  }

  /** The listening server, once {@link listen} resolved. */
  get server(): ListeningServer | null {
    return this.#listening;
  }

  /** The port listened on (kept after the server stops listening), or null before {@link listen}. */
  get port(): number | null {
    return this.#port;
  }

  /** Registers a request handler for every connection (see RpcRouter.handle). */
  handle(method: string, handler: RpcHandler<S>, options?: HandlerOptions): this {
    this.router.handle(method, handler, options);
    return this;
  }

  /** Registers a notification handler for every connection. */
  onNotify(method: string, handler: NotifyHandler<S>, options?: HandlerOptions): this {
    this.router.onNotify(method, handler, options);
    return this;
  }

  /**
   * Sends notification `method` to every client session with an open connection (skipping connections going away),
   * once per session: on its current connection (see {@link SessionConnection.notify}). Returns how many sessions got it.
   */
  broadcast(method: string, params?: unknown, options: ConnectionNotifyOptions = {}): number {
    let n = 0;
    const reached = new Set<unknown>();
    for (const c of this.#connections) {
      if (c.goawayAt !== null || c.isLost) continue;
      // Before its client's first message a connection is its own (it may turn out to join a reached session).
      const session = c.ready ? c.current : c;
      if (session === null || reached.has(session)) continue;
      reached.add(session);
      try {
        c.deliver(method, params, options, true);
        n += 1;
      } catch {
        // closing: it is leaving the set
      }
    }
    return n;
  }

  /** Calls `method` on one client (server-initiated RPC). */
  call<T = unknown>(connection: SessionConnection<S>, method: string, params?: unknown, options?: CallOptions): Future<T> {
    return connection.call<T>(method, params, options);
  }

  /** A factory for the protocol of each accepted connection. */
  protocolFactory(): () => SessionConnection<S> {
    const o = this.#options;
    const hooks: ServerHooks<S> = {
      loop: this.loop,
      refused: this.#refused,
      serverId: this.serverId,
      groups: this.#groups,
      stamp: () => ++this.#stamps,
      counter: this.counter,
      identityOf: o.identityOf ?? defaultPeerKey,
      rate: o.rate ?? MESSAGE_RATE,
      burst: o.burst ?? MESSAGE_BURST,
      reconnectNotice: o.reconnectNotice ?? RECONNECT_NOTICE,
      draining: () => this.#draining || this.#closed,
      connections: () => this.#connections,
      added: (c) => {
        this.#connections.add(c);
        this.#hook('onConnection', c, () => o.onConnection?.(c));
      },
      removed: (c, reason) => {
        this.#connections.delete(c);
        this.#hook('onDisconnect', c, () => o.onDisconnect?.(c, reason));
      },
    };
    const protoOptions: SessionProtocolOptions<S> = {
      keyring: o.keyring,
      side: 'server',
      nonceStore: this.nonceStore,
      router: this.router,
      clock: this.loop.clock,
      ...(o.idempotencyCache !== undefined ? { idempotencyCache: o.idempotencyCache } : {}),
      ...(o.securityContext !== undefined ? { securityContext: o.securityContext } : {}),
      ...(o.maxInFlight !== undefined ? { maxInFlight: o.maxInFlight } : {}),
      ...(o.heartbeatInterval !== undefined ? { heartbeatInterval: o.heartbeatInterval } : {}),
      ...(o.maxWriteBuffer !== undefined ? { maxWriteBuffer: o.maxWriteBuffer } : {}),
      ...(o.idleTimeout !== undefined ? { idleTimeout: o.idleTimeout } : {}),
      ...(o.ttl !== undefined ? { ttl: o.ttl } : {}),
      ...(o.skew !== undefined ? { skew: o.skew } : {}),
      ...(o.bindToTls !== undefined ? { bindToTls: o.bindToTls } : {}),
      ...(o.logger !== undefined ? { logger: o.logger } : {}),
    };
    return () => new SessionConnection<S>(hooks, protoOptions);
  }

  /**
   * Listens on `host:port` with the `tls` options (src/net's `loop.createServer`). Once: a server listens on one
   * address for its life.
   * @throws TransportError when the server is closed or draining (also when {@link close} or {@link drain} came while
   *   this was binding: the listener is closed again), listens already (or a listen() is in progress), has no `tls`
   *   options, or src/net is not loaded
   */
  async listen(): Promise<this> {
    if (this.#closed || this.#draining) throw new TransportError('the session server is closed');
    if (this.#listenStarted) throw new TransportError('the session server listens already (listen() was called before)');
    const o = this.#options;
    if (o.tls === undefined) throw new TransportError('serveSessions needs `tls` (pki serverTlsOptions): sessions are mutual TLS');
    this.#listenStarted = true;
    let server: ListeningServer;
    try {
      server = await this.loop.createServer(this.protocolFactory(), o.host ?? '127.0.0.1', o.port ?? 0, {
        ssl: o.tls,
        ...(o.handshakeTimeout !== undefined ? { sslHandshakeTimeout: o.handshakeTimeout } : {}),
        ...(o.shutdownTimeout !== undefined ? { sslShutdownTimeout: o.shutdownTimeout } : {}),
        ...(o.backlog !== undefined ? { backlog: o.backlog } : {}),
      });
    } catch (err) {
      this.#listenStarted = false; // nothing listens: a later listen() may try again (e.g. the port was taken)
      throw err;
    }
    // close() or drain() ran while the address was being bound: they found no listener to stop, so stop it here
    // (it would otherwise serve after close(), and leak, since nothing else ever closes it).
    if (this.#closed || this.#draining) {
      server.close();
      await server.waitClosed();
      throw new TransportError('the session server was closed while listen() was binding its address');
    }
    this.#listening = server;
    const sock = server.sockets[0] as { address?(): unknown } | undefined;
    const addr = sock?.address?.() as { port?: number } | undefined;
    this.#port = typeof addr?.port === 'number' ? addr.port : null;
    if (o.rotator !== undefined && typeof server.setSecureContext === 'function') {
      this.#detachRotator = o.rotator.attachServer(server as { setSecureContext(options: TlsOptions): void });
    }
    return this;
  }

  /**
   * Drains the server: stops accepting, sends every connection a signed GOAWAY, lets the RPCs in flight finish
   * (clients close their side once their calls are answered), and at `timeout` closes what is left (close_notify,
   * then abort after a short fixed grace). Resolves once every connection is gone; never much later than `timeout`.
   * @throws RangeError when `timeout` is negative or not a number (before anything is stopped; Infinity waits for
   *   every call)
   */
  async drain(options: DrainOptions = {}): Promise<DrainResult> {
    const timeout = options.timeout ?? DRAIN_TIMEOUT;
    if (!(timeout >= 0)) throw new RangeError(`drain timeout must be a number of seconds >= 0, got ${timeout}`);
    const loop = this.loop;
    this.#draining = true;
    this.#stopListening();
    const deadline = loop.time() + timeout;
    const grace = Math.min(DRAIN_GRACE, timeout / 4);
    const initial = [...this.#connections];
    for (const c of initial) c.sendGoaway('TW_SESSION_CLOSED', 'the server is draining: finish your calls and reconnect later', timeout);
    for (;;) {
      const now = loop.time();
      for (const c of this.#connections) {
        if (c.inFlight === 0 && c.goawayAt !== null && now - c.goawayAt >= grace && c.endReason === null) {
          c.closeFor(new SessionClosed('the server drained this connection'));
        }
      }
      if (this.#connections.size === 0 || now >= deadline) break;
      await sleep(Math.min(DRAIN_POLL, Math.max(0, deadline - now)), undefined, loop);
    }
    // Cut at the timeout: those still running calls. One with nothing in flight was let go in time even when its
    // close (after the grace, or a close_notify still under way) had not finished by the deadline.
    const closedAtTimeout = initial.filter((c) => !c.isLost && c.inFlight > 0).length;
    const left = [...this.#connections];
    await this.#closeAll(left, new SessionClosed(`drain timeout of ${timeout} s reached with calls in flight`));
    await this.#waitListenerClosed();
    return { connections: initial.length, closedInTime: initial.length - closedAtTimeout, closedAtTimeout };
  }

  /** Closes everything now: stops listening and closes every connection (aborting after a short grace). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopListening();
    await this.#closeAll([...this.#connections], new SessionClosed('the session server closed'));
    await this.#waitListenerClosed();
  }

  /** Aborts every connection at once, as a crashed process would (for tests of reconnection). */
  abort(): void {
    this.#closed = true;
    this.#stopListening();
    for (const c of this.#connections) c.closeFor(new SessionClosed('the session server aborted'), true);
  }

  // Runs an application hook; what it throws goes to the loop's exception handler, never into the connection's
  // callbacks (a throw from connectionMade would abort the connection: a buggy metrics hook would drop every client).
  #hook(name: string, connection: SessionConnection<S>, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.loop.callExceptionHandler({ message: `the session server's ${name} hook threw`, exception: e, protocol: connection });
    }
  }

  #stopListening(): void {
    this.#detachRotator?.();
    this.#detachRotator = null;
    this.#listening?.close();
  }

  async #waitListenerClosed(): Promise<void> {
    const s = this.#listening;
    if (s !== null) await s.waitClosed();
  }

  // Closes `conns` and aborts what is left after CLOSE_GRACE. The listener's other sockets go too: a TLS handshake
  // in progress (dropped now) or a refused connection still closing would otherwise hold its waitClosed() until
  // its handshake or close_notify timeout.
  async #closeAll(conns: SessionConnection<S>[], reason: Error): Promise<void> {
    for (const c of conns) c.closeFor(reason);
    const listener = this.#listening;
    let listenerGone = listener === null;
    if (listener !== null) {
      listener.closeClients?.();
      void Promise.resolve(listener.waitClosed()).then(() => { listenerGone = true; }, () => { listenerGone = true; });
    }
    const until = this.loop.time() + CLOSE_GRACE;
    while ((!listenerGone || conns.some((c) => !c.isLost)) && this.loop.time() < until) await sleep(DRAIN_POLL, undefined, this.loop);
    for (const c of conns) if (!c.isLost) c.abort();
    if (!listenerGone) listener!.abortClients?.();
  }
}

/**
 * Starts a session server: `new SessionServer(options).listen()`. Read the port from `server.port`; stop it with
 * `drain({timeout})` (graceful) or `close()`.
 * @throws TransportError when `tls` is missing or the address cannot be bound; RangeError for a bad option (see the constructor)
 */
export async function serveSessions<S extends RpcSecurity = RpcSecurity>(options: SessionServerOptions<S>): Promise<SessionServer<S>> {
  return new SessionServer<S>(options).listen();
}
