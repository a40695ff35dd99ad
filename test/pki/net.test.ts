/**
 * The PKI builders through tulipwire's own transports (`loop.createServer` / `loop.createConnection`, NET-CONTRACT
 * hooks): `getExtraInfo('peerIdentity')` on both sides, the client's typed certificate errors from
 * `createConnection`, and a certificate rotation on a running `Server` with a connection open. (The server-side
 * errors are asserted over raw node:tls in mtls.test.ts, and the error shape src/net hands to the hook below there.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server, Transport } from '../../src/index.js';
import { ProtocolBase, sleep } from '../../src/index.js';
import type { PeerIdentity } from '../../src/pki/index.js';
import { CertRotator, clientTlsOptions } from '../../src/pki/index.js';
import type { TestCA } from '../support/ca.js';
import { makeTestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';

const fx = useLoop({ real: true });
let t: TestCA;
const servers: Server[] = [];
const transports: Transport[] = [];

beforeAll(async () => {
  t = await makeTestCA();
});
afterAll(async () => {
  await t.cleanup();
});
/**
 * Runs `body` on the loop and closes what it opened there too, then lets the sockets' close events drain while the
 * loop still runs (closing from afterEach, after the loop fixture closed the loop, leaves late I/O callbacks behind).
 */
async function onLoop(body: () => Promise<void>): Promise<void> {
  await fx.run(async () => {
    try {
      await body();
    } finally {
      for (const tr of transports.splice(0)) tr.abort();
      for (const s of servers.splice(0)) {
        s.close();
        s.abortClients();
        await s.waitClosed();
      }
      await sleep(0.05);
    }
  });
}

/** Echo protocol that records the transport's peer identity and the data it receives. */
class Echo extends ProtocolBase {
  peer: PeerIdentity | null = null;
  received: string[] = [];
  #waiters: ((s: string) => void)[] = [];
  lost: Error | null | undefined = undefined;
  readonly reply: boolean;
  constructor(reply: boolean) {
    super();
    this.reply = reply;
  }
  override connectionMade(tr: Transport): void {
    super.connectionMade(tr);
    this.peer = tr.getExtraInfo('peerIdentity') as PeerIdentity | null;
  }
  override dataReceived(data: Buffer): void {
    const s = data.toString();
    this.received.push(s);
    if (this.reply) this.transport!.write(data);
    this.#waiters.shift()?.(s);
  }
  override connectionLost(exc: Error | null): void {
    this.lost = exc;
  }
  next(): Promise<string> {
    return new Promise((r) => this.#waiters.push(r));
  }
}

async function serve(ssl = t.serverOptions): Promise<{ server: Server; port: number; accepted: Echo[] }> {
  const accepted: Echo[] = [];
  const server = await fx.loop.createServer(() => {
    const p = new Echo(true);
    accepted.push(p);
    return p;
  }, '127.0.0.1', 0, { ssl });
  servers.push(server);
  return { server, port: (server.sockets[0]!.address() as { port: number }).port, accepted };
}

async function connect(port: number, ssl = t.clientOptions): Promise<Echo> {
  const [tr, p] = await fx.loop.createConnection(() => new Echo(false), '127.0.0.1', port, { ssl });
  transports.push(tr);
  return p;
}

describe('through loop.createServer / loop.createConnection', () => {
  it('both sides see getExtraInfo("peerIdentity")', async () => {
    await onLoop(async () => {
      const { port, accepted } = await serve();
      const client = await connect(port);
      expect(client.peer?.identity).toBe('tulip://test.tulipwire/server/localhost');
      expect(client.peer?.serial).toBe(t.server.cert.serial);
      client.transport!.write(Buffer.from('hello'));
      expect(await client.next()).toBe('hello');
      expect(accepted).toHaveLength(1);
      expect(accepted[0]!.peer?.identity).toBe('tulip://test.tulipwire/client/test-client');
      expect(accepted[0]!.peer?.fingerprint).toBe(t.client.cert.fingerprint);
    });
  });

  it.each([
    ['an expired server certificate', 'expiredServer', 'TW_CERTIFICATE_EXPIRED'],
    ['a not-yet-valid server certificate', 'notYetValidServer', 'TW_CERTIFICATE_NOT_YET_VALID'],
    ['a client certificate used by the server', 'wrongEkuServer', 'TW_WRONG_PURPOSE'],
  ] as const)('createConnection rejects with the typed error for %s', async (_what, mint, code) => {
    await onLoop(async () => {
      const { port } = await serve((await t[mint]()).options);
      await expect(connect(port)).rejects.toMatchObject({ code });
    });
    fx.take(); // the server may also report the aborted handshake
  });

  it('createConnection rejects with HostnameMismatch for the wrong host name', async () => {
    await onLoop(async () => {
      const { port } = await serve();
      await expect(connect(port, clientTlsOptions(t.client, { servername: 'other.example' }))).rejects.toMatchObject({ code: 'TW_HOSTNAME_MISMATCH' });
    });
    fx.take();
  });

  it.each([
    ['an expired client certificate', 'expiredClient', 'TW_CERTIFICATE_EXPIRED'],
    ['a client certificate from another CA', 'otherCA', 'TW_UNKNOWN_ISSUER'],
    ['a server certificate used as a client\'s', 'wrongEkuClient', 'TW_WRONG_PURPOSE'],
    ['no client certificate', 'none', 'TW_NO_CLIENT_CERTIFICATE'],
  ] as const)('the server reports %s as its typed error and keeps serving', async (_what, mint, code) => {
    await onLoop(async () => {
      const { port } = await serve();
      const ssl = mint === 'none'
        ? clientTlsOptions({ key: '', cert: '', ca: [t.ca.root.pem] } as never, { servername: 'localhost' })
        : mint === 'otherCA'
          ? clientTlsOptions((await t.otherCA()).client, { servername: 'localhost', extraCa: [t.ca.root.pem] })
          : (await t[mint]()).options;
      try {
        const bad = await connect(port, ssl);
        bad.transport!.write(Buffer.from('x'));   // TLS 1.3: the client may think it is in; the server refuses
        await sleep(0.2);
      } catch { /* the client side's view is tested elsewhere */ }
      const reported = (): boolean => fx.records.some((r) => (r.exception as { code?: string } | undefined)?.code === code);
      for (let i = 0; i < 250 && !reported(); i++) await sleep(0.02);
      const seen = fx.take().map((r) => (r.exception as { code?: string } | undefined)?.code);
      expect(seen).toContain(code);
      const good = await connect(port);
      good.transport!.write(Buffer.from('still serving'));
      expect(await good.next()).toBe('still serving');
    });
  });

  it('a client without a certificate sees NoClientCertificate in connectionLost (TLS 1.3 alert after its handshake)', async () => {
    await onLoop(async () => {
      const { port } = await serve();
      const ssl = clientTlsOptions({ key: '', cert: '', ca: [t.ca.root.pem] } as never, { servername: 'localhost' });
      let client: Echo | null = null;
      try {
        client = await connect(port, ssl);
      } catch (e) {
        // TLS 1.3 lets the client finish first, so it is normally in; if the alert came first, it is typed too.
        expect(e).toMatchObject({ code: 'TW_NO_CLIENT_CERTIFICATE' });
        return;
      }
      client.transport!.write(Buffer.from('x'));
      for (let i = 0; i < 250 && client.lost === undefined; i++) await sleep(0.02);
      expect(client.lost).toMatchObject({ code: 'TW_NO_CLIENT_CERTIFICATE' });
      expect((client.lost as Error).message).toMatch(/requires a client certificate/);
    });
    fx.take(); // the server reports the refused client
  });

  it('rotation on a running Server: the open connection survives, a new one sees the new serial', async () => {
    await onLoop(async () => {
      const { server, port } = await serve();
      const first = await connect(port);
      const rotator = new CertRotator({ loop: fx.loop, initial: t.server, renew: (c) => t.ca.renew(c) });
      rotator.attachServer(server, { pin: t.ca.rootPin });
      const renewed = await rotator.renewNow();
      first.transport!.write(Buffer.from('after rotation'));
      expect(await first.next()).toBe('after rotation');
      expect(first.peer?.serial).toBe(t.server.cert.serial);
      const second = await connect(port);
      expect(second.peer?.serial).toBe(renewed.cert.serial);
      expect(second.peer?.serial).not.toBe(t.server.cert.serial);
      // One round trip, so the server has finished its side of the handshake before the teardown aborts the socket
      // (TLS 1.3: the client is done first; an abort before the server is would be reported as a failed handshake).
      second.transport!.write(Buffer.from('second'));
      expect(await second.next()).toBe('second');
    });
  });
});
