/**
 * Peers and waits for the CPython test_asyncio ports under test/net (cpython-test-events, -sslproto, -ssl, -streams):
 * the "threaded peers" of CPython's functional.py are node:net/node:tls peers in this process. Every wait is bounded.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { sleep, waitFor } from '../../src/index.js';
import type { Server } from '../../src/index.js';

/** The bound of {@link until}, in seconds (the ports' `T`). */
const T = 10;

/** The TCP port a tulipwire Server listens on. */
export function portOf(server: Server): number {
  return (server.sockets[0]!.address() as AddressInfo).port;
}

/**
 * The `nodeServer(onConnection)` of a test file: a node:net server run for one test (CPython's `tcp_server` with a
 * threaded peer), resolving with its port; it is closed by the file's per-test `cleanups` list.
 */
export function nodeServers(cleanups: (() => void | Promise<void>)[]): (onConnection: (sock: net.Socket) => void) => Promise<number> {
  return async function nodeServer(onConnection: (sock: net.Socket) => void): Promise<number> {
    const srv = net.createServer(onConnection);
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      srv.close(() => resolve());
    }));
    return (srv.address() as AddressInfo).port;
  };
}

/** Resolves with the first `n` bytes read from `s` (CPython's `recv_all`); the rest is handed to `rest`. */
export function recvAll(s: Duplex, n: number, rest?: (extra: Buffer) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer): void => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        s.off('data', onData);
        s.off('error', reject);
        s.pause();
        const all = Buffer.concat(chunks);
        if (all.length > n) rest?.(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    s.on('data', onData);
    s.on('error', reject);
    s.resume();
  });
}

/** A raw node:net client connected to 127.0.0.1:`port`. */
export function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => resolve(c));
    c.once('error', reject);
  });
}

/** Polls `pred` every iteration until it holds (CPython's `test_utils.run_until`), bounded by T. */
export async function until(pred: () => boolean): Promise<void> {
  await waitFor(async () => {
    while (!pred()) await sleep(0.005);
  }, T);
}
