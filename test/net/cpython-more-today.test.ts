/**
 * Ports of CPython 3.13 Lib/test/test_asyncio cases about protocols that had none yet: test_protocols.py (the no-op
 * bases), test_buffered_proto.py (a BufferedProtocol client over a real loopback socket) and test_pep492.py's
 * `async for` over a StreamReader. Where tulipwire deliberately differs the title says so.
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  BufferedProtocolBase, ProtocolBase, StreamReader, isBufferedProtocol, startServer, waitFor,
} from '../../src/index.js';
import type { BufferedProtocol, Future, StreamReader as Reader, StreamWriter, Transport } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('test_protocols.py', () => {
  const fake = {} as Transport;

  it('test_base_protocol / test_protocol (test_protocols): every ProtocolBase callback does nothing and returns undefined', () => {
    const p = new ProtocolBase();
    expect(p.connectionMade(fake)).toBeUndefined();
    expect(p.connectionLost(null)).toBeUndefined();
    expect(p.dataReceived(Buffer.from('x'))).toBeUndefined();
    expect(p.eofReceived()).toBeUndefined();
    expect(p.pauseWriting()).toBeUndefined();
    expect(p.resumeWriting()).toBeUndefined();
    expect(isBufferedProtocol(p)).toBe(false);
  });

  it('test_buffered_protocol (test_protocols), deliberately different: BufferedProtocolBase.getBuffer returns its reusable buffer (asyncio\'s abstract get_buffer returns None); the other callbacks return undefined', () => {
    const p = new BufferedProtocolBase(100);
    expect(p.connectionMade(fake)).toBeUndefined();
    expect(p.connectionLost(null)).toBeUndefined();
    const buf = p.getBuffer(100);
    expect(buf).toBe(p.buffer);
    expect(buf.length).toBe(100);
    expect(p.bufferUpdated(150)).toBeUndefined();
    expect(p.eofReceived()).toBeUndefined();
    expect(p.pauseWriting()).toBeUndefined();
    expect(p.resumeWriting()).toBeUndefined();
    expect(isBufferedProtocol(p)).toBe(true);
    expect(() => new BufferedProtocolBase(0)).toThrow(RangeError);
  });
});

describe('test_buffered_proto.py', () => {
  const lf = useLoop({ real: true });

  it('test_buffered_proto_create_connection (test_buffered_proto): a 9 KiB burst read through 100-byte buffers, then the client answers and the server closes', async () => {
    const NOISE = Buffer.from('12345678+'.repeat(1024));
    await lf.run(async () => {
      const srv = await startServer(async (reader: Reader, writer: StreamWriter) => {
        writer.write(NOISE);
        await reader.readexactly(1);
        writer.close();
        await writer.waitClosed();
      }, '127.0.0.1', 0);
      const port = (srv.sockets[0]!.address() as AddressInfo).port;
      const sizes: number[] = [];
      const client = async (): Promise<Buffer> => {
        let data = Buffer.alloc(0);
        const connLost: Future<null> = lf.loop.createFuture<null>();
        let tr: Transport | null = null;
        class ReceiveStuffProto implements BufferedProtocol {
          buffer = new Uint8Array(0);
          getBuffer(_sizeHint: number): Uint8Array {
            this.buffer = new Uint8Array(100);
            return this.buffer;
          }
          bufferUpdated(nbytes: number): void {
            sizes.push(nbytes);
            data = Buffer.concat([data, this.buffer.subarray(0, nbytes)]);
            if (data.equals(NOISE)) tr!.write(Buffer.from('1'));
          }
          connectionLost(exc: Error | null): void {
            if (exc === null) connLost.setResult(null);
            else connLost.setException(exc);
          }
        }
        [tr] = await lf.loop.createConnection(() => new ReceiveStuffProto(), '127.0.0.1', port);
        await connLost;
        return data;
      };
      const got = await waitFor(client, 5);
      expect(got.equals(NOISE)).toBe(true);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(NOISE.length);
      srv.close();
      await srv.waitClosed();
    });
  });
});

describe('test_pep492.py', () => {
  const lf = useLoop();

  it('test_readline (test_pep492): for await over a StreamReader yields its lines, the last one without a newline', async () => {
    const stream = new StreamReader({ loop: lf.loop });
    stream.feedData(Buffer.from('line1\nline2\nline3'));
    stream.feedEof();
    const data = await lf.run(async () => {
      const out: string[] = [];
      for await (const line of stream) out.push(line.toString());
      return out;
    });
    expect(data).toEqual(['line1\n', 'line2\n', 'line3']);
  });
});
