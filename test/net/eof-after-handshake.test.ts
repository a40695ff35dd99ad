/**
 * A TLS peer's EOF (close_notify) that arrives right behind its handshake, before anything was sent.
 *
 * Ports the shape of CPython 3.13 test_asyncio/test_ssl.py `TestSSL.test_shutdown_cleanly` (the peer unwraps —
 * sends close_notify — and the other end's `reader.read()` returns b''), with the peer closing at once instead of
 * after an exchange; asyncio's sslproto turns that close_notify into `eof_received` (`_do_read` →
 * SSLZeroReturnError → `_call_eof_received`) and flushes what the protocol writes there before its own shutdown
 * (the half-close shape of test_ssl.py `test_remote_shutdown_receives_trailing_data`). Grammar: CM → ER → CL.
 *
 * What this found, on the server: the TLS socket still had `allowHalfOpen` off from the handshake, and node:tls reads
 * that EOF (emitting `'end'` on the next tick) before the loop iteration that makes the transport, so Node ended and
 * destroyed the socket and the server dropped the connection silently, without `connectionMade`: a TLS 1.3 client
 * that half-closes at once and waits for an answer got none. With half-open on from the handshake's end, the `'end'`
 * still comes before the transport listens; the transport now takes it from `socket.readableEnded`. The client
 * cases passed before too; they pin the same order on the other side.
 */
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { openConnection, waitFor, wrapPromise } from '../../src/index.js';
import type { Transport } from '../../src/index.js';
import { useCleanups } from '../support/cleanups.js';
import { useLoop } from '../support/loop.js';
import { tlsFixture } from '../support/tls-fixture.js';
import { Recorder } from './contract-suite.js';

const fx = tlsFixture();
const T = 10;

/** A node:tls server that ends every connection right after its handshake (close_notify, then FIN). */
async function endingServer(cleanups: (() => void | Promise<void>)[]): Promise<number> {
  const srv = tls.createServer(fx.serverOptions(), (s) => {
    s.on('error', () => {});
    s.end();
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
  return (srv.address() as AddressInfo).port;
}

describe('an EOF right behind the TLS handshake', () => {
  const lf = useLoop({ real: true });
  const cleanups = useCleanups();

  it('client: reader.read() returns b"" when the server closes right after the handshake (test_ssl test_shutdown_cleanly)', async () => {
    const port = await endingServer(cleanups);
    await lf.run(async () => {
      const [rd, wr] = await openConnection('127.0.0.1', port, { ssl: fx.clientOptions(), serverHostname: 'localhost' });
      const data = await waitFor(rd.read(), T);
      expect(data.length).toBe(0);
      expect(rd.atEof()).toBe(true);
      wr.close();
      await waitFor(wr.waitClosed(), T);
    });
  });

  it('client: the protocol gets connectionMade, eofReceived, connectionLost(null), in that order', async () => {
    const port = await endingServer(cleanups);
    await lf.run(async () => {
      const r = new Recorder(lf.loop);
      await lf.loop.createConnection(() => r, '127.0.0.1', port, { ssl: fx.clientOptions(), serverHostname: 'localhost' });
      expect(await waitFor(r.lost, T)).toBe(null);
      expect(r.events).toEqual(['CM', 'ER', 'CL:null']);
      expect(r.violations).toEqual([]);
    });
  });

  it('server: a TLS 1.3 client that half-closes at once is served and gets the answer written in eofReceived (test_ssl test_remote_shutdown_receives_trailing_data)', async () => {
    await lf.run(async () => {
      const events: string[] = [];
      const srv = await lf.loop.createServer(() => {
        let t: Transport | null = null;
        return {
          connectionMade(tr: Transport): void {
            t = tr;
            events.push('CM');
          },
          dataReceived(d: Buffer): void {
            events.push(`DR:${d.length}`);
          },
          eofReceived(): boolean {
            events.push('ER');
            t!.write(Buffer.from('bye'));
            t!.close();
            return true;
          },
          connectionLost(exc: Error | null): void {
            events.push(`CL:${String(exc)}`);
          },
        };
      }, '127.0.0.1', 0, { ssl: fx.serverOptions() });
      cleanups.push(() => {
        srv.close();
        srv.abortClients();
      });
      const port = (srv.sockets[0]!.address() as AddressInfo).port;
      const got = await waitFor(wrapPromise(new Promise<string>((resolve) => {
        const c = tls.connect({
          port, host: '127.0.0.1', servername: 'localhost', ...fx.clientOptions(), allowHalfOpen: true,
        } as tls.ConnectionOptions);
        let buf = '';
        c.on('data', (d: Buffer) => (buf += d.toString()));
        c.on('error', (e) => resolve(`error ${e.message}`));
        c.on('close', () => resolve(buf));
        c.on('secureConnect', () => c.end());
      }), lf.loop), T);
      expect(got).toBe('bye');
      srv.close();
      await waitFor(srv.waitClosed(), T);
      expect(events).toEqual(['CM', 'ER', 'CL:null']);
    });
  });
});
