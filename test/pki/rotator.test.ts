/**
 * Rotation: CertRotator on the tulipwire EventLoop (virtual clock for the schedule, real sockets for the swap),
 * server reload with setSecureContext while a connection is open, client renewal, and the directory watcher.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { VirtualClock } from '../../src/loop/clock.js';
import { EventLoop } from '../../src/loop/index.js';
import type { ExceptionContext } from '../../src/loop/index.js';
import type { IssuedCertificate, TlsMaterial } from '../../src/pki/index.js';
import {
  CertRotator, PrivateCA, clientTlsOptions, reloadServer, serverTlsOptions, toTlsMaterial, watchCertDir, writeCertDir,
} from '../../src/pki/index.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';
import type { EchoServer } from './helpers.js';
import { connectAndPing, echo, startEchoServer } from './helpers.js';

const T0 = 1_900_000_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function virtualCA(clock: VirtualClock): Promise<PrivateCA> {
  const dir = await mkdtemp(join(tmpdir(), 'tulipwire-rot-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return PrivateCA.init({ dir: join(dir, 'ca'), name: 'rot.example', clock });
}

/** A loop on a virtual clock whose epoch starts at T0 (whole seconds), so CA and loop agree exactly on "now". */
function virtualLoop() {
  const clock = new VirtualClock({ autojump: true, epochStart: T0 });
  const loop = new EventLoop({ clock });
  let records: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => {
    records.push(ctx);
  });
  cleanups.push(() => {
    if (!loop.isClosed() && !loop.isRunning()) loop.close();
    expect(records.map((r) => r.message), 'unexpected exception-handler records').toEqual([]);
  });
  return {
    loop,
    clock,
    run<R>(fn: () => Promise<R>): Promise<R> {
      return loop.runUntilComplete(fn);
    },
    take(): ExceptionContext[] {
      const r = records;
      records = [];
      return r;
    },
  };
}

describe('CertRotator schedule (virtual clock)', () => {

  it('renews at 2/3 of the lifetime, then again 2/3 into the new one', async () => {
    const fx = virtualLoop();
    const ca = await virtualCA(fx.clock);
    const initial = await ca.issueClient({ identity: 'svc', lifetime: 3600 });
    const seen: [number, string][] = [];
    const started = performance.now();
    await fx.run(async () => {
      await new Promise<void>((resolve) => {
        const r = new CertRotator({
          loop: fx.loop, initial, renew: (c) => ca.renew(c),
          onRenewed: (issued) => {
            seen.push([fx.loop.time(), issued.cert.serial]);
            if (seen.length === 2) {
              r.stop();
              resolve();
            }
          },
        });
        expect(r.renewAt).toBe(T0 + 2400);
        r.start();
        expect(r.state).toBe('waiting');
        expect(r.nextRenewalAt).toBe(T0 + 2400);
      });
    });
    expect(seen.map(([t]) => Math.round(t))).toEqual([2400, 4800]);
    expect(new Set([initial.cert.serial, ...seen.map(([, s]) => s)]).size).toBe(3);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('retries with doubling backoff, reports each failure loudly, URGENT past 5/6 and EXPIRED after notAfter', async () => {
    const fx = virtualLoop();
    const ca = await virtualCA(fx.clock);
    const initial = await ca.issueClient({ identity: 'flaky', lifetime: 60 });
    let calls = 0;
    const attempts: number[] = [];
    let renewed: IssuedCertificate | null = null;
    await fx.run(async () => {
      await new Promise<void>((resolve) => {
        const r = new CertRotator({
          loop: fx.loop, initial, retryMin: 5, retryMax: 20,
          renew: async (c) => {
            attempts.push(Math.round(fx.loop.time()));
            if (++calls <= 4) throw new Error(`CA unreachable #${calls}`);
            return ca.renew(c);
          },
          onRenewed: (issued) => {
            renewed = issued;
            r.stop();
            resolve();
          },
        });
        r.start();
      });
    });
    // 2/3 of 60 s = 40; then +5, +10, +20 (capped), +20.
    expect(attempts).toEqual([40, 45, 55, 75, 95]);
    const records = fx.take();
    expect(records).toHaveLength(4);
    expect(records[0]!.message).toMatch(/^renewing certificate tulip:\/\/rot\.example\/client\/flaky \(serial [0-9a-f]+\) failed \(attempt 1\); it expires in 20\.0 s; retrying in 5\.0 s$/);
    expect(records[0]!.exception).toMatchObject({ code: 'TW_CA' });
    expect(((records[0]!.exception as Error).cause as Error).message).toBe('CA unreachable #1');
    expect(records[1]!.message).toMatch(/^renewing .*attempt 2\); it expires in 15\.0 s; retrying in 10\.0 s$/);
    expect(records[2]!.message).toMatch(/^URGENT: renewing .*attempt 3\); it expires in 5\.0 s; retrying in 20\.0 s$/);
    expect(records[3]!.message).toMatch(/^URGENT: renewing .*attempt 4\); it EXPIRED 15\.0 s ago: peers now refuse it; retrying in 20\.0 s$/);
    expect(renewed).not.toBeNull();
  });

  it('a throwing subscriber is reported and does not stop the others; stop() cancels the schedule', async () => {
    const fx = virtualLoop();
    const ca = await virtualCA(fx.clock);
    const initial = await ca.issueClient({ identity: 'subs', lifetime: 30 });
    const got: string[] = [];
    const r = new CertRotator({ loop: fx.loop, initial, renew: (c) => ca.renew(c) });
    r.subscribe(() => {
      throw new Error('listener broke');
    });
    await fx.run(async () => {
      await new Promise<void>((resolve) => {
        r.subscribe((issued) => {
          got.push(issued.cert.serial);
          r.stop();
          resolve();
        });
        r.start();
      });
    });
    expect(got).toHaveLength(1);
    expect(r.current.cert.serial).toBe(got[0]);
    expect(r.state).toBe('stopped');
    expect(r.nextRenewalAt).toBeNull();
    const records = fx.take();
    expect(records.map((c) => c.message)).toEqual(['a CertRotator subscriber threw while handling a new certificate']);
    expect(() => r.start()).toThrow(expect.objectContaining({ code: 'TW_CA' }));
  });

  it('renewNow: concurrent calls share one attempt; on a rotator never started a failure only rejects', async () => {
    const fx = virtualLoop();
    const ca = await virtualCA(fx.clock);
    const initial = await ca.issueClient({ identity: 'manual', lifetime: 600 });
    let calls = 0;
    let fail = false;
    const r = new CertRotator({
      loop: fx.loop, initial,
      renew: async (c) => {
        calls++;
        if (fail) throw new Error('down');
        return ca.renew(c);
      },
    });
    await fx.run(async () => {
      const [a, b] = await Promise.all([r.renewNow(), r.renewNow()]);
      expect(a).toBe(b);
      expect(calls).toBe(1);
      expect(r.current).toBe(a);
      expect(r.state).toBe('idle'); // not started: nothing scheduled
      expect(r.nextRenewalAt).toBeNull();
      fail = true;
      await expect(r.renewNow()).rejects.toThrow('down');
      expect(r.state).toBe('idle');
      expect(r.failures).toBe(0);
    });
    expect(fx.take()).toEqual([]);
  });

  it('a renewal that finishes after its loop closed ends the attempt as stopped (no stray rejection)', async () => {
    const fx = virtualLoop();
    const ca = await virtualCA(fx.clock);
    const initial = await ca.issueClient({ identity: 'closing', lifetime: 600 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const r = new CertRotator({ loop: fx.loop, initial, renew: async (c) => { await gate; return ca.renew(c); } });
    let attempt!: Promise<IssuedCertificate>;
    await fx.run(async () => {
      attempt = r.renewNow();
    });
    fx.loop.close(); // as `renew --watch` does on SIGTERM
    release();
    await expect(attempt).rejects.toMatchObject({ code: 'TW_CA', message: 'the rotator was stopped' });
    expect(r.state).toBe('stopped');
    expect(r.current).toBe(initial);
  });

  it('rejects fractions outside (0, 1)', () => {
    const fx = virtualLoop();
    const fake = { cert: { notAfter: T0 }, lifetime: 1 } as unknown as IssuedCertificate;
    expect(() => new CertRotator({ loop: fx.loop, initial: fake, renew: async (c) => c, renewAtFraction: 1.5 })).toThrow(expect.objectContaining({ code: 'TW_CA' }));
  });
});

describe('rotation over real sockets', () => {
  const fx = useLoop({ real: true });
  let t: TestCA;
  const servers: EchoServer[] = [];
  const sockets: TLSSocket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const s of servers.splice(0)) await s.close();
    await t?.cleanup();
  });

  it('server swap: the open connection survives on the old certificate, a new one sees the new serial', async () => {
    t = await makeTestCA();
    const srv = await startEchoServer(t.serverOptions);
    servers.push(srv);
    const first = await connectAndPing(srv.port, t.clientOptions, true);
    sockets.push(first.socket);
    expect(first.echoed).toBe(true);
    const oldSerial = first.peer!.serial;
    expect(oldSerial).toBe(t.server.cert.serial);

    const rotator = new CertRotator({ loop: fx.loop, initial: t.server, renew: (c) => t.ca.renew(c) });
    rotator.attachServer(srv.server, { pin: t.ca.rootPin });
    const renewed = await fx.run(() => rotator.renewNow());
    expect(renewed.cert.serial).not.toBe(oldSerial);

    // The open connection keeps working (and keeps the certificate it was authenticated with).
    expect(await echo(first.socket, 'still here')).toBe('still here');
    expect(first.socket.getPeerCertificate().serialNumber.toLowerCase()).toContain(oldSerial);
    // A new connection sees the new certificate, and our pinned client is still accepted (ca survived the swap).
    const second = await connectAndPing(srv.port, t.clientOptions);
    expect(second.echoed).toBe(true);
    expect(second.peer!.serial).toBe(renewed.cert.serial);
    expect(rotator.renewals).toBe(1);
  });

  it('client renewal: the next connection presents the new client certificate', async () => {
    t = await makeTestCA();
    const srv = await startEchoServer(t.serverOptions);
    servers.push(srv);
    const rotator = new CertRotator({ loop: fx.loop, initial: t.client, renew: (c) => t.ca.renew(c) });
    const open = await connectAndPing(srv.port, clientTlsOptions(rotator.current, { servername: 'localhost' }), true);
    sockets.push(open.socket);
    await fx.run(() => rotator.renewNow());
    const next = await connectAndPing(srv.port, clientTlsOptions(rotator.current, { servername: 'localhost' }));
    expect(next.echoed).toBe(true);
    expect(srv.accepted.map((p) => p!.serial)).toEqual([t.client.cert.serial, rotator.current.cert.serial]);
    expect(await echo(open.socket, 'old client still connected')).toBe('old client still connected');
  });

  it('reloadServer refuses a key that does not match its certificate and keeps the old context', async () => {
    t = await makeTestCA();
    const srv = await startEchoServer(t.serverOptions);
    servers.push(srv);
    const other = await t.issueServer();
    const broken: TlsMaterial = { key: other.issued.key.pem, cert: t.server.chain.pem, ca: t.server.ca.pem };
    expect(() => reloadServer(srv.server, broken)).toThrow(expect.objectContaining({ code: 'TW_CA' }));
    const out = await connectAndPing(srv.port, t.clientOptions);
    expect(out.peer!.serial).toBe(t.server.cert.serial);
  });

  it('watchCertDir: a server reloads when `--out DIR` files change, skipping a half-written set', async () => {
    t = await makeTestCA();
    const dir = await mkdtemp(join(tmpdir(), 'tulipwire-watch-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeCertDir(dir, toTlsMaterial(t.server));
    const srv = await startEchoServer(serverTlsOptions(t.server));
    servers.push(srv);
    const changes: TlsMaterial[] = [];
    let notify: (() => void) | null = null;
    const watcher = watchCertDir(dir, (m) => {
      changes.push(m);
      reloadServer(srv.server, m, { pin: t.ca.rootPin });
      notify?.();
    });
    cleanups.push(() => watcher.close());
    expect(watcher.current?.cert).toBe(t.server.chain.pem);
    expect(watcher.check()).toBe(false); // unchanged

    const next = await t.ca.renew(t.server);
    // Half an update: the new key beside the old certificate is not delivered.
    await writeFile(join(dir, 'key.pem'), next.key.pem, { mode: 0o600 });
    expect(watcher.check()).toBe(false);
    expect(changes).toHaveLength(0);
    const delivered = new Promise<void>((resolve) => {
      notify = resolve;
    });
    await writeCertDir(dir, toTlsMaterial(next));
    await delivered;
    expect(changes).toHaveLength(1);
    expect(changes[0]!.cert).toBe(next.chain.pem);
    const out = await connectAndPing(srv.port, t.clientOptions);
    expect(out.peer!.serial).toBe(next.cert.serial);
  });
});
