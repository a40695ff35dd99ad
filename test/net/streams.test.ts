/**
 * Streams. The StreamReader cases are ports of CPython 3.13 Lib/test/test_asyncio/test_streams.py
 * (`StreamTests.test_read*`, `test_readline*`, `test_readuntil*`, `test_readexactly*`, `test_exception*`,
 * `test_at_eof`, `test_start_server`, `test_start_tls`, `test_async_writer_api_exception_after_close`,
 * `test_eof_feed_when_closing_writer`), run on a virtual-clock loop; the network cases run over real TCP and TLS.
 * test/net/streams-hunt.test.ts ports the rest (`test_multiple_drain`, `test_drain_raises`, `test_wait_closed_*`, …).
 */
import { describe, expect, it } from 'vitest';
import {
  createMemoryPair, IncompleteReadError, LimitOverrunError, openConnection, sleep, startServer, StreamReader,
  StreamReaderProtocol, StreamWriter, waitFor,
} from '../../src/index.js';
import type { AddressInfo } from 'node:net';
import type { Server } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { tlsFixture } from '../support/tls-fixture.js';

const DATA = Buffer.from('line1\nline2\nline3\n');
const fx = tlsFixture();

/** What the reader still holds (consumes it). */
async function rest(r: StreamReader): Promise<string> {
  return r.bufferedSize === 0 ? '' : (await r.read(r.bufferedSize)).toString();
}

describe('StreamReader (ports of test_streams.py)', () => {
  const lf = useLoop();
  const reader = (limit?: number): StreamReader => new StreamReader({ loop: lf.loop, ...(limit ? { limit } : {}) });

  it('feed empty / non-empty data', async () => {
    const s = reader();
    s.feedData(Buffer.alloc(0));
    expect(s.bufferedSize).toBe(0);
    s.feedData(DATA);
    expect(await lf.run(() => rest(s))).toBe(DATA.toString());
  });

  it('read(0) returns empty without waiting; read(n) waits for data', async () => {
    await lf.run(async () => {
      const s = reader();
      s.feedData(DATA);
      expect((await s.read(0)).length).toBe(0);
      expect(s.bufferedSize).toBe(DATA.length);
      const s2 = reader();
      const task = lf.loop.createTask(() => s2.read(30));
      lf.loop.callSoon(() => s2.feedData(DATA));
      expect((await task).toString()).toBe(DATA.toString());
    });
  });

  it('read: line breaks, EOF, until EOF, exception', async () => {
    await lf.run(async () => {
      const s = reader();
      s.feedData(Buffer.from('line1'));
      s.feedData(Buffer.from('line2'));
      expect((await s.read(5)).toString()).toBe('line1');
      expect(await rest(s)).toBe('line2');

      const e = reader();
      const t = lf.loop.createTask(() => e.read(1024));
      lf.loop.callSoon(() => e.feedEof());
      expect((await t).length).toBe(0);
      expect(e.atEof()).toBe(true);

      const u = reader();
      const all = lf.loop.createTask(() => u.read(-1));
      lf.loop.callSoon(() => {
        u.feedData(Buffer.from('chunk1\n'));
        u.feedData(Buffer.from('chunk2'));
        u.feedEof();
      });
      expect((await all).toString()).toBe('chunk1\nchunk2');

      const x = reader();
      x.feedData(Buffer.from('line\n'));
      expect((await x.read(2)).toString()).toBe('li');
      x.setException(new Error('boom'));
      await expect(x.read(2)).rejects.toThrow('boom');
      expect(() => new StreamReader({ loop: lf.loop, limit: 0 })).toThrow(RangeError);
    });
  });

  it('readline waits across chunks and leaves the rest', async () => {
    await lf.run(async () => {
      const s = reader();
      s.feedData(Buffer.from('chunk1 '));
      const t = lf.loop.createTask(() => s.readline());
      lf.loop.callSoon(() => {
        s.feedData(Buffer.from('chunk2 '));
        s.feedData(Buffer.from('chunk3 '));
        s.feedData(Buffer.from('\n chunk4'));
      });
      expect((await t).toString()).toBe('chunk1 chunk2 chunk3 \n');
      expect(await rest(s)).toBe(' chunk4');
    });
  });

  it('readline over the limit raises LimitOverrunError and discards that line (test_readline_limit*)', async () => {
    await lf.run(async () => {
      let s = reader(3);
      s.feedData(Buffer.from('li'));
      s.feedData(Buffer.from('ne1\nline2\n'));
      await expect(s.readline()).rejects.toBeInstanceOf(LimitOverrunError);
      expect(await rest(s)).toBe('line2\n');

      s = reader(3);
      s.feedData(Buffer.from('li'));
      s.feedData(Buffer.from('ne1'));
      s.feedData(Buffer.from('li'));
      await expect(s.readline()).rejects.toMatchObject({ code: 'TW_LIMIT_OVERRUN' });
      expect(s.bufferedSize).toBe(0);

      s = reader(7);
      lf.loop.callSoon(() => {
        s.feedData(Buffer.from('chunk1'));
        s.feedData(Buffer.from('chunk2\n'));
        s.feedData(Buffer.from('chunk3\n'));
        s.feedEof();
      });
      await expect(s.readline()).rejects.toBeInstanceOf(LimitOverrunError);
      expect(await rest(s)).toBe('chunk3\n');

      s = reader(7);
      s.feedData(Buffer.from('1234567\n'));
      expect((await s.readline()).toString()).toBe('1234567\n');
      s.feedData(Buffer.from('12345678\n'));
      await expect(s.readline()).rejects.toBeInstanceOf(LimitOverrunError);
      expect(s.bufferedSize).toBe(0);
    });
  });

  it('readline: no wait, EOF without newline, empty EOF, byte count after, exception', async () => {
    await lf.run(async () => {
      let s = reader();
      s.feedData(DATA.subarray(0, 6));
      s.feedData(DATA.subarray(6));
      expect((await s.readline()).toString()).toBe('line1\n');
      expect((await s.read(7)).toString()).toBe('line2\nl');
      expect(await rest(s)).toBe('ine3\n');

      s = reader();
      s.feedData(Buffer.from('some data'));
      s.feedEof();
      expect((await s.readline()).toString()).toBe('some data');

      s = reader();
      s.feedEof();
      expect((await s.readline()).length).toBe(0);

      s = reader();
      s.feedData(Buffer.from('line\n'));
      expect((await s.readline()).toString()).toBe('line\n');
      s.setException(new TypeError('bad'));
      await expect(s.readline()).rejects.toThrow(TypeError);
    });
  });

  it('atEof only after EOF and an empty buffer', async () => {
    await lf.run(async () => {
      const s = reader();
      expect(s.atEof()).toBe(false);
      s.feedData(Buffer.from('some data\n'));
      await s.readline();
      expect(s.atEof()).toBe(false);
      s.feedData(Buffer.from('some data\n'));
      s.feedEof();
      await s.readline();
      expect(s.atEof()).toBe(true);
    });
  });

  it('readuntil: separators, multi-chunk matches, EOF, limits, several separators', async () => {
    await lf.run(async () => {
      let s = reader();
      await expect(s.readuntil('')).rejects.toThrow('Separator should be at least one-byte string');
      await expect(s.readuntil([''])).rejects.toThrow('Separator should be');
      await expect(s.readuntil([])).rejects.toThrow('Separator should contain at least one element');

      s.feedData(Buffer.from('lineAAAxxx'));
      expect((await s.readuntil('AAA')).toString()).toBe('lineAAA');
      expect(await rest(s)).toBe('xxx');

      for (const parts of [['QWEaa', 'XYaa', 'a'], ['QWEaa', 'XYa', 'aa']]) {
        const t = lf.loop.createTask(() => s.readuntil(Buffer.from('aaa')));
        for (const p of parts) lf.loop.callSoon(() => s.feedData(Buffer.from(p)));
        expect((await t).toString()).toBe('QWEaaXYaaa');
        expect(s.bufferedSize).toBe(0);
      }

      s = reader();
      s.feedData(Buffer.from('some dataAA'));
      s.feedEof();
      const err = await s.readuntil('AAA').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IncompleteReadError);
      expect((err as IncompleteReadError).partial.toString()).toBe('some dataAA');
      expect((err as IncompleteReadError).expected).toBeNull();
      expect((err as Error).message).toMatch(/undefined expected bytes/);
      expect(s.bufferedSize).toBe(0);

      s = reader(3);
      s.feedData(Buffer.from('some dataAA'));
      const over = await s.readuntil('AAA').catch((e: unknown) => e);
      expect(over).toBeInstanceOf(LimitOverrunError);
      expect((over as Error).message).toMatch(/not found/);
      expect(s.bufferedSize).toBe(11); // left in the buffer
      s.feedData(Buffer.from('A'));
      const over2 = await s.readuntil('AAA').catch((e: unknown) => e);
      expect((over2 as Error).message).toMatch(/is found/);
      expect((over2 as LimitOverrunError).consumed).toBe(9);
      expect(await rest(s)).toBe('some dataAAA');

      s = reader();
      s.feedData(Buffer.from('line 1\nline 2\r'));
      expect((await s.readuntil(['\r', '\n'])).toString()).toBe('line 1\n');
      expect((await s.readuntil(['\r', '\n'])).toString()).toBe('line 2\r');
      s.feedData(Buffer.from('ABCDEFG'));
      expect((await s.readuntil(['DEF', 'BCDE'])).toString()).toBe('ABCDE');
      expect(await rest(s)).toBe('FG');

      s = reader(3);
      s.feedData(Buffer.from('some dataA'));
      await expect(s.readuntil(['A', 'ome dataA'])).rejects.toThrow(/is found/);

      s = reader();
      s.feedData(Buffer.from('data'));
      const t = lf.loop.createTask(() => s.readuntil(['A', 'long sep']));
      lf.loop.callSoon(() => s.feedData(Buffer.from('Z')));
      lf.loop.callSoon(() => s.feedData(Buffer.from('Aaaa')));
      expect((await t).toString()).toBe('dataZA');
      expect(await rest(s)).toBe('aaa');
    });
  });

  it('readexactly: waits, limits do not apply, EOF gives IncompleteReadError with the partial bytes', async () => {
    await lf.run(async () => {
      let s = reader();
      await expect(s.readexactly(-1)).rejects.toThrow(RangeError);
      expect((await s.readexactly(0)).length).toBe(0);
      const n = 2 * DATA.length;
      const t = lf.loop.createTask(() => s.readexactly(n));
      lf.loop.callSoon(() => {
        s.feedData(DATA);
        s.feedData(DATA);
        s.feedData(DATA);
      });
      expect((await t).equals(Buffer.concat([DATA, DATA]))).toBe(true);
      expect(await rest(s)).toBe(DATA.toString());

      s = reader(3);
      s.feedData(Buffer.from('chunk'));
      expect((await s.readexactly(5)).toString()).toBe('chunk');

      s = reader();
      const t2 = lf.loop.createTask(() => s.readexactly(n));
      lf.loop.callSoon(() => {
        s.feedData(DATA);
        s.feedEof();
      });
      const err = await t2.then(() => null, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'TW_INCOMPLETE_READ', expected: n });
      expect((err as IncompleteReadError).partial.equals(DATA)).toBe(true);
      expect((err as Error).message).toBe(`${DATA.length} bytes read on a total of ${n} expected bytes`);
      expect(s.bufferedSize).toBe(0);

      s = reader();
      s.feedData(Buffer.from('line\n'));
      expect((await s.readexactly(2)).toString()).toBe('li');
      s.setException(new Error('gone'));
      await expect(s.readexactly(2)).rejects.toThrow('gone');
    });
  });

  it('setException wakes a waiting read; cancelling a waiting read leaves the data for the next one', async () => {
    await lf.run(async () => {
      const s = reader();
      const t = lf.loop.createTask(() => s.readline());
      await sleep(0);
      s.setException(new Error('wake up'));
      await expect(t).rejects.toThrow('wake up');

      const c = reader();
      const pending = lf.loop.createTask(() => c.readexactly(4));
      await sleep(0);
      pending.cancel();
      await expect(pending).rejects.toMatchObject({ code: 'TW_CANCELLED' });
      c.feedData(Buffer.from('abcd'));
      expect((await c.readexactly(4)).toString()).toBe('abcd');
    });
  });

  it('only one read may wait at a time', async () => {
    await lf.run(async () => {
      const s = reader();
      const first = lf.loop.createTask(() => s.read(1));
      await sleep(0);
      await expect(s.read(1)).rejects.toMatchObject({ code: 'TW_INVALID_STATE' });
      s.feedData(Buffer.from('x'));
      expect((await first).toString()).toBe('x');
    });
  });

  it('async iteration yields lines until EOF', async () => {
    await lf.run(async () => {
      const s = reader();
      s.feedData(DATA);
      s.feedData(Buffer.from('tail'));
      s.feedEof();
      const lines: string[] = [];
      for await (const line of s) lines.push(line.toString());
      expect(lines).toEqual(['line1\n', 'line2\n', 'line3\n', 'tail']);
    });
  });

  it('flow control: the transport pauses above 2 x limit and resumes at the limit', async () => {
    await lf.run(async () => {
      const r = new StreamReader({ loop: lf.loop, limit: 10 });
      const proto = new StreamReaderProtocol(r, null, lf.loop);
      const sender = { connectionMade() {}, dataReceived() {} };
      const [a, b] = createMemoryPair(lf.loop, proto, sender);
      await sleep(0);
      b.write(Buffer.alloc(21));
      for (let i = 0; i < 5 && a.isReading(); i++) await sleep(0);
      expect(a.isReading()).toBe(false);
      await r.read(11);
      expect(a.isReading()).toBe(true);
      b.abort();
    });
  });

  it('several tasks may await drain(); all wake when the buffer drains; drain is cancellable', async () => {
    await lf.run(async () => {
      const r = new StreamReader({ loop: lf.loop });
      const proto = new StreamReaderProtocol(r, null, lf.loop);
      const peer = { transport: null as unknown, connectionMade(t: unknown) { this.transport = t; }, dataReceived() {} };
      const [a, b] = createMemoryPair(lf.loop, proto, peer);
      await sleep(0);
      const w = new StreamWriter(a, proto, r, lf.loop);
      b.pauseReading();
      w.write(Buffer.alloc(100_000));
      const d1 = lf.loop.createTask(() => w.drain());
      const d2 = lf.loop.createTask(() => w.drain());
      const d3 = lf.loop.createTask(() => w.drain());
      await sleep(0);
      expect(d1.done() || d2.done()).toBe(false);
      d3.cancel();
      await expect(d3).rejects.toMatchObject({ code: 'TW_CANCELLED' });
      b.resumeReading();
      await waitFor(d1, 5);
      await waitFor(d2, 5);
      a.abort();
      await sleep(0);
      await expect(w.drain()).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
    });
  });
});

describe('streams over TCP and TLS', () => {
  const lf = useLoop({ real: true });

  for (const tls of [false, true]) {
    it(`${tls ? 'TLS' : 'TCP'}: startServer + openConnection echo, writeEof, waitClosed (test_start_server)`, async () => {
      await lf.run(async () => {
        const server: Server = await startServer(async (reader, writer) => {
          for await (const line of reader) {
            writer.write(line);
            await writer.drain();
          }
          writer.close();
          await writer.waitClosed();
        }, '127.0.0.1', 0, { loop: lf.loop, ...(tls ? { ssl: fx.serverOptions() } : {}) });
        const port = (server.sockets[0]!.address() as AddressInfo).port;
        const [reader, writer] = await openConnection('127.0.0.1', port, { loop: lf.loop, ...(tls ? { ssl: fx.clientOptions() } : {}) });
        expect(writer.canWriteEof()).toBe(true);
        writer.writelines(['hello\n', Buffer.from('world\n')]);
        await writer.drain();
        expect((await reader.readline()).toString()).toBe('hello\n');
        expect((await reader.readuntil('\n')).toString()).toBe('world\n');
        writer.writeEof();
        expect((await reader.read()).length).toBe(0);
        expect(reader.atEof()).toBe(true);
        await waitFor(writer.waitClosed(), 10);
        expect(writer.getExtraInfo('tlsVersion')).toBe(tls ? 'TLSv1.3' : undefined);
        server.close();
        await waitFor(server.waitClosed(), 10);
      });
    });
  }

  it('StreamWriter.startTls upgrades both ends; bytes buffered by the server reader go to TLS (test_start_tls)', async () => {
    await lf.run(async () => {
      const server = await startServer(async (reader, writer) => {
        const cmd = await reader.readline();
        if (cmd.toString() !== 'STARTTLS\n') throw new Error('expected STARTTLS');
        await writer.startTls(fx.serverOptions());
        const line = await reader.readline();
        writer.write(Buffer.concat([Buffer.from('secure:'), line]));
        await writer.drain();
        writer.close();
      }, '127.0.0.1', 0, { loop: lf.loop });
      const port = (server.sockets[0]!.address() as AddressInfo).port;
      const [reader, writer] = await openConnection('127.0.0.1', port, { loop: lf.loop });
      writer.write('STARTTLS\n'); // the ClientHello follows in the same iteration's write
      await writer.startTls(fx.clientOptions(), { serverHostname: 'localhost' });
      expect(writer.getExtraInfo('tlsVersion')).toBe('TLSv1.3');
      writer.write('hi\n');
      expect((await reader.readline()).toString()).toBe('secure:hi\n');
      expect((await reader.read()).length).toBe(0);
      writer.close();
      await waitFor(writer.waitClosed(), 10);
      server.close();
      await waitFor(server.waitClosed(), 10);
    });
  });

  it('a throwing clientConnected callback is reported and its connection closed; the server keeps serving', async () => {
    await lf.run(async () => {
      let n = 0;
      const server = await startServer(async (_r, w) => {
        if (++n === 1) throw new Error('handler failed');
        w.write('ok\n');
        w.close();
      }, '127.0.0.1', 0, { loop: lf.loop });
      const port = (server.sockets[0]!.address() as AddressInfo).port;
      const [r1] = await openConnection('127.0.0.1', port, { loop: lf.loop });
      expect((await r1.read()).length).toBe(0);
      const [r2] = await openConnection('127.0.0.1', port, { loop: lf.loop });
      expect((await r2.readline()).toString()).toBe('ok\n');
      expect(lf.take().map((r) => r.message)).toEqual(['Unhandled exception in clientConnected callback']);
      server.close();
      server.abortClients();
    });
  });

  it('drain() after close() raises TransportClosed; close() twice; waitClosed; reader at EOF after (test_async_writer_api_exception_after_close, test_eof_feed_when_closing_writer)', async () => {
    await lf.run(async () => {
      const server = await startServer(async (reader, writer) => {
        writer.write(await reader.readline());
        await writer.drain();
        await reader.read();
        writer.close();
      }, '127.0.0.1', 0, { loop: lf.loop });
      const port = (server.sockets[0]!.address() as AddressInfo).port;
      const [reader, writer] = await openConnection('127.0.0.1', port, { loop: lf.loop });
      writer.write('GET\n');
      expect((await reader.readline()).toString()).toBe('GET\n');
      writer.close();
      writer.close();
      expect(writer.isClosing()).toBe(true);
      writer.write('data'); // dropped
      await expect(writer.drain()).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      await waitFor(writer.waitClosed(), 10);
      await expect(writer.drain()).rejects.toMatchObject({ code: 'TW_TRANSPORT_CLOSED' });
      expect(reader.atEof()).toBe(true);
      expect((await reader.read()).length).toBe(0);
      server.close();
      await waitFor(server.waitClosed(), 10);
    });
  });

  it('openConnection to a closed port rejects with PeerRejected', async () => {
    await lf.run(async () => {
      const server = await startServer(() => {}, '127.0.0.1', 0, { loop: lf.loop });
      const port = (server.sockets[0]!.address() as AddressInfo).port;
      server.close();
      await waitFor(server.waitClosed(), 10);
      await expect(openConnection('127.0.0.1', port, { loop: lf.loop })).rejects.toMatchObject({ code: 'TW_PEER_REJECTED' });
    });
  });
});

