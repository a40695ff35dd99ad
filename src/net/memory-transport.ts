/**
 * An in-memory transport pair (trio's `memory_stream_pair`): two connected {@link Transport}s that behave like a
 * loopback TCP connection (ordered bytes, half-close, graceful close waiting for the peer's EOF, abort, flow control
 * through the peer's unread bytes) but never touch the kernel, so protocols can be tested on a `VirtualClock`.
 *
 * @module
 */
import { SSL_SHUTDOWN_TIMEOUT } from '../constants.js';
import { TimeoutError } from '../errors.js';
import type { EventLoop, TimerHandle } from '../loop/index.js';
import { StreamTransportBase } from './flow-control.js';
import type { AnyProtocol } from './protocols.js';
import type { Transport } from './transports.js';

/** Options of {@link createMemoryPair}. */
export interface MemoryPairOptions {
  /**
   * How long a `close()` waits for the peer's EOF before aborting, seconds (default `SSL_SHUTDOWN_TIMEOUT`, 30 s,
   * as the socket transport).
   */
  shutdownTimeout?: number;
  /** Extra info both ends report for `peername`/`sockname` (default `'memory:a'` / `'memory:b'`). */
  names?: [string, string];
}

const EOF = Symbol('eof');

/** One end of a {@link createMemoryPair} pair. */
export class MemoryTransport extends StreamTransportBase {
  /** @internal */ _peer: MemoryTransport | null = null;
  readonly #name: string;
  readonly #shutdownTimeout: number;
  // Bytes this end sent that the peer has not delivered to its protocol yet (its "kernel buffer").
  #inFlight = 0;
  // What arrived from the peer and waits for delivery (bytes, then maybe EOF).
  readonly #inbox: (Buffer | typeof EOF)[] = [];
  #inboxScheduled = false;
  #paused = false;
  #sentEof = false;
  #gotEof = false;
  #gone = false;
  #closing = false;
  #shutdownTimer: TimerHandle | null = null;
  readonly #drainCb = (): void => this.#drainInbox();

  /** @internal Use {@link createMemoryPair}. */
  constructor(loop: EventLoop, protocol: AnyProtocol, name: string, shutdownTimeout: number) {
    super(loop, protocol);
    this.#name = name;
    this.#shutdownTimeout = shutdownTimeout;
  }

  /** Always true: a memory transport half-closes like TCP. */
  canWriteEof(): boolean {
    return true;
  }

  /** @internal */
  protected _writeChunks(chunks: Uint8Array[], total: number): void {
    const peer = this._peer;
    if (this.#gone || this.#sentEof || peer === null || peer.#gone) return;
    const data = chunks.length === 1 ? Buffer.from(chunks[0]!) : Buffer.concat(chunks, total);
    this.#inFlight += data.length;
    peer.#enqueue(data);
  }

  /** @internal */
  protected _backendBufferSize(): number {
    return this.#gone ? 0 : this.#inFlight;
  }

  /** @internal */
  protected _backendWriteEof(): void {
    this.#sendEof();
    this.#maybeFinished();
  }

  /** @internal */
  protected _backendClose(): void {
    this.#closing = true;
    this.#paused = false;
    this.#sendEof();
    if (this.#maybeFinished()) return;
    // What a paused end still holds (the peer's EOF among it) is read and discarded now, as a closing socket does.
    this.#scheduleInbox();
    this.#shutdownTimer = this._loop.callLater(this.#shutdownTimeout, () => {
      this._forceClose(new TimeoutError(`shutdown timed out after ${this.#shutdownTimeout} s`));
    });
  }

  /** @internal */
  protected _backendAbort(): void {
    if (this.#gone) return;
    this.#sendEof();
    this.#finish();
  }

  /** @internal */
  protected _backendPauseReading(): void {
    this.#paused = true;
  }

  /** @internal */
  protected _backendResumeReading(): void {
    this.#paused = false;
    this.#scheduleInbox();
  }

  /** @internal */
  protected _backendExtraInfo(name: string): unknown {
    if (name === 'sockname') return this.#name;
    if (name === 'peername') return this._peer === null ? undefined : this._peer.#name;
    return undefined;
  }

  /** @internal Bytes a paused protocol held back were delivered: a peer that is gone may now end this side too. */
  protected override _inboundDrained(): void {
    if (!this.#gone) this.#maybeFinished();
  }

  #sendEof(): void {
    if (this.#sentEof) return;
    this.#sentEof = true;
    const peer = this._peer;
    if (peer !== null && !peer.#gone) peer.#enqueue(EOF);
  }

  #enqueue(item: Buffer | typeof EOF): void {
    this.#inbox.push(item);
    this.#scheduleInbox();
  }

  #scheduleInbox(): void {
    if (this.#inboxScheduled || this.#inbox.length === 0) return;
    this.#inboxScheduled = true;
    this._loop.callSoon(this.#drainCb);
  }

  #drainInbox(): void {
    this.#inboxScheduled = false;
    while (this.#inbox.length > 0 && !this.#gone && (!this.#paused || this.#closing)) {
      const item = this.#inbox.shift()!;
      if (item === EOF) {
        this.#gotEof = true;
        if (!this.#closing) this._eofReceived();
        this.#maybeFinished();
        continue;
      }
      const peer = this._peer;
      // A peer that is gone already forgot what it sent (its #finish zeroed the count): nothing to take off.
      if (peer !== null && !peer.#gone) {
        peer.#inFlight -= item.length;
        peer._maybeResumeProtocol();
      }
      this._dataReceived(item);
    }
  }

  // Both directions ended, or the peer is gone and everything it sent was delivered (nothing can flow either way
  // any more; unlike TCP, where a half-open end learns of it only when it writes, a memory end knows at once): the
  // connection is over.
  #maybeFinished(): boolean {
    const peerGone = this._peer === null || this._peer.#gone;
    if ((this.#sentEof && this.#gotEof) || (peerGone && this.#inbox.length === 0 && !this._holdsInbound)) {
      this.#finish();
      return true;
    }
    return false;
  }

  #finish(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#inbox.length = 0;
    this.#shutdownTimer?.cancel();
    this.#shutdownTimer = null;
    const peer = this._peer;
    if (peer !== null) {
      // The peer's unread bytes from us no longer count against anyone; a peer that is closing may now finish.
      this.#inFlight = 0;
      if (!peer.#gone) this._loop.callSoon(() => peer.#maybeFinished());
    }
    this._loop.callSoon(() => this._connectionLost(null));
  }
}

/**
 * Makes two connected in-memory transports driving `protocolA` and `protocolB` (trio's `memory_stream_pair`).
 * Both get `connectionMade` in the next loop iteration (A first). Writes of one iteration reach the peer in one
 * chunk in a later iteration; a peer that pauses reading makes the writer's buffer grow, so `pauseWriting` works
 * end to end. Everything runs on the loop's clock, so a `VirtualClock` loop drives it deterministically.
 */
export function createMemoryPair<A extends AnyProtocol, B extends AnyProtocol>(
  loop: EventLoop, protocolA: A, protocolB: B, options: MemoryPairOptions = {},
): [MemoryTransport & Transport, MemoryTransport & Transport] {
  const timeout = options.shutdownTimeout ?? SSL_SHUTDOWN_TIMEOUT;
  const [na, nb] = options.names ?? ['memory:a', 'memory:b'];
  const a = new MemoryTransport(loop, protocolA, na, timeout);
  const b = new MemoryTransport(loop, protocolB, nb, timeout);
  a._peer = b;
  b._peer = a;
  loop.callSoon(() => a._connectionMade());
  loop.callSoon(() => b._connectionMade());
  return [a, b];
}
