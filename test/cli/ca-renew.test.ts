/**
 * `tulipwire ca renew` of a certificate that has already expired (a server that was off for a day), run as a child
 * process. A one-shot renewal refuses it with `TW_CERTIFICATE_EXPIRED` and leaves the directory as it was, unless
 * `--allow-expired`; then the renewed directory serves mutual TLS on 127.0.0.1 again. `--watch` renews an expired
 * certificate at once (a watcher is a standing decision to keep it alive). Unparsable files are `TW_CA`; a
 * lifetime under one second is a usage error; a load removes stale temp files from the CA directory.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PrivateCA, clientTlsOptions, readCertDir, serverTlsOptions } from '../../src/pki/index.js';
import type { CliRun } from '../support/cli.js';
import { CLI_NODE_ARGS, runCli } from '../support/cli.js';
import type { EchoServer } from '../pki/helpers.js';
import { connectAndPing, startEchoServer } from '../pki/helpers.js';

const HOUR = 3600;
let work: string;
let dir: string;
const servers: EchoServer[] = [];

function cli(args: string[]): CliRun {
  return runCli(args, work);
}

/** Exit 1 with exactly one stderr line `tulipwire: … [code]` matching `reason`. */
function expectError(r: CliRun, code: string, reason: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^tulipwire: /);
  expect(lines[0]).toMatch(reason);
  expect(lines[0]!.endsWith(` [${code}]`), lines[0]).toBe(true);
}

/** Writes a server certificate of the CLI's CA that expired an hour ago (issued for a day) into `out`. */
async function expiredServerDir(out: string): Promise<void> {
  const ca = await PrivateCA.load({ dir });
  const now = Date.now() / 1000;
  await ca.writeTo(out, await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], notBefore: now - 25 * HOUR, notAfter: now - HOUR }));
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tulipwire-cli-renew-'));
  dir = join(work, 'ca');
  expect(cli(['ca', 'init', '--dir', dir, '--name', 'renew-cli.example']).code).toBe(0);
}, 60_000);
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('ca renew of an expired certificate', () => {
  it('is refused without --allow-expired (TW_CERTIFICATE_EXPIRED, the directory unchanged), renewed with it, and serves mTLS', async () => {
    const out = join(work, 'server');
    await expiredServerDir(out);
    const before = readFileSync(join(out, 'cert.pem'), 'utf8');
    expectError(cli(['ca', 'renew', '--dir', dir, '--out', out]), 'TW_CERTIFICATE_EXPIRED',
      /certificate of tulip:\/\/renew-cli\.example\/server\/localhost \(serial [0-9a-f]+\) expired 60\.\d min ago .*--allow-expired/);
    expect(readFileSync(join(out, 'cert.pem'), 'utf8')).toBe(before);

    const r = cli(['ca', 'renew', '--dir', dir, '--out', out, '--allow-expired']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^identity: tulip:\/\/renew-cli\.example\/server\/localhost$/m);
    const inspected = JSON.parse(cli(['ca', 'inspect', '--dir', dir, join(out, 'cert.pem'), '--json']).stdout) as { secondsLeft: number; sans: string[]; chain: { ok: boolean } };
    expect(inspected.secondsLeft).toBeGreaterThan(23 * HOUR);
    expect(inspected.sans).toEqual(['DNS:localhost', 'IP Address:127.0.0.1', 'URI:tulip://renew-cli.example/server/localhost']);
    expect(inspected.chain.ok).toBe(true);

    const clientOut = join(work, 'client');
    expect(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'device/7', '--out', clientOut]).code).toBe(0);
    const srv = await startEchoServer(serverTlsOptions(readCertDir(out)));
    servers.push(srv);
    const got = await connectAndPing(srv.port, clientTlsOptions(readCertDir(clientOut), { servername: 'localhost' }));
    expect(got.error).toBeNull();
    expect(got.echoed).toBe(true);
    expect(got.peer?.identity).toBe('tulip://renew-cli.example/server/localhost');
    expect(srv.accepted[0]?.identity).toBe('tulip://renew-cli.example/device/7');
  }, 60_000);

  it('--watch renews an expired certificate at once, and stops cleanly on SIGTERM', async () => {
    const out = join(work, 'watched');
    await expiredServerDir(out);
    const child = spawn(process.execPath, [...CLI_NODE_ARGS, 'ca', 'renew', '--dir', dir, '--out', out, '--watch'], { cwd: work });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const renewed = new Promise<void>((resolveRenewed, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/wrote .*key\.pem/.test(stdout)) resolveRenewed();
      });
      child.on('exit', (code) => reject(new Error(`exited early with ${code}: ${stdout}${stderr}`)));
    });
    try {
      await renewed;
      const ca = await PrivateCA.load({ dir });
      const now = ca.adopt(readCertDir(out)); // no allowExpired: it is valid again
      expect(now.cert.notAfter).toBeGreaterThan(Date.now() / 1000 + 23 * HOUR);
      expect(stderr).toBe('');
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 60_000);
});

describe('ca renew and issue at the edges', () => {
  it('an unparsable key.pem or cert.pem is one line with TW_CA (not a bare OpenSSL error)', () => {
    const out = join(work, 'corrupt');
    expect(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'c', '--out', out]).code).toBe(0);
    const cert = readFileSync(join(out, 'cert.pem'), 'utf8');
    writeFileSync(join(out, 'key.pem'), 'garbage\n');
    expectError(cli(['ca', 'renew', '--dir', dir, '--out', out]), 'TW_CA', /the key PEM is not an unencrypted private key/);
    writeFileSync(join(out, 'cert.pem'), cert.replace(/-----BEGIN CERTIFICATE-----\n.{10}/, '-----BEGIN CERTIFICATE-----\nAAAAAAAAAA'));
    expectError(cli(['ca', 'renew', '--dir', dir, '--out', out]), 'TW_CA', /is not a PEM certificate/);
  });

  it('a lifetime under one second is a usage error (it would be written already expired), nothing written', () => {
    const out = join(work, 'too-short');
    const r = cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--lifetime', '0.4', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('tulipwire: invalid lifetime "0.4": at least 1 second');
    expect(existsSync(out)).toBe(false);
    expect(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--lifetime', '1', '--out', out]).code).toBe(0);
  });

  it('a command that loads the CA removes the temp files an interrupted init or rotation left there', () => {
    const stale = join(dir, '.00112233aabb.tmp');
    writeFileSync(stale, '-----BEGIN PRIVATE KEY-----\n', { mode: 0o600 });
    const r = cli(['ca', 'inspect', '--dir', dir, join(dir, 'root.pem')]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(stale)).toBe(false);
  });
});
