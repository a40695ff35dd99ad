/**
 * Protocols: the interfaces user code implements (asyncio `protocols.py`, PEP 3156).
 *
 * The library owns the socket; a protocol only reacts to callbacks. Every transport in tulipwire calls a protocol
 * in exactly this order (the grammar is enforced by the transport and tested by the conformance suite):
 *
 * ```
 * Protocol:          start → connectionMade → dataReceived* → eofReceived? → connectionLost → end
 * BufferedProtocol:  start → connectionMade → (getBuffer → bufferUpdated?)* → eofReceived? → connectionLost → end
 * ```
 *
 * - `connectionMade` runs once, first. On TLS it runs only after the handshake (and the PKI hooks) succeeded: a
 *   connection whose handshake fails never reaches the protocol at all.
 * - `connectionLost` runs exactly once, last, on every path: `close()`, `abort()`, peer reset, socket error,
 *   handshake or shutdown timeout. Its argument is `null` for a clean close or EOF, an Error otherwise.
 * - No callback ever runs after `connectionLost`.
 * - `pauseWriting`/`resumeWriting` strictly alternate (pause first) anywhere between `connectionMade` and
 *   `connectionLost`; `pauseWriting` is the one callback made synchronously inside `transport.write()`, as in asyncio.
 * - Every other callback runs inside a loop iteration (socket events enter the loop through `callSoon`).
 * - An exception thrown by `dataReceived`, `eofReceived`, `getBuffer` or `bufferUpdated` goes to the loop's exception
 *   handler and the transport is aborted (`connectionLost` then receives that exception). An exception from
 *   `connectionMade` does the same. An exception from `connectionLost`, `pauseWriting` or `resumeWriting` is reported
 *   and otherwise ignored. A server keeps serving its other connections either way.
 *
 * @module
 */
import type { Transport } from './transports.js';

/** The callbacks every protocol may implement (asyncio `BaseProtocol`). All are optional. */
export interface BaseProtocol {
  /**
   * Called once, first, when the connection is up (after the TLS handshake on TLS transports). Keep the transport:
   * it is how the protocol writes and closes.
   */
  connectionMade?(transport: Transport): void;
  /**
   * Called exactly once, last, when the connection is gone. `exc` is `null` on a clean close, an abort or a plain
   * EOF, else the error that ended the connection (a reset, a timeout, an exception thrown by a callback).
   */
  connectionLost?(exc: Error | null): void;
  /**
   * Called when the transport's write buffer goes strictly over its high-water mark (default 64 KiB). Stop
   * writing until {@link resumeWriting}. Called synchronously inside `transport.write()`.
   */
  pauseWriting?(): void;
  /** Called when the write buffer has drained to the low-water mark (default 16 KiB) or below, after a pause. */
  resumeWriting?(): void;
}

/** A stream protocol that receives bytes as Buffers (asyncio `Protocol`). */
export interface Protocol extends BaseProtocol {
  /**
   * Called with each chunk of bytes received, between `connectionMade` and `eofReceived`/`connectionLost`. Chunk
   * boundaries are arbitrary: a protocol must frame its own messages. The Buffer is the protocol's to keep.
   */
  dataReceived?(data: Buffer): void;
  /**
   * Called at most once, when the peer closed its sending side (TCP FIN, or TLS EOF). Return `true` to keep the
   * half-open connection (the protocol may still write, then closes it); anything else makes the transport close
   * itself. Not called when the connection breaks without an EOF.
   */
  eofReceived?(): boolean | void;
}

/**
 * A stream protocol that reads into buffers it owns (asyncio `BufferedProtocol`), avoiding a copy per chunk.
 * The transport calls `getBuffer(sizeHint)`, fills a prefix of the returned buffer and reports its length with
 * `bufferUpdated(nbytes)`.
 */
export interface BufferedProtocol extends BaseProtocol {
  /**
   * Returns the buffer the next bytes are written into. `sizeHint` is the number of bytes available, or -1 when
   * unknown; the buffer may be smaller or larger, but must not be empty (an empty buffer is a protocol error and
   * closes the connection).
   */
  getBuffer(sizeHint: number): Uint8Array;
  /** Called after `nbytes` (> 0) bytes were written into the start of the buffer the last `getBuffer` returned. */
  bufferUpdated(nbytes: number): void;
  /** As {@link Protocol.eofReceived}. */
  eofReceived?(): boolean | void;
}

/** Anything a transport can drive: a {@link Protocol} or a {@link BufferedProtocol}. */
export type AnyProtocol = Protocol | BufferedProtocol;

/** Makes a fresh protocol for each connection (asyncio's `protocol_factory`). */
export type ProtocolFactory<P extends BaseProtocol = AnyProtocol> = () => P;

/**
 * A {@link Protocol} whose every callback does nothing, to extend: `class Echo extends ProtocolBase { override
 * dataReceived(d: Buffer) { this.transport!.write(d); } }`. `connectionMade` stores the transport in
 * {@link transport}; a subclass that overrides it should call `super.connectionMade(t)` or keep the transport itself.
 */
export class ProtocolBase implements Protocol {
  /** The transport given to `connectionMade`, or null before it. */
  transport: Transport | null = null;

  /** Stores the transport. */
  connectionMade(transport: Transport): void {
    this.transport = transport;
  }
  /** Does nothing. */
  dataReceived(_data: Buffer): void {}
  /** Returns undefined, so the transport closes itself on EOF. */
  eofReceived(): boolean | void {
    return undefined;
  }
  /** Does nothing. */
  connectionLost(_exc: Error | null): void {}
  /** Does nothing. */
  pauseWriting(): void {}
  /** Does nothing. */
  resumeWriting(): void {}
}

/**
 * A {@link BufferedProtocol} base that hands out one reusable buffer of `bufferSize` bytes (default 64 KiB) and
 * whose `bufferUpdated` does nothing; subclasses override `bufferUpdated` and read `this.buffer.subarray(0, n)`.
 */
export class BufferedProtocolBase implements BufferedProtocol {
  /** The transport given to `connectionMade`, or null before it. */
  transport: Transport | null = null;
  /** The buffer returned by every `getBuffer` call. */
  readonly buffer: Buffer;

  /** @param bufferSize size of the reusable receive buffer, bytes (default 64 KiB). */
  constructor(bufferSize = 64 * 1024) {
    if (!(bufferSize > 0)) throw new RangeError('bufferSize must be positive');
    this.buffer = Buffer.allocUnsafe(bufferSize);
  }
  /** Stores the transport. */
  connectionMade(transport: Transport): void {
    this.transport = transport;
  }
  /** Returns {@link buffer}. */
  getBuffer(_sizeHint: number): Uint8Array {
    return this.buffer;
  }
  /** Does nothing. */
  bufferUpdated(_nbytes: number): void {}
  /** Returns undefined, so the transport closes itself on EOF. */
  eofReceived(): boolean | void {
    return undefined;
  }
  /** Does nothing. */
  connectionLost(_exc: Error | null): void {}
  /** Does nothing. */
  pauseWriting(): void {}
  /** Does nothing. */
  resumeWriting(): void {}
}

/** True when `p` reads into its own buffers (it has a `getBuffer` method), so the transport calls it that way. */
export function isBufferedProtocol(p: BaseProtocol): p is BufferedProtocol {
  return typeof (p as BufferedProtocol).getBuffer === 'function';
}
