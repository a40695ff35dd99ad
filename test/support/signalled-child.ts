/**
 * A TypeScript fixture run in a child process (`node --import tsx fixture mode`) that is sent `signal` each time it
 * prints `ready` on stdout, at most `times` times: for what only another process can show about SIGINT/SIGTERM
 * (they would end the test runner). Killed after 20 s, so a fixture that hangs fails its test instead of the run.
 */
import { spawn } from 'node:child_process';

/** What the child printed on stdout and how it ended. */
export interface ChildOutcome {
  /** Everything it wrote to stdout. */
  out: string;
  /** Its exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

/** Runs `fixture` with `mode`, signalling it on each `ready` (up to `times`); resolves when it exits. */
export function runSignalled(fixture: string, mode: string, signal: NodeJS.Signals, times: number): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = 0;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // Signal once the fixture says it is waiting (again).
      const ready = out.split('ready').length - 1;
      if (ready > sent && sent < times) {
        sent++;
        p.kill(signal);
      }
    });
    p.on('error', reject);
    p.on('exit', (code, sig) => resolve({ out, code, signal: sig }));
    setTimeout(() => p.kill('SIGKILL'), 20_000).unref();
  });
}
