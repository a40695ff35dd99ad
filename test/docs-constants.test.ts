/**
 * The defaults the documents state beside a named constant agree with the constant: "`RECONNECT_NOTICE` = 30",
 * "`MAX_WRITE_BUFFER` = 8 MiB", "default 30 s, `EOF_TIMEOUT`", "(default 16, `MAX_REJECTIONS`)". A default changed
 * in src/constants.ts (or wherever the constant lives) without its documents fails here, naming the line.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const UNITS: Record<string, number> = {
  '': 1, s: 1, ms: 0.001, min: 60, h: 3600, d: 86400, days: 86400, B: 1, KiB: 1024, MiB: 1024 * 1024, '/s': 1,
};
const UNIT = '(s|ms|min|h|d|days|B|KiB|MiB|/s)';
const NUMBER = '([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+(?:\\.[0-9]+)?|Infinity)';
const NAME = '`([A-Z][A-Z0-9_]{3,})`';

/** Each pattern gives [name, number, unit] in that order of groups (`order`). */
const PATTERNS: { re: RegExp; order: [number, number, number] }[] = [
  // `RECONNECT_NOTICE` = 30, `MAX_WRITE_BUFFER` = 8 MiB, `MESSAGE_RATE` = 200/s
  { re: new RegExp(`${NAME} = ${NUMBER} ?${UNIT}?(?![\\w.])`, 'g'), order: [1, 2, 3] },
  // default 30 s, `EOF_TIMEOUT` / (default 16, `MAX_REJECTIONS` / default: 1,000,000 (`NONCE_CACHE_MAX_ENTRIES`)
  { re: new RegExp(`default:? ${NUMBER} ?${UNIT}?,? \\(?${NAME}`, 'g'), order: [3, 1, 2] },
];

export interface StatedDefault { file: string; name: string; stated: string; actual: unknown }

/** Every default stated beside a constant's name in the tracked Markdown files. */
export function statedDefaults(dir: string): StatedDefault[] {
  const files = execFileSync('git', ['ls-files', '*.md'], { cwd: dir, encoding: 'utf8' }).split('\n').filter((f) => f !== '');
  const out: StatedDefault[] = [];
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8').replace(/\s+/g, ' ');
    for (const { re, order } of PATTERNS) {
      for (const m of text.matchAll(re)) {
        const [name, num, unit] = order.map((i) => m[i] ?? '') as [string, string, string];
        out.push({ file, name, stated: `${num}${unit === '' ? '' : ` ${unit}`}`, actual: (api as Record<string, unknown>)[name] });
      }
    }
  }
  return out;
}

/** Whether a stated "30 s" / "8 MiB" / "1,000,000" / "Infinity" is the constant's value. */
export function agrees(d: StatedDefault): boolean {
  if (typeof d.actual !== 'number') return false;
  const [num, unit = ''] = d.stated.split(' ') as [string, string?];
  const stated = num === 'Infinity' ? Infinity : Number(num.replace(/,/g, '')) * (UNITS[unit] ?? NaN);
  return stated === d.actual || Math.abs(stated - d.actual) <= 1e-9 * Math.abs(d.actual);
}

describe('defaults stated in the documents', () => {
  it('the patterns find the stated defaults', () => {
    const found = statedDefaults(root);
    expect(found.length).toBeGreaterThanOrEqual(20);
    expect(agrees({ file: '', name: 'MAX_WRITE_BUFFER', stated: '8 MiB', actual: 8 * 1024 * 1024 })).toBe(true);
    expect(agrees({ file: '', name: 'RECONNECT_NOTICE', stated: '20 s', actual: 30 })).toBe(false);
  });

  it('every default stated beside a constant\'s name is that constant\'s value', () => {
    const wrong = statedDefaults(root).filter((d) => !agrees(d))
      .map((d) => `${d.file}: ${d.name} stated as ${d.stated}, is ${String(d.actual)}`);
    expect(wrong).toEqual([]);
  });
});
