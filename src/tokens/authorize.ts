/**
 * Authorization for message and RPC handlers: a handler declares the roles it needs, and a call without them is
 * refused with a typed `Forbidden` (carrying the missing `role`), never dropped silently.
 *
 * Handlers stay generic, `(params, ctx) => result` with `ctx.security` a {@link RoleHolder} (a `SecurityContext`),
 * so the RPC layer can register them as they are: `endpoint.handle(method, requireRole('admin', fn))`, or every
 * entry of an {@link authorize} table.
 */
import { Forbidden, MethodNotFound } from '../errors.js';

/** What a role check needs: `SecurityContext` is one. */
export interface RoleHolder {
  /** True when the caller holds `role` (the account has it and its credentials grant it). */
  hasRole(role: string): boolean;
}

/** The part of a handler context a role check reads; a missing or null `security` holds no role. */
export interface SecuredContext {
  /** The caller's security context. */
  readonly security?: RoleHolder | null;
}

/** A message or RPC handler. */
export type SecuredHandler<P = any, C extends SecuredContext = SecuredContext, R = unknown> = (params: P, ctx: C) => R;

/** Roles as one name or a list (all required). */
export type RequiredRoles = string | readonly string[];

function toList(roles: RequiredRoles): readonly string[] {
  const list = typeof roles === 'string' ? [roles] : [...roles];
  for (const r of list) if (typeof r !== 'string' || r.length === 0) throw new TypeError('a role is a non-empty string');
  return Object.freeze(list);
}

/**
 * Throws `Forbidden` (with `role`, the first one missing) unless `security` holds every one of `roles`.
 * @param what names the thing protected in the message (e.g. the method)
 */
export function checkRoles(security: RoleHolder | null | undefined, roles: RequiredRoles, what = 'this call'): void {
  for (const role of toList(roles)) {
    if (security === null || security === undefined || !security.hasRole(role)) {
      throw new Forbidden(`${what} requires role ${JSON.stringify(role)}`, { role });
    }
  }
}

/**
 * Wraps `handler` so it runs only for callers holding every one of `roles`; others get `Forbidden` (thrown
 * synchronously before the handler runs, so nothing of it executes).
 */
export function requireRole<P, C extends SecuredContext, R>(roles: RequiredRoles, handler: SecuredHandler<P, C, R>): SecuredHandler<P, C, R> {
  const list = toList(roles);
  const guarded = (params: P, ctx: C): R => {
    checkRoles(ctx?.security, list, handler.name ? `${handler.name}` : 'this call');
    return handler(params, ctx);
  };
  Object.defineProperty(guarded, 'requiredRoles', { value: list });
  return guarded;
}

/** One row of an {@link authorize} table: the roles required (`[]` for none, stated on purpose) and the handler. */
export interface AuthorizeEntry<C extends SecuredContext = SecuredContext> {
  /** Roles the caller must all hold; `[]` makes the method open to every caller. Required. */
  roles: RequiredRoles;
  /** The handler. */
  handler: SecuredHandler<any, C, unknown>;
}

/** What {@link authorize} returns. */
export interface AuthorizedTable<C extends SecuredContext = SecuredContext> {
  /** Every method's handler, wrapped with its role check: register these with the RPC layer. */
  readonly handlers: Readonly<Record<string, SecuredHandler<any, C, unknown>>>;
  /** The roles each method requires. */
  readonly roles: Readonly<Record<string, readonly string[]>>;
  /**
   * Checks `method` for `ctx` without running it.
   * @throws MethodNotFound for a method not in the table (deny by default); Forbidden without the roles
   */
  check(method: string, ctx: C): void;
  /** Checks, then runs the method's handler (for message handlers that dispatch on a type field). */
  dispatch(method: string, params: unknown, ctx: C): unknown;
}

/**
 * A per-method authorization table: `authorize({'user.get': {roles: [], handler}, 'user.delete': {roles: 'admin',
 * handler}})`. Every entry must state its roles (an entry without `roles` is a TypeError, so nothing becomes
 * public by omission), and a method not in the table is refused.
 */
export function authorize<C extends SecuredContext = SecuredContext>(table: Readonly<Record<string, AuthorizeEntry<C>>>): AuthorizedTable<C> {
  const handlers: Record<string, SecuredHandler<any, C, unknown>> = Object.create(null);
  const roles: Record<string, readonly string[]> = Object.create(null);
  for (const [method, entry] of Object.entries(table)) {
    if (entry === null || typeof entry !== 'object' || !('roles' in entry) || typeof entry.handler !== 'function') {
      throw new TypeError(`authorize: ${method} needs {roles, handler} (roles: [] for an open method)`);
    }
    const list = toList(entry.roles);
    const fn = entry.handler;
    roles[method] = list;
    handlers[method] = (params: unknown, ctx: C) => {
      checkRoles(ctx?.security, list, `method ${method}`);
      return fn(params, ctx);
    };
  }
  Object.freeze(handlers);
  Object.freeze(roles);
  const check = (method: string, ctx: C): void => {
    const list = Object.hasOwn(roles, method) ? roles[method] : undefined;
    if (list === undefined) throw new MethodNotFound(`no handler for method ${JSON.stringify(method)}`, { method });
    checkRoles(ctx?.security, list, `method ${method}`);
  };
  return {
    handlers,
    roles,
    check,
    dispatch(method: string, params: unknown, ctx: C): unknown {
      check(method, ctx);
      return handlers[method]!(params, ctx);
    },
  };
}
