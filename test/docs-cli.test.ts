/**
 * The CLI reference stays true to the CLI: every `tulipwire ca …` line of docs/pki.md's synopsis and every
 * `npx tsx src/cli/main.ts ca …` line of README.md names a subcommand that exists and only options that subcommand
 * has (its `--help`), a `[--flag value]` shown with a literal value shows the option's default, every subcommand of
 * `ca --help` has a synopsis line, and every option of every subcommand is named somewhere in docs/pki.md.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';

const pkiDoc = readFileSync(new URL('../docs/pki.md', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

interface HelpOption { flag: string; text: string; defaultValue: string | null }

/** The options of one `ca <sub> --help`, each with its description joined across commander's wrapped lines. */
function helpOptions(help: string): Map<string, HelpOption> {
  const section = help.split(/^Options:\n/m)[1]?.split(/^\S.*:\n/m)[0] ?? '';
  const out = new Map<string, HelpOption>();
  let current: HelpOption | null = null;
  for (const line of section.split('\n')) {
    const m = /^ {2}(?:-\w, )?(--[\w-]+)(.*)$/.exec(line);
    if (m !== null) {
      current = { flag: m[1]!, text: m[2]!, defaultValue: null };
      out.set(current.flag, current);
    } else if (current !== null) {
      current.text += ' ' + line.trim();
    }
  }
  for (const o of out.values()) {
    const text = o.text.replace(/\s+/g, ' ');
    const d = /\(default: "([^"]*)"\)/.exec(text) ?? /\(default: ([^)"]+)\)/.exec(text);
    o.defaultValue = d === null ? null : d[1]!;
  }
  return out;
}

function help(args: string[]): string {
  const r = runCli([...args, '--help'], tmpdir());
  expect(r.code, `${args.join(' ')} --help: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** `ca --help`'s subcommands, with `issue` expanded to `issue server` and `issue client`. */
function subcommands(): string[] {
  const commands = (text: string) => (text.split(/^Commands:\n/m)[1] ?? '').split('\n')
    .map((l) => /^ {2}([\w-]+)/.exec(l)?.[1]).filter((c): c is string => c !== undefined && c !== 'help');
  return commands(help(['ca'])).flatMap((c) => c === 'issue' ? commands(help(['ca', 'issue'])).map((s) => `issue ${s}`) : [c]);
}

/** The documented command lines: `[subcommand, the rest of the line, where]`. */
function documentedLines(): [string, string, string][] {
  const synopsis = /^## CLI\n+```\n([\s\S]*?)```/m.exec(pkiDoc)?.[1] ?? '';
  const lines: [string, string][] = [
    ...synopsis.split('\n').filter((l) => l.startsWith('tulipwire ca ')).map((l) => [l.slice('tulipwire ca '.length), 'docs/pki.md'] as [string, string]),
    ...readme.split('\n').filter((l) => l.startsWith('npx tsx src/cli/main.ts ca '))
      .map((l) => [l.slice('npx tsx src/cli/main.ts ca '.length), 'README.md'] as [string, string]),
  ];
  return lines.map(([l, where]) => {
    const words = l.split(' ');
    const sub = words[0] === 'issue' ? `issue ${words[1]}` : words[0]!;
    return [sub, l.slice(sub.length).trim(), where];
  });
}

describe('the CLI reference (docs/pki.md, README.md)', () => {
  const subs = subcommands();
  const options = new Map(subs.map((s) => [s, helpOptions(help(['ca', ...s.split(' ')]))]));

  it('finds the subcommands and their options', () => {
    expect(subs).toEqual(expect.arrayContaining(['init', 'issue server', 'issue client', 'inspect', 'renew', 'rotate-intermediate']));
    expect([...options.get('init')!.keys()]).toContain('--name');
  });

  it('every documented command line names a subcommand and only options it has, with their defaults', () => {
    const problems: string[] = [];
    const lines = documentedLines();
    expect(lines.length).toBeGreaterThanOrEqual(10);
    for (const [sub, rest, where] of lines) {
      const opts = options.get(sub);
      if (opts === undefined) { problems.push(`${where}: no subcommand "ca ${sub}"`); continue; }
      for (const m of rest.matchAll(/(--[\w-]+)/g)) {
        if (!opts.has(m[1]!)) problems.push(`${where}: "ca ${sub}" has no option ${m[1]}`);
      }
      // `[--lifetime 24h]`: a literal value in brackets is the default (upper-case words are placeholders).
      for (const m of rest.matchAll(/\[(--[\w-]+) ([^\s\]]+)\]/g)) {
        const o = opts.get(m[1]!);
        const shown = m[2]!;
        if (o === undefined || /^[A-Z]+$/.test(shown)) continue;
        const choices = /\(choices: ([^)]*)\)/.exec(o.text.replace(/\s+/g, ' '))?.[1];
        const expected = choices !== undefined
          ? choices.replace(/, default: .*$/, '').replace(/"/g, '').split(', ').join('|') : o.defaultValue;
        const ok = choices !== undefined ? shown === expected
          : expected === shown || (expected !== null && Number(shown) !== 0 && Math.abs(Number(shown) - evalFraction(expected)) < 1e-3);
        if (!ok) problems.push(`${where}: "ca ${sub} [${m[1]} ${shown}]", but --help says ${choices !== undefined ? `choices ${expected}` : `default ${String(expected)}`}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every subcommand has a synopsis line in docs/pki.md', () => {
    const documented = new Set(documentedLines().filter(([, , w]) => w === 'docs/pki.md').map(([s]) => s));
    expect(subs.filter((s) => !documented.has(s))).toEqual([]);
  });

  it('every option of every subcommand is named in docs/pki.md', () => {
    const missing = [...options].flatMap(([sub, opts]) => [...opts.keys()]
      .filter((f) => f !== '--help' && !new RegExp(`${f}(?![\\w-])`).test(pkiDoc)).map((f) => `ca ${sub} ${f}`));
    expect(missing).toEqual([]);
  });
});

/** `2/3` → 0.667; a plain number as itself; anything else NaN. */
function evalFraction(text: string): number {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  return m !== null ? Number(m[1]) / Number(m[2]) : Number(text);
}
