/**
 * The CLI's error paths, run as a child process: each failure exits 1 with one line on stderr,
 * `tulipwire: <reason> [TW_CODE]`, and each usage mistake exits 2 (docs/pki.md, "CLI"). Nothing is written when a
 * command fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import type { CliRun } from '../support/cli.js';

let work: string;

type Run = CliRun;

function cli(args: string[], env: Record<string, string> = {}): Run {
  return runCli(args, work, env);
}

/** Asserts exit 1 with exactly one stderr line `tulipwire: … [code]` matching `reason`. */
function expectError(r: Run, code: string, reason: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^tulipwire: /);
  expect(lines[0]).toMatch(reason);
  expect(lines[0]!.endsWith(` [${code}]`)).toBe(true);
}

let dir: string;
let locked: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tulipwire-cli-err-'));
  dir = join(work, 'ca');
  locked = join(work, 'locked');
  expect(cli(['ca', 'init', '--dir', dir, '--name', 'err.example']).code).toBe(0);
  writeFileSync(join(work, 'pass'), 'right one\n');
  writeFileSync(join(work, 'wrong'), 'wrong one\n');
  expect(cli(['ca', 'init', '--dir', locked, '--name', 'locked.example', '--passphrase-file', join(work, 'pass')]).code).toBe(0);
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('errors: exit 1, one line, the code', () => {
  it('init over an existing CA, and with a bad name', () => {
    expectError(cli(['ca', 'init', '--dir', dir, '--name', 'err.example']), 'TW_CA', /already holds a CA/);
    expectError(cli(['ca', 'init', '--dir', join(work, 'bad-name'), '--name', 'Bad Name']), 'TW_CA', /CA name "Bad Name"/);
    expect(existsSync(join(work, 'bad-name', 'ca.json'))).toBe(false);
  });

  it('issue: a leaf outliving the intermediate, a malformed or foreign identity; nothing written', () => {
    const out = join(work, 'not-written');
    expectError(cli(['ca', 'issue', 'server', '--dir', dir, '--dns', 'localhost', '--lifetime', '400d', '--out', out]), 'TW_CA', /outlive the issuing intermediate/);
    expectError(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'a/b/c', '--out', out]), 'TW_CA', /must be <id>, <kind>\/<id> or a tulip:\/\/ URI/);
    expectError(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'tulip://other.example/client/x', '--out', out]), 'TW_CA', /names CA other\.example/);
    expectError(cli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--kind', 'no spaces', '--out', out]), 'TW_CA', /identity kind/);
    expect(existsSync(out)).toBe(false);
  });

  it('a missing CA, a missing passphrase file, a wrong passphrase', () => {
    const out = join(work, 'not-written-2');
    expectError(cli(['ca', 'issue', 'client', '--dir', join(work, 'nothing'), '--id', 'x', '--out', out]), 'TW_CA_NOT_FOUND', /no CA in/);
    expectError(cli(['ca', 'issue', 'client', '--dir', locked, '--id', 'x', '--out', out, '--passphrase-file', join(work, 'absent')]), 'TW_CA', /cannot read the passphrase file/);
    expectError(cli(['ca', 'issue', 'client', '--dir', locked, '--id', 'x', '--out', out, '--passphrase-file', join(work, 'wrong')]), 'TW_CA_BAD_PASSPHRASE', /does not decrypt/);
    expectError(cli(['ca', 'rotate-intermediate', '--dir', locked], { TULIPWIRE_CA_PASSPHRASE: 'wrong one' }), 'TW_CA_BAD_PASSPHRASE', /does not decrypt/);
    expect(existsSync(out)).toBe(false);
    // The right one, from the file or the environment.
    expect(cli(['ca', 'rotate-intermediate', '--dir', locked, '--passphrase-file', join(work, 'pass')]).code).toBe(0);
    expect(cli(['ca', 'rotate-intermediate', '--dir', locked], { TULIPWIRE_CA_PASSPHRASE: 'right one' }).code).toBe(0);
  });

  it('renew: a missing directory, a certificate of another CA', () => {
    expectError(cli(['ca', 'renew', '--dir', dir, '--out', join(work, 'nowhere')]), 'TW_CA', /could not read the certificate directory/);
    const foreign = join(work, 'foreign');
    expect(cli(['ca', 'issue', 'client', '--dir', locked, '--id', 'x', '--out', foreign]).code).toBe(0);
    expectError(cli(['ca', 'renew', '--dir', dir, '--out', foreign]), 'TW_CA', /was not issued by this CA \(err\.example\)/);
  });

  it('inspect: a missing file, a file without a certificate, a PEM block that is not a certificate', () => {
    expectError(cli(['ca', 'inspect', join(work, 'absent.pem'), '--dir', dir]), 'TW_CA', /cannot read .*absent\.pem/);
    writeFileSync(join(work, 'text.pem'), 'hello\n');
    expectError(cli(['ca', 'inspect', join(work, 'text.pem'), '--dir', dir]), 'TW_CA', /text\.pem holds no PEM certificate/);
    writeFileSync(join(work, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expectError(cli(['ca', 'inspect', join(work, 'broken.pem'), '--dir', dir]), 'TW_CA', /broken\.pem/);
  });
});

describe('usage errors: exit 2', () => {
  it.each([
    ['an unknown subcommand', ['ca', 'frobnicate']],
    ['an unknown option', ['ca', 'init', '--dir', 'x', '--name', 'x.example', '--frob']],
    ['a missing required option', ['ca', 'issue', 'client', '--dir', 'ca', '--id', 'x']],
    ['an unknown key algorithm', ['ca', 'init', '--dir', 'x', '--name', 'x.example', '--key-algorithm', 'RSA']],
    ['neither --dns nor --ip', ['ca', 'issue', 'server', '--dir', 'ca', '--out', 'o']],
    ['a bad lifetime', ['ca', 'issue', 'client', '--dir', 'ca', '--id', 'x', '--out', 'o', '--lifetime', '24 hours']],
    ['a zero lifetime', ['ca', 'issue', 'client', '--dir', 'ca', '--id', 'x', '--out', 'o', '--lifetime', '0h']],
    ['a fraction outside (0, 1)', ['ca', 'renew', '--dir', 'ca', '--out', 'o', '--watch', '--fraction', '1']],
  ])('%s', (_what, args) => {
    const r = cli(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().length).toBeGreaterThan(0);
    expect(existsSync(join(work, 'o'))).toBe(false);
    expect(existsSync(join(work, 'x', 'ca.json'))).toBe(false);
  });
});
