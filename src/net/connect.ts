/**
 * The loop's networking methods (asyncio `create_connection`, `create_server`, `create_unix_*`, `start_tls`),
 * installed on `EventLoop.prototype` from here by declaration merging, so `src/loop/` never imports `src/net/`.
 *
 * Every `ssl` option is a plain node:tls options object (what the PKI builders return), optionally carrying the
 * PKI hooks (`kPeerIdentity`, `kMapTlsError`, `kVerifyPeer`). One `tls.SecureContext` is built per options object
 * and reused for every connection made with that same object (a shared context did full mTLS handshakes 20–60%
 * faster, measured on Node 20): build the options once, pass the same object each time.
 *
 * @module
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { SSL_HANDSHAKE_TIMEOUT, SSL_SHUTDOWN_TIMEOUT } from '../constants.js';
import { CancelledError, HandshakeTimeout, PeerRejected, TransportClosed, TransportError } from '../errors.js';
import { EventLoop } from '../loop/index.js';
import type { Future, TimerHandle } from '../loop/index.js';
import type { AnyProtocol, ProtocolFactory } from './protocols.js';
import { enableHalfOpen, mapAlert, mapTlsError, runTlsHooks, Server, TlsAcceptor } from './server.js';
import type { ClientSslOptions, CreateServerOptions, ServerSslOptions } from './server.js';
import { post } from './flow-control.js';
import { SocketTransport } from './socket-transport.js';
import type { Transport } from './transports.js';

/** Options of `loop.createConnection` / `loop.createUnixConnection`. */
export interface CreateConnectionOptions {
  /** node:tls client options (+ PKI hooks) for TLS, or `true` for node:tls defaults (system roots). */
  ssl?: ClientSslOptions | true | null;
  /**
   * The name the server's certificate must match (default: `host`); `''` turns hostname matching off (the chain
   * is still verified). Sent as SNI unless it is an IP address.
   */
  serverHostname?: string;
  /** Seconds the connect plus TLS handshake may take (default 60). */
  sslHandshakeTimeout?: number;
  /**
   * Seconds a graceful close waits for the peer's EOF / close_notify before aborting (default 30). Unlike asyncio it
   * also bounds a plain TCP `close()`, which waits for the peer's FIN too (so unread data never turns into a reset).
   */
  sslShutdownTimeout?: number;
  /** Local address to bind: `[host, port]` (asyncio's `local_addr`). TCP only. */
  localAddr?: readonly [string, number];
  /** TCP_NODELAY (default true). */
  noDelay?: boolean;
  /** TCP keep-alive (default false). */
  keepAlive?: boolean;
}

/** Options of `loop.startTls`. */
export interface StartTlsOptions {
  /** True on the accepting side (default false). */
  serverSide?: boolean;
  /** As in {@link CreateConnectionOptions.serverHostname}; client side only. */
  serverHostname?: string;
  /** Seconds the handshake may take (default 60). */
  sslHandshakeTimeout?: number;
  /** Seconds a graceful close waits for the peer's close_notify (default 30). */
  sslShutdownTimeout?: number;
  /**
   * Bytes already read from the connection above the transport that belong to the TLS layer (a StreamReader's
   * buffer: `StreamWriter.startTls` passes it); they are fed to TLS before anything else.
   */
  initialData?: Uint8Array;
}

declare module '../loop/event-loop.js' {
  interface EventLoop {
    /**
     * Opens a TCP (or, with `ssl`, TLS) connection to `host:port` and drives a protocol made by `factory` over it.
     * Resolves once `connectionMade` ran (after the handshake and the PKI hooks on TLS). Cancellable: a
     * cancelled connect destroys the socket.
     * @throws PeerRejected when the peer refused the connection or the handshake (`cause`: the node:tls error), or
     *   the error the `ssl` options' `mapTlsError`/`verifyPeer` hook returned.
     * @throws HandshakeTimeout after `sslHandshakeTimeout` seconds.
     * @throws TransportError for other connect failures (`cause`: the Node error).
     * @throws RangeError for bad arguments: a port outside 0-65535, a non-positive timeout, `sslHandshakeTimeout` or
     *   `serverHostname` without `ssl`, or `ssl` without a host (Unix sockets, `''`) and without `serverHostname`.
     */
    createConnection<P extends AnyProtocol>(factory: ProtocolFactory<P>, host: string, port: number,
      options?: CreateConnectionOptions): Promise<[Transport, P]>;
    /**
     * As {@link createConnection}, over a Unix socket at `path`.
     * @throws TypeError when `path` is not a string; RangeError when it is empty (before any connect).
     */
    createUnixConnection<P extends AnyProtocol>(factory: ProtocolFactory<P>, path: string,
      options?: Omit<CreateConnectionOptions, 'localAddr'>): Promise<[Transport, P]>;
    /**
     * Listens on `host:port` (`host` null/undefined: every interface; an array: each of them, on one port; `port`
     * 0: a free port, read it from `server.sockets[0].address()`; a host given twice is bound once). Each
     * connection gets a protocol from `factory`.
     * @throws TransportError when listening fails.
     * @throws RangeError for a port outside 0-65535, a non-positive timeout, or `sslHandshakeTimeout` without `ssl`.
     */
    createServer(factory: ProtocolFactory<AnyProtocol>, host: string | readonly string[] | null | undefined,
      port: number, options?: CreateServerOptions): Promise<Server>;
    /**
     * As {@link createServer}, on a Unix socket at `path` (its socket file is removed by `close()`, unless replaced
     * since). A socket file already at `path` that refuses connections (left by a crashed process) is removed first,
     * as asyncio does; one with a live server on it is kept and the listen fails (asyncio would unlink it).
     * @throws TypeError when `path` is not a string; RangeError when it is empty.
     */
    createUnixServer(factory: ProtocolFactory<AnyProtocol>, path: string,
      options?: Omit<CreateServerOptions, 'reusePort'>): Promise<Server>;
    /**
     * Upgrades a plain connection to TLS in place and returns the new transport; the protocol keeps its state
     * (no second `connectionMade`) and must use the returned transport from now on. Bytes the old transport had
     * read but not delivered go to the TLS layer. On failure the connection is closed, the protocol gets
     * `connectionLost(err)` and the promise rejects with `err`. While the handshake runs, `close()` or `abort()` of
     * `transport` (a server's `closeClients()`/`abortClients()` among them) ends it at once: TransportClosed.
     * @throws TypeError when `sslOptions` is not an object or `transport` is not a socket transport (asyncio's
     *   start_tls raises TypeError for both, in that order).
     * @throws TransportError when `transport` belongs to another loop or is closing. A TLS transport gets a second
     *   TLS layer inside the first (TLS over TLS, as asyncio's start_tls since 3.11).
     * @throws RangeError for a non-positive `sslHandshakeTimeout` or `sslShutdownTimeout` (the transport is untouched).
     */
    startTls(transport: Transport, protocol: AnyProtocol, sslOptions: ClientSslOptions | ServerSslOptions,
      options?: StartTlsOptions): Promise<Transport>;
  }
}

const contexts = new WeakMap<object, tls.SecureContext>();

/**
 * The one `tls.SecureContext` for `options` (made on first use, then reused for every connection made with the
 * same object; an explicit `options.secureContext` wins).
 * @throws TransportError when node:tls rejects the options (bad key, key/cert mismatch, …).
 */
export function secureContextFor(options: tls.SecureContextOptions & { secureContext?: tls.SecureContext }): tls.SecureContext {
  if (options.secureContext !== undefined) return options.secureContext;
  let ctx = contexts.get(options);
  if (ctx === undefined) {
    try {
      ctx = tls.createSecureContext(options);
    } catch (err) {
      throw new TransportError(`invalid TLS options: ${(err as Error).message}`, { cause: err });
    }
    contexts.set(options, ctx);
  }
  return ctx;
}

const acceptors = new WeakMap<object, TlsAcceptor>();
const DEFAULT_CLIENT_SSL: ClientSslOptions = {};

function checkTimeout(name: string, v: number | undefined): void {
  if (v !== undefined && !(v > 0)) throw new RangeError(`${name} must be a positive number of seconds, got ${v}`);
}

// A bad port is a bad argument (asyncio: getaddrinfo's OverflowError before any socket exists), not a failed listen.
function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
  }
}

function clientTlsOptions(ssl: ClientSslOptions, host: string | undefined, serverHostname: string | undefined,
  socket: net.Socket): tls.ConnectionOptions {
  const ctx = secureContextFor(ssl);
  const name = serverHostname ?? host;
  // allowHalfOpen is a net.Socket option node:tls passes through (TLS 1.3 half-close); its typings omit it.
  const o = { ...ssl, socket, secureContext: ctx, allowHalfOpen: true } as tls.ConnectionOptions;
  if (name !== undefined && name !== '' && net.isIP(name) === 0) o.servername = name;
  if (serverHostname === '') o.checkServerIdentity = () => undefined;
  else if (name !== undefined && net.isIP(name) !== 0) o.host = name;
  return o;
}

interface ConnectTarget {
  net: net.NetConnectOpts;
  label: string;
  host: string | undefined;
  unixPath: string | null;
}

function connectStream<P extends AnyProtocol>(loop: EventLoop, factory: ProtocolFactory<P>, target: ConnectTarget,
  options: CreateConnectionOptions): Future<[Transport, P]> {
  const sslOpt = options.ssl === true ? DEFAULT_CLIENT_SSL : options.ssl ?? null;
  if (sslOpt === null) {
    if (options.sslHandshakeTimeout !== undefined) throw new RangeError('sslHandshakeTimeout is only meaningful with ssl');
    if (options.serverHostname !== undefined) throw new RangeError('serverHostname is only meaningful with ssl');
  } else if ((target.host === undefined || target.host === '') && options.serverHostname === undefined) {
    // Nothing to check the certificate against (asyncio: "You must set server_hostname when using ssl without a host").
    throw new RangeError('serverHostname is required when using ssl without a host');
  }
  checkTimeout('sslHandshakeTimeout', options.sslHandshakeTimeout);
  checkTimeout('sslShutdownTimeout', options.sslShutdownTimeout);
  const fut = loop.createFuture<[Transport, P]>();
  const raw = net.connect({ ...target.net, allowHalfOpen: true, noDelay: options.noDelay ?? true, keepAlive: options.keepAlive ?? false } as net.NetConnectOpts);
  let tlsSocket: tls.TLSSocket | null = null;
  let connected = false;
  let timer: TimerHandle | null = null;
  const teardown = (): void => {
    timer?.cancel();
    timer = null;
    if (tlsSocket === null) {
      raw.destroy();
    } else {
      killRaw(raw);
      tlsSocket.destroy();
    }
  };
  const fail = (err: Error): void => {
    teardown();
    if (!fut.done()) fut.setException(err);
  };
  const onError = (err: Error): void => {
    post(loop, () => {
      if (fut.done()) return;
      const code = (err as NodeJS.ErrnoException).code;
      if (!connected) {
        fail(code === 'ECONNREFUSED'
          ? new PeerRejected(`connection refused by ${target.label}`, { cause: err })
          : new TransportError(`cannot connect to ${target.label}: ${err.message}`, { cause: err }));
      } else {
        fail(mapTlsError(sslOpt ?? {}, err, 'client',
          () => new PeerRejected(`TLS handshake with ${target.label} failed: ${err.message}`, { cause: err })));
      }
    });
  };
  const onClose = (): void => {
    post(loop, () => {
      if (!fut.done()) fail(new PeerRejected(`${target.label} closed the connection during the handshake`));
    });
  };
  const ready = (): void => {
    if (fut.done()) return;
    timer?.cancel();
    timer = null;
    const socket: net.Socket = tlsSocket ?? raw;
    if (socket.destroyed) {
      fail(new PeerRejected(`${target.label} closed the connection during the handshake`));
      return;
    }
    let peerIdentity: unknown = null;
    let protocol: P;
    try {
      if (tlsSocket !== null) peerIdentity = runTlsHooks(sslOpt!, tlsSocket);
      protocol = factory();
    } catch (err) {
      fail(err instanceof Error ? err : new TransportError(String(err), { cause: err }));
      return;
    }
    socket.off('error', onError);
    socket.off('close', onClose);
    raw.off('close', onClose);
    raw.off('error', onError);
    raw.on('error', noop);
    const t = new SocketTransport(loop, socket, protocol, {
      tls: tlsSocket === null ? null : { secureContext: secureContextFor(sslOpt!), peerIdentity,
        mapError: (e: Error) => mapAlert(sslOpt!, e, 'client') },
      rawSocket: raw,
      unixPath: target.unixPath,
      sslShutdownTimeout: options.sslShutdownTimeout ?? SSL_SHUTDOWN_TIMEOUT,
    });
    t._connectionMade();
    if (t._appState === 'made' || t._appState === 'eof') fut.setResult([t, protocol]);
    else fut.setException(new TransportError(`connection to ${target.label} failed in connectionMade()`));
  };
  raw.on('error', onError);
  raw.once('connect', () => {
    connected = true;
  });
  if (sslOpt !== null) {
    // Build the context now, so bad options throw here rather than from a socket event.
    try {
      secureContextFor(sslOpt);
    } catch (err) {
      raw.destroy();
      throw err;
    }
    // TLS goes on top once TCP is connected: a socket wrapped while still connecting cannot be torn down
    // reliably if the connect is abandoned (its file descriptor outlives destroy() on Node 20).
    raw.once('connect', () => {
      if (fut.done()) return;
      const s = tls.connect(clientTlsOptions(sslOpt, target.host, options.serverHostname, raw));
      tlsSocket = s;
      s.on('error', onError);
      s.on('close', onClose);
      s.once('secureConnect', () => post(loop, ready) || s.destroy());
    });
    raw.on('close', onClose);
    const hs = options.sslHandshakeTimeout ?? SSL_HANDSHAKE_TIMEOUT;
    timer = loop.callLater(hs, () => {
      timer = null;
      fail(new HandshakeTimeout(`TLS handshake with ${target.label} not completed within ${hs} s`));
    });
  } else {
    raw.on('close', onClose);
    raw.once('connect', () => post(loop, ready) || raw.destroy());
  }
  fut.addDoneCallback((f) => {
    if (f.cancelled()) teardown();
  });
  return fut;
}

async function createConnection<P extends AnyProtocol>(this: EventLoop, factory: ProtocolFactory<P>, host: string,
  port: number, options: CreateConnectionOptions = {}): Promise<[Transport, P]> {
  checkPort(port);
  const netOpts: net.TcpNetConnectOpts = { host, port };
  if (options.localAddr !== undefined) {
    netOpts.localAddress = options.localAddr[0];
    netOpts.localPort = options.localAddr[1];
  }
  const label = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
  return await connectStream(this, factory, { net: netOpts, label, host, unixPath: null }, options);
}

async function createUnixConnection<P extends AnyProtocol>(this: EventLoop, factory: ProtocolFactory<P>, path: string,
  options: CreateConnectionOptions = {}): Promise<[Transport, P]> {
  checkPath(path);
  return await connectStream(this, factory, { net: { path }, label: path, host: undefined, unixPath: path }, options);
}

/** A Unix socket path is a non-empty string (asyncio: ValueError 'path was not specified, and no sock specified'). */
function checkPath(path: unknown): void {
  if (typeof path !== 'string') throw new TypeError(`path was not specified: a Unix socket path is a string, got ${String(path)}`);
  if (path === '') throw new RangeError('path was not specified: a Unix socket path cannot be empty');
}

function serverOptions(options: CreateServerOptions): CreateServerOptions {
  if (!options.ssl && options.sslHandshakeTimeout !== undefined) {
    throw new RangeError('sslHandshakeTimeout is only meaningful with ssl');
  }
  checkTimeout('sslHandshakeTimeout', options.sslHandshakeTimeout);
  checkTimeout('sslShutdownTimeout', options.sslShutdownTimeout);
  return options;
}

function makeNetServer(options: CreateServerOptions): () => net.Server {
  return () => net.createServer({ allowHalfOpen: true, noDelay: options.noDelay ?? true, keepAlive: options.keepAlive ?? false });
}

async function createServer(this: EventLoop, factory: ProtocolFactory<AnyProtocol>,
  host: string | readonly string[] | null | undefined, port: number, options: CreateServerOptions = {}): Promise<Server> {
  checkPort(port);
  const o = serverOptions(options);
  // Each distinct host once, in the given order (asyncio binds the set of addresses it resolved).
  const hosts = host === null || host === undefined ? [undefined] : typeof host === 'string' ? [host] : [...new Set(host)];
  const server = new Server(this, factory, { kind: 'tcp', hosts, port }, o, makeNetServer(o));
  if (o.startServing !== false) await server.startServing();
  return server;
}

async function createUnixServer(this: EventLoop, factory: ProtocolFactory<AnyProtocol>, path: string,
  options: CreateServerOptions = {}): Promise<Server> {
  checkPath(path);
  const o = serverOptions(options);
  const server = new Server(this, factory, { kind: 'unix', path }, o, makeNetServer(o));
  if (o.startServing !== false) await server.startServing();
  return server;
}

async function startTls(this: EventLoop, transport: Transport, protocol: AnyProtocol,
  sslOptions: ClientSslOptions | ServerSslOptions, options: StartTlsOptions = {}): Promise<Transport> {
  const loop = this;
  // Argument types first, as asyncio's start_tls (TypeError for the context, then for the transport).
  if (sslOptions === null || typeof sslOptions !== 'object') {
    throw new TypeError(`sslOptions is expected to be a node:tls options object, got ${String(sslOptions)}`);
  }
  if (!(transport instanceof SocketTransport)) {
    throw new TypeError(`transport ${String(transport)} is not supported by startTls()`);
  }
  if (transport.getLoop() !== loop) throw new TransportError('startTls() needs a socket transport of this loop');
  if (transport.isClosing()) throw new TransportError('the transport is closing');
  checkTimeout('sslHandshakeTimeout', options.sslHandshakeTimeout);
  checkTimeout('sslShutdownTimeout', options.sslShutdownTimeout);
  const owner = transport._owner;
  const unixPath = transport._unixPath;
  // TLS over TLS (asyncio since 3.11, for HTTPS through an HTTPS proxy): the new layer runs on the old TLS socket
  // (`raw`), and the TCP socket under both (`bottom`) is what the new transport reports as 'socket' and destroys.
  const bottom = transport.getExtraInfo('socket') as net.Socket;
  const { socket: raw, unread } = transport._detachSocket();
  if (options.initialData !== undefined && options.initialData.length > 0) unread.unshift(Buffer.from(options.initialData));
  // node:tls reads bytes already buffered on the socket before its first read from the kernel.
  if (unread.length > 0) raw.unshift(unread.length === 1 ? unread[0]! : Buffer.concat(unread));
  raw.on('error', noop);
  const fut = loop.createFuture<Transport>();
  let timer: TimerHandle | null = null;
  let tlsSocket: tls.TLSSocket | null = null;
  const lost = (err: Error): void => {
    transport._setHandover(null);
    timer?.cancel();
    if (bottom !== raw) raw.destroy();
    killRaw(bottom);
    tlsSocket?.destroy();
    owner?._detachTransport(transport);
    if (fut.done()) return;
    fut.setException(err);
    if (typeof protocol.connectionLost === 'function') {
      try {
        protocol.connectionLost(err);
      } catch (e) {
        loop.callExceptionHandler({ message: 'Exception in protocol.connectionLost()', exception: e, protocol });
      }
    }
  };
  const done = (err: Error | null, s: tls.TLSSocket | null): void => {
    if (fut.done()) return;
    timer?.cancel();
    const side = options.serverSide ? 'server' : 'client';
    if (err !== null || s === null || s.destroyed) {
      const e = err ?? new PeerRejected('the peer closed the connection during the TLS handshake');
      lost(mapTlsError(sslOptions, e, side, () => new PeerRejected(`TLS handshake failed: ${e.message}`, { cause: e })));
      return;
    }
    let peerIdentity: unknown;
    try {
      peerIdentity = runTlsHooks(sslOptions, s);
    } catch (e) {
      lost(e instanceof Error ? e : new PeerRejected(String(e)));
      return;
    }
    transport._setHandover(null);
    enableHalfOpen(s);
    const t = new SocketTransport(loop, s, protocol, {
      owner,
      alreadyMade: true,
      tls: { secureContext: options.serverSide ? undefined : secureContextFor(sslOptions), peerIdentity,
        mapError: (e: Error) => mapAlert(sslOptions, e, side) },
      rawSocket: bottom,
      unixPath,
      sslShutdownTimeout: options.sslShutdownTimeout ?? SSL_SHUTDOWN_TIMEOUT,
    });
    owner?._replaceTransport(transport, t);
    fut.setResult(t);
  };
  // close()/abort() of the transport being upgraded (a server's closeClients()/abortClients()) end the handshake:
  // the sockets go now, startTls rejects and the protocol hears connectionLost in a callback of its own.
  transport._setHandover(() => {
    if (bottom !== raw) raw.destroy();
    killRaw(bottom);
    tlsSocket?.destroy();
    loop.callSoon(() => lost(new TransportClosed('the connection was closed during the TLS handshake')));
  });
  const hs = options.sslHandshakeTimeout ?? SSL_HANDSHAKE_TIMEOUT;
  timer = loop.callLater(hs, () => {
    timer = null;
    lost(new HandshakeTimeout(`TLS handshake not completed within ${hs} s`));
  });
  fut.addDoneCallback((f) => {
    if (f.cancelled()) lost(new CancelledError('startTls() was cancelled'));
  });
  if (options.serverSide) {
    let acceptor = acceptors.get(sslOptions);
    if (acceptor === undefined) {
      acceptor = new TlsAcceptor(sslOptions as ServerSslOptions);
      acceptors.set(sslOptions, acceptor);
    }
    acceptor.accept(raw, (err, s) => post(loop, () => done(err, s)) || raw.destroy());
  } else {
    const peer = transport.getExtraInfo('peername') as { address?: string } | string | undefined;
    const host = typeof peer === 'object' ? peer.address : undefined;
    const s = tls.connect(clientTlsOptions(sslOptions as ClientSslOptions, host, options.serverHostname, raw));
    tlsSocket = s;
    s.on('error', (err) => post(loop, () => done(err, null)));
    s.once('secureConnect', () => post(loop, () => done(null, s)) || s.destroy());
    s.once('close', () => post(loop, () => done(null, null)));
  }
  return await fut;
}

function noop(): void {}

/**
 * Destroys the TCP socket under a client TLS socket whose handshake failed. A plain `destroy()` of a
 * `tls.connect({socket})` wrapper mid-handshake leaves the file descriptor open on Node 20 (the peer never sees a
 * FIN; measured), so the connection is reset instead.
 */
function killRaw(raw: net.Socket): void {
  try {
    raw.resetAndDestroy();
  } catch {
    raw.destroy();
  }
}

EventLoop.prototype.createConnection = createConnection;
EventLoop.prototype.createUnixConnection = createUnixConnection;
EventLoop.prototype.createServer = createServer;
EventLoop.prototype.createUnixServer = createUnixServer;
EventLoop.prototype.startTls = startTls;
