/**
 * bench/loop.ts: the event loop's hot paths beside their native baselines AND beside Python asyncio running the
 * same cases (bench/asyncio_loop.py, Debian's `command -p python3`, default loop), all in one run.
 *
 * | case | tulipwire | native baseline | asyncio |
 * |---|---|---|---|
 * | callSoon chain | each callback `loop.callSoon`s the next | `setImmediate` chain | `call_soon` chain |
 * | Future create+resolve+await | in a task: `f = loop.createFuture(); loop.callSoon(setResult); await f` | `await new Promise(r => setImmediate(r))` | same as tulipwire |
 * | Task create+await | in a task: `await loop.createTask(async () => i)` | `await (async () => i)()` | `await loop.create_task(coro())` |
 * | sleep(0) round trip | in a task: `await sleep(0)` | `await new Promise(r => setImmediate(r))` | `await asyncio.sleep(0)` |
 *
 * Each figure is the median of 5 trials (1 with `--quick`); the native and tulipwire trials alternate. The Python
 * process and the Node cases run in 3 alternating rounds (Python, Node, Python, Node, ...; 1 with `--quick`) and each
 * rate is the median over the rounds, so a drift of the box between the two phases does not tilt the ratios. Rates are
 * operations per CPU second of the process (`process.cpuUsage()` here, `time.process_time()` in Python): on a
 * shared, loaded 2-core box wall-clock rates swing by 2-3x between consecutive runs, CPU time far less; the
 * wall-clock rates are kept in `extra`. Nothing enables AsyncLocalStorage before the last row, so the native
 * baselines of the goal rows run at full speed (with it on, native awaits ran 2-3x slower on Node 20). The last
 * row, "Future create+resolve+await, tracking on", turns foreign-await tracking on (irreversible for the process,
 * which is why it runs last): the cost of `run()`'s default (docs/event-loop-internals.md, "Foreign awaits"); its
 * native baseline then runs with Node's promise hooks on too.
 *
 * `npx tsx bench/loop.ts` prints a table of ratios (vs asyncio, vs native); `--json` prints the report of
 * bench/README.md on stdout (the table then goes to stderr).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { EventLoop, enableForeignAwaitTracking, sleep } from '../src/index.js';
import type { BenchCase, BenchReport } from './support/common.js';
import { REPO_ROOT, cpuMicros, errorText, now, parseFlags, progress, progressDone, ratio, renderTable, round } from './support/common.js';
import { systemPython } from './support/workers.js';

const flags = parseFlags();
const TRIALS = flags.quick ? 1 : 5;
/** Alternating rounds of the Python process and the Node cases. */
const ROUNDS = flags.quick ? 1 : 3;
const SCALE = flags.quick ? 0.02 : 1;

/** Runs `n` operations; the harness times it. */
type Runner = (n: number) => Promise<void>;

/** One timed run: operations per CPU second and per wall second. */
async function timed(run: Runner, n: number): Promise<{ cpu: number; wall: number }> {
  const c0 = cpuMicros();
  const t0 = now();
  await run(n);
  const wall = now() - t0;
  const cpu = (cpuMicros() - c0) / 1e6;
  return { cpu: n / cpu, wall: n / wall };
}

// ---- tulipwire ---------------------------------------------------------------------------------------------

const tulipCallSoon: Runner = async (n) => {
  const loop = new EventLoop();
  let i = 0;
  const cb = (): void => {
    if (++i < n) loop.callSoon(cb);
    else loop.stop();
  };
  loop.callSoon(cb);
  await loop.runForever();
  loop.close();
};

function inTask(body: (loop: EventLoop, n: number) => Promise<void>): Runner {
  return async (n) => {
    const loop = new EventLoop();
    await loop.runUntilComplete(loop.createTask(() => body(loop, n)));
    loop.close();
  };
}

const setOne = (f: { setResult(v: number): void }): void => f.setResult(1);

const tulipFuture = inTask(async (loop, n) => {
  for (let i = 0; i < n; i++) {
    const f = loop.createFuture<number>();
    loop.callSoon(setOne, f);
    await f;
  }
});

const tulipTask = inTask(async (loop, n) => {
  for (let i = 0; i < n; i++) await loop.createTask(async () => i);
});

const tulipSleep0 = inTask(async (loop, n) => {
  for (let i = 0; i < n; i++) await sleep(0, undefined, loop);
});

// ---- native baselines --------------------------------------------------------------------------------------

const nativeImmediateChain: Runner = (n) =>
  new Promise((resolve) => {
    let i = 0;
    const cb = (): void => {
      if (++i < n) setImmediate(cb);
      else resolve();
    };
    setImmediate(cb);
  });

const nativeImmediatePromise: Runner = async (n) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

const nativeAsyncCall: Runner = async (n) => {
  for (let i = 0; i < n; i++) await (async () => i)();
};

// ---- the cases ---------------------------------------------------------------------------------------------

interface Case {
  name: string;
  unit: string;
  py: string;
  n: number;
  tulip: Runner;
  native: Runner;
  nativeName: string;
  goal: number | null;
  /** Run with foreign-await tracking on (turned on right before; must be the last case). */
  tracking?: boolean;
}

const CASES: Case[] = [
  { name: 'callSoon chain', unit: 'callbacks/s', py: 'call_soon', n: 2_000_000, tulip: tulipCallSoon, native: nativeImmediateChain, nativeName: 'native setImmediate chain', goal: 8 },
  { name: 'Future create+resolve+await', unit: 'ops/s', py: 'future', n: 500_000, tulip: tulipFuture, native: nativeImmediatePromise, nativeName: 'native Promise resolved in setImmediate', goal: 5 },
  { name: 'Task create+await', unit: 'ops/s', py: 'task', n: 300_000, tulip: tulipTask, native: nativeAsyncCall, nativeName: 'native async function call+await', goal: null },
  { name: 'sleep(0) round trip', unit: 'ops/s', py: 'sleep0', n: 500_000, tulip: tulipSleep0, native: nativeImmediatePromise, nativeName: 'native Promise resolved in setImmediate', goal: null },
  // Last: turning tracking on cannot be undone in this process.
  { name: 'Future create+resolve+await, tracking on', unit: 'ops/s', py: 'future', n: 500_000, tulip: tulipFuture, native: nativeImmediatePromise, nativeName: 'native Promise resolved in setImmediate (hooks on)', goal: null, tracking: true },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function measure(c: Case): Promise<{ tulip: number; native: number; tulipWall: number; nativeWall: number }> {
  const n = Math.max(1000, Math.round(c.n * SCALE));
  await c.tulip(Math.max(1000, n >> 3)); // warm-up
  await c.native(Math.max(1000, n >> 3));
  const t: { cpu: number; wall: number }[] = [];
  const b: { cpu: number; wall: number }[] = [];
  for (let i = 0; i < TRIALS; i++) {
    t.push(await timed(c.tulip, n));
    b.push(await timed(c.native, n));
  }
  return {
    tulip: median(t.map((x) => x.cpu)),
    native: median(b.map((x) => x.cpu)),
    tulipWall: median(t.map((x) => x.wall)),
    nativeWall: median(b.map((x) => x.wall)),
  };
}

function runAsyncio(): { python: string; cases: Record<string, number>; wall: Record<string, number> } | { error: string } {
  try {
    const out = execFileSync(systemPython(), [join(REPO_ROOT, 'bench/asyncio_loop.py'), '--json', '--trials', String(TRIALS), '--scale', String(SCALE)], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    return JSON.parse(out.trim().split('\n').pop()!) as { python: string; cases: Record<string, number>; wall: Record<string, number> };
  } catch (e) {
    return { error: errorText(e) };
  }
}

type Measured = Awaited<ReturnType<typeof measure>>;
type PyRun = ReturnType<typeof runAsyncio>;

/** The median of each rate over the rounds (every round's Python rates, or every round's Node rates of a case). */
function medianPy(runs: PyRun[]): PyRun {
  const ok = runs.filter((r): r is Exclude<PyRun, { error: string }> => 'cases' in r);
  if (ok.length === 0) return runs[0]!;
  const pick = (k: 'cases' | 'wall'): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const name of Object.keys(ok[0]![k])) out[name] = median(ok.map((r) => r[k][name] ?? 0));
    return out;
  };
  return { python: ok[0]!.python, cases: pick('cases'), wall: pick('wall') };
}

function medianMeasured(ms: Measured[]): Measured {
  return {
    tulip: median(ms.map((m) => m.tulip)),
    native: median(ms.map((m) => m.native)),
    tulipWall: median(ms.map((m) => m.tulipWall)),
    nativeWall: median(ms.map((m) => m.nativeWall)),
  };
}

async function main(): Promise<void> {
  const only = flags.only;
  const selected = CASES.filter((c) => only === null || c.name.includes(only));
  // Rounds: Python, then every case but the tracking one (which turns tracking on for good, so it runs once, last).
  const pyRuns: PyRun[] = [];
  const nodeRuns = new Map<Case, Measured[]>();
  for (let r = 0; r < ROUNDS; r++) {
    progress(`Python asyncio${ROUNDS > 1 ? ` (round ${r + 1}/${ROUNDS})` : ''}`);
    pyRuns.push(runAsyncio());
    for (const c of selected) {
      if (c.tracking === true) continue;
      progress(`${c.name}${ROUNDS > 1 ? ` (round ${r + 1}/${ROUNDS})` : ''}`);
      nodeRuns.set(c, [...(nodeRuns.get(c) ?? []), await measure(c)]);
    }
  }
  const py = medianPy(pyRuns);
  const cases: BenchCase[] = [];
  const table: string[][] = [];
  for (const c of selected) {
    let m: Measured;
    if (c.tracking === true) {
      progress(c.name);
      enableForeignAwaitTracking();
      m = await measure(c);
    } else {
      m = medianMeasured(nodeRuns.get(c)!);
    }
    const pyRate = 'cases' in py ? (py.cases[c.py] ?? null) : null;
    const pyName = `Python ${'python' in py ? py.python : ''} asyncio ${c.py}`.replace('  ', ' ');
    const vsAsyncio = ratio(m.tulip, pyRate);
    const vsNative = ratio(m.tulip, m.native);
    // The tracking row carries an empty goal list: the suite's name-based "Future ≥ 5x" goal is for the default row.
    const goals = c.goal === null ? (c.tracking === true ? [] : undefined) : [{ text: `${c.name} ≥ ${c.goal}x asyncio`, op: '>=', target: c.goal, ratio: vsAsyncio, met: vsAsyncio === null ? null : vsAsyncio >= c.goal }];
    cases.push({
      case: `tulipwire ${c.name} vs asyncio`,
      unit: c.unit,
      value: round(m.tulip),
      baseline: { name: pyName, value: pyRate === null ? null : round(pyRate) },
      ratio: vsAsyncio,
      extra: {
        ...(goals ? { goals } : {}),
        ...('error' in py ? { error: `asyncio: ${py.error}` } : {}),
        note: 'ops per CPU second, both sides',
        wall: { tulipwire: round(m.tulipWall), asyncio: 'wall' in py ? round(py.wall[c.py] ?? 0) : null },
      },
    });
    cases.push({
      case: `tulipwire ${c.name} vs native`,
      unit: c.unit,
      value: round(m.tulip),
      baseline: { name: c.nativeName, value: round(m.native) },
      ratio: vsNative,
      extra: { note: 'ops per CPU second, both sides', wall: { tulipwire: round(m.tulipWall), native: round(m.nativeWall) } },
    });
    table.push([
      c.name,
      vsAsyncio === null ? '—' : `${vsAsyncio.toFixed(2)}x`,
      c.goal === null ? '' : `≥ ${c.goal}x ${vsAsyncio !== null && vsAsyncio >= c.goal ? 'met' : 'NOT met'}`,
      vsNative === null ? '—' : `${vsNative.toFixed(2)}x`,
      c.nativeName,
      `${(m.tulip / 1e6).toFixed(2)} / ${pyRate === null ? '—' : (pyRate / 1e6).toFixed(2)} / ${(m.native / 1e6).toFixed(2)}`,
    ]);
  }
  progressDone();
  const report: BenchReport = { name: 'loop', cases };
  const text = renderTable(['case', 'vs asyncio', 'goal', 'vs native', 'native baseline', 'M ops/CPU-s tulipwire / asyncio / native'], table);
  if (flags.json) {
    process.stderr.write(`loop (same run, ops per CPU second; ratios count, rates are for orientation)\n${text}\n`);
    process.stdout.write(JSON.stringify(report) + '\n');
  } else {
    process.stdout.write(`loop (same run, ops per CPU second; ratios count, rates are for orientation)\n${text}\n`);
    if ('error' in py) process.stdout.write(`asyncio failed: ${py.error}\n`);
  }
}

await main();
