/**
 * itsdangerous's `signer.py`: `Signer` signs bytes and unsigns them to check they were not changed.
 *
 * Token: `value SEP base64url(HMAC(derivedKey, value))`, byte for byte as itsdangerous 2.x (docs/security-model.md
 * §3.1). Verification recomputes the canonical signature text for each key (newest first) and compares in constant
 * time, so the malleable spellings Python's lax base64 decoder would accept are refused here.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BadSignature } from '../errors.js';
import { isWellFormed, wantBytes } from './encoding.js';
import type { StrOrBytes } from './encoding.js';

/** How the signing key is derived from a secret key and the salt (itsdangerous's `key_derivation`). */
export type KeyDerivation = 'django-concat' | 'concat' | 'hmac' | 'none';

/** The hash inside the HMAC (itsdangerous's `digest_method`); SHA-1 is itsdangerous's default. */
export type DigestMethod = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/** One secret key, or a list of keys oldest → newest (the last signs, every one verifies). */
export type SecretKeys = StrOrBytes | readonly StrOrBytes[];

/** Options of {@link Signer}. */
export interface SignerOptions {
  /** Distinguishes signatures made for different purposes. Default `'itsdangerous.Signer'` (also when null). */
  salt?: StrOrBytes | null;
  /** Separator between value and signature. Default `'.'`; may not contain `A-Za-z0-9-_=`. */
  sep?: StrOrBytes;
  /** Key derivation. Default `'django-concat'`: H(salt ‖ "signer" ‖ key). */
  keyDerivation?: KeyDerivation;
  /** HMAC digest. Default `'sha1'` (itsdangerous's default); `'sha256'` for new deployments. */
  digest?: DigestMethod;
}

const DIGESTS: readonly DigestMethod[] = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'];
const FORBIDDEN_SEP = new Set(Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=', 'latin1'));

/** The list of secret keys as Buffers (itsdangerous's `_make_keys_list`). */
export function makeKeysList(secretKey: SecretKeys): Buffer[] {
  const list = typeof secretKey === 'string' || secretKey instanceof Uint8Array ? [secretKey] : [...secretKey];
  if (list.length === 0) throw new TypeError('at least one secret key is required');
  return list.map((k) => Buffer.from(wantBytes(k)));
}

/** Finds `sep` in `haystack` searching from the end (Python's `rsplit(sep, 1)`), or -1. */
export function lastIndexOfBytes(haystack: Buffer, sep: Buffer): number {
  return haystack.lastIndexOf(sep);
}

/**
 * Signs values and verifies them (itsdangerous's `Signer`).
 *
 * Text in gives text out and bytes in give a Buffer out: `sign('my string')` is `'my string.wh6t…'`, `unsign` of a
 * Buffer returns a Buffer. A value may contain the separator; the signature is what follows the last one.
 */
export class Signer {
  /** itsdangerous's default salt for a `Signer`. */
  static readonly defaultSalt: string = 'itsdangerous.Signer';
  /** The secret keys, oldest → newest; the last one signs. */
  readonly secretKeys: readonly Buffer[];
  /** The salt, bytes. */
  readonly salt: Buffer;
  /** The separator, bytes. */
  readonly sep: Buffer;
  /** The key derivation in use. */
  readonly keyDerivation: KeyDerivation;
  /** The HMAC digest in use. */
  readonly digest: DigestMethod;
  // The derived keys, newest first: the order verification tries them in.
  readonly #derivedNewestFirst: readonly Buffer[];
  readonly #sepText: string;

  /**
   * @param secretKey one key or a list oldest → newest; ≥ 32 random bytes recommended
   * @throws TypeError on an empty key list, an unknown digest or key derivation; RangeError on a bad separator
   */
  constructor(secretKey: SecretKeys, options: SignerOptions = {}) {
    this.secretKeys = Object.freeze(makeKeysList(secretKey));
    this.sep = Buffer.from(wantBytes(options.sep ?? '.'));
    if (this.sep.length === 0 || this.sep.some((b) => FORBIDDEN_SEP.has(b))) {
      throw new RangeError(
        "The given separator cannot be used because it may be contained in the signature itself. ASCII letters, digits, and '-_=' must not be used.",
      );
    }
    this.#sepText = this.sep.toString('utf8');
    this.salt = Buffer.from(wantBytes(options.salt ?? (new.target as typeof Signer).defaultSalt));
    this.keyDerivation = options.keyDerivation ?? 'django-concat';
    if (!['django-concat', 'concat', 'hmac', 'none'].includes(this.keyDerivation)) {
      throw new TypeError(`Unknown key derivation method ${String(this.keyDerivation)}`);
    }
    this.digest = options.digest ?? 'sha1';
    if (!DIGESTS.includes(this.digest)) throw new TypeError(`Unsupported digest method ${String(this.digest)}`);
    this.#derivedNewestFirst = Object.freeze(this.secretKeys.map((k) => this.deriveKey(k)).reverse());
  }

  /** The newest (signing) secret key. */
  get secretKey(): Buffer {
    return this.secretKeys[this.secretKeys.length - 1]!;
  }

  /**
   * Derives the HMAC key from `secretKey` (default: the newest) and the salt, as itsdangerous's `derive_key`:
   * `django-concat` H(salt ‖ "signer" ‖ key), `concat` H(salt ‖ key), `hmac` HMAC_H(key, salt), `none` key.
   */
  deriveKey(secretKey?: StrOrBytes): Buffer {
    const key = secretKey === undefined ? this.secretKey : wantBytes(secretKey);
    switch (this.keyDerivation) {
      case 'concat':
        return createHash(this.digest).update(this.salt).update(key).digest();
      case 'django-concat':
        return createHash(this.digest).update(this.salt).update('signer').update(key).digest();
      case 'hmac':
        return createHmac(this.digest, key).update(this.salt).digest();
      case 'none':
        return Buffer.from(key);
    }
  }

  /** The base64url signature text of `value` under the newest key (itsdangerous's `get_signature`). */
  getSignature(value: string): string;
  getSignature(value: Uint8Array): Buffer;
  getSignature(value: StrOrBytes): string | Buffer;
  getSignature(value: StrOrBytes): string | Buffer {
    const text = this.#signatureText(this.#derivedNewestFirst[0]!, wantBytes(value));
    return typeof value === 'string' ? text : Buffer.from(text, 'latin1');
  }

  #signatureText(derived: Buffer, value: Buffer): string {
    return createHmac(this.digest, derived).update(value).digest('base64url');
  }

  /** Signs `value`: `value SEP signature`. */
  sign(value: string): string;
  sign(value: Uint8Array): Buffer;
  sign(value: StrOrBytes): string | Buffer;
  sign(value: StrOrBytes): string | Buffer {
    const bytes = wantBytes(value);
    const sig = this.#signatureText(this.#derivedNewestFirst[0]!, bytes);
    if (typeof value === 'string') return value + this.#sepText + sig;
    return Buffer.concat([bytes, this.sep, Buffer.from(sig, 'latin1')]);
  }

  /**
   * True when `sig` is the signature of `value` under any of the keys. Every key is tried (newest first) and each
   * comparison is constant-time, so the time taken says nothing about the signature.
   */
  verifySignature(value: StrOrBytes, sig: StrOrBytes): boolean {
    const given = wantBytes(sig);
    const bytes = wantBytes(value);
    let ok = false;
    for (const derived of this.#derivedNewestFirst) {
      const expected = Buffer.from(this.#signatureText(derived, bytes), 'latin1');
      // Lengths are public (fixed per digest); timingSafeEqual throws on unequal lengths.
      if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
    }
    return ok;
  }

  /**
   * Checks and strips the signature.
   * @throws BadSignature "No b'.' found in value", or "Signature b'…' does not match" (with the untrusted `payload`)
   */
  unsign(signedValue: string): string;
  unsign(signedValue: Uint8Array): Buffer;
  unsign(signedValue: StrOrBytes): string | Buffer;
  unsign(signedValue: StrOrBytes): string | Buffer {
    if (typeof signedValue === 'string' && !isWellFormed(signedValue)) throw new BadSignature('the signed value is not valid text');
    const value = this.unsignBytes(wantBytes(signedValue));
    return typeof signedValue === 'string' ? value.toString('utf8') : value;
  }

  /** {@link unsign} on bytes, always returning a Buffer (for the layers above). */
  unsignBytes(signed: Buffer): Buffer {
    const at = lastIndexOfBytes(signed, this.sep);
    if (at < 0) throw new BadSignature(`No ${pyBytesRepr(this.sep)} found in value`);
    const value = signed.subarray(0, at);
    const sig = signed.subarray(at + this.sep.length);
    if (this.verifySignature(value, sig)) return value;
    throw new BadSignature(`Signature ${pyBytesRepr(sig)} does not match`, { payload: Buffer.from(value) });
  }

  /** True when `signedValue` carries a valid signature. */
  validate(signedValue: StrOrBytes): boolean {
    try {
      this.unsign(signedValue);
      return true;
    } catch (err) {
      if (err instanceof BadSignature) return false;
      throw err;
    }
  }
}

/** Python's `repr(bytes)` (as itsdangerous puts in its messages), trimmed to 64 bytes. */
export function pyBytesRepr(b: Uint8Array): string {
  let out = "b'";
  const n = Math.min(b.length, 64);
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c === 0x27) out += "\\'";
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
    else out += '\\x' + c.toString(16).padStart(2, '0');
  }
  return out + (b.length > n ? "…'" : "'");
}
