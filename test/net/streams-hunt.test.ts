/**
 * Streams: the cases of CPython 3.13 Lib/test/test_asyncio/test_streams.py that test/net/streams.test.ts does not
 * port yet, each named after its CPython test, plus the discrepancies with asyncio found while porting them (each
 * marked "asyncio:" with the behaviour observed on Python 3.13.0). StreamReader cases run on a virtual-clock loop;
 * the writer cases run over real loopback sockets.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  currentTask, gather, IncompleteReadError, isCancelledError, LimitOverrunError, openConnection, openUnixConnection, sleep, startServer,
  startUnixServer, StreamReader, StreamReaderProtocol, waitFor,
} from '../../src/index.js';
import type { Server, StreamWriter, Task } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

const DATA = Buffer.from('line1\nline2\nline3\n');
const T = 10;

/** What the reader still holds (consumes it). */
async function rest(r: StreamReader): Promise<string> {
  return r.bufferedSize === 0 ? '' : (await r.read(r.bufferedSize)).toString();
}

/** The error `p` rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then((v) => {
    throw new Error(`expected a rejection, got ${String(v)}`);
  }, (e: unknown) => e);
}

describe('StreamReader: more ports of test_streams.py', () => {
  const lf = useLoop();
  const reader = (limit?: number): StreamReader => new StreamReader({ loop: lf.loop, ...(limit ? { limit } : {}) });

  it('test_feed_nonempty_data: the reader keeps its own copy of the fed bytes', async () => {
    // asyncio: feed_data extends a bytearray, so the caller may reuse its buffer (a BufferedProtocol's, say).
    await lf.run(async () => {
      const s = reader();
      const mine = Buffer.from(DATA);
      s.feedData(mine);
      mine.fill(0x58);
      const backing = new Uint8Array(Buffer.from('hello\nworld\n'));
      s.feedData(backing.subarray(0, 6));
      backing.fill(0x58);
      // (read what is buffered, so the old aliasing code fails here instead of waiting for a newline)
      expect(await rest(s)).toBe('line1\nline2\nline3\nhello\n');
    });
  });

  it('test_invalid_limit: zero and negative limits are refused', () => {
    expect(() => new StreamReader({ loop: lf.loop, limit: 0 })).toThrow(/imit/);
    expect(() => new StreamReader({ loop: lf.loop, limit: -1 })).toThrow(/imit/);
  });

  it('test_read_limit: read(n) is not bounded by the limit', async () => {
    await lf.run(async () => {
      const s = reader(3);
      s.feedData(Buffer.from('chunk'));
      expect((await s.read(5)).toString()).toBe('chunk');
      expect(s.bufferedSize).toBe(0);
    });
  });

  it('read(n) / readexactly(n) with a non-integer size throw TypeError and consume nothing', async () => {
    // asyncio: TypeError "slice indices must be integers", the buffer unchanged. Before the fix a fractional size
    // took floor(n) bytes but counted n, so one byte was silently lost.
    await lf.run(async () => {
      const s = reader();
      s.feedData(Buffer.from('abcdef'));
      await expect(s.read(2.5)).rejects.toBeInstanceOf(TypeError);
      await expect(s.readexactly(2.5)).rejects.toBeInstanceOf(TypeError);
      await expect(s.read(Number.NaN)).rejects.toBeInstanceOf(TypeError);
      expect(s.bufferedSize).toBe(6);
      s.feedEof();
      expect((await s.read()).toString()).toBe('abcdef');
      expect(s.atEof()).toBe(true);
    });
  });

  it('test_readline_limit: a line without newline over the limit is discarded', async () => {
    await lf.run(async () => {
      const s = reader(7);
      lf.loop.callSoon(() => {
        s.feedData(Buffer.from('chunk1'));
        s.feedData(Buffer.from('chunk2'));
        s.feedData(Buffer.from('chunk3\n'));
        s.feedEof();
      });
      // asyncio raises ValueError here; tulipwire keeps the LimitOverrunError (documented on readline()).
      await expect(s.readline()).rejects.toBeInstanceOf(LimitOverrunError);
      expect(s.bufferedSize).toBe(0);

      const t = reader(7);
      t.feedData(Buffer.from('12345678'));
      const err = await failure(t.readline());
      expect(err).toMatchObject({ code: 'TW_LIMIT_OVERRUN', message: 'Separator is not found, and chunk exceed the limit' });
      expect(t.bufferedSize).toBe(0);
    });
  });

  it('test_readline_exception: the error is raised again and nothing is left', async () => {
    await lf.run(async () => {
      const s = reader();
      s.feedData(Buffer.from('line\n'));
      expect((await s.readline()).toString()).toBe('line\n');
      const exc = new RangeError('bad');
      s.setException(exc);
      expect(await failure(s.readline())).toBe(exc);
      expect(s.bufferedSize).toBe(0);
    });
  });

  it('test_readuntil_multi_chunks: each match consumes exactly through the separator', async () => {
    await lf.run(async () => {
      const s = reader();
      s.feedData(Buffer.from('lineAAA'));
      expect((await s.readuntil('AAA')).toString()).toBe('lineAAA');
      expect(s.bufferedSize).toBe(0);
      s.feedData(Buffer.from('lineAAA'));
      expect((await s.readuntil(Buffer.from('AAA'))).toString()).toBe('lineAAA');
      expect(s.bufferedSize).toBe(0);
    });
  });

  it('test_readuntil_multi_chunks_1: separators at the start, alone, and fed byte by byte', async () => {
    await lf.run(async () => {
      const s = reader();
      for (const [parts, want] of [
        [['QWEaa', 'XYaa', 'a'], 'QWEaaXYaaa'], [['QWEaa', 'XYa', 'aa'], 'QWEaaXYaaa'], [['aaa'], 'aaa'],
        [['Xaaa'], 'Xaaa'], [['XXX', 'a', 'a', 'a'], 'XXXaaa'],
      ] as const) {
        for (const p of parts) s.feedData(Buffer.from(p));
        expect((await s.readuntil(Buffer.from('aaa'))).toString()).toBe(want);
        expect(s.bufferedSize).toBe(0);
      }
    });
  });

  it('test_readuntil_limit_found_sep: LimitOverrunError.consumed for "not found" and "is found"', async () => {
    await lf.run(async () => {
      const s = reader(3);
      s.feedData(Buffer.from('some dataAA'));
      const notFound = await failure(s.readuntil('AAA'));
      expect(notFound).toBeInstanceOf(LimitOverrunError);
      // asyncio: consumed = len(buffer) + 1 - len(separator), the bytes known to hold no separator.
      expect(notFound).toMatchObject({ code: 'TW_LIMIT_OVERRUN', consumed: 9, message: 'Separator is not found, and chunk exceed the limit' });
      expect(s.bufferedSize).toBe(11);
      s.feedData(Buffer.from('A'));
      const found = await failure(s.readuntil('AAA'));
      expect(found).toMatchObject({ consumed: 9, message: 'Separator is found, but chunk is longer than limit' });
      expect(await rest(s)).toBe('some dataAAA');
    });
  });

  it('test_readuntil_multi_separator_limit: the data stays buffered', async () => {
    await lf.run(async () => {
      const s = reader(3);
      s.feedData(Buffer.from('some dataA'));
      const err = await failure(s.readuntil(['A', 'ome dataA']));
      expect(err).toMatchObject({ consumed: 9, message: 'Separator is found, but chunk is longer than limit' });
      expect(await rest(s)).toBe('some dataA');
    });
  });

  it('test_readuntil_bytearray: a Uint8Array separator (and a view into a larger buffer)', async () => {
    await lf.run(async () => {
      const s = reader();
      s.feedData(Buffer.from('some data\r\n'));
      expect((await s.readuntil(new Uint8Array([0x0d, 0x0a]))).toString()).toBe('some data\r\n');
      expect(s.bufferedSize).toBe(0);
      s.feedData(Buffer.from('x--y'));
      expect((await s.readuntil(new Uint8Array([0x2d, 0x2d, 0x2d]).subarray(1))).toString()).toBe('x--');
      expect(await rest(s)).toBe('y');
    });
  });

  it('test_readexactly_zero_or_less: the buffer is left alone', async () => {
    await lf.run(async () => {
      const s = reader();
      s.feedData(DATA);
      expect((await s.readexactly(0)).length).toBe(0);
      expect(s.bufferedSize).toBe(DATA.length);
      await expect(s.readexactly(-1)).rejects.toThrow(/less than zero/);
      expect(await rest(s)).toBe(DATA.toString());
    });
  });

  it('test_exception: exception() is null, then the very error set', () => {
    const s = reader();
    expect(s.exception()).toBeNull();
    const exc = new Error('x');
    s.setException(exc);
    expect(s.exception()).toBe(exc);
  });

  it('test_exception_waiter: setException from another task fails the waiting readline', async () => {
    await lf.run(async () => {
      const s = reader();
      const exc = new Error('set by t2');
      const t1 = lf.loop.createTask(() => s.readline());
      const t2 = lf.loop.createTask(async () => s.setException(exc));
      await gather(t1, t2, { returnExceptions: true });
      expect(t1.exception()).toBe(exc);
    });
  });

  it('test_exception_cancel: setException after a cancelled read leaves no waiter behind', async () => {
    const s = reader();
    const t = lf.loop.createTask(() => s.readline());
    await lf.runBriefly();
    t.cancel();
    await lf.runBriefly();
    expect(t.cancelled()).toBe(true);
    s.setException(new Error('message'));
    await lf.runBriefly();
    // With a stale waiter the next read would say "already waiting" instead of raising the error.
    await lf.run(() => expect(s.read(1)).rejects.toThrow('message'));
  });

  it('test_streamreader_constructor_without_loop: no running loop, no reader', () => {
    expect(() => new StreamReader()).toThrow();
    expect(() => new StreamReaderProtocol(new StreamReader({ loop: lf.loop }))).toThrow();
  });

  it('test_streamreader_constructor_use_running_loop (and the protocol\'s): they bind the running loop', async () => {
    await lf.run(async () => {
      const s = new StreamReader();
      const p = new StreamReaderProtocol(s);
      const t = lf.loop.createTask(() => s.readexactly(3));
      lf.loop.callSoon(() => p.dataReceived(Buffer.from('abc')));
      expect((await t).toString()).toBe('abc');
      const w = p._closed();
      expect(w.getLoop()).toBe(lf.loop);
    });
  });

  it('test_multiple_drain: ten tasks wait on one paused protocol and all wake (cpython#74116)', async () => {
    await lf.run(async () => {
      const p = new StreamReaderProtocol(new StreamReader({ loop: lf.loop }), null, lf.loop);
      let drained = 0;
      p.pauseWriting();
      lf.loop.callLater(0.1, () => p.resumeWriting());
      await gather(...Array.from({ length: 10 }, () => lf.loop.createTask(async () => {
        await p._drainHelper();
        drained++;
      })));
      expect(drained).toBe(10);
      expect(lf.loop.time()).toBeCloseTo(0.1, 6);
    });
  });
});

describe('StreamWriter and servers: more ports of test_streams.py', () => {
  const lf = useLoop({ real: true });

  /** A one-shot "HTTP" server: reads the request head, answers, closes (test_utils.run_test_server's role). */
  async function httpServer(): Promise<number> {
    const server: Server = await startServer(async (reader, writer) => {
      await reader.readuntil('\r\n\r\n');
      writer.write('HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nTest message');
      await writer.drain();
      writer.close();
      await writer.waitClosed();
    }, '127.0.0.1', 0, { loop: lf.loop });
    onTestFinished(() => {
      server.close();
      server.abortClients();
    });
    return (server.sockets[0]!.address() as AddressInfo).port;
  }

  it('test_wait_closed_on_close: isClosing flips at close(), waitClosed resolves', async () => {
    await lf.run(async () => {
      const [rd, wr] = await openConnection('127.0.0.1', await httpServer(), { loop: lf.loop });
      wr.write('GET / HTTP/1.0\r\n\r\n');
      expect((await waitFor(rd.readline(), T)).toString()).toBe('HTTP/1.0 200 OK\r\n');
      expect((await waitFor(rd.read(), T)).toString().endsWith('\r\n\r\nTest message')).toBe(true);
      expect(wr.isClosing()).toBe(false);
      wr.close();
      expect(wr.isClosing()).toBe(true);
      await waitFor(wr.waitClosed(), T);
    });
  });

  it('test_wait_closed_on_close_with_unread_data: closing with bytes still unread', async () => {
    await lf.run(async () => {
      const [rd, wr] = await openConnection('127.0.0.1', await httpServer(), { loop: lf.loop });
      wr.write('GET / HTTP/1.0\r\n\r\n');
      expect((await waitFor(rd.readline(), T)).toString()).toBe('HTTP/1.0 200 OK\r\n');
      wr.close();
      await waitFor(wr.waitClosed(), T);
      expect(lf.records).toEqual([]);
    });
  });

  it('test_async_writer_api: a whole exchange reports nothing to the exception handler', async () => {
    await lf.run(async () => {
      const [rd, wr] = await openConnection('127.0.0.1', await httpServer(), { loop: lf.loop });
      wr.write('GET / HTTP/1.0\r\n\r\n');
      expect((await waitFor(rd.readline(), T)).toString()).toBe('HTTP/1.0 200 OK\r\n');
      expect((await waitFor(rd.read(), T)).toString().endsWith('\r\n\r\nTest message')).toBe(true);
      wr.close();
      await waitFor(wr.waitClosed(), T);
      expect(lf.records).toEqual([]);
    });
  });

  it('test_drain_raises: write + drain to a peer that closed at once ends in an error, not a spin (bpo-25441)', async () => {
    // The peer is plain node:net, as in CPython (the point is drain() on a socket closed by the other side).
    const raw = net.createServer((s) => s.destroy());
    await new Promise<void>((res) => raw.listen(0, '127.0.0.1', res));
    onTestFinished(() => new Promise<void>((res) => raw.close(() => res())));
    const port = (raw.address() as AddressInfo).port;
    await lf.run(async () => {
      const [, writer] = await openConnection('127.0.0.1', port, { loop: lf.loop });
      let writes = 0;
      const err = await failure((async () => {
        // Bounded: 4 MiB of "foo\n" is far more than the kernel takes before the peer's RST arrives.
        while (writes < 1 << 20) {
          writer.write('foo\n');
          writes++;
          await writer.drain();
        }
      })());
      expect(writes).toBeLessThan(1 << 20);
      expect(err).toMatchObject({ code: expect.stringMatching(/^TW_TRANSPORT/) });
      const cause = (err as { cause?: { code?: string } }).cause;
      if (cause !== undefined) expect(['EPIPE', 'ECONNRESET']).toContain(cause.code);
      expect(lf.records).toEqual([]);
    });
  });

  it('test_unhandled_cancel: a handler that closes its writer and cancels itself is not reported', async () => {
    await lf.run(async () => {
      const server = await startServer(async (_r, writer) => {
        writer.close();
        currentTask()?.cancel();
        await sleep(1);
      }, '127.0.0.1', 0, { loop: lf.loop });
      onTestFinished(() => {
        server.close();
        server.abortClients();
      });
      const [rd] = await openConnection('127.0.0.1', (server.sockets[0]!.address() as AddressInfo).port, { loop: lf.loop });
      expect((await waitFor(rd.read(), T)).length).toBe(0);
      expect(lf.records).toEqual([]);
    });
  });

  it('test_start_server: an async handler runs inside its Task, so cancelling that Task reaches its reads', async () => {
    // asyncio: create_task(client_connected_cb(reader, writer)) runs the coroutine's first line inside the Task.
    // Before the fix the body ran inside connectionMade, outside any Task: currentTask() was null there and a
    // cancel of the Task never reached the body's awaits.
    await lf.run(async () => {
      const record: string[] = [];
      let handlerTask: Task<unknown> | null = null; // (a Task is thenable: a Future's result would be awaited)
      const started = lf.loop.createFuture<void>();
      const server = await startServer(async (reader) => {
        const me = currentTask();
        record.push(me === null ? 'no task' : 'in task');
        handlerTask = me;
        started.setResult(undefined);
        try {
          await reader.readline();
          record.push('read a line');
        } catch (e) {
          record.push(isCancelledError(e) ? 'cancelled' : `failed: ${String(e)}`);
          throw e;
        }
      }, '127.0.0.1', 0, { loop: lf.loop });
      onTestFinished(() => {
        server.close();
        server.abortClients();
      });
      const [rd] = await openConnection('127.0.0.1', (server.sockets[0]!.address() as AddressInfo).port, { loop: lf.loop });
      await waitFor(started, 2);
      handlerTask!.cancel();
      // The cancelled handler's connection is closed (asyncio: transport.close() in the done callback).
      expect((await waitFor(rd.read(), T)).length).toBe(0);
      expect(record).toEqual(['in task', 'cancelled']);
    });
  });

  it('test_start_server: a generator-function handler (PEP 3156 style) runs as a Task', async () => {
    await lf.run(async () => {
      const server = await startServer(function* (_reader, writer) {
        writer.write('from a generator\n');
        yield sleep(0);
        writer.close();
      }, '127.0.0.1', 0, { loop: lf.loop });
      onTestFinished(() => {
        server.close();
        server.abortClients();
      });
      const [rd] = await openConnection('127.0.0.1', (server.sockets[0]!.address() as AddressInfo).port, { loop: lf.loop });
      // Before the fix the generator was created and never run: this read waited until the timeout.
      expect((await waitFor(rd.readline(), 2)).toString()).toBe('from a generator\n');
      expect((await waitFor(rd.read(), T)).length).toBe(0);
    });
  });

  it('test_start_unix_server + test_open_unix_connection: a line echoed over a Unix socket', async () => {
    const path = join(tmpdir(), `tulipwire-streams-${process.pid}.sock`);
    await lf.run(async () => {
      const server = await startUnixServer(async (reader, writer: StreamWriter) => {
        writer.write(await reader.readline());
        await writer.drain();
        writer.close();
      }, path, { loop: lf.loop });
      onTestFinished(() => {
        server.close();
        server.abortClients();
      });
      const [rd, wr] = await openUnixConnection(path, { loop: lf.loop });
      wr.write('hello unix\n');
      expect((await waitFor(rd.readline(), T)).toString()).toBe('hello unix\n');
      expect((await waitFor(rd.read(), T)).length).toBe(0);
      wr.close();
      await waitFor(wr.waitClosed(), T);
    });
  });

  it('test_open_unix_connection_error: connecting to a path nobody serves rejects', async () => {
    await lf.run(async () => {
      const path = join(tmpdir(), `tulipwire-nobody-${process.pid}.sock`);
      await expect(openUnixConnection(path, { loop: lf.loop })).rejects.toMatchObject({ code: expect.stringMatching(/^TW_/) });
    });
  });
});

describe('IncompleteReadError and LimitOverrunError carry what recovery needs', () => {
  it('test_IncompleteReadError_pickleable / test_LimitOverrunError_pickleable: fields survive, message as asyncio', () => {
    const e = new IncompleteReadError(Buffer.from('abc'), 10);
    expect(e.message).toBe('3 bytes read on a total of 10 expected bytes');
    expect(e.partial.toString()).toBe('abc');
    expect(e.expected).toBe(10);
    const l = new LimitOverrunError('message', 10);
    expect(l.message).toBe('message');
    expect(l.consumed).toBe(10);
  });
});
