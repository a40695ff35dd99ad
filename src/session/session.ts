/**
 * Client sessions: {@link openSession} returns a {@link Session} whose lifetime is a Task. The task connects with
 * the client certificate, keeps one connection up and reconnects after a loss with full-jitter backoff, each attempt
 * with the newest certificate its source holds. Calls made while no connection is up wait in a bounded queue;
 * idempotent calls whose connection is lost are sent again with the same nonce, so the server's idempotency cache
 * answers a retry of a call that already ran instead of running it twice.
 *
 * Before a connection must close (the server's RECONNECT notice ahead of a certificate's notAfter) the session
 * opens the next one first and moves new calls to it; the old one finishes its calls and closes
 * (make-before-break, so no call and no message is lost). For a notice about the server's own certificate the next
 * connection is opened at once (the server hands renewed certificates to new connections), and kept only if it
 * presents a later one. After a GOAWAY (a draining server) no new call goes to
 * that connection; it closes once its calls are answered, and the session reconnects with backoff.
 *
 * Cancelling `session.task` (or `session.close()`) closes cleanly: queued calls fail with SessionClosed, every
 * connection is closed with TLS close_notify, and whatever has not closed after `shutdownTimeout` is aborted.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { RPC_TIMEOUT, SESSION_BUFFERED_MESSAGES, SESSION_QUEUE_SIZE, SSL_SHUTDOWN_TIMEOUT } from '../constants.js';
import {
  BadPayload, PeerRejected, SessionClosed, TimeoutError, TooManyConnections, TransportError, TulipError, isCancelledError,
} from '../errors.js';
import type { EventLoop, Future, Task } from '../loop/index.js';
import { gather, getRunningLoop, sleep, waitFor } from '../loop/index.js';
import type { Transport } from '../net/transports.js';
import { holdReading, releaseReading } from '../net/transports.js';
// Installs loop.createConnection/createServer (src/net extends EventLoop by declaration merging).
import '../net/connect.js';
import type { IssuedCertificate } from '../pki/ca.js';
import type { ClientTlsBuildOptions } from '../pki/tls-options.js';
import { clientTlsOptions, withTlsErrorMapping } from '../pki/tls-options.js';
import { IdempotencyKey } from '../wire/idempotency.js';
import type { Keyring } from '../wire/keyring.js';
import type { WireLogger } from '../wire/message-protocol.js';
import type { NonceStore } from '../wire/nonces.js';
import { RPC_KIND, RpcRouter, checkMessageTtl, errorFromWire } from '../wire/rpc.js';
import type {
  CallOptions, HandlerOptions, NotifyHandler, RpcHandler, RpcSecurity, SecurityContextFactory,
} from '../wire/rpc.js';
import type { MessageMeta } from '../wire/signing.js';
import { Backoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { SESSION_KIND, SessionProtocolBase, checkSessionProtocolOptions } from './protocol.js';
import type {
  ConnectionNotifyOptions, GoawayNotice, HeldNotification, ReconnectNotice, SessionProtocolOptions,
} from './protocol.js';
import { ownCertificateNotAfter } from './session-server.js';
import { WaitQueue } from './wait-queue.js';

/** Where a session takes its client certificate from on each attempt: pki's `CertRotator` fits. */
export interface ClientCertificateSource {
  /** The certificate to use for the next connection. */
  readonly current: IssuedCertificate;
  /** Calls `fn` after each renewal; returns a function that stops it. */
  subscribe(fn: () => void): () => void;
}

/** One message the server pushed that no handler took: a notification without an `onNotify`, or an application message. */
export interface SessionMessage {
  /** The notification's method, or null for an application message (kind 16 and up). */
  readonly method: string | null;
  /** The notification's params, or the application message itself. */
  readonly params: unknown;
  /** Its verified metadata (kind, key id, times, nonce, peer). */
  readonly meta: MessageMeta;
}

/** A custom way to open one connection (an in-memory pair in tests, another transport): returns the made protocol. */
export type SessionConnector = (factory: () => SessionLink<any>, attempt: number) => PromiseLike<[Transport, SessionLink<any>]>;

/** Options of {@link openSession}. Times are seconds. */
export interface SessionOptions<S extends RpcSecurity = RpcSecurity> {
  /** Server host. Default `'127.0.0.1'`. */
  host?: string;
  /** Server port. */
  port?: number;
  /**
   * Client mTLS options (pki's `clientTlsOptions(...)`), or a function asked before every attempt (so a renewed
   * certificate is used for the next connection). Give this or `rotator`.
   */
  tls?: ConnectionOptions | (() => ConnectionOptions);
  /** The client certificate's source (pki's `CertRotator`): every attempt uses `rotator.current`. */
  rotator?: ClientCertificateSource;
  /** How options are built from `rotator.current` (pin, servername…), for pki's `clientTlsOptions`. */
  tlsBuild?: ClientTlsBuildOptions;
  /** SNI / host name to check, when it differs from `host`. */
  serverHostname?: string;
  /** The message keys (shared with the server). */
  keyring: Keyring;
  /** The loop. Default the running loop. */
  loop?: EventLoop;
  /** Reconnection backoff: `base`, `cap`, `attempts` (retries before giving up: `attempts + 1` failed connects in a row), `random`. */
  backoff?: BackoffOptions;
  /** Seconds between PINGs. Default `HEARTBEAT_INTERVAL` (5). */
  heartbeatInterval?: number;
  /** A server silent this long is dropped with PeerTimeout and the session reconnects. Default `IDLE_TIMEOUT` (15). */
  idleTimeout?: number;
  /** Bytes a connection's transport may hold before it is aborted with SlowConsumer (then reconnected). Default `MAX_WRITE_BUFFER` (8 MiB). */
  maxWriteBuffer?: number;
  /** Calls (and notifications) that may wait for a connection; one more fails with SessionClosed. Default {@link SESSION_QUEUE_SIZE}. */
  queueSize?: number;
  /**
   * Messages held for {@link Session.messages} before reading from the server pauses. Default {@link SESSION_BUFFERED_MESSAGES} (1024). While paused,
   * replies and PONGs are not read either: a consumer lagging for longer than `idleTimeout` loses the connection.
   */
  maxBufferedMessages?: number;
  /** TLS handshake timeout. Default net's (60). */
  handshakeTimeout?: number;
  /** How long closing waits for close_notify before aborting. Default `SSL_SHUTDOWN_TIMEOUT` (30). */
  shutdownTimeout?: number;
  /** Replay cache for messages from the server (default none: the per-connection sequence window). */
  nonceStore?: NonceStore;
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
  /** Handlers for calls and notifications from the server (also {@link Session.handle}/{@link Session.onNotify}). */
  router?: RpcRouter<S>;
  /** Builds `ctx.security` for the server's calls. */
  securityContext?: SecurityContextFactory<S>;
  /** A bearer token attached to each call (tokens' access token), or a function asked on each send. */
  token?: string | null | (() => string | null | undefined);
  /** Opens connections some other way than `loop.createConnection` (tests: an in-memory pair). */
  connector?: SessionConnector;
  /** The task's name. Default `'session <host>:<port>'`. */
  name?: string;
  /**
   * Called when the session has a connection again after having none: the first connect (`reconnect` false) and each
   * reconnect after a loss or a GOAWAY (`connects` counts them, as {@link Session.connects}). Not called for a
   * make-before-break move to a new connection while the old one still serves. A throw goes to the exception handler.
   */
  onConnected?: (info: { connects: number; reconnect: boolean }) => void;
  /**
   * Called when the session's connection is lost or the server sent GOAWAY, with why (also {@link Session.lastError});
   * the session then reconnects with backoff unless it gives up (`closed`). A throw goes to the exception handler.
   */
  onDisconnected?: (reason: Error) => void;
}

/** Options of {@link Session.notify}: a connection's (`ttl`, `latest`), and how long to wait for one. Times are seconds. */
export interface SessionNotifyOptions extends ConnectionNotifyOptions {
  /** How long to wait for a connection when none is up. Default `RPC_TIMEOUT`; null: as long as the session lives. */
  timeout?: number | null;
}

/** Options of {@link Session.call}: RPC's, with `idempotent` also covering retries across reconnects. */
export type SessionCallOptions = CallOptions;

interface ClientHooks {
  loop: EventLoop;
  push(message: SessionMessage, from: SessionLink<any>): void;
  changed(link: SessionLink<any>): void;
  hasNotifier(method: string): boolean;
  // Takes the latest-wins notifications a lost link never wrote, to send on the next one; false: the session is closed.
  carry(held: HeldNotification[]): boolean;
  // The session's id, sent first on every connection (SESSION [sessionId, active]).
  sessionId: Uint8Array;
  // True when another connection of the session is open (this one then starts as a standby).
  othersOpen(link: SessionLink<any>): boolean;
  // The next link's place in the session's order of connections.
  order(): number;
  // True while an older link of the same server may still carry notifications (this one's wait behind them).
  blocked(link: SessionLink<any>): boolean;
  // Messages a link holds for ordering before reading from it pauses.
  maxHeld: number;
}

// A notification or application message held behind an older connection's (see SessionLink.ordered).
interface OrderedMessage {
  readonly app: boolean;
  readonly message: unknown;
  readonly meta: MessageMeta;
}

/**
 * One connection of a {@link Session} (its protocol). Exported for custom connectors and for inspection; user
 * code calls through the Session.
 */
export class SessionLink<S extends RpcSecurity = RpcSecurity> extends SessionProtocolBase<S> {
  /** Resolves when the server's first message verified (the connection is up); fails if it closed before. */
  readonly established: Future<void>;
  /** Resolves when the connection is gone, with why (PeerTimeout, a certificate cap…, or the transport's error). */
  readonly ended: Future<Error | null>;
  /** The server's RECONNECT notice, once one came. */
  notice: ReconnectNotice | null = null;
  /** The server's GOAWAY, once one came. */
  goaway: GoawayNotice | null = null;
  /** True once this connection takes no new calls (a newer one is up, or the server said GOAWAY). */
  retiring = false;
  /** Calls of the session waiting for their reply on this connection. */
  pendingCalls = 0;
  /** The certificate material this connection was opened with (to tell whether a newer one exists). */
  readonly material: unknown;
  /** Epoch second this side closes the connection at: the earlier notAfter of the two certificates (Infinity: no TLS). */
  closesAt = Infinity;
  /** The server certificate's notAfter (epoch seconds; Infinity: no TLS). */
  serverNotAfter = Infinity;
  /** True when the server's certificate is the one that expires first (a renewal of ours would not help). */
  serverExpiresFirst = false;
  /** Loop time before which no new connection is tried for a server-certificate notice (the last try was no better). */
  probeAfter = 0;
  /** @internal The pending recheck for a renewal during a RECONNECT notice (Session's #recheckLater), or null. */
  recheckTimer: { cancel(): void } | null = null;
  /** This link's place among the session's connections (opened later: higher). */
  readonly order: number;
  /**
   * The server's id once it answered this connection's SESSION hello (`["joined", serverId]`): it then sends each
   * of the session's notifications on one of its connections only, and marks the end of them with `["moved"]`. Null
   * for an older server (notifications may then come on two connections during an overlap).
   */
  serverId: Uint8Array | null = null;
  /** True once the server said `["moved"]`: no more of the session's notifications come on this connection. */
  moved = false;
  /** True once the session switched to this connection (it then told the server, SESSION `[sessionId, true]`). */
  adopted = false;
  /** True once SESSION `[sessionId, true]` went out here. */
  activated = false;
  /** True while this retiring connection waits for the server's `["moved"]` before it closes (it may still carry notifications). */
  awaitingMove = false;
  /**
   * True once the server answered something sent after the hello (a PONG, an RPC reply) with no `["joined"]` before
   * it: an older server, which routes nothing, so no other connection waits for a `["moved"]` because of this one.
   */
  legacy = false;
  readonly #hooks: ClientHooks;
  // Notifications and application messages that arrived here while an older link of the same server could still
  // deliver some: released in order once it said "moved" or was lost (Session.#releaseOrdered).
  readonly #ordered: OrderedMessage[] = [];
  #pausedForOrder = false;
  // The owner of the order hold on this link's reading: not the link itself, which as a MessageProtocol holds
  // reading as `this` while messages wait for a slow nonce store (one hold must not release the other).
  readonly #orderHold = {};
  #capTimer: { cancel(): void } | null = null;

  /** @internal Made by the session for each attempt. */
  constructor(hooks: ClientHooks, material: unknown, options: SessionProtocolOptions<S>) {
    super(options);
    this.#hooks = hooks;
    this.order = hooks.order();
    this.material = material;
    this.established = hooks.loop.createFuture<void>();
    this.ended = hooks.loop.createFuture<Error | null>();
    // Nobody may await these (e.g. a link that failed before the session looked): never report them unretrieved.
    this.established.addDoneCallback(() => undefined);
  }

  /** True when the link is up and takes new calls. */
  get usable(): boolean {
    return this.established.done() && !this.established.cancelled() && this.established.exception() === null
      && !this.isLost && !this.retiring && this.endReason === null && this.transport !== null && !this.transport.isClosing();
  }

  /** True when the server routes the session's notifications (it answered this connection's SESSION hello). */
  get routed(): boolean {
    return this.serverId !== null;
  }

  /** Messages held here behind an older connection's, for their order. */
  get ordered(): number {
    return this.#ordered.length;
  }

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    // The first message: which session this connection belongs to. A standby while another connection of the
    // session is open (make-before-break: the session moves the server's notifications here only once it switches
    // to it); active at once otherwise, since none of its other connections can deliver anything any more, though
    // the server may still hold one that it has not seen die (a network switch): that one would get them, this
    // connection's own welcome included, until an activation after the "joined". An older server ignores it.
    const active = !this.#hooks.othersOpen(this);
    this.activated = this.sendControl(SESSION_KIND.SESSION, [this.#hooks.sessionId, active]) && active;
    // No connection outlives a certificate, on this side either: close at the earlier notAfter (the server's own
    // rule normally closes first, after its RECONNECT notice).
    const peer = this.peer as { notAfter?: unknown } | null;
    const peerNotAfter = typeof peer?.notAfter === 'number' ? peer.notAfter : Infinity;
    const ownNotAfter = ownCertificateNotAfter(transport);
    const capAt = Math.min(peerNotAfter, ownNotAfter);
    this.closesAt = capAt;
    this.serverNotAfter = peerNotAfter;
    this.serverExpiresFirst = peerNotAfter < ownNotAfter;
    const loop = this.#hooks.loop;
    // A certificate already past its notAfter (the TLS check counts whole seconds) is the other end's to refuse: its
    // TLS does, and its cap closes at once; closing here too would only race it and hide its typed reason.
    if (Number.isFinite(capAt) && capAt > loop.clock.epoch()) {
      this.#capTimer = loop.callLater(capAt - loop.clock.epoch(), () => this.#closeAtCap());
    }
  }

  #closeAtCap(): void {
    this.#capTimer?.cancel();
    this.#capTimer = null;
    this.closeFor(new SessionClosed(`connection closed at certificate expiry (${new Date(this.closesAt * 1000).toISOString()})`));
  }

  /**
   * Re-checks the certificate cap on the wall clock once per heartbeat: the cap is a loop timer (monotonic time),
   * which a forward step of the wall clock leaves late, so the connection outlived the certificate by the step.
   */
  override heartbeatTick(): void {
    if (this.#capTimer !== null && !this.isLost && this.endReason === null && this.#hooks.loop.clock.epoch() >= this.closesAt) {
      this.#closeAtCap();
    }
  }

  override messageReceived(message: unknown, meta: MessageMeta): void {
    if (!this.established.done() && meta.kind !== RPC_KIND.ERROR && meta.kind !== SESSION_KIND.GOAWAY) this.#establish();
    // The hello is the first message sent here and a server reads in order: an answer to a later one with no
    // "joined" ahead of it comes from a server that ignored the hello.
    if (this.serverId === null && !this.legacy && (meta.kind === SESSION_KIND.PONG || meta.kind === RPC_KIND.RESPONSE
      || meta.kind === RPC_KIND.ERROR)) {
      this.legacy = true;
      this.#hooks.changed(this);
    }
    if (meta.kind === RPC_KIND.NOTIFY) {
      this.heartbeat?.received();
      if (this.#mustWait()) this.#hold({ app: false, message, meta });
      else this.#deliverNotify(message, meta);
      return;
    }
    super.messageReceived(message, meta);
  }

  override appMessageReceived(message: unknown, meta: MessageMeta): void {
    if (this.#mustWait()) this.#hold({ app: true, message, meta });
    else this.#hooks.push({ method: null, params: message, meta }, this);
  }

  /** The server's SESSION message: `["joined", serverId]` (the answer to the hello) or `["moved"]`. */
  override sessionReceived(message: unknown, _meta: MessageMeta): void {
    const m = Array.isArray(message) ? message as unknown[] : null;
    if (m !== null && m.length === 2 && m[0] === 'joined' && m[1] instanceof Uint8Array && this.serverId === null) {
      this.serverId = Buffer.from(m[1]);
      this.#hooks.changed(this);
    } else if (m !== null && m.length === 1 && m[0] === 'moved') {
      this.moved = true;
      this.awaitingMove = false;
      this.#hooks.changed(this);
    } else {
      this.rejectMessage(new BadPayload('a SESSION payload from a server must be ["joined", serverId] or ["moved"]'));
    }
  }

  /** @internal Delivers the held messages once no older link can deliver any before them (in arrival order). */
  releaseOrdered(): void {
    if (this.#ordered.length === 0 || this.#hooks.blocked(this)) return;
    if (this.#pausedForOrder) {
      this.#pausedForOrder = false;
      if (!this.isLost && this.transport !== null) releaseReading(this.transport, this.#orderHold);
    }
    for (const m of this.#ordered.splice(0)) {
      if (m.app) this.#hooks.push({ method: null, params: m.message, meta: m.meta }, this);
      else this.#deliverNotify(m.message, m.meta);
    }
  }

  // Held behind an older link's, or behind those already held here (their order).
  #mustWait(): boolean {
    return this.#ordered.length > 0 || this.#hooks.blocked(this);
  }

  #hold(m: OrderedMessage): void {
    this.#ordered.push(m);
    if (this.#ordered.length >= this.#hooks.maxHeld && !this.#pausedForOrder && this.transport !== null && !this.isLost) {
      // Bounded like the message stream: stop reading until the older link is done. A hold of its own (not
      // pauseReading): the stream's backpressure and the user's pause come and go apart from it.
      this.#pausedForOrder = true;
      holdReading(this.transport, this.#orderHold);
    }
  }

  // To an onNotify handler (RPC's dispatch), else to `messages`.
  #deliverNotify(message: unknown, meta: MessageMeta): void {
    if (Array.isArray(message) && typeof message[0] === 'string' && !this.#hooks.hasNotifier(message[0])) {
      this.#hooks.push({ method: message[0], params: message[1], meta }, this);
      return;
    }
    super.messageReceived(message, meta);
  }

  /** True when the RECONNECT notice is for the server's own certificate: its closeAt is that certificate's notAfter. */
  get serverCertificateNotice(): boolean {
    return this.notice !== null && this.serverExpiresFirst && Math.abs(this.notice.closeAt - this.serverNotAfter) < 1;
  }

  override reconnectReceived(notice: ReconnectNotice): void {
    this.notice = notice;
    this.#hooks.changed(this);
  }

  override goawayReceived(notice: GoawayNotice): void {
    this.goaway = notice;
    this.retiring = true;
    this.awaitingMove = false; // the server is going away: no successor there will take over
    if (!this.established.done()) {
      this.established.setException(errorFromWire(notice.code, notice.message, null));
    }
    this.#hooks.changed(this);
  }

  override connectionLost(exc: Error | null): void {
    this.#capTimer?.cancel();
    this.#capTimer = null;
    this.recheckTimer?.cancel();
    this.recheckTimer = null;
    // Latest-wins notifications this connection held and never wrote go to the next one ("a notification that
    // could not be written is sent on the next connection"), not silently away with it.
    const held = this.takeHeld();
    if (held.length > 0 && !this.#hooks.carry(held)) this.heldDropped += held.length;
    super.connectionLost(exc);
    const reason = this.whyEnded() ?? exc;
    if (!this.established.done()) {
      this.established.setException(reason ?? new PeerRejected(
        "the server closed the connection during or right after the handshake: most often it refused this client's certificate"));
    }
    if (!this.ended.done()) this.ended.setResult(reason);
    this.#hooks.changed(this);
  }

  #establish(): void {
    this.established.setResult(undefined);
    this.#hooks.changed(this);
  }
}

/** The async iterator behind {@link Session.messages}: bounded, pausing the server's connection when full. */
class MessageStream implements AsyncIterable<SessionMessage> {
  readonly #loop: EventLoop;
  readonly #max: number;
  readonly #items: SessionMessage[] = [];
  readonly #waiters: Future<void>[] = [];
  readonly #paused = new Set<SessionLink<any>>();
  #ended = false;

  constructor(loop: EventLoop, max: number) {
    this.#loop = loop;
    this.#max = max;
  }

  get size(): number {
    return this.#items.length;
  }

  push(m: SessionMessage, from: SessionLink<any>): void {
    if (this.#ended) return;
    this.#items.push(m);
    this.#wakeOne();
    if (this.#items.length >= this.#max && from.transport !== null && !from.isLost && !this.#paused.has(from)) {
      // A connection lost while paused has nothing left to resume: forgotten here, not kept (with its transport)
      // until the consumer catches up, one more for each reconnect meanwhile.
      for (const link of this.#paused) if (link.isLost) this.#paused.delete(link);
      // Backpressure instead of an unbounded buffer: stop reading until the consumer catches up. A hold of the
      // stream's own (not pauseReading): the link's order hold and the user's pause come and go apart from it.
      this.#paused.add(from);
      holdReading(from.transport, this);
    }
  }

  // Wakes one waiting consumer. A waiter whose task was cancelled is done at once but leaves the list only when that
  // task runs again: skipped (setResult would throw, and the consumers still waiting would sleep through the message).
  #wakeOne(): void {
    while (this.#waiters.length > 0) {
      const w = this.#waiters.shift()!;
      if (!w.done()) {
        w.setResult(undefined);
        return;
      }
    }
  }

  end(): void {
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) if (!w.done()) w.setResult(undefined);
  }

  #take(): SessionMessage | undefined {
    const m = this.#items.shift();
    if (this.#paused.size > 0 && this.#items.length <= this.#max / 2) {
      for (const link of this.#paused) {
        if (!link.isLost && link.transport !== null) releaseReading(link.transport, this);
      }
      this.#paused.clear();
    }
    return m;
  }

  [Symbol.asyncIterator](): AsyncIterator<SessionMessage> {
    return {
      next: async (): Promise<IteratorResult<SessionMessage>> => {
        for (;;) {
          const m = this.#take();
          if (m !== undefined) return { value: m, done: false };
          if (this.#ended) return { value: undefined, done: true };
          const w = this.#loop.createFuture<void>();
          this.#waiters.push(w);
          try {
            await w;
          } catch (err) {
            // Cancelled, perhaps after a message woke it: that wake-up goes to the next consumer (asyncio.Queue.get).
            const i = this.#waiters.indexOf(w);
            if (i >= 0) this.#waiters.splice(i, 1);
            if (this.#items.length > 0) this.#wakeOne();
            throw err;
          } finally {
            const i = this.#waiters.indexOf(w);
            if (i >= 0) this.#waiters.splice(i, 1);
          }
        }
      },
      return: async (): Promise<IteratorResult<SessionMessage>> => ({ value: undefined, done: true }),
    };
  }
}

/**
 * A long-lived client session (see the module doc). Make one with {@link openSession}; end it with
 * {@link close} or `session.task.cancel()`.
 */
export class Session<S extends RpcSecurity = RpcSecurity> {
  /** The task that keeps the session connected; its lifetime is the session's. Cancel it to close. */
  readonly task: Task<void>;
  /**
   * Resolves when the session has ended: with null after a cancel or {@link close}, or with the SessionClosed
   * saying why it gave up (its `cause` the last connection error) once the backoff's attempts ran out. Never rejects.
   */
  readonly closed: Future<Error | null>;
  /** Notifications the server pushed that no {@link onNotify} handler takes, and application messages, in order. */
  readonly messages: AsyncIterable<SessionMessage>;
  /** Handlers for the server's calls and notifications. */
  readonly router: RpcRouter<S>;
  /** The loop. */
  readonly loop: EventLoop;
  readonly #options: SessionOptions<S>;
  readonly #queue: WaitQueue<Future<void>>;
  readonly #stream: MessageStream;
  readonly #links = new Set<SessionLink<S>>();
  #current: SessionLink<S> | null = null;
  #signal: Future<void> | null = null;
  #closedWith: SessionClosed | null = null;
  #lastError: Error | null = null;
  #lastRtt: number | null = null;
  #connects = 0;
  #attempts = 0;
  #unsubscribe: (() => void) | null = null;
  #shapedTls: { source: unknown; options: ConnectionOptions } | null = null;
  // Latest-wins notifications held by a connection that was lost before writing them, by key (one per key, so
  // bounded by the keys in use): sent on the next usable connection, before the calls waiting for it.
  readonly #carried = new Map<string, HeldNotification>();
  /** This session's id on the wire (16 random bytes): the server sends each notification on one of its connections. */
  readonly #sessionId: Uint8Array = randomBytes(16);
  #linkOrder = 0;
  // Links that may hold messages for ordering, oldest first (a lost one stays until it released them).
  readonly #orderedLinks = new Set<SessionLink<S>>();
  // Connections whose end onDisconnected has reported (once each).
  readonly #reportedGone = new WeakSet<SessionLink<S>>();

  /** @internal Use {@link openSession}. */
  constructor(options: SessionOptions<S>) {
    if (options.tls === undefined && options.rotator === undefined && options.connector === undefined) {
      throw new TypeError('openSession needs `tls` or `rotator` (sessions are mutual TLS), or a `connector`');
    }
    // Checked here, not in the task or per connection (where a bad value only made every attempt fail).
    checkSessionProtocolOptions(options);
    void new Backoff(options.backoff);
    const buffered = options.maxBufferedMessages;
    if (buffered !== undefined && !(buffered >= 1)) throw new RangeError(`maxBufferedMessages must be >= 1, got ${buffered}`);
    this.#options = options;
    this.loop = options.loop ?? getRunningLoop();
    this.router = options.router ?? new RpcRouter<S>();
    this.#queue = new WaitQueue(options.queueSize ?? SESSION_QUEUE_SIZE, () => this.loop.createFuture<void>());
    this.#stream = new MessageStream(this.loop, options.maxBufferedMessages ?? SESSION_BUFFERED_MESSAGES);
    this.messages = this.#stream;
    this.closed = this.loop.createFuture<Error | null>();
    this.#unsubscribe = options.rotator?.subscribe(() => this.#poke()) ?? null;
    const name = options.name ?? `session ${options.host ?? '127.0.0.1'}:${options.port ?? '?'}`;
    this.task = this.loop.createTask(() => this.#run(), { name });
    this.task.addDoneCallback(() => {
      // The body shuts down and resolves `closed` itself; a cancel before the first step never ran it (asyncio
      // throws into the unstarted coroutine), so its waiters and the message stream are ended here.
      if (this.#closedWith === null) this.#beginShutdown(null);
      if (!this.closed.done()) this.closed.setResult(null);
    });
  }

  /** The session's name (the `name` option, default `'session <host>:<port>'`), also its task's name. */
  get name(): string {
    return this.task.getName();
  }

  /** True while a connection is up and takes calls. */
  get connected(): boolean {
    return this.#current?.usable ?? false;
  }

  /** Smoothed round-trip time to the server, seconds (RFC 6298 SRTT over signed PING/PONG); null before the first PONG. */
  get rtt(): number | null {
    const r = this.#current?.rtt ?? null;
    if (r !== null) this.#lastRtt = r;
    return this.#lastRtt;
  }

  /**
   * The server's peer on the current connection, or null when not connected: with the `src/pki` TLS options its
   * verified certificate identity; over plain TCP, a memory pair or a custom connector something else, or null.
   * Typed `unknown`, as every peer field: narrow it with `peerIdentity()` (throws Forbidden) or `isPeerIdentity()`.
   */
  get peer(): unknown {
    return this.#current?.peer ?? null;
  }

  /** The connection calls go to now, or null (for inspection; user code calls through the session). */
  get link(): SessionLink<S> | null {
    return this.#current;
  }

  /** Connections established so far (1 after the first connect; each reconnect adds one). */
  get connects(): number {
    return this.#connects;
  }

  /** Connection attempts made so far, failed ones included. */
  get attempts(): number {
    return this.#attempts;
  }

  /** The last connection error (a failed attempt or a lost connection), or null. */
  get lastError(): Error | null {
    return this.#lastError;
  }

  /** Calls and notifications waiting for a connection now. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Registers a handler for the server's calls of `method`. */
  handle(method: string, handler: RpcHandler<S>, options?: HandlerOptions): this {
    this.router.handle(method, handler, options);
    return this;
  }

  /** Registers a handler for the server's notifications of `method` (they then skip {@link messages}). */
  onNotify(method: string, handler: NotifyHandler<S>, options?: HandlerOptions): this {
    this.router.onNotify(method, handler, options);
    return this;
  }

  /**
   * Calls `method` on the server. Waits (bounded) for a connection if none is up. With `idempotent` (true, or an
   * IdempotencyKey shared by your own retries) a call whose connection is lost is sent again on the next one with
   * the same nonce, until the key's window closes (TimeoutError); the server runs it at most once. `timeout`
   * (default `RPC_TIMEOUT`, null for none) bounds the whole call: waiting for a connection, and every attempt.
   * Aborting `signal` cancels the call's Task, queued or sent (a sent call gets a CANCEL).
   *
   * The Task resolves with the result, or fails with: the server's typed error (`RateLimited` with `retryAfter`,
   * `TooManyInFlight`, `Forbidden`, …); `TransportClosed` when a non-idempotent call's connection was lost (it may
   * or may not have run); `TimeoutError`; `SessionClosed` when the queue is full or the session closed.
   * @throws TypeError (synchronously) when `timeout` is neither null nor a number of seconds (NaN included), as RPC's
   */
  call<T = unknown>(method: string, params?: unknown, options: SessionCallOptions = {}): Task<T> {
    const key = options.idempotent === true ? new IdempotencyKey()
      : options.idempotent instanceof IdempotencyKey ? options.idempotent : null;
    const callOptions: CallOptions = { ...options };
    if (key !== null) callOptions.idempotent = key;
    else delete callOptions.idempotent;
    // The signal cancels the call's Task (below), whether it waits in the queue or for its reply.
    delete callOptions.signal;
    const timeout = checkTimeout(options.timeout);
    checkMessageTtl(options.ttl);
    const task = this.loop.createTask(async () => {
      // One deadline for the whole call: its waits for a connection and every attempt on one.
      const deadline = timeout === null ? null : this.loop.time() + timeout;
      for (;;) {
        // An idempotent retry is also bounded by its key's window (epoch seconds, fixed by the first attempt).
        const windowEnd = key?.expiresAt != null ? this.loop.time() + key.expiresAt - this.loop.clock.epoch() : null;
        const byWindow = windowEnd !== null && (deadline === null || windowEnd < deadline);
        const link = await this.#acquire(byWindow ? windowEnd : deadline, () => this.#noConnection(byWindow
          ? `call ${method}: the idempotency window of this operation closed while it waited for a connection`
          : `call ${method} found no connection within ${timeout} s`));
        // What is left of the deadline, to the millisecond (it names the call's TimeoutError).
        const left = deadline === null ? null : Math.max(0, Math.round((deadline - this.loop.time()) * 1000) / 1000);
        const reply = link.call<T>(method, params, { ...callOptions, timeout: left });
        // Failed before anything was written (the connection closed under us): safe to send again, idempotent or not.
        if (reply.done() && !reply.cancelled() && isConnectionLoss(reply.exception()) && this.#closedWith === null) {
          link.retiring = true;
          this.#changed(link);
          continue;
        }
        link.pendingCalls += 1;
        try {
          return await reply;
        } catch (err) {
          // Only a lost connection is retried, and only for idempotent calls: the server answers a copy from its cache.
          if (key !== null && isConnectionLoss(err) && this.#closedWith === null) continue;
          throw err;
        } finally {
          link.pendingCalls -= 1;
          this.#retireIfIdle(link);
        }
      }
    }, { name: `session call ${method}` });
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = (): void => { task.cancel('aborted by the caller'); };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        task.addDoneCallback(() => signal.removeEventListener('abort', onAbort));
      }
    }
    return task;
  }

  /**
   * Sends notification `method` to the server; waits for a connection if none is up, in the bounded queue and for
   * at most `timeout` seconds (default `RPC_TIMEOUT`; null waits as long as the session lives), then fails with
   * TimeoutError. A notification that could not be written is sent on the next connection; once written it is not
   * repeated. `ttl` is the message's lifetime, as for {@link RpcLink.notify}, counted from this call: one that waited
   * for a connection is sent with the rest of it, and one whose ttl runs out first fails with TimeoutError then,
   * unsent, and leaves the queue (a stale game input is never applied late, nor holds a place in the queue). With `latest` (a key, or true: the
   * method name) it is held latest-wins while the connection's writing is paused (docs/sessions.md, "Backpressure").
   * @throws TypeError (synchronously) when `timeout` is neither null nor a number of seconds (NaN included), or
   *   `ttl` is not a number; RangeError when `ttl` is negative or infinite
   */
  notify(method: string, params?: unknown, options: SessionNotifyOptions = {}): Task<void> {
    const timeout = checkTimeout(options.timeout);
    checkMessageTtl(options.ttl);
    const sendOptions: ConnectionNotifyOptions = {};
    if (options.ttl !== undefined) sendOptions.ttl = options.ttl;
    if (options.latest !== undefined) sendOptions.latest = options.latest;
    // An explicit ttl counts from this call: a notification that waited for a connection goes out with what is left
    // of it (a game input queued for 2 s during a reconnect must not arrive as a fresh one), or not at all.
    const ttl = options.ttl;
    const expires = ttl === undefined ? null : this.loop.time() + ttl;
    const expired = (): TimeoutError => new TimeoutError(`notify ${method} expired (ttl ${ttl} s) while waiting for a connection: not sent`);
    return this.loop.createTask(async () => {
      const deadline = timeout === null ? null : this.loop.time() + timeout;
      // The wait ends at the timeout or when the ttl runs out, whichever comes first: an expired notification can
      // never be sent, so it gives its place in the queue back at once, failing with the ttl's error.
      const byTtl = expires !== null && (deadline === null || expires < deadline);
      for (;;) {
        const link = await this.#acquire(byTtl ? expires : deadline,
          () => (byTtl ? expired() : this.#noConnection(`notify ${method} found no connection within ${timeout} s`)));
        if (expires !== null) {
          const left = expires - this.loop.time();
          if (left <= 0) throw expired();
          sendOptions.ttl = left;
        }
        try {
          link.notify(method, params, sendOptions);
          if (sendOptions.latest !== undefined) this.#superseded(sendOptions.latest === true ? method : sendOptions.latest, link);
          return;
        } catch (err) {
          if (isConnectionLoss(err) && this.#closedWith === null) continue;
          throw err;
        }
      }
    }, { name: `session notify ${method}` });
  }

  // A latest-wins notification of `key` went to `link`: older ones of the key, held by another connection or
  // carried over from a lost one, are stale now and never sent (latest-wins across connections too).
  #superseded(key: string, link: SessionLink<S>): void {
    this.#carried.delete(key);
    for (const l of this.#links) if (l !== link) l.dropHeld(key);
  }

  #carry(held: HeldNotification[]): boolean {
    if (this.#closedWith !== null) return false;
    for (const h of held) {
      this.#carried.delete(h.key);
      this.#carried.set(h.key, h);
    }
    // Another connection may serve already (make-before-break): send there now; otherwise at the next #adopt.
    this.#sendCarried();
    return true;
  }

  #sendCarried(): void {
    const link = this.#current;
    if (this.#carried.size === 0 || link === null || !link.usable || this.#closedWith !== null) return;
    for (const [key, h] of this.#carried) {
      try {
        link.notify(h.method, h.params, { latest: key, ...(h.ttl !== undefined ? { ttl: h.ttl } : {}) });
      } catch (err) {
        if (isConnectionLoss(err)) return; // closing under us: kept for the next connection
        // Cannot happen (the value was checked when it was first given); dropped rather than retried forever.
      }
      this.#carried.delete(key);
    }
  }

  /**
   * A Task that resolves once a connection is up (waiting in the bounded queue). Cancelling it, or a `waitFor` with
   * a timeout, ends the wait and frees its place in the queue. (It was a plain Promise, which `waitFor` cannot
   * cancel: each timed-out wait kept its place until the next connection, and once `queueSize` of them had piled up
   * during an outage every call failed with "queue is full".)
   * @throws SessionClosed when the session ends first.
   */
  whenConnected(): Task<void> {
    return this.loop.createTask(async () => { await this.#acquire(); }, { name: `${this.name}: whenConnected` });
  }

  /** Cancels the task and waits until the session has closed (close_notify, abort after `shutdownTimeout`). */
  async close(): Promise<void> {
    // The cancel is delivered from its own loop callback, where the session task is surely suspended on one of
    // its Futures (not in the middle of a step of the caller's).
    this.loop.callSoon(() => { this.task.cancel('session closed'); });
    await this.closed;
  }

  // ---- the task -------------------------------------------------------------------------------------------------

  async #run(): Promise<void> {
    const o = this.#options;
    const backoff = new Backoff(o.backoff);
    // Consecutive failed attempts (backoff.attempts counts retries: the first attempt is not one).
    let failures = 0;
    let reason: SessionClosed | null = null;
    try {
      for (;;) {
        let link: SessionLink<S> | null = null;
        let error: unknown = null;
        try {
          link = await this.#connectOnce();
        } catch (err) {
          if (isCancelledError(err)) throw err;
          error = err;
        }
        if (link === null) {
          this.#lastError = asError(error);
          const serving = this.#current;
          if (error instanceof TooManyConnections && serving !== null && serving.usable && serving.serverCertificateNotice) {
            // A try for the server's expiring certificate refused by the identity limit: the server had no later
            // certificate, so it admitted no successor (it does once it has renewed). Not a failure: try again later.
            this.#probeLater(serving);
            link = serving;
          } else {
            failures += 1;
            // A make-before-break attempt failed while the connection it was to replace ended: that is a disconnect.
            if (serving !== null && !serving.usable) this.#disconnected(serving);
            const delay = backoff.next();
            if (delay === null && serving !== null && serving.usable) {
              // Every make-before-break attempt failed, but the old connection still serves: stay on it until it
              // ends, then start over with a fresh backoff sequence.
              while (!serving.isLost && serving.goaway === null) {
                const signal = this.loop.createFuture<void>();
                this.#signal = signal;
                await signal;
              }
              this.#disconnected(serving);
              backoff.reset();
              failures = 0;
              continue;
            }
            if (delay === null) {
              reason = new SessionClosed(`gave up after ${failures} failed connection attempts: ${this.#lastError.message}`,
                { cause: this.#lastError });
              return;
            }
            await sleep(delay, undefined, this.loop);
            continue;
          }
        } else {
          backoff.reset();
          failures = 0;
          const serving = this.#current;
          if (serving !== null && serving !== link && serving.usable && serving.serverCertificateNotice
            && link.serverNotAfter <= serving.serverNotAfter) {
            // A make-before-break try for the server's expiring certificate that got that same certificate (the
            // server has not renewed yet): keep serving on the old connection, and try again later.
            link.closeFor(new SessionClosed('the server presented no later certificate than the current connection\'s'));
            this.#probeLater(serving);
            link = serving;
          } else {
            this.#adopt(link);
          }
        }
        // Stay on this connection until it is lost, the server says GOAWAY, or a newer certificate is there for a
        // RECONNECT notice (then the next iteration connects while this one still serves).
        while (!link.isLost && link.goaway === null && !this.#wantsEarlyReconnect(link)) {
          if (link.notice !== null && !link.serverCertificateNotice) this.#recheckLater(link);
          // Awaited directly (not through a helper): one Future, no extra promise hops in this task's steps.
          const signal = this.loop.createFuture<void>();
          this.#signal = signal;
          await signal;
        }
        if (link.isLost || link.goaway !== null) {
          this.#lastError = this.#whyGone(link);
          this.#disconnected(link, this.#lastError);
          // The session was connected until now: the reconnect is the first try of a new sequence, not a retry, so
          // it never gives up here and `attempts + 1` failed connects in a row follow before it does.
          backoff.reset();
          failures = 0;
          await sleep(backoff.delay(), undefined, this.loop);
        }
      }
    } finally {
      await this.#shutdown(reason);
    }
  }

  async #connectOnce(): Promise<SessionLink<S>> {
    const o = this.#options;
    this.#attempts += 1;
    const { material, ssl } = this.#tlsForAttempt();
    const hooks: ClientHooks = {
      loop: this.loop,
      push: (m, from) => this.#stream.push(m, from),
      changed: (l) => this.#changed(l),
      hasNotifier: (method) => this.router.notifierOf(method) !== undefined,
      carry: (held) => this.#carry(held),
      sessionId: this.#sessionId,
      othersOpen: (l) => [...this.#links].some((x) => x !== l && !x.isLost),
      order: () => ++this.#linkOrder,
      blocked: (l) => this.#blocked(l),
      maxHeld: o.maxBufferedMessages ?? SESSION_BUFFERED_MESSAGES,
    };
    const protoOptions: SessionProtocolOptions<S> = {
      keyring: o.keyring,
      side: 'client',
      router: this.router,
      clock: this.loop.clock,
      onUnmatchedError: (e) => { this.#lastError = e; },
      ...(o.nonceStore !== undefined ? { nonceStore: o.nonceStore } : {}),
      ...(o.securityContext !== undefined ? { securityContext: o.securityContext } : {}),
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.heartbeatInterval !== undefined ? { heartbeatInterval: o.heartbeatInterval } : {}),
      ...(o.maxWriteBuffer !== undefined ? { maxWriteBuffer: o.maxWriteBuffer } : {}),
      ...(o.idleTimeout !== undefined ? { idleTimeout: o.idleTimeout } : {}),
      ...(o.ttl !== undefined ? { ttl: o.ttl } : {}),
      ...(o.skew !== undefined ? { skew: o.skew } : {}),
      ...(o.bindToTls !== undefined ? { bindToTls: o.bindToTls } : {}),
      ...(o.logger !== undefined ? { logger: o.logger } : {}),
    };
    const factory = (): SessionLink<S> => {
      const l = new SessionLink<S>(hooks, material, protoOptions);
      this.#links.add(l);
      this.#orderedLinks.add(l);
      l.ended.addDoneCallback(() => this.#links.delete(l));
      return l;
    };
    let made: [Transport, unknown];
    if (o.connector !== undefined) {
      made = await o.connector(factory, this.#attempts);
    } else {
      if (o.port === undefined) throw new TransportError('openSession needs `port` (or a `connector`)');
      // Awaited at once, so the connect's own Future is what this task is suspended on: a cancel destroys the socket.
      made = await this.loop.createConnection(factory, o.host ?? '127.0.0.1', o.port, {
        ssl,
        ...(o.serverHostname !== undefined ? { serverHostname: o.serverHostname } : {}),
        ...(o.handshakeTimeout !== undefined ? { sslHandshakeTimeout: o.handshakeTimeout } : {}),
        sslShutdownTimeout: o.shutdownTimeout ?? SSL_SHUTDOWN_TIMEOUT,
      });
    }
    const link = made[1] as SessionLink<S>;
    try {
      // Up once the server's first message verified: a TLS 1.3 server that refused our certificate only closes.
      // Bounded by the heartbeat: a server that says nothing for idleTimeout is dropped with PeerTimeout.
      await link.established;
    } catch (err) {
      link.closeFor(asError(err), true);
      throw err;
    }
    return link;
  }

  // The TLS options for the next attempt, from the newest certificate.
  #tlsForAttempt(): { material: unknown; ssl: ConnectionOptions | undefined } {
    const o = this.#options;
    if (o.rotator !== undefined) {
      const current = o.rotator.current;
      if (this.#shapedTls === null || this.#shapedTls.source !== current) {
        this.#shapedTls = { source: current, options: clientTlsOptions(current, { clock: this.loop.clock, ...o.tlsBuild }) };
      }
      return { material: current, ssl: this.#shapedTls.options };
    }
    const tls = typeof o.tls === 'function' ? o.tls() : o.tls;
    // Plain node:tls options get the typed handshake errors too (a forgotten client certificate is
    // NoClientCertificate, not OpenSSL's text as a TransportError).
    return { material: tls?.cert ?? tls, ssl: tls === undefined ? undefined : withTlsErrorMapping(tls, this.loop.clock) };
  }

  // The newest certificate material, without building options (to compare with a link's).
  #currentMaterial(): unknown {
    const o = this.#options;
    if (o.rotator !== undefined) return o.rotator.current;
    const tls = typeof o.tls === 'function' ? o.tls() : o.tls;
    return tls?.cert ?? tls;
  }

  #wantsEarlyReconnect(link: SessionLink<S>): boolean {
    if (link.notice === null || link !== this.#current || this.loop.time() < link.probeAfter) return false;
    // The server's certificate expires first: a new connection gets the one it renewed meanwhile (a server renews
    // well before its notice), whatever ours is. Tried at once, then again at most every half of the time left
    // while a try finds no later certificate (bounded: a handful of handshakes per notice).
    if (link.serverCertificateNotice) return true;
    // Reconnecting with the same certificate would get the same notice at once: wait for a renewal (the rotator
    // pokes; a `tls` function is asked again every min(1 s, heartbeat interval)), or for the close at notAfter.
    let material: unknown;
    try {
      material = this.#currentMaterial();
    } catch (err) {
      // The user's certificate source failed (files being replaced, a store down): no renewal yet, asked again at
      // the next recheck; the connection keeps serving. Kept as lastError, as a failed attempt's would be.
      this.#lastError = asError(err);
      return false;
    }
    return material !== link.material;
  }

  // After a make-before-break try that was no better: the next one at half the time left (at least 0.25 s).
  #probeLater(link: SessionLink<S>): void {
    const left = link.closesAt - this.loop.clock.epoch();
    const wait = Math.max(0.25, left / 2);
    link.probeAfter = this.loop.time() + wait;
    const h = this.loop.callLater(wait, () => this.#poke());
    link.ended.addDoneCallback(() => h.cancel());
  }

  // One recheck pending per link at a time, cancelled when the link ends (SessionLink.connectionLost). It used to
  // schedule one more timer at each wake of the task and add a done callback to `link.ended` per recheck, kept for
  // the link's life: both grew for the whole notice window.
  #recheckLater(link: SessionLink<S>): void {
    if (this.#options.rotator !== undefined || link.recheckTimer !== null || link.isLost) return;
    const every = Math.min(1, link.heartbeat?.interval ?? 1);
    link.recheckTimer = this.loop.callLater(every, () => {
      link.recheckTimer = null;
      this.#poke();
    });
  }

  // Why `link` ended or is ending: its loss, the server's GOAWAY, or this side's close.
  #whyGone(link: SessionLink<S>): Error {
    if (link.isLost && link.ended.done() && !link.ended.cancelled()) {
      return link.ended.result() ?? new SessionClosed('the server closed the connection');
    }
    if (link.goaway !== null) return errorFromWire(link.goaway.code, link.goaway.message, null);
    return link.whyEnded() ?? new SessionClosed('the connection is closing');
  }

  // The session's connection `link` was lost, got GOAWAY or is closing: onDisconnected, once per connection, also
  // when the task learns of it while it was opening the next one (a make-before-break connect in flight).
  #disconnected(link: SessionLink<S>, reason: Error = this.#whyGone(link)): void {
    if (this.#reportedGone.has(link)) return;
    this.#reportedGone.add(link);
    this.#hook('onDisconnected', () => this.#options.onDisconnected?.(reason));
  }

  #adopt(link: SessionLink<S>): void {
    const previous = this.#current;
    // A move (make-before-break) replaces a connection that still serves; anything else is a (re)connect.
    const moved = previous !== null && previous !== link && previous.usable;
    // The connection replaced had ended while this one was being opened: its disconnect comes before this connect.
    if (!moved && previous !== null && previous !== link) this.#disconnected(previous);
    this.#current = link;
    this.#connects += 1;
    link.adopted = true;
    if (!moved) this.#hook('onConnected', () => this.#options.onConnected?.({ connects: this.#connects, reconnect: this.#connects > 1 }));
    const retired = previous !== null && previous !== link ? previous : null;
    if (retired !== null) {
      retired.retiring = true;
      // The server may still send the session's notifications there until it reads the activation on the new
      // link: keep reading it until its "moved" marker (or until it ends).
      if (retired.routed && !retired.moved && retired.goaway === null && !retired.isLost) retired.awaitingMove = true;
    }
    this.#activate(link);
    if (retired !== null) this.#retireIfIdle(retired);
    this.#sendCarried();
    this.#queue.wakeAll();
  }

  // Tells the server to send the session's notifications on `link` from now on (once it routes them: it answered
  // the hello; an older server never does, and gets no activation).
  #activate(link: SessionLink<S>): void {
    if (link.adopted && link.legacy) {
      // Switched to an older server: it sends no activation anywhere, so no "moved" comes to the links left.
      this.#stopAwaitingMove((l) => l !== link);
      return;
    }
    if (!link.adopted || link.activated || !link.routed || link.isLost) return;
    link.activated = link.sendControl(SESSION_KIND.SESSION, [this.#sessionId, true]);
    // An older link to another server gets no "moved" from this one: it need not wait for it.
    this.#stopAwaitingMove((l) => l !== link && l.serverId !== null && !Buffer.from(l.serverId).equals(link.serverId!));
  }

  // Lets the retiring links that `which` picks close once idle, instead of waiting for a "moved" that cannot come.
  #stopAwaitingMove(which: (l: SessionLink<S>) => boolean): void {
    for (const l of this.#links) {
      if (l.awaitingMove && which(l)) {
        l.awaitingMove = false;
        this.#retireIfIdle(l);
      }
    }
  }

  // True while an older link to the same server may still deliver notifications: not "moved" and not lost. Links
  // of an older server (no serverId) are never waited for, nor do they wait.
  #blocked(link: SessionLink<S>): boolean {
    const id = link.serverId;
    if (id === null) return false;
    for (const l of this.#orderedLinks) {
      if (l.order >= link.order) break;
      if (l.serverId !== null && !l.moved && !l.isLost && Buffer.from(l.serverId).equals(id)) return true;
    }
    return false;
  }

  // Releases held messages in link order, and forgets lost links that hold none.
  #releaseOrdered(): void {
    for (const l of this.#orderedLinks) {
      l.releaseOrdered();
      if (l.isLost && l.ordered === 0) this.#orderedLinks.delete(l);
    }
  }

  #retireIfIdle(link: SessionLink<S>): void {
    if (link.retiring && link.pendingCalls === 0 && !link.awaitingMove && !link.isLost && link.endReason === null) {
      link.closeFor(new SessionClosed(link.goaway !== null ? 'the server is going away' : 'replaced by a newer connection'));
    }
  }

  #changed(link: SessionLink<S>): void {
    if (link.isLost) link.awaitingMove = false;
    this.#activate(link);
    this.#releaseOrdered();
    if (link.retiring) this.#retireIfIdle(link);
    if (link === this.#current && link.rtt !== null) this.#lastRtt = link.rtt;
    this.#poke();
  }

  #poke(): void {
    const s = this.#signal;
    if (s !== null && !s.done()) s.setResult(undefined);
  }

  // Runs an application hook; what it throws goes to the loop's exception handler, never into the session's task.
  #hook(name: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.loop.callExceptionHandler({ message: `the session's ${name} hook threw`, exception: e });
    }
  }

  // The TimeoutError of a call or notification that found no connection: why the last attempt failed (a refused
  // certificate, a closed port) is its cause and ends its message, so the error says what to fix, not only how long
  // it waited (a game developer's trial lost 30 s to a bare "found no connection").
  #noConnection(text: string): TimeoutError {
    const last = this.#lastError;
    return last === null ? new TimeoutError(text) : new TimeoutError(`${text}; last connection attempt: ${last.message}`, { cause: last });
  }

  // A usable link, waiting in the bounded queue for one; with `until` (loop time), failing with `late()` then.
  async #acquire(until: number | null = null, late?: () => Error): Promise<SessionLink<S>> {
    for (;;) {
      if (this.#closedWith !== null) throw this.#closedWith;
      const c = this.#current;
      if (c !== null && c.usable) return c;
      if (until !== null && until <= this.loop.time()) throw late!();
      const waiter = this.#queue.wait();
      if (until === null) {
        await waiter;
        continue;
      }
      // Failing the waiter takes it out of the queue (its done callback), freeing the slot.
      const timer = this.loop.callAt(until, () => { if (!waiter.done()) waiter.setException(late!()); });
      try {
        await waiter;
      } finally {
        timer.cancel();
      }
    }
  }

  // Fails the waiting calls, ends `messages`, stops listening for renewals and closes every link (without waiting).
  #beginShutdown(reason: SessionClosed | null): SessionLink<S>[] {
    const err = reason ?? new SessionClosed('the session is closed');
    this.#closedWith = err;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#queue.close(err);
    this.#stream.end();
    this.#carried.clear();
    this.#orderedLinks.clear();
    this.#current = null;
    const links = [...this.#links];
    for (const l of links) l.closeFor(err);
    return links;
  }

  async #shutdown(reason: SessionClosed | null): Promise<void> {
    const links = this.#beginShutdown(reason);
    const timeout = this.#options.shutdownTimeout ?? SSL_SHUTDOWN_TIMEOUT;
    // A cancel that comes during the wait (the session gave up, then close() or a TaskGroup cancelled the task) cuts
    // it short like the timeout does, and is then raised: the task ends cancelled, never swallowed.
    let cancelled: unknown = null;
    if (links.some((l) => !l.isLost)) {
      try {
        await waitFor(gather(...links.map((l) => l.ended)), timeout);
      } catch (e) {
        if (isCancelledError(e)) cancelled = e;
        else if (!(e instanceof TimeoutError)) throw e;
      }
      for (const l of links) if (!l.isLost) l.abort();
    }
    if (!this.closed.done()) this.closed.setResult(reason);
    if (cancelled !== null) throw cancelled;
  }
}

/**
 * Opens a long-lived session to a session server (see the module doc): returns at once; the session connects in
 * its task. Await `session.whenConnected()` to wait for the first connection, or just call: calls wait for it.
 * @throws TypeError when neither `tls`, `rotator` nor `connector` is given; RangeError when `heartbeatInterval`,
 *   `idleTimeout` or `maxWriteBuffer` is not a positive number, `maxBufferedMessages` < 1, or `backoff` is invalid
 */
export function openSession<S extends RpcSecurity = RpcSecurity>(options: SessionOptions<S>): Session<S> {
  return new Session<S>(options);
}

/**
 * The timeout of a call or notification (default `RPC_TIMEOUT`), checked as RPC checks it, before anything waits:
 * a NaN deadline made the loop's `callAt` throw after the waiter had taken its queue slot (kept until the next
 * connection), and a notification on a live connection ignored it.
 */
function checkTimeout(timeout: number | null | undefined): number | null {
  const t = timeout === undefined ? RPC_TIMEOUT : timeout;
  if (t !== null && (typeof t !== 'number' || Number.isNaN(t))) {
    throw new TypeError(`a timeout is null or a number of seconds, got ${String(t)}`);
  }
  return t;
}

/**
 * A call that failed because its connection was lost (or not open): safe to repeat when idempotent. Only this
 * side's own error: a TW_TRANSPORT_CLOSED *reply* (`remote`, a handler threw it) is the call's cached outcome, which
 * a copy sent again on the same healthy connection would only get again, in a loop.
 */
function isConnectionLoss(err: unknown): boolean {
  return TulipError.isTulipError(err) && err.code === 'TW_TRANSPORT_CLOSED' && err.remote !== true;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new SessionClosed(String(err));
}
