/**
 * Second-precision validity and short lifetimes. X.509 writes whole seconds; notAfter used to round down, so a 1 s
 * certificate issued at x.7 s lived 0.3 s, and a CertRotator (which renews at 2/3 of the lifetime, counted back from
 * notAfter) found its renewal point already passed and re-issued ~7 times a second until the second boundary
 * (`tulipwire ca renew --watch --lifetime 1`, found in a newcomer's trial). Both ends now round up: a certificate
 * never ends before the time asked for, a window keeps its whole-second length (adopt() reads it back exactly), and
 * the rotator counts from the issue time the CA recorded (`IssuedCertificate.issuedAt`), so its schedule moves
 * forward by 2/3 of the lifetime each time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../src/loop/clock.js';
import { EventLoop } from '../../src/loop/index.js';
import type { ExceptionContext } from '../../src/loop/index.js';
import type { IssuedCertificate } from '../../src/pki/index.js';
import { CertRotator, PrivateCA } from '../../src/pki/index.js';

const T0 = 1_900_000_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(epochStart: number) {
  const clock = new VirtualClock({ autojump: true, epochStart });
  const loop = new EventLoop({ clock });
  const records: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => {
    records.push(ctx);
  });
  const dir = await mkdtemp(join(tmpdir(), 'tulipwire-round-'));
  cleanups.push(() => {
    if (!loop.isClosed() && !loop.isRunning()) loop.close();
    return rm(dir, { recursive: true, force: true });
  });
  const ca = await PrivateCA.init({ dir: join(dir, 'ca'), name: 'round.example', clock });
  return { clock, loop, ca, records };
}

describe('certificate validity at second precision', () => {
  it('a certificate issued mid-second lasts at least the lifetime asked for (both ends round up, the backdate stays)', async () => {
    const { clock, ca } = await setup(T0 + 0.7);
    for (const lifetime of [1, 1.5, 2, 60]) {
      const now = clock.epoch();
      const c = await ca.issueClient({ identity: `l${lifetime}`, lifetime });
      expect(c.cert.notAfter, `lifetime ${lifetime}`).toBe(Math.ceil(now + lifetime));
      expect(c.cert.notAfter - now).toBeGreaterThanOrEqual(lifetime);
      expect(c.cert.notBefore).toBe(Math.ceil(now - 300));
      expect(c.cert.notBefore).toBeLessThanOrEqual(now - 299);
      expect(Number.isInteger(c.cert.notAfter) && Number.isInteger(c.cert.notBefore)).toBe(true);
    }
  });

  it('a 1 s certificate issued at x.7 s is renewed every 2/3 s, not in a burst before the second boundary', async () => {
    const { loop, ca, records } = await setup(T0 + 0.7);
    const initial = await ca.issueClient({ identity: 'short', lifetime: 1 });
    const renewals: { at: number; issued: IssuedCertificate }[] = [];
    await loop.runUntilComplete(async () => {
      await new Promise<void>((resolve) => {
        const r = new CertRotator({
          loop, initial, renew: (c) => ca.renew(c),
          onRenewed: (issued) => {
            renewals.push({ at: loop.clock.epoch(), issued });
            // Bounded either way: 10 virtual seconds, or 60 renewals (the old rounding made ~7 per second, and on
            // a virtual clock those all land at the same instant).
            if (loop.clock.epoch() >= T0 + 10.7 || renewals.length >= 60) {
              r.stop();
              resolve();
            }
          },
        });
        r.start();
      });
    });
    expect(records.map((r) => r.message)).toEqual([]);
    // The rotator counts from the issue time the CA recorded (not from the rounded-up notAfter, which would put
    // every renewal point up to a second late): one renewal per 2/3 s, 15 in these 10 s, each with a third of the
    // lifetime to spare. The old rounding made 60 at the first instant.
    expect(renewals.length).toBeGreaterThanOrEqual(14);
    expect(renewals.length).toBeLessThanOrEqual(16);
    let prev = initial;
    for (const { at, issued } of renewals) {
      // Each renewal happens before the certificate it replaces expires, with a third of the lifetime to spare...
      expect(prev.cert.notAfter - at).toBeGreaterThanOrEqual(1 / 3 - 1e-6);
      // ...and the new one reaches at least as far (two renewals 2/3 s apart can round up to the same second).
      expect(issued.cert.notAfter).toBeGreaterThanOrEqual(prev.cert.notAfter);
      expect(issued.cert.notAfter - at).toBeGreaterThanOrEqual(1);
      prev = issued;
    }
    const gaps = renewals.slice(1).map((r, i) => r.at - renewals[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThan(0.6);
  });

  it('a leaf that would end after the intermediate is refused by the rounded-up second it would carry', async () => {
    const { clock, ca } = await setup(T0 + 0.25);
    const inter = ca.intermediate.notAfter;
    const now = clock.epoch();
    // Ends 0.25 s before the intermediate's notAfter; written as that notAfter exactly: allowed.
    const fits = await ca.issueClient({ identity: 'fits', lifetime: inter - now - 0.25 });
    expect(fits.cert.notAfter).toBe(inter);
    // Ends 0.5 s after it: written as the next second, past the intermediate: refused.
    await expect(ca.issueClient({ identity: 'over', lifetime: inter - now + 0.5 })).rejects.toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/outlive the issuing intermediate/) });
  });
});

describe('adopting from disk reads back the lifetime asked for', () => {
  it('a window set by hand keeps its whole-second length from a fractional start', async () => {
    const { clock, ca } = await setup(T0 + 0.4);
    const now = clock.epoch();
    const c = await ca.issueClient({ identity: 'hand', notBefore: now - 7200, notAfter: now - 3600 });
    expect(c.cert.notAfter - c.cert.notBefore).toBe(3600);
    expect(c.cert.notAfter).toBe(Math.ceil(now - 3600));
  });

  it('a whole-second lifetime survives issue → adopt → renew → adopt unchanged, from any fraction of a second', async () => {
    for (const frac of [0, 0.01, 0.5, 0.99]) {
      const { ca } = await setup(T0 + frac);
      let c = await ca.issueClient({ identity: `a${Math.round(frac * 100)}`, lifetime: 86_400 });
      for (let i = 0; i < 3; i++) {
        const adopted = ca.adopt({ key: c.key.pem, cert: c.chain.pem, ca: c.ca.pem });
        expect(adopted.lifetime, `fraction ${frac}, round ${i}`).toBe(86_400);
        c = await ca.renew(adopted);
      }
    }
  });
});
