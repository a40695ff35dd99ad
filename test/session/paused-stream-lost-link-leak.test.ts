/**
 * `session.messages` is bounded: once it holds `maxBufferedMessages` the connection that filled it stops reading
 * until the consumer takes half of them. A connection lost meanwhile (its client stopped reading, so it stopped
 * hearing the server: PeerTimeout at idleTimeout, then a reconnect whose first messages fill the stream again) stayed
 * in the stream's set of paused connections until the consumer came back: one dead connection (its protocol, its
 * transport, its TLS socket) kept per reconnect, for as long as nobody read the stream. Now a lost connection leaves
 * that set.
 *
 * Real mutual TLS on 127.0.0.1 with the test CA; counts of connections still reachable after a garbage collection
 * (WeakRefs), no timed assertions.
 */
import { describe, expect, it } from 'vitest';
import { collectGarbage, useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x3e);

/** Waits (bounded: `rounds` × 10 ms) until `cond` holds; returns whether it did. */
async function until(cond: () => boolean, rounds = 1000): Promise<boolean> {
  for (let i = 0; i < rounds && !cond(); i++) await sleep(0.01);
  return cond();
}

describe('a full message stream and reconnects', () => {
  it('keeps no lost connection alive while nobody reads the stream', async () => {
    const links: WeakRef<object>[] = [];
    const RECONNECTS = 6;
    await fx.run(async () => {
      const keyring = sx.ring();
      // Each connection gets more notifications than the stream holds, at once: nobody handles 'tick'.
      const server = await sx.serve(keyring, {
        onConnection: (c) => { for (let i = 0; i < 8; i++) c.notify('tick', i); },
      });
      const s = sx.open(keyring, server.port!, {
        maxBufferedMessages: 4, idleTimeout: 0.5,
        onConnected: () => { if (s.link !== null) links.push(new WeakRef(s.link)); },
      });
      expect(await until(() => links.length > RECONNECTS)).toBe(true);
      expect((s.messages as unknown as { size: number }).size).toBeGreaterThanOrEqual(4); // never read
    });
    await collectGarbage();
    const alive = links.filter((r) => r.deref() !== undefined).length;
    // The current connection, and perhaps the one just lost: not one per reconnect.
    expect(alive).toBeLessThanOrEqual(2);
  }, 60_000);
});
