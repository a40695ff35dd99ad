/**
 * docs/event-loop-internals.md shows examples/loop-internals' walk beside asyncio's (section "The example, beside
 * asyncio's `_run_once`"). Both columns of that block are parsed and compared with what the programs really print:
 * the tulipwire column with the example's tracer walk (every field: time, wait, jump, ready, timers due, callbacks,
 * deferred), the asyncio column with `asyncio_walk.py` run by Debian's Python (`command -p python3`; the doc says
 * every CPython from 3.11 prints the same iterations), whose real-clock waits are only checked to be 0 or not.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { main } from '../examples/loop-internals/main.js';

/** One iteration as a walk line shows it. */
interface Row {
  iteration: number;
  time: string | null;
  wait: string;
  jumped: boolean;
  ready: number;
  timers: number;
  callbacks: string[];
  deferred: number;
}

const ROW = /^#(\d+)\s+(?:t=(\S+)\s+)?wait=(\S+)( \(jumped\))?\s+ready=(\d+)(?: timers=(\d+))?\s+(.*)$/;

/** Parses the head of an iteration line (`#7 t=0.500 wait=0.500 (jumped) ready=1 timers=1 timerHalf`). */
function parseHead(text: string): Row {
  const m = ROW.exec(text.trim());
  if (m === null) throw new Error(`not a walk line: ${text}`);
  const row: Row = {
    iteration: Number(m[1]), time: m[2] ?? null, wait: m[3]!, jumped: m[4] !== undefined, ready: Number(m[5]),
    timers: m[6] === undefined ? 0 : Number(m[6]), callbacks: [], deferred: 0,
  };
  addCallbacks(row, m[7]!);
  return row;
}

/** Adds a (continuation of a) list of callback names, and a trailing `+deferred N`. */
function addCallbacks(row: Row, text: string): void {
  const d = /\s*\+deferred (\d+)\s*$/.exec(text);
  if (d !== null) {
    row.deferred = Number(d[1]);
    text = text.slice(0, d.index);
  }
  for (const name of text.split(',')) if (name.trim() !== '') row.callbacks.push(name.trim());
}

/** The doc's side-by-side block, split into its two columns. */
function docColumns(): { tulipwire: Row[]; asyncio: Row[] } {
  const doc = readFileSync(new URL('../docs/event-loop-internals.md', import.meta.url), 'utf8');
  const section = doc.split('\n## The example, beside asyncio\'s `_run_once`\n')[1];
  expect(section, 'the section of the doc').toBeDefined();
  const block = /```\n([\s\S]*?)\n```/.exec(section!)![1]!.split('\n');
  expect(block[0]).toMatch(/^tulipwire\s+asyncio \(_run_once\)$/);
  const tulipwire: Row[] = [];
  const asyncio: Row[] = [];
  for (const line of block.slice(2)) {
    if (line.startsWith('#')) {
      // Iteration line: the asyncio column starts at its own `#N   wait=`.
      const m = /^(#\d+.*?)\s+(#\d+\s+wait=.*)$/.exec(line);
      if (m === null) throw new Error(`no asyncio column in: ${line}`);
      tulipwire.push(parseHead(m[1]!));
      asyncio.push(parseHead(m[2]!));
    } else {
      // Continuation line: the tulipwire part, then (after a wide gap) the asyncio part, either may be absent.
      const lead = line.length - line.trimStart().length;
      const [left, right] = line.trim().split(/\s{5,}/);
      if (right !== undefined) {
        addCallbacks(tulipwire.at(-1)!, left!);
        addCallbacks(asyncio.at(-1)!, right);
      } else if (lead < 40) addCallbacks(tulipwire.at(-1)!, left!);
      else addCallbacks(asyncio.at(-1)!, left!);
    }
  }
  return { tulipwire, asyncio };
}

function runAsyncioWalk(): Promise<string> {
  const script = fileURLToPath(new URL('../examples/loop-internals/asyncio_walk.py', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', 'P=$(command -p -v python3) && exec "$P" "$0"', script], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`asyncio_walk.py failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

describe('docs/event-loop-internals.md: the example beside asyncio', () => {
  it('the tulipwire column is what the example\'s tracer prints', async () => {
    const { walk } = await main({ print: () => {} });
    expect(docColumns().tulipwire).toEqual(walk.map(parseHead));
  });

  it('the asyncio column is what asyncio_walk.py prints', async () => {
    const out = (await runAsyncioWalk()).split('\n');
    const rows = out.filter((l) => /^#\d+ /.test(l)).map(parseHead);
    expect(rows.length).toBe(14);
    // Real clock: a wait is 0.5 or 0.497, so compare only whether the loop would have waited.
    const shape = (r: Row): Row => ({ ...r, wait: r.wait === '0' ? '0' : '>0' });
    expect(docColumns().asyncio.map(shape)).toEqual(rows.map(shape));
  }, 30_000);
});
