/**
 * A connection in the middle of `startTls` (a STARTTLS upgrade whose handshake has not finished) is still one of the
 * server's connections: `abortClients()` and `closeClients()` must end it now, and so must `abort()`/`close()` on the
 * transport being upgraded (the only handle on it until the handshake is done). asyncio's start_tls runs its
 * handshake on that same transport, so aborting it fails the handshake at once. Here the old transport had already
 * handed its socket over: abort() and close() on it did nothing, so the handshake ran on until sslHandshakeTimeout
 * (60 s by default; 5 s here) and `waitClosed()` waited for it.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { sleep, startServer, waitFor, wrapPromise } from '../../src/index.js';
import type { StreamWriter } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { tlsFixture } from '../support/tls-fixture.js';

const fx = tlsFixture();
// Far below the handshake timeout below, so a wait that only ends at that timeout fails here.
const T = 2;
const HANDSHAKE_TIMEOUT = 5;

describe('closing a connection while its startTls handshake runs', () => {
  const lf = useLoop({ real: true });

  for (const how of ['abortClients', 'closeClients', 'transport.abort', 'transport.close'] as const) {
    it(`${how}() ends the handshake at once: startTls rejects, waitClosed resolves, the peer is closed`, async () => {
      await lf.run(async () => {
        const got: { writer: StreamWriter | null } = { writer: null };
        const upgrade = lf.loop.createFuture<unknown>();
        const server = await startServer(async (rd, wr) => {
          await rd.readline();
          got.writer = wr;
          try {
            await wr.startTls(fx.serverOptions(), { sslHandshakeTimeout: HANDSHAKE_TIMEOUT });
            upgrade.setResult('upgraded');
          } catch (e) {
            upgrade.setResult(e);
          }
        }, '127.0.0.1', 0);
        const port = (server.sockets[0]!.address() as AddressInfo).port;
        // A client that asks for TLS and never sends its ClientHello.
        const raw = net.connect(port, '127.0.0.1');
        raw.on('error', () => {});
        const peerClosed = new Promise<void>((r) => raw.on('close', () => r()));
        raw.write('STARTTLS\n');
        while (got.writer === null) await sleep(0.005);
        await sleep(0.02); // the handshake is waiting for the ClientHello
        const old = got.writer.transport;
        server.close();
        if (how === 'abortClients') server.abortClients();
        else if (how === 'closeClients') server.closeClients();
        else if (how === 'transport.abort') old.abort();
        else old.close();
        const err = await waitFor(upgrade, T);
        expect(err).toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
        await waitFor(server.waitClosed(), T);
        await waitFor(wrapPromise(peerClosed, lf.loop), T);
        expect(server.activeCount).toBe(0);
        expect(lf.take()).toEqual([]); // asked for: no "TLS handshake failed" report
      });
    });
  }
});
