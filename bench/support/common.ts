/**
 * Shared plumbing of the bench scripts: the agreed JSON report shape, command-line flags, progress lines,
 * throw-away mTLS certificates (made with the `openssl` CLI, so the bench needs nothing from src/pki),
 * the game message, and percentiles.
 *
 * Bench code may read the monotonic clock directly ({@link now}); the "no ambient time" rule binds `src/`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';

/** The repository root (bench/support/../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** One measured figure of a bench report (the shape every `bench/<x>.ts --json` prints; see bench/README.md). */
export interface BenchCase {
  /** What was measured, e.g. `tulipwire signed 100 B x1 conn`. */
  case: string;
  /** Unit of `value`, e.g. `msg/s`, `us`, `MB/s`, `handshakes/s`, `KB`, `callbacks/s`. */
  unit: string;
  /** The figure; `null` when the case failed (then `extra.error` says why). */
  value: number | null;
  /** What this figure is compared with, measured in the same run. */
  baseline?: { name: string; value: number | null };
  /** `value / baseline.value` for rates; for latencies `baseline.value / value` is NOT used: ratio is always value/baseline. */
  ratio?: number | null;
  /** Anything else: CPU µs per message, MB/s, sample counts, `error`, `goal`. */
  extra?: Record<string, unknown>;
}

/** A whole bench report: what `bench/<x>.ts --json` prints on stdout, and nothing else. */
export interface BenchReport {
  /** The script's name, e.g. `signed`. */
  name: string;
  /** The figures, in the order measured. */
  cases: BenchCase[];
}

/** Command-line flags every bench script understands. */
export interface BenchFlags {
  /** `--json`: print only the JSON report on stdout. */
  json: boolean;
  /** `--quick`: a tiny run that only checks the plumbing (used by the smoke tests). */
  quick: boolean;
  /** `--only <substring>`: run only the scenarios whose label contains it. */
  only: string | null;
  /** `--duration <s>`: measurement window per throughput case, seconds. */
  duration: number | null;
}

/** Parses the common flags from `argv` (default `process.argv.slice(2)`). */
export function parseFlags(argv: readonly string[] = process.argv.slice(2)): BenchFlags {
  const flags: BenchFlags = { json: false, quick: false, only: null, duration: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') flags.json = true;
    else if (a === '--quick') flags.quick = true;
    else if (a === '--only') flags.only = argv[++i] ?? null;
    else if (a === '--duration') flags.duration = Number(argv[++i]);
  }
  return flags;
}

/** Reads `--name value` from argv (worker processes), or `dflt`. */
export function argValue(argv: readonly string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : dflt;
}

/** Monotonic seconds (process.hrtime), for the bench harness only. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

let majorGcSeen = 0;
let majorGcObserver: PerformanceObserver | null = null;

/**
 * Major (mark-compact) garbage collections of this process so far, counted from the first call on (a
 * PerformanceObserver of `gc` entries, started by that call; entries arrive a tick late). Receivers report the
 * count over their window as `majorGcs`: more than a few a second is one of V8's mark-compact storms
 * (docs/performance.md).
 */
export function majorGcCount(): number {
  if (majorGcObserver === null) {
    majorGcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) majorGcSeen++;
      }
    });
    majorGcObserver.observe({ entryTypes: ['gc'] });
  }
  return majorGcSeen;
}

/** CPU time used by this process so far, microseconds (user + system). */
export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * Reports progress: as an `@progress <text>` line on stderr when run by the suite (env `TW_BENCH_PROGRESS=1`),
 * as a rewritten status line when stderr is a terminal, otherwise not at all.
 */
export function progress(text: string): void {
  if (process.env['TW_BENCH_PROGRESS'] === '1') process.stderr.write(`@progress ${text}\n`);
  else if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K… ${text}`);
}

/** Clears a terminal progress line left by {@link progress}. */
export function progressDone(): void {
  if (process.env['TW_BENCH_PROGRESS'] !== '1' && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

/** Paths and PEM texts of a throw-away CA, one server and one client certificate (P-256, 1 day). */
export interface BenchCerts {
  /** Directory that holds ca.pem, server.key/.pem, client.key/.pem. */
  dir: string;
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Makes a private CA and a server (SAN localhost, 127.0.0.1) and client certificate with `openssl` in a new temp
 * directory. Remove it with {@link removeCerts}.
 */
export function makeCerts(): BenchCerts {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tulipwire bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  writeFileSync(join(dir, 'server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  writeFileSync(join(dir, 'client.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:bench-client\n');
  for (const who of ['server', 'client']) {
    openssl(['req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=bench-${who}`], dir);
    openssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
      '-extfile', `${who}.ext`, '-out', `${who}.pem`], dir);
  }
  return loadCerts(dir);
}

/** Loads certificates made by {@link makeCerts} (worker processes get the directory on their command line). */
export function loadCerts(dir: string): BenchCerts {
  const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return { dir, ca: r('ca.pem'), serverKey: r('server.key'), serverCert: r('server.pem'), clientKey: r('client.key'), clientCert: r('client.pem') };
}

/** Deletes a certificate directory. */
export function removeCerts(certs: BenchCerts): void {
  rmSync(certs.dir, { recursive: true, force: true });
}

/** The game update every signed case sends (bench/README.md); `seq` is bumped per message by the senders. */
export const GAME = { t: 'move', id: 42, x: 1.5, y: -3.25, seq: 123456, ts: 1700000000000 } as const;

/** The message sizes of the throughput cases: label → bytes of padding added to the game message (`pad` field). */
export const SIZES: Record<string, number> = { '100 B': 0, '1 KiB': 1024 - 64, '16 KiB': 16384 - 64 };

/** The game message with `padBytes` of zero bytes in a `pad` field (none when 0). */
export function gameMessage(padBytes: number, seq: number = GAME.seq): Record<string, unknown> {
  const m: Record<string, unknown> = { ...GAME, seq };
  if (padBytes > 0) m['pad'] = Buffer.alloc(padBytes, 7);
  return m;
}

/** The `p`-th percentile (0..100) of an ascending array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[k]!;
}

/** Latency summary of round-trip samples in microseconds. */
export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Sorts samples (µs) and summarises them. */
export function summarise(samples: number[]): LatencySummary {
  const s = Float64Array.from(samples).sort();
  return { n: s.length, p50: round(percentile(s, 50), 1), p99: round(percentile(s, 99), 1), max: round(s.length ? s[s.length - 1]! : NaN, 1) };
}

/** Rounds to `digits` decimals. */
export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** `a / b` rounded to 3 decimals, or null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return round(a / b, 3);
}

/** Formats a figure with k/M suffixes for tables. */
export function fmtValue(v: number | null, unit: string): string {
  if (v == null || !Number.isFinite(v)) return '—';
  if (unit === 'us' || unit === 'µs') return v >= 100 ? v.toFixed(0) : v.toFixed(1);
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)} k`;
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return v.toFixed(2);
}

/**
 * Renders rows as a plain-text table with a header. `align` gives each column's alignment (`l` or `r`); by default
 * the first column is left-aligned and the others right-aligned. Trailing spaces are trimmed.
 */
export function renderTable(header: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const al = (i: number): 'l' | 'r' => align?.[i] ?? (i === 0 ? 'l' : 'r');
  const line = (cells: string[]): string =>
    cells.map((c, i) => (al(i) === 'l' ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Renders a report's cases as a table (what a bench script prints without `--json`). */
export function renderReport(report: BenchReport): string {
  const rows = report.cases.map((c) => [
    c.case,
    fmtValue(c.value, c.unit),
    c.unit,
    c.baseline ? `${c.baseline.name} (${fmtValue(c.baseline.value, c.unit)})` : '',
    c.ratio == null ? '' : `${c.ratio.toFixed(2)}x`,
    c.extra && typeof c.extra['error'] === 'string' ? `ERROR ${String(c.extra['error']).slice(0, 60)}` : cpuNote(c),
  ]);
  return renderTable(['case', 'value', 'unit', 'baseline (same run)', 'ratio', 'notes'], rows, ['l', 'r', 'l', 'l', 'r', 'l']);
}

function cpuNote(c: BenchCase): string {
  const e = c.extra ?? {};
  const parts: string[] = [];
  if (typeof e['cpuSendUs'] === 'number' && typeof e['cpuRecvUs'] === 'number') {
    parts.push(`cpu µs/msg ${(e['cpuSendUs'] as number).toFixed(2)} send / ${(e['cpuRecvUs'] as number).toFixed(2)} recv`);
  }
  if (typeof e['MBps'] === 'number') parts.push(`${(e['MBps'] as number).toFixed(0)} MB/s`);
  if (typeof e['note'] === 'string') parts.push(e['note'] as string);
  return parts.join(', ');
}

/** Prints the report as JSON (with `--json`) or as a table, on stdout. */
export function emitReport(report: BenchReport, flags: BenchFlags): void {
  progressDone();
  if (flags.json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(`${report.name}\n${renderReport(report)}\n`);
}

/** The error message of anything thrown, one line. */
export function errorText(err: unknown): string {
  const s = err instanceof Error ? err.message : String(err);
  return s.split('\n').filter(Boolean).slice(0, 3).join(' | ');
}

/** True when the module with this `import.meta.url` is the script being run (not imported). */
export function isMain(metaUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && metaUrl === pathToFileURL(resolve(script)).href;
}
