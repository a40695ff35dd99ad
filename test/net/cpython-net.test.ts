/**
 * Ports of CPython 3.13 Lib/test/test_asyncio cases about servers and transports, one `it` per case with the CPython
 * name in its title: test_server.py, test_base_events.py (create_server / create_connection argument checks),
 * test_sslproto.py / test_ssl.py (handshake and shutdown), test_selector_events.py and test_transports.py (the
 * transport methods). Real sockets on 127.0.0.1 port 0; every wait is bounded by `waitFor(…, T)`.
 *
 * Where tulipwire deliberately differs, the test asserts tulipwire's behaviour and says how asyncio differs.
 */
import { existsSync, unlinkSync } from 'node:fs';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  openConnection, openUnixConnection, ProtocolBase, sleep, startServer, startUnixServer, waitFor, wrapPromise,
} from '../../src/index.js';
import type { EventLoop, Server, StreamReader, StreamWriter, Transport } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { tlsFixture } from '../support/tls-fixture.js';
import { Recorder } from './contract-suite.js';

const fx = tlsFixture();
const T = 10;
const cleanups: (() => void)[] = [];

function portOf(server: Server): number {
  return (server.sockets[0]!.address() as AddressInfo).port;
}

function track(server: Server): Server {
  cleanups.push(() => {
    server.close();
    server.abortClients();
  });
  return server;
}

/** A plain node:net listener that is not tulipwire (CPython's threaded `tcp_server`); `onSocket` gets each peer. */
async function rawServer(loop: EventLoop, onSocket: (s: net.Socket) => void): Promise<[net.Server, number]> {
  const srv = net.createServer(onSocket);
  await wrapPromise(new Promise<void>((r) => srv.listen(0, '127.0.0.1', r)), loop);
  cleanups.push(() => srv.close());
  return [srv, (srv.address() as AddressInfo).port];
}

/** Resolves when `sock` ends (EOF or close) on the loop. */
function ended(loop: EventLoop, sock: net.Socket): Promise<void> {
  return wrapPromise(new Promise<void>((r) => {
    sock.once('end', r);
    sock.once('close', () => r());
  }), loop);
}

async function serveRead(rd: StreamReader, wr: StreamWriter): Promise<void> {
  try {
    await rd.read();
  } finally {
    wr.close();
    await wr.waitClosed();
  }
}

describe('CPython test_asyncio ports (servers, transports)', () => {
  const lf = useLoop({ real: true });
  afterEach(() => {
    for (const c of cleanups.splice(0).reverse()) c();
  });

  // ------------------------------------------------------------------------------------------------ test_server.py

  it('test_start_server_1 (test_server): serveForever cancelled from a handler closes the server for good', async () => {
    await lf.run(async () => {
      let mainTask: { cancel(): boolean } | null = null;
      const srv = track(await startServer(async (rd, wr) => {
        await rd.readline();
        mainTask!.cancel();
        wr.write(Buffer.from('1'));
        wr.close();
        await wr.waitClosed();
      }, '127.0.0.1', 0, { startServing: false }));
      expect(srv.isServing()).toBe(false);
      const task = srv.serveForever();
      mainTask = task;
      await waitFor(waitUntil(() => srv.isServing()), T);
      const [rd, wr] = await openConnection('127.0.0.1', portOf(srv));
      wr.write(Buffer.from(`${'1'.repeat(5 * 1024)}\n`));
      expect((await waitFor(rd.readexactly(1), T)).toString()).toBe('1');
      wr.close();
      const err = await waitFor(task.then(() => null, (e: unknown) => e), T);
      expect(err).toMatchObject({ code: 'TW_CANCELLED' });
      expect(srv.sockets).toEqual([]);
      expect(srv.isServing()).toBe(false);
      // asyncio: RuntimeError "... is closed"
      const again = await waitFor(srv.serveForever().then(() => null, (e: unknown) => e), T);
      expect(again).toMatchObject({ code: 'TW_TRANSPORT', message: expect.stringMatching(/is closed/) });
    });
  });

  it('test_start_unix_server_1 (test_server): startServing, then serveForever on a Unix socket', async () => {
    await lf.run(async () => {
      const path = join(tmpdir(), `tw-cpy-unix1-${process.pid}.sock`);
      let mainTask: { cancel(): boolean } | null = null;
      const srv = track(await startUnixServer(async (rd, wr) => {
        await rd.readline();
        mainTask!.cancel();
        wr.write(Buffer.from('1'));
        wr.close();
        await wr.waitClosed();
      }, path, { startServing: false }));
      expect(srv.isServing()).toBe(false);
      await srv.startServing();
      expect(srv.isServing()).toBe(true);
      const task = srv.serveForever();
      mainTask = task;
      const [rd, wr] = await openUnixConnection(path);
      wr.write(Buffer.from(`${'1'.repeat(5 * 1024)}\n`));
      expect((await waitFor(rd.readexactly(1), T)).toString()).toBe('1');
      wr.close();
      await waitFor(task.then(() => null, (e: unknown) => e), T);
      expect(srv.sockets).toEqual([]);
      expect(srv.isServing()).toBe(false);
      await expect(srv.serveForever()).rejects.toMatchObject({ code: 'TW_TRANSPORT' });
    });
  });

  it('test_wait_closed_basic (test_server): waitClosed blocks until closed and every connection is gone', async () => {
    await lf.run(async () => {
      const srv = track(await startServer(serveRead, '127.0.0.1', 0));
      const task1 = srv.waitClosed(); // count 0, not closed
      await sleep(0);
      expect(task1.done()).toBe(false);
      const [, wr] = await openConnection('127.0.0.1', portOf(srv));
      await waitFor(waitUntil(() => srv.activeCount === 1), T);
      const task2 = srv.waitClosed(); // count 1, not closed
      await sleep(0);
      expect(task1.done() || task2.done()).toBe(false);
      srv.close();
      await sleep(0);
      const task3 = srv.waitClosed(); // count 1, closed
      await sleep(0);
      expect(task1.done() || task2.done() || task3.done()).toBe(false);
      wr.close();
      await waitFor(wr.waitClosed(), T);
      await waitFor(task1, T);
      await waitFor(task2, T);
      await waitFor(task3, T);
      const task4 = srv.waitClosed();
      expect(task4.done()).toBe(true); // closed and empty: at once
    });
  });

  it('test_wait_closed_race (test_server): close() and the last client close in the same iteration', async () => {
    await lf.run(async () => {
      const srv = track(await startServer(serveRead, '127.0.0.1', 0));
      const task = srv.waitClosed();
      await sleep(0);
      expect(task.done()).toBe(false);
      const [, wr] = await openConnection('127.0.0.1', portOf(srv));
      lf.loop.callSoon(() => srv.close());
      lf.loop.callSoon(() => wr.close());
      await waitFor(srv.waitClosed(), T);
      expect(task.done()).toBe(true);
    });
  });

  it('test_close_clients (test_server): close() + closeClients() let waitClosed resolve', async () => {
    await lf.run(async () => {
      const srv = track(await startServer(serveRead, '127.0.0.1', 0));
      const [rd, wr] = await openConnection('127.0.0.1', portOf(srv));
      cleanups.push(() => wr.transport.abort());
      await waitFor(waitUntil(() => srv.activeCount === 1), T);
      const task = srv.waitClosed();
      await sleep(0);
      expect(task.done()).toBe(false);
      srv.close();
      srv.closeClients();
      // Deliberate difference: asyncio's plain-TCP close() drops the socket right after the flush, so the task is
      // done after two sleep(0)s; tulipwire's close() waits for the peer's EOF (bounded by sslShutdownTimeout) so
      // that unread data never turns into a reset. The client answers the EOF by closing.
      expect(await waitFor(rd.read(), T)).toEqual(Buffer.alloc(0));
      wr.close();
      await waitFor(task, T);
      expect(srv.activeCount).toBe(0);
    });
  });

  it('test_abort_clients (test_server): abortClients with a full write buffer lets waitClosed resolve', async () => {
    await lf.run(async () => {
      const served = lf.loop.createFuture<[StreamReader, StreamWriter]>();
      const srv = track(await startServer(async (rd, wr) => {
        served.setResult([rd, wr]);
        await wr.waitClosed();
      }, '127.0.0.1', 0));
      const [, cWr] = await openConnection('127.0.0.1', portOf(srv), { limit: 4096 });
      cleanups.push(() => cWr.transport.abort());
      const [, sWr] = await waitFor(served, T);
      // The client's reader pauses the transport above 2 * limit; then the server's buffer fills up.
      for (let i = 0; i < 3; i++) sWr.write(Buffer.alloc(4096, 0x61));
      await waitFor(waitUntil(() => !cWr.transport.isReading()), T);
      for (let i = 0; i < 64 && sWr.transport.getWriteBufferSize() <= 1024 * 1024; i++) {
        sWr.write(Buffer.alloc(256 * 1024, 0x61));
        await sleep(0);
      }
      expect(sWr.transport.getWriteBufferSize()).toBeGreaterThan(0);
      const task = srv.waitClosed();
      await sleep(0);
      expect(task.done()).toBe(false);
      srv.close();
      srv.abortClients();
      // asyncio: done after two sleep(0)s; tulipwire delivers connectionLost on Node's 'close' event of the
      // destroyed socket, a few loop iterations later (deliberate: the one event every path ends with).
      await waitFor(task, T);
      expect(sWr.transport.getWriteBufferSize()).toBe(0);
    });
  });

  it('test_unix_server_addr_cleanup (test_server): close() removes the socket file', async () => {
    await lf.run(async () => {
      const path = join(tmpdir(), `tw-cpy-clean-${process.pid}.sock`);
      const srv = track(await lf.loop.createUnixServer(() => new ProtocolBase(), path));
      expect(existsSync(path)).toBe(true);
      srv.close();
      expect(existsSync(path)).toBe(false);
    });
  });

  it('test_unix_server_cleanup_gone (test_server): a socket file someone else removed is no error', async () => {
    await lf.run(async () => {
      const path = join(tmpdir(), `tw-cpy-gone-${process.pid}.sock`);
      const srv = track(await lf.loop.createUnixServer(() => new ProtocolBase(), path));
      unlinkSync(path);
      expect(() => srv.close()).not.toThrow();
      await waitFor(srv.waitClosed(), T);
    });
  });

  it('test_unix_server_cleanup_replaced (test_server): close() leaves a socket file that replaced its own', async () => {
    await lf.run(async () => {
      const path = join(tmpdir(), `tw-cpy-repl-${process.pid}.sock`);
      const srv = track(await lf.loop.createUnixServer(() => new ProtocolBase(), path));
      unlinkSync(path);
      const other = net.createServer((s) => s.end('other'));
      await wrapPromise(new Promise<void>((r) => other.listen(path, r)), lf.loop);
      cleanups.push(() => other.close());
      srv.close();
      expect(existsSync(path)).toBe(true);
      // ... and it is still the other server's, reachable.
      const r = new Recorder(lf.loop);
      await lf.loop.createUnixConnection(() => r, path);
      await waitFor(r.lost, T);
      expect(r.data().toString()).toBe('other');
    });
  });

  // ----------------------------------------------------------------------------------------- test_base_events.py

  it('test_create_server_ssl_timeout_for_plain_socket (test_base_events): RangeError', async () => {
    await lf.run(async () => {
      await expect(lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0, { sslHandshakeTimeout: 1 }))
        .rejects.toThrow(/sslHandshakeTimeout is only meaningful with ssl/);
    });
  });

  it('test_create_connection_ssl_timeout_for_plain_socket (test_base_events): RangeError', async () => {
    await lf.run(async () => {
      await expect(lf.loop.createConnection(() => new ProtocolBase(), '127.0.0.1', 1, { sslHandshakeTimeout: 1 }))
        .rejects.toThrow(RangeError);
    });
  });

  it('test_create_connection_no_ssl_server_hostname_errors (test_base_events): serverHostname needs ssl', async () => {
    await lf.run(async () => {
      for (const serverHostname of ['', 'localhost']) {
        await expect(lf.loop.createConnection(() => new ProtocolBase(), '127.0.0.1', 1, { serverHostname }))
          .rejects.toThrow(RangeError);
      }
    });
  });

  it('test_create_connection_ssl_server_hostname_errors (test_base_events): ssl without a host needs serverHostname', async () => {
    await lf.run(async () => {
      const [, port] = await rawServer(lf.loop, (s) => s.destroy());
      await expect(lf.loop.createConnection(() => new ProtocolBase(), '', port, { ssl: fx.clientOptions() }))
        .rejects.toThrow(/serverHostname is required/);
      await expect(lf.loop.createUnixConnection(() => new ProtocolBase(), join(tmpdir(), 'tw-none.sock'),
        { ssl: fx.clientOptions() })).rejects.toThrow(/serverHostname is required/);
    });
  });

  it('port validation (test_base_events create_server/create_connection): RangeError before any socket', async () => {
    await lf.run(async () => {
      for (const port of [-1, 65536, 70000, 1.5, Number.NaN]) {
        await expect(lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', port)).rejects.toThrow(RangeError);
        await expect(lf.loop.createConnection(() => new ProtocolBase(), '127.0.0.1', port)).rejects.toThrow(RangeError);
      }
    });
  });

  it('test_create_server_empty_host (test_base_events): host "" listens on every interface', async () => {
    await lf.run(async () => {
      const srv = track(await lf.loop.createServer(() => new ProtocolBase(), '', 0));
      expect(['::', '0.0.0.0']).toContain((srv.address() as AddressInfo).address);
      const r = new Recorder(lf.loop);
      const [t] = await lf.loop.createConnection(() => r, '127.0.0.1', portOf(srv));
      t.close();
      await waitFor(r.lost, T);
    });
  });

  it('test_create_connection_connect_err (test_base_events): a refused connect rejects with PeerRejected', async () => {
    await lf.run(async () => {
      const [srv, port] = await rawServer(lf.loop, () => {});
      await wrapPromise(new Promise<void>((r) => srv.close(() => r())), lf.loop);
      const r = new Recorder(lf.loop);
      const err = await lf.loop.createConnection(() => r, '127.0.0.1', port).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TW_PEER_REJECTED' });
      expect((err as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
      expect(r.events).toEqual([]);
    });
  });

  it('test_create_server_cant_bind (test_base_events): a failed listen leaves nothing listening', async () => {
    await lf.run(async () => {
      const taken = track(await lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0));
      const port = portOf(taken);
      // 192.0.2.1 (TEST-NET-1) is no local address: the first host binds, the second fails (EADDRNOTAVAIL), and
      // the first listener is closed again. (A host given twice is bound once, as in asyncio.)
      const listeners = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
      const before = listeners();
      const err = await lf.loop.createServer(() => new ProtocolBase(), ['127.0.0.1', '192.0.2.1'], 0, { backlog: 1 })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TW_TRANSPORT' });
      expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('EADDRNOTAVAIL');
      await sleep(0.02); // net.Server.close() lets go of its handle in a later libuv turn
      expect(listeners()).toBe(before);
      await expect(lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', port)).rejects.toMatchObject({ code: 'TW_TRANSPORT' });
    });
  });

  // ------------------------------------------------------------------------------- test_sslproto.py / test_ssl.py

  it('test_handshake_timeout_zero / test_handshake_timeout_negative (test_sslproto): RangeError', async () => {
    await lf.run(async () => {
      for (const v of [0, -10]) {
        await expect(lf.loop.createConnection(() => new ProtocolBase(), '127.0.0.1', 1,
          { ssl: fx.clientOptions(), sslHandshakeTimeout: v })).rejects.toThrow(/positive number/);
        await expect(lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0,
          { ssl: fx.serverOptions(), sslHandshakeTimeout: v })).rejects.toThrow(/positive number/);
        await expect(lf.loop.createConnection(() => new ProtocolBase(), '127.0.0.1', 1,
          { ssl: fx.clientOptions(), sslShutdownTimeout: v })).rejects.toThrow(/positive number/);
      }
    });
  });

  it('test_handshake_timeout_zero (test_sslproto) for startTls: a bad timeout throws and leaves the transport alone', async () => {
    await lf.run(async () => {
      const srv = track(await lf.loop.createServer(() => new ProtocolBase(), '127.0.0.1', 0));
      const p = new Recorder(lf.loop);
      const [t] = await lf.loop.createConnection(() => p, '127.0.0.1', portOf(srv));
      for (const opt of [{ sslHandshakeTimeout: 0 }, { sslShutdownTimeout: 0 }, { sslShutdownTimeout: -1 }]) {
        await expect(lf.loop.startTls(t, p, fx.clientOptions(), opt)).rejects.toThrow(/positive number/);
        expect(t.isClosing()).toBe(false);
      }
      t.close();
      await waitFor(p.lost, T);
      expect(p.violations).toEqual([]);
    });
  });

  it('test_handshake_timeout / test_ssl_handshake_timeout (test_sslproto, test_ssl): a cancelled handshake aborts quietly', async () => {
    await lf.run(async () => {
      let peer: net.Socket | null = null;
      const [, port] = await rawServer(lf.loop, (s) => {
        peer = s;
        s.on('data', () => {}); // reads the ClientHello, never answers
        s.on('error', () => {});
      });
      const made: string[] = [];
      // A function, not a promise: waitFor then runs it in this task and cancels it on timeout (asyncio's coroutine).
      const err = await waitFor(() => lf.loop.createConnection(() => {
        made.push('factory');
        return new ProtocolBase();
      }, '127.0.0.1', port, { ssl: fx.clientOptions(), serverHostname: '', sslHandshakeTimeout: 60 }), 0.2)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TW_TIMEOUT' });
      await waitFor(waitUntil(() => peer !== null), T);
      await waitFor(ended(lf.loop, peer!), T); // the server side sees the connection go away
      expect(made).toEqual([]);
      expect(lf.records).toEqual([]); // no exception handler call (Python issue #23197)
    });
  });

  it('test_create_connection_ssl_slow_handshake (test_sslproto, test_ssl): HandshakeTimeout after sslHandshakeTimeout', async () => {
    await lf.run(async () => {
      let peer: net.Socket | null = null;
      const [, port] = await rawServer(lf.loop, (s) => {
        peer = s;
        s.on('data', () => {});
        s.on('error', () => {});
      });
      const err = await waitFor(lf.loop.createConnection(() => new ProtocolBase(), '127.0.0.1', port,
        { ssl: fx.clientOptions(), serverHostname: '', sslHandshakeTimeout: 0.1 }).catch((e: unknown) => e), T);
      // asyncio: ConnectionAbortedError "SSL handshake is taking longer than ... seconds: aborting the connection"
      expect(err).toMatchObject({ code: 'TW_HANDSHAKE_TIMEOUT' });
      await waitFor(ended(lf.loop, peer!), T);
    });
  });

  it('test_ssl_handshake_connection_lost (test_ssl): a peer that drops the handshake: no connectionMade, no connectionLost', async () => {
    await lf.run(async () => {
      const [, port] = await rawServer(lf.loop, (s) => {
        s.on('error', () => {});
        s.once('data', () => s.destroy()); // read the ClientHello, then break the connection
      });
      const r = new Recorder(lf.loop);
      const err = await waitFor(lf.loop.createConnection(() => r, '127.0.0.1', port,
        { ssl: fx.clientOptions(), serverHostname: '' }).catch((e: unknown) => e), T);
      // asyncio: ConnectionResetError
      expect(err).toMatchObject({ code: 'TW_PEER_REJECTED' });
      expect(r.events).toEqual([]);
    });
  });

  it('test_eof_received_waiter (test_sslproto): an EOF during the handshake fails the connect', async () => {
    await lf.run(async () => {
      const [, port] = await rawServer(lf.loop, (s) => {
        s.on('error', () => {});
        s.once('data', () => s.end()); // FIN, no ServerHello
      });
      const r = new Recorder(lf.loop);
      const err = await waitFor(lf.loop.createConnection(() => r, '127.0.0.1', port,
        { ssl: fx.clientOptions(), serverHostname: '' }).catch((e: unknown) => e), T);
      expect(err).toMatchObject({ code: 'TW_PEER_REJECTED' }); // asyncio: ConnectionResetError
      expect(r.events).toEqual([]);
    });
  });

  it('test_eof_received_waiter (test_sslproto), server side: a client EOF mid-handshake frees the connection', async () => {
    await lf.run(async () => {
      const r = new Recorder(lf.loop);
      const srv = track(await lf.loop.createServer(() => r, '127.0.0.1', 0, { ssl: fx.serverOptions() }));
      const raw = net.connect({ port: portOf(srv), host: '127.0.0.1', allowHalfOpen: true });
      raw.on('error', () => {});
      raw.on('data', () => {});
      await wrapPromise(new Promise<void>((res) => raw.once('connect', res)), lf.loop);
      await waitFor(waitUntil(() => srv.activeCount === 1), T);
      raw.end();
      await waitFor(waitUntil(() => srv.activeCount === 0), T);
      srv.close();
      await waitFor(srv.waitClosed(), T);
      expect(r.events).toEqual([]);
      raw.destroy();
      lf.take(); // a "TLS handshake failed" report, if node:tls had a reason
    });
  });

  it('test_close_during_handshake (test_sslproto): closing the server side during a handshake frees the socket', async () => {
    await lf.run(async () => {
      for (const how of ['closeClients', 'abortClients'] as const) {
        const r = new Recorder(lf.loop);
        const srv = track(await lf.loop.createServer(() => r, '127.0.0.1', 0, { ssl: fx.serverOptions() }));
        const raw = net.connect(portOf(srv), '127.0.0.1'); // never starts TLS
        raw.on('error', () => {});
        raw.on('data', () => {});
        await waitFor(waitUntil(() => srv.activeCount === 1), T);
        srv.close();
        srv[how]();
        await waitFor(ended(lf.loop, raw), T);
        await waitFor(srv.waitClosed(), T);
        expect(r.events).toEqual([]);
        raw.destroy();
      }
      expect(lf.records).toEqual([]);
    });
  });

  it('test_write_after_closing / test_data_received_after_closing (test_sslproto): TLS writes after close are dropped, no data after close', async () => {
    await lf.run(async () => {
      const s = new Recorder(lf.loop);
      const srv = track(await lf.loop.createServer(() => s, '127.0.0.1', 0, { ssl: fx.serverOptions() }));
      const c = new Recorder(lf.loop);
      const [t] = await lf.loop.createConnection(() => c, '127.0.0.1', portOf(srv), { ssl: fx.clientOptions() });
      await waitFor(s.made, T);
      s.transport!.write(Buffer.from('late data'));
      t.close();
      expect(() => t.write(Buffer.from('data'))).not.toThrow();
      expect(t.getWriteBufferSize()).toBe(0);
      await waitFor(c.lost, T);
      await waitFor(s.lost, T);
      expect(c.events.filter((e) => e.startsWith('DR'))).toEqual([]);
      expect(s.receivedBytes).toBe(0);
      for (const r of [s, c]) expect(r.violations).toEqual([]);
    });
  });

  it('test_get_extra_info_on_closed_connection (test_sslproto): TLS details stay readable after the loss', async () => {
    await lf.run(async () => {
      const s = new Recorder(lf.loop);
      const srv = track(await lf.loop.createServer(() => s, '127.0.0.1', 0, { ssl: fx.serverOptions() }));
      const c = new Recorder(lf.loop);
      const [t] = await lf.loop.createConnection(() => c, '127.0.0.1', portOf(srv), { ssl: fx.clientOptions() });
      expect(t.getExtraInfo('nope', 'dflt')).toBe('dflt');
      t.close();
      await waitFor(c.lost, T);
      // Deliberate difference: asyncio's SSL transport answers None for 'socket' once lost; tulipwire reads the
      // TLS details at the handshake so connectionLost handlers can still log the peer.
      expect(t.getExtraInfo('tlsVersion')).toBe('TLSv1.3');
      expect(t.getExtraInfo('peercert')).not.toBeNull();
      expect(t.getExtraInfo('peername')).toMatchObject({ address: '127.0.0.1' });
    });
  });

  it('test_shutdown_cleanly (test_ssl): the server sends, then closes (close_notify); each client reads to EOF', async () => {
    await lf.run(async () => {
      const A = Buffer.alloc(1024 * 16, 0x41);
      const srv = track(await startServer(async (rd, wr) => {
        expect((await rd.readexactly(A.length)).equals(A)).toBe(true);
        wr.write(Buffer.from('OK'));
        wr.close();
        await wr.waitClosed();
      }, '127.0.0.1', 0, { ssl: fx.serverOptions() }));
      let count = 0;
      const client = async (): Promise<void> => {
        const [rd, wr] = await openConnection('127.0.0.1', portOf(srv), { ssl: fx.clientOptions(), serverHostname: '' });
        wr.write(A);
        expect((await rd.readexactly(2)).toString()).toBe('OK');
        expect(await rd.read()).toEqual(Buffer.alloc(0));
        count++;
        wr.close();
        await wr.waitClosed();
      };
      await waitFor(Promise.all(Array.from({ length: 5 }, client)), T);
      expect(count).toBe(5);
    });
  });

  it('test_flush_before_shutdown (test_ssl): close() with a big backlog sends all of it before the close_notify', async () => {
    await lf.run(async () => {
      const CHUNK = 128 * 1024;
      const SIZE = 32;
      const s = new Recorder(lf.loop);
      s.keepOpenOnEof = false;
      const srv = track(await lf.loop.createServer(() => s, '127.0.0.1', 0, { ssl: fx.serverOptions() }));
      const c = new Recorder(lf.loop);
      const [t] = await lf.loop.createConnection(() => c, '127.0.0.1', portOf(srv), { ssl: fx.clientOptions() });
      for (let i = 0; i < SIZE; i++) t.write(Buffer.alloc(CHUNK, 0x78));
      expect(c.writingPaused).toBe(true);
      t.close();
      await waitFor(s.eof, T);
      expect(s.receivedBytes).toBe(CHUNK * SIZE);
      await waitFor(c.lost, T);
      expect(await waitFor(s.lost, T)).toBeNull();
      expect(s.events.at(-2)).toBe('ER');
    });
  });

  it('test_remote_shutdown_receives_trailing_data (test_ssl): after the peer half-closes, the backlog still arrives', async () => {
    await lf.run(async () => {
      const CHUNK = 128 * 1024;
      const SIZE = 32;
      const s = new Recorder(lf.loop);
      s.keepOpenOnEof = false;
      s.onData = (d) => {
        if (d.toString() === 'ping') {
          s.transport!.write(Buffer.from('pong'));
          s.transport!.writeEof(); // TLS 1.3 half-close: close_notify, keep reading
        }
      };
      const srv = track(await lf.loop.createServer(() => s, '127.0.0.1', 0, { ssl: fx.serverOptions() }));
      const c = new Recorder(lf.loop);
      c.keepOpenOnEof = true;
      const [t] = await lf.loop.createConnection(() => c, '127.0.0.1', portOf(srv), { ssl: fx.clientOptions() });
      t.write(Buffer.from('ping'));
      await waitFor(c.waitBytes(4), T);
      for (let i = 0; i < SIZE; i++) t.write(Buffer.alloc(CHUNK, 0x78));
      await waitFor(c.eof, T);
      await waitFor(s.waitBytes(4 + CHUNK * SIZE), T);
      t.close();
      await waitFor(c.lost, T);
      await waitFor(s.lost, T);
      expect(s.receivedBytes).toBe(4 + CHUNK * SIZE);
      for (const r of [s, c]) expect(r.violations).toEqual([]);
    });
  });

  it('test_shutdown_timeout_handler_not_set (test_ssl): bytes and EOF held by a paused TLS reader come before connectionLost(null)', async () => {
    await lf.run(async () => {
      const s = new Recorder(lf.loop);
      s.onData = (d) => {
        if (d.toString() === 'world') {
          s.transport!.write(Buffer.from('extra bytes'));
          s.transport!.writeEof();
        }
      };
      s.keepOpenOnEof = false;
      const srv = track(await lf.loop.createServer(() => s, '127.0.0.1', 0, { ssl: fx.serverOptions() }));
      const c = new Recorder(lf.loop);
      const [t] = await lf.loop.createConnection(() => c, '127.0.0.1', portOf(srv), { ssl: fx.clientOptions() });
      await waitFor(s.made, T);
      s.transport!.write(Buffer.from('hello'));
      await waitFor(c.waitBytes(5), T);
      t.write(Buffer.from('world'));
      t.pauseReading();
      await waitFor(s.waitBytes(5), T);
      await sleep(0.05); // give 'extra bytes' and the close_notify time to reach the paused client
      expect(c.receivedBytes).toBe(5);
      t.resumeReading();
      expect(await waitFor(c.lost, T)).toBeNull();
      expect(c.data().toString()).toBe('helloextra bytes');
      expect(c.events.filter((e) => e === 'ER')).toEqual(['ER']);
      await waitFor(s.lost, T);
    });
  });

  it('ssl_shutdown_timeout (test_ssl): a TLS peer that never answers the close_notify is aborted with TimeoutError', async () => {
    await lf.run(async () => {
      let peer: tls.TLSSocket | null = null;
      const s = new Recorder(lf.loop);
      const srv = track(await lf.loop.createServer(() => s, '127.0.0.1', 0, { ssl: fx.serverOptions(), sslShutdownTimeout: 0.1 }));
      const { connect } = await wrapPromise(import('node:tls'), lf.loop);
      peer = connect({ ...fx.clientOptions(), port: portOf(srv), host: '127.0.0.1', allowHalfOpen: true } as tls.ConnectionOptions);
      peer.on('error', () => {});
      peer.on('data', () => {});
      peer.on('end', () => {}); // half-open: never ends its side
      await waitFor(s.made, T);
      s.transport!.close();
      expect(await waitFor(s.lost, T)).toMatchObject({ code: 'TW_TIMEOUT' });
      peer.destroy();
    });
  });

  // ------------------------------------------------------------------ test_selector_events.py / test_transports.py

  async function pair(loop: EventLoop): Promise<{ t: Transport; c: Recorder; s: Recorder }> {
    const s = new Recorder(loop);
    const srv = track(await loop.createServer(() => s, '127.0.0.1', 0));
    const c = new Recorder(loop);
    const [t] = await loop.createConnection(() => c, '127.0.0.1', portOf(srv));
    await waitFor(s.made, T);
    return { t, c, s };
  }

  it('test_write_closing / test_write_eof_after_close (test_selector_events): write and writeEof after close are no-ops', async () => {
    await lf.run(async () => {
      const { t, c, s } = await pair(lf.loop);
      t.close();
      expect(t.isClosing()).toBe(true);
      t.close(); // idempotent
      expect(() => t.write(Buffer.from('data'))).not.toThrow();
      await waitFor(c.lost, T);
      expect(() => t.write(Buffer.from('data'))).not.toThrow();
      expect(() => t.writeEof()).not.toThrow();
      await waitFor(s.lost, T);
      expect(s.receivedBytes).toBe(0);
      expect(c.events.filter((e) => e.startsWith('CL'))).toEqual(['CL:null']);
    });
  });

  it('test_write_str / test_write_bytearray / test_write_memoryview / test_write_no_data (test_selector_events)', async () => {
    await lf.run(async () => {
      const { t, s } = await pair(lf.loop);
      expect(() => t.write('str' as unknown as Uint8Array)).toThrow(TypeError);
      const arr = new Uint8Array([0x61, 0x62, 0x63, 0x64]);
      t.write(arr);
      t.write(Buffer.from('xxefgh').subarray(2));
      t.write(Buffer.alloc(0));
      await waitFor(s.waitBytes(8), T);
      expect(s.data().toString()).toBe('abcdefgh');
      expect([...arr]).toEqual([0x61, 0x62, 0x63, 0x64]); // not mutated
      t.close();
    });
  });

  it('test_write_eof (test_selector_events): writeEof twice sends one EOF; after writeEof, write throws', async () => {
    await lf.run(async () => {
      const { t, s } = await pair(lf.loop);
      s.keepOpenOnEof = true;
      expect(t.canWriteEof()).toBe(true);
      t.write(Buffer.from('data')); // test_write_eof_buffer: the EOF goes after the buffered bytes
      t.writeEof();
      t.writeEof();
      expect(() => t.write(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_CLOSED' }));
      await waitFor(s.eof, T);
      expect(s.events).toEqual(['CM', 'DR:4', 'ER']);
      t.close();
      s.transport!.close();
    });
  });

  it('test_abort (test_selector_events): abort drops the buffer; getWriteBufferSize is 0; connectionLost(null) once', async () => {
    await lf.run(async () => {
      const { t, c, s } = await pair(lf.loop);
      t.write(Buffer.alloc(1024, 1));
      expect(t.getWriteBufferSize()).toBe(1024);
      t.abort();
      t.abort();
      expect(t.isClosing()).toBe(true);
      expect(t.getWriteBufferSize()).toBe(0);
      expect(await waitFor(c.lost, T)).toBeNull();
      await waitFor(s.lost, T);
      expect(s.receivedBytes).toBe(0);
      expect(c.events).toEqual(['CM', 'CL:null']);
    });
  });

  it('test_pause_resume_reading (test_selector_events): idempotent; isReading tracks it; false once closing', async () => {
    await lf.run(async () => {
      const { t, c, s } = await pair(lf.loop);
      expect(t.isReading()).toBe(true);
      t.pauseReading();
      t.pauseReading();
      expect(t.isReading()).toBe(false);
      s.transport!.write(Buffer.from('held'));
      await sleep(0.02);
      expect(c.receivedBytes).toBe(0);
      t.resumeReading();
      t.resumeReading();
      expect(t.isReading()).toBe(true);
      await waitFor(c.waitBytes(4), T);
      expect(c.events).toEqual(['CM', 'DR:4']);
      t.close();
      expect(t.isReading()).toBe(false);
      t.resumeReading();
      expect(t.isReading()).toBe(false);
      await waitFor(c.lost, T);
    });
  });

  it('test_pause_reading_connection_made (test_selector_events): pauseReading inside connectionMade', async () => {
    await lf.run(async () => {
      const s = new Recorder(lf.loop);
      const srv = track(await lf.loop.createServer(() => s, '127.0.0.1', 0));
      const c = new Recorder(lf.loop);
      const orig = c.connectionMade.bind(c);
      c.connectionMade = (tr: Transport) => {
        orig(tr);
        tr.pauseReading();
      };
      const [t] = await lf.loop.createConnection(() => c, '127.0.0.1', portOf(srv));
      expect(t.isReading()).toBe(false);
      await waitFor(s.made, T);
      s.transport!.write(Buffer.from('x'));
      await sleep(0.02);
      expect(c.receivedBytes).toBe(0);
      t.resumeReading();
      expect(t.isReading()).toBe(true);
      await waitFor(c.waitBytes(1), T);
      t.close();
      expect(t.isReading()).toBe(false);
      await waitFor(c.lost, T);
    });
  });

  it('test_flowcontrol_mixin_set_write_limits (test_transports): validation, getWriteBufferLimits, pausing on lower limits', async () => {
    await lf.run(async () => {
      const { t, c } = await pair(lf.loop);
      expect(() => t.setWriteBufferLimits({ high: 0, low: 1 })).toThrow(/high.*must be >= low/);
      expect(() => t.setWriteBufferLimits({ low: -1 })).toThrow(RangeError);
      expect(() => t.setWriteBufferLimits({ high: Number.NaN })).toThrow(RangeError);
      t.setWriteBufferLimits({ low: 100 });
      expect(t.getWriteBufferLimits()).toEqual({ low: 100, high: 400 });
      t.setWriteBufferLimits({ high: 400 });
      expect(t.getWriteBufferLimits()).toEqual({ low: 100, high: 400 });
      t.setWriteBufferLimits();
      expect(t.getWriteBufferLimits()).toEqual({ low: 16 * 1024, high: 64 * 1024 });
      t.write(Buffer.alloc(512, 1)); // corked until the iteration ends: 512 bytes buffered
      t.setWriteBufferLimits({ high: 1024, low: 128 });
      expect(c.writingPaused).toBe(false);
      expect(t.getWriteBufferLimits()).toEqual({ low: 128, high: 1024 });
      t.setWriteBufferLimits({ high: 256, low: 128 });
      expect(c.writingPaused).toBe(true);
      expect(t.getWriteBufferLimits()).toEqual({ low: 128, high: 256 });
      await waitFor(waitUntil(() => !c.writingPaused), T);
      expect(c.events).toEqual(['CM', 'PW', 'RW']);
      t.close();
      await waitFor(c.lost, T);
    });
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(0.002);
}
