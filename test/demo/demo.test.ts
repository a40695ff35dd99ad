/**
 * The main job (`npm run demo`) run in-process with small numbers: every attack is refused with its own code, every
 * honest call is answered, the server keeps serving, and the temp directory is gone afterwards.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { run } from '../../src/index.js';
import { demoSucceeded, formatSummary, runDemo } from '../../src/demo/main.js';

describe('npm run demo', () => {
  it('refuses each attack with its typed error and answers every honest call', async () => {
    const lines: string[] = [];
    const opts = { clients: 3, calls: 20, burst: 5000, progress: false, print: (l: string) => lines.push(l) };
    const summary = await run(() => runDemo(opts));
    expect(summary.attacks.map((a) => [a.name.split(' (')[0], a.code])).toEqual([
      ['tampered message', 'TW_BAD_SIGNATURE'],
      ['expired message', 'TW_SIGNATURE_EXPIRED'],
      ['replayed nonce', 'TW_REPLAYED_MESSAGE'],
      ['replayed frame', 'TW_REPLAYED_MESSAGE'],
      ['client certificate from another CA', 'TW_UNKNOWN_ISSUER'],
    ]);
    expect(summary.rejected).toEqual({ TW_BAD_SIGNATURE: 1, TW_SIGNATURE_EXPIRED: 1, TW_REPLAYED_MESSAGE: 2 });
    expect(summary.refusedConnections.TW_UNKNOWN_ISSUER).toBe(1);
    expect(summary.rpcOk).toBe(3 * 21);
    expect(summary.notificationsReceived).toBe(3);
    expect(summary.verified).toBeGreaterThanOrEqual(5000 + 3 * 21);
    expect(demoSucceeded(summary, opts)).toBe(true);
    expect(formatSummary(summary)).toContain('rejected: TW_BAD_SIGNATURE');
    const dirLine = lines.find((l) => l.includes('private CA'))!;
    const dir = /in (\S+):/.exec(dirLine)![1]!;
    expect(existsSync(dir)).toBe(false);
  });
});
