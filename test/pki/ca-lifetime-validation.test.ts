/**
 * `PrivateCA.init({rootLifetime, intermediateLifetime})` and `rotateIntermediate({lifetime})` took any number. A
 * lifetime of 0 or less made an intermediate (or root) that was expired when written, and NaN one whose notAfter
 * is not a time at all ("Bad time value"); rotateIntermediate moved it in over the working intermediate, after
 * which every issue failed with "the leaf would outlive the issuing intermediate … rotate the intermediate". Such
 * a lifetime is now refused with a CAError before anything is generated or written (issuing already refused a
 * non-positive leaf lifetime); Infinity still means "as long as the root" for the intermediate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateCA } from '../../src/pki/index.js';

let root: string;
let n = 0;
const fresh = () => join(root, `ca-${n++}`);
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-ca-lifetime-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const BAD = [0, -3600, Number.NaN];

describe('CA lifetimes must be positive', () => {
  it.each(BAD)('rotateIntermediate({lifetime: %s}) is refused and the intermediate stays', async (lifetime) => {
    const dir = fresh();
    const ca = await PrivateCA.init({ dir, name: 'life.example' });
    const before = readFileSync(join(dir, 'intermediate.pem'), 'utf8');
    await expect(ca.rotateIntermediate({ lifetime })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/lifetime/) });
    expect(readFileSync(join(dir, 'intermediate.pem'), 'utf8')).toBe(before);
    const reloaded = await PrivateCA.load({ dir });
    expect((await reloaded.issueClient({ identity: 'still-works' })).identity).toBe('tulip://life.example/client/still-works');
  });

  it.each(BAD)('init with rootLifetime %s is refused and leaves no CA', async (rootLifetime) => {
    const dir = fresh();
    await expect(PrivateCA.init({ dir, name: 'life.example', rootLifetime })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/rootLifetime/) });
    expect(existsSync(join(dir, 'ca.json'))).toBe(false);
  });

  it.each([...BAD, Number.POSITIVE_INFINITY])('init with intermediateLifetime %s is refused unless Infinity (as long as the root)', async (intermediateLifetime) => {
    const dir = fresh();
    const made = PrivateCA.init({ dir, name: 'life.example', intermediateLifetime });
    if (intermediateLifetime === Number.POSITIVE_INFINITY) {
      const ca = await made;
      expect(ca.intermediate.notAfter).toBe(ca.root.notAfter);
      return;
    }
    await expect(made).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/intermediateLifetime/) });
    expect(existsSync(join(dir, 'ca.json'))).toBe(false);
  });
});
