/**
 * The arithmetic behind the bench's table, without timing anything: the median run of the interleaved reps, the
 * goal check, and the faults that make a row fail whatever its ratio (a receiver that rejected messages, a TLS
 * version or cipher other than the raw baseline's), and the suite's goals table listing every goal of PERF-NOTES.
 */
import { describe, expect, it } from 'vitest';
import { ratio } from '../../bench/support/common.js';
import { checked, median, medianOf, runFaults } from '../../bench/support/compare.js';
import type { ThroughputResult } from '../../bench/support/workers.js';
import { collectGoals, type SuiteEntry } from '../../bench/suite.js';

const run = (msgsPerSec: number, info: Record<string, unknown> = {}): ThroughputResult =>
  ({ msgsPerSec, MBps: 0, cpuSendUs: 1, cpuRecvUs: 1, msgs: msgsPerSec, seconds: 1, info });

const TLS = 'TLSv1.3 TLS_AES_256_GCM_SHA384';

describe('median of the reps', () => {
  it('is the middle run of three whatever their order, the lower middle of two', () => {
    expect(median([run(3), run(1), run(2)]).msgsPerSec).toBe(2);
    expect(median([run(10), run(1), run(5)]).msgsPerSec).toBe(5);
    expect(median([run(7), run(4)]).msgsPerSec).toBe(4);
    expect(median([run(9)]).msgsPerSec).toBe(9);
    expect(medianOf([300, 100, 200])).toBe(200);
    expect(medianOf([2, 1])).toBe(1);
  });
});

describe('goal check', () => {
  it('compares the ratio with the target in the goal direction', () => {
    const five = { op: '>=', target: 5, text: '≥ 5x' } as const;
    expect(checked(five, ratio(5e6, 1e6)).met).toBe(true);
    expect(checked(five, ratio(4.9e6, 1e6)).met).toBe(false);
    expect(checked(five, null).met).toBeNull();
    expect(checked({ op: '<=', target: 2, text: 'p99 ≤ 2x' }, 2.5).met).toBe(false);
    expect(checked({ op: '<=', target: 2, text: 'p99 ≤ 2x' }, 1.5).met).toBe(true);
  });

  it('a fault makes the goal not met however good the ratio, and says why', () => {
    const g = checked({ op: '>=', target: 5, text: '≥ 5x' }, 9, '3 message(s) rejected');
    expect(g.met).toBe(false);
    expect(g.fault).toBe('3 message(s) rejected');
  });
});

describe('run faults', () => {
  it('clean runs with the raw TLS have none; a run without a TLS report (grpc-js) is not compared', () => {
    expect(runFaults([run(1, { rejected: 0, tls: TLS }), run(2, { tls: TLS })], TLS)).toBeNull();
    expect(runFaults([run(1, {})], TLS)).toBeNull();
    expect(runFaults([run(1, { tls: 'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256' })], null)).toBeNull();
  });

  it('rejections in any rep fail the runs, with the count over all reps and the first reason', () => {
    const f = runFaults([run(1, { rejected: 0 }), run(2, { rejected: 2, firstReject: 'bad signature' }), run(3, { rejected: 1 })], TLS);
    expect(f).toMatch(/^3 message\(s\) rejected/);
    expect(f).toMatch(/bad signature/);
  });

  it('a TLS version or cipher other than raw\'s fails the runs', () => {
    expect(runFaults([run(1, { tls: 'TLSv1.3 TLS_AES_128_GCM_SHA256' })], TLS)).toMatch(/differs from raw/);
    expect(runFaults([run(1, { tls: 'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384' })], TLS)).toMatch(/TLSv1\.2/);
  });
});

describe('the suite goals table', () => {
  const entry = (name: string): SuiteEntry => ({ name, file: `bench/${name}.ts`, budget: 1 });

  it('a bench that failed still shows its PERF-NOTES goals, as not measured with the reason', () => {
    const goals = collectGoals([
      { entry: entry('loop'), report: null, error: 'exited 1 without a report: boom', seconds: 1 },
      { entry: entry('signed'), report: { name: 'signed', cases: [] }, error: null, seconds: 1 },
    ]);
    expect(goals.map((g) => [g.bench, g.target, g.met])).toEqual([['signed', 5, null], ['loop', 8, null], ['loop', 5, null]]);
    expect(goals.find((g) => g.bench === 'loop')!.fault).toMatch(/boom/);
    expect(goals.find((g) => g.bench === 'signed')!.fault).toMatch(/no such row/);
  });

  it('a goal a bench reported is not listed twice, and a bench that did not run adds none', () => {
    const headline = checked({ op: '>=', target: 5, text: 'signed 100 B x1: ≥ 5x Python asyncio' }, 5.5);
    const goals = collectGoals([{ entry: entry('signed'), error: null, seconds: 1, report: { name: 'signed', cases: [
      { case: 'tulipwire signed 100 B x1 vs asyncio', unit: 'msg/s', value: 1, extra: { goals: [headline] } },
    ] } }]);
    expect(goals.map((g) => [g.text, g.met])).toEqual([['signed 100 B x1: ≥ 5x Python asyncio', true]]);
  });
});
