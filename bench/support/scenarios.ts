/**
 * The cases of the transport-level benches (signed.ts, raw.ts, peers/grpc.ts) and their time budgets.
 */
import type { BenchFlags } from './common.js';
import { SIZES } from './common.js';

/** One one-way throughput scenario. */
export interface ThroughputScenario {
  /** e.g. `100 B x1`. */
  label: string;
  /** Size label (a key of SIZES). */
  size: string;
  /** Padding bytes added to the game message. */
  pad: number;
  /** Connections, all from one sender process to one receiver process. */
  conns: number;
}

/** Time budget of one throughput run and of one round-trip run. */
export interface Budget {
  /** Seconds after the first message before counting starts. */
  warmup: number;
  /** Seconds counted. */
  duration: number;
  /** Round trips not recorded, then at most `pingCount` recorded ones within `pingDuration` seconds. */
  pingWarmup: number;
  pingCount: number;
  pingDuration: number;
  /** Runs of each one-connection scenario (100 B, 1 KiB, 16 KiB x1) and of the round trips, interleaved; the median counts. */
  headlineReps: number;
}

/**
 * The throughput scenarios: three sizes over one connection, then 100 B over 16 and 256 connections. With --quick
 * (a plumbing check): 100 B and 16 KiB over one connection and 100 B over 3.
 */
export function throughputScenarios(flags: BenchFlags): ThroughputScenario[] {
  const sizes = flags.quick ? ['100 B', '16 KiB'] : Object.keys(SIZES);
  const many = flags.quick ? [3] : [16, 256];
  const list: ThroughputScenario[] = [
    ...sizes.map((size) => ({ label: `${size} x1`, size, pad: SIZES[size]!, conns: 1 })),
    ...many.map((conns) => ({ label: `100 B x${conns}`, size: '100 B', pad: 0, conns })),
  ];
  return flags.only ? list.filter((s) => s.label.includes(flags.only!)) : list;
}

/** Budget per run: 1 s of counting after 0.25 s of warm-up (0.15 s with --quick); `--duration` overrides the window. */
export function budget(flags: BenchFlags): Budget {
  if (flags.quick) return { warmup: 0.1, duration: flags.duration ?? 0.15, pingWarmup: 5, pingCount: 30, pingDuration: 0.5, headlineReps: 1 };
  return { warmup: 0.25, duration: flags.duration ?? 1.0, pingWarmup: 10000, pingCount: 20000, pingDuration: 1.5, headlineReps: 3 };
}
