/**
 * The `tulipwire ca` CLI, run as a child process (`node --import tsx src/cli/main.ts ...`): exit codes 0/1/2,
 * files and modes, openssl acceptance of what it writes, inspect output, renew, and `renew --watch`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitPemCertificates } from '../../src/pki/index.js';
import { CLI_NODE_ARGS, runCli } from '../support/cli.js';
import type { CliRun } from '../support/cli.js';

let work: string;

function cli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): CliRun {
  return runCli(args, opts.cwd ?? work, opts.env);
}

function opensslVerify(dir: string, purpose: string): string {
  const [leaf, inter] = splitPemCertificates(readFileSync(join(dir, 'cert.pem'), 'utf8'));
  writeFileSync(join(dir, 'leaf.tmp.pem'), leaf!);
  writeFileSync(join(dir, 'inter.tmp.pem'), inter!);
  return execFileSync('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', join(dir, 'ca.pem'), '-untrusted', join(dir, 'inter.tmp.pem'), join(dir, 'leaf.tmp.pem')], { encoding: 'utf8' });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tulipwire-cli-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('usage and help', () => {
  it('ca --help lists the subcommands and exits 0', () => {
    const r = cli(['ca', '--help']);
    expect(r.code).toBe(0);
    for (const c of ['init', 'issue', 'inspect', 'renew']) expect(r.stdout).toContain(c);
    const init = cli(['ca', 'init', '--help']);
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/--dir <dir>\s+the CA directory \(default: "\.\/pki"\)/);
    expect(init.stdout).toContain('--passphrase-file');
  });

  it('--version prints the package version; a command without its subcommand is a usage error (help on stderr, exit 2)', () => {
    const v = cli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    for (const args of [[], ['ca'], ['ca', 'issue']]) {
      const r = cli(args);
      expect(r.code, JSON.stringify(args)).toBe(2);
      expect(r.stderr).toContain('Usage: tulipwire');
    }
    expect(cli(['ca', 'renew', '--help']).stdout).toMatch(/--fraction <f>[\s\S]*\(default: 2\/3\)/);
  });

  it.each([
    [['ca', 'bogus']],
    [['ca', 'init']], // --name missing
    [['ca', 'init', '--name', 'x', '--key-algorithm', 'RSA']],
    [['ca', 'issue', 'server', '--out', 'x']], // no --dns/--ip
    [['ca', 'issue', 'client', '--id', 'a', '--out', 'x', '--lifetime', 'soon']],
  ])('usage error %j exits 2', (args) => {
    const r = cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr.length).toBeGreaterThan(0);
  });

  it('a missing CA is an error (exit 1) with a one-line reason', () => {
    const r = cli(['ca', 'issue', 'client', '--dir', join(work, 'none'), '--id', 'a', '--out', join(work, 'none-out')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^tulipwire: no CA in .*\[TW_CA_NOT_FOUND\]\n$/);
  });
});

describe('a CA through the CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = join(work, 'pki');
    writeFileSync(join(work, 'pass.txt'), 'open sesame\n');
    const r = cli(['ca', 'init', '--dir', dir, '--name', 'cli.example', '--passphrase-file', join(work, 'pass.txt')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/root pin: +[0-9a-f]{64}/);
    expect(r.stdout).toContain('(encrypted)');
  });

  it('init encrypted the root key; a wrong passphrase is exit 1 with TW_CA_BAD_PASSPHRASE', () => {
    expect(readFileSync(join(dir, 'root.key.pem'), 'utf8')).toMatch(/ENCRYPTED PRIVATE KEY/);
    const r = cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--out', join(work, 'bad')], { env: { TULIPWIRE_CA_PASSPHRASE: 'wrong' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TW_CA_BAD_PASSPHRASE/);
    const ok = cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--out', join(work, 'good')], { env: { TULIPWIRE_CA_PASSPHRASE: 'open sesame' } });
    expect(ok.code).toBe(0);
  });

  it('issue server --out writes key.pem 0600, cert.pem (chain), ca.pem; openssl accepts the chain', () => {
    const out = join(work, 'srv');
    const r = cli(['ca', 'issue', 'server', '--dir', dir, '--dns', 'localhost,api.cli.example', '--ip', '127.0.0.1', '--lifetime', '12h', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('identity: tulip://cli.example/server/localhost');
    expect(statSync(join(out, 'key.pem')).mode & 0o777).toBe(0o600);
    expect(splitPemCertificates(readFileSync(join(out, 'cert.pem'), 'utf8'))).toHaveLength(2);
    expect(opensslVerify(out, 'sslserver')).toMatch(/OK/);
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', join(out, 'cert.pem')], { encoding: 'utf8' });
    expect(text).toContain('DNS:localhost, DNS:api.cli.example, IP Address:127.0.0.1');
    expect(text).toContain('TLS Web Server Authentication');
  });

  it('issue client --id kind/id writes a clientAuth certificate openssl accepts', () => {
    const out = join(work, 'cli');
    const r = cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'player/42', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('identity: tulip://cli.example/player/42');
    expect(opensslVerify(out, 'sslclient')).toMatch(/OK/);
  });

  it('inspect prints subject, SANs, EKU, validity, time left, the SHA-256 fingerprint and the chain check', () => {
    const out = join(work, 'insp');
    expect(cli(['ca', 'issue', 'server', '--dir', dir, '--dns', 'localhost', '--lifetime', '2h', '--out', out]).code).toBe(0);
    const r = cli(['ca', 'inspect', join(out, 'cert.pem'), '--dir', dir]);
    expect(r.code).toBe(0);
    const fp = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', join(out, 'cert.pem')], { encoding: 'utf8' })
      .split('=')[1]!.trim().replace(/:/g, '').toLowerCase();
    expect(r.stdout).toMatch(/^subject: +CN=localhost$/m);
    expect(r.stdout).toMatch(/^SANs: +DNS:localhost, URI:tulip:\/\/cli\.example\/server\/localhost$/m);
    expect(r.stdout).toMatch(/^EKU: +serverAuth$/m);
    expect(r.stdout).toMatch(/^valid: +\d{4}-\d\d-\d\dT.* -> \d{4}-/m);
    // notAfter is whole seconds, so a 2 h certificate inspected within its first second can show 2 h and a bit.
    expect(r.stdout).toMatch(/^time left: +(119\.\d min|120\.0 min|2\.0 h)$/m);
    expect(r.stdout).toContain(`SHA-256:     ${fp}`);
    expect(r.stdout).toMatch(/^chain: +OK: leaf <- O=cli\.example, CN=cli\.example issuing CA <- root of CA cli\.example/m);
    const json = JSON.parse(cli(['ca', 'inspect', join(out, 'cert.pem'), '--dir', dir, '--json']).stdout) as { fingerprint: string; chain: { ok: boolean } };
    expect(json.fingerprint).toBe(fp);
    expect(json.chain.ok).toBe(true);
  });

  it('inspect of the root itself says so', () => {
    const r = cli(['ca', 'inspect', join(dir, 'root.pem'), '--dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^chain: +OK: this is the root of CA cli\.example$/m);
  });

  it('inspect against another CA reports the chain failure and exits 1', () => {
    const other = join(work, 'other-pki');
    expect(cli(['ca', 'init', '--dir', other, '--name', 'other.example']).code).toBe(0);
    const r = cli(['ca', 'inspect', join(work, 'srv', 'cert.pem'), '--dir', other]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^chain: +FAILED: its intermediate is not signed by the root of CA other\.example/m);
  });

  it('renew re-issues with the same profile and a new serial', () => {
    const out = join(work, 'srv');
    const before = cli(['ca', 'inspect', join(out, 'cert.pem'), '--dir', dir, '--json']);
    const b = JSON.parse(before.stdout) as { serial: string; sans: string[]; secondsLeft: number };
    const r = cli(['ca', 'renew', '--dir', dir, '--out', out]);
    expect(r.code).toBe(0);
    const a = JSON.parse(cli(['ca', 'inspect', join(out, 'cert.pem'), '--dir', dir, '--json']).stdout) as { serial: string; sans: string[]; secondsLeft: number };
    expect(a.serial).not.toBe(b.serial);
    expect(a.sans).toEqual(b.sans);
    expect(Math.abs(a.secondsLeft - 12 * 3600)).toBeLessThan(30);
    expect(opensslVerify(out, 'sslserver')).toMatch(/OK/);
  });

  it('rotate-intermediate needs the passphrase; old and new leaves both verify under the same root', () => {
    const before = join(work, 'before-rotation');
    expect(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'before', '--out', before]).code).toBe(0);
    const locked = cli(['ca', 'rotate-intermediate', '--dir', dir]);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/root key .* is not loaded/);
    const r = cli(['ca', 'rotate-intermediate', '--dir', dir, '--lifetime', '30d'], { env: { TULIPWIRE_CA_PASSPHRASE: 'open sesame' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/rotated the intermediate of CA cli\.example: [0-9a-f]{64} -> [0-9a-f]{64}/);
    const after = join(work, 'after-rotation');
    expect(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'after', '--out', after]).code).toBe(0);
    expect(readFileSync(join(before, 'cert.pem'), 'utf8')).not.toBe(readFileSync(join(after, 'cert.pem'), 'utf8'));
    expect(opensslVerify(before, 'sslclient')).toMatch(/OK/);
    expect(opensslVerify(after, 'sslclient')).toMatch(/OK/);
    // inspect still accepts the old leaf: its own cert.pem carries the old intermediate.
    const insp = cli(['ca', 'inspect', join(before, 'cert.pem'), '--dir', dir]);
    expect(insp.code).toBe(0);
    expect(insp.stdout).toMatch(/^SPKI pin: +[0-9a-f]{64}$/m);
  });

  it('uses ./pki by default', () => {
    const cwd = mkdtempSync(join(work, 'cwd-'));
    expect(cli(['ca', 'init', '--name', 'default.example'], { cwd }).code).toBe(0);
    expect(statSync(join(cwd, 'pki', 'ca.json')).isFile()).toBe(true);
  });

  it('renew --watch renews before expiry and stops cleanly on SIGTERM', async () => {
    const out = join(work, 'watch');
    // A 4 s certificate renewed at 1/4 of its life: the first renewal comes after about one second.
    expect(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'watcher', '--lifetime', '4', '--out', out]).code).toBe(0);
    const child = spawn(process.execPath, [...CLI_NODE_ARGS, 'ca', 'renew', '--dir', dir, '--out', out, '--watch', '--fraction', '0.25'], { cwd: work });
    let stdout = '';
    const renewed = new Promise<void>((resolveRenewed, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/wrote .*key\.pem/.test(stdout)) resolveRenewed();
      });
      child.on('exit', (code) => reject(new Error(`exited early with ${code}: ${stdout}`)));
    });
    try {
      await renewed;
      expect(stdout).toMatch(/^watching .*tulip:\/\/cli\.example\/client\/watcher, next renewal at /m);
      expect(opensslVerify(out, 'sslclient')).toMatch(/OK/);
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 60_000); // two tsx start-ups (1-3 s each under load) plus the first renewal
});
