/**
 * Security contexts and authorization, tested the way the seeds ask: "do not only test that things work as they
 * should, but also that they break as they should". Every protected handler is called without the role, with the
 * role outside the granted subset, with an expired token and with a token of a bumped generation, and each call is
 * refused with its code before the handler runs.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { SecurityContext, TokenService, authorize, checkRoles, requireRole } from '../../src/tokens/index.js';
import type { SecuredContext } from '../../src/tokens/index.js';
import { Forbidden } from '../../src/errors.js';

const T0 = 1_764_580_000;

/** A fake mTLS identity, shaped like the PKI layer's (only what the lookup reads). */
interface Identity { commonName: string; fingerprint: string }

const ACCOUNTS: Record<string, { id: string; roles: string[] }> = {
  alice: { id: 'alice', roles: ['user', 'admin', 'auditor'] },
  bob: { id: 'bob', roles: ['user'] },
};

/** Certificates map to accounts; a "readonly" certificate of alice grants only 'user'. */
const certLookup = (id: Identity) => {
  if (id.commonName === 'alice-readonly') return { account: ACCOUNTS.alice!, granted: ['user'] };
  const account = ACCOUNTS[id.commonName];
  return account ? { account } : null;
};

type Ctx = SecuredContext & { security: SecurityContext | null };

function makeApi(calls: string[]) {
  return authorize<Ctx>({
    'profile.get': { roles: [], handler: () => { calls.push('profile.get'); return 'open'; } },
    'notes.list': { roles: 'user', handler: () => { calls.push('notes.list'); return ['n1']; } },
    'user.delete': { roles: 'admin', handler: (p: { id: string }) => { calls.push('user.delete'); return `deleted ${p.id}`; } },
    'audit.export': { roles: ['admin', 'auditor'], handler: async () => { calls.push('audit.export'); return 'csv'; } },
  });
}

const PROTECTED = ['notes.list', 'user.delete', 'audit.export'] as const;

function refusal(fn: () => unknown): { code: string; role?: string | null } {
  try {
    fn();
  } catch (err) {
    return err as { code: string; role?: string | null };
  }
  throw new Error('expected a refusal');
}

describe('SecurityContext', () => {
  it('hasRole only when the account has the role AND the credential grants it', () => {
    const ctx = new SecurityContext({ account: { id: 'alice', roles: ['user', 'admin'] }, granted: ['user', 'auditor'] });
    expect(ctx.hasRole('user')).toBe(true);
    expect(ctx.hasRole('admin')).toBe(false); // the account has it, the token does not grant it
    expect(ctx.hasRole('auditor')).toBe(false); // granted, but the account lacks it
    expect(ctx.effectiveRoles).toEqual(['user']);
    expect(SecurityContext.anonymous.hasRole('user')).toBe(false);
    expect(String(ctx)).toBe('SecurityContext(account=alice, roles=[user])');
  });

  it('fromPeerIdentity: the lookup decides the account and what the certificate grants', async () => {
    const full = await SecurityContext.fromPeerIdentity<Identity>({ commonName: 'alice', fingerprint: 'a1' }, certLookup);
    expect(full.hasRole('admin')).toBe(true);
    expect(full.sources).toEqual(['certificate']);
    const readonly = await SecurityContext.fromPeerIdentity<Identity>({ commonName: 'alice-readonly', fingerprint: 'a2' }, certLookup);
    expect(readonly.hasRole('user')).toBe(true);
    expect(readonly.hasRole('admin')).toBe(false);
    const stranger = await SecurityContext.fromPeerIdentity<Identity>({ commonName: 'mallory', fingerprint: 'm' }, certLookup);
    expect(stranger).toBe(SecurityContext.anonymous);
    expect(await SecurityContext.fromPeerIdentity<Identity>(null, certLookup)).toBe(SecurityContext.anonymous);
    const machine = await SecurityContext.fromPeerIdentity<Identity>({ commonName: 'gw', fingerprint: 'g' }, () => ({ account: null, granted: ['user'] }));
    expect(machine.hasRole('user')).toBe(false); // a cap, not an account
  });

  it('fromAccessToken grants the token scope; combine() grants only what both credentials grant', async () => {
    const clock = new VirtualClock({ epochStart: T0 });
    const service = new TokenService({ secretKeys: 'k', clock });
    const { accessToken } = await service.issue(ACCOUNTS.alice!, { scope: ['user', 'admin'] });
    const fromToken = await SecurityContext.fromAccessToken(service, accessToken);
    expect(fromToken.hasRole('admin')).toBe(true);
    expect(fromToken.hasRole('auditor')).toBe(false);
    const cert = await SecurityContext.fromPeerIdentity<Identity>({ commonName: 'alice-readonly', fingerprint: 'x' }, certLookup);
    const both = SecurityContext.combine(cert, fromToken);
    expect(both.hasRole('user')).toBe(true);
    expect(both.hasRole('admin')).toBe(false); // the certificate caps the token
    expect(both.sources).toEqual(['certificate', 'token']);
    const gateway = await SecurityContext.fromPeerIdentity<Identity>({ commonName: 'gw', fingerprint: 'g' }, () => ({ account: null, granted: ['user', 'admin'] }));
    expect(SecurityContext.combine(gateway, fromToken).hasRole('admin')).toBe(true);
    const bobCert = await SecurityContext.fromPeerIdentity<Identity>({ commonName: 'bob', fingerprint: 'b' }, certLookup);
    expect(refusal(() => SecurityContext.combine(bobCert, fromToken))).toMatchObject({ code: 'TW_FORBIDDEN' });
    // A role removed from the account since the token was issued stops working when the lookup is used.
    const current = await SecurityContext.fromAccessToken(service, accessToken, { loadAccount: (id) => ({ id, roles: ['user'] }) });
    expect(current.hasRole('admin')).toBe(false);
    expect(current.hasRole('user')).toBe(true);
  });

  it('combine() works when the accounts\' roles were one-shot iterables (SecurityAccount.roles is any Iterable)', async () => {
    function* rolesOf(...roles: string[]) {
      yield* roles;
    }
    const cert = new SecurityContext({ account: { id: 'alice', roles: rolesOf('user', 'admin') }, sources: ['certificate'] });
    const token = new SecurityContext({ account: { id: 'alice', roles: new Set(['user', 'admin']).values() }, granted: ['user', 'admin'], sources: ['token'] });
    expect(cert.hasRole('admin')).toBe(true);
    expect(token.hasRole('admin')).toBe(true);
    const both = SecurityContext.combine(cert, token);
    expect(both.hasRole('user')).toBe(true);
    expect(both.hasRole('admin')).toBe(true);
    expect(both.effectiveRoles).toEqual(['user', 'admin']);
    // A machine certificate (no account) capping the token: the roles come from the token's side.
    const gateway = new SecurityContext({ account: null, granted: ['user'], sources: ['certificate'] });
    const viaGateway = SecurityContext.combine(gateway, new SecurityContext({ account: { id: 'alice', roles: rolesOf('user', 'admin') }, sources: ['token'] }));
    expect(viaGateway.hasRole('user')).toBe(true);
    expect(viaGateway.hasRole('admin')).toBe(false);
    // The loadAccount of fromAccessToken may hand back such an account too.
    const service = new TokenService({ secretKeys: 'k', clock: new VirtualClock({ epochStart: T0 }) });
    const { accessToken } = await service.issue(ACCOUNTS.alice!, { scope: ['user', 'admin'] });
    const fromToken = await SecurityContext.fromAccessToken(service, accessToken, { loadAccount: (id) => ({ id, roles: rolesOf('user', 'admin') }) });
    expect(SecurityContext.combine(cert, fromToken).hasRole('admin')).toBe(true);
  });
});

describe('authorization: things break as they should', () => {
  const clock = new VirtualClock({ epochStart: T0 });
  const service = new TokenService({ secretKeys: 'k', clock, accessTtl: 60 });

  /** Calls `method` the way the RPC layer does: build the context from the token, then the checked handler. */
  async function call(api: ReturnType<typeof makeApi>, method: string, token: string | null, params: unknown = { id: 'x' }) {
    const security = token === null ? SecurityContext.anonymous : await SecurityContext.fromAccessToken(service, token);
    return api.dispatch(method, params, { security });
  }

  it('works as it should: each method runs with the roles it needs', async () => {
    const calls: string[] = [];
    const api = makeApi(calls);
    const { accessToken } = await service.issue(ACCOUNTS.alice!);
    expect(await call(api, 'profile.get', null)).toBe('open');
    expect(await call(api, 'notes.list', accessToken)).toEqual(['n1']);
    expect(await call(api, 'user.delete', accessToken, { id: 'bob' })).toBe('deleted bob');
    expect(await call(api, 'audit.export', accessToken)).toBe('csv');
    expect(calls).toEqual(['profile.get', 'notes.list', 'user.delete', 'audit.export']);
    expect(api.roles['audit.export']).toEqual(['admin', 'auditor']);
  });

  it.each(PROTECTED)('%s: refused without the role (anonymous, and an account lacking it)', async (method) => {
    const calls: string[] = [];
    const api = makeApi(calls);
    await expect(call(api, method, null)).rejects.toMatchObject({ code: 'TW_FORBIDDEN' });
    const bobCtx = { security: new SecurityContext({ account: { id: 'carol', roles: [] } }) };
    expect(refusal(() => api.dispatch(method, {}, bobCtx))).toMatchObject({ code: 'TW_FORBIDDEN', role: api.roles[method]![0] });
    expect(refusal(() => api.handlers[method]!({}, { security: null }))).toMatchObject({ code: 'TW_FORBIDDEN' });
    expect(refusal(() => api.handlers[method]!({}, {} as Ctx))).toMatchObject({ code: 'TW_FORBIDDEN' });
    expect(calls).toEqual([]);
  });

  it.each(PROTECTED)('%s: refused with the role outside the granted subset', async (method) => {
    const calls: string[] = [];
    const api = makeApi(calls);
    // alice has every role; this token grants all of them except the one the method needs.
    const needed = api.roles[method]![0]!;
    const { accessToken } = await service.issue(ACCOUNTS.alice!, { scope: ACCOUNTS.alice!.roles.filter((r) => r !== needed) });
    const err = await call(api, method, accessToken).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Forbidden);
    expect(err).toMatchObject({ code: 'TW_FORBIDDEN', role: needed });
    // A certificate that grants only 'user' cannot reach admin methods even for alice.
    const cert = await SecurityContext.fromPeerIdentity<Identity>({ commonName: 'alice-readonly', fingerprint: 'r' }, certLookup);
    if (method !== 'notes.list') expect(refusal(() => api.dispatch(method, {}, { security: cert }))).toMatchObject({ code: 'TW_FORBIDDEN' });
    expect(calls.filter((c) => c !== 'notes.list')).toEqual([]);
  });

  it.each(PROTECTED)('%s: refused with an expired token (TokenExpired)', async (method) => {
    const calls: string[] = [];
    const api = makeApi(calls);
    const { accessToken } = await service.issue(ACCOUNTS.alice!);
    clock.advance(61);
    await expect(call(api, method, accessToken)).rejects.toMatchObject({ code: 'TW_TOKEN_EXPIRED' });
    expect(calls).toEqual([]);
  });

  it.each(PROTECTED)('%s: refused with a token of a bumped generation (TokenRevoked)', async (method) => {
    const calls: string[] = [];
    const api = makeApi(calls);
    const { accessToken, refreshToken } = await service.issue(ACCOUNTS.alice!);
    await service.bumpGeneration('alice');
    await expect(call(api, method, accessToken)).rejects.toMatchObject({ code: 'TW_TOKEN_REVOKED' });
    await expect(service.refresh(refreshToken)).rejects.toMatchObject({ code: 'TW_TOKEN_REVOKED' });
    expect(calls).toEqual([]);
  });

  it('refuses unknown methods (deny by default) and tables that do not state their roles', () => {
    const api = makeApi([]);
    expect(refusal(() => api.dispatch('user.promote', {}, { security: SecurityContext.anonymous }))).toMatchObject({ code: 'TW_METHOD_NOT_FOUND' });
    expect(() => authorize({ 'x': { handler: () => 1 } as never })).toThrow(TypeError);
    expect(() => authorize({ 'x': { roles: [''], handler: () => 1 } })).toThrow(TypeError);
  });

  it('requireRole wraps one handler; checkRoles is the bare check', async () => {
    let ran = 0;
    const reset = requireRole(['admin'], function reset(_p: unknown, _ctx: Ctx) { ran++; return 'ok'; });
    const admin = new SecurityContext({ account: ACCOUNTS.alice! });
    const user = new SecurityContext({ account: ACCOUNTS.bob! });
    expect(reset({}, { security: admin })).toBe('ok');
    expect(refusal(() => reset({}, { security: user }))).toMatchObject({ code: 'TW_FORBIDDEN', role: 'admin' });
    expect(ran).toBe(1);
    expect(() => checkRoles(user, ['user'])).not.toThrow();
    expect(refusal(() => checkRoles(user, ['user', 'admin'], 'method m'))).toMatchObject({ code: 'TW_FORBIDDEN', role: 'admin', message: 'method m requires role "admin"' });
  });
});
