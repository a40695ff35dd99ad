/**
 * Inputs on which tulipwire's decoder disagreed with docs/wire-format.md, found by differential fuzzing against the
 * independent Python implementation (test/interop/wire_peer.py). Each input is the hex bytes given to the receiver,
 * the expectation the outcome the document prescribes.
 */
import { describe, expect, it } from 'vitest';
import { decode, decodeGeneral } from '../../src/wire/codec.js';

const hex = (s: string) => Buffer.from(s, 'hex');
const nested33 = '91'.repeat(32) + '90';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'accepted';
}

describe('§5: a value that a repeated map key replaces is still checked and counted', () => {
  // docs/wire-format.md §5: "Refused with TW_BAD_PAYLOAD: ... the reserved byte c1, ... extension types ...,
  // uint64/int64 beyond ±2⁵³, NaN and infinities, a container beyond the limits; and the map keys __proto__ and
  // constructor, at any depth"; "When a key repeats, the last
  // value wins" decides the value, not what is checked: every value of the payload is checked and counted.
  const cases: [string, string][] = [
    ['reserved byte c1', '82a161c1a16101'],
    ['timestamp extension (type -1)', '82a161d6ff00000001a16101'],
    ["msgpackr's undefined (ext 0)", '82a161d40000a16101'],
    ['NaN (float64)', '82a161cb7ff8000000000000a16101'],
    ['uint64 2^53+1', '82a161cf0020000000000001a16101'],
    ['33 nested arrays', `82a161${nested33}a16101`],
    ['a number key replaced by the str key "1"', '8201d6ff00000001a13101'],
    ['the key __proto__ in a replaced map', '82a16181a95f5f70726f746f5f5f01a16101'],
    ['the key constructor in a replaced map', '82a16181ab636f6e7374727563746f7201a16101'],
  ];
  it.each(cases)('%s under a key that repeats: TW_BAD_PAYLOAD', (_name, h) => {
    expect(code(() => decode(hex(h)))).toBe('TW_BAD_PAYLOAD');
    expect(code(() => decodeGeneral(hex(h)))).toBe('TW_BAD_PAYLOAD');
  });

  it('counts replaced values towards maxNodes (§5 values: every map value)', () => {
    // a map32 of 100,000 entries, all under the key "a": 100,001 values
    const n = 100_000;
    const b = Buffer.alloc(5 + n * 3);
    b[0] = 0xdf;
    b.writeUInt32BE(n, 1);
    for (let i = 0; i < n; i++) b.set([0xa1, 0x61, 0xc0], 5 + i * 3);
    expect(code(() => decode(b))).toBe('TW_BAD_PAYLOAD');
    b.writeUInt32BE(n - 1, 1);
    expect(code(() => decode(b.subarray(0, b.length - 3)))).toBe('accepted');
  });

  it('still lets the last value win when every value is acceptable', () => {
    expect(decode(hex('82a16102a16101'))).toEqual({ a: 1 });
    expect(decode(hex('82a161a2c3a9a16101'))).toEqual({ a: 1 }); // a non-ASCII str replaced: general path
  });
});

describe('§5: map keys that are extensions', () => {
  // docs/wire-format.md §5: tulipwire's receiver "refuses bin, array and map keys and extension keys other than
  // msgpackr's undefined (type 0, which becomes "undefined")". msgpackr turned its BigInt extension (0x42) key
  // into a decimal string key.
  it('refuses a key of extension type 0x42 (msgpackr BigInt): TW_BAD_PAYLOAD', () => {
    expect(code(() => decode(hex('81d4420001')))).toBe('TW_BAD_PAYLOAD');
    expect(code(() => decode(hex('91de0001d4420001')))).toBe('TW_BAD_PAYLOAD');
  });

  it('still accepts the undefined extension (type 0) as a key', () => {
    expect(decode(hex('81d4000001'))).toEqual({ undefined: 1 });
  });
});
