/**
 * The one concrete socket transport: a {@link Transport} over a `net.Socket` (TCP, Unix) or a `tls.TLSSocket`.
 *
 * Node's socket events never call the protocol directly: `'data'`, `'end'` and `'close'` go into an inbox that one
 * `loop.callSoon` drains, in order, inside a loop iteration (asyncio: I/O callbacks enter the ready queue). Writes of
 * one iteration are corked by {@link StreamTransportBase} and handed to the socket in one `write()` when the
 * iteration ends (`loop.deferToIterationEnd`). `pauseReading()` is `socket.pause()`: Node stops reading from the
 * kernel once its small readable buffer is full, so TCP pushes back on the sender.
 *
 * Closing: `close()` flushes, then `socket.end()` (FIN, and close_notify on TLS), keeps draining and discarding
 * what the peer still sends until its EOF, and destroys the socket if that takes longer than `sslShutdownTimeout`.
 * `connectionLost` follows Node's `'close'` event, the one event every path ends with.
 *
 * @module
 */
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { SSL_SHUTDOWN_TIMEOUT } from '../constants.js';
import { TimeoutError, TransportError } from '../errors.js';
import type { EventLoop, TimerHandle } from '../loop/index.js';
import { post, StreamTransportBase } from './flow-control.js';
import type { AnyProtocol } from './protocols.js';

// Up to this many corked bytes are joined into one Buffer before the write (one TLS record per 16 KiB either way,
// but one write call instead of many); above it the chunks go out corked, as a writev.
const CONCAT_LIMIT = 64 * 1024;

const EMPTY = Buffer.alloc(0);
const END = 1;
const CLOSE = 2;

/** Something that tracks the transports it created (the `Server`). */
export interface TransportOwner {
  /** @internal The transport's connection is gone. */
  _detachTransport(t: SocketTransport): void;
  /** @internal startTls moved the connection to a new transport. */
  _replaceTransport(old: SocketTransport, t: SocketTransport): void;
}

/** Options of {@link SocketTransport}. */
export interface SocketTransportOptions {
  /** The server that accepted this connection, told when the connection is gone. */
  owner?: TransportOwner | null;
  /** How long a graceful `close()` waits for the peer's EOF before destroying the socket, seconds (default 30). */
  sslShutdownTimeout?: number;
  /** The TLS context and hook results of a TLS connection. */
  tls?: {
    secureContext?: SecureContext | undefined;
    peerIdentity?: unknown;
    /**
     * Maps a socket error after the handshake (a TLS alert such as "certificate required", which TLS 1.3 sends
     * only once the client already counts the handshake as done) through the ssl options' `mapTlsError` hook;
     * null keeps the transport's own {@link TransportError}.
     */
    mapError?: ((err: Error) => Error | null) | undefined;
  } | null;
  /** The plain socket under a TLS socket (`getExtraInfo('socket')` reports it). */
  rawSocket?: Socket | null;
  /** A Unix socket's path, reported as `peername`/`sockname`. */
  unixPath?: string | null;
  /** Bytes read from the socket before this transport existed, delivered first (startTls). */
  unread?: Buffer[];
  /** The protocol already got `connectionMade` (startTls). */
  alreadyMade?: boolean;
}

/** A {@link Transport} over a `net.Socket` or `tls.TLSSocket`. Made by `createConnection`, `createServer`, `startTls`. */
export class SocketTransport extends StreamTransportBase {
  readonly #socket: Socket;
  readonly #tls: boolean;
  readonly #owner: TransportOwner | null;
  readonly #shutdownTimeout: number;
  readonly #tlsInfo: SocketTransportOptions['tls'] | null;
  readonly #raw: Socket;
  readonly #unixPath: string | null;
  readonly #peername: unknown;
  readonly #sockname: unknown;
  // TLS details, read once the handshake is done (a destroyed TLS socket no longer has them).
  #peercert: unknown = undefined;
  #peerX509: unknown = undefined;
  #cipher: unknown = undefined;
  #tlsVersion: unknown = undefined;
  #alpn: unknown = undefined;

  // Socket events waiting for the loop, in arrival order. Invariant: #inboxScheduled iff a drain is queued.
  #inbox: (Buffer | typeof END | typeof CLOSE)[] = [];
  #inboxPos = 0;
  #inboxScheduled = false;
  // True while #drainInbox hands items out (so a chunk queued behind the current one is delivered next, synchronously).
  #draining = false;
  #error: Error | null = null;
  #shutdownTimer: TimerHandle | null = null;
  #resumeScheduled = false;
  #detached = false;
  // The socket closed cleanly while bytes or the EOF still waited for a paused protocol: connectionLost comes after
  // them (or once close()/abort() drops them), as in asyncio, where the loss is only seen after reading the EOF.
  #closeHeld = false;
  // Set by startTls while its handshake runs on the socket this transport handed over: close()/abort() end it.
  #handover: (() => void) | null = null;

  readonly #drainCb = (): void => this.#drainInbox();
  readonly #resumeCb = (): void => {
    this.#resumeScheduled = false;
    this._maybeResumeProtocol();
  };
  readonly #onWritten = (): void => {
    if (this._writingPaused && !this.#resumeScheduled) {
      this.#resumeScheduled = post(this._loop, this.#resumeCb);
    }
  };
  readonly #onData = (chunk: Buffer): void => {
    this.#inbox.push(chunk);
    this.#schedule(true);
  };
  readonly #onEnd = (): void => this.#push(END);
  readonly #onClose = (): void => this.#push(CLOSE);
  readonly #onError = (err: Error): void => {
    this.#error ??= err;
    // A TLS protocol error on an established connection (a bad record, a failed MAC: ERR_SSL_WRONG_VERSION_NUMBER
    // for plaintext under the TLS layer) reaches a tls.connect({socket}) wrapper as 'error' alone: node:tls neither
    // destroys it nor the TCP socket under it, so no 'close' came, the connection stayed open and a pending read
    // waited forever. asyncio's _fatal_error aborts the transport; so do we (a net.Socket error already destroys).
    if (!this.#socket.destroyed) this.#socket.destroy();
    if (this.#raw !== this.#socket && !this.#raw.destroyed) this.#raw.destroy();
  };

  /** @internal Use `createConnection`, `createServer` or `startTls`. */
  constructor(loop: EventLoop, socket: Socket, protocol: AnyProtocol, options: SocketTransportOptions = {}) {
    super(loop, protocol, { alreadyMade: options.alreadyMade ?? false });
    this.#socket = socket;
    this.#tls = options.tls !== undefined && options.tls !== null;
    this.#tlsInfo = options.tls ?? null;
    this.#owner = options.owner ?? null;
    this.#shutdownTimeout = options.sslShutdownTimeout ?? SSL_SHUTDOWN_TIMEOUT;
    this.#raw = options.rawSocket ?? socket;
    this.#unixPath = options.unixPath ?? null;
    const raw = this.#raw;
    // A Unix socket's path names the listening end only: the connecting end is unbound, so its own address is ''
    // (asyncio's getsockname() on the client, getpeername() on an accepted connection).
    const accepted = this.#owner !== null;
    this.#peername = this.#unixPath !== null ? (accepted ? '' : this.#unixPath)
      : raw.remoteAddress === undefined ? undefined
        : { address: raw.remoteAddress, port: raw.remotePort, family: raw.remoteFamily };
    this.#sockname = this.#unixPath !== null ? (accepted ? this.#unixPath : '')
      : raw.localAddress === undefined ? undefined
        : { address: raw.localAddress, port: raw.localPort, family: raw.localFamily };
    if (this.#tls && !socket.destroyed) {
      // Read now: once the socket is destroyed node:tls no longer has the certificates (connectionLost may want them).
      const t = socket as TLSSocket;
      const c = t.getPeerCertificate(false);
      this.#peercert = c !== null && Object.keys(c).length > 0 ? c : null;
      this.#peerX509 = t.getPeerX509Certificate() ?? null;
      this.#cipher = t.getCipher();
      this.#tlsVersion = t.getProtocol() ?? undefined;
      this.#alpn = t.alpnProtocol;
    }
    if (options.unread !== undefined) for (const c of options.unread) this.#inbox.push(c);
    loop._open.add(this);
    socket.on('error', this.#onError);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('data', this.#onData);
    if (this.#raw !== socket) this.#raw.on('error', noop);
    // node:tls reads (and emits 'end' for) a peer's EOF that came right behind its handshake before any transport
    // listens: a TLS 1.3 client that half-closes at once. The EOF still reaches the protocol, after connectionMade.
    if (socket.readableEnded) this.#inbox.push(END);
    if (this.#inbox.length > 0) this.#schedule();
    if (socket.destroyed) this.#push(CLOSE);
  }

  /**
   * Flushes what is buffered, shuts the connection down, then `connectionLost(null)`. Idempotent. On a transport
   * handed to `startTls` whose handshake still runs, it ends that handshake now (startTls rejects with
   * TransportClosed), as asyncio's start_tls fails when its transport is closed: this transport is the only handle
   * on the connection until the handshake is done (a server's `closeClients()` reaches it this way).
   */
  override close(): void {
    if (this.#endHandover()) return;
    super.close();
  }

  /** Drops the buffer and closes now; `connectionLost(null)` follows. Idempotent. Ends a running startTls handshake as {@link close} does. */
  override abort(): void {
    if (this.#endHandover()) return;
    super.abort();
  }

  /** @internal startTls: what close()/abort() of this (handed over) transport do while its handshake runs; null once it ended. */
  _setHandover(fn: (() => void) | null): void {
    this.#handover = fn;
  }

  #endHandover(): boolean {
    const h = this.#handover;
    if (h === null) return false;
    this.#handover = null;
    h();
    return true;
  }

  /** @internal The socket (for startTls and the server). */
  get _socket(): Socket {
    return this.#socket;
  }

  /** @internal The server that accepted this connection, if any. */
  get _owner(): TransportOwner | null {
    return this.#owner;
  }

  /** @internal The Unix socket path, if any. */
  get _unixPath(): string | null {
    return this.#unixPath;
  }

  /** True for TCP and Unix sockets, and for TLS 1.3 (Node keeps a TLS 1.3 connection half-open; asyncio says false). */
  canWriteEof(): boolean {
    return !this.#tls || this.#tlsVersion === 'TLSv1.3';
  }

  /** @internal */
  protected _writeChunks(chunks: Uint8Array[], total: number): void {
    const s = this.#socket;
    if (s.destroyed || !s.writable) return;
    // Only a paused protocol needs to hear when the socket drained (the callback costs a little per write; the
    // write that paused it is flushed here, after the pause, and its callback fires after all earlier writes).
    const cb = this._writingPaused ? this.#onWritten : undefined;
    if (chunks.length === 1) {
      s.write(chunks[0]!, cb);
    } else if (total <= CONCAT_LIMIT) {
      s.write(Buffer.concat(chunks, total), cb);
    } else {
      s.cork();
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) s.write(chunks[i]!);
      s.write(chunks[last]!, cb);
      s.uncork();
    }
  }

  /** @internal An empty write whose callback comes after every earlier write (or 'finish' after writeEof). */
  protected override _backendWatchDrain(): void {
    const s = this.#socket;
    if (s.destroyed) return;
    if (s.writable) s.write(EMPTY, this.#onWritten);
    else s.once('finish', this.#onWritten);
  }

  /** @internal */
  protected _backendBufferSize(): number {
    const s = this.#socket;
    return s.destroyed ? 0 : s.writableLength;
  }

  /** @internal */
  protected _backendWriteEof(): void {
    if (!this.#socket.destroyed) this.#socket.end();
  }

  /** @internal */
  protected _backendClose(): void {
    const s = this.#socket;
    if (s.destroyed) {
      this.#releaseHeldClose();
      return;
    }
    s.end();
    // Keep reading (and discarding) so the peer's EOF can arrive; the base drops data once closing.
    s.resume();
    this.#shutdownTimer = this._loop.callLater(this.#shutdownTimeout, () => {
      this.#shutdownTimer = null;
      this._forceClose(new TimeoutError(`shutdown timed out after ${this.#shutdownTimeout} s`));
    });
  }

  /** @internal */
  protected _backendAbort(): void {
    if (!this.#socket.destroyed) this.#socket.destroy();
    if (this.#raw !== this.#socket && !this.#raw.destroyed) this.#raw.destroy();
    this.#releaseHeldClose();
  }

  /** @internal */
  protected override _inboundDrained(): void {
    if (!this.#closeHeld) return;
    this.#closeHeld = false;
    this.#closed();
  }

  // close()/abort() dropped what was held: the loss that waited for it follows in a callback of its own.
  #releaseHeldClose(): void {
    if (!this.#closeHeld) return;
    this.#closeHeld = false;
    post(this._loop, () => this.#closed());
  }

  /** @internal */
  protected _backendPauseReading(): void {
    this.#socket.pause();
  }

  /** @internal */
  protected _backendResumeReading(): void {
    this.#socket.resume();
  }

  /** @internal */
  protected _backendExtraInfo(name: string): unknown {
    const s = this.#socket;
    switch (name) {
      case 'socket': return this.#raw;
      case 'peername': return this.#peername;
      case 'sockname': return this.#sockname;
      default: break;
    }
    if (!this.#tls) return undefined;
    const t = s as TLSSocket;
    switch (name) {
      case 'sslObject': return t;
      case 'sslcontext': return this.#tlsInfo?.secureContext;
      case 'cipher': return this.#cipher;
      case 'tlsVersion': return this.#tlsVersion;
      case 'alpnProtocol': return this.#alpn;
      case 'peerIdentity': return this.#tlsInfo?.peerIdentity ?? null;
      case 'peercert': return this.#peercert ?? null;
      case 'peerX509': return this.#peerX509 ?? null;
      case 'exportKeyingMaterial':
        // RFC 5705 tells "no context" from an empty one; @types/node marks the (optional) context as required.
        return (length: number, label: string, context?: Buffer): Buffer =>
          (t.exportKeyingMaterial as (l: number, lb: string, c?: Buffer) => Buffer).call(t, length, label, context);
      default: return undefined;
    }
  }

  /**
   * @internal Hands the socket over (startTls): flushes corked writes, stops listening, returns the socket and the
   * bytes read from it but never delivered. This transport then counts as closed; it makes no more callbacks.
   */
  _detachSocket(): { socket: Socket; unread: Buffer[] } {
    const { unread: held } = this._detach();
    this.#detached = true;
    this._loop._open.delete(this);
    const s = this.#socket;
    s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('close', this.#onClose);
    s.off('error', this.#onError);
    s.pause();
    const unread: Buffer[] = [...held];
    for (let i = this.#inboxPos; i < this.#inbox.length; i++) {
      const item = this.#inbox[i]!;
      if (typeof item !== 'number') unread.push(item);
    }
    this.#inbox = [];
    this.#inboxPos = 0;
    let chunk: Buffer | null;
    while ((chunk = s.read() as Buffer | null) !== null) unread.push(chunk);
    this.#shutdownTimer?.cancel();
    return { socket: s, unread };
  }

  #push(item: Buffer | typeof END | typeof CLOSE): void {
    this.#inbox.push(item);
    this.#schedule();
  }

  /** Queues the inbox's drain (once); `fromRead` lets a read that woke a waiting loop run the turn at once. */
  #schedule(fromRead = false): void {
    if (this.#inboxScheduled) return;
    this.#inboxScheduled = true;
    const loop = this._loop;
    if (!loop.isClosed()) {
      if (fromRead) loop._callSoonFromIo(this.#drainCb);
      else loop.callSoon(this.#drainCb);
    } else {
      // The loop is closed: nobody can drive the protocol any more, so free the socket.
      this.#inboxScheduled = false;
      this.#inbox = [];
      this.#inboxPos = 0;
      if (!this.#socket.destroyed) this.#socket.destroy();
      if (!this.#raw.destroyed) this.#raw.destroy();
    }
  }

  /** @internal For `run()`'s shutdown (OpenResource). */
  readonly _resourceKind = 'transport';

  /** @internal Aborts: `run()` found this transport still open when `main` ended (OpenResource). */
  _abortOpen(): void {
    this.abort();
  }

  /** @internal The inbox's next item is a chunk that the running drain delivers next. */
  protected override _nextIsData(): boolean {
    if (!this.#draining || this.#detached || this.#inboxPos >= this.#inbox.length) return false;
    const next = this.#inbox[this.#inboxPos];
    return next !== END && next !== CLOSE;
  }

  #drainInbox(): void {
    this.#inboxScheduled = false;
    if (this.#detached) return;
    const items = this.#inbox;
    this.#draining = true;
    try {
      while (this.#inboxPos < items.length) {
        const item = items[this.#inboxPos++]!;
        if (item === END) this._eofReceived();
        else if (item === CLOSE) this.#closed();
        else this._dataReceived(item);
        // startTls ran inside a callback: the rest of the inbox belongs to the TLS layer (see _detachSocket).
        if (this.#detached) return;
      }
    } finally {
      this.#draining = false;
    }
    this.#inbox = [];
    this.#inboxPos = 0;
  }

  #closed(): void {
    if (this.#error === null && this._holdsInbound) {
      this.#closeHeld = true;
      return;
    }
    this._loop._open.delete(this);
    this.#shutdownTimer?.cancel();
    this.#shutdownTimer = null;
    if (this.#raw !== this.#socket && !this.#raw.destroyed) this.#raw.destroy();
    const err = this.#error;
    this._connectionLost(err === null ? null : this.#tlsInfo?.mapError?.(err) ?? wrapSocketError(err));
    this.#owner?._detachTransport(this);
  }
}

/** Wraps a Node socket error for `connectionLost` (a {@link TransportError} with the Node error as cause). */
export function wrapSocketError(err: Error): Error {
  if (err instanceof TransportError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const what = code === 'ECONNRESET' ? 'connection reset by peer' : code === 'EPIPE' ? 'broken pipe' : err.message;
  return new TransportError(`connection lost: ${what}`, { cause: err });
}

function noop(): void {}
