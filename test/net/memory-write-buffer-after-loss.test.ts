/**
 * `getWriteBufferSize()` of a memory transport whose bytes will never be read: a transport that lost its connection
 * holds nothing (asyncio clears its buffer in `_force_close` / `_call_connection_lost`; the socket transport reports 0
 * once its socket is destroyed). A memory end counts the bytes still in its peer's inbox and forgets them when it
 * is gone; but when it went away first, the peer's later drain of those bytes took them off again and the gone end's
 * count went negative (-100 here). The first case pins the other order.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryPair, sleep } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { Recorder } from './contract-suite.js';

describe('memory pair: write-buffer size once the connection is lost', () => {
  const lf = useLoop();

  it('the peer aborts with our bytes unread: 0 once we lost the connection', async () => {
    await lf.run(async () => {
      const ra = new Recorder(lf.loop);
      const rb = new Recorder(lf.loop);
      const [a, b] = createMemoryPair(lf.loop, ra, rb);
      await sleep(0);
      b.pauseReading();
      a.write(Buffer.alloc(100));
      await sleep(0.01);
      expect(a.getWriteBufferSize()).toBe(100);
      b.abort();
      await ra.lost;
      await rb.lost;
      expect(a.getWriteBufferSize()).toBe(0);
      expect(b.getWriteBufferSize()).toBe(0);
    });
  });

  it('we abort with our bytes unread, the peer then reads them: never negative, 0 on both ends', async () => {
    await lf.run(async () => {
      const ra = new Recorder(lf.loop);
      const rb = new Recorder(lf.loop);
      const [a, b] = createMemoryPair(lf.loop, ra, rb);
      await sleep(0);
      b.pauseReading();
      a.write(Buffer.alloc(100));
      await sleep(0.01);
      a.abort();
      await ra.lost;
      b.resumeReading();
      await rb.lost;
      expect(a.getWriteBufferSize()).toBe(0);
      expect(String(a)).toBe('<MemoryTransport closed>');
      expect(b.getWriteBufferSize()).toBe(0);
    });
  });
});
