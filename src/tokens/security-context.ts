/**
 * Security contexts: "encapsulate security systems" (`Context.load_token`, `has_role`), from Ronacher's talk
 * "Writing Secure APIs" (PyCon Russia 2014).
 *
 * A {@link SecurityContext} holds the account, the roles the account has, and the subset of roles the credential
 * in use grants (an access token's scope, or what a certificate is good for). `hasRole(r)` is true only when the
 * account has `r` **and** the credential grants it, so a token issued for `['read']` cannot act as `admin` even for
 * an admin, and a role taken away from the account stops working at once even if an old token still names it.
 */
import { Forbidden } from '../errors.js';
import type { TokenService } from './token-service.js';

/** The account a context is for: an id and its roles. */
export interface SecurityAccount {
  /** The account id. */
  readonly id: string | number;
  /** The roles the account holds. */
  readonly roles?: Iterable<string>;
}

/** Where a context's grants came from. */
export type CredentialKind = 'certificate' | 'token';

/** What a role lookup returns for a peer certificate: its account (or null) and the roles it grants. */
export interface RoleGrant {
  /**
   * The account the certificate belongs to, or null when it identifies a machine rather than an account: then the
   * context has no roles itself, but its `granted` caps what a token combined with it may do.
   */
  account: SecurityAccount | null;
  /** The roles the certificate grants; default all the account's roles. */
  granted?: Iterable<string>;
}

/** Maps a verified peer identity to a grant; null: the peer gets nothing. */
export type RoleLookup<I> = (identity: I) => RoleGrant | null | PromiseLike<RoleGrant | null>;

/** Options of the {@link SecurityContext} constructor. */
export interface SecurityContextInit {
  /** The account, or null (anonymous: no role is ever held). */
  account: SecurityAccount | null;
  /** The roles the credential grants; default all the account's roles. */
  granted?: Iterable<string>;
  /** Which credentials this context was built from. */
  sources?: readonly CredentialKind[];
}

/** Who the caller is and what the current credentials let it do. Immutable. */
export class SecurityContext {
  /** The context of nobody: every `hasRole` is false. */
  static readonly anonymous: SecurityContext = new SecurityContext({ account: null, granted: [] });

  /** The account, or null. */
  readonly account: SecurityAccount | null;
  /** The account's roles (empty without an account). */
  readonly roles: ReadonlySet<string>;
  /** The roles the credentials grant (the subset). */
  readonly granted: ReadonlySet<string>;
  /** Which credentials the context was built from (`['certificate', 'token']` when combined). */
  readonly sources: readonly CredentialKind[];

  /** @throws TypeError when the account's roles or `granted` is a string rather than a list of role names. */
  constructor(init: SecurityContextInit) {
    this.account = init.account;
    this.roles = Object.freeze(new Set(roleList(init.account?.roles ?? []))) as ReadonlySet<string>;
    this.granted = Object.freeze(new Set(init.granted === undefined ? this.roles : roleList(init.granted))) as ReadonlySet<string>;
    this.sources = Object.freeze([...(init.sources ?? [])]);
  }

  /** True only when there is an account, it has `role`, and the credentials grant it (the talk's `has_role`). */
  hasRole(role: string): boolean {
    return this.account !== null && this.granted.has(role) && this.roles.has(role);
  }

  /** True when {@link hasRole} holds for every one of `roles` (vacuously true for none, even when anonymous). */
  hasRoles(roles: Iterable<string>): boolean {
    for (const r of roles) if (!this.hasRole(r)) return false;
    return true;
  }

  /** The roles actually usable: the account's roles that are granted. */
  get effectiveRoles(): string[] {
    return this.account === null ? [] : [...this.roles].filter((r) => this.granted.has(r));
  }

  /**
   * A context from a verified peer certificate (mTLS identity). `identity` is whatever the PKI layer verified
   * (e.g. its `PeerIdentity`); `roleLookup` maps it to an account and the roles the certificate grants.
   * A null identity or a null grant gives {@link anonymous}.
   */
  static async fromPeerIdentity<I>(identity: I | null | undefined, roleLookup: RoleLookup<I>): Promise<SecurityContext> {
    if (identity === null || identity === undefined) return SecurityContext.anonymous;
    const grant = await roleLookup(identity);
    if (grant === null) return SecurityContext.anonymous;
    return new SecurityContext({
      account: grant.account,
      ...(grant.granted !== undefined ? { granted: grant.granted } : grant.account === null ? { granted: [] } : {}),
      sources: ['certificate'],
    });
  }

  /**
   * A context from an access token: verifies it with `service` (so it throws what `verifyAccess` throws:
   * UnknownToken, TokenExpired, TokenRevoked, StoreUnavailable) and grants the token's scope. With `loadAccount`
   * the account's current roles are used (a role removed since the token was issued no longer counts); without it,
   * the roles recorded when the token was issued. A lookup that returns null (the account is gone) gives
   * {@link anonymous}, so every role check fails.
   */
  static async fromAccessToken(
    service: TokenService,
    accessToken: string,
    options: { loadAccount?: (accountId: string) => SecurityAccount | null | PromiseLike<SecurityAccount | null> } = {},
  ): Promise<SecurityContext> {
    const info = await service.verifyAccess(accessToken);
    let account: SecurityAccount | null = { id: info.accountId, roles: info.roles };
    if (options.loadAccount) account = await options.loadAccount(info.accountId);
    if (account === null) return SecurityContext.anonymous;
    return new SecurityContext({ account, granted: info.scope, sources: ['token'] });
  }

  /**
   * Both credentials at once (a certificate and a token on the same request): the account is the one they name
   * (they must not name different accounts), the roles are the account's, and a role is granted only when **both**
   * grant it, so each credential caps the other.
   * @throws Forbidden when the two name different accounts
   */
  static combine(a: SecurityContext, b: SecurityContext): SecurityContext {
    if (a.account !== null && b.account !== null && String(a.account.id) !== String(b.account.id)) {
      throw new Forbidden(`the certificate and the token belong to different accounts (${a.account.id} and ${b.account.id})`);
    }
    const holder = b.account !== null ? b : a;
    const account = holder.account;
    // The context's own role set: account.roles may be a one-shot iterable its constructor already consumed.
    let roles = new Set(holder.roles);
    if (a.account !== null && b.account !== null) roles = new Set([...roles].filter((r) => a.roles.has(r)));
    const granted = [...a.granted].filter((r) => b.granted.has(r));
    const sources = [...new Set([...a.sources, ...b.sources])];
    return new SecurityContext({ account: account === null ? null : { id: account.id, roles }, granted, sources });
  }

  /** A readable summary for logs: never includes tokens. */
  toString(): string {
    if (this.account === null) return 'SecurityContext(anonymous)';
    return `SecurityContext(account=${this.account.id}, roles=[${this.effectiveRoles.join(',')}])`;
  }
}

// A string is an iterable of strings too: roles 'admin' would be the roles 'a', 'd', 'm', 'i', 'n'.
function roleList(roles: Iterable<string>): Iterable<string> {
  if (typeof roles === 'string') throw new TypeError(`roles must be a list of role names, not one string (${JSON.stringify(roles)}: write [${JSON.stringify(roles)}])`);
  return roles;
}
