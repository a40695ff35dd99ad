/**
 * Raw node:tls harness for the PKI tests: an echo server on 127.0.0.1:0 that applies the builders' hooks the way
 * the transports do (verifyPeer after the handshake, mapTlsError with the socket on failures), and a client
 * connect that reports what a TLS 1.3 client can see (an error, or secureConnect followed by an echo or a close).
 */
import * as tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { PeerIdentity } from '../../src/pki/index.js';

const kPeerIdentity = Symbol.for('tulipwire.peerIdentity');
const kMapTlsError = Symbol.for('tulipwire.mapTlsError');
const kVerifyPeer = Symbol.for('tulipwire.verifyPeer');

type Hooked = {
  [kPeerIdentity]?: (s: TLSSocket) => PeerIdentity | null;
  [kMapTlsError]?: (e: Error, side: 'client' | 'server', s?: TLSSocket) => Error | null;
  [kVerifyPeer]?: (s: TLSSocket) => Error | null;
};

/** A server-side failure: the raw error, and what the mapTlsError hook made of it. */
export interface Rejection {
  raw: Error;
  mapped: (Error & { code?: string }) | null;
}

/** A running echo server. */
export interface EchoServer {
  server: tls.Server;
  port: number;
  /** Peer identities of accepted (verified) connections, in order. */
  accepted: (PeerIdentity | null)[];
  /** Open server-side sockets. */
  sockets: Set<TLSSocket>;
  rejections: Rejection[];
  /** Resolves with the next rejection (or the first one not yet awaited). */
  nextRejection(): Promise<Rejection>;
  close(): Promise<void>;
}

/** Starts an echo server on 127.0.0.1:0 with `options` (builder output). */
export async function startEchoServer(options: tls.TlsOptions): Promise<EchoServer> {
  const hooks = options as Hooked;
  const server = tls.createServer(options);
  const rejections: Rejection[] = [];
  const waiters: ((r: Rejection) => void)[] = [];
  let consumed = 0;
  const reject = (r: Rejection) => {
    rejections.push(r);
    const w = waiters.shift();
    if (w !== undefined) {
      consumed++;
      w(r);
    }
  };
  const handle: EchoServer = {
    server,
    port: 0,
    accepted: [],
    sockets: new Set(),
    rejections,
    nextRejection() {
      if (consumed < rejections.length) return Promise.resolve(rejections[consumed++]!);
      return new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      for (const s of handle.sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  server.on('secureConnection', (socket) => {
    const err = hooks[kVerifyPeer]?.(socket) ?? null;
    if (err !== null) {
      reject({ raw: err, mapped: err });
      socket.destroy();
      return;
    }
    handle.accepted.push(hooks[kPeerIdentity]?.(socket) ?? null);
    handle.sockets.add(socket);
    socket.on('close', () => handle.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (d) => socket.write(d));
  });
  server.on('tlsClientError', (err, socket) => {
    reject({ raw: err, mapped: hooks[kMapTlsError]?.(err, 'server', socket) ?? null });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handle.port = (server.address() as { port: number }).port;
  return handle;
}

/** What a client saw. */
export interface ClientOutcome {
  /** secureConnect fired. */
  secure: boolean;
  /** The echo of our ping came back (the server accepted us). */
  echoed: boolean;
  /** The raw error event, if any. */
  error: Error | null;
  /** mapTlsError(error, 'client', socket), if an error happened. */
  mapped: (Error & { code?: string }) | null;
  /** The server's identity per the peerIdentity hook (after secureConnect). */
  peer: PeerIdentity | null;
  /** The socket (destroyed unless `keepOpen`). */
  socket: TLSSocket;
}

/**
 * Connects to 127.0.0.1:`port`, sends a ping and waits for the echo, an error or a close.
 * With `keepOpen`, an echoed connection is left open (the caller closes it).
 */
export function connectAndPing(port: number, options: tls.ConnectionOptions, keepOpen = false): Promise<ClientOutcome> {
  const hooks = options as Hooked;
  return new Promise((resolve) => {
    const socket = tls.connect({ ...options, host: '127.0.0.1', port });
    const out: ClientOutcome = { secure: false, echoed: false, error: null, mapped: null, peer: null, socket };
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (!(keepOpen && out.echoed)) socket.destroy();
      resolve(out);
    };
    socket.on('secureConnect', () => {
      out.secure = true;
      out.peer = hooks[kPeerIdentity]?.(socket) ?? null;
      const verr = hooks[kVerifyPeer]?.(socket) ?? null;
      if (verr !== null) {
        out.error = verr;
        out.mapped = verr;
        finish();
        return;
      }
      socket.write('ping');
    });
    socket.on('data', () => {
      out.echoed = true;
      finish();
    });
    socket.on('error', (e) => {
      out.error = e;
      out.mapped = hooks[kMapTlsError]?.(e, 'client', socket) ?? null;
      finish();
    });
    socket.on('close', finish);
  });
}

/** Sends `text` on an open socket and resolves with the echo. */
export function echo(socket: TLSSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (d: Buffer) => resolve(d.toString()));
    socket.once('error', reject);
    socket.write(text);
  });
}
