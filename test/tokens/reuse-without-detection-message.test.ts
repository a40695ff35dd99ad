/**
 * With `reuseDetection: false` a refresh token that comes back a second time is refused, and nothing else happens
 * (the account's generation stays). The refusal still said "refresh token already used: every token of the account
 * is revoked", so a log told an operator that an account was logged out everywhere when it was not. The message
 * now says what happened in each mode.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { TokenService } from '../../src/tokens/index.js';

const KEY = 'reuse-message-key-0123456789abcdef';

describe('a used refresh token coming back', () => {
  it('without reuse detection: refused as used, and the message does not claim a revocation', async () => {
    const service = new TokenService({ secretKeys: KEY, clock: new VirtualClock({ epochStart: 1_764_580_000 }), reuseDetection: false });
    const pair = await service.issue({ id: 'zoe', roles: ['user'] });
    const other = await service.issue({ id: 'zoe', roles: ['user'] });
    await service.refresh(pair.refreshToken);
    const err = await service.refresh(pair.refreshToken).catch((e: unknown) => e as Error & { code: string });
    expect(err).toMatchObject({ code: 'TW_TOKEN_REVOKED', message: expect.stringMatching(/already used/) });
    expect((err as Error).message).not.toMatch(/every token/);
    expect((await service.verifyAccess(other.accessToken)).accountId).toBe('zoe');
    await service.close();
  });

  it('with reuse detection (the default): the message says every token of the account is revoked, and it is', async () => {
    const service = new TokenService({ secretKeys: KEY, clock: new VirtualClock({ epochStart: 1_764_580_000 }) });
    const pair = await service.issue({ id: 'yan', roles: ['user'] });
    const other = await service.issue({ id: 'yan', roles: ['user'] });
    await service.refresh(pair.refreshToken);
    await expect(service.refresh(pair.refreshToken)).rejects.toMatchObject({ code: 'TW_TOKEN_REVOKED', message: expect.stringMatching(/every token of the account is revoked/) });
    await expect(service.verifyAccess(other.accessToken)).rejects.toMatchObject({ code: 'TW_TOKEN_REVOKED' });
    await service.close();
  });
});
