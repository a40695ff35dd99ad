/**
 * A malformed header's TW_MALFORMED_ENVELOPE says what was wrong with the numbers (STYLE §7.3: "messages give the
 * numbers"), as the time and window errors already do: the seq, issuedAt and expiresAt read (a u64 beyond 2^53-1 as
 * its hex bytes), and for a kid that leaves no room for the payload, the kid length and the size it needs. Before,
 * "seq is outside 1..2^53-1", "timestamp beyond 2^53-1 ms" and "expiresAt is before issuedAt" named nothing, so a
 * peer's log line could not tell a zero seq from an overflowing one or which timestamp was off. Byte-level, on the
 * pure parser (no connection involved).
 */
import { describe, expect, it } from 'vitest';
import { parseHeader, writeHeader, HEADER_FIXED_SIZE } from '../../src/wire/envelope.js';
import { TAG_SIZE } from '../../src/wire/mac.js';

const KID = Buffer.from('k1');

/** A body with a valid header (kid "k1", seq 5, issued 2000 ms, expires 3000 ms), a 1-byte payload and a zero tag. */
function body(kid: Buffer = KID, payload = 1): Buffer {
  const b = Buffer.alloc(HEADER_FIXED_SIZE + kid.length + payload + TAG_SIZE);
  writeHeader(b, 0, { kind: 16, flags: 0, kid, seq: 5, issuedAtMs: 2000, expiresAtMs: 3000, nonce: Buffer.alloc(16) });
  return b;
}

function message(b: Buffer): string {
  try {
    parseHeader(b, 0, b.length);
  } catch (e) {
    expect((e as { code?: string }).code).toBe('TW_MALFORMED_ENVELOPE');
    return (e as Error).message;
  }
  throw new Error('parseHeader accepted the header');
}

describe('TW_MALFORMED_ENVELOPE messages give the numbers', () => {
  it('seq 0, and a seq beyond 2^53-1 as its bytes', () => {
    const zero = body();
    zero.writeBigUInt64BE(0n, 4 + KID.length);
    expect(message(zero)).toBe('seq is outside 1..2^53-1: got 0');
    const over = body();
    over.writeBigUInt64BE(2n ** 53n, 4 + KID.length);
    expect(message(over)).toBe('seq is outside 1..2^53-1: got 0x0020000000000000');
    // The largest seq is accepted (the boundary itself).
    const max = body();
    max.writeBigUInt64BE(2n ** 53n - 1n, 4 + KID.length);
    expect(parseHeader(max, 0, max.length).seq).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('a timestamp beyond 2^53-1 names which one and its bytes', () => {
    const issued = body();
    issued.writeBigUInt64BE(2n ** 64n - 1n, 4 + KID.length + 8);
    expect(message(issued)).toBe('timestamp beyond 2^53-1 ms: issuedAt 0xffffffffffffffff');
    const expires = body();
    expires.writeBigUInt64BE(2n ** 53n, 4 + KID.length + 16);
    expect(message(expires)).toBe('timestamp beyond 2^53-1 ms: expiresAt 0x0020000000000000');
  });

  it('expiresAt before issuedAt gives both; equal times are accepted', () => {
    const b = body();
    b.writeBigUInt64BE(1999n, 4 + KID.length + 16);
    expect(message(b)).toBe('expiresAt is before issuedAt: expiresAt 1999 ms, issuedAt 2000 ms');
    b.writeBigUInt64BE(2000n, 4 + KID.length + 16);
    expect(parseHeader(b, 0, b.length).expiresAtMs).toBe(2000);
  });

  it('a kid that leaves no room for the payload gives the kid length and the size needed', () => {
    // 78 bytes (the minimum) with a 2-byte kid has 0 payload bytes: 44 + 2 + 1 + 32 = 79 needed.
    const b = body(KID, 0);
    expect(b.length).toBe(78);
    expect(message(b)).toBe('envelope of 78 bytes has no payload: kid length 2 needs at least 79');
  });
});
