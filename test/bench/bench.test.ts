/**
 * Smoke tests of bench/: each script runs in its tiny `--quick` mode and prints a report of the agreed shape
 * (bench/README.md). No figure is judged: the bench measures speed, the tests only check the plumbing.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FrameCounter } from '../../bench/raw.js';
import { type BenchCase, type BenchReport, REPO_ROOT } from '../../bench/support/common.js';
import { epochNow, NoncePool, signFrame, verifyBody } from '../../bench/support/peer-format.js';
import { collectGoals, parseReport, runEntry } from '../../bench/suite.js';
import { systemPython } from '../../bench/support/workers.js';

function run(file: string, args: string[], timeout = 150_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', join(REPO_ROOT, file), ...args], { cwd: REPO_ROOT, timeout, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`${file} failed: ${err.message}\n${stderr}`)) : resolve({ stdout, stderr })));
  });
}

function checkCase(c: BenchCase): void {
  expect(typeof c.case).toBe('string');
  expect(typeof c.unit).toBe('string');
  expect(c.value === null || Number.isFinite(c.value)).toBe(true);
  if (c.value === null) expect(typeof c.extra?.['error']).toBe('string');
  if (c.baseline) {
    expect(typeof c.baseline.name).toBe('string');
    if (c.value !== null && c.baseline.value !== null && c.baseline.value !== 0) {
      expect(c.ratio).toBeCloseTo(c.value / c.baseline.value, 2);
    }
  }
}

function checkReport(r: BenchReport | null, name: string): BenchReport {
  expect(r).not.toBeNull();
  expect(r!.name).toBe(name);
  expect(r!.cases.length).toBeGreaterThan(0);
  for (const c of r!.cases) checkCase(c);
  return r!;
}

const byName = (r: BenchReport, name: string): BenchCase => {
  const c = r.cases.find((x) => x.case === name);
  expect(c, `row ${name}`).toBeDefined();
  return c!;
};

describe('bench helpers', () => {
  it('FrameCounter counts frames split at every byte boundary', () => {
    const frames = [signFrame({ a: 1 }, 1e10, Buffer.alloc(16)), Buffer.from([0, 0, 0, 0]), signFrame({ b: 'x'.repeat(300) }, 1e10, Buffer.alloc(16, 1))];
    const stream = Buffer.concat(frames);
    for (let cut = 0; cut <= stream.length; cut++) {
      const fc = new FrameCounter();
      expect(fc.feed(stream.subarray(0, cut)) + fc.feed(stream.subarray(cut))).toBe(3);
    }
    const fc = new FrameCounter();
    let n = 0;
    for (const byte of stream) n += fc.feed(Buffer.from([byte]));
    expect(n).toBe(3);
  });

  it('a Node-signed peer frame verifies in Node and in the Python peer, and a flipped bit does not', async () => {
    const frame = signFrame({ t: 'move', id: 42, x: 1.5, y: -3.25, seq: 7, ts: 1700000000000 }, epochNow() + 30, new NoncePool().take());
    expect(verifyBody(frame.subarray(4), epochNow())).toMatchObject({ t: 'move', seq: 7 });
    const bad = Buffer.from(frame);
    bad[10]! ^= 1;
    expect(() => verifyBody(bad.subarray(4), epochNow())).toThrow();
    const code = [
      'import sys, time, importlib.util',
      `spec = importlib.util.spec_from_file_location("peer", ${JSON.stringify(join(REPO_ROOT, 'bench/peers/asyncio_signed.py'))})`,
      'peer = importlib.util.module_from_spec(spec); spec.loader.exec_module(peer)',
      'out = []',
      'for hexframe in sys.argv[1:]:',
      '    data = bytes.fromhex(hexframe)',
      '    try:',
      '        peer.Deframer().feed(data, lambda mv, s, e: out.append(peer.verify(mv, s, e, time.time())["seq"]))',
      '    except ValueError as e:',
      '        out.append(str(e))',
      'print(out)',
    ].join('\n');
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(systemPython(), ['-c', code, frame.toString('hex'), bad.toString('hex')], { timeout: 20_000 },
        (err, out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out))));
    expect(stdout.trim()).toBe("[7, 'bad signature']");
  });

  it('parseReport takes the last report line; collectGoals reads extra.goals and the loop names', () => {
    const report = { name: 'loop', cases: [
      { case: 'callSoon chain', unit: 'callbacks/s', value: 9e6, baseline: { name: 'python asyncio call_soon', value: 1e6 }, ratio: 9 },
      { case: 'Future create+resolve+await', unit: 'ops/s', value: 1e6, baseline: { name: 'asyncio', value: 0.5e6 }, ratio: 2 },
    ] };
    expect(parseReport(`noise\n${JSON.stringify({ x: 1 })}\n${JSON.stringify(report)}\n`)).toEqual(report);
    expect(parseReport('no json here')).toBeNull();
    const goals = collectGoals([{ entry: { name: 'loop', file: 'bench/loop.ts', budget: 1 }, report, error: null, seconds: 1 }]);
    expect(goals.map((g) => [g.target, g.met])).toEqual([[8, true], [5, false]]);
  });
});

describe('suite entries that fail', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tw-bench-entry-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('a missing bench and a bench that crashes become error outcomes, not exceptions', async () => {
    const missing = await runEntry({ name: 'nope', file: 'bench/does-not-exist.ts', budget: 5 }, [], null, 5);
    expect(missing.report).toBeNull();
    expect(missing.error).toBe('bench/does-not-exist.ts is missing');
    const script = join(tmp, 'crash.ts');
    writeFileSync(script, "process.stderr.write('Error: the bench broke\\n'); process.exit(2);\n");
    const crashed = await runEntry({ name: 'crash', file: relative(REPO_ROOT, script), budget: 20 }, [], null, 20);
    expect(crashed.report).toBeNull();
    expect(crashed.error).toContain('exited 2 without a report');
    expect(crashed.error).toContain('the bench broke');
  }, 30_000);
});

describe('bench scripts in --quick mode', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tw-bench-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('raw.ts prints a raw report with throughput and round-trip rows', async () => {
    const { stdout } = await run('bench/raw.ts', ['--json', '--quick', '--only', '100 B x1']);
    const r = checkReport(parseReport(stdout), 'raw');
    expect(byName(r, 'raw node:tls 100 B x1').value).toBeGreaterThan(0);
    expect(byName(r, 'raw node:tls round trip p99').unit).toBe('us');
  }, 120_000);

  it('peers/grpc.ts prints grpc rows beside the raw baseline', async () => {
    const { stdout } = await run('bench/peers/grpc.ts', ['--json', '--quick', '--only', '100 B x1']);
    const r = checkReport(parseReport(stdout), 'grpc');
    const g = byName(r, 'grpc-js signed 100 B x1');
    expect(g.baseline?.name).toBe('raw node:tls 100 B x1');
    expect(g.value).toBeGreaterThan(0);
    expect(byName(r, 'grpc-js signed unary round trip p99').value).toBeGreaterThan(0);
  }, 120_000);

  it('the suite runs signed.ts and writes results JSON with the machine and goals', async () => {
    const out = join(tmp, 'quick.json');
    const { stdout } = await run('bench/suite.ts', ['--quick', '--only', 'signed', '--out', out], 240_000);
    expect(stdout).toContain('goals (ratios from this run)');
    const result = JSON.parse(readFileSync(out, 'utf8')) as {
      quick: boolean; machine: Record<string, unknown>; benches: { name: string; error: string | null; report: BenchReport | null }[];
      goals: { text: string; op: string; target: number }[];
    };
    expect(result.quick).toBe(true);
    expect(result.machine).toMatchObject({ cores: expect.any(Number), node: process.version, openssl: process.versions.openssl });
    expect(typeof result.machine['cpu']).toBe('string');
    expect(result.benches.map((b) => b.name)).toEqual(['signed']);
    const r = checkReport(result.benches[0]!.report, 'signed');
    for (const peer of ['python asyncio signed', 'python uvloop signed', 'grpc-js signed', 'raw node:tls']) {
      for (const sc of ['100 B x1', '16 KiB x1', '100 B x3']) {
        expect(byName(r, `${peer} ${sc}`).value, `${peer} ${sc}`).toBeGreaterThan(0);
      }
    }
    // The tulipwire rows exist whether or not every module has landed (then they carry the error).
    expect(byName(r, 'tulipwire signed 100 B x1 vs asyncio').baseline?.name).toBe('python asyncio signed 100 B x1');
    expect(result.goals.map((g) => g.text)).toContain('signed 100 B x1: ≥ 5x Python asyncio');
  }, 240_000);
});
