/**
 * A message whose frame would exceed maxFrameSize is refused where it is sent (TW_BAD_PAYLOAD naming both sizes,
 * nothing written), as every other message the peer would refuse is: the peer refuses such a frame from its length
 * alone and, since that error is fatal, closes the connection, which took every other call on it down with it and
 * told the sender only "the connection closed". Both ends use the same maxFrameSize (the sender's is its best guess
 * of the peer's, as for maxTtl). Real mutual TLS on 127.0.0.1, port 0; a frame exactly at the limit still goes
 * through (the boundary is checked byte for byte).
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { portOf, Recorder, serveRecorders, useWireTls } from '../support/wire-tls.js';
import '../../src/net/index.js';
import { sleep } from '../../src/loop/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { RpcProtocol, RpcRouter } from '../../src/wire/rpc.js';
import { RpcError } from '../../src/errors.js';
import type { RpcProtocolOptions } from '../../src/wire/rpc.js';
import { HEADER_FIXED_SIZE } from '../../src/wire/envelope.js';
import { TAG_SIZE } from '../../src/wire/mac.js';

const fx = useLoop({ real: true });
const wx = useWireTls(fx);
const SECRET = Buffer.alloc(32, 0x6e);
// Small enough to keep the test's bytes bounded, above 64 KiB so a bin payload is a bin32 (5 header bytes).
const LIMIT = 70_000;
// A bin32 payload of n bytes in an envelope with kid "k1": the frame body is 44 + 2 + (5 + n) + 32 bytes.
const BIN_AT_LIMIT = LIMIT - HEADER_FIXED_SIZE - 2 - 5 - TAG_SIZE;

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', SECRET);
  return k;
}

class Rpc extends RpcProtocol {
  lost: (Error | null)[] = [];
  override connectionLost(exc: Error | null): void {
    this.lost.push(exc);
    super.connectionLost(exc);
  }
}

async function until(pred: () => boolean, seconds = 5): Promise<void> {
  const end = fx.loop.time() + seconds;
  while (!pred() && fx.loop.time() < end) await sleep(0.002);
  expect(pred()).toBe(true);
}

async function rpcPair(router: RpcRouter, options: Partial<RpcProtocolOptions> = {}): Promise<{ server: Rpc[]; client: Rpc }> {
  const server: Rpc[] = [];
  const keyring = ring();
  const srv = await fx.loop.createServer(() => {
    const p = new Rpc({ keyring, side: 'server', logger: {}, router, maxFrameSize: LIMIT, ...options });
    server.push(p);
    return p;
  }, '127.0.0.1', 0, { ssl: wx.ca.serverOptions });
  wx.servers.push(srv);
  const [, client] = await fx.loop.createConnection(() => new Rpc({ keyring: ring(), side: 'client', logger: {}, maxFrameSize: LIMIT, ...options }),
    '127.0.0.1', portOf(srv), { ssl: wx.ca.clientOptions });
  wx.clients.push(client);
  return { server, client };
}

describe('a message too large for maxFrameSize is refused at send time', () => {
  it('sendMessage: a frame of exactly maxFrameSize is sent and delivered; one byte more throws TW_BAD_PAYLOAD with both sizes, nothing sent', async () => {
    await fx.run(async () => {
      const { port, protocols } = await serveRecorders(fx.loop, wx.ca.serverOptions, wx.servers, { keyring: ring(), maxFrameSize: LIMIT });
      const [, c] = await fx.loop.createConnection(() => new Recorder({ keyring: ring(), side: 'client', logger: {}, maxFrameSize: LIMIT }),
        '127.0.0.1', port, { ssl: wx.ca.clientOptions });
      wx.clients.push(c);
      let err: unknown = null;
      try {
        c.sendMessage(Buffer.alloc(BIN_AT_LIMIT + 1, 1));
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string } | null)?.code).toBe('TW_BAD_PAYLOAD');
      expect((err as Error).message).toContain(String(LIMIT + 1));
      expect((err as Error).message).toContain(String(LIMIT));
      expect(c.stats.sent).toBe(0);
      c.sendMessage(Buffer.alloc(BIN_AT_LIMIT, 2));
      c.sendMessage('after');
      await until(() => (protocols[0]?.got.length ?? 0) === 2);
      const s = protocols[0]!;
      expect((s.got[0]![0] as Buffer).length).toBe(BIN_AT_LIMIT);
      expect(s.got[1]![0]).toBe('after');
      // The refused message used no sequence number: the two sent are 1 and 2.
      expect(s.got.map(([, m]) => m.seq)).toEqual([1, 2]);
      expect(s.rejected).toEqual([]);
      expect(s.closeReason).toBeNull();
    });
  });

  it('call: params too large fail that call at once with TW_BAD_PAYLOAD; a call running at the same time is answered, the connection stays', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      router.handle('slow', async (n: number) => { await sleep(0.05); return n + 1; });
      router.handle('len', (b: Buffer) => b.length);
      const { server, client } = await rpcPair(router);
      const slow = client.call<number>('slow', 41);
      const big = client.call('len', Buffer.alloc(BIN_AT_LIMIT + 1));
      // Refused before anything was written, not after a round trip.
      expect(big.done()).toBe(true);
      expect((big.exception() as { code?: string }).code).toBe('TW_BAD_PAYLOAD');
      expect(await slow).toBe(42);
      expect(await client.call('len', Buffer.alloc(1000))).toBe(1000);
      expect(client.lost).toEqual([]);
      expect(server[0]!.closeReason).toBeNull();
      expect(server[0]!.stats.rejected).toBe(0);
    });
  });

  it('a handler result too large for the frame: the caller gets TW_BAD_PAYLOAD, other calls and the connection carry on', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      router.handle('blob', (n: number) => Buffer.alloc(n));
      router.handle('slow', async (n: number) => { await sleep(0.05); return n + 1; });
      const { server, client } = await rpcPair(router);
      const slow = client.call<number>('slow', 1);
      let code: string | undefined;
      try {
        await client.call('blob', BIN_AT_LIMIT + 1);
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      expect(code).toBe('TW_BAD_PAYLOAD');
      expect(await slow).toBe(2);
      expect(client.lost).toEqual([]);
      expect(client.closeReason).toBeNull();
      // The server reported the refused result to its loop's exception handler, as for any result it cannot send.
      const records = fx.take();
      expect(records.some((r) => /could not be sent/.test(String(r.message)))).toBe(true);
      expect(server[0]!.lost).toEqual([]);
    });
  });
});

describe('an error reply too large for the frame', () => {
  it('a handler error whose message does not fit: the caller gets TW_BAD_PAYLOAD at once, not its timeout', async () => {
    await fx.run(async () => {
      const router = new RpcRouter();
      router.handle('fail', () => { throw new RpcError('x'.repeat(LIMIT), { remoteCode: 'APP_HUGE' }); });
      const { server, client } = await rpcPair(router);
      // The timeout only bounds the test: the reply comes at once.
      const err = await client.call('fail', null, { timeout: 3 }).then(() => null,
        (e: { code?: string; remote?: boolean; message?: string }) => e);
      expect(err?.code).toBe('TW_BAD_PAYLOAD');
      expect(err?.remote).toBe(true);
      expect(err?.message).toMatch(/error reply .*could not be encoded/);
      expect(await client.call('fail2', null).catch((e: { code?: string }) => e.code)).toBe('TW_METHOD_NOT_FOUND');
      expect(client.lost).toEqual([]);
      expect(server[0]!.closeReason).toBeNull();
      const records = fx.take();
      expect(records.some((r) => /could not be sent/.test(String(r.message)))).toBe(true);
    });
  });
});
