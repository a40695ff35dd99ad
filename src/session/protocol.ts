/**
 * The control layer both ends of a session share: an {@link RpcProtocol} that also speaks the session kinds the
 * wire format reserves (PING 6, PONG 7, RECONNECT 8, GOAWAY 9) and runs the heartbeat.
 *
 * Control payloads are msgpack arrays, like RPC's (docs/sessions.md gives them):
 *
 * | kind | payload | meaning |
 * |---|---|---|
 * | PING 6 | `[id]` | "are you there"; answered at once with PONG `[id]` |
 * | PONG 7 | `[id]` | the answer; the sender of the PING measures RTT on its own clock |
 * | RECONNECT 8 | `[closeAt, reason]` | the server closes this connection at epoch second `closeAt` (a certificate's notAfter): open a new one first |
 * | GOAWAY 9 | `[code, message, timeout]` | the server takes no new calls here and closes within `timeout` s (drain, or a refused connection with a `TW_` code) |
 * | SESSION 10 | client `[sessionId, active]`; server `["joined", serverId]` or `["moved"]` | which client session a connection belongs to, and which of its connections gets the server's notifications (make-before-break without duplicates) |
 *
 * Every message from the peer (of any kind) counts as proof of life. A peer silent for longer than `idleTimeout`
 * is aborted, and {@link SessionProtocolBase.endReason} is the PeerTimeout.
 *
 * Backpressure, per message class: while the transport has paused writing (its buffer above the high-water mark:
 * the peer reads slower than we write), a notification sent with `latest` is held, one per key, and a newer one of
 * the same key replaces it (latest-wins: a state snapshot that would arrive stale is never sent); the held ones go
 * out when writing resumes, or ahead of a graceful close (an abort drops them, counted in `heldDropped`). Everything
 * else (calls, replies, plain notifications, control) is written as usual, and once the transport holds more than
 * `maxWriteBuffer` bytes (checked when writing pauses and after every iteration that sent while paused) the
 * connection is aborted with SlowConsumer: memory per peer stays bounded, and one slow peer never holds up the others.
 *
 * @module
 */
import { MAX_WRITE_BUFFER } from '../constants.js';
import { BadPayload, PeerTimeout, SlowConsumer } from '../errors.js';
import type { EventLoop } from '../loop/index.js';
import type { Transport } from '../net/transports.js';
import { encode } from '../wire/codec.js';
import { KIND } from '../wire/envelope.js';
import { RpcProtocol } from '../wire/rpc.js';
import type { RpcProtocolOptions, RpcSecurity } from '../wire/rpc.js';
import type { SendOptions } from '../wire/message-protocol.js';
import type { MessageMeta } from '../wire/signing.js';
import { Heartbeat, HeartbeatTimer } from './heartbeat.js';

/** The envelope kinds sessions use (reserved by the wire format). */
export const SESSION_KIND = Object.freeze({
  PING: KIND.PING, PONG: KIND.PONG, RECONNECT: KIND.RECONNECT, GOAWAY: KIND.GOAWAY,
  // Older peers hand SESSION to the application, which ignores it (docs/wire-format.md, section Sessions).
  SESSION: KIND.SESSION,
} as const);

/** A RECONNECT notice: the connection closes at `closeAt` (epoch seconds). */
export interface ReconnectNotice {
  /** Epoch second at which the server closes the connection. */
  readonly closeAt: number;
  /** Why (e.g. "client certificate expires"). */
  readonly reason: string;
}

/** A GOAWAY notice: no new calls on this connection; it closes within `timeout` seconds. */
export interface GoawayNotice {
  /** A `TW_` code: `TW_SESSION_CLOSED` for a drain, `TW_TOO_MANY_CONNECTIONS` for a refused connection. */
  readonly code: string;
  /** A sentence for people. */
  readonly message: string;
  /** Seconds until the server closes the connection. */
  readonly timeout: number;
}

/** Options shared by both ends: RpcProtocol's plus the heartbeat's. */
export type SessionProtocolOptions<S extends RpcSecurity = RpcSecurity> = RpcProtocolOptions<S> & {
  /** Seconds between PINGs. */
  heartbeatInterval?: number;
  /** Seconds of silence after which the peer is dropped with PeerTimeout. */
  idleTimeout?: number;
  /** Bytes the transport may hold before the connection is aborted with SlowConsumer. Default {@link MAX_WRITE_BUFFER} (8 MiB). */
  maxWriteBuffer?: number;
};

/** Options of a session's `notify`. Times are seconds. */
export interface ConnectionNotifyOptions {
  /** The message's lifetime (its expiry is now + ttl). Default the connection's `ttl`. */
  ttl?: number;
  /**
   * Latest-wins key (`true`: the method name). While writing is paused, the notification is held, and a newer one
   * with the same key replaces it; the held ones are sent when writing resumes, oldest key first. The value is
   * checked (encodable) at once and sent as it is then, so do not mutate a held object.
   */
  latest?: string | true;
}

/** @internal A latest-wins notification held while writing is paused (see {@link SessionProtocolBase.takeHeld}). */
export interface HeldNotification {
  /** Its latest-wins key. */
  readonly key: string;
  /** The notification's method. */
  readonly method: string;
  /** Its params, as given. */
  readonly params: unknown;
  /** Its lifetime, seconds (undefined: the connection's `ttl`). */
  readonly ttl: number | undefined;
}

/**
 * @internal Checks the heartbeat and write-buffer options once, where a session or a session server is made (the
 * protocols are made per connection: a bad value found there only refused every connection, with a misleading
 * error on the peer's side).
 * @throws RangeError naming the option
 */
export function checkSessionProtocolOptions(o: { heartbeatInterval?: number; idleTimeout?: number; maxWriteBuffer?: number }): void {
  for (const name of ['heartbeatInterval', 'idleTimeout', 'maxWriteBuffer'] as const) {
    const v = o[name];
    if (v !== undefined && !(v > 0)) throw new RangeError(`${name} must be a positive number${name === 'maxWriteBuffer' ? ' of bytes' : ' of seconds'}, got ${v}`);
  }
}

/** The shared base of the client ({@link SessionLink}) and server ({@link SessionConnection}) session protocols; not used directly. */
export abstract class SessionProtocolBase<S extends RpcSecurity = RpcSecurity> extends RpcProtocol<S> {
  /** The heartbeat state (RTT, silence), from `connectionMade` on. */
  heartbeat: Heartbeat | null = null;
  /**
   * Why this side ended the connection (PeerTimeout, a certificate cap, a drain), else null. MessageProtocol's own
   * `closeReason` (too many rejections, a framing error) is read too: see {@link whyEnded}.
   */
  endReason: Error | null = null;
  /** The loop, from `connectionMade` on. */
  loop: EventLoop | null = null;
  /** True once connectionLost ran. */
  isLost = false;
  /** True while the transport has paused writing (between its pauseWriting and resumeWriting). */
  writingPaused = false;
  /** Latest-wins notifications replaced by a newer one of their key while writing was paused (never sent). */
  superseded = 0;
  /**
   * Latest-wins notifications still held when the connection was aborted or lost (never sent). A graceful close
   * writes the held ones first, so only an abort (SlowConsumer, PeerTimeout) or a lost network drops them; a client
   * session sends its own on the next connection instead (docs/sessions.md, "Backpressure").
   */
  heldDropped = 0;
  /** The bound on the transport's buffer, bytes (SlowConsumer beyond it). */
  readonly maxWriteBuffer: number;
  readonly #interval: number | undefined;
  readonly #idle: number | undefined;
  #timer: HeartbeatTimer | null = null;
  // True while a SlowConsumer check is scheduled for after this iteration's flush.
  #checkScheduled = false;
  // Latest-wins notifications held while writing is paused, by key (Map order: the order their keys were first held).
  readonly #held = new Map<string, { method: string; params: unknown; ttl: number | undefined }>();

  constructor(options: SessionProtocolOptions<S>) {
    super(options);
    this.#interval = options.heartbeatInterval;
    this.#idle = options.idleTimeout;
    const max = options.maxWriteBuffer ?? MAX_WRITE_BUFFER;
    if (!(max > 0)) throw new RangeError(`maxWriteBuffer must be a positive number of bytes, got ${max}`);
    this.maxWriteBuffer = max;
  }

  /** Latest-wins notifications held now, waiting for writing to resume. */
  get held(): number {
    return this.#held.size;
  }

  /**
   * Sends notification `method` to the peer; with `latest`, held while writing is paused (latest-wins, see the
   * module doc). @throws TransportClosed when not connected; BadPayload when `params` cannot be encoded
   */
  override notify(method: string, params?: unknown, options: ConnectionNotifyOptions = {}): void {
    const { latest, ttl } = options;
    // Held only on an open connection: one that is closing refuses it (TransportClosed, below) like any other
    // message, instead of holding what could never be sent.
    if (latest !== undefined && this.writingPaused && this.#open()) {
      encode([method, params]); // BadPayload now, not when writing resumes
      const key = latest === true ? method : latest;
      if (this.#held.has(key)) this.superseded += 1;
      this.#held.set(key, { method, params, ttl });
      return;
    }
    super.notify(method, params, ttl !== undefined ? { ttl } : undefined);
    if (this.writingPaused) this.#checkBuffer();
  }

  /**
   * Sends like MessageProtocol's, and while writing is paused checks the transport's buffer against
   * `maxWriteBuffer` once this iteration's messages are written: replies, calls, control and application messages
   * count toward the bound as notifications do.
   */
  override sendMessage(message: unknown, options?: SendOptions): number {
    const seq = super.sendMessage(message, options);
    if (this.writingPaused) this.#checkSoon();
    return seq;
  }

  /** Writes the held latest-wins notifications, then closes as MessageProtocol's `close` does (flush, close_notify). */
  override close(): void {
    this.flushHeld();
    super.close();
  }

  /**
   * Writes the held latest-wins notifications now, even while writing is paused (before a GOAWAY or a close: the
   * peer may close as soon as it reads the GOAWAY, so they must be ahead of it).
   */
  flushHeld(): void {
    if (this.#held.size > 0 && this.#open()) this.#sendHeld(false);
  }

  /**
   * @internal Takes the held latest-wins notifications (oldest key first), leaving none: a client session moves
   * those of a lost connection to the next one.
   */
  takeHeld(): HeldNotification[] {
    const out = [...this.#held].map(([key, h]) => ({ key, ...h }));
    this.#held.clear();
    return out;
  }

  /** @internal Forgets the held notification of `key` (a newer one went out on another connection); true if one was held. */
  dropHeld(key: string): boolean {
    if (!this.#held.delete(key)) return false;
    this.superseded += 1;
    return true;
  }

  /** The transport's buffer passed the high-water mark: latest-wins notifications are held from now on. */
  override pauseWriting(): void {
    super.pauseWriting();
    this.writingPaused = true;
    this.#checkBuffer();
  }

  /** The transport's buffer drained to the low-water mark: the held notifications go out (until it pauses again). */
  override resumeWriting(): void {
    super.resumeWriting();
    this.writingPaused = false;
    if (this.#open()) this.#sendHeld(true);
  }

  // Sends the held notifications, oldest key first (until writing pauses again, when `untilPaused`).
  #sendHeld(untilPaused: boolean): void {
    for (const [key, h] of this.#held) {
      if ((untilPaused && this.writingPaused) || this.isLost) break;
      this.#held.delete(key);
      try {
        super.notify(h.method, h.params, h.ttl !== undefined ? { ttl: h.ttl } : undefined);
      } catch {
        this.heldDropped += 1;
        break; // closing under us: connectionLost counts the rest
      }
    }
  }

  // Open: connected, not closing, not lost.
  #open(): boolean {
    const t = this.transport;
    return t !== null && !t.isClosing() && !this.isLost;
  }

  // One buffer check after this iteration's flush (a callSoon runs in the next iteration, after the deferred flush).
  #checkSoon(): void {
    const loop = this.loop;
    if (this.#checkScheduled || loop === null) return;
    this.#checkScheduled = true;
    loop.callSoon(() => {
      this.#checkScheduled = false;
      if (this.writingPaused) this.#checkBuffer();
    });
  }

  // Aborts the connection when the transport holds more than maxWriteBuffer (checked only while writing is paused).
  #checkBuffer(): void {
    const t = this.transport;
    if (t === null || this.isLost) return;
    const buffered = t.getWriteBufferSize();
    if (buffered > this.maxWriteBuffer) {
      this.closeFor(new SlowConsumer(`the peer stopped reading: ${buffered} bytes waiting to be written, more than maxWriteBuffer (${this.maxWriteBuffer})`,
        { buffered, limit: this.maxWriteBuffer }), true);
    }
  }

  /** Smoothed round-trip time, seconds, or null before the first PONG. */
  get rtt(): number | null {
    return this.heartbeat?.rtt ?? null;
  }

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    const loop = transport.getLoop() as unknown as EventLoop;
    this.loop = loop;
    const hb = new Heartbeat({ clock: loop.clock, ...(this.#interval !== undefined ? { interval: this.#interval } : {}),
      ...(this.#idle !== undefined ? { idleTimeout: this.#idle } : {}) });
    this.heartbeat = hb;
    this.#timer = new HeartbeatTimer(hb, loop, {
      sendPing: (id) => {
        this.sendControl(SESSION_KIND.PING, [id]);
        this.heartbeatTick();
      },
      onTimeout: (err) => this.closeFor(this.#explainSilence(err), true),
    });
    this.#timer.start();
  }

  // Rejections counted when the peer last proved alive: a peer that keeps sending, all of it refused, is not silent.
  #rejectedAtAlive = 0;

  // A PeerTimeout for a peer whose messages all failed their checks says so: "silent" alone sent a developer with a
  // wrong shared key looking at the network (a game developer's trial).
  #explainSilence(err: PeerTimeout): PeerTimeout {
    const refused = this.stats.rejected - this.#rejectedAtAlive;
    const last = this.stats.lastRejection;
    if (refused === 0 || last == null) return err;
    const hint = last.code === 'TW_BAD_SIGNATURE' || last.code === 'TW_UNKNOWN_KEY_ID' ? ' (the two ends do not share the same keyring?)' : '';
    return new PeerTimeout(`${err.message}: nothing it sent in that time verified, ${refused} messages refused, the last ${last.code} ${last.message}${hint}`);
  }

  override messageReceived(message: unknown, meta: MessageMeta): void {
    this.#rejectedAtAlive = this.stats.rejected;
    this.heartbeat?.received();
    super.messageReceived(message, meta);
  }

  override duplicateNonce(message: unknown, meta: MessageMeta): boolean {
    this.#rejectedAtAlive = this.stats.rejected;
    this.heartbeat?.received();
    return super.duplicateNonce(message, meta);
  }

  override otherMessageReceived(message: unknown, meta: MessageMeta): void {
    switch (meta.kind) {
      case SESSION_KIND.PING: {
        const id = pingId(message);
        if (id === null) this.rejectMessage(new BadPayload('a PING payload must be [id]'));
        else this.sendControl(SESSION_KIND.PONG, [id]);
        return;
      }
      case SESSION_KIND.PONG: {
        const id = pingId(message);
        if (id === null) this.rejectMessage(new BadPayload('a PONG payload must be [id]'));
        else this.heartbeat?.pong(id);
        return;
      }
      case SESSION_KIND.RECONNECT: {
        if (!Array.isArray(message) || message.length !== 2 || typeof message[0] !== 'number' || typeof message[1] !== 'string') {
          this.rejectMessage(new BadPayload('a RECONNECT payload must be [closeAt, reason]'));
          return;
        }
        this.reconnectReceived({ closeAt: message[0], reason: message[1] }, meta);
        return;
      }
      case SESSION_KIND.SESSION:
        this.sessionReceived(message, meta);
        return;
      case SESSION_KIND.GOAWAY: {
        if (!Array.isArray(message) || message.length !== 3 || typeof message[0] !== 'string'
          || typeof message[1] !== 'string' || typeof message[2] !== 'number') {
          this.rejectMessage(new BadPayload('a GOAWAY payload must be [code, message, timeout]'));
          return;
        }
        this.goawayReceived({ code: message[0], message: message[1], timeout: message[2] }, meta);
        return;
      }
      default:
        this.appMessageReceived(message, meta);
    }
  }

  override connectionLost(exc: Error | null): void {
    this.isLost = true;
    this.#timer?.stop();
    this.heldDropped += this.#held.size;
    this.#held.clear();
    super.connectionLost(exc);
  }

  /** Why the connection ended or is ending, as far as this side knows (null: the peer or the network closed it). */
  whyEnded(): Error | null {
    return this.endReason ?? this.closeReason;
  }

  /** Sends a control message; a closed connection is ignored (it is going away anyway). */
  sendControl(kind: number, payload: unknown[]): boolean {
    try {
      this.sendMessage(payload, { kind });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Ends the connection for `reason` (kept as {@link endReason}): `abort` drops it at once (a dead peer),
   * otherwise the peer's requests still running here (not idempotent) are answered with TW_TRANSPORT_CLOSED naming
   * `reason` and cancelled (RpcEndpoint.interruptRunning), the messages sent so far are flushed and TLS
   * close_notify is sent.
   */
  closeFor(reason: Error, abort = false): void {
    if (this.endReason === null) this.endReason = reason;
    if (abort) {
      this.abort();
      return;
    }
    // The peer's calls still running here are answered with the reason before the close (RpcEndpoint.interruptRunning).
    this.rpc?.interruptRunning(reason.message);
    this.close();
  }

  /**
   * Runs once per heartbeat interval, right after each PING is sent (so only while the heartbeat runs). The loop's
   * timers run on monotonic time, but a certificate's notAfter is wall time: after a step of the wall clock (an NTP
   * correction, a VM resumed from a pause) a timer armed for a notAfter fires late, so the subclasses re-check their
   * wall-clock deadlines here. Default: nothing.
   */
  heartbeatTick(): void {}

  /** A RECONNECT notice arrived. Default: ignored (servers never get one). */
  reconnectReceived(_notice: ReconnectNotice, _meta: MessageMeta): void {}

  /** A SESSION message arrived (its shape is the subclass's to check: it differs by direction). Default: ignored. */
  sessionReceived(_message: unknown, _meta: MessageMeta): void {}

  /** A GOAWAY notice arrived. Default: ignored. */
  goawayReceived(_notice: GoawayNotice, _meta: MessageMeta): void {}

  /** A verified message of an application kind (16 and up). Default: ignored. */
  appMessageReceived(_message: unknown, _meta: MessageMeta): void {}
}

function pingId(message: unknown): number | null {
  if (!Array.isArray(message) || message.length !== 1) return null;
  const id = message[0] as unknown;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 ? id : null;
}
