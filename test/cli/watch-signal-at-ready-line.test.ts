/**
 * `ca renew --watch` prints `watching <dir>: …` when it is ready, and a script that supervises it (start it, wait for
 * that line, stop it with SIGTERM) must get exit code 0: the line is the watcher's "ready" signal. The handlers
 * for SIGINT/SIGTERM were installed after the line was printed, so a signal sent as soon as the line arrived could
 * find the process with none and kill it (exit by signal, no clean stop), in about 3 of 5 tries on this machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_NODE_ARGS, runCli } from '../support/cli.js';

let work = '';
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tulipwire-cli-watch-ready-'));
  expect(runCli(['ca', 'init', '--dir', 'ca', '--name', 'watch-ready'], work).code).toBe(0);
  expect(runCli(['ca', 'issue', 'client', '--dir', 'ca', '--id', 'w', '--lifetime', '3600', '--out', 'w'], work).code).toBe(0);
}, 60_000);
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Starts the watcher, sends `signal` the moment its `watching` line arrives, and resolves with how it ended. */
function stopAtReadyLine(signal: NodeJS.Signals): Promise<{ code: number | null; signal: string | null; stdout: string }> {
  const child = spawn(process.execPath, [...CLI_NODE_ARGS, 'ca', 'renew', '--dir', 'ca', '--out', 'w', '--watch'], { cwd: work });
  let stdout = '';
  let sent = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!sent && /^watching /m.test(stdout)) {
      sent = true;
      child.kill(signal);
    }
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    child.on('exit', (code, sig) => {
      clearTimeout(guard);
      resolve({ code, signal: sig, stdout });
    });
  });
}

describe('renew --watch stopped at its ready line', () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGTERM', 'SIGINT'] as const) {
    it(`${signal} sent as soon as "watching" is printed: a clean stop, exit 0`, async () => {
      const r = await stopAtReadyLine(signal);
      expect(r.stdout).toMatch(/^watching /m);
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    }, 45_000);
  }
});
