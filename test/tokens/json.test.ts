/** Python-exact JSON: arbitrary values serialize to the very text Python's json.dumps writes, in both modes. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { COMPACT_JSON, STDLIB_JSON, pythonJsonDumps, pythonJsonLoads } from '../../src/tokens/json.js';
import { runPython } from '../support/py.js';

// Python reads the values from JSON text it parses itself; integral floats are sent as ints (JavaScript has no
// 1.0), so both sides see the same value.
const PY = String.raw`
import sys, json
# JavaScript numbers are doubles: an integer past 2^53 is a float there, so Python reads it as one too.
values = json.loads(sys.stdin.read(), parse_int=lambda t: int(t) if abs(int(t)) <= 2**53 - 1 else float(t))
out = [[json.dumps(v, separators=(",", ":"), ensure_ascii=False), json.dumps(v)] for v in values]
sys.stdout.write(json.dumps(out))
`;

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme' }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('pythonJsonDumps', () => {
  it('matches Python json.dumps (compact, ensure_ascii=False; and stdlib defaults) on 400 arbitrary values', async () => {
    const values = fc.sample(jsonValue, { numRuns: 400, seed: 20261201 });
    // Python gets them as JSON text; JSON.stringify turns -0 into 0, which our encoder also writes as 0.
    const { stdout } = await runPython(PY, [], JSON.stringify(values));
    const expected = JSON.parse(stdout) as [string, string][];
    values.forEach((v, i) => {
      expect(pythonJsonDumps(v, COMPACT_JSON), JSON.stringify(v)).toBe(expected[i]![0]);
      expect(pythonJsonDumps(v, STDLIB_JSON), JSON.stringify(v)).toBe(expected[i]![1]);
    });
  });

  it('writes floats as Python repr and integers as ints', () => {
    expect(pythonJsonDumps([0.1, 1e-5, 1.5e-7, -2.5e-10, 123.456, 0.0001, 1e16, 1e300, -0, 5e-324])).toBe(
      '[0.1,1e-05,1.5e-07,-2.5e-10,123.456,0.0001,1e+16,1e+300,0,5e-324]',
    );
    expect(pythonJsonDumps(12345678901234567890n)).toBe('12345678901234567890');
    expect(pythonJsonDumps([2 ** 53, -(2 ** 53) - 2, 2 ** 53 - 1])).toBe('[9007199254740992.0,-9007199254740994.0,9007199254740991]');
  });

  it('escapes strings as Python does in each mode', () => {
    const s = 'q" b\\ \n\r\t\b\f \u0001 \u001f \u007f é 😀';
    expect(pythonJsonDumps(s, COMPACT_JSON)).toBe('"q\\" b\\\\ \\n\\r\\t\\b\\f \\u0001 \\u001f \u007f é 😀"');
    expect(pythonJsonDumps(s, STDLIB_JSON)).toBe('"q\\" b\\\\ \\n\\r\\t\\b\\f \\u0001 \\u001f \\u007f \\u00e9 \\ud83d\\ude00"');
  });

  it('refuses what Python cannot encode or JSON cannot carry', () => {
    for (const bad of [undefined, () => 1, Symbol('x'), Number.NaN, Infinity, new Date(0), new Map(), Buffer.from('x'), '\ud800', { a: '\udc00' }]) {
      expect(() => pythonJsonDumps(bad), String(bad)).toThrow(TypeError);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => pythonJsonDumps(cyclic)).toThrow('Circular reference detected');
    // The same object twice (not a cycle) is fine.
    const shared = { x: 1 };
    expect(pythonJsonDumps([shared, shared])).toBe('[{"x":1},{"x":1}]');
  });

  it('loads only valid UTF-8 JSON', () => {
    expect(pythonJsonLoads(Buffer.from('{"a":[1,"é"]}'))).toEqual({ a: [1, 'é'] });
    expect(() => pythonJsonLoads(Buffer.from([0x22, 0xff, 0x22]))).toThrow(TypeError);
    expect(() => pythonJsonLoads('NaN')).toThrow(SyntaxError);
  });
});
