/**
 * The RPC test vectors of the wire spec, parsed from the doc itself (so the doc stays the single source of truth):
 * every `rpc-vector` block's msgpack bytes must be what the codec writes for its JSON, must decode back to it, and
 * must be accepted by a live endpoint (a REQUEST vector is answered with exactly the RESPONSE/ERROR vector bytes).
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EventLoop, VirtualClock } from '../../src/loop/index.js';
import { decode, encode } from '../../src/wire/codec.js';
import { RPC_KIND, RpcEndpoint } from '../../src/wire/rpc.js';
import type { RpcLink, RpcSecurity } from '../../src/wire/rpc.js';
import { RpcError } from '../../src/errors.js';
import type { BadData } from '../../src/errors.js';

interface Vector { name: string; kind: number; json: string; msgpack: string }

function rpcSection(): string {
  const text = readFileSync(new URL('../../docs/wire-format.md', import.meta.url), 'utf8');
  const at = text.search(/^## RPC\s*$/m);
  if (at < 0) throw new Error('docs/wire-format.md has no "## RPC" section');
  return text.slice(at);
}

function vectors(): Vector[] {
  const out: Vector[] = [];
  for (const m of rpcSection().matchAll(/```rpc-vector\n([\s\S]*?)```/g)) {
    const fields: Record<string, string> = {};
    for (const line of m[1]!.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) fields[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    out.push({ name: fields.name!, kind: Number(fields.kind), json: fields.json!, msgpack: fields.msgpack! });
  }
  return out;
}

const all = vectors();

function frameVectors(): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const m of rpcSection().matchAll(/```wire-vector\n([\s\S]*?)```/g)) {
    const fields: Record<string, string> = {};
    for (const line of m[1]!.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) fields[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    out.push(fields);
  }
  return out;
}

/** Builds a frame from the spec alone: length prefix, fixed header, payload, HMAC-SHA256 over header + payload. */
function buildFrame(f: Record<string, string>): Buffer {
  const kid = Buffer.from(f.kid!, 'ascii');
  const head = Buffer.alloc(4 + kid.length);
  head.writeUInt8(1, 0);                      // version
  head.writeUInt8(Number(f.kind), 1);
  head.writeUInt8(0, 2);                      // flags: not TLS-bound
  head.writeUInt8(kid.length, 3);
  kid.copy(head, 4);
  const nums = Buffer.alloc(24);
  nums.writeBigUInt64BE(BigInt(f.seq!), 0);
  nums.writeBigUInt64BE(BigInt(f.issuedAtMs!), 8);
  nums.writeBigUInt64BE(BigInt(f.expiresAtMs!), 16);
  const body = Buffer.concat([head, nums, Buffer.from(f.nonce!, 'hex'), encode(JSON.parse(f.json!))]);
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(f.secret!, 'hex'), Buffer.alloc(0), `tulipwire/1 ${f.direction}`, 32));
  const tag = createHmac('sha256', key).update(body).digest();
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length + tag.length, 0);
  return Buffer.concat([len, body, tag]);
}

describe('RPC test vectors in the wire spec', () => {
  it('has a vector for every RPC kind', () => {
    expect(new Set(all.map((v) => v.kind))).toEqual(new Set(Object.values(RPC_KIND)));
  });

  it.each(all.map((v) => [v.name, v] as const))('%s: encodes and decodes exactly', (_n, v) => {
    const value = JSON.parse(v.json);
    expect(Buffer.from(encode(value)).toString('hex')).toBe(v.msgpack);
    expect(decode(Buffer.from(v.msgpack, 'hex'))).toEqual(value);
  });

  it.each(frameVectors().map((f) => [f.name!, f] as const))('%s: the frame is rebuilt byte for byte from the spec', (_n, f) => {
    expect(buildFrame(f).toString('hex')).toBe(f.frame);
    expect(Buffer.from(encode(JSON.parse(f.json!))).toString('hex')).toBe(f.payload);
  });

  it('the frames carry the request and response vectors', () => {
    const payloads = frameVectors().map((f) => f.payload);
    const byName = new Map(all.map((v) => [v.name, v.msgpack]));
    expect(payloads).toEqual([byName.get('request'), byName.get('response')]);
  });

  it('has a request and a response frame', () => {
    expect(frameVectors().map((f) => Number(f.kind)).sort()).toEqual([RPC_KIND.REQUEST, RPC_KIND.RESPONSE]);
  });

  it('a live endpoint accepts every vector and answers the REQUEST vectors with the reply vectors', async () => {
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    try {
      const sent: { kind: number; hex: string }[] = [];
      const rejected: BadData[] = [];
      const link: RpcLink = {
        loop,
        send(message, o) { sent.push({ kind: o.kind, hex: Buffer.from(encode(message)).toString('hex') }); },
        reject(e) { rejected.push(e); },
      };
      const roles: RpcSecurity = { hasRole: (r) => r === 'user' };
      const ep = new RpcEndpoint(link, { securityContext: ({ token }) => (token === 'tok-1' ? roles : null) });
      ep.handle('add', ([a, b]: [number, number]) => a + b);
      ep.handle('shop.charge', () => { throw new RpcError('never runs', { remoteCode: 'X' }); }, { roles: 'buyer' });
      ep.onNotify('room.tick', () => {});
      const byName = new Map(all.map((v) => [v.name, v]));
      await loop.runUntilComplete(loop.createTask(async () => {
        const feed = (v: Vector): void => {
          const meta = { kind: v.kind, kid: 'k1', issuedAt: loop.clock.epoch(), expiresAt: loop.clock.epoch() + 30,
            nonce: Buffer.alloc(16, v.kind), peer: null };
          expect(ep.receive(decode(Buffer.from(v.msgpack, 'hex')), meta)).toBe(true);
        };
        const settle = async (): Promise<void> => {
          const done = loop.createFuture<void>();
          loop.callLater(0.01, () => done.setResult());
          await done;
        };
        // CANCEL last: arriving right after request 7 it would cancel it before it ran (answered TW_CANCELLED).
        for (const v of all) if (v.kind !== RPC_KIND.CANCEL) feed(v);
        await settle();
        for (const v of all) if (v.kind === RPC_KIND.CANCEL) feed(v);
        await settle();
      }));
      expect(rejected).toEqual([]);
      expect(sent).toEqual([
        { kind: RPC_KIND.RESPONSE, hex: byName.get('response')!.msgpack },
        { kind: RPC_KIND.ERROR, hex: byName.get('error-forbidden')!.msgpack },
      ]);
    } finally {
      loop.close();
    }
  });
});
