/**
 * SessionServer.drain({timeout}) checks its timeout before it does anything. A NaN timeout (a config value that did
 * not parse) made the drain's grace NaN, so no connection was ever let go, and its poll slept for NaN seconds; a
 * negative one was taken as "now". Now both are a RangeError (Infinity stays allowed: wait for every call), thrown before the server stops listening or sends a
 * GOAWAY, so the caller can drain again with a good value.
 */
import { describe, expect, it } from 'vitest';
import { Keyring, SessionServer } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('SessionServer.drain with a bad timeout', () => {
  const fx = useLoop();

  it.each([Number.NaN, -1, Number.NEGATIVE_INFINITY])('timeout %s: RangeError, and the server is not draining', async (timeout) => {
    await fx.run(async () => {
      const keyring = new Keyring();
      keyring.add('drain', Buffer.alloc(32, 0x44));
      const server = new SessionServer({ keyring, loop: fx.loop });
      await expect(server.drain({ timeout })).rejects.toThrow(RangeError);
      expect(server.draining).toBe(false);
      expect(await server.drain({ timeout: 0.1 })).toEqual({ connections: 0, closedInTime: 0, closedAtTimeout: 0 });
    });
  });
});
