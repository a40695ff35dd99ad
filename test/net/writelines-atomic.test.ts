/**
 * `Transport.writelines()` with a chunk that is not bytes writes nothing.
 *
 * asyncio's `_SelectorSocketTransport.writelines` (CPython 3.13 Lib/asyncio/selector_events.py) builds
 * `[memoryview(data) for data in list_of_data]` before it extends its buffer, so a `str` anywhere in the list raises
 * TypeError with nothing queued (the rule test_selector_events.py `test_write_str` pins for `write`), and it checks
 * `_eof` first, so `writelines()` after `write_eof()` raises even for an empty list. Ours queued the chunks before
 * the bad one and threw without scheduling a flush: the bytes of a call that had failed sat counted in
 * `getWriteBufferSize()` and went to the peer with the next write or the close.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ProtocolBase, waitFor, wrapPromise } from '../../src/index.js';
import type { EventLoop } from '../../src/index.js';
import { useCleanups } from '../support/cleanups.js';
import { useLoop } from '../support/loop.js';

const T = 10;

/** A plain node:net peer that collects every byte of its one connection; `done` resolves with them at its end. */
async function collector(loop: EventLoop, cleanups: (() => void)[]): Promise<{ port: number; done: Promise<Buffer> }> {
  let resolve!: (b: Buffer) => void;
  const done = new Promise<Buffer>((r) => (resolve = r));
  const srv = net.createServer((s) => {
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('end', () => s.end());
  });
  await wrapPromise(new Promise<void>((r) => srv.listen(0, '127.0.0.1', r)), loop);
  cleanups.push(() => srv.close());
  return { port: (srv.address() as AddressInfo).port, done };
}

describe('writelines is all or nothing', () => {
  const lf = useLoop({ real: true });
  const cleanups = useCleanups();

  it('a non-bytes chunk after good ones throws TypeError and queues nothing (selector_events writelines; test_write_str)', async () => {
    await lf.run(async () => {
      const peer = await collector(lf.loop, cleanups);
      const [t] = await lf.loop.createConnection(() => new ProtocolBase(), '127.0.0.1', peer.port);
      expect(() => t.writelines([Buffer.from('a'), Buffer.from('b'), 'c' as unknown as Uint8Array])).toThrow(TypeError);
      expect(t.getWriteBufferSize()).toBe(0);
      t.write(Buffer.from('z'));
      t.close();
      const got = await waitFor(wrapPromise(peer.done, lf.loop), T);
      expect(got.toString()).toBe('z');
    });
  });

  it('writelines() after writeEof() throws even for an empty list (selector_events writelines checks _eof first)', async () => {
    await lf.run(async () => {
      const peer = await collector(lf.loop, cleanups);
      const [t] = await lf.loop.createConnection(() => new ProtocolBase(), '127.0.0.1', peer.port);
      t.writeEof();
      expect(() => t.writelines([])).toThrow(/after writeEof/);
      t.close();
      const got = await waitFor(wrapPromise(peer.done, lf.loop), T);
      expect(got.length).toBe(0);
    });
  });
});
