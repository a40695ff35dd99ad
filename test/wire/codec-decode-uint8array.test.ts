/**
 * `decode` takes a `Uint8Array` (docs and signature), and the result must not depend on which class of array the
 * bytes come in. msgpackr builds `bin` values of the class of its input: given a plain Uint8Array longer than the
 * 139 bytes decode copies to its Buffer scratch, every byte string came out as a bare Uint8Array, which the shape
 * check refuses as msgpackr's typed-array extension ("payload holds a Uint8Array, which is not plain data"). So a
 * valid payload (found by the differential run against test/interop/wire_peer.py's decoder) was refused when read
 * from an ArrayBuffer, a Redis-less OutcomeStore (its `get` returns Uint8Array) or any non-Node source, and accepted
 * from a Buffer. Now both give the same value, byte strings as Buffers.
 */
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../src/wire/codec.js';
import { decodeGeneral } from '../../src/wire/codec.js';

const BIN = Buffer.alloc(300, 0xab);
const payloads: [string, unknown][] = [
  ['a 300-byte bin', BIN],
  ['a bin inside an array', [BIN, null]],
  ['an RPC outcome holding a bin result', [1, { file: BIN, n: 1 }]],
  ['a long string and a short bin', ['x'.repeat(200), Buffer.from([1, 2, 3])]],
];

describe('decode of a plain Uint8Array equals decode of a Buffer', () => {
  for (const [name, value] of payloads) {
    it(name, () => {
      const bytes = encode(value);
      const fromBuffer = decode(Buffer.from(bytes));
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      expect(decode(copy)).toEqual(fromBuffer);
      expect(decodeGeneral(copy)).toEqual(fromBuffer);
      // A Uint8Array view at an offset into a larger ArrayBuffer, with start/end inside it.
      const big = new Uint8Array(bytes.length + 10);
      big.set(bytes, 5);
      expect(decode(big.subarray(5, 5 + bytes.length))).toEqual(fromBuffer);
      expect(decode(big, undefined, 5, 5 + bytes.length)).toEqual(fromBuffer);
    });
  }

  it('byte strings come out as Buffers, never pinned to the caller\'s array', () => {
    const bytes = new Uint8Array(encode([BIN]));
    const [bin] = decode(bytes) as [Buffer];
    expect(Buffer.isBuffer(bin)).toBe(true);
    bytes.fill(0);
    expect(bin.equals(BIN)).toBe(true);
  });

  it('what must be refused is still refused from a Uint8Array (msgpackr typed array, ext 0x74)', () => {
    // d5 74 <type 0x01> <1 byte>: a Uint8Array extension, in a payload of more than 139 bytes.
    const bytes = new Uint8Array(Buffer.concat([Buffer.from([0x92]), Buffer.from(encode('x'.repeat(200))), Buffer.from('c7027401ff00', 'hex')]));
    expect(() => decode(bytes)).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
  });
});
