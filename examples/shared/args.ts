/**
 * For the examples: strict command-line flags with `node:util`'s `parseArgs`. `--help` prints the usage and exits 0;
 * an unknown flag, a missing value or a value that is not a positive number prints the reason and the usage and exits
 * 2, so a typo never silently runs the example with its defaults.
 */
import { parseArgs } from 'node:util';

/** One flag: a positive number (`'number'`) or a switch (`'boolean'`), and what it does. */
export interface FlagSpec {
  type: 'number' | 'boolean';
  help: string;
}

/**
 * Parses `argv` against `flags` (names without the leading `--`) and returns the values given, numbers as numbers.
 * Exits the process on `--help` (0) and on a usage error (2).
 */
export function exampleFlags(usage: string, flags: Record<string, FlagSpec>, argv: string[] = process.argv.slice(2)): Record<string, number | boolean> {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [name, f] of Object.entries(flags)) options[name] = { type: f.type === 'number' ? 'string' : 'boolean' };
  const text = [usage, ...Object.entries(flags).map(([n, f]) => `  --${n}${f.type === 'number' ? ' <n>' : ''}  ${f.help}`)].join('\n');
  const fail = (why: string): never => {
    process.stderr.write(`${why}\n${text}\n`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    return fail((e as Error).message);
  }
  if (values['help'] === true) {
    process.stdout.write(`${text}\n`);
    process.exit(0);
  }
  const out: Record<string, number | boolean> = {};
  for (const [name, f] of Object.entries(flags)) {
    const v = values[name];
    if (v === undefined) continue;
    if (f.type === 'boolean') out[name] = v === true;
    else {
      const n = Number(v);
      if (!(Number.isFinite(n) && n > 0)) fail(`--${name} needs a positive number, got ${JSON.stringify(v)}`);
      out[name] = n;
    }
  }
  return out;
}
