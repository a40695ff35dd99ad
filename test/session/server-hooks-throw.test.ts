/**
 * A session server's onConnection / onDisconnect hooks are user code: a throw is reported to the loop's exception
 * handler and the server carries on (as a client session's hooks do, test/session/hooks.test.ts), so a bug in a
 * metrics hook does not drop every client it is called for. Real mutual TLS on 127.0.0.1.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x4f);

describe('SessionServer hooks that throw', () => {
  it('onConnection throws: reported, and the connection is served as usual', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring, { onConnection: () => { throw new Error('metrics bug'); } });
      server.handle('echo', (p: unknown) => p);
      const s = sx.open(keyring, server.port!);
      expect(await s.call('echo', 1, { timeout: 3 })).toBe(1);
      expect(s.connects).toBe(1); // the first connection, never dropped
      expect(server.connections.size).toBe(1);
      const records = fx.take();
      expect(records.map((r) => `${r.message}: ${String(r.exception)}`)).toEqual(
        ["the session server's onConnection hook threw: Error: metrics bug"]);
    });
  }, 20_000);

  it('onDisconnect throws: reported; the connection is forgotten and its identity slot freed', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring, { onDisconnect: () => { throw new Error('metrics bug'); } });
      server.handle('echo', (p: unknown) => p);
      const s = sx.open(keyring, server.port!);
      expect(await s.call('echo', 1)).toBe(1);
      await s.close();
      for (let i = 0; i < 300 && server.connections.size > 0; i++) await sleep(0.01);
      expect(server.connections.size).toBe(0);
      expect(server.counter.identities).toBe(0);
      const records = fx.take();
      expect(records.map((r) => `${r.message}: ${String(r.exception)}`)).toEqual(
        ["the session server's onDisconnect hook threw: Error: metrics bug"]);
    });
  }, 20_000);
});
