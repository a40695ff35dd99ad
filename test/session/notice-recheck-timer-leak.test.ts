/**
 * A session whose client certificate got its RECONNECT notice and has no renewal yet (a `tls` that still returns the
 * same certificate) asks for one again every min(1 s, heartbeat interval) until the connection closes at notAfter
 * (the whole notice window: 30 s by default, as long as a server configures). Each recheck used to add one more
 * done callback to the connection's `ended` Future, never removed while the connection lived (31 more after 30
 * rechecks): they grew for as long as the notice window lasted. Now one recheck timer is pending at a time,
 * cancelled when the connection ends, and nothing is left on `ended` per recheck.
 *
 * Real mutual TLS on 127.0.0.1 with the test CA; counts only (done callbacks, live loop timers), no timed assertions.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import type { Future } from '../../src/loop/index.js';
import type { EventLoop } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x3d);

/** Waits (bounded: `rounds` × 10 ms) until `cond` holds; returns whether it did. */
async function until(cond: () => boolean, rounds = 500): Promise<boolean> {
  for (let i = 0; i < rounds && !cond(); i++) await sleep(0.01);
  return cond();
}

/** Done callbacks registered on `f` (internal fields: there is no public view). */
function callbacks(f: Future<unknown>): number {
  const x = f as unknown as { _cb0: unknown; _cbs: unknown[] | null };
  return (x._cb0 === null ? 0 : 1) + (x._cbs?.length ?? 0);
}

/** Timers scheduled on the loop and not cancelled (internal heap: there is no public view). */
function liveTimers(loop: EventLoop): number {
  const heap = (loop as unknown as { _heap: { size: number; cancelled: number } })._heap;
  return heap.size - heap.cancelled;
}

describe('rechecking for a renewal during a RECONNECT notice', () => {
  it('leaves no callback behind per recheck and keeps one recheck timer pending', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const short = await sx.ca.issueClient('player/recheck', { lifetime: 30 });
      // The notice comes at once (the certificate expires within reconnectNotice); no renewal ever comes.
      const server = await sx.serve(keyring, { reconnectNotice: 120 });
      server.handle('echo', (p: unknown) => p);
      const s = sx.open(keyring, server.port!, { tls: () => short.options });
      await s.whenConnected();
      const link = s.link!;
      expect(await until(() => link.notice !== null)).toBe(true);
      // A few rechecks (every heartbeat interval, 0.1 s here) settle the baseline.
      await sleep(0.35);
      const baseCallbacks = callbacks(link.ended as Future<unknown>);
      const baseTimers = liveTimers(fx.loop);
      // 30 more rechecks (calls in between: the connection keeps serving).
      for (let i = 0; i < 30; i++) {
        expect(await s.call('echo', i)).toBe(i);
        await sleep(0.1);
      }
      expect(s.attempts).toBe(1); // still the first connection: nothing renewed, nothing reconnected
      expect(s.link).toBe(link);
      expect(callbacks(link.ended as Future<unknown>)).toBeLessThanOrEqual(baseCallbacks);
      expect(liveTimers(fx.loop)).toBeLessThanOrEqual(baseTimers);
    });
  }, 30_000);
});
