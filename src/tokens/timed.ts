/**
 * itsdangerous's `timed.py`: `TimestampSigner` adds the signing time; `TimedSerializer` uses it.
 *
 * Token: `value SEP base64url(int_to_bytes(ts)) SEP signature`, where `ts` is whole epoch seconds as a big-endian
 * integer with its leading zero bytes stripped (1700000000 → `ZVPxAA`), and the signature covers everything before
 * the last separator. `maxAge` follows itsdangerous exactly: age = now − ts in whole seconds; `age > maxAge` is
 * expired, `age == maxAge` passes, and a negative age (signed in the future) is expired too: no skew allowance.
 */
import { BadSignature, BadTimeSignature, SignatureExpired } from '../errors.js';
import { systemClock } from '../loop/clock.js';
import type { Clock } from '../loop/clock.js';
import { base64Decode, bytesToInt, intToBytes, isWellFormed, wantBytes } from './encoding.js';
import type { StrOrBytes } from './encoding.js';
import { Serializer, tokenBytes } from './serializer.js';
import type { SaltOption, SignerClass } from './serializer.js';
import { Signer } from './signer.js';
import type { SecretKeys, SignerOptions } from './signer.js';

/** The last epoch second Python's `datetime` can hold (9999-12-31T23:59:59Z). */
const MAX_DATETIME_EPOCH = 253402300799n;

function bigIntOf(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** Options of {@link TimestampSigner}. */
export interface TimestampSignerOptions extends SignerOptions {
  /** Where the time comes from (`epoch()`, floored to whole seconds). Default the system clock. */
  clock?: Clock;
}

/** Per-call options of {@link TimestampSigner.unsign}. */
export interface UnsignOptions {
  /** Oldest accepted signature, seconds; null/undefined: no age check (itsdangerous's `max_age`). */
  maxAge?: number | null;
  /** Also return the signing time (epoch seconds) as `[value, timestamp]`. */
  returnTimestamp?: boolean;
}

/** Per-call options of {@link TimedSerializer.loads}. */
export interface TimedLoadsOptions extends UnsignOptions, SaltOption {}

/** The result of a timed unsign: the value and when it was signed. */
interface Timed {
  value: Buffer;
  timestamp: number;
}

/**
 * A {@link Signer} that also records when it signed, so signatures can expire (itsdangerous's `TimestampSigner`).
 * @throws from `unsign`: BadSignature (no separator at all), BadTimeSignature (bad signature with `dateSigned` read
 * from the *untrusted* token, "timestamp missing", "Malformed timestamp"), SignatureExpired (`dateSigned`, `lateBy`)
 */
export class TimestampSigner extends Signer {
  readonly #clock: Clock;

  constructor(secretKey: SecretKeys, options: TimestampSignerOptions = {}) {
    super(secretKey, options);
    this.#clock = options.clock ?? systemClock;
  }

  /** The current time as whole epoch seconds (itsdangerous's `get_timestamp`: `int(time.time())`). */
  getTimestamp(): number {
    return Math.floor(this.#clock.epoch());
  }

  /** Signs `value` with the current time: `value SEP ts SEP signature`. */
  override sign(value: string): string;
  override sign(value: Uint8Array): Buffer;
  override sign(value: StrOrBytes): string | Buffer;
  override sign(value: StrOrBytes): string | Buffer {
    const bytes = wantBytes(value);
    const ts = intToBytes(this.getTimestamp()).toString('base64url');
    const signed = super.sign(Buffer.concat([bytes, this.sep, Buffer.from(ts, 'latin1')]));
    return typeof value === 'string' ? signed.toString('utf8') : signed;
  }

  /** Verifies and strips the signature and timestamp; see the class for the errors. */
  override unsign(signedValue: string, options?: UnsignOptions & { returnTimestamp?: false }): string;
  override unsign(signedValue: Uint8Array, options?: UnsignOptions & { returnTimestamp?: false }): Buffer;
  override unsign(signedValue: string, options: UnsignOptions & { returnTimestamp: true }): [string, number];
  override unsign(signedValue: Uint8Array, options: UnsignOptions & { returnTimestamp: true }): [Buffer, number];
  override unsign(signedValue: StrOrBytes, options?: UnsignOptions): string | Buffer | [string | Buffer, number];
  override unsign(signedValue: StrOrBytes, options: UnsignOptions = {}): string | Buffer | [string | Buffer, number] {
    if (typeof signedValue === 'string' && !isWellFormed(signedValue)) throw new BadSignature('the signed value is not valid text');
    const { value, timestamp } = this.unsignTimed(wantBytes(signedValue), options.maxAge);
    const out = typeof signedValue === 'string' ? value.toString('utf8') : value;
    return options.returnTimestamp ? [out, timestamp] : out;
  }

  /** {@link unsign} on bytes without an age check, returning the value (what a plain Serializer calls). */
  override unsignBytes(signed: Buffer): Buffer {
    return this.unsignTimed(signed, null).value;
  }

  /** The timed unsign on bytes, returning the value and its timestamp (epoch seconds). */
  unsignTimed(signed: Buffer, maxAge: number | null | undefined): Timed {
    let result: Buffer;
    let sigError: BadSignature | null = null;
    try {
      result = super.unsignBytes(signed);
    } catch (err) {
      if (!(err instanceof BadSignature)) throw err;
      sigError = err;
      result = Buffer.isBuffer(err.payload) ? err.payload : Buffer.alloc(0);
    }
    const at = result.lastIndexOf(this.sep);
    if (at < 0) {
      if (sigError !== null) throw sigError;
      throw new BadTimeSignature('timestamp missing', { payload: result });
    }
    const value = result.subarray(0, at);
    let tsBytes: Buffer | null = null;
    try {
      tsBytes = base64Decode(result.subarray(at + this.sep.length));
    } catch {
      tsBytes = null;
    }
    let ts: number | null = null;
    try {
      ts = tsBytes === null ? null : bytesToInt(tsBytes);
    } catch {
      ts = null;
    }
    if (sigError !== null) {
      // itsdangerous makes a datetime of the (unverified) timestamp for date_signed; one a date cannot hold (year
      // 10000 on, any of the 8 bytes bytes_to_int reads) is "Malformed timestamp" there, not the signature error.
      if (tsBytes !== null && tsBytes.length <= 8 && bigIntOf(tsBytes) > MAX_DATETIME_EPOCH) {
        throw new BadTimeSignature('Malformed timestamp', { payload: value });
      }
      // dateSigned comes from the token itself here: unauthenticated, for debugging only.
      throw new BadTimeSignature(sigError.message, { payload: value, dateSigned: ts });
    }
    if (ts === null) throw new BadTimeSignature('Malformed timestamp', { payload: value });
    if (maxAge !== null && maxAge !== undefined) {
      const age = this.getTimestamp() - ts;
      if (age > maxAge) {
        throw new SignatureExpired(`Signature age ${age} > ${maxAge} seconds`, { payload: value, dateSigned: ts, lateBy: age - maxAge });
      }
      if (age < 0) {
        throw new SignatureExpired(`Signature age ${age} < 0 seconds`, { payload: value, dateSigned: ts, lateBy: 0 });
      }
    }
    return { value, timestamp: ts };
  }

  /** True when the signature is valid and, with `maxAge`, not expired. */
  override validate(signedValue: StrOrBytes, maxAge?: number | null): boolean {
    try {
      this.unsign(signedValue, { maxAge: maxAge ?? null });
      return true;
    } catch (err) {
      if (err instanceof BadSignature) return false;
      throw err;
    }
  }
}

/**
 * A {@link Serializer} signing with {@link TimestampSigner} (itsdangerous's `TimedSerializer`): `loads` takes
 * `maxAge` and `returnTimestamp`. An expired token is not retried with the next signer (SignatureExpired propagates).
 */
export class TimedSerializer extends Serializer {
  /** The signer class used when none is given. */
  static override readonly defaultSigner: SignerClass = TimestampSigner;

  /** The timestamped signers to try (the main one, then each fallback). */
  override iterUnsigners(salt?: StrOrBytes | null): readonly TimestampSigner[] {
    const list = super.iterUnsigners(salt);
    for (const s of list) if (!(s instanceof TimestampSigner)) throw new TypeError('a timed serializer needs a TimestampSigner');
    return list as readonly TimestampSigner[];
  }

  /**
   * Verifies `token`, checks its age and returns its value (or `[value, timestamp]` with `returnTimestamp`).
   * @throws BadSignature / BadTimeSignature; SignatureExpired (`dateSigned`, `lateBy`); BadPayload
   */
  override loads<T = unknown>(token: StrOrBytes, options?: TimedLoadsOptions & { returnTimestamp?: false }): T;
  override loads<T = unknown>(token: StrOrBytes, options: TimedLoadsOptions & { returnTimestamp: true }): [T, number];
  override loads<T = unknown>(token: StrOrBytes, options?: TimedLoadsOptions): T | [T, number];
  override loads<T = unknown>(token: StrOrBytes, options: TimedLoadsOptions = {}): T | [T, number] {
    const bytes = tokenBytes(token);
    let last: unknown;
    for (const signer of this.iterUnsigners(options.salt)) {
      let timed: Timed;
      try {
        timed = signer.unsignTimed(bytes, options.maxAge);
      } catch (err) {
        if (err instanceof SignatureExpired) throw err;
        if (err instanceof BadSignature) {
          last = err;
          continue;
        }
        throw err;
      }
      const value = this.loadPayload(timed.value) as T;
      return options.returnTimestamp ? [value, timed.timestamp] : value;
    }
    throw last;
  }
}
