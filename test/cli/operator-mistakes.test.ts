/**
 * Mistakes an operator made on a first trial of `tulipwire ca`, run as a child process: each ends with exit 1 (or 2
 * for usage) and one stderr line `tulipwire: <reason>` (with ` [TW_CODE]` for exit 1), and nothing half-written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_NODE_ARGS, runCli } from '../support/cli.js';
import type { CliRun } from '../support/cli.js';

let work: string;
let locked: string;

function cli(args: string[], env: Record<string, string> = {}): CliRun {
  return runCli(args, work, env);
}

/** Exit `code`, exactly one stderr line starting `tulipwire: ` and matching `reason`. */
function expectOneLine(r: CliRun, code: 1 | 2, reason: RegExp, twCode?: string): void {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tulipwire: /);
  expect(lines[0]).toMatch(reason);
  if (twCode !== undefined) expect(lines[0]!.endsWith(` [${twCode}]`), lines[0]).toBe(true);
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tulipwire-cli-trial-'));
  locked = join(work, 'locked');
  writeFileSync(join(work, 'pass'), 'right one\n');
  expect(cli(['ca', 'init', '--dir', locked, '--name', 'trial.example', '--passphrase-file', join(work, 'pass')]).code).toBe(0);
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('usage mistakes: exit 2, one line', () => {
  it('a typo in an option is one `tulipwire:` line with the suggestion', () => {
    const r = cli(['ca', 'issue', 'client', '--dir', locked, '--id', 'x', '--out', 'o', '--lifetim', '2h']);
    expectOneLine(r, 2, /unknown option '--lifetim'.*--lifetime/);
    expect(existsSync(join(work, 'o'))).toBe(false);
  });

  it('a missing required option and an unknown subcommand are one `tulipwire:` line', () => {
    expectOneLine(cli(['ca', 'init', '--dir', 'x']), 2, /required option '--name <name>' not specified/);
    expectOneLine(cli(['ca', 'rotate', '--dir', 'x']), 2, /unknown command 'rotate'/);
  });

  it('an invalid --ip is refused before anything is issued', () => {
    const out = join(work, 'bad-ip');
    expectOneLine(cli(['ca', 'issue', 'server', '--dir', locked, '--ip', '999.1.1.1', '--out', out]), 2, /invalid IP address "999\.1\.1\.1"/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('passphrase files', () => {
  it('a file of two lines is refused (the docs say one line), and no CA is made', () => {
    writeFileSync(join(work, 'two-lines'), 'first\nsecond\n');
    const d = join(work, 'two');
    expectOneLine(cli(['ca', 'init', '--dir', d, '--name', 'two.example', '--passphrase-file', join(work, 'two-lines')]), 1, /passphrase file .*two-lines holds more than one line/, 'TW_CA');
    expect(existsSync(join(d, 'ca.json'))).toBe(false);
  });

  it('an empty file is reported as empty, not as a wrong passphrase', () => {
    writeFileSync(join(work, 'empty'), '\n');
    const out = join(work, 'not-written');
    expectOneLine(cli(['ca', 'issue', 'client', '--dir', locked, '--id', 'x', '--out', out, '--passphrase-file', join(work, 'empty')]), 1, /passphrase file .*empty is empty/, 'TW_CA');
    expect(existsSync(out)).toBe(false);
  });
});

describe('the root key offline', () => {
  it('rotate-intermediate says the key file is missing, not that a passphrase is needed', () => {
    const key = join(locked, 'root.key.pem');
    const away = join(work, 'root.key.pem.offline');
    renameSync(key, away);
    try {
      const r = cli(['ca', 'rotate-intermediate', '--dir', locked, '--passphrase-file', join(work, 'pass')]);
      expectOneLine(r, 1, /root key .*root\.key\.pem is offline/, 'TW_CA');
    } finally {
      renameSync(away, key);
    }
    expect(cli(['ca', 'rotate-intermediate', '--dir', locked, '--passphrase-file', join(work, 'pass')]).code).toBe(0);
  });
});

describe('inspect', () => {
  it('an explicit --dir without a CA is an error (a typo must not pass as "not checked")', () => {
    const r = cli(['ca', 'inspect', join(locked, 'root.pem'), '--dir', join(work, 'pkii')]);
    expectOneLine(r, 1, /no CA in .*pkii/, 'TW_CA_NOT_FOUND');
  });
});

describe('Ctrl-C during init', () => {
  it('SIGINT while the files are written: exit 1, one line, no CA files and no temp files left', async () => {
    const d = join(work, 'interrupted');
    mkdirSync(d);
    const child = spawn(process.execPath, [...CLI_NODE_ARGS, 'ca', 'init', '--dir', d, '--name', 'int.example', '--passphrase-file', join(work, 'pass')], {
      cwd: work,
      env: { ...process.env, TULIPWIRE_CA_PASSPHRASE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    // The first file event in the directory: init is writing its files now.
    const w = watch(d, () => {
      w.close();
      child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    w.close();
    expectOneLine({ code, stdout, stderr }, 1, /interrupted by SIGINT: the CA was not created/, 'TW_CA');
    expect(stdout).toBe('');
    expect(readdirSync(d)).toEqual([]);
    // And the directory takes a new init.
    expect(cli(['ca', 'init', '--dir', d, '--name', 'int.example']).code).toBe(0);
  }, 30_000);
});
