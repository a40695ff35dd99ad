/**
 * Integers beyond 2^53 − 1 in a validly signed payload. Python's `json.loads` reads them exactly (an `int`), and a
 * Python service signs such ids every day (snowflake ids, 64-bit database keys). tulipwire loaded payloads with
 * `JSON.parse`, which rounds them to the nearest double without a word: a Python ticket for user
 * 1234567890123456789 verified here as user 1234567890123456768, another account. Now such an integer loads as a
 * `bigint` with its exact value (what `pythonJsonDumps` writes a `bigint` as, so values round-trip), and the auth
 * tickets, whose `user_id` is a string or a safe integer, refuse one as `BadPayload` instead of naming another user.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AuthTickets, Serializer, URLSafeSerializer, URLSafeTimedSerializer, pythonJsonDumps, pythonJsonLoads,
} from '../../src/tokens/index.js';
import { VirtualClock } from '../../src/loop/clock.js';
import { runPython } from '../support/py.js';

const KEY = 'big-integers-key';
const T0 = 1_764_580_000;

const PY_MAKE = String.raw`
import sys, json, time, itsdangerous as i
time.time = lambda: ${T0}
out = {
  'urlsafe': i.URLSafeSerializer('${KEY}').dumps({'id': 1234567890123456789, 'neg': -9007199254740993, 'ok': 9007199254740991, 'f': 12345678901234567890.0, 'list': [2**64, 18446744073709551617]}),
  'plain': i.Serializer('${KEY}').dumps([9007199254740993, {'n': 10**30}]),
  'timed': i.URLSafeTimedSerializer('${KEY}').dumps({'account_id': 1234567890123456789}),
  'ticket': i.URLSafeSerializer('${KEY}', salt='tulipwire.auth-ticket').dumps({'user_id': 1234567890123456789, 'expires_at': ${T0} + 60.0}),
  'key': i.URLSafeSerializer('${KEY}').dumps({'12345678901234567890': 'a number as a key is a string in JSON'}),
}
print(json.dumps(out))`;

let py: Record<string, string>;
beforeAll(async () => {
  py = JSON.parse((await runPython(PY_MAKE)).stdout) as Record<string, string>;
});

describe('integers beyond 2^53 in payloads Python signed', () => {
  it('URLSafeSerializer loads them exactly, as bigint; safe integers and floats stay numbers', () => {
    expect(new URLSafeSerializer(KEY).loads(py.urlsafe!)).toEqual({
      id: 1234567890123456789n, neg: -9007199254740993n, ok: 9007199254740991, f: 12345678901234567890.0,
      list: [18446744073709551616n, 18446744073709551617n],
    });
  });

  it('the plain Serializer and the timed one too', () => {
    expect(new Serializer(KEY).loads(py.plain!)).toEqual([9007199254740993n, { n: 10n ** 30n }]);
    const timed = new URLSafeTimedSerializer(KEY, { clock: new VirtualClock({ epochStart: T0 }) });
    expect(timed.loads(py.timed!, { maxAge: 10 })).toEqual({ account_id: 1234567890123456789n });
  });

  it('an auth ticket for such a user id is BadPayload, never another user\'s id', () => {
    const tickets = new AuthTickets(KEY, { clock: new VirtualClock({ epochStart: T0 }) });
    expect(() => tickets.verifyAuthTicket(py.ticket!)).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
  });

  it('digits inside strings and keys are left alone', () => {
    expect(new URLSafeSerializer(KEY).loads(py.key!)).toEqual({ '12345678901234567890': 'a number as a key is a string in JSON' });
    expect(pythonJsonLoads('["12345678901234567890", "\\"12345678901234567890"]')).toEqual(['12345678901234567890', '"12345678901234567890']);
  });
});

describe('pythonJsonLoads on big integers', () => {
  it('round-trips what pythonJsonDumps writes for a bigint', () => {
    const value = { id: 2n ** 63n + 1n, small: 5, list: [-(2n ** 70n)] };
    expect(pythonJsonLoads(pythonJsonDumps(value))).toEqual({ id: 2n ** 63n + 1n, small: 5, list: [-(2n ** 70n)] });
  });

  it('still refuses what JSON refuses, big integers or not', () => {
    for (const bad of ['{12345678901234567890: 1}', '[012345678901234567890]', '[-012345678901234567890]', '[12345678901234567890 1]', '[12345678901234567890', '12345678901234567890x']) {
      expect(() => pythonJsonLoads(bad), bad).toThrow(SyntaxError);
    }
  });

  it('Python reads the exact integer back from what tulipwire signs', async () => {
    const token = new URLSafeSerializer(KEY).dumps({ id: 1234567890123456789n });
    const r = await runPython(`import sys, itsdangerous as i\nprint(i.URLSafeSerializer('${KEY}').loads(sys.argv[1])['id'])`, [token]);
    expect(r.stdout.trim()).toBe('1234567890123456789');
  });
});
