/**
 * Certificates that live a few seconds, rotating under live connections.
 *
 * A private CA issues a server certificate and a client certificate with lifetimes of seconds. Two `CertRotator`s
 * renew them at 2/3 of their lifetime: the server's swaps in each new certificate with `setSecureContext` (open
 * connections keep theirs; new ones get the new one), the client's is the session's certificate source (each new
 * connection uses the newest). Because node:tls checks expiry only at the handshake, the session server closes
 * every connection at the earlier notAfter of its two certificates, after a signed RECONNECT notice; the session
 * then connects again with its renewed certificate before the old connection goes (make-before-break). Meanwhile
 * the client sends a steady stream of signed, idempotent calls, and a probe opens a fresh connection twice a
 * second to see which server certificate new connections get. At the end: no message lost, none run twice, the
 * serials changed, and no connection outlived a certificate.
 *
 *     npx tsx examples/ca-rotation/main.ts                          # 4 s certificates, ~10 s
 *     npx tsx examples/ca-rotation/main.ts --lifetime 3 --duration 7
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { exampleFlags } from '../shared/args.js';
import {
  CertRotator, Keyring, PrivateCA, RpcProtocol, TulipError, clientTlsOptions, getRunningLoop, isPeerIdentity, openSession,
  peerIdentity, run, serveSessions, serverTlsOptions, sleep,
} from '../../src/index.js';
import type { DrainResult, SessionConnection, SessionLink, Task } from '../../src/index.js';

/** Options of {@link main}. Times are seconds. */
export interface RotationExampleOptions {
  /** Client certificate lifetime. Default 4. */
  lifetime?: number;
  /** Server certificate lifetime. Default 1.5 × `lifetime` (so the two rotate at different moments). */
  serverLifetime?: number;
  /** How long the client sends. Default 2.5 × `lifetime`. */
  duration?: number;
  /** Seconds between two messages of the stream. Default 0.02. */
  interval?: number;
  /** A directory holding (or to hold) the CA. Default a temp dir, removed at the end. */
  dir?: string;
  /** Where the timeline and summary go. Default `console.log`; `() => {}` for silence. */
  print?: (line: string) => void;
}

/** One connection as the server saw it. */
export interface ConnectionRecord {
  /** The client certificate's serial. */
  clientSerial: string;
  /** Seconds since the start when it was accepted. */
  openedAt: number;
  /** Seconds since the start when it ended, or null if still open at the end. */
  closedAt: number | null;
  /** The earlier notAfter of its two certificates, seconds since the start (when the server must close it). */
  closesAt: number;
  /** Why it ended: `certificate expiry` (closed by the server at notAfter), `client` (the client left), or a code. */
  reason: string | null;
}

/** What {@link main} reports. */
export interface RotationExampleResult {
  /** Server certificate serials in the order new connections saw them (probe and session connections). */
  serverSerials: string[];
  /** Client certificate serials in the order the server saw them. */
  clientSerials: string[];
  /** Renewals done by each rotator. */
  rotations: { server: number; client: number };
  /** The message stream: `sent` calls, `answered`, `lost` (never answered), server-side `executed` once, `duplicates` run twice. */
  messages: { sent: number; answered: number; lost: number; executed: number; duplicates: number };
  /** Calls answered while the session's connection still used a server certificate older than the current one. */
  answeredOnOlderServerCertificate: number;
  /** Errors the stream met, by code (none expected). */
  errors: Record<string, number>;
  /** Connections the session made after the first. */
  reconnects: number;
  /** Session connections that got a RECONNECT notice before they were replaced or closed. */
  notices: number;
  /** Fresh probe connections made, and the server serials they saw (distinct, in order). */
  probes: { made: number; serials: string[] };
  /** Every connection of the session, as the server saw it. */
  connections: ConnectionRecord[];
  /** Connections that stayed open past their certificate notAfter (plus 0.5 s of scheduling slack): must be 0. */
  outlived: number;
  /** The graceful drain at the end. */
  drain: DrainResult | null;
}

/** Runs the example (see the module doc) on its own event loop and returns what happened. */
export async function main(options: RotationExampleOptions = {}): Promise<RotationExampleResult> {
  const print = options.print ?? ((line: string) => console.log(line));
  const lifetime = options.lifetime ?? 4;
  const serverLifetime = options.serverLifetime ?? 1.5 * lifetime;
  const duration = options.duration ?? 2.5 * lifetime;
  const interval = options.interval ?? 0.02;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'tulipwire-rotation-'));
  try {
    // Outside the loop: issuing awaits webcrypto/fs promises (the rotators bring their renewals onto the loop).
    let ca: PrivateCA;
    try {
      ca = await PrivateCA.load({ dir });
    } catch (err) {
      if (!(TulipError.isTulipError(err) && err.code === 'TW_CA_NOT_FOUND')) throw err;
      ca = await PrivateCA.init({ dir, name: 'rotation.tulipwire' });
    }
    const pin = ca.rootPin;
    const serverCert = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], lifetime: serverLifetime });
    const clientCert = await ca.issueClient({ identity: 'device/sensor-1', lifetime });
    const keyring = new Keyring();
    keyring.add('rot-1', randomBytes(32));

    return await run(async () => {
      const loop = getRunningLoop();
      const t0 = loop.clock.epoch();
      const at = (): string => `${(loop.clock.epoch() - t0).toFixed(2).padStart(6)} s`;
      const since = (epoch: number): number => epoch - t0;
      const log = (line: string): void => print(`${at()}  ${line}`);
      const short = (serial: string): string => serial.slice(0, 8);

      const serverRotator = new CertRotator({ loop, initial: serverCert, renew: (c) => ca.renew(c) });
      const clientRotator = new CertRotator({ loop, initial: clientCert, renew: (c) => ca.renew(c) });
      serverRotator.subscribe((c) => log(`server certificate renewed: serial ${short(c.cert.serial)}, valid until +${since(c.cert.notAfter).toFixed(1)} s (setSecureContext)`));
      clientRotator.subscribe((c) => log(`client certificate renewed: serial ${short(c.cert.serial)}, valid until +${since(c.cert.notAfter).toFixed(1)} s`));
      serverRotator.start();
      clientRotator.start();

      const connections: ConnectionRecord[] = [];
      const byConn = new Map<SessionConnection, ConnectionRecord>();
      const clientSerials: string[] = [];
      const executed = new Map<number, number>();
      const server = await serveSessions({
        keyring,
        tls: serverTlsOptions(serverCert, { pin }),
        rotator: serverRotator,
        reconnectNotice: lifetime / 3,
        heartbeatInterval: 0.5,
        idleTimeout: 2,
        logger: {},
        onConnection: (c) => {
          const peer = peerIdentity(c.peer);
          if (!clientSerials.includes(peer.serial)) clientSerials.push(peer.serial);
          // Probe connections are recorded too; `connections` keeps those that carried the stream (`msg`).
          const rec: ConnectionRecord = { clientSerial: peer.serial, openedAt: since(loop.clock.epoch()), closedAt: null, closesAt: since(c.closesAt), reason: null };
          byConn.set(c, rec);
        },
        onDisconnect: (c, reason) => {
          const rec = byConn.get(c);
          if (rec === undefined) return;
          rec.closedAt = since(loop.clock.epoch());
          rec.reason = reason === null ? 'client' : reason.message.includes('certificate expiry') ? 'certificate expiry'
            : (reason as { code?: string }).code ?? reason.message;
        },
      });
      server.handle('msg', (n: number, ctx) => {
        executed.set(n, (executed.get(n) ?? 0) + 1);
        const rec = [...byConn.entries()].find(([c]) => c.rpc === ctx.endpoint)?.[1];
        if (rec !== undefined && !connections.includes(rec)) connections.push(rec);
        return n;
      });
      server.handle('ping', () => 'pong');

      const session = openSession({
        port: server.port!, keyring, rotator: clientRotator, tlsBuild: { servername: 'localhost', pin },
        heartbeatInterval: 0.5, idleTimeout: 2, backoff: { base: 0.05, cap: 0.3 }, shutdownTimeout: 1, logger: {},
      });
      await session.whenConnected();
      const serverSerials: string[] = [];
      const seeServer = (serial: string, via: string): void => {
        if (serverSerials.includes(serial)) return;
        serverSerials.push(serial);
        log(`a new connection (${via}) got server certificate ${short(serial)}`);
      };

      // Watches the session's connection: each change is a reconnect, the old one may have had a notice.
      let link: SessionLink | null = session.link;
      const links: SessionLink[] = link === null ? [] : [link];
      const noticed = new Set<SessionLink>();
      const watch = (): void => {
        const current = session.link;
        if (link !== null && link.notice !== null && !noticed.has(link)) {
          noticed.add(link);
          log(`RECONNECT notice: the server closes this connection at +${since(link.notice.closeAt).toFixed(1)} s`);
        }
        if (current !== link && current !== null) {
          const peer = peerIdentity(current.peer);
          log(`session now on a new connection: client ${short(clientRotator.current.cert.serial)}, server ${short(peer.serial)}`);
          seeServer(peer.serial, 'session');
          link = current;
          links.push(current);
        }
      };
      seeServer(peerIdentity(session.peer).serial, 'session');

      // The probe: a fresh connection twice a second, with the newest client certificate.
      const probeSerials: string[] = [];
      let probes = 0;
      let probing = true;
      const probe: Task<void> = loop.createTask(async () => {
        while (probing) {
          const [, proto] = await loop.createConnection(() => new RpcProtocol({ keyring, side: 'client', logger: {} }), '127.0.0.1', server.port!,
            { ssl: clientTlsOptions(clientRotator.current, { servername: 'localhost', pin }) });
          try {
            await proto.call('ping', null, { timeout: 2 });
            const serial = peerIdentity(proto.peer).serial;
            probes += 1;
            if (!probeSerials.includes(serial)) probeSerials.push(serial);
            seeServer(serial, 'probe');
          } finally {
            proto.close();
          }
          await sleep(0.5);
        }
      }, { name: 'probe' });

      // The stream: idempotent calls, up to 8 in flight; a call cut by a closing connection is sent again on the
      // next one with the same nonce, and the server's idempotency cache answers it instead of running it twice.
      const errors: Record<string, number> = {};
      let sent = 0;
      let answered = 0;
      let olderServerCert = 0;
      const inFlight: Task<void>[] = [];
      const end = loop.time() + duration;
      while (loop.time() < end) {
        watch();
        const n = sent++;
        inFlight.push(loop.createTask(async () => {
          try {
            const v = await session.call<number>('msg', n, { idempotent: true, timeout: 10 });
            if (v === n) answered += 1;
            const peer = session.link?.peer;
            if (isPeerIdentity(peer) && peer.serial !== serverRotator.current.cert.serial) olderServerCert += 1;
          } catch (err) {
            const code = TulipError.isTulipError(err) ? err.code : String(err);
            errors[code] = (errors[code] ?? 0) + 1;
          }
        }, { name: `msg ${n}` }));
        if (inFlight.length >= 8) await inFlight.shift();
        await sleep(interval);
      }
      for (const p of inFlight.splice(0)) await p;
      watch();
      probing = false;
      await probe;

      // Shutdown: drain (GOAWAY, calls finish), then the session and the rotators.
      const drain = await server.drain({ timeout: 1 });
      await session.close();
      serverRotator.stop();
      clientRotator.stop();
      const sessionConnections = connections.sort((a, b) => a.openedAt - b.openedAt);
      const outlived = [...byConn.values()].filter((r) => (r.closedAt ?? since(loop.clock.epoch())) > r.closesAt + 0.5).length;
      // Counted at the end: a link keeps its notice after it closed.
      const notices = links.filter((l) => l.notice !== null).length;
      const duplicates = [...executed.values()].reduce((s, k) => s + (k - 1), 0);

      const result: RotationExampleResult = {
        serverSerials,
        clientSerials,
        rotations: { server: serverRotator.renewals, client: clientRotator.renewals },
        messages: { sent, answered, lost: sent - answered, executed: executed.size, duplicates },
        answeredOnOlderServerCertificate: olderServerCert,
        errors,
        reconnects: session.connects - 1,
        notices,
        probes: { made: probes, serials: probeSerials },
        connections: sessionConnections,
        outlived,
        drain,
      };
      print('');
      print(`rotations: server ${result.rotations.server}, client ${result.rotations.client}; session reconnects ${result.reconnects} (${notices} after a RECONNECT notice)`);
      print(`messages: ${sent} sent, ${answered} answered, ${result.messages.lost} lost, ${duplicates} run twice`);
      print(`${olderServerCert} answered on a connection still using an older server certificate (it kept working after the swap)`);
      print(`server serials seen by new connections: ${serverSerials.map(short).join(' → ')}`);
      print(`client serials seen by the server:      ${clientSerials.map(short).join(' → ')}`);
      print(`connections past their certificate's notAfter: ${outlived}`);
      return result;
    }, { handleSignals: false });
  } finally {
    if (ownDir) await rm(dir, { recursive: true, force: true });
  }
}

function parseArgs(argv: string[]): RotationExampleOptions {
  const f = exampleFlags('usage: npx tsx examples/ca-rotation/main.ts [flags]', {
    lifetime: { type: 'number', help: 'client certificate lifetime, seconds (default 4)' },
    'server-lifetime': { type: 'number', help: 'server certificate lifetime, seconds (default 1.5 x lifetime)' },
    duration: { type: 'number', help: 'seconds the client sends (default 2.5 x lifetime)' },
  }, argv);
  const o: RotationExampleOptions = {};
  if (f['lifetime'] !== undefined) o.lifetime = f['lifetime'] as number;
  if (f['server-lifetime'] !== undefined) o.serverLifetime = f['server-lifetime'] as number;
  if (f['duration'] !== undefined) o.duration = f['duration'] as number;
  return o;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(parseArgs(process.argv.slice(2))).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
