/**
 * itsdangerous's `serializer.py`: a `Serializer` wraps a signer to sign JSON-able values instead of bytes.
 *
 * Token: `json.dumps(obj) SEP signature`, with the stdlib's spaced separators and `ensure_ascii=True`, exactly as
 * Python writes it (see ./json.ts). The URL-safe classes (./url-safe.ts) swap in compact JSON + base64 + zlib.
 */
import { BadPayload, BadSignature } from '../errors.js';
import type { Clock } from '../loop/clock.js';
import { isWellFormed, wantBytes } from './encoding.js';
import type { StrOrBytes } from './encoding.js';
import { STDLIB_JSON, pythonJsonDumps, pythonJsonLoads } from './json.js';
import { Signer } from './signer.js';
import type { SecretKeys, SignerOptions } from './signer.js';

/** Turns values into text and back (Python's `json` module shape). `loads` receives the verified bytes. */
export interface PayloadSerializer {
  /** Serializes a value to text (encoded as UTF-8 before signing). */
  dumps(value: unknown): string;
  /** Parses verified payload bytes. Any throw becomes a BadPayload. */
  loads(payload: Buffer): unknown;
}

/** Python's stdlib `json.dumps`/`json.loads` defaults: what itsdangerous's plain `Serializer` uses. */
export const stdlibJson: PayloadSerializer = Object.freeze({
  dumps: (value: unknown) => pythonJsonDumps(value, STDLIB_JSON),
  loads: (payload: Buffer) => pythonJsonLoads(payload),
});

/** Options a signer class accepts (a plain Signer ignores `clock`). */
export interface SignerClassOptions extends SignerOptions {
  /** Where timestamps come from (TimestampSigner). Default the system clock. */
  clock?: Clock;
}

/** A signer class, as `Serializer`'s `signer` option (itsdangerous's `signer=`). */
export type SignerClass = new (secretKey: SecretKeys, options?: SignerClassOptions) => Signer;

/** Options of {@link Serializer}. */
export interface SerializerOptions {
  /** Salt passed to the signer. Default `'itsdangerous'`; `null` falls back to the signer's default salt. */
  salt?: StrOrBytes | null;
  /** Payload serializer. Default: the class's `defaultSerializer` (stdlib JSON here, compact JSON for URL-safe). */
  serializer?: PayloadSerializer;
  /** Signer class. Default: the class's `defaultSigner` (`Signer`, or `TimestampSigner` for timed serializers). */
  signer?: SignerClass;
  /** Options for the signer (digest, keyDerivation, sep). */
  signerOptions?: SignerOptions;
  /** Signer options to try, in order, when the main signer rejects a token (e.g. an old digest being retired). */
  fallbackSigners?: readonly SignerOptions[];
  /** Clock for timestamped signers. Default the system clock. */
  clock?: Clock;
}

/** Per-call options of {@link Serializer.loads} and {@link Serializer.dumps}. */
export interface SaltOption {
  /** Overrides the serializer's salt for this call. */
  salt?: StrOrBytes | null;
}

const SIGNER_CACHE_LIMIT = 16;

/**
 * Signs and verifies JSON-able values (itsdangerous's `Serializer`).
 *
 * `dumps(value)` gives a text token; `loads(token)` verifies it (every key, newest first, then each fallback signer)
 * and parses the payload. A bad signature is a `BadSignature`; a payload that verifies but does not parse is a
 * `BadPayload` (and is not retried with the next signer, as in itsdangerous).
 */
export class Serializer {
  /** itsdangerous's default salt for serializers. */
  static readonly defaultSalt: string = 'itsdangerous';
  /** The payload serializer used when none is given. */
  static readonly defaultSerializer: PayloadSerializer = stdlibJson;
  /** The signer class used when none is given. */
  static readonly defaultSigner: SignerClass = Signer;

  /** The secret keys, oldest → newest. */
  readonly secretKeys: readonly Buffer[];
  /** The salt (null: the signer's default). */
  readonly salt: Buffer | null;
  /** The payload serializer. */
  readonly serializer: PayloadSerializer;
  /** The signer class. */
  readonly signer: SignerClass;
  /** Options for every signer this serializer makes. */
  readonly signerOptions: SignerOptions;
  /** Fallback signer options, tried in order after the main signer. */
  readonly fallbackSigners: readonly SignerOptions[];
  /** The clock handed to timestamped signers. */
  readonly clock: Clock | undefined;
  readonly #signers = new Map<string, Signer[]>();

  constructor(secretKey: SecretKeys, options: SerializerOptions = {}) {
    const cls = new.target as typeof Serializer;
    const keys = typeof secretKey === 'string' || secretKey instanceof Uint8Array ? [secretKey] : [...secretKey];
    if (keys.length === 0) throw new TypeError('at least one secret key is required');
    this.secretKeys = Object.freeze(keys.map((k) => Buffer.from(wantBytes(k))));
    const salt = options.salt === undefined ? cls.defaultSalt : options.salt;
    this.salt = salt === null ? null : Buffer.from(wantBytes(salt));
    this.serializer = options.serializer ?? cls.defaultSerializer;
    this.signer = options.signer ?? cls.defaultSigner;
    this.signerOptions = { ...options.signerOptions };
    this.fallbackSigners = Object.freeze([...(options.fallbackSigners ?? [])]);
    this.clock = options.clock;
    // Build the default signers now, so bad signer options throw here rather than on first use.
    this.iterUnsigners();
  }

  /** Serializes `value` to the bytes that get signed (itsdangerous's `dump_payload`). */
  dumpPayload(value: unknown): Buffer {
    return wantBytes(this.serializer.dumps(value));
  }

  /**
   * Parses verified payload bytes (itsdangerous's `load_payload`).
   * @throws BadPayload "Could not load the payload because an exception occurred on unserializing the data."
   */
  loadPayload(payload: Buffer): unknown {
    try {
      return this.serializer.loads(payload);
    } catch (err) {
      throw new BadPayload('Could not load the payload because an exception occurred on unserializing the data.', { cause: err });
    }
  }

  /** The signer for `salt` (default: the serializer's), built once and cached (itsdangerous's `make_signer`). */
  makeSigner(salt?: StrOrBytes | null): Signer {
    return this.iterUnsigners(salt)[0]!;
  }

  /** The signers to try when verifying: the main one, then each fallback (itsdangerous's `iter_unsigners`). */
  iterUnsigners(salt?: StrOrBytes | null): readonly Signer[] {
    const s = salt === undefined || salt === null ? this.salt : Buffer.from(wantBytes(salt));
    const cacheKey = s === null ? '' : '=' + s.toString('hex');
    let list = this.#signers.get(cacheKey);
    if (list === undefined) {
      const make = (opts: SignerOptions) =>
        new this.signer(this.secretKeys, { ...opts, salt: s, ...(this.clock ? { clock: this.clock } : {}) });
      list = [make(this.signerOptions), ...this.fallbackSigners.map(make)];
      if (this.#signers.size >= SIGNER_CACHE_LIMIT) this.#signers.delete(this.#signers.keys().next().value!);
      this.#signers.set(cacheKey, list);
    }
    return list;
  }

  /** Signs `value`; returns the token text. */
  dumps(value: unknown, options: SaltOption = {}): string {
    const payload = this.dumpPayload(value);
    return this.makeSigner(options.salt).sign(payload).toString('utf8');
  }

  /**
   * Verifies `token` and returns its value.
   * @throws BadSignature when no signer verifies it; BadPayload when it verifies but does not parse
   */
  loads<T = unknown>(token: StrOrBytes, options: SaltOption = {}): T {
    const bytes = tokenBytes(token);
    let last: unknown;
    for (const signer of this.iterUnsigners(options.salt)) {
      let verified: Buffer;
      try {
        verified = signer.unsignBytes(bytes);
      } catch (err) {
        if (err instanceof BadSignature) {
          last = err;
          continue;
        }
        throw err;
      }
      return this.loadPayload(verified) as T;
    }
    throw last;
  }
}

/** The bytes of a token handed to `loads`: text that is not valid Unicode cannot carry a signature. */
export function tokenBytes(token: StrOrBytes): Buffer {
  if (typeof token === 'string') {
    if (!isWellFormed(token)) throw new BadSignature('the token is not valid text');
    return Buffer.from(token, 'utf8');
  }
  if (token instanceof Uint8Array) return wantBytes(token);
  throw new BadSignature(`a token must be a string or bytes, got ${typeof token}`);
}
