/**
 * The protocol contract suite (contract-suite.ts) against every pair tulipwire makes: TCP, TLS 1.3, TCP upgraded
 * with startTls (both ends), Unix sockets, and the in-memory pair on a virtual clock.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createMemoryPair } from '../../src/index.js';
import type { EventLoop, Server, Transport } from '../../src/index.js';
import { tlsFixture } from '../support/tls-fixture.js';
import { checkProtocolContract } from './contract-suite.js';
import type { Pair, Recorder } from './contract-suite.js';

const fx = tlsFixture();
const serverTls = fx.serverOptions();
const clientTls = fx.clientOptions();

function once<T>(value: T): () => T {
  let used = false;
  return () => {
    if (used) throw new Error('this test server expects one connection');
    used = true;
    return value;
  };
}

async function finish(server: Server, transports: Transport[]): Promise<void> {
  for (const t of transports) t.abort();
  server.close();
  server.abortClients();
  await server.waitClosed();
}

function portOf(server: Server): number {
  return (server.sockets[0]!.address() as AddressInfo).port;
}

async function tcpPair(loop: EventLoop, c: Recorder, s: Recorder, tls: boolean): Promise<Pair> {
  const server = await loop.createServer(once(s), '127.0.0.1', 0, tls ? { ssl: serverTls } : {});
  const [client] = await loop.createConnection(() => c, '127.0.0.1', portOf(server), tls ? { ssl: clientTls } : {});
  await s.made;
  return { client, server: s.transport!, cleanup: () => finish(server, [client, s.transport!]) };
}

async function startTlsPair(loop: EventLoop, c: Recorder, s: Recorder): Promise<Pair> {
  const upgraded = loop.createFuture<Transport>();
  // The server upgrades inside connectionMade; the client's ClientHello may already be buffered by then.
  const serverSide = {
    connectionMade(t: Transport): void {
      s.connectionMade(t);
      loop.startTls(t, s, serverTls, { serverSide: true }).then((nt) => {
        s.transport = nt;
        upgraded.setResult(nt);
      }, (e: unknown) => upgraded.setException(e));
    },
    dataReceived: (d: Buffer) => s.dataReceived(d),
    eofReceived: () => s.eofReceived(),
    connectionLost: (e: Error | null) => s.connectionLost(e),
  };
  const server = await loop.createServer(once(serverSide), '127.0.0.1', 0);
  const [plain] = await loop.createConnection(() => c, '127.0.0.1', portOf(server));
  const client = await loop.startTls(plain, c, clientTls, { serverHostname: 'localhost' });
  c.transport = client;
  const st = await upgraded;
  // After the upgrade, the recorder is the protocol the new transport drives.
  st.setProtocol(s);
  return { client, server: st, cleanup: () => finish(server, [client, st]) };
}

let unixSeq = 0;
async function unixPair(loop: EventLoop, c: Recorder, s: Recorder): Promise<Pair> {
  const path = join(tmpdir(), `tulipwire-${process.pid}-${++unixSeq}.sock`);
  const server = await loop.createUnixServer(once(s), path);
  const [client] = await loop.createUnixConnection(() => c, path);
  await s.made;
  return { client, server: s.transport!, cleanup: () => finish(server, [client, s.transport!]) };
}

checkProtocolContract('TCP', (loop, c, s) => tcpPair(loop, c, s, false), { real: true });
checkProtocolContract('TLS 1.3', (loop, c, s) => tcpPair(loop, c, s, true), { real: true });
checkProtocolContract('TCP upgraded by startTls', startTlsPair, { real: true });
checkProtocolContract('Unix socket', unixPair, { real: true });
checkProtocolContract('memory pair (virtual clock)', async (loop, c, s) => {
  const [client, server] = createMemoryPair(loop, c, s);
  await c.made;
  await s.made;
  return { client, server, cleanup: async () => { client.abort(); server.abort(); } };
}, { real: false });
