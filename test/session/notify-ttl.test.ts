/**
 * A session notification's ttl counts from `notify()`, not from the moment a connection takes it (found by a game
 * developer's trial: an input sent with `ttl: 0.5` during a reconnect waited 2 s in the queue, was signed when
 * written, and the server applied a 2 s-old input as a fresh one). Now one that waited goes out with what is left
 * of its ttl, and one whose ttl ran out first fails with TimeoutError, unsent. A bad ttl is refused at once.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/loop/index.js';
import type { RpcMessageMeta } from '../../src/wire/rpc.js';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';

const fx = useLoop({ real: true });
const { ring, serve, open } = useMtlsSessions(fx, 0x5d);

/** A 127.0.0.1 port nobody listens on right now (the session connects to it before the server is there). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe('Session.notify ttl while waiting for a connection', () => {
  it('a notification whose ttl ran out in the queue fails TimeoutError unsent; one that did not carries the rest', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const port = await freePort();
      const s = open(keyring, port);
      const stale = s.notify('input', { seq: 1 }, { ttl: 0.2 });
      const kept = s.notify('input', { seq: 2 }, { ttl: 30 });
      await sleep(0.6);
      const got: { seq: number; lifetime: number }[] = [];
      const server = await serve(keyring, { port });
      server.onNotify('input', (p: { seq: number }, ctx: { meta: RpcMessageMeta }) => {
        got.push({ seq: p.seq, lifetime: ctx.meta.expiresAt - ctx.meta.issuedAt });
      });
      await expect(stale).rejects.toMatchObject({ code: 'TW_TIMEOUT', message: 'notify input expired (ttl 0.2 s) while waiting for a connection: not sent' });
      await kept;
      for (let i = 0; i < 200 && got.length === 0; i++) await sleep(0.01);
      expect(got.map((g) => g.seq)).toEqual([2]);
      // Signed with what was left of its 30 s: at least the 0.6 s it waited less (ms precision on the wire).
      expect(got[0]!.lifetime).toBeLessThanOrEqual(29.4 + 0.002);
      expect(got[0]!.lifetime).toBeGreaterThan(20);
    });
  }, 30_000);

  it('sent at once on an open connection, the ttl is the whole of it', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      const got: number[] = [];
      server.onNotify('input', (_p: unknown, ctx: { meta: RpcMessageMeta }) => {
        got.push(ctx.meta.expiresAt - ctx.meta.issuedAt);
      });
      const s = open(keyring, server.port!);
      await s.whenConnected();
      await s.notify('input', {}, { ttl: 7 });
      for (let i = 0; i < 200 && got.length === 0; i++) await sleep(0.01);
      expect(got[0]).toBeCloseTo(7, 2);
    });
  }, 30_000);
});
