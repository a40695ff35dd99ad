/**
 * Access and refresh tokens: the token-based authentication of Ronacher's talk "Writing Secure APIs" (PyCon Russia
 * 2014; "stolen access token: ~24 h of damage").
 *
 * - The **access token** is 32 random bytes (base64url, 43 characters), meaningless by itself: the server keeps
 *   its record (account, generation, granted roles, expiry) in a {@link TokenStore} under SHA-256 of the token,
 *   with a TTL. It can be revoked at any time and dies after `accessTtl`.
 * - The **refresh token** is a signed `URLSafeTimedSerializer` token (salt `tulipwire.refresh-token`, HMAC-SHA256)
 *   of `{"account_id", "generation", "scope", "jti", "access"}`. It is only ever sent to `refresh()`, is single-use
 *   (its `jti` is claimed in the store), and carries the account's token generation: `bumpGeneration(account)`
 *   revokes every refresh token (and access token) of that account at once, the talk's `token_generation`.
 * - Reusing a refresh token that was already exchanged means two parties hold it (one of them stole it), so the
 *   service bumps the account's generation, revoking the whole family, and refuses with `TokenRevoked`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { BadPayload, SignatureExpired, TokenExpired, TokenRevoked, UnknownToken } from '../errors.js';
import { ACCESS_TOKEN_TTL, EXPIRED_TOKEN_MEMORY, REFRESH_TOKEN_TTL } from '../constants.js';
import { systemClock } from '../loop/clock.js';
import type { Clock } from '../loop/clock.js';
import type { SecretKeys, SignerOptions } from './signer.js';
import { MemoryTokenStore } from './token-store.js';
import type { AccessRecord, TokenStore } from './token-store.js';
import { URLSafeTimedSerializer } from './url-safe.js';

/** The salt refresh tokens are signed with by default. */
export const REFRESH_TOKEN_SALT = 'tulipwire.refresh-token';

/** An account id: what JSON and Python share. Numbers and their decimal strings name the same account. */
export type AccountId = string | number;

/** What the service needs to know about an account. */
export interface Account {
  /** The account id. */
  readonly id: AccountId;
  /** The roles the account holds. */
  readonly roles?: Iterable<string>;
}

/** Looks an account up by id (its current roles), or null when it no longer exists. */
export type AccountLookup = (accountId: string) => Account | null | PromiseLike<Account | null>;

/** Options of {@link TokenService}. */
export interface TokenServiceOptions {
  /** Keys for refresh tokens, oldest → newest (the last signs, all verify). */
  secretKeys: SecretKeys;
  /** Server-side state. Default a new {@link MemoryTokenStore} on the same clock (closed by `close()`). */
  store?: TokenStore;
  /** Access token lifetime, seconds. Default {@link ACCESS_TOKEN_TTL}. */
  accessTtl?: number;
  /** Refresh token lifetime, seconds. Default {@link REFRESH_TOKEN_TTL}. */
  refreshTtl?: number;
  /** Where time comes from. Default the system clock. */
  clock?: Clock;
  /** Refresh token salt. Default {@link REFRESH_TOKEN_SALT}. */
  salt?: string;
  /** Refresh token signer options. Default `{digest: 'sha256'}` (django-concat derivation, as itsdangerous). */
  signerOptions?: SignerOptions;
  /** Consulted on refresh: the account's current roles (a removed role leaves the scope), null revokes. */
  loadAccount?: AccountLookup;
  /** Bump the account's generation when a used refresh token comes back. Default true. */
  reuseDetection?: boolean;
}

/** What `issue` and `refresh` return. */
export interface TokenPair {
  /** The bearer access token (43 characters). */
  accessToken: string;
  /** The refresh token: keep it secret, send it only to `refresh`. */
  refreshToken: string;
  /** Always `'Bearer'`. */
  tokenType: 'Bearer';
  /** Access token lifetime, seconds. */
  expiresIn: number;
  /** Refresh token lifetime, seconds. */
  refreshExpiresIn: number;
}

/** What `verifyAccess` found out about a valid access token. */
export interface AccessInfo {
  /** The account, as a string. */
  accountId: string;
  /** The account's roles when the token was issued (or last refreshed). */
  roles: string[];
  /** The roles the token grants. */
  scope: string[];
  /** The account's token generation the token belongs to. */
  generation: number;
  /** Issued at, epoch seconds. */
  issuedAt: number;
  /** Expires at, epoch seconds. */
  expiresAt: number;
}

/** Per-call options of {@link TokenService.issue}. */
export interface IssueOptions {
  /** The roles this pair grants; default all the account's roles. Roles the account lacks are dropped. */
  scope?: Iterable<string>;
}

/** The payload of a refresh token (JSON field names as a Python service sees them). */
interface RefreshPayload {
  account_id: AccountId;
  generation: number;
  scope: string[];
  roles: string[];
  jti: string;
  access: string;
}

function accessKey(token: string): string {
  return createHash('sha256').update(token, 'latin1').digest('base64url');
}

const ACCESS_TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

function checkLifetime(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be > 0 seconds, got ${value}`);
  return value;
}

/** Issues, verifies, refreshes and revokes access/refresh token pairs; see the module comment for the formats. */
export class TokenService {
  /** Access token lifetime, seconds. */
  readonly accessTtl: number;
  /** Refresh token lifetime, seconds. */
  readonly refreshTtl: number;
  /** The store in use. */
  readonly store: TokenStore;
  readonly #ownsStore: boolean;
  readonly #clock: Clock;
  readonly #serializer: URLSafeTimedSerializer;
  readonly #loadAccount: AccountLookup | null;
  readonly #reuseDetection: boolean;

  constructor(options: TokenServiceOptions) {
    this.#clock = options.clock ?? systemClock;
    this.accessTtl = checkLifetime('accessTtl', options.accessTtl ?? ACCESS_TOKEN_TTL);
    this.refreshTtl = checkLifetime('refreshTtl', options.refreshTtl ?? REFRESH_TOKEN_TTL);
    this.#ownsStore = options.store === undefined;
    this.store = options.store ?? new MemoryTokenStore({ clock: this.#clock });
    this.#serializer = new URLSafeTimedSerializer(options.secretKeys, {
      salt: options.salt ?? REFRESH_TOKEN_SALT,
      signerOptions: options.signerOptions ?? { digest: 'sha256' },
      clock: this.#clock,
    });
    this.#loadAccount = options.loadAccount ?? null;
    this.#reuseDetection = options.reuseDetection ?? true;
  }

  /**
   * Issues a new pair for `account`.
   * @throws StoreUnavailable when the store cannot be reached
   */
  async issue(account: Account, options: IssueOptions = {}): Promise<TokenPair> {
    const accountId = canonicalId(account.id);
    const roles = uniq(account.roles ?? []);
    const scope = options.scope === undefined ? roles : uniq(options.scope).filter((r) => roles.includes(r));
    const generation = await this.store.getGeneration(accountId);
    return (await this.#mint(account.id, accountId, generation, roles, scope)).pair;
  }

  // Stores the access record of a new pair (the one store write a pair needs) and signs the pair; resolves with the
  // pair and the store key of its access token (for refresh to remove it again when the claim is refused).
  async #mint(rawId: AccountId, accountId: string, generation: number, roles: string[], scope: string[]): Promise<{ pair: TokenPair; key: string }> {
    const accessToken = randomBytes(32).toString('base64url');
    const now = this.#clock.epoch();
    const record: AccessRecord = { accountId, generation, roles, scope, issuedAt: now, expiresAt: now + this.accessTtl };
    const key = accessKey(accessToken);
    // The store's state begins before this token is signed (a fresh Redis gets its epoch key now, not at the first
    // refresh, which would refuse every token signed before it).
    await Promise.all([this.store.putAccess(key, record, this.accessTtl + EXPIRED_TOKEN_MEMORY), this.store.stateSince?.(Math.floor(now))]);
    const payload: RefreshPayload = {
      account_id: rawId, generation, scope, roles, jti: randomBytes(16).toString('base64url'), access: key,
    };
    const pair: TokenPair = {
      accessToken,
      refreshToken: this.#serializer.dumps(payload),
      tokenType: 'Bearer',
      expiresIn: this.accessTtl,
      refreshExpiresIn: this.refreshTtl,
    };
    return { pair, key };
  }

  /**
   * Checks an access token.
   * @throws UnknownToken (never issued, revoked by refresh or `revoke`, or long expired); TokenExpired;
   * TokenRevoked (the account's generation was bumped); StoreUnavailable
   */
  async verifyAccess(accessToken: string): Promise<AccessInfo> {
    if (typeof accessToken !== 'string' || !ACCESS_TOKEN_RE.test(accessToken)) throw new UnknownToken('not an access token');
    const record = await this.store.getAccess(accessKey(accessToken));
    if (record === null) throw new UnknownToken();
    const now = this.#clock.epoch();
    if (now >= record.expiresAt) throw new TokenExpired(`access token expired ${(now - record.expiresAt).toFixed(1)} s ago`);
    const current = await this.store.getGeneration(record.accountId);
    if (record.generation !== current) throw new TokenRevoked('access token revoked: the account\'s token generation was bumped');
    return { ...record };
  }

  /**
   * Exchanges a refresh token for a new pair; the old access token is revoked and the refresh token is used up.
   * The token is spent only by the last store step, so a refresh that rejects with StoreUnavailable (or a failing
   * `loadAccount`) can be retried with the same token; the old access token may already be revoked then. One case
   * stays ambiguous: a claim that reached the store but whose reply was lost spent the token, and the retry is
   * refused as a reuse.
   * @throws BadSignature / BadTimeSignature (tampered, wrong key); TokenExpired; TokenRevoked (generation bumped, or
   * the token was already used: then, with reuse detection, every token of the account is revoked; or it was signed before the store's
   * state begins, `TokenStore.stateSince`); UnknownToken (the account is gone);
   * BadPayload (validly signed but not a refresh token); StoreUnavailable
   */
  async refresh(refreshToken: string): Promise<TokenPair> {
    let payload: RefreshPayload;
    let signedAt: number;
    try {
      [payload, signedAt] = this.#serializer.loads<RefreshPayload>(refreshToken, { maxAge: this.refreshTtl, returnTimestamp: true });
    } catch (err) {
      if (err instanceof SignatureExpired) throw new TokenExpired(`refresh token expired: ${err.message}`, { cause: err });
      throw err;
    }
    checkRefreshPayload(payload);
    const accountId = canonicalId(payload.account_id);
    const [current, since] = await Promise.all([this.store.getGeneration(accountId), this.store.stateSince?.(Math.floor(this.#clock.epoch()))]);
    // Signed before the store's memory begins: its generation bump or its use may be what the store lost.
    if (since !== undefined && signedAt < since) {
      throw new TokenRevoked(`refresh token signed before the token store's state begins (${new Date(since * 1000).toISOString()}: `
        + 'the store lost what it knew, a restart or a Redis that came back empty): sign in again');
    }
    if (payload.generation !== current) throw new TokenRevoked('refresh token revoked: the account\'s token generation was bumped');
    // The account is looked up before the token is used up: a lookup that fails (a database timeout) must leave the
    // token good for the client's retry, which would otherwise come back as a reused token and revoke the family.
    let roles = payload.roles;
    if (this.#loadAccount !== null) {
      const account = await this.#loadAccount(accountId);
      if (account === null) throw new UnknownToken(`account ${accountId} no longer exists`);
      roles = uniq(account.roles ?? []);
    }
    // The claim that spends the token is the last store step: every write that can fail (storing the new access
    // record, removing the old one) comes first, so a refresh that fails on the store leaves the refresh token good
    // for the client's retry. Claiming first and failing after left the client with no new pair and a spent token,
    // whose retry then looked like a reuse and revoked the family. A failure before the claim leaves at most an
    // access record no one holds the token of (it expires with its TTL).
    const scope = payload.scope.filter((r) => roles.includes(r));
    const { pair, key } = await this.#mint(payload.account_id, accountId, current, roles, scope);
    await this.store.deleteAccess(payload.access);
    // Single use: the claim lives as long as the token could still verify.
    const remaining = Math.max(1, signedAt + this.refreshTtl - Math.floor(this.#clock.epoch()) + 1);
    let claimed: boolean;
    try {
      claimed = await this.store.claimOnce(payload.jti, remaining);
    } catch (err) {
      await this.store.deleteAccess(key).catch(() => false);
      throw err;
    }
    if (!claimed) {
      await this.store.deleteAccess(key).catch(() => false); // the bump below revokes it too, should this fail
      if (this.#reuseDetection) await this.store.bumpGeneration(accountId);
      throw new TokenRevoked(this.#reuseDetection
        ? 'refresh token already used: every token of the account is revoked'
        : 'refresh token already used (reuse detection is off: the account\'s other tokens stay valid)');
    }
    return pair;
  }

  /** Revokes one access token; true when it was known. */
  async revoke(accessToken: string): Promise<boolean> {
    if (typeof accessToken !== 'string' || !ACCESS_TOKEN_RE.test(accessToken)) return false;
    return this.store.deleteAccess(accessKey(accessToken));
  }

  /** Revokes every access and refresh token of the account at once; returns the new generation. */
  async bumpGeneration(accountId: AccountId): Promise<number> {
    return this.store.bumpGeneration(canonicalId(accountId));
  }

  /** Closes the store if the service made it. */
  async close(): Promise<void> {
    if (this.#ownsStore) await this.store.close();
  }
}

/** The store's name for an account: numbers and their decimal strings are one account. */
export function canonicalId(id: AccountId): string {
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id)) throw new TypeError('a numeric account id must be a safe integer');
    return String(id);
  }
  if (typeof id !== 'string' || id.length === 0) throw new TypeError('an account id must be a non-empty string or an integer');
  return id;
}

function uniq(roles: Iterable<string>): string[] {
  // A string is an iterable of strings too: 'admin' would be the roles 'a', 'd', 'm', 'i', 'n'.
  if (typeof roles === 'string') throw new TypeError(`roles must be a list of role names, not one string (${JSON.stringify(roles)}: write [${JSON.stringify(roles)}])`);
  const out = new Set<string>();
  for (const r of roles) {
    if (typeof r !== 'string') throw new TypeError('roles must be strings');
    out.add(r);
  }
  return [...out];
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function checkRefreshPayload(p: unknown): asserts p is RefreshPayload {
  const o = p as Record<string, unknown> | null;
  const ok =
    typeof o === 'object' && o !== null && !Array.isArray(o) &&
    (typeof o.account_id === 'string' || (typeof o.account_id === 'number' && Number.isSafeInteger(o.account_id))) &&
    typeof o.generation === 'number' && Number.isSafeInteger(o.generation) &&
    isStringArray(o.scope) && isStringArray(o.roles) &&
    typeof o.jti === 'string' && typeof o.access === 'string';
  if (!ok) throw new BadPayload('not a refresh token');
}
