/**
 * A cancel followed by an await (the sessions bug) with foreign-await tracking on (`run()`'s default): B's await of
 * F is B's own, never the cancelled task A's suspension, whatever microtask window of A's step B's code runs in, and
 * also when B is a task resumed from a foreign await.
 */
import { describe, expect, it } from 'vitest';
import { EventLoop, foreignAwaitTracking, run } from '../../src/index.js';
import { cancelThenAwait, EXPECTED } from './fixtures/cancel-attribution.js';
import type { CancellerKind } from './fixtures/cancel-attribution.js';

const DEPTHS = Array.from({ length: 24 }, (_, i) => i);

describe('cancel then await, tracking on', () => {
  for (const kind of ['callback-chain', 'next-tick', 'task-after-native'] as CancellerKind[]) {
    for (const native of [false, true]) {
      it(`${kind}${native ? ', A awaits native promises too' : ''}: F is B's, A is cancelled`, async () => {
        for (const depth of DEPTHS) {
          const loop = new EventLoop({ trackForeignAwaits: true });
          try {
            expect({ depth, ...(await cancelThenAwait(loop, depth, kind, native)) }).toEqual({ depth, ...EXPECTED });
          } finally {
            loop.close();
          }
        }
        expect(foreignAwaitTracking()).toBe(true);
      });
    }
  }

  it('under run(): a task cancels another and awaits a Future at once, at every depth', async () => {
    const seen: unknown[] = [];
    await run(async () => {
      const { getRunningLoop } = await import('../../src/index.js');
      const loop = getRunningLoop();
      for (const depth of DEPTHS) {
        const x = loop.createFuture<void>();
        const f = loop.createFuture<string>();
        const a = loop.createTask(async () => { await x; });
        const b = loop.createTask(async () => {
          await new Promise<void>((r) => setImmediate(r)); // a foreign await first
          for (let i = 0; i < depth; i++) await null;
          a.cancel();
          return await f;
        });
        loop.callLater(0.001, () => f.setResult('ok'));
        seen.push([depth, await b, await a.then(() => 'done', (e: unknown) => (e as Error).name), f.cancelled()]);
      }
    });
    expect(seen).toEqual(DEPTHS.map((d) => [d, 'ok', 'CancelledError', false]));
  });
});

describe('currentTask() with tracking on is the task whose code runs', () => {
  it('a plain callback promise chain running during a task step sees no task; a generator task sees itself', async () => {
    const loop = new EventLoop({ trackForeignAwaits: true });
    const { currentTask, sleep } = await import('../../src/index.js');
    const seenInChain: unknown[] = [];
    const seenInGen: unknown[] = [];
    try {
      await loop.runUntilComplete(async () => {
        const x = loop.createFuture<void>();
        const a = loop.createTask(async () => {
          await x;
          await sleep(0);
        }, { name: 'A' });
        await sleep(0);
        loop.callSoon(() => {
          loop.callSoon(() => {
            let p: Promise<unknown> = Promise.resolve();
            for (let i = 0; i < 8; i++) p = p.then(() => seenInChain.push(currentTask()?.getName() ?? null));
          });
          x.setResult();
        });
        const g = loop.createTask(function* () {
          seenInGen.push(currentTask()?.getName());
          yield sleep(0);
          seenInGen.push(currentTask()?.getName());
        }, { name: 'G' });
        await a;
        await g;
      });
    } finally {
      loop.close();
    }
    expect(seenInChain).toEqual(Array(8).fill(null));
    expect(seenInGen).toEqual(['G', 'G']);
  });
});
