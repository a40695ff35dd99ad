/**
 * Auth tickets: `make_auth_ticket(user_id, expires_in=60)` / `verify_auth_ticket(ticket)` of Ronacher's talk
 * "Writing Secure APIs" (PyCon Russia 2014).
 *
 * A ticket is a `URLSafeSerializer` token of `{"user_id": id, "expires_at": epoch seconds (float)}`, exactly as the
 * talk's Python makes it, so a ticket made by either side verifies on the other given the same key and salt:
 *
 * ```python
 * URLSafeSerializer(secret_key, salt="tulipwire.auth-ticket").loads(ticket)  # {'user_id': 42, 'expires_at': …}
 * ```
 *
 * The default salt is tulipwire's own, so tickets cannot be confused with other tokens signed by the same key
 * (itsdangerous's type confusion, docs/security-model.md §3.9); pass `salt: 'itsdangerous'` to exchange tickets
 * with the talk's code as written.
 */
import { BadPayload, SignatureExpired } from '../errors.js';
import { AUTH_TICKET_TTL } from '../constants.js';
import { systemClock } from '../loop/clock.js';
import type { Clock } from '../loop/clock.js';
import type { StrOrBytes } from './encoding.js';
import type { SecretKeys, SignerOptions } from './signer.js';
import { URLSafeSerializer } from './url-safe.js';

/** The salt auth tickets are signed with by default. */
export const AUTH_TICKET_SALT = 'tulipwire.auth-ticket';

/** A user id a ticket can carry: what JSON and Python share. */
export type UserId = string | number;

/** Options of {@link AuthTickets}. */
export interface AuthTicketsOptions {
  /** Salt. Default {@link AUTH_TICKET_SALT}; `'itsdangerous'` matches the talk's `URLSafeSerializer(secret_key)`. */
  salt?: StrOrBytes;
  /** Where time comes from (`epoch()`). Default the system clock. */
  clock?: Clock;
  /** Signer options (digest, key derivation). Default itsdangerous's (SHA-1, django-concat). */
  signerOptions?: SignerOptions;
}

/** Per-ticket options of {@link AuthTickets.makeAuthTicket}. */
export interface MakeAuthTicketOptions {
  /** Lifetime, seconds. Default {@link AUTH_TICKET_TTL} (the talk's 60). */
  expiresIn?: number;
}

/** What {@link AuthTickets.verifyAuthTicket} checked, for callers that want more than the user id. */
export interface AuthTicketInfo {
  /** The user the ticket was made for. */
  userId: UserId;
  /** When it stops being valid, epoch seconds. */
  expiresAt: number;
}

/** Makes and verifies auth tickets with one set of keys (the talk's `get_serializer()`). */
export class AuthTickets {
  readonly #serializer: URLSafeSerializer;
  readonly #clock: Clock;

  /** @param secretKeys one key or a list oldest → newest (the last signs, all verify) */
  constructor(secretKeys: SecretKeys, options: AuthTicketsOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#serializer = new URLSafeSerializer(secretKeys, {
      salt: options.salt ?? AUTH_TICKET_SALT,
      ...(options.signerOptions ? { signerOptions: options.signerOptions } : {}),
    });
  }

  /** Makes a ticket for `userId`, valid for `expiresIn` seconds. */
  makeAuthTicket(userId: UserId, options: MakeAuthTicketOptions = {}): string {
    const expiresIn = options.expiresIn ?? AUTH_TICKET_TTL;
    if (!Number.isFinite(expiresIn) || expiresIn <= 0) throw new RangeError(`expiresIn must be > 0 seconds, got ${expiresIn}`);
    checkUserId(userId);
    return this.#serializer.dumps({ user_id: userId, expires_at: this.#clock.epoch() + expiresIn });
  }

  /**
   * Verifies `ticket` and returns its user id.
   * @throws BadSignature (tampered, other key or salt); SignatureExpired (the talk's "Ticket expired.", with
   * `lateBy` seconds); BadPayload (validly signed but not a ticket)
   */
  verifyAuthTicket(ticket: StrOrBytes): UserId {
    return this.inspectAuthTicket(ticket).userId;
  }

  /** {@link verifyAuthTicket}, returning the expiry too. */
  inspectAuthTicket(ticket: StrOrBytes): AuthTicketInfo {
    const data = this.#serializer.loads(ticket) as unknown;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new BadPayload('not an auth ticket');
    const { user_id: userId, expires_at: expiresAt } = data as Record<string, unknown>;
    // An integer beyond 2^53 − 1 (a Python service's 64-bit id) loads as a bigint: refused, never rounded to a number
    // that would name another user.
    if (typeof userId === 'bigint') throw new BadPayload(`not an auth ticket tulipwire can read: user_id ${userId} is beyond 2^53 - 1 (use a string id)`);
    if ((typeof userId !== 'string' && typeof userId !== 'number') || typeof expiresAt !== 'number') {
      throw new BadPayload('not an auth ticket: user_id and expires_at are required');
    }
    const now = this.#clock.epoch();
    // The talk's code: `if data['expires_at'] < time.time(): raise BadSignature('Ticket expired.')`.
    if (expiresAt < now) throw new SignatureExpired('Ticket expired.', { lateBy: now - expiresAt });
    return { userId, expiresAt };
  }
}

function checkUserId(userId: UserId): void {
  if (typeof userId === 'number' ? !Number.isSafeInteger(userId) : typeof userId !== 'string') {
    throw new TypeError('userId must be a string or a safe integer');
  }
}

/** Options of the one-shot {@link makeAuthTicket}. */
export interface AuthTicketFunctionOptions extends AuthTicketsOptions, MakeAuthTicketOptions {
  /** The secret key(s). */
  secretKeys: SecretKeys;
}

/** One-shot form of {@link AuthTickets.makeAuthTicket}: `makeAuthTicket(42, {secretKeys, expiresIn: 60})`. */
export function makeAuthTicket(userId: UserId, options: AuthTicketFunctionOptions): string {
  return new AuthTickets(options.secretKeys, options).makeAuthTicket(userId, options);
}

/** One-shot form of {@link AuthTickets.verifyAuthTicket}. */
export function verifyAuthTicket(ticket: StrOrBytes, options: Omit<AuthTicketFunctionOptions, 'expiresIn'>): UserId {
  return new AuthTickets(options.secretKeys, options).verifyAuthTicket(ticket);
}
