/**
 * README.md's CLI walk-through (the `sh` block of its "CLI" section), run line by line as a newcomer would, in a temp
 * directory: every one-shot line exits 0, `--out` writes what the README says (`key.pem` 0600, `cert.pem` = leaf +
 * intermediate, `ca.pem` = the root), `inspect` prints the fields docs/pki.md lists with a chain check that passes,
 * and the last line, `renew --watch`, keeps running until SIGTERM and then exits 0. test/docs-cli.test.ts checks
 * only that the lines name real options; this checks that they work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { CLI_NODE_ARGS, runCli } from './support/cli.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const PREFIX = 'npx tsx src/cli/main.ts ';

/** The command lines of the README's CLI block, as argument lists (they hold no quotes). */
function walkThrough(): string[][] {
  const section = readme.split('\n## CLI\n')[1]!.split('\n## ')[0]!;
  const block = /```sh\n([\s\S]*?)\n```/.exec(section)![1]!;
  return block.split('\n').map((line) => {
    expect(line.startsWith(PREFIX), line).toBe(true);
    expect(line).not.toMatch(/["'#|&;$]/);
    return line.slice(PREFIX.length).trim().split(/\s+/);
  });
}

function certs(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c));
}

describe('README.md: the CLI walk-through', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'tw-readme-cli-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('runs every line as shown', async () => {
    const lines = walkThrough();
    expect(lines.map((a) => a.slice(0, 2).join(' '))).toEqual(['ca init', 'ca issue', 'ca issue', 'ca inspect', 'ca renew']);
    const watch = lines.at(-1)!;
    expect(watch).toContain('--watch');

    for (const args of lines.slice(0, -1)) {
      const r = runCli(args, work);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
      expect(r.stderr).toBe('');
      if (args[1] === 'inspect') {
        // docs/pki.md: subject, issuer, serial, SANs, EKU, validity, time left, SHA-256, SPKI pin, chain check.
        for (const field of ['subject:', 'issuer:', 'serial:', 'SANs:', 'EKU:', 'valid:', 'time left:', 'SHA-256:', 'SPKI pin:']) {
          expect(r.stdout).toMatch(new RegExp(`^${field}`, 'm'));
        }
        expect(r.stdout).toMatch(/^chain: +OK: leaf <- /m);
        expect(r.stdout).toContain('URI:tulip://game.example/player/42');
      }
    }

    // `--out DIR` writes key.pem (0600), cert.pem (leaf + intermediate) and ca.pem (the root).
    const root = new X509Certificate(readFileSync(join(work, 'pki/root.pem')));
    for (const out of ['certs/server', 'certs/p42']) {
      expect(statSync(join(work, out, 'key.pem')).mode & 0o777).toBe(0o600);
      const chain = certs(readFileSync(join(work, out, 'cert.pem'), 'utf8'));
      expect(chain.length).toBe(2);
      expect(chain[0]!.checkIssued(chain[1]!)).toBe(true);
      expect(chain[1]!.checkIssued(root)).toBe(true);
      expect(certs(readFileSync(join(work, out, 'ca.pem'), 'utf8')).map((c) => c.fingerprint256)).toEqual([root.fingerprint256]);
    }

    // `renew --watch` keeps running (renewing at 2/3 of the lifetime) until SIGTERM, then exits 0.
    const child = spawn(process.execPath, [...CLI_NODE_ARGS, ...watch], { cwd: work, env: { ...process.env, TULIPWIRE_CA_PASSPHRASE: '' } });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(`${code} ${signal}`)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (/^watching certs\/server: /m.test(stdout)) resolve();
        });
        child.on('exit', (code) => reject(new Error(`renew --watch exited early with ${code}: ${stdout}${stderr}`)));
      });
      // The "watching" line is the watcher's ready signal: its SIGINT/SIGTERM handlers are installed before it
      // (test/cli/watch-signal-at-ready-line.test.ts), so the signal goes at once.
      child.kill('SIGTERM');
      expect(await exited, `${stdout}${stderr}`).toBe('0 null');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
