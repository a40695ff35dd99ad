/**
 * An idempotent call whose first run is still going when its connection is lost: the client sends it again on each
 * next connection with the same key, and each copy waits on the server for the first run's outcome. A copy's wait
 * stayed registered after its own connection had closed, holding that connection (its endpoint, protocol,
 * transport) until the first run finished: one dead connection kept per reconnect while a slow handler ran. Now a
 * closed connection's waits are dropped at its close.
 *
 * Real mutual TLS on 127.0.0.1 with the test CA; counts of server connections still reachable after a garbage
 * collection (WeakRefs), no timed assertions.
 */
import { describe, expect, it } from 'vitest';
import { collectGarbage, useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import type { Future } from '../../src/loop/index.js';
import type { SessionConnection } from '../../src/session/session-server.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x40);

/** Waits (bounded: `rounds` × 10 ms) until `cond` holds; returns whether it did. */
async function until(cond: () => boolean, rounds = 500): Promise<boolean> {
  for (let i = 0; i < rounds && !cond(); i++) await sleep(0.01);
  return cond();
}

describe('an idempotent call retried on each reconnect while its first run goes on', () => {
  it('keeps no closed connection alive for its waiting copies', async () => {
    const conns: WeakRef<SessionConnection>[] = [];
    const RECONNECTS = 6;
    let gate: Future<void> | null = null;
    let copies = 0;
    await fx.run(async () => {
      gate = fx.loop.createFuture<void>();
      const keyring = sx.ring();
      const server = await sx.serve(keyring, { onConnection: (c) => { conns.push(new WeakRef(c)); } });
      let runs = 0;
      server.handle('slow', async () => {
        runs += 1;
        await gate;
        return 'done';
      });
      const s = sx.open(keyring, server.port!);
      await s.whenConnected();
      const call = s.call('slow', null, { idempotent: true, timeout: null });
      expect(await until(() => runs === 1)).toBe(true);
      for (let i = 0; i < RECONNECTS; i++) {
        const c = [...server.connections][0]!;
        // The copy sent on this connection waits there (owedReplies counts it), then the connection is cut.
        if (i > 0) expect(await until(() => (c.rpc?.owedReplies ?? 0) > 0)).toBe(true);
        c.transport!.abort();
        expect(await until(() => server.connections.size === 1 && [...server.connections][0] !== c)).toBe(true);
        copies += 1;
      }
      const last = [...server.connections][0]!;
      expect(await until(() => (last.rpc?.owedReplies ?? 0) > 0)).toBe(true);
      await sleep(0.05);
      await collectGarbage();
      // The first connection (its handler still runs with it) and the current one: not one per reconnect.
      const alive = conns.filter((r) => r.deref() !== undefined).length;
      gate.setResult(undefined);
      expect(await call).toBe('done');
      expect(runs).toBe(1);
      expect(alive).toBeLessThanOrEqual(2);
    });
    expect(copies).toBe(RECONNECTS);
  }, 60_000);
});
