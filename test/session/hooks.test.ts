/**
 * A client session's onConnected / onDisconnected hooks (asked for in a game developer's trial: the only way to see a
 * reconnect was polling `connects`): the first connect, a loss with its reason, the reconnect; a make-before-break
 * move is not a disconnect; a throwing hook goes to the exception handler and the session carries on. And its `name`.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/loop/index.js';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x3b);

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !pred(); i++) await sleep(0.01);
  expect(pred()).toBe(true);
}

describe('Session hooks', () => {
  it('connect, loss (with its reason), reconnect; calls keep working', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      server.handle('echo', (p: unknown) => p);
      const events: string[] = [];
      const s = sx.open(keyring, server.port!, {
        onConnected: (i) => events.push(`connected ${i.connects} ${String(i.reconnect)}`),
        onDisconnected: (e) => events.push(`disconnected ${(e as { code?: string }).code ?? e.name}`),
      });
      await s.whenConnected();
      expect(events).toEqual(['connected 1 false']);
      expect(s.name).toBe(`session 127.0.0.1:${server.port!}`);
      [...server.connections][0]!.transport!.abort();
      await until(() => events.length === 3);
      expect(events[1]).toMatch(/^disconnected /);
      expect(events[2]).toBe('connected 2 true');
      expect(await s.call('echo', 'again')).toBe('again');
    });
  }, 20_000);

  it('a throwing hook is reported and the session still connects', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      server.handle('echo', (p: unknown) => p);
      const s = sx.open(keyring, server.port!, { name: 'lobby', onConnected: () => { throw new Error('hook bug'); } });
      expect(s.name).toBe('lobby');
      expect(await s.call('echo', 1)).toBe(1);
      const records = fx.take();
      expect(records.map((r) => `${r.message}: ${String(r.exception)}`)).toEqual(["the session's onConnected hook threw: Error: hook bug"]);
    });
  }, 20_000);
});
