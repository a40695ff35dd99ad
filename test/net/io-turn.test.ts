/**
 * Where a read's turn runs (docs/event-loop-internals.md, "How a turn sits in libuv's phases"): a socket read that
 * wakes an idle loop runs the turn in its own `'data'` callback and leaves no `setImmediate` behind it, so a
 * request/response pays no check-phase callback per read; reads that find the loop busy (libuv did not wait since
 * the last such turn) share one turn in the check phase. The order of callbacks is asyncio's either way. The peer
 * is a plain `node:net` echo in a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ProtocolBase, waitFor } from '../../src/index.js';
import type { Future, Transport } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

const ECHO_CHILD = `
const net = require('node:net');
const srv = net.createServer((s) => { s.setNoDelay(true); s.on('data', (d) => { if (process.argv[1] === 'slow') setTimeout(() => s.write(d), 2); else s.write(d); }); s.on('error', () => {}); });
srv.listen(0, '127.0.0.1', () => process.stdout.write(srv.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
`;

let child: ChildProcess | null = null;
afterEach(() => {
  child?.kill();
  child = null;
});

/** Starts the echo child; `slow` answers each read after 2 ms, so this side's loop surely waits for every answer. */
function startEcho(slow = false): Promise<number> {
  child = spawn(process.execPath, ['-e', ECHO_CHILD, slow ? 'slow' : 'fast'], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child!.once('error', reject);
    child!.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
}

/**
 * Counts the `setImmediate` calls made, and the callbacks that fired, while `fn` runs (the wrapper returns Node's own
 * Immediate, so clearImmediate keeps working).
 */
async function countImmediates<T>(fn: () => Promise<T>): Promise<[T, { armed: number; fired: number }]> {
  const original = globalThis.setImmediate;
  const counts = { armed: 0, fired: 0 };
  const counting = ((cb: (...a: unknown[]) => void, ...args: unknown[]) => {
    counts.armed++;
    return original(() => {
      counts.fired++;
      cb(...args);
    });
  }) as unknown as typeof setImmediate;
  globalThis.setImmediate = counting;
  try {
    return [await fn(), counts];
  } finally {
    globalThis.setImmediate = original;
  }
}

class Tap extends ProtocolBase {
  readonly seenIn: number[] = [];
  readonly loopIterations: () => number;
  readonly got: () => void;
  constructor(loopIterations: () => number, got: () => void) {
    super();
    this.loopIterations = loopIterations;
    this.got = got;
  }
  override dataReceived(): void {
    this.seenIn.push(this.loopIterations());
    this.got();
  }
}

class PingPong extends ProtocolBase {
  left: number;
  readonly order: string[] = [];
  readonly done: Future<void>;
  constructor(count: number, done: Future<void>) {
    super();
    this.left = count;
    this.done = done;
  }
  override connectionMade(t: Transport): void {
    super.connectionMade(t);
    t.write(Buffer.from('p'));
  }
  override dataReceived(d: Buffer): void {
    this.order.push(d.toString());
    if (--this.left === 0) this.done.setResult();
    else this.transport!.write(Buffer.from('p'));
  }
}

describe('a read runs the turn in its own callback', () => {
  const fx = useLoop({ real: true });

  it('a read that woke a waiting loop arms and fires no setImmediate (the old phase marker fired one per read)', async () => {
    const port = await startEcho(true);
    const N = 50;
    const [proto, counts] = await fx.run(() =>
      countImmediates(async () => {
        const done = fx.loop.createFuture<void>();
        const p = new PingPong(N, done);
        const [t] = await fx.loop.createConnection(() => p, '127.0.0.1', port);
        await waitFor(done, 20);
        t.close();
        return p;
      }),
    );
    expect(proto.order).toHaveLength(N);
    expect(proto.order.every((s) => s === 'p')).toBe(true);
    // Connecting, closing and the task's own wake-ups take a handful; one per read would be >= N. Until 2026-12-03
    // each read also armed one (its callSoon's wake-up) and cleared it again to run the turn.
    expect(counts.fired).toBeLessThan(N / 4);
    expect(counts.armed).toBeLessThan(N / 4);
  });

  it('reads of many sockets that find the loop busy share one turn (libuv did not wait between them)', async () => {
    const port = await startEcho();
    const N = 32;
    const loop = fx.loop;
    await fx.run(async () => {
      let left = N;
      const all = loop.createFuture<void>();
      const got = (): void => {
        if (--left === 0) all.setResult();
      };
      const taps: Tap[] = [];
      const transports: Transport[] = [];
      for (let i = 0; i < N; i++) {
        const tap = new Tap(() => loop.iterations, got);
        const [t] = await loop.createConnection(() => tap, '127.0.0.1', port);
        taps.push(tap);
        transports.push(t);
      }
      // One byte on each, then hold the thread so every echo is in the kernel before libuv polls again.
      loop.callSoon(() => {
        for (const t of transports) t.write(Buffer.from('x'));
        loop.deferToIterationEnd(() => {
          const until = performance.now() + 50;
          while (performance.now() < until) {
            // the 32 echoes arrive meanwhile
          }
        });
      });
      await waitFor(all, 20);
      const iterations = new Set(taps.flatMap((t) => t.seenIn));
      // One turn per read would put the 32 deliveries in 32 iterations; sharing puts them in about two.
      expect(iterations.size).toBeLessThan(N / 2);
      for (const t of transports) t.close();
    });
  });
});
