/**
 * Transport bench: tulipwire's Protocol API over TLS 1.3 against raw `node:tls` doing the same work, in the same
 * run, echo server in a child process (`child_process.fork`) and client in this one.
 *
 * - throughput: the client keeps up to 4 MiB in flight in 16 KiB writes, the server echoes every byte; MB/s of
 *   echoed bytes (one direction counted). Both sides obey backpressure (raw: `write()` false / `'drain'`;
 *   tulipwire: `pauseWriting`/`resumeWriting`, the echo server pauses reading while its writes are paused).
 * - latency: sequential ping-pong of a 64-byte message; p50 and p99 of the round trip in µs.
 *
 * Runs are interleaved (raw, tulipwire, tulipwire, raw, …) and the median per variant is reported, with the ratio
 * to raw: goal ≥ 0.9 for throughput, ≤ 1.1 for latency (at most 10% added).
 *
 * `npx tsx bench/transport.ts [--json] [--quick]`; `--role server --kind raw|tulip --certs DIR` is the child.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { EventLoop } from '../src/index.js';
import type { Future, Transport } from '../src/index.js';
import {
  argValue, emitReport, errorText, isMain, loadCerts, makeCerts, now, parseFlags, progress, ratio, removeCerts, round, summarise,
} from './support/common.js';
import type { BenchCase, BenchCerts } from './support/common.js';

const CHUNK = 16 * 1024;
const WINDOW = 4 * 1024 * 1024;
const PING = 64;
type Kind = 'raw' | 'tulip';

// ---------------------------------------------------------------------------------------------------------------
// Server child

function serverTls(c: BenchCerts): tls.TlsOptions {
  return { key: c.serverKey, cert: c.serverCert, minVersion: 'TLSv1.3' };
}

function clientTls(c: BenchCerts): tls.ConnectionOptions {
  return { ca: [c.ca], minVersion: 'TLSv1.3', servername: 'localhost' };
}

class EchoProtocol {
  t: Transport | null = null;
  connectionMade(t: Transport): void {
    this.t = t;
  }
  dataReceived(d: Buffer): void {
    this.t!.write(d);
  }
  pauseWriting(): void {
    this.t!.pauseReading();
  }
  resumeWriting(): void {
    this.t!.resumeReading();
  }
}

async function runServer(kind: Kind, certs: BenchCerts): Promise<void> {
  if (kind === 'raw') {
    const srv = tls.createServer(serverTls(certs), (s) => {
      s.setNoDelay(true);
      s.on('data', (d: Buffer) => {
        if (!s.write(d)) s.pause();
      });
      s.on('drain', () => s.resume());
      s.on('error', () => {});
    });
    srv.listen(0, '127.0.0.1', () => process.send!({ port: (srv.address() as AddressInfo).port }));
    process.on('disconnect', () => process.exit(0));
    return;
  }
  const loop = new EventLoop();
  loop.setExceptionHandler(() => {});
  process.on('disconnect', () => process.exit(0));
  await loop.runUntilComplete(async () => {
    const server = await loop.createServer(() => new EchoProtocol(), '127.0.0.1', 0, { ssl: serverTls(certs) });
    process.send!({ port: (server.sockets[0]!.address() as AddressInfo).port });
    await loop.createFuture<void>(); // serve until the parent goes away
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

const DATA = Buffer.alloc(CHUNK, 0x61);
const PING_BUF = Buffer.alloc(PING, 0x70);

export function rawThroughput(port: number, certs: BenchCerts, total: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let recv = 0;
    let paused = false;
    let t0 = 0;
    const s = tls.connect({ host: '127.0.0.1', port, ...clientTls(certs) }, () => {
      s.setNoDelay(true);
      t0 = now();
      pump();
    });
    const pump = (): void => {
      while (!paused && sent < total && sent - recv < WINDOW) {
        sent += CHUNK;
        if (!s.write(DATA)) paused = true;
      }
    };
    s.on('drain', () => {
      paused = false;
      pump();
    });
    s.on('data', (d: Buffer) => {
      recv += d.length;
      if (recv >= total) {
        const dt = now() - t0;
        s.destroy();
        resolve(total / dt / 1e6);
      } else pump();
    });
    s.on('error', reject);
  });
}

export function rawLatency(port: number, certs: BenchCerts, n: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const samples: number[] = [];
    let got = 0;
    let t0 = 0n;
    const s = tls.connect({ host: '127.0.0.1', port, ...clientTls(certs) }, () => {
      s.setNoDelay(true);
      t0 = process.hrtime.bigint();
      s.write(PING_BUF);
    });
    s.on('data', (d: Buffer) => {
      got += d.length;
      while (got >= PING) {
        got -= PING;
        const t1 = process.hrtime.bigint();
        samples.push(Number(t1 - t0) / 1000);
        if (samples.length >= n) {
          s.destroy();
          resolve(samples);
          return;
        }
        t0 = process.hrtime.bigint();
        s.write(PING_BUF);
      }
    });
    s.on('error', reject);
  });
}

class ThroughputClient {
  t: Transport | null = null;
  sent = 0;
  recv = 0;
  paused = false;
  t0 = 0;
  mbps = 0;
  readonly done: Future<void>;
  readonly #total: number;
  constructor(loop: EventLoop, total: number) {
    this.done = loop.createFuture<void>();
    this.#total = total;
  }
  connectionMade(t: Transport): void {
    this.t = t;
    this.t0 = now();
    this.pump();
  }
  pump(): void {
    const t = this.t!;
    while (!this.paused && this.sent < this.#total && this.sent - this.recv < WINDOW) {
      this.sent += CHUNK;
      t.write(DATA);
    }
  }
  dataReceived(d: Buffer): void {
    this.recv += d.length;
    if (this.recv >= this.#total) {
      if (this.done.done()) return;
      this.mbps = this.#total / (now() - this.t0) / 1e6;
      this.t!.abort();
      this.done.setResult(undefined);
    } else this.pump();
  }
  pauseWriting(): void {
    this.paused = true;
  }
  resumeWriting(): void {
    this.paused = false;
    this.pump();
  }
  connectionLost(exc: Error | null): void {
    if (!this.done.done()) this.done.setException(exc ?? new Error('connection lost early'));
  }
}

class LatencyClient {
  t: Transport | null = null;
  got = 0;
  t0 = 0n;
  readonly samples: number[] = [];
  readonly done: Future<void>;
  readonly #n: number;
  constructor(loop: EventLoop, n: number) {
    this.done = loop.createFuture<void>();
    this.#n = n;
  }
  connectionMade(t: Transport): void {
    this.t = t;
    this.t0 = process.hrtime.bigint();
    t.write(PING_BUF);
  }
  dataReceived(d: Buffer): void {
    this.got += d.length;
    while (this.got >= PING) {
      this.got -= PING;
      this.samples.push(Number(process.hrtime.bigint() - this.t0) / 1000);
      if (this.samples.length >= this.#n) {
        this.t!.abort();
        if (!this.done.done()) this.done.setResult(undefined);
        return;
      }
      this.t0 = process.hrtime.bigint();
      this.t!.write(PING_BUF);
    }
  }
  connectionLost(exc: Error | null): void {
    if (!this.done.done()) this.done.setException(exc ?? new Error('connection lost early'));
  }
}

export async function tulipThroughput(port: number, certs: BenchCerts, total: number): Promise<number> {
  const loop = new EventLoop();
  try {
    return await loop.runUntilComplete(async () => {
      const c = new ThroughputClient(loop, total);
      await loop.createConnection(() => c, '127.0.0.1', port, { ssl: clientTls(certs) });
      await c.done;
      return c.mbps;
    });
  } finally {
    loop.close();
  }
}

export async function tulipLatency(port: number, certs: BenchCerts, n: number): Promise<number[]> {
  const loop = new EventLoop();
  try {
    return await loop.runUntilComplete(async () => {
      const c = new LatencyClient(loop, n);
      await loop.createConnection(() => c, '127.0.0.1', port, { ssl: clientTls(certs) });
      await c.done;
      return c.samples;
    });
  } finally {
    loop.close();
  }
}

/** Sequential full TLS 1.3 handshakes (connect, handshake, close) with node:tls, options passed per connect. */
export async function rawHandshakes(port: number, certs: BenchCerts, n: number): Promise<number> {
  const opts = { host: '127.0.0.1', port, ...clientTls(certs) };
  const t0 = now();
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const s = tls.connect(opts, () => {
        s.destroy();
        resolve();
      });
      s.on('error', reject);
    });
  }
  return n / (now() - t0);
}

/** The same through `loop.createConnection` (one SecureContext per options object, reused). */
export async function tulipHandshakes(port: number, certs: BenchCerts, n: number): Promise<number> {
  const loop = new EventLoop();
  const ssl = clientTls(certs);
  try {
    return await loop.runUntilComplete(async () => {
      const t0 = now();
      for (let i = 0; i < n; i++) {
        const [t] = await loop.createConnection(() => ({}), '127.0.0.1', port, { ssl });
        t.abort();
      }
      return n / (now() - t0);
    });
  } finally {
    loop.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Parent

function startServer(kind: Kind, certs: BenchCerts): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--role', 'server', '--kind', kind, '--certs', certs.dir], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('message', (m) => resolve({ child, port: (m as { port: number }).port }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

function throughput(kind: Kind, port: number, certs: BenchCerts, total: number): Promise<number> {
  return kind === 'raw' ? rawThroughput(port, certs, total) : tulipThroughput(port, certs, total);
}

function latency(kind: Kind, port: number, certs: BenchCerts, n: number): Promise<number[]> {
  return kind === 'raw' ? rawLatency(port, certs, n) : tulipLatency(port, certs, n);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
}

async function main(): Promise<void> {
  const flags = parseFlags();
  const reps = flags.quick ? 1 : 4;
  const total = flags.quick ? 16 * 1024 * 1024 : 256 * 1024 * 1024;
  const pings = flags.quick ? 500 : 20_000;
  const warmBytes = flags.quick ? 4 * 1024 * 1024 : 32 * 1024 * 1024;
  const warmPings = flags.quick ? 200 : 5_000;
  const certs = makeCerts();
  const mbps: Record<Kind, number[]> = { raw: [], tulip: [] };
  const p50: Record<Kind, number[]> = { raw: [], tulip: [] };
  const p99: Record<Kind, number[]> = { raw: [], tulip: [] };
  const hs: Record<Kind, number[]> = { raw: [], tulip: [] };
  const handshakes = flags.quick ? 20 : 200;
  const cases: BenchCase[] = [];
  const servers: Partial<Record<Kind, { child: ChildProcess; port: number }>> = {};
  try {
    // One server child per variant for the whole run, both warmed up first (JIT, TLS), so every measured rep
    // meets a warm server; then the reps alternate raw / tulipwire.
    for (const kind of ['raw', 'tulip'] as const) {
      progress(`transport: starting the ${kind} echo server`);
      const srv = await startServer(kind, certs);
      servers[kind] = srv;
      await throughput(kind, srv.port, certs, warmBytes);
      await latency(kind, srv.port, certs, warmPings);
    }
    for (let rep = 0; rep < reps; rep++) {
      // Alternate which variant goes first, so a drift of the box does not favour one of them.
      for (const kind of rep % 2 === 0 ? (['raw', 'tulip'] as const) : (['tulip', 'raw'] as const)) {
        progress(`transport ${kind} rep ${rep + 1}/${reps}`);
        const { port } = servers[kind]!;
        mbps[kind].push(await throughput(kind, port, certs, total));
        const s = summarise(await latency(kind, port, certs, pings));
        p50[kind].push(s.p50);
        p99[kind].push(s.p99);
        hs[kind].push(kind === 'raw' ? await rawHandshakes(port, certs, handshakes) : await tulipHandshakes(port, certs, handshakes));
      }
    }
    const tp = { raw: round(median(mbps.raw), 1), tulip: round(median(mbps.tulip), 1) };
    const l50 = { raw: round(median(p50.raw), 1), tulip: round(median(p50.tulip), 1) };
    const l99 = { raw: round(median(p99.raw), 1), tulip: round(median(p99.tulip), 1) };
    const goal = (text: string, op: '>=' | '<=', target: number, r: number | null): Record<string, unknown> =>
      ({ text, op, target, ratio: r, met: r === null ? null : op === '>=' ? r >= target : r <= target });
    const rt = ratio(tp.tulip, tp.raw);
    cases.push({
      case: 'tulipwire Protocol TLS echo, 16 KiB writes', unit: 'MB/s', value: tp.tulip,
      baseline: { name: 'raw node:tls echo, 16 KiB writes', value: tp.raw }, ratio: rt,
      extra: { runs: { raw: mbps.raw.map((x) => round(x, 1)), tulip: mbps.tulip.map((x) => round(x, 1)) }, totalBytes: total,
        goals: [goal('transport throughput >= 90% of raw node:tls', '>=', 0.9, rt)] },
    });
    const r50 = ratio(l50.tulip, l50.raw);
    cases.push({
      case: 'tulipwire Protocol TLS ping-pong 64 B, p50', unit: 'us', value: l50.tulip,
      baseline: { name: 'raw node:tls ping-pong 64 B, p50', value: l50.raw }, ratio: r50,
      extra: { runs: { raw: p50.raw, tulip: p50.tulip }, roundTrips: pings,
        goals: [goal('transport p50 latency <= 110% of raw node:tls', '<=', 1.1, r50)] },
    });
    const r99 = ratio(l99.tulip, l99.raw);
    cases.push({
      case: 'tulipwire Protocol TLS ping-pong 64 B, p99', unit: 'us', value: l99.tulip,
      baseline: { name: 'raw node:tls ping-pong 64 B, p99', value: l99.raw }, ratio: r99,
      extra: { runs: { raw: p99.raw, tulip: p99.tulip }, roundTrips: pings,
        goals: [goal('transport p99 latency <= 110% of raw node:tls', '<=', 1.1, r99)] },
    });
    const h = { raw: round(median(hs.raw), 0), tulip: round(median(hs.tulip), 0) };
    cases.push({
      case: 'tulipwire createConnection TLS 1.3 handshakes, sequential', unit: 'handshakes/s', value: h.tulip,
      baseline: { name: 'raw tls.connect, options per connect', value: h.raw }, ratio: ratio(h.tulip, h.raw),
      extra: { runs: { raw: hs.raw.map((x) => round(x, 0)), tulip: hs.tulip.map((x) => round(x, 0)) }, handshakes,
        note: 'tulipwire reuses one SecureContext per options object' },
    });
  } catch (err) {
    cases.push({ case: 'tulipwire Protocol TLS echo', unit: 'MB/s', value: null, extra: { error: errorText(err) } });
  } finally {
    for (const srv of Object.values(servers)) {
      srv.child.removeAllListeners('exit');
      srv.child.kill();
    }
    removeCerts(certs);
  }
  emitReport({ name: 'transport', cases }, flags);
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argValue(argv, 'role', '') === 'server') {
    await runServer(argValue(argv, 'kind', 'raw') as Kind, loadCerts(argValue(argv, 'certs', '')));
  } else {
    await main();
  }
}
