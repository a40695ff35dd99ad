/**
 * The main job (`npm run demo`): the whole product on its embedded defaults, in one process.
 *
 * A private CA in a temp directory issues 24 h server and client certificates; an mTLS server pinned to that CA
 * serves signed RPC; several clients connect, call, and receive pushed notifications; a burst of signed messages
 * measures throughput; then four attacks are each refused with their typed error: a tampered message, an expired
 * message, a replayed nonce (and a replayed frame), and a client whose certificate comes from another CA. A summary
 * table ends it, the temp directory is removed, and the process exits 0 (1 if anything did not go as it should).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import {
  Event, Keyring, MemoryNonceStore, PrivateCA, RpcProtocol, VirtualClock, clientTlsOptions, getRunningLoop, randomNonce, run,
  serverTlsOptions, sleep, waitFor,
} from '../index.js';
import type { IssuedCertificate, MessageMeta, RejectionError, RpcProtocolOptions, Server, Transport } from '../index.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Honest clients to connect. Default 4. */
  clients?: number;
  /** RPC calls each client makes. Default 200. */
  calls?: number;
  /** Signed one-way messages in the throughput burst. Default 100,000. */
  burst?: number;
  /** Where lines of output go. Default `console.log`; pass `() => {}` for silence. */
  print?: (line: string) => void;
  /** Show a progress line on long steps. Default: when stdout is a terminal. */
  progress?: boolean;
}

/** What the demo saw, for a test or a caller to check. */
export interface DemoSummary {
  /** mTLS connections the server accepted. */
  connections: number;
  /** Connections refused at the handshake, by error code. */
  refusedConnections: Record<string, number>;
  /** Signed messages the clients sent (requests, notifications, the burst and the attacks). */
  messagesSent: number;
  /** Messages the server verified and delivered. */
  verified: number;
  /** Messages the server rejected, by error code. */
  rejected: Record<string, number>;
  /** RPC calls that completed with the right answer. */
  rpcOk: number;
  /** Notifications pushed by the server and received by clients. */
  notificationsReceived: number;
  /** Signed one-way messages per second in the burst (received and verified by the server). */
  throughput: number;
  /**
   * The attacks, the code each was refused with (null: it was not refused) and the code it must be refused with;
   * any other outcome is a failure.
   */
  attacks: { name: string; code: string | null; expected: string }[];
}

const SERVER_HOST = '127.0.0.1';
/** The code of the one attack refused at the TLS handshake (a certificate from another CA), not as a message. */
const HANDSHAKE_REFUSAL = 'TW_UNKNOWN_ISSUER';

/** The server's protocol: counts what it verifies and what it rejects, by code. */
class DemoServerProtocol extends RpcProtocol {
  static rejected: Record<string, number> = {};
  static lastRejection: RejectionError | null = null;
  static rejectedEvent: Event | null = null;
  static burstReceived = 0;
  static burstDone: Event | null = null;
  static burstTarget = 0;
  static verified = 0;

  constructor(options: RpcProtocolOptions) {
    super(options);
    this.handle('add', ([a, b]: [number, number]) => a + b);
    this.handle('whoami', (_p: unknown, ctx) => (ctx.peer as { identity?: string } | null)?.identity ?? null);
    this.onNotify('move', () => {
      if (++DemoServerProtocol.burstReceived === DemoServerProtocol.burstTarget) DemoServerProtocol.burstDone?.set();
    });
  }

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    this.notify('welcome', { motd: 'signed by the server, verified by you' });
  }

  override messageReceived(message: unknown, meta: MessageMeta): void {
    DemoServerProtocol.verified++;
    super.messageReceived(message, meta);
  }

  override messageRejected(error: RejectionError): void {
    DemoServerProtocol.rejected[error.code] = (DemoServerProtocol.rejected[error.code] ?? 0) + 1;
    DemoServerProtocol.lastRejection = error;
    DemoServerProtocol.rejectedEvent?.set();
  }
}

/** A client's protocol: counts notifications; can tamper with or capture its own outgoing bytes. */
class DemoClientProtocol extends RpcProtocol {
  notifications = 0;
  /** When set, the next socket write has its last byte (the MAC tag of the last frame) flipped. */
  tamperNext = false;
  /** When set, the next socket write is also kept here. */
  captureNext: Buffer[] | null = null;

  constructor(options: RpcProtocolOptions) {
    super(options);
    this.onNotify('welcome', () => { this.notifications++; });
  }

  override connectionMade(transport: Transport): void {
    // A man in the middle of our own making: sits between the signing layer and the socket.
    const write = transport.write.bind(transport);
    transport.write = (data: Uint8Array) => {
      let bytes = Buffer.from(data);
      if (this.tamperNext) {
        this.tamperNext = false;
        bytes = Buffer.from(bytes);
        bytes[bytes.length - 1]! ^= 0x01;
      }
      if (this.captureNext !== null) {
        this.captureNext.push(Buffer.from(bytes));
        this.captureNext = null;
      }
      write(bytes);
    };
    super.connectionMade(transport);
  }
}

/** Runs the demo on the running loop and returns what it saw. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const print = options.print ?? ((line: string) => console.log(line));
  const nClients = options.clients ?? 4;
  const nCalls = options.calls ?? 200;
  const burst = options.burst ?? 100_000;
  const progress = options.progress ?? process.stdout.isTTY === true;
  const loop = getRunningLoop();
  const dir = await mkdtemp(join(tmpdir(), 'tulipwire-demo-'));
  const servers: Server[] = [];
  const transports: Transport[] = [];
  const refusedConnections: Record<string, number> = {};
  let messagesSent = 0;
  const step = (text: string) => print(`• ${text}`);
  const showProgress = (text: string) => { if (progress) process.stdout.write(`\r  ${text}\x1b[K`); };
  const endProgress = () => { if (progress) process.stdout.write('\r\x1b[K'); };

  // Handshake failures seen by the server arrive at the loop's exception handler; count them by code.
  const previousHandler = loop.getExceptionHandler();
  loop.setExceptionHandler((_l, ctx) => {
    const code = (ctx.exception as { code?: string } | undefined)?.code;
    if (code !== undefined && code.startsWith('TW_')) refusedConnections[code] = (refusedConnections[code] ?? 0) + 1;
    else loop.defaultExceptionHandler(ctx);
  });

  Object.assign(DemoServerProtocol, { rejected: {}, lastRejection: null, burstReceived: 0, verified: 0 });
  try {
    // 1. The private CA and 24 h certificates.
    const ca = await PrivateCA.init({ dir: join(dir, 'ca'), name: 'demo.tulipwire' });
    const serverCert = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: [SERVER_HOST] });
    const clientCerts: IssuedCertificate[] = [];
    for (let i = 0; i < nClients + 3; i++) clientCerts.push(await ca.issueClient({ identity: `player/${i + 1}` }));
    step(`private CA "demo.tulipwire" in ${dir}: root → intermediate → ${clientCerts.length + 1} leaves, 24 h each`);

    // 2. The shared message key and the replay cache.
    const keyring = new Keyring();
    keyring.add('demo-2026-12', randomBytes(32));
    const nonceStore = new MemoryNonceStore({ clock: loop.clock });

    // 3. The mTLS server, pinned to this CA's root.
    const server = await loop.createServer(
      () => new DemoServerProtocol({ keyring, side: 'server', nonceStore, logger: {}, maxRejections: 1000 }),
      SERVER_HOST, 0, { ssl: serverTlsOptions(serverCert, { pin: ca.rootPin }) },
    );
    servers.push(server);
    const port = (server.sockets[0]!.address() as { port: number }).port;
    step(`mTLS server on ${SERVER_HOST}:${port} (TLS 1.3, client certificates required, only this CA trusted)`);

    const connect = async (cert: IssuedCertificate, clock?: VirtualClock): Promise<DemoClientProtocol> => {
      const [tr, proto] = await loop.createConnection(
        () => new DemoClientProtocol({ keyring, side: 'client', logger: {}, ...(clock ? { clock } : {}) }),
        SERVER_HOST, port, { ssl: clientTlsOptions(cert, { servername: 'localhost', pin: ca.rootPin }) },
      );
      transports.push(tr);
      return proto;
    };

    // 4. Honest clients: signed RPC calls and pushed notifications.
    const clients: DemoClientProtocol[] = [];
    for (let i = 0; i < nClients; i++) clients.push(await connect(clientCerts[i]!));
    let rpcOk = 0;
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < nCalls; k++) {
        if ((await c.call('add', [i, k])) === i + k) rpcOk++;
        if (k % 50 === 0) showProgress(`RPC calls: ${rpcOk}/${nClients * nCalls}`);
      }
      const me = await c.call('whoami');
      if (me === `tulip://demo.tulipwire/player/${i + 1}`) rpcOk++;   // the identity URI from the client's certificate
    }));
    endProgress();
    await sleep(0.01);
    const notificationsReceived = clients.reduce((n, c) => n + c.notifications, 0);
    step(`${nClients} clients made ${rpcOk} signed RPC calls (requests signed by clients, responses by the server); ${notificationsReceived} server notifications received`);

    // 5. Throughput: a burst of signed one-way messages over one connection.
    const sender = clients[0]!;
    DemoServerProtocol.burstTarget = burst;
    DemoServerProtocol.burstDone = new Event();
    const t0 = loop.time();
    for (let sent = 0; sent < burst;) {
      const n = Math.min(4096, burst - sent);
      for (let j = 0; j < n; j++) sender.notify('move', { t: 'move', id: 42, x: 1.5, y: -3.25, seq: sent + j, ts: 1700000000000 });
      sent += n;
      await sleep(0);
      if ((sent & 0x7fff) === 0) showProgress(`burst: ${sent}/${burst} sent, ${DemoServerProtocol.burstReceived} verified`);
    }
    await waitFor(DemoServerProtocol.burstDone.wait(), 120);
    const elapsed = loop.time() - t0;
    endProgress();
    const throughput = burst / elapsed;
    step(`${burst.toLocaleString('en-US')} signed messages verified by the server in ${elapsed.toFixed(2)} s: ${Math.round(throughput).toLocaleString('en-US')} msg/s (client and server share this one process; npm run bench measures them apart)`);

    // 6. Attacks, each refused with its typed error while the server keeps serving everyone else.
    const attacks: DemoSummary['attacks'] = [];
    const expectRejection = async (name: string, expected: string, act: () => void | Promise<void>): Promise<void> => {
      DemoServerProtocol.lastRejection = null;
      DemoServerProtocol.rejectedEvent = new Event();
      await act();
      try {
        await waitFor(DemoServerProtocol.rejectedEvent.wait(), 5);
      } catch { /* reported as not refused below */ }
      const err = DemoServerProtocol.lastRejection as RejectionError | null;
      attacks.push({ name, code: err?.code ?? null, expected });
      step(`${name}: ${err ? `refused with ${err.code} (${err.message})` : 'NOT refused'}`);
    };

    const mallory = await connect(clientCerts[nClients]!);
    await expectRejection('tampered message (one bit flipped in flight)', 'TW_BAD_SIGNATURE', () => {
      mallory.tamperNext = true;
      mallory.notify('move', { t: 'move', id: 666, x: 0, y: 0, seq: 1, ts: 0 });
    });

    // A client whose clock says it is an hour ago: its messages expired long before they arrive.
    const stale = await connect(clientCerts[nClients + 1]!, new VirtualClock({ epochStart: loop.clock.epoch() - 3600 }));
    await expectRejection('expired message (issued an hour ago, 30 s lifetime)', 'TW_SIGNATURE_EXPIRED', () => {
      stale.notify('move', { t: 'move', id: 7, x: 0, y: 0, seq: 1, ts: 0 });
    });

    await expectRejection('replayed nonce (a new message reusing a nonce)', 'TW_REPLAYED_MESSAGE', async () => {
      const nonce = randomNonce();
      mallory.sendMessage(['move', { seq: 2 }], { kind: 4, nonce });
      await sleep(0.01);
      mallory.sendMessage(['move', { seq: 3 }], { kind: 4, nonce });
    });

    await expectRejection('replayed frame (the same signed bytes sent again)', 'TW_REPLAYED_MESSAGE', async () => {
      const captured: Buffer[] = [];
      mallory.captureNext = captured;
      mallory.notify('move', { t: 'move', id: 9, x: 0, y: 0, seq: 4, ts: 0 });
      await sleep(0.01);
      mallory.transport!.write(captured[0]!);
    });

    // A certificate from a CA the server has never heard of.
    const otherCA = await PrivateCA.init({ dir: join(dir, 'other-ca'), name: 'demo.tulipwire' });
    const foreign = await otherCA.issueClient({ identity: 'player/1' });
    let foreignCode: string | null = null;
    try {
      const p = await loop.createConnection(
        () => new DemoClientProtocol({ keyring, side: 'client', logger: {} }), SERVER_HOST, port,
        { ssl: clientTlsOptions(foreign, { servername: 'localhost', extraCa: [ca.root.pem] }) },
      );
      transports.push(p[0]);
      // TLS 1.3: the client may finish its handshake before the server refuses; the first call then fails.
      await p[1].call('whoami', null, { timeout: 2 });
    } catch (err) {
      foreignCode = (err as { code?: string }).code ?? 'ERROR';
    }
    await sleep(0.05);
    const serverSaw = Object.keys(refusedConnections).find((c) => c !== 'TW_PEER_REJECTED') ?? null;
    attacks.push({ name: 'client certificate from another CA', code: serverSaw ?? foreignCode, expected: HANDSHAKE_REFUSAL });
    step(`client certificate from another CA: refused; server saw ${serverSaw ?? 'nothing'}, client got ${foreignCode ?? 'nothing'}`);

    // Everyone else was still served.
    const after = await clients[1 % clients.length]!.call('add', [20, 22]);
    step(`meanwhile honest clients are still served: add(20, 22) = ${String(after)}`);

    const summary: DemoSummary = {
      connections: server.activeCount,
      refusedConnections,
      messagesSent: 0,
      verified: DemoServerProtocol.verified,
      rejected: { ...DemoServerProtocol.rejected },
      rpcOk,
      notificationsReceived,
      throughput,
      attacks,
    };
    for (const c of [...clients, mallory, stale]) messagesSent += c.stats.sent;
    summary.messagesSent = messagesSent;
    await nonceStore.close();
    return summary;
  } finally {
    for (const t of transports) t.abort();
    for (const s of servers) {
      s.close();
      s.abortClients();
      await s.waitClosed();
    }
    await sleep(0.02);
    loop.setExceptionHandler(previousHandler);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Renders the summary as the table the demo ends with. */
export function formatSummary(s: DemoSummary): string {
  const rows: [string, string][] = [
    ['connections accepted (mTLS)', String(s.connections)],
    ['connections refused', Object.entries(s.refusedConnections).map(([c, n]) => `${c} ×${n}`).join(', ') || '0'],
    ['messages sent (signed)', s.messagesSent.toLocaleString('en-US')],
    ['messages verified by the server', s.verified.toLocaleString('en-US')],
    ...Object.entries(s.rejected).map(([code, n]): [string, string] => [`rejected: ${code}`, String(n)]),
    ['RPC calls answered correctly', String(s.rpcOk)],
    ['server notifications received', String(s.notificationsReceived)],
    ['throughput (signed msg/s, one connection)', Math.round(s.throughput).toLocaleString('en-US')],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}

/**
 * True when every attack was refused with its own code, the server rejected no message but the attacks' (one each,
 * the foreign-CA client being refused at the handshake), and every honest call was answered.
 */
export function demoSucceeded(s: DemoSummary, options: { clients: number; calls: number }): boolean {
  const expectedRejections: Record<string, number> = {};
  for (const a of s.attacks) {
    if (a.expected !== HANDSHAKE_REFUSAL) expectedRejections[a.expected] = (expectedRejections[a.expected] ?? 0) + 1;
  }
  const sameRejections = Object.keys({ ...expectedRejections, ...s.rejected })
    .every((code) => (s.rejected[code] ?? 0) === (expectedRejections[code] ?? 0));
  return s.attacks.every((a) => a.code === a.expected) && sameRejections && s.rpcOk === options.clients * (options.calls + 1);
}

async function main(): Promise<void> {
  const opts = { clients: 4, calls: 200 };
  console.log('tulipwire demo: a private CA, mutual TLS, signed expiring messages, replay protection\n');
  const summary = await run(() => runDemo(opts));
  console.log('\nsummary');
  console.log(formatSummary(summary));
  const ok = demoSucceeded(summary, opts);
  console.log(ok ? '\nevery attack was refused with its typed error; every honest call was answered.' : '\nDEMO FAILED: see above.');
  process.exitCode = ok ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    console.error('demo failed:', err);
    process.exitCode = 1;
  });
}
