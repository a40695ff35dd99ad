/**
 * bench/pki.ts: the PKI layer beside plain node:tls with `openssl`-made certificates, in the same run.
 *
 * - certificates issued per second: `PrivateCA.issueServer` (key generation + 7-extension leaf + PKCS#8 PEM),
 *   sequential and 64 at a time, vs the `openssl` CLI making a P-256 key and leaf per certificate (what a cron job
 *   with openssl does: `openssl req -new -newkey ec` then `openssl x509 -req -CA`, two processes per certificate);
 * - full mTLS handshakes per second (fresh TCP + TLS 1.3, client certificate verified by the server, no resumption),
 *   sequential and 64 concurrent, with a shared client SecureContext: the project's pinned builders with the hooks
 *   the transports call (peerIdentity both sides, verifyPeer) vs plain node:tls options over openssl certificates;
 * - memory per idle mTLS connection: RSS growth over 1,000 idle connections (both ends in one child process).
 *
 * `npx tsx bench/pki.ts` prints a table, `--json` the report (bench/README.md), `--quick` a tiny run. ~30-50 s.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { PkiClientTlsOptions, PkiServerTlsOptions } from '../src/pki/index.js';
import { PrivateCA, clientTlsOptions, serverTlsOptions } from '../src/pki/index.js';
import type { BenchCase, BenchCerts, BenchReport } from './support/common.js';
import { emitReport, errorText, isMain, loadCerts, makeCerts, now, parseFlags, progress, ratio, removeCerts, round } from './support/common.js';

const kPeerIdentity = Symbol.for('tulipwire.peerIdentity');
const kVerifyPeer = Symbol.for('tulipwire.verifyPeer');
type Hooks = { [kPeerIdentity]?: (s: tls.TLSSocket) => unknown; [kVerifyPeer]?: (s: tls.TLSSocket) => Error | null };

const flags = parseFlags();
const QUICK = flags.quick;

// ------------------------------------------------------------------------------------------------------------
// Issuing

async function issueRate(ca: PrivateCA, n: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = now();
  const worker = async () => {
    while (next < n) {
      next++;
      await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return n / (now() - t0);
}

function opensslIssueRate(certs: BenchCerts, n: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-pki-'));
  try {
    writeFileSync(join(dir, 'leaf.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
    const t0 = now();
    for (let i = 0; i < n; i++) {
      // OpenSSL 3.0 has no `req -x509 -CA`: a key + CSR, then the CA signs it (two processes per certificate).
      const csr = execFileSync('openssl', [
        'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `k${i}.pem`),
        '-subj', '/CN=localhost',
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      execFileSync('openssl', [
        'x509', '-req', '-CA', join(certs.dir, 'ca.pem'), '-CAkey', join(certs.dir, 'ca.key'), '-set_serial', `0x${(i + 1).toString(16)}`,
        '-days', '1', '-extfile', join(dir, 'leaf.ext'), '-out', join(dir, `c${i}.pem`),
      ], { input: csr, stdio: ['pipe', 'ignore', 'pipe'] });
    }
    return n / (now() - t0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------------------
// Handshakes

interface Arm {
  server: tls.TlsOptions & Hooks;
  client: tls.ConnectionOptions & Hooks;
}

async function projectArm(dir: string): Promise<{ arm: Arm; ca: PrivateCA }> {
  const ca = await PrivateCA.init({ dir, name: 'bench.tulipwire' });
  const server = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const client = await ca.issueClient({ identity: 'bench-client' });
  const s: PkiServerTlsOptions = serverTlsOptions(server, { pin: ca.rootPin });
  const c: PkiClientTlsOptions = clientTlsOptions(client, { servername: 'localhost', pin: ca.rootPin });
  return { arm: { server: s, client: c }, ca };
}

function plainArm(certs: BenchCerts): Arm {
  return {
    server: { key: certs.serverKey, cert: certs.serverCert, ca: [certs.ca], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    client: { key: certs.clientKey, cert: certs.clientCert, ca: [certs.ca], servername: 'localhost', rejectUnauthorized: true, minVersion: 'TLSv1.3' },
  };
}

/** Starts a server that, per verified connection, runs the hooks (as the transports do) and writes one byte. */
async function startServer(arm: Arm, keep?: Set<tls.TLSSocket>): Promise<tls.Server> {
  const server = tls.createServer(arm.server, (socket) => {
    const verr = arm.server[kVerifyPeer]?.(socket) ?? null;
    if (verr !== null) {
      socket.destroy();
      return;
    }
    arm.server[kPeerIdentity]?.(socket);
    socket.on('error', () => undefined);
    keep?.add(socket);
    socket.write('k');
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

/** One full handshake: resolves when the server's byte arrives (so the server verified the client certificate). */
function handshake(port: number, arm: Arm, ctx: tls.SecureContext, keepOpen = false): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ ...arm.client, secureContext: ctx, host: '127.0.0.1', port });
    s.once('secureConnect', () => {
      const verr = arm.client[kVerifyPeer]?.(s) ?? null;
      if (verr !== null) reject(verr);
      arm.client[kPeerIdentity]?.(s);
    });
    s.once('data', () => {
      if (!keepOpen) s.destroy();
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function handshakeRate(arm: Arm, n: number, concurrency: number): Promise<number> {
  const server = await startServer(arm);
  const port = (server.address() as { port: number }).port;
  const ctx = tls.createSecureContext(arm.client);
  try {
    for (let i = 0; i < 10; i++) await handshake(port, arm, ctx); // warm-up
    let next = 0;
    const t0 = now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        await handshake(port, arm, ctx);
      }
    }));
    return n / (now() - t0);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

// ------------------------------------------------------------------------------------------------------------
// Memory (child process: `--child mem --variant project|plain --n N --certs DIR --cadir DIR`)

function gc(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

async function memChild(argv: string[]): Promise<void> {
  const get = (name: string) => argv[argv.indexOf(`--${name}`) + 1]!;
  const n = Number(get('n'));
  const arm = get('variant') === 'project' ? (await projectArm(get('cadir'))).arm : plainArm(loadCerts(get('certs')));
  const keep = new Set<tls.TLSSocket>();
  const server = await startServer(arm, keep);
  const port = (server.address() as { port: number }).port;
  const ctx = tls.createSecureContext(arm.client);
  for (let i = 0; i < 20; i++) await handshake(port, arm, ctx); // warm-up: code paths, contexts
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const before = process.memoryUsage().rss;
  const clients: tls.TLSSocket[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < n) {
      next++;
      clients.push(await handshake(port, arm, ctx, true));
    }
  }));
  await new Promise((r) => setTimeout(r, 100));
  gc();
  const after = process.memoryUsage().rss;
  process.stdout.write(JSON.stringify({ open: clients.length, serverSide: keep.size, kbPerConn: (after - before) / 1024 / n }) + '\n');
  for (const c of clients) c.destroy();
  server.close();
  process.exit(0);
}

function runMemChild(variant: 'project' | 'plain', n: number, certs: BenchCerts, cadir: string): Promise<{ kbPerConn: number; open: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--child', 'mem', '--variant', variant, '--n', String(n), '--certs', certs.dir, '--cadir', cadir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`memory child exited with ${code}`);
        resolve(JSON.parse(out.trim().split('\n').pop()!) as { kbPerConn: number; open: number });
      } catch (e) {
        reject(e);
      }
    });
  });
}

// ------------------------------------------------------------------------------------------------------------

function pair(caseName: string, unit: string, value: number | null, baseName: string, baseValue: number | null, note?: string): BenchCase {
  return {
    case: caseName, unit, value: value === null ? null : round(value, 1),
    baseline: { name: baseName, value: baseValue === null ? null : round(baseValue, 1) },
    ratio: ratio(value, baseValue),
    ...(note !== undefined ? { extra: { note } } : {}),
  };
}

async function main(): Promise<void> {
  const cases: BenchCase[] = [];
  const certs = makeCerts();
  const work = mkdtempSync(join(tmpdir(), 'tw-bench-pki-ca-'));
  try {
    progress('pki: issuing');
    const { arm: project, ca } = await projectArm(join(work, 'ca'));
    await issueRate(ca, QUICK ? 10 : 80, 1); // warm-up (the first ~100 leaves run much slower: JIT)
    const nIssue = QUICK ? 20 : 300;
    const seq = await issueRate(ca, nIssue, 1);
    const par = await issueRate(ca, nIssue, 64);
    const edCa = await PrivateCA.init({ dir: join(work, 'ed'), name: 'bench-ed.tulipwire', keyAlgorithm: 'Ed25519' });
    const ed = await issueRate(edCa, QUICK ? 20 : 200, 1);
    const ossl = opensslIssueRate(certs, QUICK ? 5 : 40);
    const issueNote = 'openssl: `req -new -newkey` + `x509 -req -CA` processes per certificate (key generation included)';
    cases.push(pair('tulipwire issue P-256 leaf, sequential', 'certs/s', seq, 'openssl CLI per cert', ossl, issueNote));
    cases.push(pair('tulipwire issue P-256 leaf, 64 at a time', 'certs/s', par, 'openssl CLI per cert', ossl));
    cases.push(pair('tulipwire issue Ed25519 leaf, sequential', 'certs/s', ed, 'tulipwire P-256 sequential', seq));

    const plain = plainArm(certs);
    const nHs = QUICK ? 30 : 400;
    const hsNote = 'project: root→intermediate→leaf, pinned, hooks run; plain: root→leaf from openssl';
    for (const [label, conc] of [['sequential', 1], ['64 concurrent', 64]] as const) {
      progress(`pki: handshakes ${label}`);
      // Interleave the arms twice and keep each one's best, to damp the machine's noise.
      const p: number[] = [];
      const b: number[] = [];
      for (let r = 0; r < 2; r++) {
        b.push(await handshakeRate(plain, nHs, conc));
        p.push(await handshakeRate(project, nHs, conc));
      }
      cases.push(pair(`tulipwire mTLS handshakes, ${label} (shared SecureContext)`, 'handshakes/s', Math.max(...p), `plain node:tls ${label}`, Math.max(...b), label === 'sequential' ? hsNote : undefined));
    }

    progress('pki: memory per idle connection');
    const nMem = QUICK ? 50 : 1000;
    try {
      const pb = await runMemChild('plain', nMem, certs, join(work, 'mem-plain'));
      const pp = await runMemChild('project', nMem, certs, join(work, 'mem-project'));
      cases.push(pair(`tulipwire idle mTLS connection (RSS over ${nMem}, both ends)`, 'KB', pp.kbPerConn, 'plain node:tls', pb.kbPerConn, `${pp.open} connections open`));
    } catch (e) {
      cases.push({ case: 'tulipwire idle mTLS connection', unit: 'KB', value: null, extra: { error: errorText(e) } });
    }
  } finally {
    removeCerts(certs);
    rmSync(work, { recursive: true, force: true });
  }
  const report: BenchReport = { name: 'pki', cases };
  emitReport(report, flags);
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    void memChild(argv);
  } else {
    main().catch((e: unknown) => {
      process.stderr.write(`bench/pki: ${errorText(e)}\n`);
      process.exitCode = 1;
    });
  }
}
