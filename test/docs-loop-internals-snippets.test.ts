/**
 * docs/event-loop-internals.md's by-hand virtual-clock snippet ("Testing on the virtual clock"), run as the doc shows
 * it: each `await runOnce();  // #N name: …` comment names the iteration that call runs and the callback it runs
 * (checked against the loop's tracer), and the closing `t.result();  // 'done'` is the value it gives.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { EventLoop, VirtualClock, sleep } from '../src/index.js';
import type { TraceRecord } from '../src/index.js';

const doc = readFileSync(new URL('../docs/event-loop-internals.md', import.meta.url), 'utf8');

function snippet(): string {
  const section = doc.split('\n## Testing on the virtual clock\n')[1]!.split('\n## ')[0]!;
  return /```ts\n([\s\S]*?)\n```/.exec(section)![1]!;
}

describe('docs/event-loop-internals.md: stepping the loop by hand', () => {
  it('each runOnce() runs the iteration and callback its comment names, and t.result() is what the comment says', async () => {
    const code = snippet();
    const lines = code.split('\n');
    const steps = lines.flatMap((l) => {
      const m = /^await runOnce\(\);\s+\/\/ #(\d+) ([\w.]+):/.exec(l);
      return m === null ? [] : [{ iteration: Number(m[1]), callback: m[2]! }];
    });
    expect(steps.length).toBe(3);
    const last = /^(t\.result\(\));\s+\/\/ '(.*)'$/.exec(lines.at(-1)!);
    expect(last, 'the last line: t.result(); // \'…\'').not.toBeNull();

    const records: TraceRecord[] = [];
    const loops: EventLoop[] = [];
    class TracedLoop extends EventLoop {
      constructor(options: ConstructorParameters<typeof EventLoop>[0]) {
        super(options);
        this.setTracer((r) => records.push(r));
        loops.push(this);
      }
    }
    const body = [...lines.slice(0, -1), `return ${last![1]};`].join('\n');
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<unknown>;
    const run = new AsyncFunction('VirtualClock', 'EventLoop', 'sleep', body);
    const result = await run(VirtualClock, TracedLoop, sleep);
    for (const loop of loops) loop.close();

    expect(result).toBe(last![2]);
    expect(records.map((r) => r.iteration)).toEqual(steps.map((s) => s.iteration));
    expect(records.map((r) => r.callbacks)).toEqual(steps.map((s) => [s.callback]));
  });
});
