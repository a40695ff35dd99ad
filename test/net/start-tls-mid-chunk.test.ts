/**
 * `loop.startTls()` called from a BufferedProtocol's `bufferUpdated`, with the peer's ClientHello in the same
 * received chunk as the plaintext line that asked for TLS (one TCP segment: "STARTTLS\n" + ClientHello).
 *
 * Ports the intent of CPython 3.13 test_asyncio/test_sslproto.py `BaseStartTLS.test_start_tls_server_1` (the server
 * upgrades its side after a plaintext exchange; the TLS bytes behind the plaintext must reach the TLS layer: the
 * cpython#142352 bug class, "start_tls() loses bytes already buffered") for a BufferedProtocol. asyncio's
 * `recv_into` reads at most one protocol buffer, so the ClientHello is still in the socket when start_tls takes it
 * over. Node hands the transport the whole segment: the transport copied the first 9 bytes into the protocol's
 * buffer, the protocol called startTls, and the rest of that chunk (the ClientHello) was dropped, because the
 * detaching transport handed over only the bytes it held back and those still queued, not the rest of the chunk it
 * was delivering. The handshake then hung until its timeout.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { waitFor, wrapPromise } from '../../src/index.js';
import type { BufferedProtocol, Future, Transport } from '../../src/index.js';
import { useCleanups } from '../support/cleanups.js';
import { useLoop } from '../support/loop.js';
import { tlsFixture } from '../support/tls-fixture.js';
import { Recorder } from './contract-suite.js';

const fx = tlsFixture();
const T = 10;
const LINE = 'STARTTLS\n';

/**
 * A node:tls client whose first TLS write (the ClientHello) goes out in one TCP write together with `LINE`, so the
 * server reads both in one chunk.
 */
function splicedTlsClient(port: number, cleanups: (() => void)[]): tls.TLSSocket {
  const raw = net.connect({ port, host: '127.0.0.1' });
  raw.on('error', () => {});
  let first = true;
  const pipe = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      const out = first ? Buffer.concat([Buffer.from(LINE), chunk]) : chunk;
      first = false;
      raw.write(out, cb);
    },
    final(cb) {
      raw.end();
      cb();
    },
  });
  raw.on('data', (d: Buffer) => pipe.push(d));
  raw.on('end', () => pipe.push(null));
  raw.on('close', () => pipe.destroy());
  const c = tls.connect({ socket: pipe, servername: 'localhost', ...fx.clientOptions() } as tls.ConnectionOptions);
  c.on('error', () => {});
  cleanups.push(() => {
    c.destroy();
    raw.destroy();
  });
  return c;
}

describe('startTls from bufferUpdated, mid-chunk', () => {
  const lf = useLoop({ real: true });
  const cleanups = useCleanups();

  it('test_start_tls_server_1 (test_sslproto) with a BufferedProtocol: the ClientHello behind the plaintext line reaches TLS', async () => {
    await lf.run(async () => {
      const app = new Recorder(lf.loop);
      const upgraded: Future<Transport> = lf.loop.createFuture();
      const buf = Buffer.alloc(LINE.length);
      let line = '';
      const gate: BufferedProtocol = {
        connectionMade(t: Transport): void {
          app.transport = t;
        },
        getBuffer(): Uint8Array {
          return buf;
        },
        bufferUpdated(n: number): void {
          line += buf.subarray(0, n).toString();
          if (line !== LINE) return;
          lf.loop.startTls(app.transport!, app, fx.serverOptions(), { serverSide: true, sslHandshakeTimeout: T / 2 })
            .then((nt) => upgraded.setResult(nt), (e: unknown) => upgraded.setException(e));
        },
      };
      const srv = await lf.loop.createServer(() => gate, '127.0.0.1', 0);
      cleanups.push(() => {
        srv.close();
        srv.abortClients();
      });
      const c = splicedTlsClient((srv.sockets[0]!.address() as AddressInfo).port, cleanups);
      await waitFor(wrapPromise(new Promise<void>((resolve, reject) => {
        c.once('secureConnect', () => resolve());
        c.once('close', () => reject(new Error('the client closed before its handshake finished')));
      }), lf.loop), T);
      const st = await waitFor(upgraded, T);
      // The TLS transport drives the app protocol: what the client sends arrives decrypted there.
      st.setProtocol(app);
      c.write('secret');
      await waitFor(app.waitBytes(6), T);
      expect(app.data().toString()).toBe('secret');
      expect(st.getExtraInfo('tlsVersion')).toBe('TLSv1.3');
      st.abort();
    });
  });
});
