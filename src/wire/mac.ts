/**
 * HMAC-SHA256 engines behind one batch API.
 *
 * Node's `createHmac` spends ~2–3 µs per call on object creation and the JS→C++ crossing, ~10x the SHA-256 work
 * of a 100-byte message (~0.3 µs in OpenSSL). So MACs here are computed with the key's inner/outer pad states
 * precomputed once ({@link MacEngine.prepareKey}) and, on the hot paths, a whole batch of messages per call: the
 * sender signs every message of a loop iteration in one call before its single socket write, and the receiver
 * verifies every complete frame of a `'data'` chunk in one call.
 *
 * Engines, all producing identical bytes (test/wire/mac.test.ts):
 * - `native`: the optional N-API addon in `native/` over the OpenSSL that Node bundles (built by `npm ci`'s
 *   `prepare` step, or `npm run build:native`); used when it loaded and `TULIPWIRE_NO_NATIVE` is not `1`.
 * - `js`: JavaScript SHA-256 over the precomputed states for messages up to 384 bytes, `createHmac` beyond (where
 *   OpenSSL's speed beats the per-call overhead) (mac-js.ts); the fallback.
 * - `node`: `crypto.createHmac` per message, the reference and the benchmark baseline.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Bytes in an HMAC-SHA256 tag. */
export const TAG_SIZE = 32;

/** A key prepared by one engine (its precomputed pad states); only the engine that made it can use it. */
export interface MacKey {
  /** The engine that prepared this key. */
  readonly engine: MacEngineName;
}

/** Names of the MAC engines. */
export type MacEngineName = 'native' | 'js' | 'node';

/**
 * An HMAC-SHA256 implementation. Ranges are `[start, end)` byte offsets into `buf`; the tag of range `i` lives
 * right after it, at `buf[ends[i] .. ends[i] + 32)`.
 */
export interface MacEngine {
  /** Which implementation this is. */
  readonly name: MacEngineName;
  /** Precomputes the pad states of `key` (any length; RFC 2104 hashes keys longer than 64 bytes). */
  prepareKey(key: Uint8Array): MacKey;
  /** HMAC of `data[start..end)` as a new 32-byte Buffer. */
  mac(key: MacKey, data: Uint8Array, start?: number, end?: number): Buffer;
  /** For `i` in `first .. first+count-1`: writes the tag of `buf[starts[i]..ends[i])` at `buf[ends[i]]`. */
  signBatch(key: MacKey, buf: Uint8Array, starts: Uint32Array, ends: Uint32Array, first: number, count: number): void;
  /**
   * For `i` in `first .. first+count-1`: `results[i] = 1` when the 32 bytes at `buf[ends[i]]` equal the tag of
   * `buf[starts[i]..ends[i])`, else 0, compared in constant time. Returns how many matched.
   */
  verifyBatch(key: MacKey, buf: Uint8Array, starts: Uint32Array, ends: Uint32Array, first: number, count: number,
    results: Uint8Array): number;
}

interface NodeMacKey extends MacKey {
  readonly raw: Buffer;
}

/** The reference engine: one `crypto.createHmac` per message and `timingSafeEqual`. Slow; for tests and benches. */
export const nodeMac: MacEngine = {
  name: 'node',
  prepareKey(key: Uint8Array): MacKey {
    const k: NodeMacKey = { engine: 'node', raw: Buffer.from(key) };
    return k;
  },
  mac(key: MacKey, data: Uint8Array, start = 0, end = data.length): Buffer {
    return createHmac('sha256', (key as NodeMacKey).raw).update(data.subarray(start, end)).digest();
  },
  signBatch(key, buf, starts, ends, first, count): void {
    for (let i = first, n = first + count; i < n; i++) {
      const e = ends[i]!;
      buf.set(nodeMac.mac(key, buf, starts[i]!, e), e);
    }
  },
  verifyBatch(key, buf, starts, ends, first, count, results): number {
    let ok = 0;
    for (let i = first, n = first + count; i < n; i++) {
      const e = ends[i]!;
      const good = timingSafeEqual(nodeMac.mac(key, buf, starts[i]!, e), buf.subarray(e, e + TAG_SIZE));
      results[i] = good ? 1 : 0;
      if (good) ok++;
    }
    return ok;
  },
};
