/**
 * `ca renew --fraction`: the help shows its default as `2/3`, yet `--fraction 2/3` (or `3/4`) was refused with
 * "--fraction must be between 0 and 1", which it is: `Number('3/4')` is NaN. A fraction is now read as a decimal
 * (`0.75`) or as `a/b`; anything else is a usage error (exit 2) that names the value given.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tulipwire-fraction-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The fraction is checked before the CA is loaded: an accepted one goes on to fail on the missing CA (exit 1).
const renew = (fraction: string) => runCli(['ca', 'renew', '--dir', 'no-ca', '--out', 'no-out', '--watch', '--fraction', fraction], work);

describe('renew --fraction', () => {
  it.each(['2/3', '3/4', '1/2', '0.75', '.5'])('%s is accepted', (fraction) => {
    const r = renew(fraction);
    expect(r.stderr).toMatch(/TW_CA_NOT_FOUND/);
    expect(r.code).toBe(1);
  });

  it.each(['1', '0', '3/2', '1/0', '0/3', 'abc', '2/3/4', '-0.5', ''])('%s is a usage error naming the value', (fraction) => {
    const r = renew(fraction);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`--fraction ${JSON.stringify(fraction)}`);
  });
});
