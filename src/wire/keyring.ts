/**
 * Message keys by id, for rotation without downtime, and their per-direction derivation.
 *
 * A {@link Keyring} holds shared secrets under short key ids (`kid`). The newest key added with `sign` (the default)
 * signs; every key verifies. Rotation: add the new key with `{sign: false}` everywhere, then add it (or re-add it)
 * as signing, then `remove` the old one once every message it signed has expired (ttl + skew).
 *
 * Messages are never MACed with a secret itself: each direction of a connection uses its own key,
 * `HKDF-SHA256(ikm = secret, salt = binding, info = "tulipwire/1 c2s" | "tulipwire/1 s2c", L = 32)`, where
 * `binding` is empty, or the connection's TLS exporter value when the keys are bound to the TLS session
 * (docs/wire-format.md §4). So a message cannot be reflected back to its sender, nor (when bound) replayed onto
 * another connection.
 *
 * @module
 */
import { hkdfSync } from 'node:crypto';

/** The direction of a message: client to server or server to client. */
export type Direction = 'c2s' | 's2c';

/** The HKDF `info` label of each direction (docs/wire-format.md §4). */
export const DIRECTION_LABELS: Readonly<Record<Direction, string>> = Object.freeze({
  c2s: 'tulipwire/1 c2s',
  s2c: 'tulipwire/1 s2c',
});

/** The RFC 5705 exporter label used to bind message keys to the TLS session; 32 bytes, no context. */
export const TLS_EXPORTER_LABEL = 'EXPORTER-tulipwire-binding';
/** Bytes of exporter output used as the HKDF salt. */
export const TLS_EXPORTER_LENGTH = 32;
/** Minimum secret length, bytes. */
export const MIN_SECRET_SIZE = 32;
/** Longest key id, bytes. */
export const MAX_KID_SIZE = 32;

const KID_RE = /^[A-Za-z0-9._:-]{1,32}$/;

/**
 * Derives the 32-byte MAC key of one direction from a shared secret: HKDF-SHA256 with `salt = binding` (empty
 * when the keys are not bound to TLS) and `info = DIRECTION_LABELS[direction]`.
 */
export function deriveDirectionKey(secret: Uint8Array, direction: Direction, binding: Uint8Array | null = null): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, binding ?? new Uint8Array(0), DIRECTION_LABELS[direction], 32));
}

/** One key of a {@link Keyring}. */
export interface KeyEntry {
  /** The key id, as sent in every envelope. */
  readonly kid: string;
  /** The key id's bytes (ASCII). */
  readonly kidBytes: Buffer;
  /** The shared secret. */
  readonly secret: Buffer;
  /** True when this key may sign (verify-only keys have false). */
  readonly sign: boolean;
}

/** Options of {@link Keyring.add}. */
export interface KeyOptions {
  /** Whether the key may sign; the newest signing key signs. Default true. */
  sign?: boolean;
}

/**
 * Shared secrets by key id. The newest key added with `sign` signs; all verify.
 *
 * Key ids are 1–32 characters of `A-Z a-z 0-9 . _ : -` (they travel in every envelope and appear in logs). A kid
 * is never reused for different material: re-adding a kid with another secret throws.
 */
export class Keyring {
  private readonly keys = new Map<string, KeyEntry>();
  // Signing candidates, oldest first; the last one signs.
  private signers: string[] = [];
  private ver = 0;

  /** Bumped by every change, so caches of derived keys know when to refresh. */
  get version(): number {
    return this.ver;
  }

  /** How many keys the ring holds. */
  get size(): number {
    return this.keys.size;
  }

  /**
   * Adds (or, for a kid already present with the same secret, updates the `sign` flag of) a key.
   * @throws TypeError for a malformed kid; RangeError for a secret shorter than 32 bytes or a kid reused with a
   *   different secret.
   */
  add(kid: string, secret: Uint8Array, options: KeyOptions = {}): void {
    if (typeof kid !== 'string' || !KID_RE.test(kid)) {
      throw new TypeError(`key id must be 1-32 characters of A-Z a-z 0-9 . _ : -, got ${JSON.stringify(kid)}`);
    }
    if (!(secret instanceof Uint8Array) || secret.length < MIN_SECRET_SIZE) {
      throw new RangeError(`the secret of key ${kid} must be at least ${MIN_SECRET_SIZE} bytes`);
    }
    const sign = options.sign ?? true;
    const old = this.keys.get(kid);
    if (old !== undefined && !old.secret.equals(secret)) {
      throw new RangeError(`key id ${kid} is already in use with another secret; never reuse a kid`);
    }
    this.keys.set(kid, { kid, kidBytes: Buffer.from(kid, 'latin1'), secret: Buffer.from(secret), sign });
    this.signers = this.signers.filter((k) => k !== kid);
    if (sign) this.signers.push(kid);
    this.ver++;
  }

  /** Removes a key; messages under it no longer verify. Returns whether it was present. */
  remove(kid: string): boolean {
    const had = this.keys.delete(kid);
    if (had) {
      this.signers = this.signers.filter((k) => k !== kid);
      this.ver++;
    }
    return had;
  }

  /** The key with this id, or undefined. */
  get(kid: string): KeyEntry | undefined {
    return this.keys.get(kid);
  }

  /** True when a key with this id is present. */
  has(kid: string): boolean {
    return this.keys.has(kid);
  }

  /** Every key id, oldest first. */
  kids(): string[] {
    return [...this.keys.keys()];
  }

  /**
   * The id of the key that signs: the newest one added with `sign`.
   * @throws RangeError when the ring holds no signing key.
   */
  signingKid(): string {
    const kid = this.signers[this.signers.length - 1];
    if (kid === undefined) throw new RangeError('the keyring holds no signing key');
    return kid;
  }

  /** The entry of {@link signingKid}. */
  signingKey(): KeyEntry {
    return this.keys.get(this.signingKid())!;
  }
}
