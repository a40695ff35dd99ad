/**
 * msgpackr's record extension (type 0x72, `d4 72 …`) is refused like every other extension (docs/wire-format.md
 * §5). msgpackr's decoder reads records whatever its options say, and a record whose keys repeat hides the values it
 * replaces from any check made on the decoded maps; no other msgpack implementation writes records and tulipwire's
 * encoder never does, so nothing a peer needs is lost. Before, records were decoded and only the winning values
 * checked: `[record {a, a}]` with a NaN in the replaced slot was accepted.
 */
import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { decode, encode } from '../../src/wire/codec.js';

const hex = (h: string): Buffer => Buffer.from(h, 'hex');
function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe('msgpackr records', () => {
  it('are refused as TW_BAD_PAYLOAD, at the top, nested, and as a map key', () => {
    const withRecords = new Packr({ useRecords: true });
    expect(withRecords.pack([{ x: 5 }, { x: 7 }]).subarray(0, 3).toString('hex')).toBe('92d472');
    expect(code(() => decode(withRecords.pack([{ x: 5 }, { x: 7 }])))).toBe('TW_BAD_PAYLOAD');
    expect(code(() => decode(withRecords.pack({ x: 1 })))).toBe('TW_BAD_PAYLOAD');
    expect(code(() => decode(withRecords.pack({ outer: [1, { inner: true }] })))).toBe('TW_BAD_PAYLOAD');
    // a record definition as a map key
    expect(code(() => decode(hex('81d4724001')))).toBe('TW_BAD_PAYLOAD');
    expect(() => decode(withRecords.pack([{ x: 5 }]))).toThrow(/record/);
  });

  it('a record does not carry over to the next message: 0x40 is the integer 64 again', () => {
    expect(code(() => decode(new Packr({ useRecords: true }).pack([{ x: 5 }, { x: 7 }])))).toBe('TW_BAD_PAYLOAD');
    expect(decode(hex('40'))).toBe(64);
  });

  it('the same data as plain maps is accepted (what tulipwire writes)', () => {
    const v = [{ x: 5 }, { x: 7 }, { outer: [1, { inner: true }] }];
    expect(encode(v).toString('hex')).not.toContain('d472');
    expect(decode(encode(v))).toEqual(v);
  });
});
