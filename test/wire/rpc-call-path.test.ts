/**
 * The per-call path of RpcEndpoint: method names are limited in UTF-8 bytes (also when the quick check by string
 * length cannot decide), and what `call` hands to its link (payload and send options) for plain, idempotent, retried
 * and token-carrying calls. No loop needs to run: `call` sends synchronously.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/loop/index.js';
import { VirtualClock } from '../../src/loop/clock.js';
import { IdempotencyKey } from '../../src/wire/idempotency.js';
import { MAX_METHOD_LENGTH, RPC_KIND, RpcEndpoint } from '../../src/wire/rpc.js';
import type { RpcEndpointOptions, RpcLink, RpcMessageMeta } from '../../src/wire/rpc.js';
import type { BadData } from '../../src/errors.js';

interface Sent { message: unknown; options: Record<string, unknown> }

let loop: EventLoop;
let endpoint: RpcEndpoint | null = null;
afterEach(() => {
  endpoint?.close();
  endpoint = null;
  if (loop !== undefined && !loop.isClosed()) loop.close();
});

function setup(options: RpcEndpointOptions = {}): { ep: RpcEndpoint; sent: Sent[]; rejected: BadData[] } {
  loop = new EventLoop({ clock: new VirtualClock() });
  const sent: Sent[] = [];
  const rejected: BadData[] = [];
  const link: RpcLink = {
    loop,
    send(message, o) {
      sent.push({ message, options: { ...o } });
      return loop.clock.epoch() + 30;
    },
    reject(error) { rejected.push(error); },
  };
  endpoint = new RpcEndpoint(link, options);
  return { ep: endpoint, sent, rejected };
}

const meta = (): RpcMessageMeta => ({ kind: RPC_KIND.REQUEST, kid: 'k1', issuedAt: 0, expiresAt: 30, nonce: new Uint8Array(16), peer: null });

describe('method names on the call path', () => {
  it('accepts names up to MAX_METHOD_LENGTH bytes of UTF-8 and refuses longer ones, ASCII or not', () => {
    const { ep, sent } = setup();
    const threeByte = '\u20ac'; // 3 bytes of UTF-8
    expect(Buffer.byteLength(threeByte.repeat(85))).toBe(255);
    expect(Buffer.byteLength(threeByte.repeat(86))).toBe(258);
    for (const ok of ['a'.repeat(MAX_METHOD_LENGTH), threeByte.repeat(85), `${'a'.repeat(253)}${threeByte}`]) {
      void ep.call(ok, null, { timeout: null });
    }
    expect(sent).toHaveLength(3);
    for (const bad of ['a'.repeat(MAX_METHOD_LENGTH + 1), threeByte.repeat(86), `${'a'.repeat(254)}${threeByte}`, '']) {
      expect(() => ep.call(bad, null, { timeout: null })).toThrow(TypeError);
    }
    expect(sent).toHaveLength(3);
  });

  it('refuses an inbound request whose method is too long in bytes (though short in characters) with BadPayload', () => {
    const { ep, sent, rejected } = setup();
    ep.handle('echo', (p) => p);
    ep.receive([7, '\u20ac'.repeat(86), null], meta());
    expect(rejected.map((e) => e.code)).toEqual(['TW_BAD_PAYLOAD']);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.options).toEqual({ kind: RPC_KIND.ERROR });
    expect((sent[0]!.message as unknown[]).slice(0, 2)).toEqual([7, 'TW_BAD_PAYLOAD']);
  });
});

describe('what call hands to the link', () => {
  it('a plain call: [id, method, params] and only the kind, whatever `idempotent: false` says', () => {
    const { ep, sent } = setup();
    void ep.call('m', { a: 1 }, { timeout: null });
    void ep.call('m', undefined, { timeout: null, idempotent: false });
    expect(sent).toEqual([
      { message: [1, 'm', { a: 1 }], options: { kind: RPC_KIND.REQUEST } },
      { message: [2, 'm', null], options: { kind: RPC_KIND.REQUEST } },
    ]);
  });

  it('a ttl is passed on; an idempotent first attempt sends its nonce and the idempotent option', () => {
    const { ep, sent } = setup();
    void ep.call('m', 1, { timeout: null, ttl: 5 });
    const key = new IdempotencyKey();
    void ep.call('m', 2, { timeout: null, idempotent: key });
    expect(sent[0]).toEqual({ message: [1, 'm', 1], options: { kind: RPC_KIND.REQUEST, ttl: 5 } });
    expect(sent[1]!.message).toEqual([2, 'm', 2, { idempotent: true }]);
    expect(Object.keys(sent[1]!.options).sort()).toEqual(['kind', 'nonce', 'ttl']);
    expect(Buffer.from(sent[1]!.options['nonce'] as Uint8Array)).toEqual(Buffer.from(key.nonce));
  });

  it('a retry of an IdempotencyKey sends the same nonce, capped at the first attempt’s expiry', () => {
    const { ep, sent } = setup();
    const key = new IdempotencyKey();
    void ep.call('m', 1, { timeout: null, idempotent: key });
    void ep.call('m', 1, { timeout: null, idempotent: key });
    expect(Object.keys(sent[1]!.options).sort()).toEqual(['kind', 'nonce', 'notAfter', 'ttl']);
    expect(sent[1]!.options['notAfter']).toBe(key.expiresAt);
    expect(Buffer.from(sent[1]!.options['nonce'] as Uint8Array)).toEqual(Buffer.from(key.nonce));
  });

  it('a token goes in the options map, after idempotent', () => {
    const { ep, sent } = setup({ token: () => 'tok' });
    void ep.call('m', 1, { timeout: null });
    void ep.call('m', 2, { timeout: null, idempotent: true });
    expect(sent[0]!.message).toEqual([1, 'm', 1, { token: 'tok' }]);
    expect(Object.keys((sent[1]!.message as unknown[])[3] as object)).toEqual(['idempotent', 'token']);
  });
});
