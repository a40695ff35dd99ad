/**
 * A peer that leaves an accepted TLS connection before sending a single byte never began a handshake: the server
 * forgets it without a "TLS handshake failed" report. This is what a client does whose connect is cancelled between
 * the kernel's accept and its own first write (a Session closed while it reconnects: the game-server rotation soak
 * saw "TLS handshake failed: … socket hang up" from bots stopped during a make-before-break attempt). A peer that
 * left after its ClientHello (a node:tls client refusing the server's certificate closes without an alert) is still
 * reported. Real TLS on 127.0.0.1, certificates from the project's CA.
 */
import * as net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../src/index.js';
import type { Protocol, Server, Transport } from '../../src/index.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';

const fx = useLoop({ real: true });
let ca: TestCA;

beforeAll(async () => { ca = await makeTestCA({ name: 'handshake-abort.test' }); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });

const made: Transport[] = [];
const factory = (): Protocol => ({ connectionMade: (t: Transport) => { made.push(t); }, dataReceived: () => undefined });
afterEach(() => { expect(made).toEqual([]); made.length = 0; });

function portOf(server: Server): number {
  return (server.sockets[0]!.address() as net.AddressInfo).port;
}

/** Waits until the server has seen the connection come and go (accepted, then no longer pending). */
async function settled(server: Server, accepted: () => boolean): Promise<void> {
  const end = fx.loop.time() + 5;
  while (!(accepted() && server.activeCount === 0) && fx.loop.time() < end) await sleep(0.005);
  await sleep(0.05); // any report is made from a callback after the pending entry is gone: let it run
  expect(server.activeCount).toBe(0);
}

describe('a peer that leaves before its first byte is not a failed handshake', () => {
  it('a raw TCP client that connects and closes (FIN, then reset) without a byte: no report', async () => {
    await fx.run(async () => {
      const server = await fx.loop.createServer(factory, '127.0.0.1', 0, { ssl: ca.serverOptions });
      let accepted = 0;
      server.sockets[0]!.on('connection', () => { accepted += 1; });
      for (const how of ['end', 'reset'] as const) {
        const before = accepted;
        const raw = net.connect({ host: '127.0.0.1', port: portOf(server) });
        raw.on('error', () => undefined);
        await new Promise<void>((res) => raw.once('connect', () => res()));
        if (how === 'end') raw.end();
        else raw.resetAndDestroy();
        await settled(server, () => accepted > before);
        raw.destroy();
      }
      server.close();
      await server.waitClosed();
      expect(fx.take().map((r) => `${r.message}: ${String(r.exception)}`)).toEqual([]);
    });
  });

  it('a client that sent its ClientHello and then closed without an alert is still reported', async () => {
    const expired = await ca.expiredServer();
    await fx.run(async () => {
      // The client refuses the expired server certificate: node:tls closes without an alert after its ClientHello.
      const server = await fx.loop.createServer(factory, '127.0.0.1', 0, { ssl: expired.options });
      const err = await fx.loop.createConnection(factory, '127.0.0.1', portOf(server), { ssl: ca.clientOptions })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TW_CERTIFICATE_EXPIRED' });
      const end = fx.loop.time() + 5;
      while (fx.records.length === 0 && fx.loop.time() < end) await sleep(0.005);
      server.close();
      await server.waitClosed();
      const recs = fx.take();
      expect(recs.map((r) => r.message)).toEqual(['TLS handshake failed']);
      expect(String(recs[0]!.exception)).toMatch(/socket hang up|ECONNRESET/);
    });
  });
});
