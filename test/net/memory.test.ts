/**
 * The in-memory pair on a virtual clock (trio's memory_stream_pair + autojump_clock): time-dependent transport
 * behaviour is exact and instant, with no kernel sockets involved (autojump can leap while bytes sit in the kernel).
 */
import { describe, expect, it } from 'vitest';
import { createMemoryPair, SSL_SHUTDOWN_TIMEOUT, waitFor } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { Recorder } from './contract-suite.js';

describe('memory pair on the virtual clock', () => {
  const lf = useLoop();

  it('close() waits for the peer EOF, and aborts with TimeoutError after exactly the shutdown timeout', async () => {
    await lf.run(async () => {
      const a = new Recorder(lf.loop);
      const b = new Recorder(lf.loop);
      b.keepOpenOnEof = true; // b never closes its side
      const [ta] = createMemoryPair(lf.loop, a, b);
      await a.made;
      const t0 = lf.loop.time();
      ta.close();
      const exc = await waitFor(a.lost, 3600);
      expect(exc).toMatchObject({ code: 'TW_TIMEOUT' });
      expect(lf.loop.time() - t0).toBe(SSL_SHUTDOWN_TIMEOUT);
      await waitFor(b.lost, 1);
      expect(b.events).toEqual(['CM', 'ER', 'CL:null']);
    });
  });

  it('a custom shutdownTimeout applies; a peer that closes promptly ends it at once', async () => {
    await lf.run(async () => {
      const a = new Recorder(lf.loop);
      const b = new Recorder(lf.loop);
      const [ta] = createMemoryPair(lf.loop, a, b, { shutdownTimeout: 2, names: ['left', 'right'] });
      await a.made;
      expect(ta.getExtraInfo('peername')).toBe('right');
      const t0 = lf.loop.time();
      ta.close();
      expect(await waitFor(a.lost, 10)).toBeNull();
      expect(lf.loop.time() - t0).toBe(0);
    });
  });
});
