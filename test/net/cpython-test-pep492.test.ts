/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_pep492.py cases about streams: `async for` over a StreamReader.
 * test_pep492's lock cases are in test/loop/cpython-test-locks.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { StreamReader } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('test_pep492.py', () => {
  const lf = useLoop();

  it('test_readline (test_pep492): for await over a StreamReader yields its lines, the last one without a newline', async () => {
    const stream = new StreamReader({ loop: lf.loop });
    stream.feedData(Buffer.from('line1\nline2\nline3'));
    stream.feedEof();
    const data = await lf.run(async () => {
      const out: string[] = [];
      for await (const line of stream) out.push(line.toString());
      return out;
    });
    expect(data).toEqual(['line1\n', 'line2\n', 'line3']);
  });
});
