/**
 * Transports: the contracts of what the library gives a protocol (asyncio `transports.py`, PEP 3156).
 *
 * A transport owns one connection (a TCP or TLS socket, a Unix socket, or an in-memory pair) and drives exactly one
 * protocol through the grammar documented in `protocols.ts` (CM → DR* → ER? → CL). The one concrete socket
 * implementation is `SocketTransport`; `createMemoryPair` gives two connected in-memory transports.
 *
 * Writes never block. Everything written during one loop iteration is corked and handed to the socket in one write
 * at the end of that iteration (`loop.deferToIterationEnd`), so many small messages cost one TLS record, not one each.
 * Flow control is asyncio's: above the high-water mark the protocol's `pauseWriting()` is called; once the buffer
 * drained to the low-water mark `resumeWriting()` follows.
 *
 * @module
 */
import type { TLSSocket } from 'node:tls';
import type { EventLoop } from '../loop/index.js';
import type { BaseProtocol } from './protocols.js';

/** Write-buffer limits in bytes, as returned by `getWriteBufferLimits()` (asyncio returns `(low, high)`). */
export interface WriteBufferLimits {
  /** Low-water mark, bytes: `resumeWriting()` is called once the buffer drained to this size or below. */
  low: number;
  /** High-water mark, bytes: `pauseWriting()` is called when the buffer goes strictly over it. */
  high: number;
}

/**
 * The keys `getExtraInfo` knows. Unknown keys and keys a transport cannot answer (no TLS, no socket) return the
 * default.
 *
 * | key | value |
 * |---|---|
 * | `peername` | `{address, port, family}` of the peer (Unix sockets: the path string) |
 * | `sockname` | `{address, port, family}` of the local end (Unix sockets: the path string) |
 * | `socket` | the underlying `net.Socket` / `tls.TLSSocket` (read it, don't read from or write to it) |
 * | `sslObject` | the `tls.TLSSocket` (TLS only) |
 * | `cipher` | `tls.TLSSocket.getCipher()`: `{name, standardName, version}` (TLS only) |
 * | `tlsVersion` | `'TLSv1.3'`, `'TLSv1.2'`, … (TLS only) |
 * | `peercert` | the peer's leaf certificate parsed: `tls.TLSSocket.getPeerCertificate(false)`, read at the handshake (TLS only; `null` when none) |
 * | `peerX509` | the peer's certificate as a `crypto.X509Certificate` (TLS only; `null` when none) |
 * | `alpnProtocol` | the negotiated ALPN protocol, or `false` (TLS only) |
 * | `peerIdentity` | what the `ssl` options' `Symbol.for('tulipwire.peerIdentity')` hook returned (mTLS; else `null`) |
 * | `exportKeyingMaterial` | `(length, label, context?) => Buffer` (RFC 5705; TLS only) |
 * | `sslcontext` | the `tls.SecureContext` the connection was made with (TLS only) |
 */
export type ExtraInfoKey =
  | 'peername' | 'sockname' | 'socket' | 'sslObject' | 'cipher' | 'tlsVersion' | 'peercert' | 'peerX509'
  | 'alpnProtocol' | 'peerIdentity' | 'exportKeyingMaterial' | 'sslcontext';

/** What every transport has (asyncio `BaseTransport`). */
export interface BaseTransport {
  /** The loop this transport runs its protocol's callbacks on. */
  getLoop(): EventLoop;
  /**
   * Extra information about the connection (see {@link ExtraInfoKey} for the keys), or `dflt` (default
   * `undefined`) when the key is unknown or has no value on this transport.
   */
  getExtraInfo(name: ExtraInfoKey | (string & {}), dflt?: unknown): unknown;
  /** True once `close()` or `abort()` was called, or the connection was lost. */
  isClosing(): boolean;
  /**
   * Closes the transport: buffered data is flushed first (and on TLS a close_notify sent), then the socket is
   * closed and the protocol's `connectionLost(null)` is called. Idempotent. On TLS, a peer that does not finish
   * the shutdown within `sslShutdownTimeout` is aborted.
   */
  close(): void;
  /** The protocol this transport currently drives. */
  getProtocol(): BaseProtocol;
  /**
   * Switches to another protocol; later callbacks go to `protocol` (asyncio's protocol switching, e.g. after an
   * upgrade frame). The new protocol does not get `connectionMade`.
   */
  setProtocol(protocol: BaseProtocol): void;
}

/** The reading half (asyncio `ReadTransport`). */
export interface ReadTransport extends BaseTransport {
  /** True unless reading is paused (by {@link pauseReading}, or held by a layer of the library; false once closing). */
  isReading(): boolean;
  /**
   * Stops reading from the socket: no `dataReceived` until {@link resumeReading}. The kernel's receive buffer
   * fills and TCP pushes back on the sender. Idempotent.
   */
  pauseReading(): void;
  /** Starts reading again after {@link pauseReading}. Idempotent. */
  resumeReading(): void;
  /**
   * @internal Holds reading paused for a layer of the library (`owner`), apart from the user's pauseReading:
   * reading runs only while neither is in force. Optional: a transport without it is paused with pauseReading.
   */
  _holdReading?(owner: object): void;
  /** @internal Lets go of `owner`'s hold. */
  _releaseReading?(owner: object): void;
}

/**
 * @internal Holds `t`'s reading paused for `owner`, a layer of the library ({@link ReadTransport._holdReading}), or
 * pauses it where the transport has no holds. Each layer holds and releases its own, so no layer's release (and no
 * user's `resumeReading`) lifts another's pause.
 */
export function holdReading(t: ReadTransport, owner: object): void {
  if (t._holdReading !== undefined) t._holdReading(owner);
  else t.pauseReading();
}

/** @internal Lets go of `owner`'s {@link holdReading} (resumes, where the transport has no holds). */
export function releaseReading(t: ReadTransport, owner: object): void {
  if (t._releaseReading !== undefined) t._releaseReading(owner);
  else t.resumeReading();
}

/** The writing half (asyncio `WriteTransport`). */
export interface WriteTransport extends BaseTransport {
  /**
   * Sets the write-buffer limits, bytes. With only `high`, `low = high / 4`; with only `low`, `high = 4 * low`;
   * with neither, the defaults 64 KiB / 16 KiB. `high = 0` pauses whenever anything is buffered. Unlike asyncio,
   * raising the limits also resumes a paused protocol when the buffer is now at or below the new low mark.
   * @throws RangeError unless `high >= low >= 0`.
   */
  setWriteBufferLimits(limits?: { high?: number; low?: number }): void;
  /** Bytes written but not yet taken by the kernel (the corked bytes of this iteration included). */
  getWriteBufferSize(): number;
  /** The current limits, bytes. */
  getWriteBufferLimits(): WriteBufferLimits;
  /**
   * Queues `data` for sending; never blocks. Empty data is ignored. After `close()`, `abort()` or the loss of the
   * connection, writes are dropped silently (as in asyncio). The bytes leave at the end of the loop iteration; the
   * transport keeps a reference to `data` until then, so don't modify it.
   * @throws TransportClosed after `writeEof()`.
   * @throws TypeError when `data` is not a Uint8Array.
   */
  write(data: Uint8Array): void;
  /** Writes each chunk of `list` (one socket write at the iteration's end, like {@link write}); obeys high water. */
  writelines(list: Iterable<Uint8Array>): void;
  /**
   * Closes the sending side after the buffered data (TCP FIN; on TLS 1.3 a close_notify with the connection
   * kept half-open). The protocol may still receive.
   * @throws TransportError when {@link canWriteEof} is false.
   */
  writeEof(): void;
  /**
   * True when {@link writeEof} is supported: TCP and Unix sockets, and TLS 1.3 (Node keeps a TLS 1.3 connection
   * half-open with `allowHalfOpen`; asyncio's TLS transport always says false).
   */
  canWriteEof(): boolean;
  /** Closes now: the buffer is dropped, the socket destroyed, `connectionLost(null)` follows. Idempotent. */
  abort(): void;
}

/** A bidirectional stream transport (asyncio `Transport`): what `connectionMade` receives. */
export interface Transport extends ReadTransport, WriteTransport {}

// ---------------------------------------------------------------------------------------------------------------
// Hooks the PKI layer sets on a `ssl` options object (net and pki never import each other; both use Symbol.for).

/**
 * `ssl[kPeerIdentity]: (socket: tls.TLSSocket) => PeerIdentity | null`: called once after a successful handshake;
 * its result is `getExtraInfo('peerIdentity')`. node:tls ignores symbol-keyed options.
 */
export const kPeerIdentity: unique symbol = Symbol.for('tulipwire.peerIdentity');
/**
 * `ssl[kMapTlsError]: (err: Error, side: 'client' | 'server') => Error | null`: turns a handshake or verification
 * failure into a typed error (a `CertificateError`). A non-null result is what `createConnection` rejects with, and
 * what the server reports to the loop's exception handler; otherwise `PeerRejected`/`HandshakeTimeout` with {cause}.
 */
export const kMapTlsError: unique symbol = Symbol.for('tulipwire.mapTlsError');
/**
 * `ssl[kVerifyPeer]: (socket: tls.TLSSocket) => Error | null`: an extra check after the handshake (an SPKI pin). A
 * non-null error aborts the connection before `connectionMade`, reported as for {@link kMapTlsError}.
 */
export const kVerifyPeer: unique symbol = Symbol.for('tulipwire.verifyPeer');

/** The shape of the PKI hooks a `ssl` options object may carry. */
export interface TlsHooks {
  /** See {@link kPeerIdentity}. */
  [kPeerIdentity]?: (socket: TLSSocket) => unknown;
  /** See {@link kMapTlsError}. */
  [kMapTlsError]?: (err: Error, side: 'client' | 'server') => Error | null;
  /** See {@link kVerifyPeer}. */
  [kVerifyPeer]?: (socket: TLSSocket) => Error | null;
}
