/**
 * Roles are a list of names (`Iterable<string>`), and a string is an iterable of strings too: `roles: 'admin'`
 * (a single role written without its brackets, an easy slip from JavaScript or from a config value) was read as
 * the roles 'a', 'd', 'm', 'i', 'n'. The account then silently lacked 'admin' and held five one-letter roles, and
 * a token issued for it granted those. Every place that takes roles (TokenService.issue's account roles and scope,
 * loadAccount's result on refresh, SecurityContext's account roles and grant) now refuses a bare string with a
 * TypeError that says so.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { SecurityContext, TokenService } from '../../src/tokens/index.js';

const KEY = 'roles-as-string-key-0123456789abcdef';
const clock = () => new VirtualClock({ epochStart: 1_764_580_000 });
const notAList = expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/list of role names/) });

describe('roles given as one string', () => {
  it('TokenService.issue refuses them as the account roles and as the scope', async () => {
    const service = new TokenService({ secretKeys: KEY, clock: clock() });
    await expect(service.issue({ id: 1, roles: 'admin' })).rejects.toThrow(notAList);
    await expect(service.issue({ id: 1, roles: ['admin'] }, { scope: 'admin' })).rejects.toThrow(notAList);
    const ok = await service.issue({ id: 1, roles: ['admin'] }, { scope: ['admin'] });
    expect((await service.verifyAccess(ok.accessToken)).scope).toEqual(['admin']);
    await service.close();
  });

  it('refresh refuses them from loadAccount, leaving the refresh token unused', async () => {
    let roles: string | string[] = 'admin';
    const service = new TokenService({ secretKeys: KEY, clock: clock(), loadAccount: (id) => ({ id, roles: roles as string[] }) });
    const pair = await service.issue({ id: 2, roles: ['admin'] });
    await expect(service.refresh(pair.refreshToken)).rejects.toThrow(notAList);
    roles = ['admin'];
    const next = await service.refresh(pair.refreshToken);
    expect((await service.verifyAccess(next.accessToken)).roles).toEqual(['admin']);
    await service.close();
  });

  it('SecurityContext refuses them as account roles and as the grant', () => {
    expect(() => new SecurityContext({ account: { id: 1, roles: 'admin' } })).toThrow(notAList);
    expect(() => new SecurityContext({ account: { id: 1, roles: ['admin'] }, granted: 'admin' })).toThrow(notAList);
    expect(new SecurityContext({ account: { id: 1, roles: ['admin'] }, granted: ['admin'] }).hasRole('admin')).toBe(true);
  });
});
