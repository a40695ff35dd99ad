/**
 * A CLI whose reader goes away (`tulipwire ca issue … | head -1`, a log pipe that died under `renew --watch`): the
 * next write to stdout fails with EPIPE, and node raised it as an unhandled 'error' event, so the CLI died with a
 * stack trace (`Error: write EPIPE … Unhandled 'error' event`) after the work was done, and a `renew --watch`
 * would die at its next renewal. Now output to a closed stdout is dropped: the command ends as it would have,
 * with its own exit code and no stack trace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_NODE_ARGS, runCli } from '../support/cli.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tulipwire-closed-stdout-'));
  expect(runCli(['ca', 'init', '--dir', 'ca', '--name', 'pipe.example'], work).code).toBe(0);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * Runs the CLI with a stdout pipe whose reading end is closed at once; resolves with the exit code and stderr.
 * `whileRunning` (for a command that keeps running) is awaited, then the child gets SIGTERM.
 */
function runWithClosedStdout(args: string[], whileRunning?: () => Promise<void>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI_NODE_ARGS, ...args], {
      cwd: work, env: { ...process.env, TULIPWIRE_CA_PASSPHRASE: '' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy(); // the reader is gone before the CLI writes its first line
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
    if (whileRunning !== undefined) void whileRunning().finally(() => child.kill('SIGTERM'));
  });
}

const serialIn = (dir: string) => new X509Certificate(readFileSync(join(work, dir, 'cert.pem'))).serialNumber;

describe('stdout closed by its reader', () => {
  it('issue server: the certificate is written, exit 0, no stack trace', async () => {
    const r = await runWithClosedStdout(['ca', 'issue', 'server', '--dir', 'ca', '--dns', 'localhost', '--out', 'srv']);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|at /);
    expect(r.code).toBe(0);
    expect(existsSync(join(work, 'srv', 'cert.pem'))).toBe(true);
  });

  it('inspect: exit 0, no stack trace', async () => {
    const r = await runWithClosedStdout(['ca', 'inspect', '--dir', 'ca', join('ca', 'root.pem')]);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|at /);
    expect(r.code).toBe(0);
  });

  it('renew --watch keeps renewing after its stdout closed, and stops with exit 0', async () => {
    expect(runCli(['ca', 'issue', 'client', '--dir', 'ca', '--id', 'watched', '--lifetime', '3', '--out', 'w'], work).code).toBe(0);
    const first = serialIn('w');
    const r = await runWithClosedStdout(['ca', 'renew', '--dir', 'ca', '--out', 'w', '--watch', '--fraction', '0.3'], async () => {
      // Renewed at 0.3 of 3 s (bounded wait: 15 s).
      for (let i = 0; i < 150 && serialIn('w') === first; i++) await sleep(100);
    });
    expect(serialIn('w')).not.toBe(first);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|at /);
    expect(r.code).toBe(0);
  });

  it('a failing command keeps its exit code and its one-line reason on stderr', async () => {
    const r = await runWithClosedStdout(['ca', 'issue', 'client', '--dir', 'nowhere', '--id', 'x', '--out', 'o']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tulipwire: no CA in nowhere.*\[TW_CA_NOT_FOUND\]\n$/);
  });
});
