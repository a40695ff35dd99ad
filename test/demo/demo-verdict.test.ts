/**
 * The demo's verdict (`demoSucceeded`, which decides its exit code and its closing line "every attack was refused
 * with its typed error"): an attack refused with another code than its own, or an honest message the server
 * rejected, is a failure. It used to count any code as a refusal, so a foreign-CA client the server accepted but that
 * merely timed out (TW_TIMEOUT), or a tampered message refused as a replay, still ended "every attack was refused"
 * with exit 0.
 */
import { describe, expect, it } from 'vitest';
import { demoSucceeded } from '../../src/demo/main.js';
import type { DemoSummary } from '../../src/demo/main.js';

const opts = { clients: 2, calls: 3 };

function summary(over: Partial<DemoSummary> = {}): DemoSummary {
  return {
    connections: 4,
    refusedConnections: { TW_UNKNOWN_ISSUER: 1 },
    messagesSent: 20,
    verified: 16,
    rejected: { TW_BAD_SIGNATURE: 1, TW_SIGNATURE_EXPIRED: 1, TW_REPLAYED_MESSAGE: 2 },
    rpcOk: 2 * 4,
    notificationsReceived: 2,
    throughput: 1,
    attacks: [
      { name: 'tampered message', code: 'TW_BAD_SIGNATURE', expected: 'TW_BAD_SIGNATURE' },
      { name: 'expired message', code: 'TW_SIGNATURE_EXPIRED', expected: 'TW_SIGNATURE_EXPIRED' },
      { name: 'replayed nonce', code: 'TW_REPLAYED_MESSAGE', expected: 'TW_REPLAYED_MESSAGE' },
      { name: 'replayed frame', code: 'TW_REPLAYED_MESSAGE', expected: 'TW_REPLAYED_MESSAGE' },
      { name: 'client certificate from another CA', code: 'TW_UNKNOWN_ISSUER', expected: 'TW_UNKNOWN_ISSUER' },
    ],
    ...over,
  };
}

describe('demoSucceeded', () => {
  it('passes when every attack got its own code and nothing else was rejected', () => {
    expect(demoSucceeded(summary(), opts)).toBe(true);
  });

  it('fails when an attack was refused with another code than its own', () => {
    const s = summary();
    s.attacks[4] = { ...s.attacks[4]!, code: 'TW_TIMEOUT' };
    expect(demoSucceeded(s, opts)).toBe(false);
    const t = summary();
    t.attacks[0] = { ...t.attacks[0]!, code: 'TW_REPLAYED_MESSAGE' };
    expect(demoSucceeded(t, opts)).toBe(false);
  });

  it('fails when the server rejected more messages than the attacks sent', () => {
    expect(demoSucceeded(summary({ rejected: { TW_BAD_SIGNATURE: 2, TW_SIGNATURE_EXPIRED: 1, TW_REPLAYED_MESSAGE: 2 } }), opts)).toBe(false);
    expect(demoSucceeded(summary({ rejected: { TW_BAD_SIGNATURE: 1, TW_SIGNATURE_EXPIRED: 1, TW_REPLAYED_MESSAGE: 2, TW_BAD_PAYLOAD: 1 } }), opts)).toBe(false);
  });

  it('fails when an attack was not refused at all', () => {
    const s = summary();
    s.attacks[1] = { ...s.attacks[1]!, code: null };
    expect(demoSucceeded(s, opts)).toBe(false);
  });
});
