/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_base_events.py cases about connections that had no port yet
 * (BaseEventLoopWithSelectorTests): createConnection and createServer with no host and no port, and the default
 * SNI of a TLS connection. Each `it` names its CPython case (`file.Class.test_name`). Real sockets on 127.0.0.1
 * port 0; every wait bounded by `waitFor(…, T)`. asyncio's ValueError for a bad argument is a RangeError here.
 * Skipped: the `sock=` cases (no raw sockets in the API). The earlier test_base_events ports of create_server and
 * create_connection are in cpython-net.test.ts.
 */
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { ProtocolBase, TransportError, sleep, waitFor } from '../../src/index.js';
import { useCleanups } from '../support/cleanups.js';
import { useLoop } from '../support/loop.js';
import { tlsFixture } from '../support/tls-fixture.js';

const fx = tlsFixture();
const T = 10;
const cleanups = useCleanups();

describe('test_base_events.py', () => {
  const lf = useLoop({ real: true });

  it('test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_no_host_port_sock: no host and no port is a RangeError before any socket (asyncio ValueError)', async () => {
    await lf.run(async () => {
      const err = await lf.loop.createConnection(() => new ProtocolBase(), undefined as never, undefined as never)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RangeError);
      expect((err as Error).message).toMatch(/port must be an integer/);
    });
  });

  it('test_base_events.BaseEventLoopWithSelectorTests.test_create_server_no_host_port_sock: no host and no port is a RangeError; nothing listens (asyncio ValueError)', async () => {
    const servers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
    const before = servers();
    await lf.run(async () => {
      const err = await lf.loop.createServer(() => new ProtocolBase(), undefined, undefined as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RangeError);
      expect((err as Error).message).toMatch(/port must be an integer/);
    });
    expect(servers()).toBe(before);
  });

  it('test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_ssl_server_hostname_default: the SNI is the host by default, serverHostname when given, and none for "" (which also skips the hostname check)', async () => {
    const names: string[] = [];
    const server = tls.createServer({
      ...fx.serverOptions(),
      SNICallback: (name, cb) => {
        names.push(name);
        cb(null, undefined as unknown as tls.SecureContext); // keep the default context
      },
    }, (s) => {
      s.on('error', () => {});
      s.end();
    });
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
    }));
    const port = (server.address() as AddressInfo).port;
    await lf.run(async () => {
      const connect = (serverHostname?: string): Promise<unknown> => waitFor(lf.loop.createConnection(() => new ProtocolBase(),
        'localhost', port, { ssl: fx.clientOptions(), ...(serverHostname !== undefined ? { serverHostname } : {}) }), T);

      // Default: server_hostname='python.org' for host 'python.org' (here 'localhost', which the certificate names).
      const [t1] = await connect() as [{ close(): void }];
      t1.close();
      expect(names).toEqual(['localhost']);

      // Explicit: 'perl.com' is sent, and the certificate (localhost, 127.0.0.1) does not match it.
      const err = await connect('perl.com').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect(names).toEqual(['localhost', 'perl.com']);

      // Empty: no SNI at all, and no hostname matching (the chain is still verified).
      const [t3] = await connect('') as [{ close(): void }];
      t3.close();
      expect(names).toEqual(['localhost', 'perl.com']);
      await sleep(0.05); // let both closes finish before the loop closes
    });
  });
});
