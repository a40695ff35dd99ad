/**
 * Runs the `tulipwire` CLI from source as a child process (`node --import tsx src/cli/main.ts …`), for the CLI
 * tests. The child runs in `cwd` (a temp directory), so tsx is named by path rather than resolved from there; the
 * root-key passphrase variable is cleared unless `env` sets it.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

/** The node arguments that start the CLI from source (for a long-running child, e.g. `renew --watch`). */
export const CLI_NODE_ARGS: readonly string[] = ['--import', TSX, MAIN];

/** What one CLI run gave. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args` in `cwd` (bounded at 20 s) and returns its exit code and output. */
export function runCli(args: string[], cwd: string, env: Record<string, string> = {}): CliRun {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd,
    env: { ...process.env, TULIPWIRE_CA_PASSPHRASE: '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
