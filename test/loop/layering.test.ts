/**
 * Layering and no ambient time in src/loop: the loop imports nothing else in src/ but errors.ts and constants.ts;
 * Node's timers appear only in event-loop.ts and the system's time only in clock.ts.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dir = fileURLToPath(new URL('../../src/loop/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
const code = (f: string): string => readFileSync(dir + f, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');

describe('src/loop layering', () => {
  it('imports only ./*, ../errors.js and ../constants.js (and node: builtins)', () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const m of code(f).matchAll(/from\s+'([^']+)'/g)) {
        const spec = m[1]!;
        if (spec.startsWith('./') || spec === '../errors.js' || spec === '../constants.js' || spec.startsWith('node:')) continue;
        bad.push(`${f}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('setTimeout/setImmediate only in event-loop.ts; Date.now/performance.now only in clock.ts', () => {
    const timers = files.filter((f) => f !== 'event-loop.ts' && /\b(setTimeout|setImmediate|setInterval)\s*\(/.test(code(f)));
    const clocks = files.filter((f) => f !== 'clock.ts' && /\b(Date\.now|performance\.now)\s*\(/.test(code(f)));
    expect([timers, clocks]).toEqual([[], []]);
  });
});
