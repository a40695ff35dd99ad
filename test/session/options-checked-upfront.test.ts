/**
 * A session server's and a session's numeric options are checked where they are made, with a RangeError naming the
 * option. They were checked only inside each connection's `connectionMade` (the heartbeat, the write-buffer bound,
 * the token bucket) or inside the session's task (the backoff): `serveSessions({rate: 0})` listened happily and then
 * refused every client, which saw "the server closed the connection during or right after the handshake: most often
 * it refused this client's certificate" while the RangeError went to the server's exception handler once per
 * connection; a session with a bad `heartbeatInterval` or `backoff` retried until it gave up, never naming the
 * option.
 */
import { describe, expect, it } from 'vitest';
import { Keyring, SessionServer, openSession, serveSessions } from '../../src/index.js';
import { makeTestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';

function ring(): Keyring {
  const k = new Keyring();
  k.add('opts', Buffer.alloc(32, 0x21));
  return k;
}

describe('session options are checked up front', () => {
  const fx = useLoop();

  it.each([
    ['heartbeatInterval', { heartbeatInterval: 0 }],
    ['idleTimeout', { idleTimeout: -1 }],
    ['idleTimeout', { idleTimeout: Number.NaN }],
    ['maxWriteBuffer', { maxWriteBuffer: 0 }],
    ['rate', { rate: 0 }],
    ['burst', { burst: -5 }],
    ['burst', { burst: 0.5 }], // each message takes a whole token: it would refuse them all
    ['reconnectNotice', { reconnectNotice: -1 }],
    ['reconnectNotice', { reconnectNotice: Number.NaN }],
  ])('a session server with a bad %s throws RangeError when made', async (_name, bad) => {
    await fx.run(async () => {
      expect(() => new SessionServer({ keyring: ring(), loop: fx.loop, ...bad })).toThrow(RangeError);
    });
  });

  it.each([
    ['heartbeatInterval', { heartbeatInterval: -1 }],
    ['idleTimeout', { idleTimeout: 0 }],
    ['maxWriteBuffer', { maxWriteBuffer: -1 }],
    ['maxBufferedMessages', { maxBufferedMessages: 0 }],
    ['backoff.base', { backoff: { base: 0 } }],
    ['backoff.cap', { backoff: { base: 1, cap: 0.5 } }],
  ])('a session with a bad %s throws RangeError when opened', async (_name, bad) => {
    await fx.run(async () => {
      expect(() => openSession({ keyring: ring(), loop: fx.loop, port: 1, tls: {}, ...bad })).toThrow(RangeError);
    });
  });

  it('good options still make a server and a session', async () => {
    await fx.run(async () => {
      const server = new SessionServer({ keyring: ring(), loop: fx.loop, heartbeatInterval: 0.5, idleTimeout: 2, rate: 10, burst: 1,
        maxWriteBuffer: 1024, reconnectNotice: 0 });
      expect(server.draining).toBe(false);
      const s = openSession({ keyring: ring(), loop: fx.loop, connector: () => Promise.reject(new Error('no server in this test')), heartbeatInterval: 0.5,
        idleTimeout: 2, maxBufferedMessages: 1, backoff: { base: 0.1, cap: 0.1 } });
      await s.close();
    });
  });
});

describe('serveSessions with a bad option (real TLS)', () => {
  const fx = useLoop({ real: true });

  it('rejects with RangeError instead of listening and refusing every client', async () => {
    const ca = await makeTestCA();
    try {
      await fx.run(async () => {
        await expect(serveSessions({ keyring: ring(), tls: ca.serverOptions, rate: 0, logger: {} })).rejects.toThrow(RangeError);
      });
    } finally {
      await ca.cleanup();
    }
  });
});
