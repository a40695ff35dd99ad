/**
 * `Server`: what `loop.createServer` / `loop.createUnixServer` return (asyncio `base_events.Server`, with the
 * 3.12.1 `waitClosed` fix and 3.13's `closeClients`/`abortClients`).
 *
 * A server accepts on one or more listening `net.Server`s. Each accepted connection is counted in
 * {@link Server.activeCount} from the moment it is accepted, TLS handshakes in progress included, so
 * `abortClients()` and `waitClosed()` see connections that never finished their handshake. TLS is done by a
 * non-listening `tls.Server` that is handed each accepted socket: node:tls's own server logic (client-certificate
 * checks, `setSecureContext`, session tickets) applies unchanged, while the handshake timeout runs on the loop's
 * clock.
 *
 * @module
 */
import { renameSync, statSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import * as tls from 'node:tls';
import { SSL_HANDSHAKE_TIMEOUT, SSL_SHUTDOWN_TIMEOUT } from '../constants.js';
import { HandshakeTimeout, isCancelledError, PeerRejected, TransportError } from '../errors.js';
import { shield } from '../loop/index.js';
import type { EventLoop, Future, Task, TimerHandle } from '../loop/index.js';
import type { AnyProtocol, ProtocolFactory } from './protocols.js';
import { post } from './flow-control.js';
import { SocketTransport } from './socket-transport.js';
import type { TransportOwner } from './socket-transport.js';
import { kMapTlsError, kPeerIdentity, kVerifyPeer } from './transports.js';
import type { TlsHooks } from './transports.js';

/** A `ssl` options object for servers: node:tls server options plus the PKI hooks. */
export type ServerSslOptions = tls.TlsOptions & TlsHooks;
/** A `ssl` options object for clients: node:tls connection options plus the PKI hooks. */
export type ClientSslOptions = tls.ConnectionOptions & TlsHooks;

// node:tls arms its own handshake timer too; ours (on the loop clock) must always fire first.
const NODE_HANDSHAKE_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * @internal Runs TLS server handshakes on accepted sockets through one non-listening `tls.Server`, and reports
 * each outcome to the callback given with the socket.
 */
export class TlsAcceptor {
  /** The node:tls server doing the work (never listening). */
  readonly tlsServer: tls.Server;
  /** The options it was made with (their PKI hooks are read per connection). */
  options: ServerSslOptions;
  // Weak: an entry whose socket node:tls never settles (it always does: tlsClientError on close) cannot leak.
  readonly #pending = new WeakMap<Socket, (err: Error | null, socket: tls.TLSSocket) => void>();

  constructor(options: ServerSslOptions) {
    this.options = options;
    try {
      this.tlsServer = tls.createServer({ ...options, allowHalfOpen: true, handshakeTimeout: NODE_HANDSHAKE_TIMEOUT_MS });
    } catch (err) {
      throw new TransportError(`invalid TLS server options: ${(err as Error).message}`, { cause: err });
    }
    this.tlsServer.on('secureConnection', (s: tls.TLSSocket) => {
      enableHalfOpen(s);
      this.#settle(null, s);
    });
    this.tlsServer.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      // With TLS 1.3 a rejected client certificate surfaces as a plain reset; the reason is on the socket.
      const reason = (s as { authorizationError?: unknown }).authorizationError;
      if (typeof reason === 'string' && reason !== '') {
        const verifyErr = new Error(reason) as NodeJS.ErrnoException;
        verifyErr.code = reason;
        (verifyErr as { cause?: unknown }).cause = err;
        this.#settle(verifyErr, s);
      } else {
        this.#settle(err, s);
      }
    });
  }

  /**
   * Starts the server-side handshake on `raw`; `done` runs once, from a Node callback. The TLS socket inherits
   * `allowHalfOpen` from `raw`, which is turned off for the handshake (a peer's EOF then ends it at once instead of
   * leaving it for the handshake timeout); it is turned back on ({@link enableHalfOpen}) the moment the handshake
   * is done, in node:tls's own callback: a TLS 1.3 client may half-close right behind its Finished, and node:tls
   * acts on that EOF before the loop makes a transport (with half-open off it ended and destroyed the socket).
   */
  accept(raw: Socket, done: (err: Error | null, socket: tls.TLSSocket) => void): void {
    raw.allowHalfOpen = false;
    this.#pending.set(raw, done);
    this.tlsServer.emit('connection', raw);
  }

  /** Swaps the certificate for new handshakes (node:tls `setSecureContext`); open connections keep theirs. */
  setSecureContext(options: ServerSslOptions): void {
    try {
      this.tlsServer.setSecureContext(options);
    } catch (err) {
      throw new TransportError(`invalid TLS server options: ${(err as Error).message}`, { cause: err });
    }
    this.options = options;
  }

  #settle(err: Error | null, s: tls.TLSSocket): void {
    // node:tls keeps the accepted socket as `_parent` of the TLS socket it wraps around it.
    const raw = (s as unknown as { _parent?: Socket })._parent;
    if (raw === undefined) return; // cannot happen on Node 20; the handshake timeout would clean up
    const done = this.#pending.get(raw);
    if (done === undefined) return;
    this.#pending.delete(raw);
    done(err, s);
  }
}

/** @internal After the handshake: keep the connection half-open on a peer's EOF (TLS 1.3 half-close). */
export function enableHalfOpen(socket: Socket): void {
  socket.allowHalfOpen = true;
}

/** Runs the PKI hooks after a handshake. Returns the peer identity, or throws the rejection. @internal */
export function runTlsHooks(ssl: TlsHooks, socket: tls.TLSSocket): unknown {
  const verify = ssl[kVerifyPeer];
  if (typeof verify === 'function') {
    const e = verify(socket);
    if (e !== null && e !== undefined) throw e;
  }
  const identify = ssl[kPeerIdentity];
  return typeof identify === 'function' ? identify(socket) ?? null : null;
}

/** Maps a handshake failure through the options' `mapTlsError` hook. @internal */
export function mapTlsError(ssl: TlsHooks, err: Error, side: 'client' | 'server', fallback: () => Error): Error {
  const map = ssl[kMapTlsError];
  if (typeof map === 'function') {
    try {
      const mapped = map(err, side);
      if (mapped !== null && mapped !== undefined) return mapped;
    } catch {
      // A broken hook must not hide the handshake error.
    }
  }
  return fallback();
}

/**
 * Maps an error that ends an established TLS connection through the `mapTlsError` hook, only when it is a TLS alert
 * (`ERR_SSL_*`): null for anything else, or when the hook does not know it. @internal
 */
export function mapAlert(ssl: TlsHooks, err: Error, side: 'client' | 'server'): Error | null {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_SSL_')) return null;
  const mapped = mapTlsError(ssl, err, side, () => err);
  return mapped === err ? null : mapped;
}

/** Options of `loop.createServer` / `loop.createUnixServer`. */
export interface CreateServerOptions {
  /** node:tls server options (+ PKI hooks) for a TLS server; absent for plain TCP. */
  ssl?: ServerSslOptions | null;
  /** Listen backlog (default 100, asyncio's). */
  backlog?: number;
  /** SO_REUSEPORT; passed to `listen` (honoured by Node >= 22.12, ignored by Node 20). */
  reusePort?: boolean;
  /** Seconds a connection may take to finish its TLS handshake before it is dropped (default 60). */
  sslHandshakeTimeout?: number;
  /** Seconds a graceful close waits for the peer's EOF / close_notify (default 30). */
  sslShutdownTimeout?: number;
  /** Start listening before `createServer` resolves (default true); else call `startServing()`. */
  startServing?: boolean;
  /** TCP keep-alive on accepted sockets (default false). */
  keepAlive?: boolean;
  /** TCP_NODELAY on accepted sockets (default true). */
  noDelay?: boolean;
}

/** Where a server listens: TCP hosts and a port, or a Unix socket path. @internal */
export type ListenSpec = { kind: 'tcp'; hosts: (string | undefined)[]; port: number } | { kind: 'unix'; path: string };

interface Pending {
  raw: Socket;
  timer: TimerHandle | null;
  finished: boolean;
}

/** A listening server (asyncio `Server`). Made by `loop.createServer` / `loop.createUnixServer`. */
export class Server implements TransportOwner {
  readonly #loop: EventLoop;
  readonly #factory: ProtocolFactory<AnyProtocol>;
  readonly #spec: ListenSpec;
  readonly #opts: CreateServerOptions;
  readonly #handshakeTimeout: number;
  readonly #acceptor: TlsAcceptor | null;
  #netServers: NetServer[] = [];
  #serving = false;
  #closed = false;
  // Invariant: every accepted connection is in exactly one of #pending (accept/handshake) or #transports.
  readonly #pending = new Set<Pending>();
  readonly #transports = new Set<SocketTransport>();
  #waiters: Future<void>[] = [];
  // The Unix socket file this server created (device and inode), so close() removes only its own file.
  #unixFile: { dev: number; ino: number } | null = null;
  #serveForever: Future<void> | null = null;
  // Set while a startServing() call listens (a second call waits for it instead of listening again).
  #starting: Future<void> | null = null;
  readonly #createNetServer: () => NetServer;

  /** @internal Use `loop.createServer` or `loop.createUnixServer`. */
  constructor(loop: EventLoop, factory: ProtocolFactory<AnyProtocol>, spec: ListenSpec, opts: CreateServerOptions,
    createNetServer: () => NetServer) {
    this.#loop = loop;
    this.#factory = factory;
    this.#spec = spec;
    this.#opts = opts;
    this.#handshakeTimeout = opts.sslHandshakeTimeout ?? SSL_HANDSHAKE_TIMEOUT;
    this.#acceptor = opts.ssl ? new TlsAcceptor(opts.ssl) : null;
    this.#createNetServer = createNetServer;
  }

  /** The loop this server runs on. */
  getLoop(): EventLoop {
    return this.#loop;
  }

  /** The listening `net.Server`s (read a port with `server.sockets[0].address().port`); empty when not serving. */
  get sockets(): readonly NetServer[] {
    return this.#serving ? [...this.#netServers] : [];
  }

  /** The first listening address (a convenience over `sockets[0].address()`), or null when not serving. */
  address(): AddressInfo | string | null {
    return this.#serving ? this.#netServers[0]?.address() ?? null : null;
  }

  /** Open connections, those still in their TLS handshake included. */
  get activeCount(): number {
    return this.#pending.size + this.#transports.size;
  }

  /** True while accepting connections. */
  isServing(): boolean {
    return this.#serving;
  }

  /**
   * asyncio's create_unix_server removes a socket file left at the path (by a crashed process) before binding. This
   * removes it only when nothing accepts on it: a connect to it is refused. A live server keeps its path (asyncio
   * would unlink it from under that server, which then silently stops getting connections), and the listen fails
   * with EADDRINUSE; so does a path that is not a socket, as in asyncio. Abstract names have no file.
   */
  async #removeStaleSocket(path: string): Promise<void> {
    if (path.startsWith('\0')) return;
    try {
      if (!statSync(path).isSocket()) return;
    } catch {
      return; // nothing there (or nothing we may look at: the listen reports it)
    }
    const refused = this.#loop.createFuture<boolean>();
    const probe = connect({ path });
    const settle = (v: boolean): void => {
      probe.destroy();
      post(this.#loop, () => {
        if (!refused.done()) refused.setResult(v);
      });
    };
    probe.once('connect', () => settle(false));
    probe.on('error', (err: NodeJS.ErrnoException) => settle(err.code === 'ECONNREFUSED'));
    if (!(await refused)) return;
    try {
      unlinkSync(path);
    } catch {
      // Gone already, or not ours to remove: the listen reports what is left.
    }
  }

  /**
   * Starts accepting (binds and listens). Idempotent: a call made while another is still listening waits for that
   * one (asyncio's `_start_serving` is synchronous, so it never listens twice). A `close()` made meanwhile wins: the
   * listeners are closed as soon as they are up and the server stays closed. Cancelling the awaiting Task throws
   * `CancelledError` (never wrapped) and closes whatever this call had opened; a concurrent caller then listens
   * itself.
   * @throws TransportError when a listen fails (address in use, …); nothing is left listening then.
   * @throws TransportError after `close()` ("server is closed").
   */
  async startServing(): Promise<void> {
    // Awaited through shield(): cancelling this caller must not cancel the other call's listen.
    while (this.#starting !== null) await shield(this.#starting);
    if (this.#serving) return;
    if (this.#closed) throw new TransportError('server is closed');
    const starting = this.#loop.createFuture<void>();
    this.#starting = starting;
    try {
      await this.#listenAll();
    } finally {
      this.#starting = null;
      // Only a signal: whoever waited looks at the state again (and listens itself if this call was cancelled).
      starting.setResult(undefined);
    }
  }

  async #listenAll(): Promise<void> {
    const spec = this.#spec;
    const targets = spec.kind === 'unix' ? [undefined] : spec.hosts;
    const servers: NetServer[] = [];
    try {
      if (spec.kind === 'unix') await this.#removeStaleSocket(spec.path);
      let port = spec.kind === 'tcp' ? spec.port : 0;
      for (const host of targets) {
        const srv = this.#createNetServer();
        srv.on('connection', (raw: Socket) => this.#onConnection(raw));
        srv.on('error', (err: Error) => {
          if (this.#serving) this.#loop.callExceptionHandler({ message: 'server socket error', exception: err });
        });
        servers.push(srv);
        const listenOpts: Record<string, unknown> = { backlog: this.#opts.backlog ?? 100 };
        if (spec.kind === 'unix') listenOpts['path'] = spec.path;
        else {
          listenOpts['port'] = port;
          if (host !== undefined) listenOpts['host'] = host;
          if (this.#opts.reusePort) listenOpts['reusePort'] = true;
        }
        // A loop Future, not a native Promise: the loop sees the awaiting Task suspend, so its step stays atomic
        // (docs/event-loop-internals.md#atomic-task-steps).
        const listening = this.#loop.createFuture<void>();
        const onListenError = (err: Error): void => {
          post(this.#loop, () => {
            if (!listening.done()) listening.setException(err);
          });
        };
        srv.once('error', onListenError);
        srv.listen(listenOpts, () => {
          srv.off('error', onListenError);
          post(this.#loop, () => {
            if (!listening.done()) listening.setResult(undefined);
          });
        });
        await listening;
        // Several hosts share the port the first one got. asyncio differs here: with port 0 each of its sockets gets
        // its own ephemeral port (3.13: 127.0.0.1 and ::1 on two ports), so one port number does not reach them all.
        const a = srv.address();
        if (spec.kind === 'tcp' && port === 0 && a !== null && typeof a === 'object') port = a.port;
      }
    } catch (err) {
      for (const s of servers) closeNetServer(s);
      if (isCancelledError(err)) throw err;
      const where = spec.kind === 'unix' ? spec.path : `${spec.hosts.join(',') || '*'}:${spec.port}`;
      throw new TransportError(`cannot listen on ${where}: ${(err as Error).message}`, { cause: err });
    }
    let unixFile: { dev: number; ino: number } | null = null;
    if (spec.kind === 'unix') {
      try {
        const st = statSync(spec.path);
        unixFile = { dev: st.dev, ino: st.ino };
      } catch {
        unixFile = null; // already removed by someone else
      }
    }
    if (this.#closed) {
      // close() ran while we listened: it had nothing to close yet, so these listeners are closed here.
      if (spec.kind === 'unix') closeUnix(servers, spec.path, unixFile);
      else for (const s of servers) s.close();
      return;
    }
    this.#unixFile = unixFile;
    this.#netServers = servers;
    this.#serving = true;
    this.#loop._open.add(this);
  }

  /** @internal For `run()`'s shutdown (OpenResource). */
  readonly _resourceKind = 'server';

  /** @internal Closes and aborts its connections: `run()` found this server still open when `main` ended. */
  _abortOpen(): void {
    this.close();
    this.abortClients();
  }

  /**
   * Stops accepting; open connections stay open (asyncio). `waitClosed()` resolves once they are all gone.
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#loop._open.delete(this);
    const wasServing = this.#serving;
    this.#serving = false;
    if (wasServing && this.#spec.kind === 'unix') closeUnix(this.#netServers, this.#spec.path, this.#unixFile);
    else for (const s of this.#netServers) s.close();
    this.#netServers = [];
    const sf = this.#serveForever;
    if (sf !== null && !sf.done()) sf.cancel();
    this.#maybeWake();
  }

  /**
   * Closes every open connection gracefully (flush, then close); handshakes in progress are dropped, quietly (the
   * application asked for it: no "TLS handshake failed" report).
   */
  closeClients(): void {
    for (const t of [...this.#transports]) t.close();
    this.#dropPending();
  }

  /** Aborts every open connection now, handshakes in progress included (those quietly, as in closeClients). */
  abortClients(): void {
    for (const t of [...this.#transports]) t.abort();
    this.#dropPending();
  }

  // Connections still accepting or in their handshake: destroyed and forgotten now, so their failure is not reported.
  #dropPending(): void {
    if (this.#pending.size === 0) return;
    for (const p of [...this.#pending]) {
      p.finished = true;
      p.timer?.cancel();
      p.timer = null;
      this.#pending.delete(p);
      p.raw.destroy();
    }
    this.#maybeWake();
  }

  /**
   * Resolves when the server is closed and every connection is gone (the asyncio 3.12.1 semantics: it waits for
   * `close()` too). Cancellable.
   */
  waitClosed(): Future<void> {
    const f = this.#loop.createFuture<void>();
    if (this.#closed && this.activeCount === 0) f.setResult(undefined);
    else this.#waiters.push(f);
    return f;
  }

  /**
   * Serves until cancelled: starts serving if needed and returns a Task that only ends by cancellation (or
   * `close()`); cancelling it (also while its listen is still in flight) closes the server and waits for its
   * connections (asyncio `serve_forever`). When the start fails (a closed server: "server is closed", a failed
   * listen) the Task fails with that error and the server is as it was.
   * @throws TransportError when `serveForever()` is already running.
   */
  serveForever(): Task<void> {
    if (this.#serveForever !== null && !this.#serveForever.done()) {
      throw new TransportError('serveForever() is already running');
    }
    const forever = this.#loop.createFuture<void>();
    this.#serveForever = forever;
    return this.#loop.createTask(async () => {
      try {
        try {
          await this.startServing();
        } catch (err) {
          // A failed start (a closed server, a failed listen) leaves the server as it was; a cancel made while the
          // listen was in flight closes it, as any cancel of serveForever does.
          if (!isCancelledError(err)) throw err;
          this.close();
          await this.waitClosed();
          throw err;
        }
        try {
          await forever;
        } finally {
          this.close();
          await this.waitClosed();
        }
      } finally {
        // No serveForever() runs any more: the next call fails (or serves) for what it is, not "already running".
        if (!forever.done()) forever.cancel();
        if (this.#serveForever === forever) this.#serveForever = null;
      }
    }, { name: 'Server.serveForever' });
  }

  /**
   * Swaps the TLS certificate for new connections without dropping open ones (node:tls `setSecureContext`; pass
   * key, cert **and** ca, since node:tls resets whatever is left out). The new object's PKI hooks apply to new
   * connections.
   * @throws TransportError on a plain TCP server or invalid options.
   */
  setSecureContext(options: ServerSslOptions): void {
    if (this.#acceptor === null) throw new TransportError('setSecureContext() needs a TLS server');
    this.#acceptor.setSecureContext(options);
  }

  /** @internal */
  _detachTransport(t: SocketTransport): void {
    if (this.#transports.delete(t)) this.#maybeWake();
  }

  /** @internal startTls moved a connection to a new transport. */
  _replaceTransport(old: SocketTransport, t: SocketTransport): void {
    if (this.#transports.delete(old)) this.#transports.add(t);
  }

  #maybeWake(): void {
    if (!this.#closed || this.activeCount > 0 || this.#waiters.length === 0) return;
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) if (!w.done()) w.setResult(undefined);
  }

  #onConnection(raw: Socket): void {
    if (!this.#serving || this.#loop.isClosed()) {
      raw.destroy();
      return;
    }
    if (this.#opts.noDelay !== false) raw.setNoDelay(true);
    if (this.#opts.keepAlive) raw.setKeepAlive(true);
    // Until a transport owns it, errors are only recorded by the close handler below (no crash on 'error').
    raw.on('error', noop);
    const p: Pending = { raw, timer: null, finished: false };
    this.#pending.add(p);
    // With TLS, node:tls reports a close during the handshake (tlsClientError, right after this event), and that
    // report does the accounting, so the reason is not lost.
    if (this.#acceptor === null) raw.once('close', () => {
      if (this.#pending.delete(p)) {
        p.finished = true;
        p.timer?.cancel();
        post(this.#loop, () => this.#maybeWake());
      }
    });
    const acceptor = this.#acceptor;
    if (acceptor === null) {
      post(this.#loop, () => this.#accepted(p, raw, null));
      return;
    }
    post(this.#loop, () => {
      if (p.finished) return;
      p.timer = this.#loop.callLater(this.#handshakeTimeout, () => {
        p.timer = null;
        if (p.finished) return;
        this.#handshakeFailed(p, new HandshakeTimeout(`TLS handshake not completed within ${this.#handshakeTimeout} s`));
      });
    });
    const ssl = acceptor.options;
    acceptor.accept(raw, (err, tlsSocket) => {
      const ok = post(this.#loop, () => {
        if (p.finished) return;
        p.timer?.cancel();
        p.timer = null;
        if (err !== null) {
          if (leftBeforeTls(raw, err)) {
            this.#forget(p);
            return;
          }
          this.#handshakeFailed(p, mapTlsError(ssl, err, 'server',
            () => new PeerRejected(`TLS handshake failed: ${err.message}`, { cause: err })));
          return;
        }
        this.#accepted(p, tlsSocket, ssl);
      });
      if (!ok) raw.destroy();
    });
  }

  // A connection that ends without a report: destroyed and dropped from the pending set.
  #forget(p: Pending): void {
    p.finished = true;
    p.timer?.cancel();
    p.timer = null;
    p.raw.destroy();
    if (this.#pending.delete(p)) this.#maybeWake();
  }

  #handshakeFailed(p: Pending, err: Error): void {
    p.finished = true;
    p.timer?.cancel();
    const raw = p.raw;
    const peername = raw.remoteAddress === undefined ? undefined : { address: raw.remoteAddress, port: raw.remotePort };
    raw.destroy();
    if (this.#pending.delete(p)) this.#maybeWake();
    this.#loop.callExceptionHandler({ message: 'TLS handshake failed', exception: err, socket: raw, peername });
  }

  #accepted(p: Pending, socket: Socket, ssl: ServerSslOptions | null): void {
    if (p.finished) return;
    const raw = p.raw;
    if (socket.destroyed || raw.destroyed) {
      // Gone between its handshake and this iteration: nothing to report, nothing to drive.
      p.finished = true;
      p.timer?.cancel();
      if (this.#pending.delete(p)) this.#maybeWake();
      return;
    }
    let peerIdentity: unknown = null;
    if (ssl !== null) {
      try {
        peerIdentity = runTlsHooks(ssl, socket as tls.TLSSocket);
      } catch (err) {
        this.#handshakeFailed(p, err instanceof Error ? err : new PeerRejected(String(err)));
        return;
      }
    }
    let protocol: AnyProtocol;
    try {
      protocol = this.#factory();
    } catch (err) {
      p.finished = true;
      raw.destroy();
      if (this.#pending.delete(p)) this.#maybeWake();
      this.#loop.callExceptionHandler({ message: 'protocol factory failed', exception: err, socket: raw });
      return;
    }
    p.finished = true;
    this.#pending.delete(p);
    enableHalfOpen(socket);
    const t = new SocketTransport(this.#loop, socket, protocol, {
      owner: this,
      tls: ssl === null ? null : { peerIdentity, mapError: (e: Error) => mapAlert(ssl, e, 'server') },
      rawSocket: raw,
      unixPath: this.#spec.kind === 'unix' ? this.#spec.path : null,
      sslShutdownTimeout: this.#opts.sslShutdownTimeout ?? SSL_SHUTDOWN_TIMEOUT,
    });
    this.#transports.add(t);
    t._connectionMade();
  }
}

/**
 * Closes a Unix server and removes its socket file, but only its own (asyncio 3.13 compares the inode): a file
 * someone else put at `path` since (test_unix_server_cleanup_replaced) stays. libuv unlinks the path itself when the
 * listening handle closes, so a replacement is moved aside for that moment and put back.
 */
function closeUnix(servers: NetServer[], path: string, own: { dev: number; ino: number } | null): void {
  let aside: string | null = null;
  try {
    const st = statSync(path);
    if (own === null || st.dev !== own.dev || st.ino !== own.ino) {
      aside = `${path}.tulipwire-${process.pid}-${Date.now()}`;
      renameSync(path, aside);
    }
  } catch {
    aside = null; // gone already (test_unix_server_cleanup_gone), or cannot be moved: nothing of ours to spare
  }
  for (const s of servers) s.close();
  if (aside !== null) {
    try {
      renameSync(aside, path);
    } catch {
      // The path was taken again meanwhile; leave the moved file where it is rather than delete anything.
    }
    return;
  }
  try {
    // libuv normally removed it already; unlink only if the file there is still ours.
    const st = statSync(path);
    if (own !== null && st.dev === own.dev && st.ino === own.ino) unlinkSync(path);
  } catch {
    // Already gone.
  }
}

/**
 * True when the peer closed or reset an accepted connection before sending a single byte: it never began a TLS
 * handshake, so none failed. A client that cancels its connect between the kernel's accept and its own first write
 * (a session closed during a reconnect; a TCP health check) does exactly this; reporting it as "TLS handshake failed:
 * socket hang up" made it look like a certificate problem. A peer that left after its ClientHello is still reported:
 * node:tls clients close without an alert when they refuse the server's certificate, so that close may be one.
 */
function leftBeforeTls(raw: Socket, err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return raw.bytesRead === 0 && (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED');
}

/**
 * Closes a listener, also one whose `listen()` is still in flight (Node's `close()` is then a no-op and the listen
 * would complete afterwards, leaving a listener nobody closes).
 */
function closeNetServer(srv: NetServer): void {
  if (srv.listening) srv.close();
  else srv.once('listening', () => srv.close());
}

function noop(): void {}
