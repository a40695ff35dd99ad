/**
 * Runs one throughput or round-trip case as two processes (receiver/server and sender/client), so both cores
 * work, and collects what they report.
 *
 * Every worker speaks the same line protocol on stdout, one JSON object a line:
 * - a receiver or echo server prints `{"event":"listening","port":N}` once it listens on 127.0.0.1;
 * - a receiver counts the messages that arrive in a window of `--duration` seconds that starts `--warmup` seconds
 *   after the first message, prints `{"event":"result","msgs":M,"seconds":S,"bytes":B,"cpuUs":C}` and closes;
 * - a sender connects `--conns` connections, sends until the receiver closes them, and prints
 *   `{"event":"result","sent":M,"cpuUs":C}`;
 * - a ping client makes sequential round trips (`--count`, at most `--duration` seconds after `--warmup` ones)
 *   and prints `{"event":"result","n":N,"p50":µs,"p99":µs,"max":µs}`.
 * Anything on stderr is kept for the error message.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Server as NetServer } from 'node:net';
import { REPO_ROOT, cpuMicros, majorGcCount, now } from './common.js';

/** The implementations a case can run. */
export type Impl = 'raw' | 'tulipwire' | 'tw-wire' | 'naive' | 'asyncio' | 'uvloop' | 'grpc';

let pythonPath: string | null = null;

/** Debian's interpreter (`command -p python3`), never a pyenv shim. */
export function systemPython(): string {
  if (pythonPath === null) {
    pythonPath = execFileSync('sh', ['-c', 'command -p -v python3'], { encoding: 'utf8' }).trim() || 'python3';
  }
  return pythonPath;
}

/**
 * The V8 flags every Node worker starts with, the same for raw `node:tls`, tulipwire, its wire layer alone, naive
 * Node and grpc-js: `--initial-old-space-size=128`, the setting docs/performance.md recommends for a Node 20 process
 * that receives large messages fast. Without it some runs of a tulipwire receiver fall into back-to-back
 * mark-compacts (V8 counts the ~32 MB that Node's TLS read buffers swing between scavenges against a small
 * old-generation limit); see bench/README.md's History. `TW_BENCH_NODE_FLAGS` replaces the list (split on spaces;
 * empty: Node's defaults).
 */
export const NODE_WORKER_FLAGS: readonly string[] = (process.env.TW_BENCH_NODE_FLAGS ?? '--initial-old-space-size=128')
  .split(' ')
  .filter((f) => f !== '');

/** The command line that starts a worker of `impl`. */
export function workerCommand(impl: Impl): [string, string[]] {
  const tsx = (file: string): [string, string[]] =>
    [process.execPath, [...NODE_WORKER_FLAGS, '--import', 'tsx', join(REPO_ROOT, file)]];
  switch (impl) {
    case 'raw':
      return tsx('bench/raw.ts');
    case 'tulipwire':
      return tsx('bench/signed-worker.ts');
    case 'tw-wire':
      return tsx('bench/signed-wire-worker.ts');
    case 'naive':
      return tsx('bench/peers/naive.ts');
    case 'grpc':
      return tsx('bench/peers/grpc.ts');
    case 'asyncio':
    case 'uvloop':
      return [systemPython(), [join(REPO_ROOT, 'bench/peers/asyncio_signed.py'), '--loop', impl]];
  }
}

/** A running worker process and the JSON lines it printed. */
export class Worker {
  readonly child: ChildProcess;
  readonly label: string;
  #events: Record<string, unknown>[] = [];
  #waiters: (() => void)[] = [];
  #stderr = '';
  #exited: { code: number | null; signal: string | null } | null = null;

  constructor(impl: Impl, args: string[], label: string) {
    const [cmd, base] = workerCommand(impl);
    this.label = label;
    this.child = spawn(cmd, [...base, ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', TW_BENCH_PROGRESS: '0' },
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let ev: unknown;
      try {
        ev = JSON.parse(line);
      } catch {
        this.#stderr += `[stdout] ${line}\n`;
        return;
      }
      if (ev && typeof ev === 'object') this.#events.push(ev as Record<string, unknown>);
      this.#wake();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      if (this.#stderr.length < 20_000) this.#stderr += d.toString();
    });
    this.child.on('exit', (code, signal) => {
      this.#exited = { code, signal };
      this.#wake();
    });
    this.child.on('error', (err) => {
      this.#stderr += String(err);
      this.#exited = { code: -1, signal: null };
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Resolves with the first event named `name`; rejects if the process exits first or `timeout` s pass. */
  async waitEvent(name: string, timeout: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const ev = this.#events.find((e) => e['event'] === name);
      if (ev) return ev;
      if (this.#exited) {
        throw new Error(`${this.label} exited (${this.#exited.code ?? this.#exited.signal}) before "${name}": ${this.stderrTail()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: no "${name}" within ${timeout} s: ${this.stderrTail()}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** The last lines the worker wrote on stderr. */
  stderrTail(): string {
    const lines = this.#stderr.trim().split('\n').map((l) => l.trim()).filter(Boolean);
    // A Node stack trace ends with noise: show its "XxxError: message" line (and any "code:" line) first.
    const key = lines.filter((l) => /^(\w*Error|\w+: |error:|Traceback)/.test(l) || /^code: /.test(l)).slice(0, 3);
    return (key.length ? key : lines.slice(-3)).join(' | ') || '(no stderr)';
  }

  /** Kills the process (SIGKILL after 2 s) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    while (!this.#exited) await new Promise<void>((res) => this.#waiters.push(res));
    clearTimeout(t);
  }
}

/** What a throughput case measured. */
export interface ThroughputResult {
  /** Receiver-side messages per second over the measurement window. */
  msgsPerSec: number;
  /** Receiver-side payload MB/s (frame bytes, 10^6). */
  MBps: number;
  /** CPU µs per message, sender and receiver processes. */
  cpuSendUs: number;
  cpuRecvUs: number;
  /** Messages counted in the window, and the window's length in seconds. */
  msgs: number;
  seconds: number;
  /** What the receiver reported besides the counts (e.g. `engine`, `rejected`, `firstReject`). */
  info: Record<string, unknown>;
}

/** A throughput case: `impl` over `conns` connections with messages padded by `pad` bytes. */
export interface ThroughputSpec {
  impl: Impl;
  certsDir: string;
  conns: number;
  pad: number;
  warmup: number;
  duration: number;
  /** Extra worker arguments (both sides). */
  args?: string[];
}

/** Runs one throughput case in two processes and returns the receiver's rate and both sides' CPU per message. */
export async function runThroughput(spec: ThroughputSpec): Promise<ThroughputResult> {
  const common = ['--certs', spec.certsDir, '--conns', String(spec.conns), '--pad', String(spec.pad), ...(spec.args ?? [])];
  const recv = new Worker(spec.impl, ['--role', 'recv', '--warmup', String(spec.warmup), '--duration', String(spec.duration), ...common], `${spec.impl} receiver`);
  let send: Worker | null = null;
  try {
    const listening = await recv.waitEvent('listening', 30);
    send = new Worker(spec.impl, ['--role', 'send', '--port', String(listening['port']), ...common], `${spec.impl} sender`);
    const budget = 40 + spec.warmup + spec.duration + spec.conns * 0.05;
    const r = await recv.waitEvent('result', budget);
    const s = await send.waitEvent('result', 15);
    const msgs = Number(r['msgs']);
    const seconds = Number(r['seconds']);
    const sent = Number(s['sent']);
    if (!(msgs > 0) || !(seconds > 0)) throw new Error(`${spec.impl}: no messages counted (${JSON.stringify(r)})`);
    return {
      msgsPerSec: msgs / seconds,
      MBps: Number(r['bytes']) / seconds / 1e6,
      cpuRecvUs: Number(r['cpuUs']) / msgs,
      cpuSendUs: sent > 0 ? Number(s['cpuUs']) / sent : NaN,
      msgs,
      seconds,
      info: Object.fromEntries(Object.entries(r).filter(([k]) => !['event', 'msgs', 'bytes', 'seconds', 'cpuUs'].includes(k))),
    };
  } finally {
    await Promise.all([recv.stop(), send?.stop()]);
  }
}

/** A round-trip case: sequential request/response over one connection. */
export interface PingSpec {
  impl: Impl;
  certsDir: string;
  pad: number;
  count: number;
  warmup: number;
  duration: number;
  args?: string[];
}

/** What a round-trip case measured, µs. */
export interface PingResult {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Runs one round-trip case (echo server + ping client processes). */
export async function runPing(spec: PingSpec): Promise<PingResult> {
  const common = ['--certs', spec.certsDir, '--pad', String(spec.pad), ...(spec.args ?? [])];
  const server = new Worker(spec.impl, ['--role', 'echo-server', ...common], `${spec.impl} echo server`);
  let client: Worker | null = null;
  try {
    const listening = await server.waitEvent('listening', 30);
    client = new Worker(spec.impl, ['--role', 'ping', '--port', String(listening['port']), '--count', String(spec.count),
      '--warmup', String(spec.warmup), '--duration', String(spec.duration), ...common], `${spec.impl} ping client`);
    const r = await client.waitEvent('result', 40 + spec.duration);
    return { n: Number(r['n']), p50: Number(r['p50']), p99: Number(r['p99']), max: Number(r['max']) };
  } finally {
    await Promise.all([server.stop(), client?.stop()]);
  }
}

/**
 * Makes a worker process exit when the process that started it is gone (e.g. the suite killed a bench script
 * after its time budget), so no echo server or sender is left behind. Checks every 0.5 s; never keeps the
 * process alive by itself.
 */
export function exitWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(3);
  }, 500).unref();
}

/** Prints one JSON event line on stdout (worker side of the protocol). */
export function emitEvent(ev: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

/**
 * A receiver's end of the window: prints its `result` line (messages, bytes, seconds, CPU µs and major GCs since
 * `mark`, plus `extra`), destroys its sockets, closes the server and exits shortly after, so the line is flushed.
 */
export function finishReceiver(
  server: { close(): unknown }, sockets: Iterable<{ destroy(): unknown }>,
  mark: readonly [t0: number, msgs0: number, bytes0: number, cpu0: number, gc0: number], msgs: number, bytes: number,
  extra: Record<string, unknown> = {},
): void {
  const [t0, m0, b0, c0, g0] = mark;
  emitEvent({ event: 'result', msgs: msgs - m0, bytes: bytes - b0, seconds: now() - t0, cpuUs: cpuMicros() - c0,
    majorGcs: majorGcCount() - g0, ...extra });
  for (const s of sockets) s.destroy();
  server.close();
  setTimeout(() => process.exit(0), 50);
}

/**
 * The negotiated TLS version and cipher of a socket, e.g. `TLSv1.3 TLS_AES_256_GCM_SHA384` (what every receiver
 * reports as `tls`, so the suite can see that all implementations of a row ran the same TLS).
 */
export function tlsOf(sock: { getProtocol(): string | null; getCipher(): { standardName?: string; name: string } }): string {
  const c = sock.getCipher();
  return `${sock.getProtocol() ?? '?'} ${c.standardName ?? c.name}`;
}

/** Listens on 127.0.0.1, port 0, and prints the `listening` line with the port. */
export function listenAndAnnounce(server: NetServer): void {
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    emitEvent({ event: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
  });
}
