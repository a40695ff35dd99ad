/**
 * The optional native MAC engine (native/src/mac.c, an N-API addon over Node's bundled OpenSSL) and the choice of
 * the default engine.
 *
 * The addon is built into `native/build/Release/tulipwire_mac.node` by `npm run build:native` (also run, without
 * failing, by `npm ci`'s `prepare` step). If it is missing or fails to load, the pure-JS engine serves with identical
 * bytes. `TULIPWIRE_NO_NATIVE=1` forces the JS engine even when the addon is present.
 *
 * @module
 */
import { createRequire } from 'node:module';
import type { MacEngine, MacKey } from './mac.js';
import { TAG_SIZE } from './mac.js';
import { jsMac } from './mac-js.js';

/** The addon's functions (native/src/mac.c). */
interface NativeAddon {
  prepareKey(key: Uint8Array): Buffer;
  signBatch(state: Buffer, buf: Uint8Array, starts: Uint32Array, ends: Uint32Array, first: number, count: number): void;
  verifyBatch(state: Buffer, buf: Uint8Array, starts: Uint32Array, ends: Uint32Array, first: number, count: number,
    results: Uint8Array): number;
  mac(state: Buffer, data: Uint8Array, start: number, end: number, out: Uint8Array): void;
  /** Turns the x86 SHA-extension path on or off (on only where the CPU has it); returns whether it is in use. */
  useAccel?(on: boolean): boolean;
  /** Whether the CPU has the SHA extensions (the addon then uses them by default). */
  accelAvailable?: boolean;
  stateSize: number;
}

interface NativeMacKey extends MacKey {
  readonly state: Buffer;
}

/** Where the addon is built, relative to this module (the same from `src/wire/` and `dist/wire/`). */
export const NATIVE_ADDON_PATH = '../../native/build/Release/tulipwire_mac.node';

/** Why the native engine is not available (`null` when it is): missing build, load failure, or disabled by env. */
export let nativeMacUnavailableReason: string | null = null;

function load(): NativeAddon | null {
  try {
    const require = createRequire(import.meta.url);
    const addon = require(NATIVE_ADDON_PATH) as NativeAddon;
    if (typeof addon.signBatch !== 'function' || typeof addon.verifyBatch !== 'function') {
      nativeMacUnavailableReason = 'the addon does not export signBatch/verifyBatch';
      return null;
    }
    return addon;
  } catch (err) {
    nativeMacUnavailableReason = `addon not loaded: ${(err as Error)?.message ?? String(err)}`;
    return null;
  }
}

const addon = load();

function wrap(a: NativeAddon): MacEngine {
  return {
    name: 'native',
    prepareKey(key: Uint8Array): MacKey {
      const k: NativeMacKey = { engine: 'native', state: a.prepareKey(key) };
      return k;
    },
    mac(key: MacKey, data: Uint8Array, start = 0, end = data.length): Buffer {
      const out = Buffer.allocUnsafe(TAG_SIZE);
      a.mac((key as NativeMacKey).state, data, start, end, out);
      return out;
    },
    signBatch(key, buf, starts, ends, first, count): void {
      a.signBatch((key as NativeMacKey).state, buf, starts, ends, first, count);
    },
    verifyBatch(key, buf, starts, ends, first, count, results): number {
      return a.verifyBatch((key as NativeMacKey).state, buf, starts, ends, first, count, results);
    },
  };
}

/**
 * The native engine when the addon loaded, regardless of `TULIPWIRE_NO_NATIVE` (tests and benches compare it with
 * the others); `null` when it is not built or failed to load (see {@link nativeMacUnavailableReason}).
 */
export const nativeMac: MacEngine | null = addon !== null ? wrap(addon) : null;

/**
 * Whether the native engine hashes with the x86 SHA extensions (two messages interleaved, the HMAC finished in
 * registers) instead of OpenSSL's SHA256_Update/Final: true where the CPU has them and the addon is built.
 */
export const nativeMacAccelerated: boolean = addon?.accelAvailable === true;

/**
 * @internal For tests and benches: turns the native engine's SHA-extension path on or off (it stays off on a CPU
 * without the extensions). Returns whether it is now in use. Both paths give the same bytes.
 */
export function setNativeMacAccel(on: boolean): boolean {
  return addon?.useAccel?.(on) ?? false;
}

/** True when `TULIPWIRE_NO_NATIVE=1` asks for the pure-JS engine. */
export const nativeDisabledByEnv: boolean = process.env.TULIPWIRE_NO_NATIVE === '1';

/**
 * The engine the wire layer uses: native when it loaded and `TULIPWIRE_NO_NATIVE` is not `1`, else pure JS. Both
 * produce the same bytes.
 */
export function defaultMacEngine(): MacEngine {
  return nativeMac !== null && !nativeDisabledByEnv ? nativeMac : jsMac;
}
