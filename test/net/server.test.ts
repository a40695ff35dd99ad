/**
 * Server and connection lifecycle on real sockets. Ports of CPython test_asyncio/test_server.py
 * (`test_wait_closed_basic`, `test_wait_closed_race`, `test_close_clients`, `test_abort_clients`,
 * `test_serve_forever` / `test_start_server_1`) and of test_base_events.py's create_connection/create_server error
 * cases, plus the "protocol exception closes only that connection" and corking checks of the transports issue.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProtocolBase, sleep, waitFor, wrapPromise } from '../../src/index.js';
import type { EventLoop, Server, Transport } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { Recorder } from './contract-suite.js';

const T = 10;

class Echo extends ProtocolBase {
  override dataReceived(d: Buffer): void {
    this.transport!.write(d);
  }
}

function portOf(server: Server): number {
  return (server.sockets[0]!.address() as AddressInfo).port;
}

async function connect(loop: EventLoop, port: number): Promise<[Transport, Recorder]> {
  const r = new Recorder(loop);
  const [t] = await loop.createConnection(() => r, '127.0.0.1', port);
  return [t, r];
}

async function roundTrip(loop: EventLoop, port: number): Promise<string> {
  const [t, r] = await connect(loop, port);
  t.write(Buffer.from('ping'));
  await waitFor(r.waitBytes(4), T);
  t.close();
  await waitFor(r.lost, T);
  return r.data().toString();
}

describe('Server', () => {
  const lf = useLoop({ real: true });

  it('close() stops accepting but keeps open connections; waitClosed() waits for them (3.12.1 semantics)', async () => {
    await lf.run(async () => {
      const server = await lf.loop.createServer(() => new Echo(), '127.0.0.1', 0);
      const port = portOf(server);
      expect(server.isServing()).toBe(true);
      const [t, r] = await connect(lf.loop, port);
      while (server.activeCount !== 1) await sleep(0.002);
      server.close();
      server.close();
      expect(server.isServing()).toBe(false);
      expect(server.sockets).toEqual([]);
      const closed = server.waitClosed();
      await sleep(0.02);
      expect(closed.done()).toBe(false);
      t.write(Buffer.from('still here'));
      await waitFor(r.waitBytes(10), T);
      const refused = await connect(lf.loop, port).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'TW_PEER_REJECTED' });
      t.close();
      await waitFor(closed, T);
      expect(server.activeCount).toBe(0);
      await waitFor(server.waitClosed(), T); // already closed and empty: resolves at once
    });
  });

  it('closeClients() flushes and closes every connection; abortClients() drops them', async () => {
    await lf.run(async () => {
      const peers: Recorder[] = [];
      const server = await lf.loop.createServer(() => {
        const r = new Recorder(lf.loop);
        peers.push(r);
        return r;
      }, '127.0.0.1', 0);
      const port = portOf(server);
      const [, a] = await connect(lf.loop, port);
      const [, b] = await connect(lf.loop, port);
      while (peers.length < 2 || peers.some((p) => p.state !== 'made')) await sleep(0.002);
      peers[0]!.transport!.write(Buffer.from('bye'));
      expect(server.activeCount).toBe(2);
      server.closeClients();
      await waitFor(a.lost, T);
      await waitFor(b.lost, T);
      expect(a.data().toString()).toBe('bye');
      const [, c] = await connect(lf.loop, port);
      while (peers.length < 3) await sleep(0.002);
      peers[2]!.transport!.write(Buffer.from('dropped')); // corked in this iteration, then aborted
      server.abortClients();
      await waitFor(c.lost, T);
      expect(c.receivedBytes).toBe(0);
      server.close();
      await waitFor(server.waitClosed(), T);
      for (const p of [...peers, a, b, c]) expect(p.violations).toEqual([]);
    });
  });

  it('serveForever() runs until cancelled; cancelling closes the server and waits for it', async () => {
    await lf.run(async () => {
      const server = await lf.loop.createServer(() => new Echo(), '127.0.0.1', 0, { startServing: false });
      expect(server.isServing()).toBe(false);
      expect(server.sockets).toEqual([]);
      const task = server.serveForever();
      while (!server.isServing()) await sleep(0.002);
      expect(() => server.serveForever()).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT' }));
      expect(await roundTrip(lf.loop, portOf(server))).toBe('ping');
      task.cancel();
      const err = await task.then(() => null, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'TW_CANCELLED' });
      expect(server.isServing()).toBe(false);
      await expect(server.startServing()).rejects.toMatchObject({ code: 'TW_TRANSPORT' });
    });
  });

  it('a protocol that throws loses only its own connection; the server keeps serving', async () => {
    await lf.run(async () => {
      let n = 0;
      const server = await lf.loop.createServer(() => {
        n++;
        if (n === 1) {
          return new (class extends ProtocolBase {
            override dataReceived(): void {
              throw new Error('bad protocol');
            }
          })();
        }
        if (n === 2) throw new Error('bad factory');
        return new Echo();
      }, '127.0.0.1', 0);
      const port = portOf(server);
      const [t1, r1] = await connect(lf.loop, port);
      t1.write(Buffer.from('x'));
      await waitFor(r1.lost, T);
      const [, r2] = await connect(lf.loop, port);
      await waitFor(r2.lost, T);
      expect(await roundTrip(lf.loop, port)).toBe('ping');
      const recs = lf.take();
      expect(recs.map((r) => r.message)).toEqual(['Fatal error: protocol.dataReceived() call failed.', 'protocol factory failed']);
      server.close();
      server.abortClients();
    });
  });

  it('connectionMade that throws or aborts: connectionLost once, last, on both sides; the server keeps serving', async () => {
    await lf.run(async () => {
      let n = 0;
      const peers: Recorder[] = [];
      const server = await lf.loop.createServer(() => {
        const r = new Recorder(lf.loop);
        peers.push(r);
        if (++n === 1) r.throwIn = 'connectionMade';
        else if (n === 2) r.onData = () => {};
        return n === 2 ? Object.assign(r, { connectionMade(t: Transport) { Recorder.prototype.connectionMade.call(r, t); t.abort(); } }) : r;
      }, '127.0.0.1', 0);
      const port = portOf(server);
      const [, a] = await connect(lf.loop, port);
      await waitFor(a.lost, T);
      const [, b] = await connect(lf.loop, port);
      await waitFor(b.lost, T);
      const [t3, d] = await connect(lf.loop, port); // still serving
      t3.close();
      await waitFor(d.lost, T);
      // A client whose connectionMade throws: createConnection still resolves (asyncio too), the connection dies.
      const c = new Recorder(lf.loop);
      c.throwIn = 'connectionMade';
      const [t] = await lf.loop.createConnection(() => c, '127.0.0.1', port);
      expect(t.isClosing()).toBe(true);
      expect((await waitFor(c.lost, T))?.message).toBe('boom in connectionMade');
      while (peers.length < 4 || peers.some((p) => p.state !== 'lost')) await sleep(0.002);
      expect(peers[0]!.events).toEqual(['CM', 'CL:boom in connectionMade']);
      expect(peers[1]!.events).toEqual(['CM', 'CL:null']);
      for (const r of [...peers, a, b, c, d]) {
        expect(r.violations).toEqual([]);
        expect(r.events.filter((e) => e.startsWith('CL')).length).toBe(1);
      }
      expect(lf.take().map((r) => r.message)).toEqual([
        'Fatal error: protocol.connectionMade() call failed.', 'Fatal error: protocol.connectionMade() call failed.',
      ]);
      server.close();
      await waitFor(server.waitClosed(), T);
    });
  });

  it('a peer reset reaches connectionLost as a TransportError with the Node error as cause', async () => {
    await lf.run(async () => {
      const s = new Recorder(lf.loop);
      const server = await lf.loop.createServer(() => s, '127.0.0.1', 0);
      const raw = net.connect(portOf(server), '127.0.0.1');
      raw.on('error', () => {});
      await waitFor(s.made, T);
      raw.resetAndDestroy();
      const exc = await waitFor(s.lost, T);
      expect(exc).toMatchObject({ code: 'TW_TRANSPORT' });
      expect((exc!.cause as NodeJS.ErrnoException).code).toBe('ECONNRESET');
      server.close();
    });
  });

  it('close() gives up on a peer that never sends its EOF after sslShutdownTimeout (TimeoutError)', async () => {
    await lf.run(async () => {
      const s = new Recorder(lf.loop);
      const server = await lf.loop.createServer(() => s, '127.0.0.1', 0, { sslShutdownTimeout: 0.1 });
      const raw = net.connect({ port: portOf(server), host: '127.0.0.1', allowHalfOpen: true });
      raw.on('error', () => {});
      raw.on('data', () => {});
      await waitFor(s.made, T);
      s.transport!.close();
      const exc = await waitFor(s.lost, T);
      expect(exc).toMatchObject({ code: 'TW_TIMEOUT' });
      raw.destroy();
      server.close();
    });
  });

  it('writes of one iteration reach the socket as one write() call', async () => {
    await lf.run(async () => {
      const s = new Recorder(lf.loop);
      const server = await lf.loop.createServer(() => s, '127.0.0.1', 0);
      const [t, c] = await connect(lf.loop, portOf(server));
      const sock = t.getExtraInfo('socket') as net.Socket;
      const write = sock.write;
      let calls = 0;
      sock.write = function counted(this: net.Socket, ...args: Parameters<net.Socket['write']>) {
        calls++;
        return write.apply(this, args);
      } as net.Socket['write'];
      for (let i = 0; i < 50; i++) t.write(Buffer.from(`message ${i};`));
      expect(calls).toBe(0); // corked until the iteration ends
      await waitFor(s.waitBytes(50 * 10 + 40), T);
      expect(calls).toBe(1);
      t.close();
      await waitFor(c.lost, T);
      server.close();
    });
  });

  it("a chunk read by an idle loop reaches dataReceived inside the socket's own 'data' callback, in order with queued work", async () => {
    await lf.run(async () => {
      const order: string[] = [];
      let inEmit = 0;
      class Probe extends ProtocolBase {
        override connectionMade(t: Transport): void {
          super.connectionMade(t);
          const sock = t.getExtraInfo('socket') as net.Socket;
          const emit = sock.emit;
          sock.emit = function counted(this: net.Socket, ev: string | symbol, ...args: unknown[]) {
            if (ev !== 'data') return Reflect.apply(emit, this, [ev, ...args]) as boolean;
            inEmit++;
            try {
              return Reflect.apply(emit, this, [ev, ...args]) as boolean;
            } finally {
              inEmit--;
            }
          } as net.Socket['emit'];
        }
        override dataReceived(d: Buffer): void {
          order.push(`${d.toString()}:${inEmit > 0 ? 'in-callback' : 'later'}`);
          this.transport!.write(d);
        }
      }
      const server = await lf.loop.createServer(() => new Probe(), '127.0.0.1', 0);
      const [t, c] = await connect(lf.loop, portOf(server));
      t.write(Buffer.from('a'));
      await waitFor(c.waitBytes(1), T);
      // Work queued before the read runs first: a timer due now is in the same turn, ahead of the delivery.
      lf.loop.callLater(0, () => order.push('timer'));
      t.write(Buffer.from('b'));
      await waitFor(c.waitBytes(2), T);
      expect(order[0]).toBe('a:in-callback');
      expect(order.slice(1)).toContain('timer');
      expect(order.indexOf('timer')).toBeLessThan(order.indexOf(order.find((x) => x.startsWith('b:'))!));
      t.close();
      await waitFor(c.lost, T);
      server.close();
    });
  });

  it('connection errors: refused, bad host, invalid options', async () => {
    await lf.run(async () => {
      const probe = await lf.loop.createServer(() => new Echo(), '127.0.0.1', 0);
      const port = portOf(probe);
      probe.close();
      await waitFor(probe.waitClosed(), T);
      await expect(lf.loop.createConnection(() => new Echo(), '127.0.0.1', port)).rejects.toMatchObject({ code: 'TW_PEER_REJECTED' });
      await expect(lf.loop.createConnection(() => new Echo(), 'no-such-host.invalid', 1)).rejects.toMatchObject({ code: 'TW_TRANSPORT' });
      await expect(lf.loop.createConnection(() => new Echo(), '127.0.0.1', port, { sslHandshakeTimeout: 1 })).rejects.toThrow(RangeError);
      const taken = await lf.loop.createServer(() => new Echo(), '127.0.0.1', 0);
      await expect(lf.loop.createServer(() => new Echo(), '127.0.0.1', portOf(taken))).rejects.toMatchObject({ code: 'TW_TRANSPORT' });
      taken.close();
    });
  });

  it('Unix sockets: serve, connect, report the path, remove the socket file on close', async () => {
    await lf.run(async () => {
      const path = join(tmpdir(), `tulipwire-srv-${process.pid}.sock`);
      const server = await lf.loop.createUnixServer(() => new Echo(), path);
      const r = new Recorder(lf.loop);
      const [t] = await lf.loop.createUnixConnection(() => r, path);
      expect(t.getExtraInfo('peername')).toBe(path);
      t.write(Buffer.from('unix'));
      await waitFor(r.waitBytes(4), T);
      t.close();
      await waitFor(r.lost, T);
      server.close();
      await waitFor(server.waitClosed(), T);
      const { existsSync } = await wrapPromise(import('node:fs'), lf.loop);
      expect(existsSync(path)).toBe(false);
    });
  });
});
