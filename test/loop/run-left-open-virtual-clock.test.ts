/**
 * run()'s shutdown gives the servers and transports main left open up to LEFT_OPEN_GRACE (1 s) to report
 * `connectionLost` after it aborts them. That grace is for the kernel, which closes sockets in real time, but it
 * was measured with `sleep()` on the loop's clock: with `run(main, {clock: new VirtualClock()})` (time moves only
 * by `advance()`) the first `sleep(0.005)` never ended and run() never returned, though every protocol had long
 * seen `connectionLost`. With an autojump clock each sleep jumped at once, so the grace was no real time at all.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolBase, VirtualClock, getRunningLoop, run } from '../../src/index.js';

class Rec extends ProtocolBase {
  lost: (Error | null)[] = [];
  override connectionLost(e: Error | null): void {
    this.lost.push(e);
  }
}

async function leaveOpen(clock: VirtualClock): Promise<{ outcome: string; protocols: Rec[]; warnings: string[] }> {
  const protocols: Rec[] = [];
  const warnings: string[] = [];
  const finished = run(
    async () => {
      const loop = getRunningLoop();
      const server = await loop.createServer(() => {
        const p = new Rec();
        protocols.push(p);
        return p;
      }, '127.0.0.1', 0);
      const port = (server.sockets[0]!.address() as { port: number }).port;
      const [, p] = await loop.createConnection(() => new Rec(), '127.0.0.1', port);
      protocols.push(p);
      return 'done';
    },
    { clock, handleSignals: false, logger: { warn: (m) => warnings.push(m), error: (m) => warnings.push(`error: ${m}`) } },
  );
  let guard: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    finished,
    new Promise<string>((resolve) => {
      guard = setTimeout(() => resolve('run() did not return within 3 s'), 3000);
    }),
  ]);
  clearTimeout(guard);
  return { outcome, protocols, warnings };
}

describe('run() shutdown of what main left open, on a virtual clock', () => {
  it('a clock moved only by advance(): run() returns once the aborted sockets reported connectionLost', async () => {
    const { outcome, protocols, warnings } = await leaveOpen(new VirtualClock());
    expect(outcome).toBe('done');
    expect(warnings).toEqual([expect.stringMatching(/main returned with 1 server and 2 transports still open/)]);
    expect(protocols).toHaveLength(2);
    for (const p of protocols) expect(p.lost).toEqual([null]);
  });

  it('an autojump clock: the same, and virtual time does not move for the grace', async () => {
    const clock = new VirtualClock({ autojump: true });
    const { outcome, protocols } = await leaveOpen(clock);
    expect(outcome).toBe('done');
    for (const p of protocols) expect(p.lost).toEqual([null]);
    expect(clock.time()).toBe(0);
  });
});
