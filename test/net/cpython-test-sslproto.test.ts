/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_sslproto.py cases that had no port yet: start_tls on both sides
 * against a node:tls peer, its argument checks, a cancelled and a corrupted handshake, and TLS over TLS closed from
 * the client. Each `it` names its CPython case (`file.Class.test_name`). Real sockets on 127.0.0.1 port 0; every
 * wait bounded by `waitFor(…, T)`. As in CPython, the "threaded peers" of CPython's functional.py are node:net/node:tls peers in this process
 * (test/support/net-peers.ts).
 *
 * Differences found and fixed in src/net: `loop.startTls` with no TLS options or with something that is not a
 * socket transport threw TransportError where asyncio raises TypeError (it now checks the options first, then the
 * transport, as start_tls does); and a TLS protocol error on an open connection (plaintext under the TLS layer) left
 * the socket open and a pending read hanging (node:tls only emits 'error' on a tls.connect({socket}) wrapper; the
 * transport now aborts, as asyncio's _fatal_error).
 *
 * Skipped: the mock-driven cases (test_connection_lost, test_set_new_app_protocol, test_buf_feed_data,
 * test_fatal_error_no_name_error: they drive SSLProtocol internals; test_close_during_ssl_over_ssl is ported over
 * real sockets instead). The earlier test_sslproto ports (handshake timeouts, EOF during the handshake, writes after
 * close) are in cpython-net.test.ts.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { StreamReader, TimeoutError, TransportError, openConnection, waitFor } from '../../src/index.js';
import type { BufferedProtocol, Future, Protocol, StreamWriter, Transport } from '../../src/index.js';
import { useCleanups } from '../support/cleanups.js';
import { useLoop } from '../support/loop.js';
import { nodeServers, portOf, rawConnect, recvAll, until } from '../support/net-peers.js';
import { tlsFixture } from '../support/tls-fixture.js';

const fx = tlsFixture();
const T = 10;
const cleanups = useCleanups();
const nodeServer = nodeServers(cleanups);

/**
 * Runs TLS over `raw` through a JS duplex (so the peer can still write plaintext garbage on `raw` under the TLS
 * layer, as test_start_tls_client_corrupted_ssl does with `orig_sock.send`). `leftover` are bytes already read off
 * `raw` that belong to TLS.
 */
function tlsOver(raw: net.Socket, options: tls.TLSSocketOptions, leftover: Buffer | null = null): tls.TLSSocket {
  return new tls.TLSSocket(tlsDuplex(raw, leftover) as unknown as net.Socket, options);
}

/** The duplex {@link tlsOver} runs TLS on: what it writes goes to `raw`, what `raw` reads (after `leftover`) comes out. */
function tlsDuplex(raw: net.Socket, leftover: Buffer | null = null): Duplex {
  const inner = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      if (raw.destroyed) cb();
      else raw.write(chunk, () => cb());
    },
    final(cb) {
      raw.end();
      cb();
    },
  });
  if (leftover !== null) inner.push(leftover);
  raw.on('data', (d: Buffer) => inner.push(d));
  raw.on('end', () => inner.push(null));
  raw.on('error', () => inner.destroy());
  raw.on('close', () => inner.destroy());
  raw.resume();
  return inner;
}

const PAYLOAD_SIZE = 1024 * 100;

/** test_sslproto.py's client protocol: data and EOF into futures, connectionMade only once. */
class ClientProto implements Protocol {
  conMadeCnt = 0;
  readonly onData: Future<Buffer>;
  readonly onEof: Future<boolean>;
  constructor(onData: Future<Buffer>, onEof: Future<boolean>) {
    this.onData = onData;
    this.onEof = onEof;
  }
  connectionMade(): void {
    this.conMadeCnt += 1;
    expect(this.conMadeCnt).toBe(1);
  }
  dataReceived(data: Buffer): void {
    this.onData.setResult(data);
  }
  eofReceived(): void {
    this.onEof.setResult(true);
  }
  lost = 0;
  connectionLost(): void {
    this.lost += 1;
  }
}

describe('test_sslproto.py', () => {
  const lf = useLoop({ real: true });

  it('test_sslproto.BaseStartTLS.test_start_tls_client_reg_proto_1: plaintext, then startTls on the client; the protocol is not made again and gets the TLS data and EOF', async () => {
    const HELLO = Buffer.alloc(PAYLOAD_SIZE, '1');
    const served: Buffer[] = [];
    const port = await nodeServer((raw) => {
      void (async () => {
        let extra: Buffer | null = null;
        served.push(await recvAll(raw, HELLO.length, (b) => {
          extra = b;
        }));
        raw.removeAllListeners('data');
        const s = tlsOver(raw, { isServer: true, ...fx.serverOptions() }, extra);
        s.write('O');
        served.push(await recvAll(s, HELLO.length));
        s.end();
      })().catch(() => raw.destroy());
    });
    await lf.run(async () => {
      const onData = lf.loop.createFuture<Buffer>();
      const onEof = lf.loop.createFuture<boolean>();
      const [tr, proto] = await lf.loop.createConnection(() => new ClientProto(onData, onEof), '127.0.0.1', port);
      tr.write(HELLO);
      const newTr = await waitFor(lf.loop.startTls(tr, proto, fx.clientOptions()), T);
      expect(newTr).not.toBe(tr);
      expect((await waitFor(onData, T)).toString()).toBe('O');
      newTr.write(HELLO);
      expect(await waitFor(onEof, T)).toBe(true);
      newTr.close();
      expect(proto.conMadeCnt).toBe(1);
    });
    expect(served.map((b) => b.equals(HELLO))).toEqual([true, true]);
  });

  it('test_sslproto.BaseStartTLS.test_start_tls_client_buf_proto_1: a BufferedProtocol through startTls, then setProtocol to a plain Protocol on the TLS transport; connectionMade only ever once', async () => {
    const HELLO = Buffer.alloc(PAYLOAD_SIZE, '1');
    const served: Buffer[] = [];
    const port = await nodeServer((raw) => {
      void (async () => {
        let extra: Buffer | null = null;
        served.push(await recvAll(raw, HELLO.length, (b) => {
          extra = b;
        }));
        raw.removeAllListeners('data');
        const s = tlsOver(raw, { isServer: true, ...fx.serverOptions() }, extra);
        s.write('O');
        served.push(await recvAll(s, HELLO.length));
        s.write('2');
        served.push(await recvAll(s, HELLO.length));
        s.end();
      })().catch(() => raw.destroy());
    });
    let conMadeCalls = 0;
    const sizes: number[] = [];
    await lf.run(async () => {
      const onData1 = lf.loop.createFuture<Buffer>();
      const onData2 = lf.loop.createFuture<Buffer>();
      const onEof = lf.loop.createFuture<boolean>();
      const first = new (class implements BufferedProtocol {
        buf = new Uint8Array(1);
        connectionMade(): void {
          conMadeCalls += 1;
        }
        getBuffer(_sizeHint: number): Uint8Array {
          return this.buf;
        }
        bufferUpdated(n: number): void {
          sizes.push(n);
          onData1.setResult(Buffer.from(this.buf.subarray(0, n)));
        }
        connectionLost(): void {}
      })();
      const second = new (class implements Protocol {
        connectionMade(): void {
          conMadeCalls += 1;
        }
        dataReceived(d: Buffer): void {
          onData2.setResult(d);
        }
        eofReceived(): void {
          onEof.setResult(true);
        }
        connectionLost(): void {}
      })();
      const [tr] = await lf.loop.createConnection(() => first, '127.0.0.1', port);
      tr.write(HELLO);
      const newTr = await waitFor(() => lf.loop.startTls(tr, first, fx.clientOptions()), T);
      expect((await waitFor(onData1, T)).toString()).toBe('O');
      newTr.write(HELLO);
      newTr.setProtocol(second);
      expect(newTr.getProtocol()).toBe(second);
      expect((await waitFor(onData2, T)).toString()).toBe('2');
      newTr.write(HELLO);
      expect(await waitFor(onEof, T)).toBe(true);
      newTr.close();
    });
    expect(sizes).toEqual([1]);
    // "Start TLS doesn't call connection_made() on application protocols", nor does setProtocol.
    expect(conMadeCalls).toBe(1);
    expect(served.map((b) => b.equals(HELLO))).toEqual([true, true, true]);
  });

  it('test_sslproto.BaseStartTLS.test_start_tls_server_1: the server answers in plaintext, then upgrades its side; the client\'s hello arrives over TLS, the answer goes back, the client\'s close is a clean loss', async () => {
    const HELLO = Buffer.alloc(PAYLOAD_SIZE, '1');
    const ANSWER = Buffer.from('answer');
    let answer: Buffer | null = null;
    await lf.run(async () => {
      const onCon = lf.loop.createFuture<Transport>();
      const onConLost = lf.loop.createFuture<null>();
      const onGotHello = lf.loop.createFuture<null>();
      const proto = new (class implements Protocol {
        data = Buffer.alloc(0);
        transport: Transport | null = null;
        connectionMade(t: Transport): void {
          this.transport = t;
          onCon.setResult(t);
        }
        dataReceived(d: Buffer): void {
          this.data = Buffer.concat([this.data, d]);
          if (this.data.length >= HELLO.length && !onGotHello.done()) onGotHello.setResult(null);
        }
        connectionLost(exc: Error | null): void {
          this.transport = null;
          if (exc === null) onConLost.setResult(null);
          else onConLost.setException(exc);
        }
      })();
      const server = await lf.loop.createServer(() => proto, '127.0.0.1', 0);
      const port = portOf(server);
      const peer = (async () => {
        const raw = await rawConnect(port);
        let extra: Buffer | null = null;
        const got = await recvAll(raw, HELLO.length, (b) => {
          extra = b;
        });
        expect(got.equals(HELLO)).toBe(true);
        expect(extra).toBeNull();
        raw.removeAllListeners('data');
        const s = tls.connect({ ...fx.clientOptions(), socket: tlsDuplex(raw), servername: 'localhost' });
        await new Promise<void>((resolve, reject) => {
          s.once('secureConnect', resolve);
          s.once('error', reject);
        });
        s.write(HELLO);
        answer = await recvAll(s, ANSWER.length);
        s.end();
        s.resume();
      })();
      const tr = await waitFor(onCon, T);
      tr.write(HELLO);
      expect(proto.data.length).toBe(0);
      const newTr = await waitFor(lf.loop.startTls(tr, proto, fx.serverOptions(), { serverSide: true, sslHandshakeTimeout: T }), T);
      proto.transport = newTr;
      await waitFor(onGotHello, T);
      newTr.write(ANSWER);
      await waitFor(onConLost, T);
      expect(proto.data.equals(HELLO)).toBe(true);
      newTr.close();
      await waitFor(peer, T);
      server.close();
      await waitFor(server.waitClosed(), T);
    });
    expect(answer).not.toBeNull();
    expect(answer!.equals(ANSWER)).toBe(true);
  });

  it('test_sslproto.SslProtoHandshakeTests.test_close_during_ssl_over_ssl: closing the client end of TLS over TLS reports nothing; the peer reads the inner EOF, then the outer closes (asyncio drives SSLProtocol by hand; here real sockets)', async () => {
    let innerData = '';
    let innerEnded!: Promise<void>;
    let outerClosed!: Promise<void>;
    const srv = tls.createServer(fx.serverOptions(), (outer) => {
      outer.on('error', () => {});
      outerClosed = new Promise<void>((resolve) => outer.once('close', () => resolve()));
      const inner = new tls.TLSSocket(outer, { isServer: true, ...fx.serverOptions() });
      inner.on('error', () => {});
      innerEnded = new Promise<void>((resolve) => {
        inner.on('data', (d: Buffer) => {
          innerData += d.toString();
          inner.write('pong');
        });
        inner.once('end', () => {
          inner.end();
          resolve();
        });
      });
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      srv.close(() => resolve());
    }));
    const port = (srv.address() as AddressInfo).port;
    await lf.run(async () => {
      const onData = lf.loop.createFuture<Buffer>();
      const onEof = lf.loop.createFuture<boolean>();
      const [outerTr, proto] = await lf.loop.createConnection(() => new ClientProto(onData, onEof), '127.0.0.1', port,
        { ssl: fx.clientOptions() });
      const innerTr = await waitFor(() => lf.loop.startTls(outerTr, proto, fx.clientOptions()), T);
      expect(innerTr.getExtraInfo('sslObject')).toBeInstanceOf(tls.TLSSocket);
      expect(innerTr.getExtraInfo('sslObject')).not.toBe(outerTr.getExtraInfo('sslObject'));
      // 'socket' is the TCP socket under both layers, and the addresses are its own.
      expect(innerTr.getExtraInfo('socket')).toBe(outerTr.getExtraInfo('socket'));
      expect((innerTr.getExtraInfo('peername') as AddressInfo).port).toBe(port);
      innerTr.write(Buffer.from('ping'));
      expect((await waitFor(onData, T)).toString()).toBe('pong');
      innerTr.close();
      await waitFor(innerEnded, T);
      await waitFor(outerClosed, T);
      await until(() => proto.lost === 1);
      expect(innerData).toBe('ping');
    });
    expect(lf.records).toEqual([]);
  });

  it('test_sslproto.BaseStartTLS.test_start_tls_wrong_args: TypeError for missing TLS options, then for a transport that is not a socket transport (this port found TransportError for both)', async () => {
    await lf.run(async () => {
      const startTls = lf.loop.startTls.bind(lf.loop) as (...a: unknown[]) => Promise<Transport>;
      await expect(startTls(null, null, null)).rejects.toThrow(TypeError);
      await expect(startTls(null, null, null)).rejects.toThrow(/node:tls options object, got null/);
      await expect(startTls(null, null, fx.serverOptions())).rejects.toThrow(TypeError);
      await expect(startTls(null, null, fx.serverOptions())).rejects.toThrow(/is not supported by startTls\(\)/);
      // A plain transport of another loop is the right type on the wrong loop: that stays a TransportError.
    });
  });

  it('test_sslproto.BaseStartTLS.test_start_tls_slow_client_cancel: a peer that never answers the ClientHello; waitFor(startTls, 0.5) raises TimeoutError and the socket is closed', async () => {
    const HELLO = Buffer.alloc(PAYLOAD_SIZE, '1');
    let peerClosed!: Promise<void>;
    let serverWaitsOnHandshake!: () => void;
    const waiting = new Promise<void>((resolve) => {
      serverWaitsOnHandshake = resolve;
    });
    const port = await nodeServer((raw) => {
      peerClosed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
      raw.on('error', () => {});
      void recvAll(raw, HELLO.length).then(() => {
        serverWaitsOnHandshake();
        raw.resume(); // read the ClientHello and whatever else, never answer
      });
    });
    await lf.run(async () => {
      const onData = lf.loop.createFuture<Buffer>();
      const onEof = lf.loop.createFuture<boolean>();
      const [tr, proto] = await lf.loop.createConnection(() => new ClientProto(onData, onEof), '127.0.0.1', port);
      tr.write(HELLO);
      await waitFor(waiting, T);
      // The function form is asyncio's coroutine argument: waitFor runs it as a Task, so the timeout cancels the
      // handshake itself (a Promise argument is only waited for; the handshake would go on to sslHandshakeTimeout).
      await expect(waitFor(() => lf.loop.startTls(tr, proto, fx.clientOptions()), 0.5)).rejects.toBeInstanceOf(TimeoutError);
      // As asyncio: the connection is aborted at once and the protocol hears nothing more (no connectionLost: the
      // start_tls caller owns the failure).
      await waitFor(peerClosed, T);
      expect(tr.isClosing()).toBe(true);
      expect(onData.done()).toBe(false);
      expect(proto.lost).toBe(0);
    });
  });

  it('test_sslproto.BaseStartTLS.test_start_tls_client_corrupted_ssl: plaintext under the TLS layer fails the pending readline with a TransportError, cause ERR_SSL_WRONG_VERSION_NUMBER (asyncio: ssl.SSLError); this port found the read hung and the socket stayed open', async () => {
    const port = await nodeServer((raw) => {
      raw.on('error', () => {});
      const s = tlsOver(raw, { isServer: true, ...fx.serverOptions() });
      s.on('error', () => {});
      s.write('A\n');
      void recvAll(s, 1).then(() => {
        raw.write('please corrupt the SSL connection');
      }, () => {});
    });
    await lf.run(async () => {
      const [reader, writer]: [StreamReader, StreamWriter] = await openConnection('127.0.0.1', port,
        { ssl: fx.clientOptions(), serverHostname: '' });
      expect((await waitFor(reader.readline(), T)).toString()).toBe('A\n');
      writer.write('B');
      const err = await waitFor(reader.readline(), T).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('ERR_SSL_WRONG_VERSION_NUMBER');
      expect(writer.isClosing()).toBe(true);
      writer.close();
      await waitFor(writer.waitClosed(), T).catch(() => {});
    });
  });
});
