/**
 * MessageProtocol: signed, expiring, replay-proof msgpack messages as a Protocol.
 *
 * Inbound, per `dataReceived` chunk: frames ({@link FrameDecoder}) → header parse and key lookup → one batched MAC
 * check for every complete frame → expiry with skew → per-connection sequence window → nonce store (when one is
 * configured) → msgpack decode and shape check → `messageReceived(message, meta)`. Outbound: `sendMessage` encodes
 * (refusing with BadPayload, nothing sent, what the peer's decoder would refuse: the `encode` option) and appends to
 * the iteration's batch; at the end of the loop iteration (`loop.deferToIterationEnd`) the batch is
 * MACed in one call and written with one `transport.write`.
 *
 * Failure policy (bad input loses nothing but itself): a bad message is rejected on its own (`messageRejected(error)`) and the connection
 * keeps serving; the messages around it are delivered. After `maxRejections` rejections the connection is closed
 * with the reason logged (and kept in {@link MessageProtocol.closeReason}). A framing error (`FrameTooLarge`) is
 * fatal: the stream is out of sync, so the connection closes at once. Once this end decides to close, nothing
 * received after the deciding frame is checked further, reserved in the nonce store or delivered. A nonce store that
 * fails (with any error) refuses the message as StoreUnavailable or ReplayCacheFull, not counted towards
 * `maxRejections`. When the peer ends its stream, the messages already received are still delivered, and the replies
 * still being computed for them (RpcProtocol: running handlers) are awaited for up to `eofTimeout` seconds and sent,
 * before this end closes ({@link MessageProtocol.eofReceived}).
 *
 * @module
 */
import {
  BadData, FrameTooLarge, ReplayCacheFull, ReplayedMessage, SignatureExpired, StoreUnavailable, TimeoutError, TransportClosed,
  TransportError, TulipError,
} from '../errors.js';
import { CLOCK_SKEW, MAX_FRAME_SIZE, MAX_REJECTIONS, MESSAGE_TTL, RPC_TIMEOUT } from '../constants.js';
import { systemClock } from '../loop/clock.js';
import type { Clock } from '../loop/clock.js';
import { ProtocolBase } from '../net/protocols.js';
import { holdReading, releaseReading } from '../net/transports.js';
import type { Transport } from '../net/transports.js';
import { BINARY_VIEW_THRESHOLD, decode, decodeWithView } from './codec.js';
import type { DecodeOptions, EncodeOptions } from './codec.js';
import { KIND } from './envelope.js';
import { FrameDecoder } from './frames.js';
import { TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH } from './keyring.js';
import type { Keyring } from './keyring.js';
import type { MacEngine } from './mac.js';
import { defaultMacEngine } from './mac-native.js';
import { KeySchedule, Opener, Sealer } from './signing.js';
import type { MessageMeta } from './signing.js';
import type { NonceStore } from './stores.js';

/** Longest message lifetime a receiver accepts by default, seconds (bounds how long nonces are remembered). */
export const MAX_MESSAGE_TTL = 300;
/**
 * Inbound messages allowed to wait for an asynchronous nonce store before the protocol pauses reading (and resumes
 * once half of them are delivered), so a flood cannot grow the queue without bound while Redis is slow. Rejections
 * queued among them (to be reported in arrival order) count too.
 */
export const MAX_PENDING_RESERVATIONS = 4096;

/**
 * How long, after the peer ended its stream, this end waits for the replies still being computed (running RPC
 * handlers) before it closes without them, seconds: the default RPC call timeout ({@link RPC_TIMEOUT}, 30 s),
 * after which a tulipwire caller has given up on the reply anyway.
 */
export const EOF_TIMEOUT = RPC_TIMEOUT;

/**
 * Seconds a nonce is remembered beyond the last instant its message is accepted (`expiresAt + skew`, included): one
 * millisecond, the unit of the envelope's times, so a replay at that very instant still finds the nonce.
 */
const NONCE_MARGIN = 0.001;

/** Smallest frame body (bytes) worth waiting one chunk for, to MAC it together with the next frame. */
const PAIR_MIN = 4096;

/** Where MessageProtocol reports closes and rejections: a structured logger hook, silent when you pass `{}`. */
export interface WireLogger {
  /** A connection closed for a reason (too many rejections, a framing error). */
  warn?(message: string, fields: Record<string, unknown>): void;
  /** A message was rejected (the default `messageRejected` logs here). */
  info?(message: string, fields: Record<string, unknown>): void;
}

/** The default logger: warnings and rejections to `console.warn`. */
export const consoleWireLogger: WireLogger = {
  warn: (message, fields) => console.warn(`tulipwire: ${message}`, fields),
  info: (message, fields) => console.warn(`tulipwire: ${message}`, fields),
};

/** Options of a {@link MessageProtocol}. */
export interface MessageProtocolOptions {
  /** The message keys (shared with the peer). */
  keyring: Keyring;
  /** Which end this is: it selects the direction keys (a client sends c2s and receives s2c). */
  side: 'client' | 'server';
  /**
   * A replay cache for nonces, for messages that must not be accepted twice across connections or processes.
   * Default none: replay within a connection is stopped by the sequence window alone.
   */
  nonceStore?: NonceStore;
  /** Clock for issuedAt/expiry (its `epoch()`). Default the transport's loop clock, else the system clock. */
  clock?: Clock;
  /** Default lifetime of sent messages, seconds (default {@link MESSAGE_TTL}). */
  ttl?: number;
  /** Clock skew allowed when checking times, seconds (default {@link CLOCK_SKEW}). */
  skew?: number;
  /**
   * Longest lifetime accepted on received messages, seconds (default {@link MAX_MESSAGE_TTL}); `sendMessage` refuses
   * a longer `ttl` (RangeError), as a peer with the same setting would refuse the message.
   */
  maxTtl?: number;
  /** Rejected messages tolerated before the connection is closed (default {@link MAX_REJECTIONS}). */
  maxRejections?: number;
  /**
   * Largest frame accepted, bytes (default {@link MAX_FRAME_SIZE}). Also the largest this end sends, as its best guess
   * of the peer's (the same by default): `sendMessage` refuses a message whose frame would exceed it (BadPayload),
   * which the peer would refuse fatally, closing the connection.
   */
  maxFrameSize?: number;
  /**
   * After the peer ended its stream, the longest wait for the replies still being computed (see
   * {@link MessageProtocol.owedReplies}), seconds (default {@link EOF_TIMEOUT}, 30). When it runs out, this end closes
   * without them: `closeReason` is a TimeoutError and the reason is logged. 0 closes as soon as the messages already
   * received are delivered.
   */
  eofTimeout?: number;
  /**
   * Bind the message keys to the TLS session (RFC 5705 exporter `EXPORTER-tulipwire-binding`, 32 bytes, as HKDF
   * salt), so a message cannot be replayed onto another connection. `'auto'` (default): bind when the transport
   * offers `exportKeyingMaterial` (every TLS transport). `true` requires it. Both ends must agree.
   */
  bindToTls?: boolean | 'auto';
  /** Where closes and rejections are logged (default {@link consoleWireLogger}; `{}` is silent). */
  logger?: WireLogger;
  /** Limits and allowances for decoding payloads (see codec.ts). */
  decode?: DecodeOptions;
  /**
   * What `sendMessage` may send beyond plain data, and its limits (see `EncodeOptions` in codec.ts). Default: exactly
   * what a peer with the default `decode` options accepts, so a message it would refuse throws BadPayload here.
   * Loosen it (`{allowDate: true}`, a larger `maxDepth`) only together with the peer's `decode` options.
   */
  encode?: EncodeOptions;
  /** The MAC engine (default native when built, else pure JS; identical bytes). */
  engine?: MacEngine;
}

/** Options of {@link MessageProtocol.sendMessage}. */
export interface SendOptions {
  /** Lifetime, seconds (default the protocol's `ttl`). */
  ttl?: number;
  /** Envelope kind, 1..255 (default `KIND.MESSAGE`, 16). */
  kind?: number;
  /** The 16-byte nonce to use (an idempotent retry reuses its first nonce); default fresh random bytes. */
  nonce?: Uint8Array;
  /**
   * Latest expiry, epoch seconds: the message's `expiresAt` is capped there (an idempotent retry passes its first
   * attempt's, so the retry never outlives the nonce the peer remembers). One before now is a RangeError (the
   * message would arrive expired), with nothing sent.
   */
  notAfter?: number;
}

/** What {@link MessageProtocol.messageRejected} receives: bad peer input, or a nonce store failing closed. */
export type RejectionError = BadData | ReplayCacheFull | StoreUnavailable;

/** Counters of one connection. */
export interface MessageStats {
  /** Messages sent (appended). */
  sent: number;
  /** Messages delivered to `messageReceived`. */
  received: number;
  /** Messages rejected (every call of `messageRejected`). */
  rejected: number;
  /** Messages answered by `duplicateNonce`. */
  duplicates: number;
  /** The last rejection's error (its `code` says which check failed), or null. */
  lastRejection?: RejectionError | null;
}

/** The part of the loop MessageProtocol uses (the transport's `getLoop()`). */
interface LoopHooks {
  callSoon(cb: () => void): unknown;
  callLater(delay: number, cb: () => void): { cancel(): void };
  deferToIterationEnd?(cb: () => void): void;
  callExceptionHandler?(context: Record<string, unknown>): void;
  clock?: Clock;
}

// One queued inbound item, when a nonce store makes delivery asynchronous. state: 0 waiting for the store,
// 1 ready to deliver, 2 duplicate nonce, 3 rejected (err set).
interface Pending {
  meta: MessageMeta;
  buf: Buffer | null;
  start: number;
  end: number;
  state: number;
  err: RejectionError | null;
}

/**
 * A Protocol that sends and receives signed messages. Subclass it, override {@link messageReceived} (and
 * optionally {@link messageRejected}, {@link duplicateNonce}), and call {@link sendMessage}.
 *
 * Subclasses that override `connectionMade`, `dataReceived`, `eofReceived` or `connectionLost` must call `super`. Close with
 * {@link close} (not `transport.close()`), so the messages of the current iteration are flushed first.
 *
 * Delivery order is arrival order, also when the nonce store is asynchronous (Redis): later messages wait for
 * earlier reservations. An exception thrown by `messageReceived` goes to the loop's exception handler and does not
 * stop the other messages of the chunk.
 */
export abstract class MessageProtocol extends ProtocolBase {
  /** Default lifetime of sent messages, seconds. */
  readonly ttl: number;
  /** Clock skew allowance, seconds. */
  readonly skew: number;
  /** Rejections tolerated before closing. */
  readonly maxRejections: number;
  /** The keyring. */
  readonly keyring: Keyring;
  /** 'client' or 'server'. */
  readonly side: 'client' | 'server';
  /** The nonce store, if any. */
  readonly nonceStore: NonceStore | null;
  /**
   * Why this end closed the connection, or null: the rejection that made it close (too many rejections, a framing
   * error), or a TimeoutError when replies owed after the peer ended its stream outlasted `eofTimeout`.
   */
  closeReason: TulipError | null = null;
  /** Longest wait for owed replies after the peer ended its stream, seconds (the `eofTimeout` option). */
  readonly eofTimeout: number;
  /** Counters of this connection. */
  readonly stats: MessageStats = { sent: 0, received: 0, rejected: 0, duplicates: 0, lastRejection: null };

  readonly #opts: MessageProtocolOptions;
  readonly #maxTtl: number;
  readonly #engine: MacEngine;
  readonly #logger: WireLogger;
  readonly #decodeOptions: DecodeOptions | undefined;
  readonly #decoder: FrameDecoder;
  #clock: Clock;
  #loop: LoopHooks | null = null;
  #peer: unknown = null;
  #sealer: Sealer | null = null;
  #opener: Opener | null = null;
  #flushScheduled = false;
  #closing = false;
  #lost = false;
  // Inbound items waiting behind an asynchronous nonce reservation; empty when nothing is in flight.
  #queue: Pending[] = [];
  #drainScheduled = false;
  // True once the peer ended its stream (eofReceived): #finishAfterEof closes once #queue is delivered and nothing
  // is owed (owedReplies), or when #eofTimer fires.
  #eof = false;
  #eofTimer: { cancel(): void } | null = null;
  #bound = false;
  // True while reading is paused because too many messages wait for the nonce store.
  #readingPaused = false;
  // Rejections that were the peer's fault (BadData), compared with maxRejections when each is reported.
  #peerRejections = 0;
  // The same, counted when each is decided (on arrival, also those queued behind a nonce reservation). Once it
  // reaches maxRejections, or a fatal one is decided, the connection is doomed: nothing that arrived after the
  // deciding frame is checked further, reserved or delivered, and the queued items before it are reported, in order,
  // until the deciding one closes the connection.
  #decided = 0;
  #doomed = false;
  readonly #halt = (): boolean => this.#doomed || this.#closing || this.#lost;
  readonly #flush = (): void => this.#doFlush();
  readonly #accept = (meta: MessageMeta, buf: Buffer, start: number, end: number): void => this.#onVerified(meta, buf, start, end);
  readonly #reject = (err: BadData): void => this.#enqueueReject(err);
  // The last frame added: a lone large frame assembled across chunks may wait for the next chunk (see dataReceived).
  #lastBuf: Buffer | null = null;
  #lastLen = 0;
  // The transport's "more data follows at once" probe, when it has one (socket transports).
  #more: { _deliversMoreNow(): boolean } | null = null;
  readonly #addFrame = (buf: Buffer, start: number, end: number): void => {
    this.#lastBuf = buf;
    this.#lastLen = end - start;
    this.#opener!.add(buf, start, end);
  };

  /** @throws RangeError for invalid options. */
  constructor(options: MessageProtocolOptions) {
    super();
    if (options === null || typeof options !== 'object' || options.keyring === undefined) {
      throw new TypeError('MessageProtocol needs options with a keyring');
    }
    if (options.side !== 'client' && options.side !== 'server') throw new TypeError("side must be 'client' or 'server'");
    this.#opts = options;
    this.#maxTtl = options.maxTtl ?? MAX_MESSAGE_TTL;
    this.keyring = options.keyring;
    this.side = options.side;
    this.nonceStore = options.nonceStore ?? null;
    this.ttl = options.ttl ?? MESSAGE_TTL;
    this.skew = options.skew ?? CLOCK_SKEW;
    this.maxRejections = options.maxRejections ?? MAX_REJECTIONS;
    this.eofTimeout = options.eofTimeout ?? EOF_TIMEOUT;
    if (!(this.ttl >= 0) || !(this.skew >= 0) || !(this.maxRejections >= 1)) {
      throw new RangeError('ttl and skew must be >= 0 and maxRejections >= 1');
    }
    if (!(this.eofTimeout >= 0 && this.eofTimeout < Infinity)) {
      throw new RangeError(`eofTimeout must be a finite number of seconds >= 0, got ${String(options.eofTimeout)}`);
    }
    this.#engine = options.engine ?? defaultMacEngine();
    this.#logger = options.logger ?? consoleWireLogger;
    // Frames are Node's read chunks or reassembly buffers, never written again: large byte strings can be views.
    this.#decodeOptions = { binaryViewThreshold: BINARY_VIEW_THRESHOLD, ...options.decode };
    this.#decoder = new FrameDecoder({ maxFrameSize: options.maxFrameSize ?? MAX_FRAME_SIZE });
    this.#clock = options.clock ?? systemClock;
  }

  /** The verified TLS peer (`transport.getExtraInfo('peerIdentity')`), or null. */
  get peer(): unknown {
    return this.#peer;
  }

  /** The clock times are checked with. */
  get clock(): Clock {
    return this.#clock;
  }

  /** True when the message keys of this connection are bound to its TLS session (known after `connectionMade`). */
  get tlsBound(): boolean {
    return this.#bound;
  }

  /** The MAC engine in use. */
  get macEngine(): MacEngine {
    return this.#engine;
  }

  /**
   * Sets up the connection's keys (binding them to TLS when configured) and remembers the peer identity.
   * @throws TransportError when `bindToTls: true` but the transport has no `exportKeyingMaterial`.
   */
  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    const loop = transport.getLoop() as unknown as LoopHooks;
    this.#loop = loop;
    if (this.#opts.clock === undefined && loop.clock !== undefined) this.#clock = loop.clock;
    this.#peer = transport.getExtraInfo('peerIdentity', null) ?? null;
    const probe = transport as unknown as { _deliversMoreNow?: unknown };
    this.#more = typeof probe._deliversMoreNow === 'function' ? (transport as unknown as { _deliversMoreNow(): boolean }) : null;
    const mode = this.#opts.bindToTls ?? 'auto';
    let binding: Buffer | null = null;
    if (mode !== false) {
      const ekm = transport.getExtraInfo('exportKeyingMaterial', null) as
        ((length: number, label: string, context?: Buffer) => Buffer) | null;
      if (typeof ekm === 'function') {
        binding = ekm(TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL);
      } else if (mode === true) {
        throw new TransportError('bindToTls: true needs a TLS transport (no exportKeyingMaterial on this one)');
      }
    }
    this.#bound = binding !== null;
    const schedule = new KeySchedule({ keyring: this.keyring, side: this.side, engine: this.#engine, binding });
    this.#sealer = new Sealer({ schedule, engine: this.#engine, clock: this.#clock, maxFrameSize: this.#decoder.maxFrameSize,
      ...(this.#opts.encode !== undefined ? { encode: this.#opts.encode } : {}) });
    this.#opener = new Opener({ schedule, engine: this.#engine, clock: this.#clock, skew: this.skew,
      maxTtl: this.#maxTtl });
  }

  /**
   * Frames, verifies and delivers the messages of `data`. Subclasses that override it call `super.dataReceived(data)`.
   * Byte strings of 4 KiB and more in the delivered messages are views of `data` (see `decode.binaryViewThreshold`),
   * so a caller feeding its own buffers must not write to them afterwards (Node's read chunks are never reused).
   * One exception to "delivered within this call": when `data` completes only one frame of 4 KiB or more that was
   * assembled across chunks, and the transport already holds the next chunk (it delivers it right after this call,
   * with no other callback in between), that message is delivered during the next call, MACed together with the next
   * chunk's frames. Order and content are unchanged.
   */
  override dataReceived(data: Buffer): void {
    if (this.#closing || this.#doomed || this.#lost || this.#opener === null) return;
    let fatal: FrameTooLarge | null = null;
    try {
      this.#decoder.feedRanges(data, this.#addFrame);
    } catch (e) {
      if (!(e instanceof FrameTooLarge)) throw e;
      fatal = e;
    }
    // A chunk that completed only one large frame, assembled across chunks, while the transport already holds the
    // next chunk: the frame waits for that chunk's frames (delivered next, with no callback in between), so the two
    // are MACed together (SHA-256 two at a time: ~25% less MAC time per 16 KiB message). Order is unchanged.
    const op = this.#opener;
    if (fatal === null && op.pending === 1 && this.#lastLen >= PAIR_MIN && this.#lastBuf !== data
      && this.#more !== null && this.#more._deliversMoreNow()) return;
    this.#lastBuf = null;
    // The complete frames before a framing error are still verified and delivered; none after a closing decision.
    op.run(this.#accept, this.#reject, this.#halt);
    if (fatal !== null) {
      this.#enqueueReject(fatal);
    }
  }

  /**
   * The peer ended its stream (TLS close_notify, or FIN): every message already received is still verified, delivered
   * and answered (also those waiting for an asynchronous nonce store), and the replies still being computed
   * ({@link owedReplies}: RpcProtocol's running handlers) are awaited and sent, for at most `eofTimeout` seconds;
   * what was sent is flushed, then this end closes (returns true: this protocol closes the transport itself, after
   * the flush). At the timeout it closes without the missing replies, with a TimeoutError as `closeReason` and a
   * logged reason (RpcProtocol's connectionLost then aborts the handlers' `ctx.signal`). An incomplete frame left in
   * the buffer is dropped, and logged. Subclasses that override it call `super.eofReceived()` and return its result.
   */
  override eofReceived(): boolean | void {
    const partial = this.#decoder.buffered;
    if (partial > 0 && !this.#closing) {
      this.#log('warn', `the peer ended the stream inside a frame: ${partial} bytes of an incomplete frame dropped`,
        { side: this.side, peer: this.#peer, buffered: partial });
    }
    this.#decoder.reset();
    // This end closes itself, after its replies: a close() by the transport would drop the replies batched in this
    // iteration (the batch is written at the iteration's end, when the transport is already closing).
    this.#eof = true;
    this.#finishAfterEof();
    return true;
  }

  /** Forgets pending inbound messages and unsent outbound ones. Subclasses that override it call `super`. */
  override connectionLost(_exc: Error | null): void {
    this.#lost = true;
    this.#eofTimer?.cancel();
    this.#eofTimer = null;
    this.#lastBuf = null;
    this.#opener?.discard();
    this.#queue = [];
    this.#decoder.reset();
  }

  /**
   * Signs and sends `message` (msgpack-encoded) with the current signing key. Messages sent in one loop iteration
   * are MACed together and written once at the end of the iteration. Returns the message's sequence number on this
   * connection (the receiver's `meta.seq`). To know the nonce (to log it, or to retry idempotently with it), choose
   * it: `sendMessage(m, { nonce: randomNonce() })`.
   * @throws TransportClosed when the connection is not open (before connectionMade, after close or loss); BadPayload when the message cannot
   *   be encoded, or holds what the peer would refuse (a Date, Map, bigint, class instance, NaN, too deep…: see the `encode`
   *   option and codec.ts `encode`; a frame over `maxFrameSize`), with nothing sent; RangeError for a bad ttl (negative, NaN, or over `maxTtl`), kind or nonce, or when the keyring has no signing key.
   */
  sendMessage(message: unknown, options?: SendOptions): number {
    const sealer = this.#sealer;
    if (sealer === null || this.#closing || this.#lost || this.transport === null || this.transport.isClosing()) {
      throw new TransportClosed('cannot send: the connection is not open');
    }
    const na = options?.notAfter;
    const ttl = options?.ttl ?? this.ttl;
    // A lifetime the peer would refuse (its maxTtl; this end's is the best guess, the same by default) is refused
    // here, where it was written, instead of arriving as a counted TW_MALFORMED_ENVELOPE.
    if (ttl > this.#maxTtl) throw new RangeError(`ttl ${ttl} s is over maxTtl ${this.#maxTtl} s: the peer would refuse the message`);
    const seq = sealer.appendValue(message, options?.kind ?? KIND.MESSAGE, ttl, options?.nonce,
      na === undefined ? undefined : Math.floor(na * 1000));
    this.stats.sent++;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      const loop = this.#loop!;
      if (typeof loop.deferToIterationEnd === 'function') loop.deferToIterationEnd(this.#flush);
      else loop.callSoon(this.#flush);
    }
    return seq;
  }

  /** @internal The `expiresAt` (epoch seconds) written into the last message sent; 0 before the first. */
  get _lastExpiresAt(): number {
    return (this.#sealer?.lastExpiresMs ?? 0) / 1000;
  }

  /** Signs and writes everything sent so far now, instead of at the end of the iteration. */
  flush(): void {
    this.#doFlush();
  }

  /** Flushes the messages sent so far, then closes the transport (TLS close_notify after the data). Idempotent. */
  close(): void {
    if (this.transport === null) return;
    this.#doFlush();
    this.#closing = true;
    this.transport.close();
  }

  /** Closes at once, dropping unsent messages. */
  abort(): void {
    this.#closing = true;
    this.transport?.abort();
  }

  /** Called with each verified, fresh, decoded message, in arrival order. Override it. */
  messageReceived(_message: unknown, _meta: MessageMeta): void {}

  /**
   * Called for each rejected message, with the reason (its `code` says which check failed). The default logs it.
   * Counting toward `maxRejections` and closing happen whether or not this is overridden.
   */
  messageRejected(error: RejectionError): void {
    this.#log('info', `rejected a message: ${error.code} ${error.message}`, { code: error.code, side: this.side, peer: this.#peer });
  }

  /**
   * Called instead of rejecting with ReplayedMessage when a valid, fresh message's nonce was already reserved
   * (a retry on a new connection, or a cross-connection replay). Return true when handled (e.g. RPC answers from
   * its idempotency cache); false rejects it with ReplayedMessage. The default returns false.
   */
  duplicateNonce(_message: unknown, _meta: MessageMeta): boolean {
    return false;
  }

  /**
   * Replies this end still owes the peer for messages already delivered: work that will send something when it
   * finishes (RpcProtocol: requests whose handlers are running). After the peer ended its stream the connection stays
   * open while this is above 0, for at most `eofTimeout` seconds. The default is 0. A subclass that overrides it calls
   * {@link repliesSettled} whenever it may have dropped.
   */
  protected get owedReplies(): number {
    return 0;
  }

  /**
   * Tells the protocol that {@link owedReplies} may have dropped (call it after sending the reply): once the peer has
   * ended its stream and nothing more is owed, this end flushes and closes. Does nothing otherwise.
   */
  protected repliesSettled(): void {
    this.#finishAfterEof();
  }

  /**
   * Rejects an inbound message from a subclass (e.g. an RPC request with a malformed shape): reported to
   * `messageRejected` and counted toward `maxRejections` like any other rejection.
   */
  rejectMessage(error: BadData): void {
    this.#rejectNow(error);
  }

  // ---- internals ------------------------------------------------------------------------------------------------

  #doFlush(): void {
    this.#flushScheduled = false;
    const sealer = this.#sealer;
    const t = this.transport;
    if (sealer === null || t === null || this.#lost) return;
    if (t.isClosing()) {
      sealer.flush(() => undefined);
      return;
    }
    sealer.flush((bytes) => t.write(bytes));
  }

  #onVerified(meta: MessageMeta, buf: Buffer, start: number, end: number): void {
    meta.peer = this.#peer;
    const store = this.nonceStore;
    if (store === null) {
      if (this.#queue.length === 0) {
        this.#deliver(meta, buf, start, end, false);
        return;
      }
      this.#queue.push({ meta, buf, start, end, state: 1, err: null });
      return;
    }
    const item: Pending = { meta, buf, start, end, state: 0, err: null };
    this.#queue.push(item);
    this.#boundQueue();
    // The nonce must be remembered as long as the message could still be accepted: through expiresAt + skew, that
    // instant included (the time check accepts now == expiresAt + skew, and a store forgets an entry at its expiry),
    // so one millisecond (the wire's time unit) more.
    const ttl = Math.max(0, meta.expiresAt + this.skew - this.#clock.epoch()) + NONCE_MARGIN;
    let p: Promise<boolean>;
    try {
      p = store.reserve(meta.nonce, ttl);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (fresh) => {
        item.state = fresh ? 1 : 2;
        this.#scheduleDrain();
      },
      (err: unknown) => {
        item.state = 3;
        // A store that fails with anything but its own typed errors still failed, not the peer: the message is
        // refused as StoreUnavailable (fail closed), which does not count towards maxRejections.
        item.err = err instanceof ReplayCacheFull || err instanceof StoreUnavailable
          ? (err as RejectionError)
          : new StoreUnavailable(`the nonce store failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        this.#scheduleDrain();
      },
    );
  }

  // Pauses reading while more than MAX_PENDING_RESERVATIONS items wait behind a reservation: verified messages and
  // the rejections queued among them alike (TW_SIGNATURE_EXPIRED on TLS-bound keys is not counted towards
  // maxRejections, so without this a peer could queue those without end while the store is slow).
  #boundQueue(): void {
    if (this.#queue.length > MAX_PENDING_RESERVATIONS && !this.#readingPaused && this.transport !== null) {
      this.#readingPaused = true;
      // A hold of its own, not pauseReading(): the user's pause (application backpressure) must survive the drain.
      holdReading(this.transport, this);
    }
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled || this.#lost) return;
    this.#drainScheduled = true;
    // Store replies arrive in Node I/O callbacks; deliver inside a loop iteration like every protocol callback.
    this.#loop!.callSoon(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    const q = this.#queue;
    let i = 0;
    while (i < q.length && !this.#lost) {
      const it = q[i]!;
      if (it.state === 0) break;
      i++;
      if (it.state === 3) this.#rejectNow(it.err!, true);
      else this.#deliver(it.meta, it.buf!, it.start, it.end, it.state === 2);
      it.buf = null;
    }
    if (i > 0) q.splice(0, i);
    if (this.#eof && q.length === 0 && !this.#lost) {
      this.#finishAfterEof();
      return;
    }
    if (this.#readingPaused && q.length <= MAX_PENDING_RESERVATIONS / 2 && !this.#lost) {
      this.#readingPaused = false;
      if (this.transport !== null) releaseReading(this.transport, this);
    }
  }

  #enqueueReject(err: RejectionError): void {
    if (this.#queue.length === 0) {
      this.#rejectNow(err);
      return;
    }
    if (this.#counts(err)) this.#decide(err as BadData);
    this.#queue.push({ meta: null as unknown as MessageMeta, buf: null, start: 0, end: 0, state: 3, err });
    this.#boundQueue();
  }

  #deliver(meta: MessageMeta, buf: Buffer, start: number, end: number, duplicate: boolean): void {
    // Once this end decided to close (too many rejections, a framing error), nothing more is delivered.
    if (this.#closing) return;
    let message: unknown;
    try {
      const view = this.#opener?.viewFor(buf) ?? null;
      message = view !== null ? decodeWithView(buf, view, this.#decodeOptions, start, end) : decode(buf, this.#decodeOptions, start, end);
    } catch (e) {
      this.#rejectNow(e as BadData);
      return;
    }
    if (duplicate) {
      let handled = false;
      try {
        handled = this.duplicateNonce(message, meta) === true;
      } catch (e) {
        this.#report('duplicateNonce raised', e);
        handled = true;
      }
      if (handled) {
        this.stats.duplicates++;
        return;
      }
      this.#rejectNow(new ReplayedMessage('nonce was already used (replayed message)'));
      return;
    }
    this.stats.received++;
    try {
      this.messageReceived(message, meta);
    } catch (e) {
      this.#report('messageReceived raised', e);
    }
  }

  // `decided`: already counted by #decide when it was queued.
  #rejectNow(err: RejectionError, decided = false): void {
    if (this.#lost || this.closeReason !== null) return;
    if (!decided && this.#counts(err)) this.#decide(err as BadData);
    this.stats.rejected++;
    this.stats.lastRejection = err;
    try {
      this.messageRejected(err);
    } catch (e) {
      this.#report('messageRejected raised', e);
    }
    // Store failures are not the peer's fault: they fail the message closed but do not count against the peer.
    const peerFault = this.#counts(err);
    if (peerFault) this.#peerRejections++;
    if (this.#closing) return;
    if (peerFault && (err as BadData).fatal) {
      this.#closeFor(err, `closing the connection: ${err.code} ${err.message}`);
    } else if (this.#peerRejections >= this.maxRejections) {
      this.#closeFor(err, `closing the connection after ${this.#peerRejections} rejected messages; last: ${err.code} ${err.message}`);
    }
  }

  /**
   * Whether a rejection counts toward `maxRejections`: the peer's fault (BadData), but for a message that expired on
   * the way on a connection whose keys are bound to its TLS session. Its MAC verified, so only the peer can have
   * sent it, and it is late, not forged: a client that stalled (a suspended laptop, a GC pause, a congested link)
   * and resumes with a kernel buffer of short-lived snapshots has each refused as SignatureExpired, but is not
   * disconnected for it. Unbound keys count it still (anyone with the shared key could replay old messages).
   */
  #counts(err: RejectionError): boolean {
    return err instanceof BadData && !(this.#bound && err instanceof SignatureExpired);
  }

  // Counts a peer-fault rejection when it is decided; the one that will close the connection dooms it (see #decided).
  #decide(err: BadData): void {
    this.#decided++;
    if (err.fatal || this.#decided >= this.maxRejections) this.#doomed = true;
  }

  // After the peer's EOF: closes once the queue is delivered and no reply is owed, else waits (bounded by eofTimeout).
  #finishAfterEof(): void {
    if (!this.#eof || this.#lost || this.#closing || this.#queue.length > 0) return;
    const owed = this.owedReplies;
    if (owed <= 0) {
      this.#eofTimer?.cancel();
      this.#eofTimer = null;
      this.close();
      return;
    }
    if (this.#eofTimer !== null) return;
    const timeout = this.eofTimeout;
    this.#eofTimer = this.#loop!.callLater(timeout, () => {
      this.#eofTimer = null;
      if (this.#lost || this.#closing) return;
      const left = this.owedReplies;
      this.#closeFor(new TimeoutError(`the peer ended its stream and ${left} replies were still being computed after eofTimeout ${timeout} s`),
        `closing the connection without ${left} replies: the peer ended its stream ${timeout} s ago (eofTimeout)`, { owed: left });
    });
  }

  #closeFor(err: TulipError, text: string, extra?: Record<string, unknown>): void {
    this.closeReason = err;
    this.#log('warn', text, { code: err.code, side: this.side, peer: this.#peer, rejections: this.#peerRejections, ...extra });
    this.close();
  }

  // The logger is user code: one that throws is reported, and never keeps this end from doing what it logs (closing).
  #log(level: 'warn' | 'info', text: string, fields: Record<string, unknown>): void {
    try {
      this.#logger[level]?.(text, fields);
    } catch (e) {
      this.#report(`the logger's ${level} raised`, e);
    }
  }

  #report(message: string, exception: unknown): void {
    const loop = this.#loop;
    if (loop !== null && typeof loop.callExceptionHandler === 'function') {
      loop.callExceptionHandler({ message, exception, protocol: this, transport: this.transport });
    } else {
      try {
        this.#logger.warn?.(message, { exception });
      } catch {
        // Nowhere left to report it: the logger itself failed.
      }
    }
  }
}
