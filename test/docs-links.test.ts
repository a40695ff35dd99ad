/**
 * The documentation's references stay true: every relative link in every tracked *.md file points at a file or
 * directory that exists and, with a `#fragment`, at a heading of the target (GitHub's anchor rule), and every file
 * path a document names (`test/wire/remote-cancel.test.ts`, `src/constants.ts`) exists, and so does every error
 * code a document names (`TW_…`). Test files get renamed and codes change; a doc that cites the old name sends the
 * reader nowhere.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The tracked Markdown files (git's list, so node_modules and scratch copies are left out). */
function markdownFiles(dir: string): string[] {
  const out = execFileSync('git', ['ls-files', '*.md'], { cwd: dir, encoding: 'utf8' });
  return out.split('\n').filter((f) => f !== '' && existsSync(join(dir, f)));
}

/** Text outside fenced code blocks and inline code spans, where a `[x](y)` is a link. */
function prose(md: string): string {
  return md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '``');
}

/** GitHub's heading anchors of a Markdown file: lowercase, punctuation dropped, spaces to '-', repeats numbered. */
export function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const body = md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const m of body.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const text = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')   // a link in a heading keeps its text
      .replace(/<[^>]+>/g, '');
    const base = text.toLowerCase().trim().replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of md.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(m[1]!);
  return out;
}

export interface BrokenLink { file: string; link: string; why: string }

/** Every relative link of the tracked Markdown files under `dir` that does not resolve. */
export function brokenLinks(dir: string): BrokenLink[] {
  const broken: BrokenLink[] = [];
  const cache = new Map<string, Set<string>>();
  const anchorsOf = (path: string): Set<string> => {
    let a = cache.get(path);
    if (a === undefined) cache.set(path, a = anchors(readFileSync(path, 'utf8')));
    return a;
  };
  for (const file of markdownFiles(dir)) {
    const abs = join(dir, file);
    const text = prose(readFileSync(abs, 'utf8'));
    const targets = [
      ...[...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
      ...[...text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1]!),
    ];
    for (const link of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue;          // http:, https:, mailto:
      const [pathPart, fragment] = link.split('#', 2) as [string, string | undefined];
      const target = pathPart === '' ? abs : resolve(dirname(abs), decodeURIComponent(pathPart));
      if (relative(dir, target).startsWith('..')) { broken.push({ file, link, why: 'leaves the repository' }); continue; }
      if (!existsSync(target)) { broken.push({ file, link, why: 'no such file' }); continue; }
      if (fragment === undefined || fragment === '') continue;
      if (statSync(target).isDirectory() || !target.endsWith('.md')) {
        broken.push({ file, link, why: 'a fragment on a file that is not Markdown' });
        continue;
      }
      if (!anchorsOf(target).has(decodeURIComponent(fragment).toLowerCase())) {
        broken.push({ file, link, why: `no heading with anchor #${fragment} in ${relative(dir, target)}` });
      }
    }
  }
  return broken;
}

/**
 * Every repository path a tracked Markdown file names, in code spans or prose (`test/wire/remote-cancel.test.ts`,
 * `src/wire/message-protocol.ts`, `bench/signed-worker.ts`), that does not exist. Only paths with a file extension
 * under the repository's own top-level directories count; what a run writes (`bench/results/`) is left out.
 */
export function missingRepoPaths(dir: string): BrokenLink[] {
  const missing: BrokenLink[] = [];
  const path = /(?<![\w./<-])((?:src|test|bench|examples|docs|native|\.ci)\/[\w./-]*?\.(?:test\.)?(?:ts|py|mjs|js|md|sh|gyp|cc|c|h))(?![\w/<-])/g;
  for (const file of markdownFiles(dir)) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(path)) {
      const p = m[1]!;
      if (p.startsWith('bench/results/')) continue;
      if (!existsSync(join(dir, p))) missing.push({ file, link: p, why: p.startsWith('test/') ? 'no such test file' : 'no such file' });
    }
  }
  return missing;
}

/**
 * Every error code a tracked Markdown file names (`TW_…`) that no exported error class has, and every table row
 * `| \`TW_X\` | \`Class\` |` whose class is not the one with that code. `TW_CODE` (the placeholder of the CLI's
 * message format) and the bench's `TW_BENCH_…` environment variables are not codes.
 */
export function wrongErrorCodes(dir: string): BrokenLink[] {
  const classOf = new Map<string, string>();
  for (const [name, v] of Object.entries(api)) {
    const code = typeof v === 'function' ? (v as { code?: unknown }).code : undefined;
    if (typeof code === 'string') classOf.set(code, name);
  }
  const wrong: BrokenLink[] = [];
  for (const file of markdownFiles(dir)) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/\b(TW_[A-Z_]*[A-Z])\b/g)) {
      const code = m[1]!;
      if (code === 'TW_CODE' || code.startsWith('TW_BENCH_') || classOf.has(code)) continue;
      wrong.push({ file, link: code, why: 'no error class has this code' });
    }
    for (const m of text.matchAll(/^\| `(TW_[A-Z_]+)` \| `(\w+)` \|/gm)) {
      if (classOf.has(m[1]!) && classOf.get(m[1]!) !== m[2]) {
        wrong.push({ file, link: `${m[1]} | ${m[2]}`, why: `the class with code ${m[1]} is ${classOf.get(m[1]!)}` });
      }
    }
  }
  return wrong;
}

/** Every `npm run <script>` a tracked Markdown file names that package.json has no script for. */
export function missingScripts(dir: string): BrokenLink[] {
  const scripts = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
  const missing: BrokenLink[] = [];
  for (const file of markdownFiles(dir)) {
    for (const m of readFileSync(join(dir, file), 'utf8').matchAll(/\bnpm run ([\w:-]+)/g)) {
      if (!(m[1]! in scripts)) missing.push({ file, link: `npm run ${m[1]}`, why: 'no such script in package.json' });
    }
  }
  return missing;
}

describe('documentation links', () => {
  it('the anchor rule is GitHub\'s', () => {
    const a = anchors('# Error codes\n## 6. Verification\n## How a turn sits in libuv\'s phases\n## A `code` span\n'
      + '## Repeat\n## Repeat\n```sh\n# not a heading\n```\n');
    expect([...a]).toEqual(['error-codes', '6-verification', 'how-a-turn-sits-in-libuvs-phases', 'a-code-span',
      'repeat', 'repeat-1']);
  });

  it('every relative link in every *.md resolves to a file and, with a #fragment, to a heading', () => {
    expect(brokenLinks(root)).toEqual([]);
  });

  it('every file a document names (test files, sources, benches) exists', () => {
    expect(missingRepoPaths(root)).toEqual([]);
  });

  it('every npm script a document runs exists', () => {
    expect(missingScripts(root)).toEqual([]);
  });

  it('every error code a document names exists, and every code | class row pairs them right', () => {
    expect(wrongErrorCodes(root)).toEqual([]);
  });
});
