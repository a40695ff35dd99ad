/**
 * The test vectors of docs/wire-format.md, parsed from the document itself, so the spec stays the single source of
 * truth. Each vector is checked against node:crypto directly (HKDF, HMAC: independent of the implementation) and
 * against the implementation: every MAC engine must build the same frame, and an Opener on the receiving side must
 * accept it (or reject it with the documented code).
 */
import { describe, expect, it } from 'vitest';
import { createHmac, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { VirtualClock } from '../../src/loop/clock.js';
import { Keyring, deriveDirectionKey } from '../../src/wire/keyring.js';
import { KeySchedule, Opener, sealEnvelope } from '../../src/wire/signing.js';
import { FrameDecoder } from '../../src/wire/frames.js';
import { decode, encode } from '../../src/wire/codec.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { nodeMac } from '../../src/wire/mac.js';
import { defaultMacEngine, nativeMac } from '../../src/wire/mac-native.js';
import type { BadData, SignatureExpired } from '../../src/errors.js';

const doc = readFileSync(new URL('../../docs/wire-format.md', import.meta.url), 'utf8');

function blocks(tag: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const m of doc.matchAll(new RegExp('```' + tag + '\\n([\\s\\S]*?)```', 'g'))) {
    const f: Record<string, string> = {};
    for (const line of m[1]!.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) f[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    out.push(f);
  }
  return out;
}

const vectors = blocks('wire-vector');
const rejects = blocks('wire-reject');
const hex = (s: string) => Buffer.from(s, 'hex');
const engines = [jsMac, nodeMac, ...(nativeMac !== null ? [nativeMac] : [])];

interface Outcome { ok: { payload: Buffer; meta: { seq: number; kid: string; kind: number } }[]; bad: BadData[] }

function open(frame: Buffer, receiver: 'client' | 'server', ring: Keyring, nowMs: number, skew: number, binding: Buffer | null): Outcome {
  const engine = defaultMacEngine();
  const clock = new VirtualClock({ epochStart: nowMs / 1000 });
  const opener = new Opener({ schedule: new KeySchedule({ keyring: ring, side: receiver, engine, binding }), engine, clock, skew, maxTtl: 300 });
  const out: Outcome = { ok: [], bad: [] };
  new FrameDecoder().feedRanges(frame, (b, s, e) => opener.add(b, s, e));
  opener.run((meta, b, s, e) => out.ok.push({ payload: Buffer.from(b.subarray(s, e)), meta }), (err) => out.bad.push(err));
  return out;
}

describe('docs/wire-format.md vectors', () => {
  it('the document has the vectors', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(4);
    expect(rejects.length).toBeGreaterThanOrEqual(8);
  });

  describe.each(vectors.map((v) => [v.name!, v] as const))('%s', (_name, v) => {
    const binding = v.binding === 'none' ? null : hex(v.binding!);
    const dir = v.direction as 'c2s' | 's2c';

    it('direction key = HKDF-SHA256(secret, salt = binding, info = "tulipwire/1 <dir>")', () => {
      const ref = Buffer.from(hkdfSync('sha256', hex(v.secret!), binding ?? Buffer.alloc(0), `tulipwire/1 ${dir}`, 32));
      expect(ref.toString('hex')).toBe(v.directionKey);
      expect(deriveDirectionKey(hex(v.secret!), dir, binding).toString('hex')).toBe(v.directionKey);
    });

    it('the payload is the codec\'s encoding of json, and decodes back to it', () => {
      const value = JSON.parse(v.json!);
      expect(encode(value).toString('hex')).toBe(v.payload);
      expect(decode(hex(v.payload!))).toEqual(value);
    });

    it('the frame is exactly the documented layout with an HMAC over everything before the tag (node:crypto)', () => {
      const kid = Buffer.from(v.kid!, 'latin1');
      const payload = hex(v.payload!);
      const u64 = (n: string) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };
      const signed = Buffer.concat([Buffer.from([1, Number(v.kind), Number(v.flags), kid.length]), kid, u64(v.seq!),
        u64(v.issuedAtMs!), u64(v.expiresAtMs!), hex(v.nonce!), payload]);
      const tag = createHmac('sha256', hex(v.directionKey!)).update(signed).digest();
      const len = Buffer.alloc(4);
      len.writeUInt32BE(signed.length + 32);
      expect(Buffer.concat([len, signed, tag]).toString('hex')).toBe(v.frame);
    });

    it('every MAC engine builds the same frame', () => {
      for (const engine of engines) {
        const f = sealEnvelope({ key: hex(v.directionKey!), kid: v.kid!, kind: Number(v.kind), flags: Number(v.flags), seq: Number(v.seq),
          issuedAtMs: Number(v.issuedAtMs), expiresAtMs: Number(v.expiresAtMs), nonce: hex(v.nonce!), payload: hex(v.payload!) }, engine);
        expect(f.toString('hex'), engine.name).toBe(v.frame);
      }
    });

    it('the receiving side accepts it at `now`', () => {
      const ring = new Keyring();
      ring.add(v.kid!, hex(v.secret!));
      const out = open(hex(v.frame!), dir === 'c2s' ? 'server' : 'client', ring, Number(v.now), 5, binding);
      expect(out.bad.map((e) => e.message)).toEqual([]);
      expect(out.ok).toHaveLength(1);
      expect(out.ok[0]!.meta).toMatchObject({ seq: Number(v.seq), kid: v.kid, kind: Number(v.kind) });
      expect(decode(out.ok[0]!.payload)).toEqual(JSON.parse(v.json!));
    });
  });

  describe.each(rejects.map((v) => [v.name!, v] as const))('reject %s', (_name, v) => {
    it(`is rejected with ${v.code}`, () => {
      const ring = new Keyring();
      for (const pair of v.keyring!.split(',')) {
        const [kid, secret] = pair.trim().split('=');
        ring.add(kid!, hex(secret!));
      }
      const frame = hex(v.frame!);
      const out = open(frame, v.receiver as 'client' | 'server', ring, Number(v.now), Number(v.skew), null);
      if (v.code === 'TW_BAD_PAYLOAD') {
        // the envelope is fine; the payload check refuses it
        expect(out.bad).toEqual([]);
        expect(() => decode(out.ok[0]!.payload)).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
        return;
      }
      expect(out.ok).toEqual([]);
      expect(out.bad.map((e) => e.code)).toEqual([v.code]);
      if (v.lateBy !== undefined) expect((out.bad[0] as SignatureExpired).lateBy).toBeCloseTo(Number(v.lateBy), 9);
    });
  });
});
