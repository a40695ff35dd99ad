/**
 * The fast decoder remembers map shapes (the exact key bytes of a map of each size) in one table for the whole
 * process, and caches every shape it made by its key list. The cache id was the keys joined with NUL, but a key may
 * itself hold NUL: the 1-key list ["a\0b"] got the 2-key shape of ["a", "b"] (and ["c", "d"] the 1-key shape of
 * ["c\0d"]), so maps were then decoded with more or fewer entries than their header says. A peer could teach that
 * to the process and make it accept invalid payloads, or misread other peers' valid ones. Every payload here must
 * decode exactly as msgpackr's general path (and any standard msgpack decoder) decodes it.
 */
import { describe, expect, it } from 'vitest';
import { decode, decodeGeneral } from '../../src/wire/codec.js';

const H = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

function outcome(b: Buffer, f: (b: Buffer) => unknown): string {
  try {
    return `ok ${JSON.stringify(f(b))}`;
  } catch (e) {
    return `throws ${(e as { code?: string }).code}`;
  }
}

/** Decodes `hex` twice: the first may meet another shape of its size (and forget it), the second then learns. */
function teach(hex: string): void {
  decode(H(hex));
  decode(H(hex));
}

/**
 * Makes the map `hex` (of `n` entries, n <= 2) the one whose key list sets the shape of its size: first a map of keys
 * "u0", "u1" holds that size, then `hex` misses it (the size forgets its shape) and is decoded again, which learns.
 */
function learnLast(n: 1 | 2, hex: string): void {
  teach(n === 1 ? '81 a27530 00' : '82 a27530 00 a27531 00');
  decode(H(hex));
  decode(H(hex));
}

describe('fast decoder: the shape cache never lends a shape to another key list', () => {
  it('a 1-entry map followed by trailing bytes stays refused after ["a\\0b"] met the shape of ["a", "b"]', () => {
    teach('82 a161 01 a162 02'); // {a: 1, b: 2}
    learnLast(1, '81 a3610062 01'); // {"a\0b": 1}
    const bytes = H('81 a161 01 a162 02'); // {a: 1} then the trailing bytes "b", 2
    expect(outcome(bytes, (b) => decodeGeneral(b))).toBe('throws TW_BAD_PAYLOAD');
    expect(outcome(bytes, (b) => decode(b))).toBe('throws TW_BAD_PAYLOAD');
  });

  it('a 2-entry map header with one entry stays refused after ["c", "d"] met the shape of ["c\\0d"]', () => {
    teach('81 a3630064 01'); // {"c\0d": 1}
    learnLast(2, '82 a163 01 a164 02'); // {c: 1, d: 2}
    const bytes = H('82 a3630064 03');
    expect(outcome(bytes, (b) => decodeGeneral(b))).toBe('throws TW_BAD_PAYLOAD');
    expect(outcome(bytes, (b) => decode(b))).toBe('throws TW_BAD_PAYLOAD');
  });

  it('a valid payload decodes to its own value whatever shapes other payloads taught', () => {
    teach('82 a161 01 a162 02');
    teach('81 a3630064 01');
    learnLast(2, '82 a163 01 a164 02');
    learnLast(1, '81 a3610062 01');
    // [{a: 1}, "b", 2, {"c\0d": 3, e: 4}]: with the mixed-up shapes it read as [{a: 1, b: 2}, {"c\0d": 3}, "e", 4]
    const bytes = H('94 81 a161 01 a162 02 82 a3630064 03 a165 04');
    const want = [{ a: 1 }, 'b', 2, { 'c\u0000d': 3, e: 4 }];
    expect(decodeGeneral(bytes)).toEqual(want);
    expect(decode(bytes)).toEqual(want);
  });
});
