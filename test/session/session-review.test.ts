/**
 * Promised session behaviours that the other files left untested, over real mutual TLS on 127.0.0.1 with the
 * test CA's pinned certificates (test/support/ca.ts), as session-tls.test.ts does.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { sleep } from '../../src/loop/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { serveSessions } from '../../src/session/session-server.js';
import type { SessionServer, SessionServerOptions } from '../../src/session/session-server.js';
import { openSession } from '../../src/session/session.js';
import type { Session, SessionOptions } from '../../src/session/session.js';

const fx = useLoop({ real: true });
let ca: TestCA;
const servers: SessionServer[] = [];
const sessions: Session[] = [];

beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
afterAll(async () => { await ca?.cleanup(); });
afterEach(async () => {
  const ss = sessions.splice(0);
  const vs = servers.splice(0);
  await fx.loop.runUntilComplete(async () => {
    await Promise.all(ss.map((s) => s.close()));
    for (const v of vs) await v.close();
  });
});

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 0x44));
  return k;
}

const quiet = { logger: {}, heartbeatInterval: 0.1, idleTimeout: 5 } as const;

async function serve(keyring: Keyring, extra: Partial<SessionServerOptions> = {}): Promise<SessionServer> {
  const s = await serveSessions({ keyring, tls: ca.serverOptions, ...quiet, ...extra });
  servers.push(s);
  return s;
}

function open(keyring: Keyring, port: number, extra: Partial<SessionOptions> = {}): Session {
  const s = openSession({ keyring, port, tls: ca.clientOptions, ...quiet, shutdownTimeout: 0.5,
    backoff: { base: 0.02, cap: 0.2 }, ...extra });
  sessions.push(s);
  return s;
}

describe('session cancellation', () => {
  it('a task cancelled before its first step still fails the queued calls and ends messages', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      server.handle('echo', (x: unknown) => x);
      const s = open(keyring, server.port!);
      const queued = s.call('echo', 1);
      const it = s.messages[Symbol.asyncIterator]();
      const next = it.next();
      s.task.cancel(); // before the loop ran the task's first step
      expect(await s.closed).toBeNull();
      const settled = await Promise.race([
        queued.then(() => 'resolved', (e: unknown) => e),
        sleep(2).then(() => 'still waiting after 2 s'),
      ]);
      expect(settled).toMatchObject({ code: 'TW_SESSION_CLOSED' });
      expect(await Promise.race([next, sleep(2).then(() => 'still waiting')])).toMatchObject({ done: true });
      await expect(s.call('echo', 2)).rejects.toMatchObject({ code: 'TW_SESSION_CLOSED' });
    });
  });
});
