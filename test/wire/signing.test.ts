import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { VirtualClock } from '../../src/loop/clock.js';
import { Keyring, deriveDirectionKey, DIRECTION_LABELS } from '../../src/wire/keyring.js';
import { ENVELOPE_VERSION, FLAG_TLS_BOUND, HEADER_FIXED_SIZE, KIND, MIN_ENVELOPE_SIZE, parseHeader, writeHeader } from '../../src/wire/envelope.js';
import { KeySchedule, NoncePool, Opener, ReplayWindow, Sealer, sealEnvelope } from '../../src/wire/signing.js';
import type { MessageMeta } from '../../src/wire/signing.js';
import { FrameDecoder } from '../../src/wire/frames.js';
import { encode } from '../../src/wire/codec.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { nodeMac } from '../../src/wire/mac.js';
import { defaultMacEngine } from '../../src/wire/mac-native.js';
import type { BadData, SignatureExpired, UnknownKeyId } from '../../src/errors.js';

const secretA = Buffer.alloc(32, 0xa1);
const secretB = Buffer.alloc(32, 0xb2);

function ring(...keys: [string, Buffer, boolean?][]): Keyring {
  const r = new Keyring();
  for (const [kid, s, sign] of keys) r.add(kid, s, { sign: sign ?? true });
  return r;
}

interface Received { ok: { meta: MessageMeta; payload: Buffer }[]; bad: BadData[] }

/** A client sealer and a server opener over the given keyrings (the same by default). */
function pair(o: { clientRing?: Keyring; serverRing?: Keyring; clock?: VirtualClock; skew?: number; maxTtl?: number;
  clientBinding?: Buffer | null; serverBinding?: Buffer | null; engine?: typeof jsMac } = {}) {
  const clock = o.clock ?? new VirtualClock({ epochStart: 1_700_000_000 });
  const engine = o.engine ?? defaultMacEngine();
  const cr = o.clientRing ?? ring(['k1', secretA]);
  const sr = o.serverRing ?? cr;
  const sealer = new Sealer({ schedule: new KeySchedule({ keyring: cr, side: 'client', engine, binding: o.clientBinding ?? null }), engine, clock });
  const opener = new Opener({ schedule: new KeySchedule({ keyring: sr, side: 'server', engine, binding: o.serverBinding ?? null }), engine, clock,
    skew: o.skew ?? 5, maxTtl: o.maxTtl ?? 300 });
  const dec = new FrameDecoder();
  const got: Received = { ok: [], bad: [] };
  const deliver = (bytes: Buffer) => {
    dec.feedRanges(bytes, (b, s, e) => opener.add(b, s, e));
    opener.run((meta, b, s, e) => got.ok.push({ meta, payload: Buffer.from(b.subarray(s, e)) }), (err) => got.bad.push(err));
  };
  const flush = (): Buffer => {
    const out: Buffer[] = [];
    sealer.flush((b) => out.push(Buffer.from(b)));
    return Buffer.concat(out);
  };
  return { clock, sealer, opener, got, deliver, flush };
}

describe('Keyring', () => {
  it('newest signing key signs, verify-only keys never sign, all verify', () => {
    const r = new Keyring();
    r.add('old', secretA);
    expect(r.signingKid()).toBe('old');
    r.add('new', secretB, { sign: false });
    expect(r.signingKid()).toBe('old');
    r.add('new', secretB);
    expect(r.signingKid()).toBe('new');
    expect(r.kids()).toEqual(['old', 'new']);
    expect(r.remove('new')).toBe(true);
    expect(r.signingKid()).toBe('old');
    expect(r.remove('nope')).toBe(false);
    r.remove('old');
    expect(() => r.signingKid()).toThrow(RangeError);
  });

  it('validates kids and secrets and never reuses a kid for other material', () => {
    const r = new Keyring();
    expect(() => r.add('', secretA)).toThrow(TypeError);
    expect(() => r.add('a'.repeat(33), secretA)).toThrow(TypeError);
    expect(() => r.add('bad kid', secretA)).toThrow(TypeError);
    expect(() => r.add('k', Buffer.alloc(31))).toThrow(RangeError);
    r.add('k', secretA);
    expect(() => r.add('k', secretB)).toThrow(/never reuse a kid/);
    const v = r.version;
    r.add('k', secretA, { sign: false });
    expect(r.version).toBe(v + 1);
  });

  it('derives direction keys with HKDF-SHA256 and the documented labels', () => {
    expect(DIRECTION_LABELS).toEqual({ c2s: 'tulipwire/1 c2s', s2c: 'tulipwire/1 s2c' });
    const c2s = deriveDirectionKey(secretA, 'c2s');
    const s2c = deriveDirectionKey(secretA, 's2c');
    expect(c2s.equals(Buffer.from(hkdfSync('sha256', secretA, Buffer.alloc(0), 'tulipwire/1 c2s', 32)))).toBe(true);
    expect(c2s.equals(s2c)).toBe(false);
    const bound = deriveDirectionKey(secretA, 'c2s', Buffer.alloc(32, 7));
    expect(bound.equals(c2s)).toBe(false);
    // an empty salt is HKDF's default salt of 32 zero bytes
    expect(c2s.equals(Buffer.from(hkdfSync('sha256', secretA, Buffer.alloc(32), 'tulipwire/1 c2s', 32)))).toBe(true);
  });
});

describe('envelope header', () => {
  const fields = { kind: KIND.MESSAGE, flags: 0, kid: Buffer.from('k1'), seq: 7, issuedAtMs: 1_700_000_000_123, expiresAtMs: 1_700_000_030_123, nonce: Buffer.alloc(16, 0xcc) };

  it('writes every byte where the layout says', () => {
    const buf = Buffer.alloc(HEADER_FIXED_SIZE + 2 + 1 + 32);
    const p = writeHeader(buf, 0, fields);
    expect(p).toBe(46);
    expect(buf.subarray(0, 46).toString('hex')).toBe(
      '01' + '10' + '00' + '02' + '6b31' + '0000000000000007' + '0000018bcfe5687b' + '0000018bcfe5ddab' + 'cc'.repeat(16));
    const h = parseHeader(buf, 0, buf.length);
    expect(h).toMatchObject({ kind: 16, flags: 0, kidStart: 4, kidLen: 2, seq: 7, issuedAtMs: fields.issuedAtMs, expiresAtMs: fields.expiresAtMs, nonceStart: 30, payloadStart: 46, tagStart: 47 });
  });

  it.each([
    ['too short', (b: Buffer) => b.subarray(0, MIN_ENVELOPE_SIZE - 1), /shorter than the minimum/],
    ['wrong version', (b: Buffer) => { b[0] = 2; return b; }, /unsupported envelope version 2/],
    ['kind 0', (b: Buffer) => { b[1] = 0; return b; }, /kind 0/],
    ['reserved flag', (b: Buffer) => { b[2] = 0x02; return b; }, /reserved flag bits/],
    ['kid length 0', (b: Buffer) => { b[3] = 0; return b; }, /kid length 0/],
    ['kid length 33', (b: Buffer) => { b[3] = 33; return b; }, /kid length 33/],
    ['seq 0', (b: Buffer) => { b.fill(0, 6, 14); return b; }, /seq is outside/],
    ['seq beyond 2^53', (b: Buffer) => { b.fill(0xff, 6, 14); return b; }, /seq is outside/],
    ['time beyond 2^53', (b: Buffer) => { b.fill(0xff, 14, 22); return b; }, /timestamp beyond/],
    ['expires before issued', (b: Buffer) => { b.fill(0, 22, 30); return b; }, /expiresAt is before issuedAt/],
    ['no payload', (b: Buffer) => b.subarray(0, 46 + 32), /no payload|shorter/],
  ])('rejects %s as MalformedEnvelope', (_n, mutate, re) => {
    const buf = Buffer.alloc(46 + 5 + 32);
    writeHeader(buf, 0, fields);
    const b = mutate(buf);
    expect(() => parseHeader(b, 0, b.length)).toThrow(re);
    try { parseHeader(b, 0, b.length); } catch (e) { expect((e as BadData).code).toBe('TW_MALFORMED_ENVELOPE'); expect((e as BadData).fatal).toBe(false); }
  });

  it('fuzz: random bytes never make parseHeader throw anything but MalformedEnvelope', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
      const b = Buffer.from(bytes);
      if (b.length > 0) b[0] = ENVELOPE_VERSION;
      try { parseHeader(b, 0, b.length); } catch (e) { expect((e as BadData).code).toBe('TW_MALFORMED_ENVELOPE'); }
    }), { numRuns: 2000 });
  });
});

describe('ReplayWindow', () => {
  it('accepts fresh numbers, in or out of order within the window, once', () => {
    const w = new ReplayWindow(64);
    for (const s of [1, 2, 5, 3, 4]) { expect(w.check(s)).toBe(true); w.mark(s); }
    for (const s of [1, 2, 3, 4, 5]) expect(w.check(s)).toBe(false);
    w.mark(100);
    expect(w.check(36)).toBe(false); // 100 - 64: older than the window
    expect(w.check(37)).toBe(true);
    expect(w.check(99)).toBe(true);
    w.mark(99);
    expect(w.check(99)).toBe(false);
    w.mark(10_000); // a jump wider than the window clears it
    expect(w.check(9_999)).toBe(true);
    expect(w.check(100)).toBe(false);
  });

  it('property: behaves like a set of seen numbers restricted to the window (any width, seq up to 2^53)', () => {
    const sizes = fc.constantFrom(32, 96, 128, 1024);
    // bases around the int32/uint32 boundaries and 2^53, where the power-of-two bit index uses ToInt32
    const bases = fc.constantFrom(0, 2 ** 31 - 200, 2 ** 32 - 200, 2 ** 53 - 1000);
    fc.assert(fc.property(sizes, bases, fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 300 }), (size, base, offs) => {
      const seqs = offs.map((o) => base + o);
      const w = new ReplayWindow(size);
      const seen = new Set<number>();
      let top = 0;
      for (const s of seqs) {
        const expected = !seen.has(s) && s > top - size;
        expect(w.check(s)).toBe(expected);
        if (expected) { w.mark(s); seen.add(s); top = Math.max(top, s); }
      }
    }), { numRuns: 300 });
  });
});

describe('NoncePool', () => {
  it('hands out distinct 16-byte views that stay valid across pool refills', () => {
    const pool = new NoncePool(64);
    const ns = Array.from({ length: 20 }, () => pool.next());
    const copies = ns.map((n) => n.toString('hex'));
    expect(new Set(copies).size).toBe(20);
    for (const n of ns) expect(n.length).toBe(16);
    for (let i = 0; i < 100; i++) pool.next();
    expect(ns.map((n) => n.toString('hex'))).toEqual(copies);
  });
});

describe('Sealer and Opener', () => {
  it('round-trips a batch and MACs exactly the bytes before the tag with the c2s key', () => {
    const p = pair({ engine: jsMac });
    const n1 = Buffer.alloc(16, 0x71);
    expect(p.sealer.append(Buffer.from([0x01]), KIND.MESSAGE, 30, n1)).toBe(1);
    expect(p.sealer.append(Buffer.from([0x02, 0x03]), KIND.NOTIFY, 10)).toBe(2);
    expect(p.sealer.pending).toBe(2);
    const bytes = p.flush();
    expect(p.sealer.pending).toBe(0);
    // check the first frame by hand: length, header, payload, HMAC(c2s key, body without tag)
    const len = bytes.readUInt32BE(0);
    const body = bytes.subarray(4, 4 + len);
    const tag = createHmac('sha256', deriveDirectionKey(secretA, 'c2s')).update(body.subarray(0, len - 32)).digest();
    expect(body.subarray(len - 32).equals(tag)).toBe(true);
    p.deliver(bytes);
    expect(p.got.bad).toEqual([]);
    expect(p.got.ok.map((m) => [m.meta.seq, m.meta.kind, m.meta.kid, m.payload.toString('hex')])).toEqual([[1, 16, 'k1', '01'], [2, 4, 'k1', '0203']]);
    expect(p.got.ok[0]!.meta.nonce.equals(n1)).toBe(true);
    expect(p.got.ok[0]!.meta.issuedAt).toBe(1_700_000_000);
    expect(p.got.ok[0]!.meta.expiresAt).toBe(1_700_000_030);
  });

  it('every engine produces the same frames', () => {
    const clock = new VirtualClock({ epochStart: 1_700_000_000 });
    const frames = [jsMac, nodeMac, defaultMacEngine()].map((engine) => {
      const kr = ring(['k1', secretA]);
      const s = new Sealer({ schedule: new KeySchedule({ keyring: kr, side: 'server', engine }), engine, clock });
      for (let i = 0; i < 5; i++) s.append(Buffer.alloc(i * 30 + 1, i), KIND.MESSAGE, 30, Buffer.alloc(16, i));
      const out: Buffer[] = [];
      s.flush((b) => out.push(Buffer.from(b)));
      return Buffer.concat(out).toString('hex');
    });
    expect(frames[1]).toBe(frames[0]);
    expect(frames[2]).toBe(frames[0]);
  });

  it('a message is rejected in the other direction (no reflection)', () => {
    const clock = new VirtualClock({ epochStart: 1_700_000_000 });
    const engine = defaultMacEngine();
    const kr = ring(['k1', secretA]);
    const sealer = new Sealer({ schedule: new KeySchedule({ keyring: kr, side: 'client', engine }), engine, clock });
    // the client's own opener expects s2c
    const opener = new Opener({ schedule: new KeySchedule({ keyring: kr, side: 'client', engine }), engine, clock, skew: 5, maxTtl: 300 });
    sealer.append(Buffer.from([1]), KIND.MESSAGE, 30);
    const bad: BadData[] = [];
    sealer.flush((b) => new FrameDecoder().feedRanges(b, (x, s, e) => opener.add(x, s, e)));
    opener.run(() => expect.unreachable(), (e) => bad.push(e));
    expect(bad.map((e) => e.code)).toEqual(['TW_BAD_SIGNATURE']);
  });

  it('a flipped bit anywhere rejects that frame only, with BadSignature or MalformedEnvelope', () => {
    const p = pair();
    p.sealer.append(Buffer.from([0xa0]), KIND.MESSAGE, 30);
    p.sealer.append(Buffer.from([0xa1]), KIND.MESSAGE, 30);
    p.sealer.append(Buffer.from([0xa2]), KIND.MESSAGE, 30);
    const clean = p.flush();
    const frameLen = clean.length / 3;
    for (let i = frameLen + 4; i < 2 * frameLen; i++) {
      const q = pair();
      const b = Buffer.from(clean);
      b[i] ^= 0x40;
      q.deliver(b);
      expect(q.got.ok.map((m) => m.payload.toString('hex'))).toEqual(['a0', 'a2']);
      expect(q.got.bad).toHaveLength(1);
      expect(['TW_BAD_SIGNATURE', 'TW_MALFORMED_ENVELOPE', 'TW_UNKNOWN_KEY_ID']).toContain(q.got.bad[0]!.code);
    }
  });

  it('replays inside one connection are rejected by the sequence window', () => {
    const p = pair();
    p.sealer.append(Buffer.from([1]), KIND.MESSAGE, 30);
    const b = p.flush();
    p.deliver(b);
    p.deliver(b);
    expect(p.got.ok).toHaveLength(1);
    expect(p.got.bad.map((e) => [e.code, e.message])).toEqual([['TW_REPLAYED_MESSAGE', 'seq 1 was already received on this connection']]);
  });

  it('expiry: accepted up to expiresAt + skew, then SignatureExpired with lateBy', () => {
    const p = pair({ skew: 5 });
    p.sealer.append(Buffer.from([1]), KIND.MESSAGE, 10);
    p.sealer.append(Buffer.from([2]), KIND.MESSAGE, 10);
    const b = p.flush();
    const [f1, f2] = [b.subarray(0, b.length / 2), b.subarray(b.length / 2)];
    p.clock.advance(15); // exactly expiresAt + skew: still fine
    p.deliver(f1);
    expect(p.got.ok).toHaveLength(1);
    p.clock.advance(2.5);
    p.deliver(f2);
    const e = p.got.bad[0] as SignatureExpired;
    expect(e.code).toBe('TW_SIGNATURE_EXPIRED');
    expect(e.lateBy).toBeCloseTo(2.5, 6);
    expect(e.dateSigned).toBe(1_700_000_000);
    expect(e.message).toBe('expired 7.500 s ago, allowance 5 s');
  });

  it('a message issued beyond the skew in the future is rejected (BadTimeSignature)', () => {
    const clock = new VirtualClock({ epochStart: 1_700_000_000 });
    const p = pair({ clock });
    p.sealer.append(Buffer.from([1]), KIND.MESSAGE, 10);
    const b = p.flush();
    // the receiver's clock is 6 s behind
    const late = pair({ clock: new VirtualClock({ epochStart: 1_699_999_994 }) });
    late.deliver(b);
    expect(late.got.bad.map((e) => e.code)).toEqual(['TW_BAD_TIME_SIGNATURE']);
    const ok = pair({ clock: new VirtualClock({ epochStart: 1_699_999_996 }) });
    ok.deliver(b);
    expect(ok.got.ok).toHaveLength(1);
  });

  it('a lifetime beyond maxTtl is rejected', () => {
    const p = pair({ maxTtl: 60 });
    p.sealer.append(Buffer.from([1]), KIND.MESSAGE, 61);
    p.deliver(p.flush());
    expect(p.got.bad.map((e) => [e.code, e.message])).toEqual([['TW_MALFORMED_ENVELOPE', 'lifetime 61.000 s exceeds maxTtl 60 s']]);
  });

  it('UnknownKeyId names the kid; a verify-only key verifies; rotation mid-stream', () => {
    const cr = ring(['k1', secretA]);
    const sr = ring(['k1', secretA]);
    const p = pair({ clientRing: cr, serverRing: sr });
    p.sealer.append(Buffer.from([1]), KIND.MESSAGE, 30);
    // rotation: the server learns k2 (verify-only), then the client switches to it
    sr.add('k2', secretB, { sign: false });
    cr.add('k2', secretB);
    p.sealer.append(Buffer.from([2]), KIND.MESSAGE, 30);
    cr.add('k3', Buffer.alloc(32, 3));
    p.sealer.append(Buffer.from([3]), KIND.MESSAGE, 30);
    p.deliver(p.flush());
    expect(p.got.ok.map((m) => [m.meta.kid, m.payload[0]])).toEqual([['k1', 1], ['k2', 2]]);
    const e = p.got.bad[0] as UnknownKeyId;
    expect([e.code, e.kid, e.message]).toEqual(['TW_UNKNOWN_KEY_ID', 'k3', 'unknown key id k3']);
    // removing a key stops it from verifying
    sr.remove('k2');
    cr.remove('k3');
    p.sealer.append(Buffer.from([4]), KIND.MESSAGE, 30);
    p.deliver(p.flush());
    expect((p.got.bad[1] as UnknownKeyId).kid).toBe('k2');
  });

  it('TLS binding: bound keys verify only with the same binding; a mismatch in mode is a clear MalformedEnvelope', () => {
    const bind = randomBytes(32);
    const a = pair({ clientBinding: bind, serverBinding: bind });
    a.sealer.append(Buffer.from([1]), KIND.MESSAGE, 30);
    const fa = a.flush();
    expect(fa[4 + 2]! & FLAG_TLS_BOUND).toBe(1);
    a.deliver(fa);
    expect(a.got.ok).toHaveLength(1);
    // another connection (other exporter value): the replayed frame fails its MAC
    const b = pair({ clientBinding: bind, serverBinding: randomBytes(32) });
    b.deliver(fa);
    expect(b.got.bad.map((e) => e.code)).toEqual(['TW_BAD_SIGNATURE']);
    const c = pair({ serverBinding: null });
    c.deliver(fa);
    expect(c.got.bad[0]!.message).toMatch(/binds its keys to the TLS session, but this end does not/);
    const d = pair({ clientBinding: null, serverBinding: bind });
    d.sealer.append(Buffer.from([1]), KIND.MESSAGE, 30);
    d.deliver(d.flush());
    expect(d.got.bad[0]!.message).toMatch(/does not bind its keys to the TLS session, but this end does/);
  });

  it('batches larger than a slab are split into several writes, in order', () => {
    const clock = new VirtualClock({ epochStart: 1_700_000_000 });
    const engine = defaultMacEngine();
    const kr = ring(['k1', secretA]);
    const sealer = new Sealer({ schedule: new KeySchedule({ keyring: kr, side: 'client', engine }), engine, clock, slabSize: 256 });
    const opener = new Opener({ schedule: new KeySchedule({ keyring: kr, side: 'server', engine }), engine, clock, skew: 5, maxTtl: 300 });
    for (let i = 0; i < 20; i++) sealer.append(Buffer.alloc(i * 20 + 1, i), KIND.MESSAGE, 30);
    const writes: Buffer[] = [];
    sealer.flush((b) => writes.push(b));
    expect(writes.length).toBeGreaterThan(1);
    const dec = new FrameDecoder();
    const got: number[] = [];
    for (const w of writes) {
      dec.feedRanges(w, (b, s, e) => opener.add(b, s, e));
      opener.run((m) => got.push(m.seq), () => expect.unreachable());
    }
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('property: appendValue (encoding in place) builds the same frames as append(encode(value))', () => {
    const clock = new VirtualClock({ epochStart: 1_700_000_000 });
    const engine = defaultMacEngine();
    const kr = ring(['k1', secretA]);
    const values = fc.array(fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.uint8Array({ maxLength: 3000 }).map((u) => ({ pad: Buffer.from(u) })),
      fc.constantFrom(new Date(0), Object.assign(Object.create(null) as object, { n: 1 }), 'é', { big: 2n ** 60n }),
      fc.string({ minLength: 500, maxLength: 2000 })), { minLength: 1, maxLength: 30 });
    // Dates and bigints (msgpackr's path) are sent only with the encode options that allow them.
    const opts = { allowDate: true, allowBigInt: true };
    fc.assert(fc.property(values, (vs) => {
      const out = (useValue: boolean): string => {
        const s = new Sealer({ schedule: new KeySchedule({ keyring: kr, side: 'client', engine }), engine, clock, slabSize: 2048, encode: opts });
        // A value both paths refuse (fc.jsonValue can make a `__proto__` key) is refused the same way by both, and
        // leaves nothing behind: the frames after it are the same too.
        const refused: string[] = [];
        for (let i = 0; i < vs.length; i++) {
          const nonce = Buffer.alloc(16, i);
          try {
            if (useValue) s.appendValue(vs[i], KIND.MESSAGE, 30, nonce);
            else s.append(encode(vs[i], opts), KIND.MESSAGE, 30, nonce);
          } catch (e) {
            refused.push(`${i}:${(e as { code?: string }).code ?? String(e)}`);
          }
        }
        const parts: Buffer[] = [];
        s.flush((b) => parts.push(Buffer.from(b)));
        return `${refused.join(',')}|${Buffer.concat(parts).toString('hex')}`;
      };
      expect(out(true)).toBe(out(false));
    }), { numRuns: 200, examples: [[[JSON.parse('{"__proto__": null}'), { a: 1 }]]] });
  });

  it('sealEnvelope builds the same frame as a Sealer', () => {
    const clock = new VirtualClock({ epochStart: 1_700_000_000 });
    const engine = jsMac;
    const kr = ring(['k1', secretA]);
    const s = new Sealer({ schedule: new KeySchedule({ keyring: kr, side: 'client', engine }), engine, clock });
    const nonce = Buffer.alloc(16, 9);
    s.append(Buffer.from([0xc0]), KIND.REQUEST, 30, nonce);
    let viaSealer = Buffer.alloc(0);
    s.flush((b) => { viaSealer = Buffer.from(b); });
    const single = sealEnvelope({ key: deriveDirectionKey(secretA, 'c2s'), kid: 'k1', kind: KIND.REQUEST, flags: 0, seq: 1,
      issuedAtMs: 1_700_000_000_000, expiresAtMs: 1_700_000_030_000, nonce, payload: Buffer.from([0xc0]) }, nodeMac);
    expect(single.toString('hex')).toBe(viaSealer.toString('hex'));
  });

  it('fuzz: random frame bodies never throw out of the opener, each is rejected once', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 150 }), { minLength: 1, maxLength: 10 }), (bodies) => {
      const p = pair();
      const bad: BadData[] = [];
      const opener = p.opener;
      for (const b of bodies) {
        const x = Buffer.from(b);
        if (x.length > 4) { x[0] = 1; x[3] = 2; x[4] = 0x6b; x[5] = 0x31; } // valid-looking version and kid "k1"
        opener.add(x, 0, x.length);
      }
      opener.run(() => expect.unreachable(), (e) => bad.push(e));
      expect(bad).toHaveLength(bodies.length);
      for (const e of bad) expect(['TW_BAD_SIGNATURE', 'TW_MALFORMED_ENVELOPE', 'TW_UNKNOWN_KEY_ID']).toContain(e.code);
    }), { numRuns: 500 });
  });
});
