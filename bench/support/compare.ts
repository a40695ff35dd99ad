/**
 * Runs the transport-level scenarios for several implementations side by side, the raw `node:tls` baseline first
 * in every scenario, and turns the figures into one report (rows with baselines, ratios and goals).
 */
import {
  type BenchCase, type BenchFlags, type BenchReport, emitReport, errorText, makeCerts, progress, ratio, removeCerts, round,
} from './common.js';
import { budget, throughputScenarios } from './scenarios.js';
import { type Impl, type PingResult, runPing, runThroughput, type ThroughputResult } from './workers.js';

/** How each implementation is named in the table. */
export const IMPL_NAMES: Record<Impl, string> = {
  raw: 'raw node:tls',
  tulipwire: 'tulipwire signed',
  'tw-wire': 'tulipwire wire layer on node:tls',
  naive: 'naive node signed (createHmac per msg)',
  asyncio: 'python asyncio signed',
  uvloop: 'python uvloop signed',
  grpc: 'grpc-js signed',
};

/** The implementations tulipwire must beat (issue 7); the others are baselines or parts of tulipwire. */
export const PEERS: readonly Impl[] = ['asyncio', 'uvloop', 'grpc'];
/** Implementations without a round-trip role. */
const NO_PING: readonly Impl[] = ['tw-wire', 'naive'];
/** Diagnostic rows, run over one connection only. */
const ONE_CONN_ONLY: readonly Impl[] = ['tw-wire', 'naive'];

/** A goal on a row's ratio: `ratio op target` (issue 7; the goals: bench/README.md). */
export interface Goal {
  op: '>=' | '<=';
  target: number;
  text: string;
}

/**
 * Messages per second one core per side could sustain at the CPU cost measured: 1e6 / max(sender µs, receiver µs).
 * Less sensitive than the measured rate to other processes taking the cores.
 */
function capacity(r: ThroughputResult): number | null {
  const worst = Math.max(r.cpuSendUs, r.cpuRecvUs);
  return Number.isFinite(worst) && worst > 0 ? round(1e6 / worst) : null;
}

/** The median of `xs` (the lower middle one of an even count). */
export function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1]!;
}

/** The run with the median rate (the lower middle one of an even count). */
export function median(list: ThroughputResult[]): ThroughputResult {
  const sorted = [...list].sort((a, b) => a.msgsPerSec - b.msgsPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** A goal with the ratio it was checked against and whether it is met. */
export interface CheckedGoal extends Goal {
  ratio: number | null;
  met: boolean | null;
  /** Why the goal counts as not met whatever its ratio (see {@link runFaults}). */
  fault?: string;
}

/**
 * Checks `ratio` against `goal`. With `fault` (why a figure behind the ratio cannot be trusted, see {@link runFaults})
 * the goal is not met whatever the ratio, and says why in `fault`.
 */
export function checked(goal: Goal, r: number | null, fault: string | null = null): CheckedGoal {
  if (fault !== null) return { ...goal, ratio: r, met: false, fault };
  return { ...goal, ratio: r, met: r == null ? null : goal.op === '>=' ? r >= goal.target : r <= goal.target };
}

/**
 * Why the runs of one implementation cannot stand as measured, or null: a receiver that rejected messages (a
 * message that fails to verify is not counted, so the rate is of a broken run), or a TLS version/cipher other than
 * the raw baseline's (`rawTls`; a run that reports none, like grpc-js, is not compared).
 */
export function runFaults(runs: readonly { info: Record<string, unknown> }[], rawTls: string | null): string | null {
  const why: string[] = [];
  const rejected = runs.reduce((n, r) => n + (Number(r.info['rejected']) || 0), 0);
  if (rejected > 0) {
    const first = runs.find((r) => Number(r.info['rejected']) > 0)?.info['firstReject'];
    why.push(`${rejected} message(s) rejected by the receiver${first ? ` (first: ${String(first)})` : ''}`);
  }
  const tls = [...new Set(runs.map((r) => r.info['tls']).filter((t): t is string => typeof t === 'string' && t !== ''))];
  if (rawTls !== null && rawTls !== '' && tls.some((t) => t !== rawTls)) why.push(`TLS ${tls.join(' / ')} differs from raw's ${rawTls}`);
  return why.length ? why.join('; ') : null;
}

function throughputGoal(impl: Impl, scenario: string): Goal | undefined {
  if (impl !== 'tulipwire') return undefined;
  if (scenario === '1 KiB x1') return { op: '>=', target: 0.6, text: 'signed 1 KiB x1: ≥ 60% of raw frames/s' };
  if (scenario === '16 KiB x1') return { op: '>=', target: 0.85, text: 'signed 16 KiB x1: ≥ 85% of raw frames/s' };
  return undefined;
}

/**
 * Runs every scenario for `impls` (raw first each time), then the round trips, and emits the report named `name`.
 * A failing implementation gets its error in its row; the others go on.
 */
export async function compareRun(name: string, impls: Impl[], flags: BenchFlags): Promise<BenchReport> {
  const b = budget(flags);
  const certs = makeCerts();
  const cases: BenchCase[] = [];
  try {
    for (const sc of throughputScenarios(flags)) {
      const got = new Map<Impl, ThroughputResult | Error>();
      // The one-connection scenarios (the goals' rows) run `reps` times, interleaved (raw, impl1, impl2, …, raw, …),
      // and keep each implementation's median run, so one noisy moment of the box (or one of V8's runs of
      // back-to-back mark-compacts in a receiver, see bench/README.md) does not decide the ratio.
      const reps = sc.conns === 1 ? b.headlineReps : 1;
      // The wire-layer and naive rows are diagnostics of one connection; they are not run over many.
      const scImpls = impls.filter((i) => !(ONE_CONN_ONLY.includes(i) && sc.conns > 1));
      const runs = new Map<Impl, ThroughputResult[]>();
      for (let rep = 0; rep < reps; rep++) {
        for (const impl of ['raw', ...scImpls] as Impl[]) {
          if (got.get(impl) instanceof Error) continue;
          progress(`${IMPL_NAMES[impl]} ${sc.label}${reps > 1 ? ` (run ${rep + 1}/${reps})` : ''}`);
          try {
            const r = await runThroughput({ impl, certsDir: certs.dir, conns: sc.conns, pad: sc.pad, warmup: b.warmup, duration: b.duration });
            runs.set(impl, [...(runs.get(impl) ?? []), r]);
            got.set(impl, median(runs.get(impl)!));
          } catch (err) {
            if (!runs.has(impl)) got.set(impl, err instanceof Error ? err : new Error(String(err)));
          }
        }
      }
      const rawRuns = runs.get('raw') ?? [];
      const rawTls = rawRuns.map((r) => r.info['tls']).find((t): t is string => typeof t === 'string' && t !== '') ?? null;
      const fault = (impl: Impl | null): string | null => (impl === null ? null : runFaults(runs.get(impl) ?? [], impl === 'raw' ? null : rawTls));
      const value = (impl: Impl): number | null => {
        const r = got.get(impl);
        return r && !(r instanceof Error) ? round(r.msgsPerSec) : null;
      };
      const row = (impl: Impl, baseline: Impl | null, goals: Goal[] = []): BenchCase => {
        const r = got.get(impl)!;
        const c: BenchCase = { case: `${IMPL_NAMES[impl]} ${sc.label}${baseline && baseline !== 'raw' ? ` vs ${baseline}` : ''}`, unit: 'msg/s', value: value(impl) };
        if (baseline) {
          c.baseline = { name: `${IMPL_NAMES[baseline]} ${sc.label}`, value: value(baseline) };
          c.ratio = ratio(c.value, c.baseline.value);
        }
        const base = baseline ? got.get(baseline) : undefined;
        c.extra = r instanceof Error
          ? { error: errorText(r) }
          : { MBps: round(r.MBps, 1), cpuSendUs: round(r.cpuSendUs, 3), cpuRecvUs: round(r.cpuRecvUs, 3), capacity: capacity(r),
              conns: sc.conns, size: sc.size,
              ...r.info, ...(reps > 1 ? { runs: (runs.get(impl) ?? []).map((x) => round(x.msgsPerSec)), note: `median of ${(runs.get(impl) ?? []).length}${(runs.get(impl) ?? []).length < reps ? ` (of ${reps} tried)` : ''}` } : {}),
              // The receiver's major GCs in each run's window (docs/performance.md: a storm shows as dozens).
              ...(r.info['majorGcs'] !== undefined ? { majorGcsRuns: (runs.get(impl) ?? [r]).map((x) => x.info['majorGcs'] ?? null) } : {}) };
        // A row whose runs (or whose baseline's runs) rejected messages or ran another TLS is a failed row.
        const faults = [fault(impl), fault(baseline)].filter((f): f is string => f !== null);
        const rowFault = faults.length ? faults.join('; ') : null;
        if (rowFault !== null && !(r instanceof Error)) c.extra['error'] = rowFault;
        if (!(r instanceof Error) && base && !(base instanceof Error) && baseline !== 'raw') {
          // The same comparison on CPU cost, which a busy box disturbs less than wall-clock rates (see README).
          c.extra['capacityRatio'] = ratio(capacity(r), capacity(base));
        }
        if (goals.length) c.extra['goals'] = goals.map((g) => checked(g, c.ratio ?? null, rowFault));
        return c;
      };
      cases.push(row('raw', null));
      for (const impl of scImpls) {
        const goals: Goal[] = [];
        const own = throughputGoal(impl, sc.label);
        if (own) goals.push(own);
        const c = row(impl, 'raw', goals);
        if (impl === 'tulipwire') {
          // tulipwire must beat every peer (issue 7): one goal per scenario on the smallest of its ratios to them.
          const vs: Record<string, number | null> = {};
          for (const peer of impls.filter((i) => PEERS.includes(i))) vs[peer] = ratio(c.value, value(peer));
          c.extra!['vs'] = vs;
          const peers = Object.keys(vs);
          if (peers.length) {
            const rs = Object.values(vs);
            const worst = rs.some((r) => r == null) ? null : Math.min(...(rs as number[]));
            const peerFaults = [fault('tulipwire'), ...peers.map((p) => fault(p as Impl))].filter((f): f is string => f !== null);
            ((c.extra!['goals'] ??= []) as CheckedGoal[]).push(checked({ op: '>=', target: 1, text: `${sc.label}: beats every peer (${peers.join(', ')}), worst ratio` }, worst,
              peerFaults.length ? peerFaults.join('; ') : null));
          }
        }
        cases.push(c);
      }
      if (impls.includes('tulipwire') && impls.includes('asyncio')) {
        const headline = sc.label === '100 B x1';
        cases.push(row('tulipwire', 'asyncio', headline ? [{ op: '>=', target: 5, text: 'signed 100 B x1: ≥ 5x Python asyncio' }] : []));
      }
    }
    {
      // Round trips always run (a few seconds); --only filters the throughput scenarios.
      // Latency tails swing with the box more than rates do: the peers run interleaved, headlineReps times each, and
      // each figure is the median over the reps (max: the largest seen).
      const runs = new Map<Impl, PingResult[]>();
      const failed = new Map<Impl, Error>();
      const pingImpls = (['raw', ...impls] as Impl[]).filter((i) => !NO_PING.includes(i));
      for (let rep = 0; rep < b.headlineReps; rep++) {
        for (const impl of pingImpls) {
          if (failed.has(impl)) continue;
          progress(`${IMPL_NAMES[impl]} round trips${b.headlineReps > 1 ? ` (${rep + 1}/${b.headlineReps})` : ''}`);
          try {
            const r = await runPing({ impl, certsDir: certs.dir, pad: 0, count: b.pingCount, warmup: b.pingWarmup, duration: b.pingDuration });
            runs.set(impl, [...(runs.get(impl) ?? []), r]);
          } catch (err) {
            failed.set(impl, err instanceof Error ? err : new Error(String(err)));
          }
        }
      }
      const got = new Map<Impl, PingResult | Error>();
      for (const impl of pingImpls) {
        const rs = runs.get(impl);
        const f = failed.get(impl);
        if (f !== undefined || rs === undefined) got.set(impl, f ?? new Error('no round trips measured'));
        else got.set(impl, { n: rs.reduce((a, r) => a + r.n, 0), p50: medianOf(rs.map((r) => r.p50)), p99: medianOf(rs.map((r) => r.p99)), max: Math.max(...rs.map((r) => r.max)) });
      }
      const reps = b.headlineReps;
      const raw = got.get('raw');
      const rawP99 = raw && !(raw instanceof Error) ? raw.p99 : null;
      for (const impl of pingImpls) {
        const r = got.get(impl)!;
        const label = impl === 'raw' ? 'raw node:tls echo' : impl === 'tulipwire' ? 'tulipwire signed RPC' : `${IMPL_NAMES[impl]} ${impl === 'grpc' ? 'unary' : 'request/response'}`;
        const c: BenchCase = { case: `${label} round trip p99`, unit: 'us', value: r instanceof Error ? null : r.p99 };
        if (impl !== 'raw') {
          c.baseline = { name: 'raw node:tls echo p99', value: rawP99 };
          c.ratio = ratio(c.value, rawP99);
        }
        c.extra = r instanceof Error ? { error: errorText(r) } : { p50: r.p50, p99: r.p99, max: r.max, n: r.n, note: `p50 ${r.p50} / max ${r.max} µs${reps > 1 ? `; median of ${reps} interleaved` : ''}` };
        if (impl === 'tulipwire') c.extra['goals'] = [checked({ op: '<=', target: 2, text: 'signed RPC p99 within 2x raw p99' }, c.ratio ?? null)];
        cases.push(c);
      }
    }
  } finally {
    removeCerts(certs);
  }
  const report: BenchReport = { name, cases };
  emitReport(report, flags);
  return report;
}
