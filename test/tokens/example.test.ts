/** The tokens example runs, and the Python it prints verifies every token in real itsdangerous. */
import { describe, expect, it } from 'vitest';
import { main } from '../../examples/tokens/main.js';
import { runPython } from '../support/py.js';

describe('examples/tokens', () => {
  it('prints tokens that Debian\'s python3-itsdangerous verifies with the printed snippet', async () => {
    const lines: string[] = [];
    const { tokens, python } = await main({ now: 1_764_580_000, print: (l) => lines.push(l) });
    expect(Object.keys(tokens)).toEqual(['signer', 'timestamp', 'serializer', 'urlsafe', 'timed', 'ticket', 'refresh']);
    expect(lines.join('\n')).toContain(tokens.refresh);
    expect(tokens.signer).toBe('my string.' + tokens.signer.split('.')[1]);
    const { stdout } = await runPython(python);
    expect(stdout.trim().split('\n')).toEqual(Object.keys(tokens).map((n) => `ok ${n}`));
  });

  it('with the real clock too', async () => {
    const { python } = await main({ print: () => {} });
    const { stdout } = await runPython(python);
    expect(stdout).toContain('ok refresh');
  });
});
