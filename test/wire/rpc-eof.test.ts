/**
 * A peer that writes its requests and then ends its stream (TLS 1.3 close_notify, `transport.writeEof()`) still gets
 * the replies of handlers that were running when its EOF arrived; a handler that never finishes is cut at
 * `eofTimeout` and the connection closes with a logged reason (closeReason TW_TIMEOUT). Real mutual TLS on
 * 127.0.0.1, port 0. Before the fix the server flushed what was already answered and closed at once: every reply of
 * an asynchronous handler was lost (the client's calls failed with TW_TRANSPORT_CLOSED).
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { portOf, useWireTls } from '../support/wire-tls.js';
import '../../src/net/index.js';
import type { Transport } from '../../src/net/index.js';
import { sleep } from '../../src/loop/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';
import type { RpcProtocolOptions } from '../../src/wire/rpc.js';
import { EOF_TIMEOUT } from '../../src/wire/message-protocol.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x3c);

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', SECRET);
  return k;
}

/** An RpcProtocol that records what connectionLost got. */
class Served extends RpcProtocol {
  lost: (Error | null)[] = [];
  override connectionLost(exc: Error | null): void {
    this.lost.push(exc);
    super.connectionLost(exc);
  }
}

async function serve(router: RpcRouter, options: Partial<RpcProtocolOptions> = {}): Promise<{ port: number; protocols: Served[] }> {
  const protocols: Served[] = [];
  const keyring = ring();
  const server = await fx.loop.createServer(() => {
    const p = new Served({ keyring, side: 'server', logger: {}, router, ...options });
    protocols.push(p);
    return p;
  }, '127.0.0.1', 0, { ssl: wx.ca.serverOptions });
  wx.servers.push(server);
  return { port: portOf(server), protocols };
}

async function connect(port: number): Promise<[Transport, Served]> {
  const [t, p] = await fx.loop.createConnection(() => new Served({ keyring: ring(), side: 'client', logger: {} }),
    '127.0.0.1', port, { ssl: wx.ca.clientOptions });
  wx.clients.push(p);
  return [t, p];
}

async function until(pred: () => boolean, seconds = 5): Promise<void> {
  const end = fx.loop.time() + seconds;
  while (!pred() && fx.loop.time() < end) await sleep(0.002);
  expect(pred()).toBe(true);
}

/** Settles every future: [true, value] or [false, error code]. */
async function outcomes<T>(fs: PromiseLike<T>[]): Promise<[boolean, unknown][]> {
  return Promise.all(fs.map((f) => Promise.resolve(f).then((v): [boolean, unknown] => [true, v],
    (e: { code?: string }): [boolean, unknown] => [false, e.code])));
}

describe('replies of running handlers after the peer ends its stream', () => {
  it.each([
    ['without a nonce store', {}],
    ['with a nonce store (delivery waits for reserve first)', { nonceStore: new MemoryNonceStore() }],
  ])('%s: N requests to a handler that awaits a timer, then writeEof: all N replies arrive, then the server closes', async (_name, options) => {
    await fx.run(async () => {
      const N = 20;
      const router = new RpcRouter();
      let started = 0;
      router.handle('slow', async (n: number) => {
        started++;
        await sleep(0.05);
        return n * 2;
      });
      const { port, protocols } = await serve(router, options);
      const [t, c] = await connect(port);
      expect(t.canWriteEof()).toBe(true); // TLS 1.3
      const calls = Array.from({ length: N }, (_, i) => c.call<number>('slow', i));
      c.flush();
      t.writeEof();
      const got = await outcomes(calls);
      expect(got).toEqual(Array.from({ length: N }, (_, i) => [true, i * 2]));
      expect(started).toBe(N);
      await until(() => protocols[0]?.lost.length === 1);
      const s = protocols[0]!;
      expect(s.closeReason).toBeNull();
      expect(s.lost).toEqual([null]);
      await until(() => c.closed);
    });
  });

  it('a handler that never finishes is cut at eofTimeout: the others are answered, the connection closes with a logged TW_TIMEOUT', async () => {
    await fx.run(async () => {
      const warns: [string, Record<string, unknown>][] = [];
      const router = new RpcRouter();
      const aborted: unknown[] = [];
      router.handle('stuck', async (_p: unknown, ctx) => {
        ctx.signal.addEventListener('abort', () => aborted.push(ctx.signal.reason));
        await fx.loop.createFuture(); // never resolved
      });
      router.handle('quick', async (n: number) => {
        await sleep(0.02);
        return n + 1;
      });
      const { port, protocols } = await serve(router, { eofTimeout: 1, logger: { warn: (m, f) => warns.push([m, f]) } });
      const [t, c] = await connect(port);
      const stuck = c.call('stuck', null, { timeout: null });
      const quick = [c.call<number>('quick', 1), c.call<number>('quick', 2)];
      c.flush();
      t.writeEof();
      expect(await outcomes(quick)).toEqual([[true, 2], [true, 3]]);
      // Answered while the stuck handler still ran: the connection stays open for it until eofTimeout.
      const s = protocols[0]!;
      expect(s.lost).toEqual([]);
      expect(s.rpc!.owedReplies).toBe(1);
      // Bounded: eofTimeout is 1 s; the poll gives up after 5 s and the assertions below fail.
      expect(await outcomes([stuck])).toEqual([[false, 'TW_TRANSPORT_CLOSED']]);
      await until(() => s.lost.length === 1);
      expect(s.closeReason?.code).toBe('TW_TIMEOUT');
      expect(warns.map(([m]) => m)).toEqual(['closing the connection without 1 replies: the peer ended its stream 1 s ago (eofTimeout)']);
      expect(warns[0]![1]).toMatchObject({ code: 'TW_TIMEOUT', side: 'server', owed: 1 });
      expect(aborted).toHaveLength(1);
      expect((aborted[0] as { code?: string }).code).toBe('TW_TRANSPORT_CLOSED');
    });
  });

  it('a client that closes (not half-closes) during a call: its call fails at once; the server finishes the handler, then closes', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      const release = fx.loop.createFuture<void>();
      let finished = 0;
      router.handle('wait', async () => {
        await release;
        finished++;
        return 'done';
      });
      const { port, protocols } = await serve(router);
      const [, c] = await connect(port);
      const call = c.call('wait', null, { timeout: null });
      await until(() => protocols[0]?.rpc?.inFlight === 1);
      c.close();
      // No reply can be read after close(): the call does not wait for the server's own close.
      expect(await outcomes([call])).toEqual([[false, 'TW_TRANSPORT_CLOSED']]);
      const s = protocols[0]!;
      expect(s.lost).toEqual([]); // still waiting for its handler (eofTimeout 30 s)
      release.setResult();
      await until(() => s.lost.length === 1);
      expect(finished).toBe(1);
      expect(s.closeReason).toBeNull();
    });
  });

  it('eofTimeout is checked: a negative, NaN or infinite value is a RangeError; the default is EOF_TIMEOUT (30 s)', () => {
    for (const bad of [-1, Number.NaN, Infinity]) {
      expect(() => new RpcProtocol({ keyring: ring(), side: 'server', eofTimeout: bad })).toThrow(RangeError);
    }
    expect(new RpcProtocol({ keyring: ring(), side: 'server' }).eofTimeout).toBe(30);
    expect(new RpcProtocol({ keyring: ring(), side: 'server', eofTimeout: 0 }).eofTimeout).toBe(0);
    expect(EOF_TIMEOUT).toBe(30);
  });
});
