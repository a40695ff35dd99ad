/**
 * Flow control and the protocol state machine shared by every tulipwire transport (asyncio's `_FlowControlMixin`
 * plus `sslproto`'s `AppProtocolState`).
 *
 * {@link StreamTransportBase} owns everything that is the same for a socket and an in-memory transport: the corked
 * write buffer flushed once per loop iteration, the high/low water marks and the `pauseWriting`/`resumeWriting`
 * pairing, paused reading (bytes that arrive while paused are held, in order, until `resumeReading`), EOF and
 * half-close bookkeeping, and the one place protocol callbacks are made, which enforces the grammar
 * `CM → DR* → ER? → CL` and sends exceptions to the loop's exception handler. Subclasses supply the backend: how
 * corked bytes reach the wire, how much the wire still holds, and how to shut down or destroy it.
 *
 * @module
 */
import { WRITE_BUFFER_HIGH, WRITE_BUFFER_LOW } from '../constants.js';
import { InvalidStateError, TransportClosed, TransportError } from '../errors.js';
import type { EventLoop } from '../loop/index.js';
import { isBufferedProtocol } from './protocols.js';
import type { AnyProtocol, BaseProtocol, BufferedProtocol, Protocol } from './protocols.js';
import type { Transport, WriteBufferLimits } from './transports.js';

/**
 * Where a transport's protocol is in its grammar (sslproto's `AppProtocolState`). `init`: no callback yet;
 * `made`: `connectionMade` ran; `eof`: `eofReceived` ran; `lost`: `connectionLost` ran (terminal).
 */
export const AppState = { INIT: 'init', MADE: 'made', EOF: 'eof', LOST: 'lost' } as const;
/** One of {@link AppState}'s values. */
export type AppStateValue = (typeof AppState)[keyof typeof AppState];

const LEGAL: Readonly<Record<AppStateValue, readonly AppStateValue[]>> = {
  init: ['made'],
  made: ['eof', 'lost'],
  eof: ['lost'],
  lost: [],
};

/**
 * Checks one edge of the protocol grammar and returns the new state.
 * @throws InvalidStateError on an edge the grammar does not have (a bug in a transport, never in user code).
 */
export function appTransition(from: AppStateValue, to: AppStateValue): AppStateValue {
  if (!LEGAL[from].includes(to)) throw new InvalidStateError(`illegal protocol transition ${from} -> ${to}`);
  return to;
}

/**
 * Resolves `setWriteBufferLimits` arguments as asyncio does: neither given → defaults; only `high` → `low =
 * high / 4`; only `low` → `high = 4 * low`.
 * @throws RangeError unless `high >= low >= 0`.
 */
export function resolveWriteBufferLimits(limits: { high?: number; low?: number } = {}): WriteBufferLimits {
  let { high, low } = limits;
  if (high === undefined) high = low === undefined ? WRITE_BUFFER_HIGH : 4 * low;
  if (low === undefined) low = Math.floor(high / 4);
  if (!(high >= low && low >= 0)) throw new RangeError(`high (${high}) must be >= low (${low}) must be >= 0`);
  return { low, high };
}

/**
 * @internal Schedules `cb` on `loop` from a Node I/O callback; returns false (and schedules nothing) when the loop
 * is already closed, so a late socket event after `loop.close()` never throws into Node's event emitter.
 */
export function post(loop: EventLoop, cb: () => void): boolean {
  if (loop.isClosed()) return false;
  loop.callSoon(cb);
  return true;
}

/** Options every {@link StreamTransportBase} takes. */
export interface StreamTransportBaseOptions {
  /** Extra info served by `getExtraInfo` before the subclass's own keys. */
  extra?: Record<string, unknown>;
  /** Start with the protocol already connected (`startTls`: the protocol got `connectionMade` from the old transport). */
  alreadyMade?: boolean;
}

/**
 * The part of every transport that is not about the wire (see the module comment). Not for user code: transports
 * come from `createConnection`, `createServer`, `startTls` and `createMemoryPair`.
 */
export abstract class StreamTransportBase implements Transport {
  /** @internal */ protected readonly _loop: EventLoop;
  /** @internal */ protected _protocol: AnyProtocol;
  /** @internal */ protected readonly _extra: Record<string, unknown>;

  // Protocol grammar state; every callback goes through #call*, which checks it.
  #app: AppStateValue = AppState.INIT;

  // Write side. Invariant: #corked === sum of #chunks' lengths; #flushScheduled iff a deferToIterationEnd is pending.
  #chunks: Uint8Array[] = [];
  #corked = 0;
  #flushScheduled = false;
  #high = WRITE_BUFFER_HIGH;
  #low = WRITE_BUFFER_LOW;
  // True between pauseWriting() and resumeWriting() (strictly paired).
  #protocolPaused = false;
  // writeEof() was called: writes now throw; the EOF goes out after the corked bytes.
  #eofRequested = false;
  #eofSent = false;
  // close() was called: the wire is shut down after the corked bytes.
  #closeRequested = false;
  #closeStarted = false;
  // close(), abort() or loss: no more data is delivered, writes are dropped.
  #closing = false;
  // The backend is gone and connectionLost was delivered (or skipped because the protocol was never made).
  #lost = false;
  // The error connectionLost will receive when the backend reports the loss (set by a fatal error or a timeout).
  #lostReason: Error | null = null;

  // Read side. Bytes that arrived while paused wait in #pending (in order); an EOF behind them waits in #pendingEof.
  // #readingPaused is the effective state: the user's pauseReading() (#userPaused) or any library hold (#holds).
  #readingPaused = false;
  #userPaused = false;
  #holds: Set<object> | null = null;
  #pending: Buffer[] = [];
  #pendingEof = false;
  #drainScheduled = false;
  // The chunk #deliverBuffered is copying into a BufferedProtocol's buffers and how much of it the protocol has
  // (null outside that loop): a startTls made from bufferUpdated hands the rest over (see _detach).
  #bufData: Buffer | null = null;
  #bufOff = 0;

  readonly #flushCb = (): void => this.#flush();
  readonly #drainCb = (): void => this.#drainPending();

  constructor(loop: EventLoop, protocol: AnyProtocol, options: StreamTransportBaseOptions = {}) {
    this._loop = loop;
    this._protocol = protocol;
    this._extra = options.extra ?? {};
    if (options.alreadyMade) this.#app = AppState.MADE;
  }

  // ------------------------------------------------------------------------------------------------------------
  // What a backend implements.

  /** @internal Hands the corked chunks to the wire (called once per iteration with at least one chunk). */
  protected abstract _writeChunks(chunks: Uint8Array[], total: number): void;
  /** @internal Bytes the wire accepted but has not sent yet. */
  protected abstract _backendBufferSize(): number;
  /** @internal Sends EOF after everything already handed over (TCP FIN / TLS close_notify, half-open). */
  protected abstract _backendWriteEof(): void;
  /** @internal Graceful shutdown after everything handed over; the backend then calls {@link _connectionLost}. */
  protected abstract _backendClose(): void;
  /** @internal Destroys the wire now; the backend then calls {@link _connectionLost}. */
  protected abstract _backendAbort(): void;
  /** @internal Stops reading from the wire. */
  protected abstract _backendPauseReading(): void;
  /** @internal Starts reading from the wire again. */
  protected abstract _backendResumeReading(): void;
  /**
   * @internal The protocol was paused by bytes already handed to the wire (a lower high-water mark): the backend
   * must call {@link _maybeResumeProtocol} once they drained (default: nothing; a backend whose every drain calls
   * it needs nothing more).
   */
  protected _backendWatchDrain(): void {}
  /** @internal Extra info the backend computes (socket addresses, TLS details). */
  protected abstract _backendExtraInfo(name: string): unknown;
  /** True when {@link writeEof} is supported by this backend. */
  abstract canWriteEof(): boolean;

  // ------------------------------------------------------------------------------------------------------------
  // BaseTransport

  /** The loop this transport runs its protocol's callbacks on. */
  getLoop(): EventLoop {
    return this._loop;
  }

  /** See {@link Transport.getExtraInfo}. */
  getExtraInfo(name: string, dflt?: unknown): unknown {
    if (Object.hasOwn(this._extra, name)) return this._extra[name];
    const v = this._backendExtraInfo(name);
    return v === undefined ? dflt : v;
  }

  /** True once `close()` or `abort()` was called, or the connection was lost. */
  isClosing(): boolean {
    return this.#closing;
  }

  /** The protocol this transport drives. */
  getProtocol(): BaseProtocol {
    return this._protocol;
  }

  /** Switches to another protocol (it does not get `connectionMade`). */
  setProtocol(protocol: BaseProtocol): void {
    this._protocol = protocol as AnyProtocol;
  }

  /** Flushes what is buffered, shuts the connection down, then `connectionLost(null)`. Idempotent. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closeRequested = true;
    this.#pending.length = 0;
    this.#pendingEof = false;
    this.#scheduleFlush();
  }

  /** Drops the buffer and closes now; `connectionLost(null)` follows. Idempotent. */
  abort(): void {
    this._forceClose(null);
  }

  /**
   * asyncio's transport repr without the fd: `<SocketTransport read=polling write=<idle, bufsize=0>>`; `read=idle`
   * while paused, `write=<polling, bufsize=N>` while bytes wait; `closing` once closed or aborted, and only
   * `<SocketTransport closed>` once connectionLost was delivered.
   */
  toString(): string {
    const name = this.constructor.name;
    if (this.#lost) return `<${name} closed>`;
    const size = this.getWriteBufferSize();
    const read = this.#readingPaused || this.#closing ? 'idle' : 'polling';
    return `<${name}${this.#closing ? ' closing' : ''} read=${read} write=<${size > 0 ? 'polling' : 'idle'}, bufsize=${size}>>`;
  }

  // ------------------------------------------------------------------------------------------------------------
  // ReadTransport

  /** True unless reading is paused or the transport is closing. */
  isReading(): boolean {
    return !this.#readingPaused && !this.#closing;
  }

  /** Stops delivering data and stops reading from the wire (TCP pushes back on the sender). Idempotent. */
  pauseReading(): void {
    if (this.#closing || this.#userPaused) return;
    this.#userPaused = true;
    this.#applyReading();
  }

  /**
   * Resumes after {@link pauseReading}: held bytes are delivered first, in order, in a later callback. Idempotent.
   * It lifts only this pause: while a layer of the library holds reading paused (a MessageProtocol waiting for its
   * nonce store), reading resumes when that layer lets go.
   */
  resumeReading(): void {
    if (this.#closing || !this.#userPaused) return;
    this.#userPaused = false;
    this.#applyReading();
  }

  /**
   * @internal Holds reading paused on behalf of `owner` (a protocol layer of the library), apart from the user's
   * {@link pauseReading}: reading runs only while neither is in force, so neither undoes the other. Idempotent.
   */
  _holdReading(owner: object): void {
    if (this.#closing) return;
    (this.#holds ??= new Set()).add(owner);
    this.#applyReading();
  }

  /** @internal Lets go of `owner`'s {@link _holdReading}. Idempotent. */
  _releaseReading(owner: object): void {
    if (this.#holds === null || !this.#holds.delete(owner)) return;
    if (this.#holds.size === 0) this.#holds = null;
    if (!this.#closing) this.#applyReading();
  }

  #applyReading(): void {
    const paused = this.#userPaused || this.#holds !== null;
    if (paused === this.#readingPaused) return;
    this.#readingPaused = paused;
    if (paused) {
      this._backendPauseReading();
      return;
    }
    if (this.#pending.length > 0 || this.#pendingEof) this.#scheduleDrain();
    this._backendResumeReading();
  }

  // ------------------------------------------------------------------------------------------------------------
  // WriteTransport

  /** See {@link Transport.setWriteBufferLimits}; also resumes a paused protocol when the new low mark allows. */
  setWriteBufferLimits(limits?: { high?: number; low?: number }): void {
    const { high, low } = resolveWriteBufferLimits(limits);
    this.#high = high;
    this.#low = low;
    const wasPaused = this.#protocolPaused;
    this.#maybePauseProtocol();
    // Paused by bytes the wire already holds (nothing corked whose flush would watch them drain).
    if (!wasPaused && this.#protocolPaused && this.#corked === 0 && !this.#lost) this._backendWatchDrain();
    this._maybeResumeProtocol();
  }

  /** Bytes buffered: corked in this iteration plus handed to the wire and not yet sent. */
  getWriteBufferSize(): number {
    return this.#corked + this._backendBufferSize();
  }

  /** The current limits, bytes. */
  getWriteBufferLimits(): WriteBufferLimits {
    return { low: this.#low, high: this.#high };
  }

  /**
   * Queues `data`; it goes to the wire at the end of this loop iteration together with every other write of the
   * iteration. The transport keeps a reference to `data` until then: don't modify it afterwards.
   * @throws TransportClosed after `writeEof()`.
   * @throws TypeError when `data` is not a Uint8Array.
   */
  write(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`data argument must be a Uint8Array, not ${data === null ? 'null' : typeof data}`);
    }
    if (this.#eofRequested) throw new TransportClosed('cannot call write() after writeEof()');
    if (this.#closing || data.length === 0) return; // asyncio drops writes after close/loss silently
    this.#chunks.push(data);
    this.#corked += data.length;
    this.#scheduleFlush();
    this.#maybePauseProtocol();
  }

  /** Writes every chunk of `list` (all flushed in this iteration's one write); obeys the high-water mark. */
  writelines(list: Iterable<Uint8Array>): void {
    // As asyncio: the EOF check first (even for an empty list), then every chunk checked before any is queued, so a
    // bad chunk leaves nothing behind (asyncio builds its memoryviews before extending the buffer).
    if (this.#eofRequested) throw new TransportClosed('cannot call writelines() after writeEof()');
    const chunks = Array.isArray(list) ? (list as readonly Uint8Array[]) : [...list];
    for (const data of chunks) {
      if (!(data instanceof Uint8Array)) throw new TypeError('writelines() expects Uint8Array chunks');
    }
    if (this.#closing) return;
    let added = 0;
    for (const data of chunks) {
      if (data.length === 0) continue;
      this.#chunks.push(data);
      added += data.length;
    }
    if (added === 0) return;
    this.#corked += added;
    this.#scheduleFlush();
    this.#maybePauseProtocol();
  }

  /**
   * Sends EOF after the buffered bytes; the connection stays open for reading. Idempotent.
   * @throws TransportError when this transport cannot half-close ({@link canWriteEof} is false).
   */
  writeEof(): void {
    if (this.#closing || this.#eofRequested) return;
    if (!this.canWriteEof()) throw new TransportError('this transport cannot half-close (canWriteEof() is false)');
    this.#eofRequested = true;
    this.#scheduleFlush();
  }

  // ------------------------------------------------------------------------------------------------------------
  // For backends and for the code that creates transports.

  /** @internal True between pauseWriting and resumeWriting. */
  protected get _writingPaused(): boolean {
    return this.#protocolPaused;
  }

  /** @internal True once connectionLost has been delivered (or skipped). */
  protected get _isLost(): boolean {
    return this.#lost;
  }

  /** @internal The grammar state. */
  get _appState(): AppStateValue {
    return this.#app;
  }

  /** @internal True when the protocol is being driven (connectionMade ran, connectionLost not yet). */
  protected get _isMade(): boolean {
    return this.#app === AppState.MADE || this.#app === AppState.EOF;
  }

  /**
   * @internal Bytes or an EOF wait in the transport for the protocol (reading is paused, or their delivery is
   * queued): a backend whose wire closed cleanly holds `connectionLost` back until {@link _inboundDrained}.
   */
  protected get _holdsInbound(): boolean {
    return this.#pending.length > 0 || this.#pendingEof;
  }

  /** @internal Everything held for the protocol was delivered (called after a drain of held bytes). */
  protected _inboundDrained(): void {}

  /** @internal The reason connectionLost will get, set by {@link _forceClose}. */
  protected get _lostReason(): Error | null {
    return this.#lostReason;
  }

  /** @internal Calls `connectionMade(this)` (inside a loop iteration). A throw is fatal for the connection. */
  _connectionMade(): void {
    if (this.#closing) return;
    this.#app = appTransition(this.#app, AppState.MADE);
    const p = this._protocol;
    if (typeof p.connectionMade !== 'function') return;
    try {
      p.connectionMade(this);
    } catch (err) {
      this._fatalError(err, 'Fatal error: protocol.connectionMade() call failed.');
    }
  }

  /**
   * @internal True when the transport already holds more bytes that it will hand to `dataReceived` right after the
   * current call returns, with no other callback in between (a batching protocol may then wait for them). False
   * unless the subclass knows (see {@link _nextIsData}), and false while paused or closing.
   */
  _deliversMoreNow(): boolean {
    return !this.#closing && this._isMade && !this.#readingPaused && this.#pending.length === 0 && this._nextIsData();
  }

  /** @internal Whether the next queued inbound item is a data chunk that {@link _dataReceived} gets next (default: unknown, false). */
  protected _nextIsData(): boolean {
    return false;
  }

  /** @internal Bytes from the wire (inside a loop iteration); held while paused, dropped once closing. */
  _dataReceived(data: Buffer): void {
    if (this.#closing || !this._isMade) return;
    if (this.#readingPaused || this.#pending.length > 0) {
      this.#pending.push(data);
      if (!this.#readingPaused) this.#scheduleDrain();
      return;
    }
    this.#deliver(data);
  }

  /** @internal EOF from the wire (inside a loop iteration): `eofReceived`, then close unless it returned true. */
  _eofReceived(): void {
    if (this.#closing || this.#app !== AppState.MADE) return;
    if (this.#readingPaused || this.#pending.length > 0) {
      this.#pendingEof = true;
      return;
    }
    this.#deliverEof();
  }

  /**
   * @internal The wire is gone (inside a loop iteration): delivers `connectionLost` exactly once, if the protocol
   * was made. `exc` is used unless a fatal error or timeout set a reason first.
   */
  _connectionLost(exc: Error | null): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#closing = true;
    this.#chunks = [];
    this.#corked = 0;
    this.#pending.length = 0;
    this.#pendingEof = false;
    this.#protocolPaused = false;
    if (!this._isMade) {
      this.#app = AppState.LOST;
      return;
    }
    this.#app = appTransition(this.#app, AppState.LOST);
    const p = this._protocol;
    if (typeof p.connectionLost !== 'function') return;
    try {
      p.connectionLost(this.#lostReason ?? exc);
    } catch (err) {
      this._loop.callExceptionHandler({
        message: 'Exception in protocol.connectionLost()', exception: err, protocol: p, transport: this,
      });
    }
  }

  /**
   * @internal Closes now with `reason` for connectionLost (null for a plain abort): the buffer is dropped and the
   * backend destroyed. Idempotent; the first reason wins.
   */
  _forceClose(reason: Error | null): void {
    if (this.#lost) return;
    if (this.#lostReason === null) this.#lostReason = reason;
    this.#closing = true;
    this.#chunks = [];
    this.#corked = 0;
    this.#pending.length = 0;
    this.#pendingEof = false;
    this._backendAbort();
  }

  /**
   * @internal A protocol callback threw: report it to the loop's exception handler and abort the connection with
   * that error (asyncio `_fatal_error`).
   */
  _fatalError(err: unknown, message: string): void {
    const exc = err instanceof Error ? err : new TransportError(String(err), { cause: err });
    this._loop.callExceptionHandler({ message, exception: exc, protocol: this._protocol, transport: this });
    this._forceClose(exc);
  }

  /** @internal The wire's buffer shrank (inside a loop iteration): `resumeWriting` once at or below low water. */
  _maybeResumeProtocol(): void {
    if (!this.#protocolPaused || this.getWriteBufferSize() > this.#low) return;
    this.#protocolPaused = false;
    const p = this._protocol;
    if (this.#lost || typeof p.resumeWriting !== 'function') return;
    try {
      p.resumeWriting();
    } catch (err) {
      this._loop.callExceptionHandler({
        message: 'protocol.resumeWriting() failed', exception: err, protocol: p, transport: this,
      });
    }
  }

  /**
   * @internal Takes the corked chunks and the held inbound bytes out of this transport and marks it closing without
   * touching the wire (startTls moves the wire to a new transport). Returns the bytes read but not delivered.
   */
  _detach(): { unread: Buffer[] } {
    this.#flush();
    const unread = this.#pending;
    // Called from bufferUpdated: the rest of the chunk being delivered comes before everything held.
    const cur = this.#bufData;
    if (cur !== null && this.#bufOff < cur.length) unread.unshift(cur.subarray(this.#bufOff));
    this.#bufData = null;
    this.#pending = [];
    this.#pendingEof = false;
    this.#closing = true;
    this.#lost = true;
    this.#app = AppState.LOST;
    return { unread };
  }

  // ------------------------------------------------------------------------------------------------------------

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this._loop.deferToIterationEnd(this.#flushCb);
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#lost) return;
    if (this.#corked > 0) {
      const chunks = this.#chunks;
      const total = this.#corked;
      this.#chunks = [];
      this.#corked = 0;
      this._writeChunks(chunks, total);
    }
    if (this.#eofRequested && !this.#eofSent && !this.#closeRequested) {
      this.#eofSent = true;
      this._backendWriteEof();
    }
    if (this.#closeRequested && !this.#closeStarted) {
      this.#closeStarted = true;
      this._backendClose();
    }
  }

  #maybePauseProtocol(): void {
    if (this.#protocolPaused || this.getWriteBufferSize() <= this.#high) return;
    this.#protocolPaused = true;
    const p = this._protocol;
    if (typeof p.pauseWriting !== 'function') return;
    try {
      p.pauseWriting();
    } catch (err) {
      this._loop.callExceptionHandler({
        message: 'protocol.pauseWriting() failed', exception: err, protocol: p, transport: this,
      });
    }
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    this._loop.callSoon(this.#drainCb);
  }

  #drainPending(): void {
    this.#drainScheduled = false;
    while (this.#pending.length > 0 && !this.#readingPaused && !this.#closing) {
      this.#deliver(this.#pending.shift()!);
    }
    if (this.#pending.length === 0 && this.#pendingEof && !this.#readingPaused && !this.#closing) {
      this.#pendingEof = false;
      this.#deliverEof();
    }
    if (this.#pending.length === 0 && !this.#pendingEof) this._inboundDrained();
  }

  #deliver(data: Buffer): void {
    const p = this._protocol;
    if (isBufferedProtocol(p)) {
      this.#deliverBuffered(p, data);
      return;
    }
    const fn = (p as Protocol).dataReceived;
    if (typeof fn !== 'function') return;
    try {
      fn.call(p, data);
    } catch (err) {
      this._fatalError(err, 'Fatal error: protocol.dataReceived() call failed.');
    }
  }

  #deliverBuffered(p: BufferedProtocol, data: Buffer): void {
    let off = 0;
    this.#bufData = data;
    try {
      while (off < data.length) {
        const buf = p.getBuffer(data.length - off);
        if (!(buf instanceof Uint8Array) || buf.length === 0) {
          throw new TransportError('protocol.getBuffer() returned an empty buffer');
        }
        const n = Math.min(buf.length, data.length - off);
        buf.set(data.subarray(off, off + n));
        off += n;
        this.#bufOff = off;
        p.bufferUpdated(n);
        if (this.#closing) return;
        if (off < data.length) {
          if (this.#readingPaused) {
            // The protocol paused mid-chunk: hold the rest, in front of anything else held.
            this.#pending.unshift(data.subarray(off));
            return;
          }
          if (this._protocol !== p) {
            // setProtocol() in bufferUpdated: the rest of the chunk is the new protocol's (asyncio reads one buffer
            // per recv_into, so a switch applies from the next byte on).
            this.#deliver(data.subarray(off));
            return;
          }
        }
      }
    } catch (err) {
      this._fatalError(err, 'Fatal error: protocol.getBuffer() / bufferUpdated() call failed.');
    } finally {
      if (this.#bufData === data) this.#bufData = null;
    }
  }

  #deliverEof(): void {
    this.#app = appTransition(this.#app, AppState.EOF);
    const p = this._protocol as Protocol;
    let keepOpen: boolean | void = undefined;
    if (typeof p.eofReceived === 'function') {
      try {
        keepOpen = p.eofReceived();
      } catch (err) {
        this._fatalError(err, 'Fatal error: protocol.eofReceived() call failed.');
        return;
      }
    }
    if (keepOpen !== true) this.close();
  }
}
