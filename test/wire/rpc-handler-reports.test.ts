/**
 * What the default exception handler prints for a failing RPC or notification handler (found by a game developer's
 * trial: `endpoint: [object Object]`, `socket: [object Object]`, and no word of whose call it was). asyncio prints
 * `repr()` of each context value; tulipwire now prints a value's own `toString` when it has one, a socket as
 * `<TLSSocket local -> remote>`, anything else two levels deep, and a handler's report names the peer it ran for.
 */
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/loop/index.js';
import { sleep } from '../../src/loop/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { memoryRpcPair, until } from '../support/rpc-pair.js';
import { RpcError } from '../../src/errors.js';

function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 7));
  return k;
}

describe('default exception handler output', () => {
  it('a failing request and notification handler: the method, the peer, a readable endpoint, the stack', async () => {
    const printed: string[] = [];
    const loop = new EventLoop({ logger: { warn: (m) => printed.push(m), error: (m) => printed.push(m) } });
    await loop.runUntilComplete(async () => {
      const { s, c, ct } = await memoryRpcPair(loop, keyring());
      s.handle('join', () => {
        throw new Error('room is full');
      });
      s.onNotify('input', () => {
        throw new Error('not in a room');
      });
      await expect(c.call('join', {})).rejects.toMatchObject({ code: 'TW_RPC', message: 'internal error' });
      c.notify('input', { dx: 1 });
      await until(loop, () => printed.length >= 2);
      ct.close();
      await sleep(0);
    });
    loop.close();
    expect(printed).toHaveLength(2);
    expect(printed[0]).toMatch(/^RPC handler join failed\nendpoint: <RpcEndpoint in flight \d+, calls waiting 0>\npeer: anonymous\nError: room is full\n/);
    expect(printed[1]).toMatch(/^notification handler input failed\nendpoint: <RpcEndpoint .*>\npeer: anonymous\nError: not in a room\n/);
    for (const p of printed) expect(p).not.toContain('[object ');
  });

  it('any context value: its own toString, a socket by its addresses, a plain object two levels deep, never a throw', async () => {
    const printed: string[] = [];
    const loop = new EventLoop({ logger: { warn: () => {}, error: (m) => printed.push(m) } });
    const server = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    try {
      loop.defaultExceptionHandler({
        message: 'something failed',
        socket: sock,
        data: { room: 7, players: ['ann', 'bob'], nested: { deep: true } },
        handle: loop.callSoon(() => {}),
        count: 3,
        broken: { toString(): string { throw new Error('no'); } },
      });
    } finally {
      sock.destroy();
      server.close();
      loop.close();
    }
    const lines = printed[0]!.split('\n');
    expect(lines[0]).toBe('something failed');
    // A toString that throws: shown as util.inspect shows it (1ba9f61; it used to read '<unprintable>').
    expect(lines).toContain('broken: { toString: [Function: toString] }');
    expect(lines).toContain('count: 3');
    expect(lines).toContain("data: { room: 7, players: [ 'ann', 'bob' ], nested: { deep: true } }");
    expect(lines.find((l) => l.startsWith('handle: '))).toMatch(/^handle: <Handle /);
    expect(lines.find((l) => l.startsWith('socket: '))).toMatch(new RegExp(`^socket: <Socket 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${port}>$`));
  });
});

describe('a notification handler that refuses with a typed error', () => {
  it('the peer gets the error (no id), nothing is logged; a plain Error is still reported with its stack', async () => {
    const printed: string[] = [];
    const loop = new EventLoop({ logger: { warn: (m) => printed.push(m), error: (m) => printed.push(m) } });
    const unmatched: { code: string; remoteCode?: string; message: string }[] = [];
    await loop.runUntilComplete(async () => {
      const { s, c, ct } = await memoryRpcPair(loop, keyring(), {}, {
        onUnmatchedError: (e) => { unmatched.push(e as unknown as { code: string; remoteCode?: string; message: string }); },
      });
      s.onNotify('input', (p: { inRoom: boolean }) => {
        if (!p.inRoom) throw new RpcError('not in a room', { remoteCode: 'GAME_NOT_IN_ROOM', data: { room: null } });
      });
      s.onNotify('buggy', () => {
        throw new Error('a bug');
      });
      for (let i = 0; i < 5; i++) c.notify('input', { inRoom: false });
      c.notify('input', { inRoom: true });
      await until(loop, () => unmatched.length >= 5);
      c.notify('buggy', {});
      await until(loop, () => printed.length >= 1);
      await sleep(0.01);
      ct.close();
      await sleep(0);
    });
    loop.close();
    expect(unmatched).toHaveLength(5);
    expect(unmatched[0]).toMatchObject({ code: 'TW_RPC', remoteCode: 'GAME_NOT_IN_ROOM', message: 'not in a room', data: { room: null } });
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatch(/^notification handler buggy failed\n.*\npeer: anonymous\nError: a bug\n/s);
  });
});
