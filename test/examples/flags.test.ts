/**
 * The examples' command lines are strict (examples/shared/args.ts): `--help` prints the usage and exits 0, an unknown
 * flag or a bad value exits 2 with the reason, instead of silently running the example with its defaults.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function example(file: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('example flags', () => {
  it('--help prints the usage with every flag and exits 0', () => {
    const r = example('examples/game-server/main.ts', ['--help']);
    expect(r.code).toBe(0);
    for (const f of ['--bots <n>', '--duration <n>', '--tick-rate <n>', '--no-cheater']) expect(r.stdout).toContain(f);
  });

  it.each([
    ['examples/game-server/main.ts', ['--bogus'], /Unknown option '--bogus'/],
    ['examples/game-server/main.ts', ['--bots', 'many'], /--bots needs a positive number, got "many"/],
    ['examples/ca-rotation/main.ts', ['--lifetime'], /argument missing|--lifetime/],
    ['examples/echo/main.ts', ['--verbose'], /Unknown option '--verbose'/],
  ])('%s %j exits 2 with the reason and the usage', (file, args, why) => {
    const r = example(file, args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(why as RegExp);
    expect(r.stderr).toContain('usage: npx tsx examples/');
  });
});
