/**
 * examples/tour takes no flags, and says so as strictly as the other examples (examples/shared/args.ts): `--help`
 * prints the usage and exits 0 without running the tour, an unknown flag exits 2 with the reason. It used to ignore
 * its command line, so `--help` (or a typo) ran the whole tour.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function tour(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/tour/main.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('examples/tour command line', () => {
  it('--help prints the usage and exits 0 without running the tour', () => {
    const r = tour(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: npx tsx examples/tour/main.ts');
    expect(r.stdout).not.toContain('worker: cancelled');
  });

  it('an unknown flag exits 2 with the reason and the usage', () => {
    const r = tour(['--verbose']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--verbose'/);
    expect(r.stderr).toContain('usage: npx tsx examples/tour/main.ts');
    expect(r.stdout).toBe('');
  });
}, 60_000);
