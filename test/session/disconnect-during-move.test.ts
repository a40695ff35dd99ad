/**
 * onDisconnected when the session's connection ends while a make-before-break connect is in flight (the RECONNECT
 * notice came, a renewed certificate is there, the next connection is being opened): the hook must still fire
 * (docs/sessions.md: "its connection was lost or got GOAWAY"), once, before the onConnected of the reconnect, as it
 * does when no move is under way. Real mutual TLS on 127.0.0.1; the connector holds the next connect until the old
 * connection has ended, so the order of events is fixed without timing.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import type { Future } from '../../src/loop/index.js';
import type { ConnectionOptions } from 'node:tls';
import type { SessionConnector } from '../../src/session/session.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x2c);

async function until(pred: () => boolean): Promise<boolean> {
  for (let i = 0; i < 500 && !pred(); i++) await sleep(0.01);
  return pred();
}

/** A session whose certificate is noticed at once and renewed; its second connect waits for `gate`. */
async function movingSession(extraServer: { reconnectNotice: number }) {
  const keyring = sx.ring();
  const short = await sx.ca.issueClient('player/move', { lifetime: 20 });
  const renewed = await sx.ca.issueClient('player/move');
  const server = await sx.serve(keyring, extraServer);
  server.handle('echo', (p: unknown) => p);
  let tls: ConnectionOptions = short.options;
  const gate: Future<void> = fx.loop.createFuture<void>();
  const connector: SessionConnector = async (factory, attempt) => {
    if (attempt === 2) await gate;
    return fx.loop.createConnection(factory, '127.0.0.1', server.port!, { ssl: tls });
  };
  const events: string[] = [];
  const s = sx.open(keyring, server.port!, {
    tls: () => tls, connector,
    onConnected: (i) => events.push(`connected ${i.connects} ${String(i.reconnect)}`),
    onDisconnected: (e) => events.push(`disconnected ${(e as { code?: string }).code ?? e.name}`),
  });
  await s.whenConnected();
  expect(await until(() => s.link?.notice != null)).toBe(true); // it expires within reconnectNotice
  tls = renewed.options; // the renewal: the session opens its next connection (held by the gate)
  expect(await until(() => s.attempts === 2)).toBe(true);
  return { server, s, gate, events };
}

describe('the connection ends while the next one is being opened', () => {
  it('lost: onDisconnected fires before the onConnected of the new connection', async () => {
    await fx.run(async () => {
      const { server, s, gate, events } = await movingSession({ reconnectNotice: 60 });
      const old = s.link!;
      [...server.connections][0]!.transport!.abort(); // the network drops the old connection
      expect(await until(() => old.isLost)).toBe(true);
      gate.setResult(undefined);
      await until(() => events.length >= 3);
      expect(await s.call('echo', 'again')).toBe('again');
      expect(events.map((e) => e.replace(/^disconnected .*/, 'disconnected'))).toEqual(
        ['connected 1 false', 'disconnected', 'connected 2 true']);
    });
  }, 20_000);

  it('GOAWAY (a drain) and the next connect refused: onDisconnected fires, once', async () => {
    await fx.run(async () => {
      const { server, s, gate, events } = await movingSession({ reconnectNotice: 60 });
      const old = s.link!;
      const drained = server.drain({ timeout: 0.5 });
      expect(await until(() => old.goaway !== null)).toBe(true);
      gate.setResult(undefined); // the next connect now finds the listener gone
      await drained;
      await until(() => events.length >= 2);
      await sleep(0.2); // a few refused reconnects later: still one disconnect
      expect(events).toEqual(['connected 1 false', 'disconnected TW_SESSION_CLOSED']);
    });
  }, 20_000);
});
