/**
 * Tokens' SecurityContext and authorize() table plugged into the wire's RpcEndpoint, end to end over an in-memory
 * link that runs every message through the real codec: a call without the role, with the role outside the token's
 * scope, with an expired token, an unknown token or a bumped generation gets the typed error reply, and the
 * handler never runs.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/loop/index.js';
import { VirtualClock } from '../../src/loop/clock.js';
import { decode, encode } from '../../src/wire/codec.js';
import { RpcEndpoint } from '../../src/wire/rpc.js';
import type { RpcEndpointOptions, RpcLink, RpcMessageMeta } from '../../src/wire/rpc.js';
import { TulipError } from '../../src/errors.js';
import { SecurityContext, TokenService, authorize } from '../../src/tokens/index.js';

function memoryPair(loop: EventLoop, a: RpcEndpointOptions, b: RpcEndpointOptions) {
  let open = true;
  let left!: RpcEndpoint;
  let right!: RpcEndpoint;
  const mk = (side: 'a' | 'b', peer: unknown): RpcLink => ({
    loop,
    send(message, o) {
      if (!open) throw new TulipError('closed');
      const bytes = Buffer.from(encode(message));
      const issuedAt = loop.clock.epoch();
      const meta: RpcMessageMeta = {
        kind: o.kind, kid: 'k1', issuedAt, expiresAt: issuedAt + (o.ttl ?? 30), nonce: o.nonce ?? randomBytes(16), peer,
      };
      loop.callSoon(() => {
        if (open) (side === 'a' ? right : left).receive(decode(bytes), meta);
      });
    },
    reject() {},
  });
  left = new RpcEndpoint(mk('a', { commonName: 'client' }), a);
  right = new RpcEndpoint(mk('b', { commonName: 'server' }), b);
  return { client: left, server: right, close() { open = false; left.close(); right.close(); } };
}

let loop: EventLoop | undefined;
afterEach(() => {
  if (loop !== undefined && !loop.isClosed()) loop.close();
});

function run<T>(fn: () => Promise<T>): Promise<T> {
  const l = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
  loop = l;
  return l.runUntilComplete(l.createTask(fn));
}

describe('SecurityContext + authorize() over RpcEndpoint', () => {
  it('refuses every protected method with its typed error reply, and runs it with the right token', async () => {
    const tokenClock = new VirtualClock({ epochStart: 1_764_580_000 });
    const service = new TokenService({ secretKeys: 'rpc-test-key', clock: tokenClock, accessTtl: 60 });
    const ran: string[] = [];
    const api = authorize({
      'notes.list': { roles: 'user', handler: () => { ran.push('notes.list'); return ['n1']; } },
      'user.delete': { roles: 'admin', handler: (p: { id: string }) => { ran.push('user.delete'); return `deleted ${p.id}`; } },
    });
    let token: string | null = null;
    await run(async () => {
      const { client, server, close } = memoryPair(loop!, { token: () => token }, {
        securityContext: ({ token: t }) => (t === null ? SecurityContext.anonymous : SecurityContext.fromAccessToken(service, t)),
      });
      for (const [method, handler] of Object.entries(api.handlers)) server.handle(method, handler);
      try {
        const admin = await service.issue({ id: 'alice', roles: ['user', 'admin'] });
        token = admin.accessToken;
        expect(await client.call('notes.list')).toEqual(['n1']);
        expect(await client.call('user.delete', { id: 'bob' })).toBe('deleted bob');
        ran.length = 0;

        for (const method of ['notes.list', 'user.delete']) {
          // No token at all.
          token = null;
          await expect(client.call(method, { id: 'x' })).rejects.toMatchObject({ code: 'TW_FORBIDDEN', remote: true });
          // An account without the role.
          token = (await service.issue({ id: 'carol', roles: [] })).accessToken;
          await expect(client.call(method, { id: 'x' })).rejects.toMatchObject({ code: 'TW_FORBIDDEN', remote: true });
          // The role outside the token's scope.
          const needed = api.roles[method]![0]!;
          token = (await service.issue({ id: 'alice', roles: ['user', 'admin'] }, { scope: ['user', 'admin'].filter((r) => r !== needed) })).accessToken;
          await expect(client.call(method, { id: 'x' })).rejects.toMatchObject({ code: 'TW_FORBIDDEN', role: needed });
          // An unknown token.
          token = randomBytes(32).toString('base64url');
          await expect(client.call(method, { id: 'x' })).rejects.toMatchObject({ code: 'TW_UNKNOWN_TOKEN' });
          // An expired token.
          token = (await service.issue({ id: 'alice', roles: ['user', 'admin'] })).accessToken;
          tokenClock.advance(61);
          await expect(client.call(method, { id: 'x' })).rejects.toMatchObject({ code: 'TW_TOKEN_EXPIRED' });
          // A token of a bumped generation.
          token = (await service.issue({ id: 'alice', roles: ['user', 'admin'] })).accessToken;
          await service.bumpGeneration('alice');
          await expect(client.call(method, { id: 'x' })).rejects.toMatchObject({ code: 'TW_TOKEN_REVOKED' });
        }
        expect(ran).toEqual([]);
      } finally {
        close();
      }
    });
  });
});
