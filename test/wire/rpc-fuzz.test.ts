/**
 * Arbitrary payloads under every RPC kind (what a peer holding the key could send, after the envelope verified)
 * never make the endpoint throw, every REQUEST is answered exactly once (a malformed one with TW_BAD_PAYLOAD, to its
 * id when it can be read, else with a nil id, and also counted as rejected), and no other kind is answered.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventLoop, VirtualClock } from '../../src/loop/index.js';
import { decode, encode } from '../../src/wire/codec.js';
import { RPC_KIND, RpcEndpoint } from '../../src/wire/rpc.js';
import type { RpcLink } from '../../src/wire/rpc.js';
import type { BadData } from '../../src/errors.js';

// Plain data as the payload check admits it: null, booleans, finite numbers, strings, bytes, arrays, maps.
const plain = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 8 }), fc.constantFrom('add', 'x', '', 'idempotent', 'token'),
    fc.uint8Array({ maxLength: 4 }).map((u) => Buffer.from(u)),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.constantFrom('idempotent', 'token', 'a', 'b'), tie('value'), { maxKeys: 3 }),
  ),
})).value;

// Shapes close to the real ones, so the fuzzer also reaches the deeper checks.
const nearRequest = fc.tuple(
  fc.oneof(fc.nat(), fc.integer(), fc.constant(null), fc.string({ maxLength: 3 })),
  fc.oneof(fc.constantFrom('add', 'missing', ''), plain),
  plain,
  fc.oneof(plain, fc.record({ idempotent: fc.oneof(fc.boolean(), plain), token: fc.oneof(fc.string(), plain) }, { requiredKeys: [] })),
).chain(([a, b, c, d]) => fc.constantFrom([a, b, c], [a, b, c, d], [a, b], [a, b, c, d, null]));

describe('RPC payload fuzzing', () => {
  it('never throws; each request gets exactly one reply; nothing else is answered', async () => {
    const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
    try {
      await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(1, 2, 3, 4, 5), fc.oneof(plain, nearRequest)), { minLength: 1, maxLength: 12 }), async (msgs) => {
        const replies: unknown[][] = [];
        const rejected: BadData[] = [];
        const link: RpcLink = {
          loop,
          send(message, o) { if (o.kind === RPC_KIND.RESPONSE || o.kind === RPC_KIND.ERROR) replies.push(decode(encode(message)) as unknown[]); },
          reject(e) { rejected.push(e); },
        };
        const unmatched: unknown[] = [];
        const ep = new RpcEndpoint(link, { onUnmatchedError: (e) => unmatched.push(e) });
        ep.handle('add', (p: unknown) => (Array.isArray(p) ? p.length : 0));
        ep.onNotify('add', () => {});
        let requests = 0;
        for (const [kind, m] of msgs) {
          // The payload as it would arrive: through the codec.
          const arrived = decode(encode(m));
          const meta = { kind, kid: 'k1', issuedAt: 0, expiresAt: loop.clock.epoch() + 30, nonce: Buffer.alloc(16, requests), peer: null };
          expect(ep.receive(arrived, meta)).toBe(true);
          if (kind === RPC_KIND.REQUEST) requests++;
        }
        await loop.runUntilComplete(loop.createTask(async () => {
          const f = loop.createFuture<void>();
          loop.callLater(0.01, () => f.setResult());
          await f;
        }));
        for (const r of replies) {
          expect(Array.isArray(r)).toBe(true);
          expect(r.length === 2 || r.length === 4).toBe(true);
        }
        expect(replies).toHaveLength(requests);
        // nil-id ERRORs the fuzzer sent reach onUnmatchedError, one each at most
        expect(unmatched.length).toBeLessThanOrEqual(msgs.filter(([k]) => k === RPC_KIND.ERROR).length);
        for (const e of rejected) expect(e.code).toBe('TW_BAD_PAYLOAD');
        ep.close();
        return true;
      }), { numRuns: 300 });
    } finally {
      loop.close();
    }
  });
});
