/**
 * A forged timed token (bad signature) whose timestamp lies past what a date can hold: itsdangerous turns the
 * timestamp into a `datetime` for the error's `date_signed`, and when it cannot (year 10000 or later, i.e. from
 * epoch second 253402300800, up to the 8 bytes `bytes_to_int` reads) it raises `BadTimeSignature("Malformed
 * timestamp")` instead of the signature error. tulipwire raised the signature error there (and for a timestamp
 * past 2^53 gave no `dateSigned`), so the two refused the same forgery with different messages.
 * Differential against Debian's python3-itsdangerous, via test/support/itsdangerous-py.ts.
 */
import { describe, expect, it } from 'vitest';
import { intToBytes } from '../../src/tokens/index.js';
import { itsdangerousBatch } from '../support/itsdangerous-py.js';
import type { PySpec } from '../support/itsdangerous-py.js';
import { buildLocal, loadLocal } from '../support/itsdangerous-local.js';

const NOW = 1_764_580_000;
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const tsText = (n: bigint) => {
  const full = Buffer.alloc(8);
  full.writeBigUInt64BE(n);
  let i = 0;
  while (i < 7 && full[i] === 0) i++;
  return b64(full.subarray(i));
};

const TIMESTAMPS: Record<string, string> = {
  'last second of year 9999': b64(intToBytes(253402300799)),
  'first second of year 10000': b64(intToBytes(253402300800)),
  '2^40': b64(intToBytes(2 ** 40)),
  '2^53 - 1': b64(intToBytes(Number.MAX_SAFE_INTEGER)),
  '2^53': tsText(2n ** 53n),
  '2^64 - 1': tsText(2n ** 64n - 1n),
  'nine bytes': b64(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0])),
};

describe('a forged timed token with a timestamp beyond year 9999: the same refusal as itsdangerous', () => {
  for (const cls of ['TimestampSigner', 'URLSafeTimedSerializer', 'TimedSerializer'] as const) {
    it(`${cls}`, async () => {
      const spec: PySpec = { cls, keys: ['forged-ts-key'] };
      const local = buildLocal(spec, NOW);
      const good = 'sign' in local ? local.sign('value') : local.dumps({ v: 1 });
      const parts = good.split('.');
      const sig = parts.pop()!;
      parts.pop();
      const forged = Object.fromEntries(Object.entries(TIMESTAMPS).map(([k, ts]) => [k, [...parts, ts, sig].join('.')]));
      const names = Object.keys(forged);
      const py = await itsdangerousBatch(names.map((k) => ({ op: 'load' as const, spec, token: forged[k]!, now: NOW, maxAge: 60 })));
      const diffs: string[] = [];
      names.forEach((k, i) => {
        const ours = loadLocal(spec, forged[k]!, NOW, 60);
        const theirs = py[i]!;
        const same = ours.err === theirs.err && ours.msg === theirs.msg && (ours.dateSigned ?? null) === (theirs.dateSigned ?? null);
        if (!same) diffs.push(`${k}: ours ${JSON.stringify(ours)} python ${JSON.stringify(theirs)}`);
      });
      expect(diffs).toEqual([]);
      expect(py.map((r) => r.err)).toEqual(names.map(() => 'BadTimeSignature'));
      expect(py.filter((r) => r.msg === 'Malformed timestamp').length).toBe(5);
    });
  }
});
