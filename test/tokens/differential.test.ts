/**
 * Differential tests against real itsdangerous (Debian's python3-itsdangerous): seeded random classes, keys, key
 * lists, salts, separators, digests, key derivations, clocks, max_age values and non-ASCII payloads must give the
 * same tokens and the same verdicts on both sides; validly signed but malformed URL-safe payloads (bad zlib,
 * trailing data, a byte-order mark) get the same verdict as in Python; and refresh-token races on a shared Redis.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { VirtualClock } from '../../src/loop/clock.js';
import {
  RedisTokenStore, Serializer, Signer, TokenService, URLSafeSerializer, URLSafeTimedSerializer,
  pythonJsonLoads,
} from '../../src/tokens/index.js';
import { itsdangerousBatch } from '../support/itsdangerous-py.js';
import { buildLocal, loadLocal } from '../support/itsdangerous-local.js';
import type { PyOp, PyResult, PySpec } from '../support/itsdangerous-py.js';
import { runPython } from '../support/py.js';
import { startRedis } from '../support/redis.js';
import type { RedisServer } from '../support/redis.js';

/** A small deterministic PRNG (LCG), so a failure names a reproducible case. */
function prng(seed: number) {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  return { next, pick: <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)]! };
}

const CHARS = ['a', 'Z', '0', '.', '~', '|', '!', 'é', '漢', '😀', '\n', '\t', '\u0001', '\u007f', '\u2028', '"', '\\', '/', ' ', '-', '_', '=', ':', '\u00a0', '\ufeff', '\u0000'];
type Spec = PySpec & { digest?: PySpec['digest'] };
const CLASSES = ['Signer', 'TimestampSigner', 'Serializer', 'TimedSerializer', 'URLSafeSerializer', 'URLSafeTimedSerializer'] as const;
const DIGESTS = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const;



/** Random cases; numbers are ones JavaScript and Python read alike (no integer-valued double past 2^53). */
function randomCases(seed: number, n: number) {
  const r = prng(seed);
  const str = (max: number) => Array.from({ length: Math.floor(r.next() * max) }, () => r.pick(CHARS)).join('');
  const num = (): number => {
    const x = r.pick([
      () => Math.floor(r.next() * 1e6) - 5e5,
      () => (r.next() - 0.5) * 10 ** Math.floor(r.next() * 40 - 20),
      () => 123456789.5, () => -0.0001, () => 5e-324, () => 1.7976931348623157e308, () => 1.5e300,
    ])();
    return Number.isInteger(x) && !Number.isSafeInteger(x) ? 0.5 : x;
  };
  const value = (depth: number): unknown => {
    const k = Math.floor(r.next() * (depth > 2 ? 4 : 6));
    if (k === 0) return str(8);
    if (k === 1) return num();
    if (k === 2) return r.pick([true, false, null]);
    if (k === 3) return str(3);
    if (k === 4) return Array.from({ length: Math.floor(r.next() * 4) }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0; i < r.next() * 4; i++) o[str(4)] = value(depth + 1);
    return o;
  };
  return Array.from({ length: n }, () => {
    const cls = r.pick(CLASSES);
    const spec: Spec = { cls, keys: Array.from({ length: 1 + Math.floor(r.next() * 3) }, () => str(6) || 'k') };
    if (r.next() < 0.7) spec.digest = r.pick(DIGESTS) as PySpec['digest'];
    if (r.next() < 0.7) spec.keyDerivation = r.pick(['django-concat', 'concat', 'hmac', 'none'] as const);
    if (r.next() < 0.5) spec.sep = r.pick(['.', '~', '|', '!', '::', 'é', '$#', ' ', ',', '😀']);
    if (r.next() < 0.6) spec.salt = r.pick([str(5), null, '']);
    // Compressible payloads too, so the zlib path is exercised.
    const v = cls.endsWith('Signer') ? str(10) : r.next() < 0.15 ? { long: `${str(3)}abc`.repeat(30) } : value(0);
    const now = r.pick([0, 1, 255, 256, 65535, 2 ** 31, 1_764_580_000, 2 ** 33]);
    const maxAge = r.pick([undefined, null, 0, 2, 3, 10]);
    return { spec, value: v, now, maxAge };
  });
}

describe('differential: real itsdangerous, seeded random cases', () => {
  const cases = randomCases(20261201, 300);
  let made: PyResult[] = [];
  let loaded: PyResult[] = [];
  const loadOps: (PyOp & { op: 'load' })[] = [];

  beforeAll(async () => {
    made = await itsdangerousBatch(cases.map((c) => ({ op: 'make', spec: c.spec, value: c.value, now: c.now })));
    cases.forEach((c, i) => {
      const theirs = made[i]!.token!;
      const ours = (() => {
        const o = buildLocal(c.spec, c.now);
        return o instanceof Signer ? o.sign(c.value as string) : o.dumps(c.value);
      })();
      // Python loads ours and theirs 3 s later (past a max_age of 2, at a max_age of 3).
      for (const token of [theirs, ours]) loadOps.push({ op: 'load', spec: c.spec, token, now: c.now + 3, maxAge: c.maxAge ?? null });
    });
    loaded = await itsdangerousBatch(loadOps);
  }, 60_000);

  it('makes the same token as Python for every uncompressed case', () => {
    const diffs: string[] = [];
    cases.forEach((c, i) => {
      const theirs = made[i]!.token;
      expect(theirs, JSON.stringify(made[i])).toBeDefined();
      const o = buildLocal(c.spec, c.now);
      const ours = o instanceof Signer ? o.sign(c.value as string) : o.dumps(c.value);
      // Node's zlib (1.3.x, Chromium's fork) and Python's emit different deflate streams, and near the threshold
      // (len(z) < len(json) - 1) even the choice to compress can differ; such tokens load both ways (next test).
      const compressed = c.spec.cls.startsWith('URLSafe') && (theirs!.startsWith('.') || ours.startsWith('.'));
      if (!compressed && ours !== theirs) diffs.push(`${JSON.stringify(c)}: ${ours} != ${theirs}`);
    });
    expect(diffs).toEqual([]);
    expect(made.filter((m) => m.token!.startsWith('.')).length).toBeGreaterThan(5);
  });

  it('loads every token with the same verdict, value and timestamp as Python', () => {
    const diffs: string[] = [];
    loadOps.forEach((op, i) => {
      const theirs = loaded[i]!;
      const ours = loadLocal(op.spec, op.token, op.now, op.maxAge);
      const same = theirs.err !== undefined
        ? ours.err === theirs.err && ours.msg === theirs.msg
        : ours.err === undefined && JSON.stringify(ours.value) === JSON.stringify(theirs.value) && (theirs.ts === undefined || ours.ts === theirs.ts);
      if (!same) diffs.push(`${JSON.stringify(op)}: ours ${JSON.stringify(ours)} python ${JSON.stringify(theirs)}`);
    });
    expect(diffs).toEqual([]);
    // The boundary was exercised both ways: some expired, some loaded at exactly max_age.
    expect(loaded.some((l) => l.err === 'SignatureExpired')).toBe(true);
    expect(loadOps.some((op, i) => op.maxAge === 3 && loaded[i]!.err === undefined && (op.spec.cls.includes('Time')))).toBe(true);
  });
});

describe('differential: validly signed URL-safe payloads that are malformed', () => {
  const json = Buffer.from(JSON.stringify({ a: 'x'.repeat(100) }));
  const z = deflateSync(json);
  const badAdler = Buffer.from(z);
  badAdler[badAdler.length - 1]! ^= 1;
  const PAYLOADS: Record<string, string> = {
    'zlib + trailing garbage': '.' + Buffer.concat([z, Buffer.from('garbage')]).toString('base64url'),
    'two zlib streams': '.' + Buffer.concat([z, z]).toString('base64url'),
    'truncated zlib': '.' + z.subarray(0, z.length - 3).toString('base64url'),
    'zlib without its adler32': '.' + z.subarray(0, z.length - 4).toString('base64url'),
    'wrong adler32': '.' + badAdler.toString('base64url'),
    'raw deflate': '.' + deflateRawSync(json).toString('base64url'),
    'gzip': '.' + gzipSync(json).toString('base64url'),
    'only the marker': '.',
    'two markers': '..' + z.toString('base64url'),
    'compressed empty': '.' + deflateSync(Buffer.alloc(0)).toString('base64url'),
    'empty': '',
    'UTF-8 BOM': Buffer.from('\ufeff[1]').toString('base64url'),
    'UTF-8 BOM, compressed': '.' + deflateSync(Buffer.from('\ufeff{"user_id":42}')).toString('base64url'),
    'whitespace around': Buffer.from(' [1] \n').toString('base64url'),
    'latin-1 bytes': Buffer.from([0x5b, 0x22, 0xe9, 0x22, 0x5d]).toString('base64url'),
    'UTF-8 encoded surrogate': Buffer.from([0x5b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x5d]).toString('base64url'),
    'duplicate keys': Buffer.from('{"a":1,"a":2}').toString('base64url'),
  };
  const serializer = new URLSafeSerializer('hunt-key');
  const tokens = Object.fromEntries(Object.entries(PAYLOADS).map(([k, p]) => [k, serializer.makeSigner().sign(p)]));
  let python: Record<string, { value?: unknown; err?: string; msg?: string }> = {};

  beforeAll(async () => {
    const code = String.raw`
import sys, json, itsdangerous as i
s = i.URLSafeSerializer('hunt-key')
out = {}
for k, t in json.load(sys.stdin).items():
    try: out[k] = {'value': s.loads(t)}
    except i.BadData as e: out[k] = {'err': type(e).__name__, 'msg': str(e)}
print(json.dumps(out))`;
    python = JSON.parse((await runPython(code, [], JSON.stringify(tokens))).stdout);
  });

  it.each(Object.keys(PAYLOADS))('%s: same verdict as itsdangerous', (name) => {
    const theirs = python[name]!;
    let ours: { value?: unknown; err?: string; msg?: string };
    try {
      ours = { value: serializer.loads(tokens[name]!) };
    } catch (err) {
      ours = { err: (err as Error).name, msg: (err as Error).message };
    }
    expect(ours).toEqual(theirs);
  });

  it('a plain Serializer refuses a BOM-prefixed payload as Python does', async () => {
    const plain = new Serializer('hunt-key');
    const token = plain.makeSigner().sign('\ufeff{"user_id": 42}');
    const py = await runPython(
      'import sys, itsdangerous as i\ntry: print(i.Serializer("hunt-key").loads(sys.argv[1]))\nexcept i.BadData as e: print(type(e).__name__)',
      [token],
    );
    expect(py.stdout.trim()).toBe('BadPayload');
    expect(() => plain.loads(token)).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
    expect(() => pythonJsonLoads(Buffer.from('\ufeff[1]'))).toThrow(SyntaxError);
  });
});

describe('differential: fallback signers (retiring a digest)', () => {
  it('loads what Python makes with the old digest through a fallback, and Python does the same with ours', async () => {
    const now = 1_764_580_000;
    const clock = new VirtualClock({ epochStart: now });
    const oldOnes = new URLSafeTimedSerializer(['k1', 'k2'], { salt: 'rot', signerOptions: { digest: 'sha1' }, clock });
    const current = new URLSafeTimedSerializer(['k1', 'k2'], {
      salt: 'rot', signerOptions: { digest: 'sha256' }, fallbackSigners: [{ digest: 'sha1' }], clock,
    });
    const value = { user: 'zoë', n: 1 };
    const code = String.raw`
import sys, json, time, hashlib, itsdangerous as i
time.time = lambda: ${now + 5}
args = json.load(sys.stdin)
s = i.URLSafeTimedSerializer(['k1', 'k2'], salt='rot', signer_kwargs={'digest_method': hashlib.sha256},
                             fallback_signers=[{'digest_method': hashlib.sha1}])
out = []
for t, max_age in args:
    try: out.append({'value': s.loads(t, max_age=max_age)})
    except i.BadData as e: out.append({'err': type(e).__name__})
print(json.dumps(out))`;
    const old = oldOnes.dumps(value);
    const tampered = old.slice(0, -2) + (old.endsWith('AA') ? 'BA' : 'AA');
    const cases: [string, number][] = [[old, 10], [old, 4], [current.dumps(value), 5], [tampered, 10]];
    const py = JSON.parse((await runPython(code, [], JSON.stringify(cases))).stdout) as { value?: unknown; err?: string }[];
    clock.advance(5);
    const ours = cases.map(([t, maxAge]) => {
      try {
        return { value: current.loads(t, { maxAge }) };
      } catch (err) {
        return { err: (err as Error).name };
      }
    });
    expect(ours).toEqual(py);
    expect(py.map((r) => r.err ?? 'ok')).toEqual(['ok', 'SignatureExpired', 'ok', 'BadTimeSignature']);
  });
});

describe('refresh races on one Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('two services refreshing the same token at once: exactly one wins; with reuse detection the family dies', async () => {
    const KEY = randomBytes(32);
    for (const reuseDetection of [false, true]) {
      const prefix = `race${randomBytes(4).toString('hex')}:`;
      const stores = [new RedisTokenStore({ redis: redis.url, prefix }), new RedisTokenStore({ redis: redis.url, prefix })];
      try {
        const [a, b] = stores.map((store) => new TokenService({ secretKeys: KEY, store, reuseDetection }));
        const pair = await a!.issue({ id: 7, roles: ['user'] });
        const results = await Promise.allSettled([a!.refresh(pair.refreshToken), b!.refresh(pair.refreshToken), a!.refresh(pair.refreshToken), b!.refresh(pair.refreshToken)]);
        const won = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<TokenService['refresh']>>> => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'TW_TOKEN_REVOKED' });
        // The old access token is gone either way.
        await expect(b!.verifyAccess(pair.accessToken)).rejects.toMatchObject({ code: expect.stringMatching(/^TW_(UNKNOWN_TOKEN|TOKEN_REVOKED)$/) });
        const winner = won[0]!.value;
        if (reuseDetection) {
          // Reuse was seen, so the generation moved and the winner's fresh pair is dead too (docs/security-model.md).
          await expect(a!.verifyAccess(winner.accessToken)).rejects.toMatchObject({ code: 'TW_TOKEN_REVOKED' });
          await expect(b!.refresh(winner.refreshToken)).rejects.toMatchObject({ code: 'TW_TOKEN_REVOKED' });
        } else {
          expect((await b!.verifyAccess(winner.accessToken)).accountId).toBe('7');
          expect(await a!.refresh(winner.refreshToken)).toMatchObject({ tokenType: 'Bearer' });
        }
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    }
  });
});
