/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_buffered_proto.py cases: a BufferedProtocol client over a real
 * loopback socket (127.0.0.1 port 0).
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startServer, waitFor } from '../../src/index.js';
import type { BufferedProtocol, Future, StreamReader as Reader, StreamWriter, Transport } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

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
