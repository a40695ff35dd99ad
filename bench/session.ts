/**
 * bench/session.ts: long-lived sessions beside raw node:tls, in the same run.
 *
 * - reconnect storm: N sessions (1,000; 100 with --quick) connected to a session server; the server is aborted
 *   (a crash) and started again on the same port; measured: seconds until every session is back (its first call
 *   after the restart answered), and handshakes per second over that window. Baseline: N raw `tls.connect` mTLS
 *   clients started at once against a raw `tls.createServer`, time until all are connected (no backoff, no
 *   signed messages). The sessions use their full-jitter backoff (base 0.05 s, cap 1 s), so the ratio shows what
 *   spreading the storm costs against connecting all at once.
 * - idle memory per session: RSS growth per idle session (both ends in one child process, after GC), beside the
 *   same for idle raw mTLS connections (another child process).
 *
 * Both use the project's PrivateCA certificates (P-256); the raw arm gets the same PEMs as plain node:tls options.
 * `npx tsx bench/session.ts` prints a table, `--json` the report (bench/README.md), `--quick` a tiny run.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import { EventLoop } from '../src/loop/index.js';
import { sleep } from '../src/loop/index.js';
import { PrivateCA, clientTlsOptions, serverTlsOptions } from '../src/pki/index.js';
import type { IssuedCertificate } from '../src/pki/index.js';
import { Keyring } from '../src/wire/keyring.js';
import { serveSessions } from '../src/session/session-server.js';
import type { SessionServer } from '../src/session/session-server.js';
import { openSession } from '../src/session/session.js';
import type { Session } from '../src/session/session.js';
import type { BenchCase, BenchReport } from './support/common.js';
import { emitReport, errorText, isMain, now, parseFlags, progress, ratio, round } from './support/common.js';

const flags = parseFlags();
const QUICK = flags.quick;
const STORM = QUICK ? 100 : 1000;
const IDLE = QUICK ? 100 : 1000;

interface Creds { server: IssuedCertificate; client: IssuedCertificate; pin: string }

async function makeCreds(dir: string): Promise<Creds> {
  const ca = await PrivateCA.init({ dir, name: 'bench.tulipwire' });
  const server = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const client = await ca.issueClient({ identity: 'bench-client' });
  return { server, client, pin: ca.rootPin };
}

function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 0x42));
  return k;
}

function gc(): void {
  v8.setFlagsFromString('--expose-gc');
  const f = vm.runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) f();
}

// ------------------------------------------------------------------------------------------------------------
// Reconnect storm

async function sessionStorm(creds: Creds, n: number): Promise<{ seconds: number; attempts: number }> {
  const loop = new EventLoop();
  return loop.runUntilComplete(async () => {
    const ring = keyring();
    const serverOpts = serverTlsOptions(creds.server, { pin: creds.pin });
    const common = { keyring: ring, logger: {}, maxConnectionsPerIdentity: n + 10, maxInFlight: 64, backlog: 2048 } as const;
    let server: SessionServer = await serveSessions({ ...common, tls: serverOpts });
    server.handle('ping', () => 1);
    const port = server.port!;
    const clientOpts = clientTlsOptions(creds.client, { servername: 'localhost', pin: creds.pin });
    const sessions: Session[] = [];
    for (let i = 0; i < n; i++) {
      sessions.push(openSession({ keyring: ring, port, tls: clientOpts, logger: {}, shutdownTimeout: 1,
        backoff: { base: 0.05, cap: 1 } }));
    }
    try {
    for (const s of sessions) await s.whenConnected();
    progress(`storm: ${n} sessions up, restarting the server`);
    const before = sessions.reduce((a, s) => a + s.attempts, 0);
    const t0 = now();
    server.abort();
    await server.close();
    server = await serveSessions({ ...common, tls: serverOpts, port });
    server.handle('ping', () => 1);
    // Idempotent, as a client riding out a restart would send it: a call written to a connection whose reset is not
    // processed yet fails TransportClosed otherwise (it may have run), and the session sends it again here.
    await Promise.all(sessions.map((s) => s.call('ping', null, { timeout: 60, idempotent: true })));
    const seconds = now() - t0;
    const attempts = sessions.reduce((a, s) => a + s.attempts, 0) - before;
    return { seconds, attempts };
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
      await server.close();
    }
  });
}

async function rawStorm(creds: Creds, n: number): Promise<number> {
  const server = tls.createServer({ key: creds.server.key.pem, cert: creds.server.chain.pem, ca: creds.server.ca.pem,
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
  server.on('secureConnection', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', 2048, r));
  const port = (server.address() as { port: number }).port;
  const ctx = tls.createSecureContext({ key: creds.client.key.pem, cert: creds.client.chain.pem, ca: creds.client.ca.pem, minVersion: 'TLSv1.3' });
  const t0 = now();
  const sockets = await Promise.all(Array.from({ length: n }, () => new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', secureContext: ctx });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  })));
  const seconds = now() - t0;
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return seconds;
}

// ------------------------------------------------------------------------------------------------------------
// Idle memory (each arm in its own child process, so one arm's heap does not colour the other's RSS)

async function childIdle(kind: 'raw' | 'session', dir: string, n: number): Promise<void> {
  const ca = await PrivateCA.load({ dir });
  const server = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const client = await ca.issueClient({ identity: 'bench-idle' });
  const report = (before: number, after: number) => {
    process.stdout.write(JSON.stringify({ kbPer: (after - before) / 1024 / n }) + '\n');
  };
  if (kind === 'raw') {
    const srv = tls.createServer({ key: server.key.pem, cert: server.chain.pem, ca: server.ca.pem, requestCert: true, rejectUnauthorized: true });
    const accepted: tls.TLSSocket[] = [];
    srv.on('secureConnection', (s) => accepted.push(s));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', 2048, r));
    const port = (srv.address() as { port: number }).port;
    const ctx = tls.createSecureContext({ key: client.key.pem, cert: client.chain.pem, ca: client.ca.pem });
    gc();
    const before = process.memoryUsage().rss;
    const socks: tls.TLSSocket[] = [];
    for (let i = 0; i < n; i += 50) {
      socks.push(...await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', secureContext: ctx });
        s.once('secureConnect', () => resolve(s));
        s.once('error', reject);
      }))));
    }
    await new Promise((r) => setTimeout(r, 200));
    gc();
    report(before, process.memoryUsage().rss);
    for (const s of socks) s.destroy();
    srv.close();
    return;
  }
  const loop = new EventLoop();
  await loop.runUntilComplete(async () => {
    const ring = keyring();
    const pin = ca.rootPin;
    const srv = await serveSessions({ keyring: ring, tls: serverTlsOptions(server, { pin }), logger: {}, maxConnectionsPerIdentity: n + 10 });
    const clientOpts = clientTlsOptions(client, { servername: 'localhost', pin });
    gc();
    const before = process.memoryUsage().rss;
    const sessions: Session[] = [];
    for (let i = 0; i < n; i += 50) {
      const batch = Array.from({ length: Math.min(50, n - i) }, () => openSession({ keyring: ring, port: srv.port!, tls: clientOpts, logger: {} }));
      sessions.push(...batch);
      for (const s of batch) await s.whenConnected();
    }
    await sleep(0.2);
    gc();
    report(before, process.memoryUsage().rss);
    srv.abort();
    for (const s of sessions) s.task.cancel();
  });
  process.exit(0);
}

function runChild(kind: 'raw' | 'session', dir: string, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', kind, dir, String(n)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve((JSON.parse(line) as { kbPer: number }).kbPer);
      } catch {
        reject(new Error(`idle child ${kind} exited ${code} without a result: ${out.slice(0, 200)}`));
      }
    });
  });
}

// ------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-session-'));
  const cases: BenchCase[] = [];
  try {
    const creds = await makeCreds(join(dir, 'ca'));
    progress(`raw node:tls storm, ${STORM} clients`);
    let raw: number | null = null;
    try { raw = await rawStorm(creds, STORM); } catch (e) { cases.push({ case: `raw node:tls ${STORM} mTLS connects at once`, unit: 's', value: null, extra: { error: errorText(e) } }); }
    progress(`session reconnect storm, ${STORM} sessions`);
    try {
      const storm = await sessionStorm(creds, STORM);
      const rawRate = raw === null ? null : STORM / raw;
      cases.push({ case: `session reconnect storm: ${STORM} sessions back after a server restart`, unit: 's', value: round(storm.seconds, 3),
        baseline: { name: `raw node:tls: ${STORM} mTLS clients connecting at once`, value: raw === null ? null : round(raw, 3) },
        ratio: ratio(storm.seconds, raw), extra: { attempts: storm.attempts, note: 'lower is better; sessions spread reconnects with full-jitter backoff (base 0.05 s, cap 1 s)' } });
      cases.push({ case: `session reconnect storm handshakes/s (${STORM} sessions)`, unit: 'handshakes/s', value: round(STORM / storm.seconds),
        baseline: { name: 'raw node:tls handshakes/s, all at once', value: rawRate === null ? null : round(rawRate) },
        ratio: ratio(STORM / storm.seconds, rawRate) });
    } catch (e) {
      cases.push({ case: `session reconnect storm: ${STORM} sessions`, unit: 's', value: null, extra: { error: errorText(e) } });
    }
    progress(`idle memory, ${IDLE} connections per arm`);
    let rawKb: number | null = null;
    try { rawKb = await runChild('raw', join(dir, 'ca'), IDLE); } catch (e) { cases.push({ case: 'raw idle mTLS connection memory', unit: 'KB', value: null, extra: { error: errorText(e) } }); }
    try {
      const kb = await runChild('session', join(dir, 'ca'), IDLE);
      cases.push({ case: `idle session memory (both ends, ${IDLE} sessions)`, unit: 'KB', value: round(kb, 1),
        baseline: { name: `idle raw node:tls mTLS connection (both ends, ${IDLE})`, value: rawKb === null ? null : round(rawKb, 1) },
        ratio: ratio(kb, rawKb), extra: { note: 'RSS growth per connection after GC; lower is better' } });
    } catch (e) {
      cases.push({ case: 'idle session memory', unit: 'KB', value: null, extra: { error: errorText(e) } });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const report: BenchReport = { name: 'session', cases };
  emitReport(report, flags);
  process.exit(0);
}

if (isMain(import.meta.url)) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    void childIdle(process.argv[i + 1] as 'raw' | 'session', process.argv[i + 2]!, Number(process.argv[i + 3]));
  } else {
    main().catch((e) => {
      process.stderr.write(`bench/session: ${errorText(e)}\n`);
      process.exit(1);
    });
  }
}
