/** Byte-level tests of the itsdangerous primitives (the interop suite checks them against real Python). */
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import {
  Serializer, Signer, TimedSerializer, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer,
  base64Decode, base64Encode, bytesToInt, intToBytes,
} from '../../src/tokens/index.js';
import { BadPayload, BadSignature, BadTimeSignature, SignatureExpired } from '../../src/errors.js';

const T0 = 1_700_000_000;

describe('encoding', () => {
  it('int_to_bytes / bytes_to_int as itsdangerous (SECURITY-NOTES A examples)', () => {
    expect(intToBytes(1_700_000_000).toString('hex')).toBe('6553f100');
    expect(base64Encode(intToBytes(1_700_000_000))).toEqual(Buffer.from('ZVPxAA'));
    expect(base64Encode(intToBytes(255)).toString()).toBe('_w');
    expect(base64Encode(intToBytes(2 ** 32)).toString()).toBe('AQAAAAA');
    expect(intToBytes(0)).toHaveLength(0);
    expect(bytesToInt(Buffer.from('006553f100', 'hex'))).toBe(1_700_000_000);
    expect(() => bytesToInt(Buffer.alloc(9))).toThrow('Malformed timestamp');
    expect(() => intToBytes(-1)).toThrow(RangeError);
    expect(() => intToBytes(1.5)).toThrow(RangeError);
  });

  it('base64: text in gives text out, bytes in give bytes out; decoding is strict and canonical', () => {
    expect(base64Encode('hi?')).toBe('aGk_');
    expect(base64Encode(Buffer.from('hi?'))).toEqual(Buffer.from('aGk_'));
    expect(base64Decode('aGk_')).toEqual(Buffer.from('hi?'));
    for (const bad of ['aGk/', 'aGk_=', 'a', 'aG!k', 'aGl', 'aGm']) {
      // 'aGl' / 'aGm' decode to "hi" in a lax decoder but carry non-zero spare bits.
      expect(() => base64Decode(bad), bad).toThrow('Invalid base64-encoded data');
    }
    expect(base64Decode('aGk')).toEqual(Buffer.from('hi'));
  });
});

/** The suite every signer passes; TimestampSigner runs it again (itsdangerous's TestTimestampSigner(TestSigner)). */
describe.each([
  ['Signer', (k: string | string[], o = {}) => new Signer(k, o)],
  ['TimestampSigner', (k: string | string[], o = {}) => new TimestampSigner(k, { clock: new VirtualClock({ epochStart: T0 }), ...o })],
] as const)('%s', (_name, make) => {
  it('round-trips text as text and bytes as bytes', () => {
    const s = make('secret');
    const text = s.sign('hello.world');
    expect(typeof text).toBe('string');
    expect(s.unsign(text)).toBe('hello.world');
    const bytes = s.sign(Buffer.from([0, 1, 2, 0xff]));
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(s.unsign(bytes)).toEqual(Buffer.from([0, 1, 2, 0xff]));
    expect(s.unsign(new Uint8Array(bytes))).toEqual(Buffer.from([0, 1, 2, 0xff]));
    expect(s.validate(text)).toBe(true);
    expect(s.validate(text + 'x')).toBe(false);
  });

  it('rejects tampering with BadSignature carrying the (untrusted) payload', () => {
    const s = make('secret');
    const token = s.sign('value');
    const err = captureError(() => s.unsign('valuf' + token.slice(5)));
    expect(err).toBeInstanceOf(BadSignature);
    expect((err as BadSignature).code).toMatch(/^TW_BAD(_TIME)?_SIGNATURE$/);
    expect(captureError(() => s.unsign('no separator here'))).toMatchObject({ code: 'TW_BAD_SIGNATURE', message: "No b'.' found in value" });
    expect(captureError(() => make('other').unsign(token))).toBeInstanceOf(BadSignature);
    expect(captureError(() => make('secret', { salt: 'other' }).unsign(token))).toBeInstanceOf(BadSignature);
    expect(captureError(() => make('secret', { digest: 'sha256' }).unsign(token))).toBeInstanceOf(BadSignature);
  });

  it('rotates keys: the last signs, all verify, a removed key no longer verifies', () => {
    const old = make('k1');
    const rotated = make(['k1', 'k2']);
    const next = make('k2');
    expect(rotated.sign('v')).toBe(next.sign('v'));
    expect(rotated.unsign(old.sign('v'))).toBe('v');
    expect(rotated.unsign(next.sign('v'))).toBe('v');
    expect(() => next.unsign(old.sign('v'))).toThrow(BadSignature);
    expect(() => make([])).toThrow(TypeError);
  });

  it('refuses separators from the base64 alphabet', () => {
    for (const sep of ['a', 'Z', '0', '-', '_', '=', 'x.', '']) expect(() => make('k', { sep }), sep).toThrow(RangeError);
    expect(make('k', { sep: '~' }).sign('a~b')).toContain('a~b~');
  });

  it('refuses unknown digests and derivations', () => {
    expect(() => make('k', { digest: 'md5' })).toThrow(TypeError);
    expect(() => make('k', { keyDerivation: 'pbkdf2' })).toThrow(TypeError);
  });

  it('refuses a text token that is not valid Unicode, and text to sign that is not', () => {
    expect(captureError(() => make('k').unsign('a\ud800.b'))).toBeInstanceOf(BadSignature);
    expect(() => make('k').sign('a\ud800')).toThrow(TypeError);
  });
});

describe('Signer', () => {
  it('reproduces the itsdangerous docs example', () => {
    expect(new Signer('secret-key').sign('my string')).toBe('my string.wh6tMHxLgJqB6oY1uT73iMlyrOA');
  });

  it('a signature of the wrong length is refused, not a RangeError from timingSafeEqual', () => {
    const s = new Signer(['a', 'b']);
    const sig = s.sign('v').split('.')[1]!;
    expect(s.verifySignature('v', sig)).toBe(true);
    for (const bad of ['', sig.slice(0, -1), sig + 'A', sig + sig]) expect(s.verifySignature('v', bad)).toBe(false);
  });
});

describe('TimestampSigner', () => {
  const clock = () => new VirtualClock({ epochStart: T0 });

  it('encodes the time as itsdangerous does and returns it on request', () => {
    const c = clock();
    const s = new TimestampSigner('secret-key', { clock: c });
    const token = s.sign('my string');
    expect(token).toBe('my string.ZVPxAA.jr6oPKNI4x66_7OoEQCvO5o789s');
    expect(s.unsign(token, { returnTimestamp: true })).toEqual(['my string', T0]);
    expect(s.unsign(Buffer.from(token), { returnTimestamp: true })).toEqual([Buffer.from('my string'), T0]);
  });

  it('expires: age == maxAge passes, one more second is SignatureExpired with dateSigned and lateBy', () => {
    const c = clock();
    const s = new TimestampSigner('k', { clock: c });
    const token = s.sign('v');
    c.advance(10);
    expect(s.unsign(token, { maxAge: 10 })).toBe('v');
    c.advance(1);
    const err = captureError(() => s.unsign(token, { maxAge: 10 })) as SignatureExpired;
    expect(err.code).toBe('TW_SIGNATURE_EXPIRED');
    expect(err.message).toBe('Signature age 11 > 10 seconds');
    expect(err.dateSigned).toBe(T0);
    expect(err.lateBy).toBe(1);
    expect(s.validate(token, 10)).toBe(false);
    expect(s.validate(token)).toBe(true);
    expect(s.unsign(token)).toBe('v'); // no maxAge, no age check
  });

  it('treats a timestamp in the future as expired (negative age), as itsdangerous', () => {
    const c = clock();
    const future = new TimestampSigner('k', { clock: new VirtualClock({ epochStart: T0 + 5 }) });
    const err = captureError(() => new TimestampSigner('k', { clock: c }).unsign(future.sign('v'), { maxAge: 100 }));
    expect(err).toMatchObject({ code: 'TW_SIGNATURE_EXPIRED', message: 'Signature age -5 < 0 seconds', dateSigned: T0 + 5 });
  });

  it('reports a missing or malformed timestamp, and a bad signature with the untrusted dateSigned', () => {
    const c = clock();
    const s = new TimestampSigner('k', { clock: c });
    const plain = new Signer('k').sign('v');
    expect(captureError(() => s.unsign(plain))).toMatchObject({ code: 'TW_BAD_TIME_SIGNATURE', message: 'timestamp missing' });
    const forgedTime = new Signer('k').sign('v.!!');
    expect(captureError(() => s.unsign(forgedTime))).toMatchObject({ code: 'TW_BAD_TIME_SIGNATURE', message: 'Malformed timestamp' });
    const token = s.sign('v');
    const [v, , sig] = token.split('.');
    const tampered = `${v}.${base64Encode(intToBytes(T0 - 999))}.${sig}`;
    const err = captureError(() => s.unsign(tampered)) as BadTimeSignature;
    expect(err).toBeInstanceOf(BadTimeSignature);
    expect(err).not.toBeInstanceOf(SignatureExpired);
    expect(err.dateSigned).toBe(T0 - 999);
  });
});

describe('Serializer family', () => {
  const clock = () => new VirtualClock({ epochStart: T0 });

  it('Serializer writes the stdlib spaced JSON; URL-safe ones compact base64', () => {
    expect(new Serializer('k').dumps({ a: [1, 2] }).startsWith('{"a": [1, 2]}.')).toBe(true);
    expect(new URLSafeSerializer('secret-key').dumps([1, 2, 3, 4])).toBe('WzEsMiwzLDRd.wSPHqC0gR7VUqivlSukJ0IeTDgo');
  });

  it('loads with maxAge, returnTimestamp and a per-call salt', () => {
    const c = clock();
    for (const cls of [TimedSerializer, URLSafeTimedSerializer]) {
      const s = new cls('k', { clock: c });
      const token = s.dumps({ x: 1 }, { salt: 'activate' });
      expect(() => s.loads(token)).toThrow(BadSignature);
      expect(s.loads(token, { salt: 'activate', maxAge: 5 })).toEqual({ x: 1 });
      expect(s.loads(token, { salt: 'activate', returnTimestamp: true })).toEqual([{ x: 1 }, Math.floor(c.epoch())]);
      c.advance(6);
      expect(captureError(() => s.loads(token, { salt: 'activate', maxAge: 5 }))).toMatchObject({ code: 'TW_SIGNATURE_EXPIRED', lateBy: 1 });
    }
  });

  it('compresses when it helps, with the leading "." marker', () => {
    const s = new URLSafeSerializer('k');
    expect(s.dumps({ a: 1 }).startsWith('.')).toBe(false);
    const big = s.dumps({ a: 'z'.repeat(1000) });
    expect(big.startsWith('.')).toBe(true);
    expect(big.length).toBeLessThan(200);
    expect(s.loads(big)).toEqual({ a: 'z'.repeat(1000) });
  });

  it('BadPayload for a validly signed payload that does not decode, and for a zlib bomb', () => {
    const signer = new Signer('k', { salt: 'itsdangerous' });
    const s = new URLSafeSerializer('k', { maxPayloadSize: 1024 });
    const cases = [
      signer.sign('!!!'), // not base64
      signer.sign('.' + Buffer.from('not zlib').toString('base64url')),
      signer.sign(Buffer.from('{"a":').toString('base64url')), // not JSON
      signer.sign('.' + deflateSync(Buffer.alloc(100_000, 0x20)).toString('base64url')), // 100 kB of spaces
    ];
    for (const token of cases) {
      const err = captureError(() => s.loads(token));
      expect(err, token).toBeInstanceOf(BadPayload);
      expect((err as BadPayload).code).toBe('TW_BAD_PAYLOAD');
      expect((err as BadPayload).cause).toBeDefined();
    }
    expect(() => new URLSafeSerializer('k', { maxPayloadSize: 0 })).toThrow(RangeError);
  });

  it('tries fallback signers (e.g. retiring SHA-1) but not after SignatureExpired or BadPayload', () => {
    const c = clock();
    const legacy = new URLSafeTimedSerializer('k', { clock: c });
    const modern = new URLSafeTimedSerializer('k', { clock: c, signerOptions: { digest: 'sha256' }, fallbackSigners: [{ digest: 'sha1' }] });
    const old = legacy.dumps({ v: 1 });
    expect(modern.loads(old, { maxAge: 10 })).toEqual({ v: 1 });
    expect(modern.dumps({ v: 1 })).not.toBe(old);
    expect(() => new URLSafeTimedSerializer('k', { clock: c, signerOptions: { digest: 'sha256' } }).loads(old)).toThrow(BadSignature);
    c.advance(20);
    expect(captureError(() => modern.loads(old, { maxAge: 10 }))).toBeInstanceOf(SignatureExpired);
  });

  it('refuses tokens that are neither text nor bytes, and text that is not valid Unicode', () => {
    const s = new URLSafeSerializer('k');
    expect(captureError(() => s.loads(42 as unknown as string))).toBeInstanceOf(BadSignature);
    expect(captureError(() => s.loads('\udfff.abc'))).toBeInstanceOf(BadSignature);
  });
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('docs/security-model.md', () => {
  it('states the token examples this code produces', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../../docs/security-model.md', import.meta.url), 'utf8');
    const produced = [
      `\`new Signer('secret-key').sign('my string')\` → \`${new Signer('secret-key').sign('my string')}\``,
      `\`new URLSafeSerializer('secret-key').dumps([1,2,3,4])\` → \`${new URLSafeSerializer('secret-key').dumps([1, 2, 3, 4])}\``,
      `(1700000000 → \`${intToBytes(1_700_000_000).toString('hex').replace(/(..)(?!$)/g, '$1 ')}\`\n→ \`${base64Encode(intToBytes(1_700_000_000)).toString()}\``,
    ];
    for (const line of produced) expect(doc).toContain(line);
  });
});
