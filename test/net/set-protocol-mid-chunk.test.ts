/**
 * `setProtocol()` called from a BufferedProtocol's `bufferUpdated` takes effect for the very next byte.
 *
 * Port of CPython 3.13 test_asyncio/test_ssl.py `TestSSL.test_start_tls_client_buf_proto_1` (also in
 * test_sslproto.py `BaseStartTLS`): a BufferedProtocol with a small buffer switches the transport to a plain
 * Protocol (`new_tr.set_protocol(ClientProtoSecond(...))`), and the bytes after the switch reach the second
 * protocol's `data_received`. asyncio reads at most one buffer per `recv_into`, so a switch inside
 * `buffer_updated` applies to the next read. Node hands the transport a chunk larger than the protocol's buffer;
 * ours copied the rest of that chunk into the old protocol's buffers (another `getBuffer` / `bufferUpdated` on a
 * protocol that had handed the connection over), and the new protocol never saw those bytes.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../src/index.js';
import type { BufferedProtocol, Future, Protocol, Transport } from '../../src/index.js';
import { useCleanups } from '../support/cleanups.js';
import { useLoop } from '../support/loop.js';

const T = 10;
const PAYLOAD = 'abcdefgh';

describe('setProtocol in the middle of a received chunk', () => {
  const lf = useLoop({ real: true });
  const cleanups = useCleanups();

  it('test_start_tls_client_buf_proto_1 (test_ssl): the bytes after the switch go to the new protocol', async () => {
    // One write of 8 bytes: on loopback it arrives as one chunk, bigger than the first protocol's 4-byte buffer.
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      s.write(PAYLOAD);
      s.on('end', () => s.end());
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      srv.close();
    });
    const port = (srv.address() as AddressInfo).port;

    await lf.run(async () => {
      const firstGot: string[] = [];
      let secondGot = '';
      let firstCallsAfterSwitch = 0;
      let switched = false;
      // Resolves once all 8 bytes arrived, whichever protocol got them.
      const gotAll: Future<void> = lf.loop.createFuture();
      const check = (): void => {
        if (firstGot.join('').length + secondGot.length >= PAYLOAD.length && !gotAll.done()) gotAll.setResult(undefined);
      };
      const second: Protocol = {
        dataReceived(d: Buffer): void {
          secondGot += d.toString();
          check();
        },
        eofReceived(): boolean {
          return false;
        },
      };
      let transport: Transport | null = null;
      const buf = Buffer.alloc(4);
      const first: BufferedProtocol = {
        connectionMade(t: Transport): void {
          transport = t;
        },
        getBuffer(): Uint8Array {
          if (switched) firstCallsAfterSwitch++;
          return buf;
        },
        bufferUpdated(n: number): void {
          if (switched) firstCallsAfterSwitch++;
          firstGot.push(buf.subarray(0, n).toString());
          check();
          if (!switched) {
            switched = true;
            transport!.setProtocol(second);
          }
        },
      };
      const [t] = await lf.loop.createConnection(() => first, '127.0.0.1', port);
      cleanups.push(() => t.abort());
      await waitFor(gotAll, T);
      expect(firstGot).toEqual(['abcd']);
      expect(secondGot).toBe('efgh');
      expect(firstCallsAfterSwitch).toBe(0);
    });
  });
});
