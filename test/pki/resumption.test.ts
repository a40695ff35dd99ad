/**
 * TLS 1.3 session resumption with the builders' options (a client passing `session` to node:tls). A resumed
 * handshake skips the certificate checks; on Node 20 a resumed *client* socket also has no peer certificate at all
 * (`getPeerCertificate()` is empty), while a server keeps the client's. So: the server still sees the verified
 * client; the client's peerIdentity is null; an unpinned client accepts the resumption; a pinned client cannot
 * re-check the root and refuses it (PinMismatch, saying why) rather than passing unchecked.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { PeerIdentity } from '../../src/pki/index.js';
import { clientTlsOptions } from '../../src/pki/index.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { startEchoServer } from './helpers.js';
import type { EchoServer } from './helpers.js';

const kPeerIdentity = Symbol.for('tulipwire.peerIdentity');
const kVerifyPeer = Symbol.for('tulipwire.verifyPeer');
type Hooked = { [kPeerIdentity]: (s: TLSSocket) => PeerIdentity | null; [kVerifyPeer]: (s: TLSSocket) => Error | null };

let t: TestCA;
beforeAll(async () => {
  t = await makeTestCA();
});
afterAll(() => t.cleanup());
const servers: EchoServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

interface Outcome { reused: boolean; peer: PeerIdentity | null; verify: Error | null; session: Buffer | null }

/** Connects, pings, waits for the echo (and, on a full handshake, for the session ticket sent after it). */
function connect(port: number, options: tls.ConnectionOptions, session?: Buffer): Promise<Outcome> {
  const hooks = options as unknown as Hooked;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...options, host: '127.0.0.1', port, ...(session ? { session } : {}) });
    const out: Outcome = { reused: false, peer: null, verify: null, session: null };
    let echoed = false;
    const maybeDone = () => {
      if (echoed && (out.reused || out.session !== null)) {
        socket.destroy();
        resolve(out);
      }
    };
    socket.on('session', (s: Buffer) => {
      out.session ??= s;
      maybeDone();
    });
    socket.on('secureConnect', () => {
      out.reused = socket.isSessionReused();
      out.peer = hooks[kPeerIdentity](socket);
      out.verify = hooks[kVerifyPeer](socket);
      socket.write('ping');
    });
    socket.on('data', () => {
      echoed = true;
      maybeDone();
    });
    socket.on('error', reject);
  });
}

describe('resumed sessions', () => {
  it('the server keeps the verified client; an unpinned client resumes, without a peer certificate', async () => {
    const srv = await startEchoServer(t.serverOptions);
    servers.push(srv);
    const unpinned = clientTlsOptions(t.client, { servername: 'localhost' });
    const first = await connect(srv.port, unpinned);
    expect(first.reused).toBe(false);
    expect(first.peer?.serial).toBe(t.server.cert.serial);
    const second = await connect(srv.port, unpinned, first.session!);
    expect(second.reused).toBe(true);
    expect(second.verify).toBeNull();
    expect(second.peer).toBeNull();
    expect(srv.accepted.map((p) => p?.identity)).toEqual([t.client.identity, t.client.identity]);
  });

  it('a pinned client refuses a resumed session it cannot re-check, with PinMismatch naming the resumption', async () => {
    const srv = await startEchoServer(t.serverOptions);
    servers.push(srv);
    const first = await connect(srv.port, t.clientOptions);
    expect(first.verify).toBeNull();
    const second = await connect(srv.port, t.clientOptions, first.session!);
    expect(second.reused).toBe(true);
    expect(second.verify).toMatchObject({ code: 'TW_PIN_MISMATCH', message: expect.stringMatching(/resumed/) });
  });
});
