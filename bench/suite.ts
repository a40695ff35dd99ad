/**
 * `npm run bench`: runs every per-area bench as a child process (`bench/<x>.ts --json`), in order, with a progress
 * line on a terminal; prints ONE table (messages/s or µs, the baseline measured in the same run, the ratio) and the
 * goals, and writes the same figures with the machine they ran on to `bench/results/latest.json`.
 *
 * Flags: `--quick` (tiny runs that only check the plumbing; written to bench/results/quick.json unless `--out`),
 * `--only <name>[,<name>]` (run only these benches), `--out <path>`, `--duration <s>` (passed on).
 * A bench that is missing, crashes or prints no report gets one row with its error; the others still run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { argValue, type BenchCase, type BenchReport, errorText, fmtValue, isMain, REPO_ROOT, renderTable } from './support/common.js';
import type { CheckedGoal } from './support/compare.js';
import { NODE_WORKER_FLAGS, systemPython } from './support/workers.js';

/** One bench script of the suite. */
export interface SuiteEntry {
  /** Short name (the report's `name`). */
  name: string;
  /** Path from the repository root. */
  file: string;
  /** Seconds the script may take (full run); a quick run gets a third. */
  budget: number;
}

/** The suite, in the order it runs. */
export const SUITE: SuiteEntry[] = [
  // The loop bench takes ~100 s on this 2-core box (five cases, interleaved reps, the asyncio peer in each): room to spare.
  { name: 'loop', file: 'bench/loop.ts', budget: 240 },
  { name: 'wire', file: 'bench/wire.ts', budget: 120 },
  { name: 'transport', file: 'bench/transport.ts', budget: 150 },
  { name: 'pki', file: 'bench/pki.ts', budget: 120 },
  { name: 'session', file: 'bench/session.ts', budget: 150 },
  { name: 'signed', file: 'bench/signed.ts', budget: 480 },
];

/** What running one entry gave: its report, or the error that stopped it. */
export interface EntryOutcome {
  entry: SuiteEntry;
  report: BenchReport | null;
  error: string | null;
  seconds: number;
}

/** Status line on a terminal (rewritten in place), plain lines otherwise. */
export class Status {
  #tty = process.stderr.isTTY === true;
  #text = '';
  #t0 = Date.now();
  #timer: NodeJS.Timeout | null = null;
  /** Shows `text` as the current step (and restarts its clock). */
  start(text: string): void {
    this.#text = text;
    this.#t0 = Date.now();
    if (this.#tty) {
      this.#draw();
      this.#timer ??= setInterval(() => this.#draw(), 250);
    } else process.stderr.write(`bench: ${text}\n`);
  }
  /** Shows which case of the current step runs (from a bench's `@progress` lines). */
  update(detail: string): void {
    if (this.#tty) {
      this.#text = `${this.#text.split(' — ')[0]} — ${detail}`;
      this.#draw();
    }
  }
  #draw(): void {
    const s = ((Date.now() - this.#t0) / 1000).toFixed(0);
    const cols = process.stderr.columns || 100;
    process.stderr.write(`\r\x1b[K${`… ${this.#text} (${s} s)`.slice(0, cols - 1)}`);
  }
  /** Clears the status line. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#tty) process.stderr.write('\r\x1b[K');
  }
}

/** Runs one bench script with `--json` (and `--quick`), parsing its report from stdout. */
export function runEntry(entry: SuiteEntry, args: string[], status: Status | null, budget: number): Promise<EntryOutcome> {
  const t0 = Date.now();
  const done = (report: BenchReport | null, error: string | null): EntryOutcome => ({ entry, report, error, seconds: (Date.now() - t0) / 1000 });
  if (!existsSync(join(REPO_ROOT, entry.file))) return Promise.resolve(done(null, `${entry.file} is missing`));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, entry.file), '--json', ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TW_BENCH_PROGRESS: '1' },
    });
    let stdout = '';
    const stderr: string[] = [];
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (line.startsWith('@progress ')) status?.update(line.slice(10));
      else if (stderr.length < 200) stderr.push(line);
    });
    const timer = setTimeout(() => {
      stderr.push(`killed after ${budget} s`);
      child.kill('SIGKILL');
    }, budget * 1000);
    child.on('error', (err) => stderr.push(String(err)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const report = parseReport(stdout);
      if (report) resolve(done(report, code === 0 ? null : `exited ${code ?? signal} after its report`));
      else {
        const why = stderr.filter((l) => /error|Error|killed|missing|Cannot/.test(l)).slice(0, 3);
        resolve(done(null, `exited ${code ?? signal} without a report: ${errorText((why.length ? why : stderr.slice(-3)).join(' | ') || '(no output)')}`));
      }
    });
  });
}

/** The last stdout line that is a `{name, cases}` JSON object, or null. */
export function parseReport(stdout: string): BenchReport | null {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object' && Array.isArray((v as BenchReport).cases) && typeof (v as BenchReport).name === 'string') return v as BenchReport;
    } catch {
      /* not the report line */
    }
  }
  return null;
}

/**
 * The goals of PERF-NOTES' goals table, which the goals table always shows for a bench that ran: if the bench
 * failed or printed no such goal, the goal is listed as not measured (`met: null`, the reason in `fault`) instead of
 * silently missing.
 */
export const REQUIRED_GOALS: readonly { bench: string; target: number; match: RegExp; text: string }[] = [
  { bench: 'signed', target: 5, match: /100 B x1.*5x Python asyncio/, text: 'signed 100 B x1: ≥ 5x Python asyncio' },
  { bench: 'loop', target: 8, match: /call_?soon/i, text: 'callSoon chain ≥ 8x asyncio' },
  { bench: 'loop', target: 5, match: /future/i, text: 'Future create+resolve+await ≥ 5x asyncio' },
];

/**
 * Goals of the suite: those the benches attach (`extra.goals`), plus the loop goals (bench/README.md) found by
 * name, plus each {@link REQUIRED_GOALS} entry of a bench that ran but did not report it.
 */
export function collectGoals(outcomes: EntryOutcome[]): (CheckedGoal & { bench: string; case: string })[] {
  const goals: (CheckedGoal & { bench: string; case: string })[] = [];
  for (const o of outcomes) {
    for (const c of o.report?.cases ?? []) {
      const own = c.extra?.['goals'];
      if (Array.isArray(own)) {
        for (const g of own as CheckedGoal[]) goals.push({ ...g, bench: o.entry.name, case: c.case });
        continue;
      }
      // The loop bench's asyncio comparisons: callSoon chain ≥ 8x, Future create+resolve+await ≥ 5x (bench/README.md).
      if (o.entry.name === 'loop' && c.baseline && /asyncio/i.test(c.baseline.name) && !/uvloop/i.test(c.baseline.name)) {
        const target = /call_?soon/i.test(c.case) ? 8 : /future/i.test(c.case) ? 5 : null;
        if (target !== null) {
          const r = c.ratio ?? null;
          goals.push({ op: '>=', target, text: `${c.case}: ≥ ${target}x asyncio`, ratio: r, met: r == null ? null : r >= target, bench: o.entry.name, case: c.case });
        }
      }
    }
  }
  for (const req of REQUIRED_GOALS) {
    const o = outcomes.find((x) => x.entry.name === req.bench);
    if (o === undefined) continue;
    if (goals.some((g) => g.bench === req.bench && g.target === req.target && req.match.test(g.text))) continue;
    goals.push({ op: '>=', target: req.target, text: req.text, ratio: null, met: null,
      fault: `not measured: ${o.error ?? 'the bench reported no such row'}`, bench: req.bench, case: '' });
  }
  return goals;
}

/** The machine the figures come from. */
export function machineInfo(): Record<string, unknown> {
  let python: string | null = null;
  try {
    const py = systemPython();
    python = execFileSync(py, ['-c',
      'import sys, ssl\ntry:\n import msgpack, uvloop\n x = " msgpack %s (%s) uvloop %s" % (".".join(map(str, msgpack.version)), msgpack.Packer.__module__, uvloop.__version__)\nexcept Exception as e:\n x = " (no msgpack/uvloop: %s)" % e\nprint(sys.executable + " " + sys.version.split()[0] + x + ", " + ssl.OPENSSL_VERSION)'],
      { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    /* no python */
  }
  let grpcJs: string | null = null;
  try {
    grpcJs = (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* not installed */
  }
  let shaNi: boolean | null = null;
  try {
    // SHA extensions decide the HMAC cost of every signed row (PERF-NOTES: the reference machines have them).
    shaNi = /\bsha_ni\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    /* not Linux */
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    shaNi,
    cores: cpus().length,
    memoryGB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    openssl: process.versions.openssl,
    nodeWorkerFlags: NODE_WORKER_FLAGS.join(' '),
    python,
    grpcJs,
  };
}

function caseRow(bench: string, c: BenchCase): string[] {
  const notes: string[] = [];
  const e = c.extra ?? {};
  if (typeof e['error'] === 'string') notes.push(`ERROR ${String(e['error']).slice(0, 90)}`);
  if (typeof e['cpuSendUs'] === 'number') notes.push(`cpu µs/msg ${(e['cpuSendUs'] as number).toFixed(2)}/${(e['cpuRecvUs'] as number).toFixed(2)}`);
  if (typeof e['capacityRatio'] === 'number') notes.push(`CPU-cost ratio ${(e['capacityRatio'] as number).toFixed(2)}x`);
  if (typeof e['engine'] === 'string') notes.push(`MAC ${e['engine'] as string}`);
  if (Array.isArray(e['majorGcsRuns'])) notes.push(`receiver major GCs ${(e['majorGcsRuns'] as unknown[]).map(String).join('/')}`);
  if (typeof e['note'] === 'string') notes.push(e['note'] as string);
  return [
    bench,
    c.case,
    fmtValue(c.value, c.unit),
    c.unit,
    c.baseline ? `${c.baseline.name} = ${fmtValue(c.baseline.value, c.unit)}` : '',
    c.ratio == null ? '' : `${c.ratio.toFixed(2)}x`,
    notes.join('; '),
  ];
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const only = argValue(argv, 'only', '').split(',').filter(Boolean);
  const out = argValue(argv, 'out', join(REPO_ROOT, 'bench/results', quick ? 'quick.json' : 'latest.json'));
  const passOn = [...(quick ? ['--quick'] : []), ...(argv.includes('--duration') ? ['--duration', argValue(argv, 'duration', '1.5')] : [])];
  const entries = SUITE.filter((e) => only.length === 0 || only.includes(e.name));
  const status = new Status();
  const t0 = Date.now();
  const outcomes: EntryOutcome[] = [];
  for (const [i, entry] of entries.entries()) {
    status.start(`[${i + 1}/${entries.length}] ${entry.name}`);
    outcomes.push(await runEntry(entry, passOn, status, quick ? Math.ceil(entry.budget / 3) + 30 : entry.budget));
  }
  status.stop();

  const rows: string[][] = [];
  for (const o of outcomes) {
    for (const c of o.report?.cases ?? []) rows.push(caseRow(o.entry.name, c));
    if (o.error) rows.push([o.entry.name, '(bench failed)', '—', '', '', '', `ERROR ${o.error.slice(0, 140)}`]);
  }
  const machine = machineInfo();
  const goals = collectGoals(outcomes);
  const lines = [
    `tulipwire bench — ${new Date().toISOString()} — ${machine['cpu']} (${machine['cores']} cores), Node ${machine['node']}, OpenSSL ${machine['openssl']}, workers' node flags: ${machine['nodeWorkerFlags'] || '(none)'}${quick ? ' — QUICK (plumbing check, figures meaningless)' : ''}`,
    '',
    renderTable(['bench', 'case', 'value', 'unit', 'baseline (same run)', 'ratio', 'notes'], rows, ['l', 'l', 'r', 'l', 'l', 'r', 'l']),
  ];
  if (goals.length) {
    lines.push('', 'goals (ratios from this run)', renderTable(['goal', 'ratio', 'target', 'met'], goals.map((g) => [
      g.text, g.ratio == null ? '—' : `${g.ratio.toFixed(2)}x`, `${g.op} ${g.target}x`,
      g.met == null ? (g.fault ? `n/a (${g.fault.slice(0, 80)})` : 'n/a') : g.met ? 'yes' : g.fault ? `NO (${g.fault.slice(0, 80)})` : 'NO',
    ])));
  }
  process.stdout.write(lines.join('\n') + '\n');

  const result = {
    date: new Date().toISOString(),
    quick,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    machine,
    benches: outcomes.map((o) => ({ name: o.entry.name, file: o.entry.file, seconds: Math.round(o.seconds * 10) / 10, error: o.error, report: o.report })),
    goals,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`\nwrote ${out} (${result.seconds} s)\n`);
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`suite: ${errorText(err)}\n`);
    process.exit(1);
  });
}
