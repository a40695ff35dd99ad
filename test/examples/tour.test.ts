/**
 * The README's API tour: examples/tour/main.ts runs, prints what each part should, and every `// --- tour:` region of
 * it appears verbatim as a code block in README.md, so the README never shows code that does not run.
 */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { main } from '../../examples/tour/main.js';

async function regions(): Promise<Map<string, string>> {
  const src = await readFile(new URL('../../examples/tour/main.ts', import.meta.url), 'utf8');
  const out = new Map<string, string>();
  for (const m of src.matchAll(/^( *)\/\/ --- tour: (.+)\n([\s\S]*?)^ *\/\/ --- end$/gm)) {
    const indent = m[1]!.length;
    out.set(m[2]!, m[3]!.split('\n').map((l) => l.slice(indent)).join('\n').trimEnd());
  }
  return out;
}

describe('README API tour', () => {
  it('every tour region is in the README verbatim', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const found = await regions();
    expect([...found.keys()]).toEqual(['tasks', 'virtual clock', 'ca', 'protocol', 'rpc', 'tokens']);
    for (const [name, code] of found) expect(readme, `README block "${name}"`).toContain('```ts\n' + code + '\n```');
  });

  it('the tour runs and prints what the README says', async () => {
    const lines = await main({ print: () => {} });
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain('```text\n' + lines.join('\n') + '\n```');
    expect(lines).toEqual([
      'worker: cancelled, cleaning up',
      'worker cancelled: true',
      'timeout: TW_TIMEOUT',
      'task group: a,b',
      'virtual timers fired at 1, 60, 3600 s',
      'echo server: connection from tulip://game.example/player/42',
      'echo client got: hello over mTLS',
      'add(2, 3) = 5',
      'admin.reset: TW_FORBIDDEN',
      'token 3 parts, loads back {"user":42}',
    ]);
  });
});
