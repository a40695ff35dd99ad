/**
 * StreamReader against CPython 3.13's asyncio.StreamReader, from a differential fuzzer (random feedData / feedEof /
 * setException / cancel programs with readline, readuntil, readexactly and read, run in both and their logs diffed:
 * results, error fields and messages, buffer state, transport pause/resume). Across 5,300 programs, one difference
 * showed up, and tulipwire keeps it on purpose. This test pins it.
 */
import { describe, expect, it } from 'vitest';
import { IncompleteReadError, InvalidStateError, sleep, StreamReader } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

describe('StreamReader vs asyncio (differential fuzzer)', () => {
  const lf = useLoop();

  it('a read woken after a second read started waiting does not drop the second read\'s waiter (asyncio does)', async () => {
    // CPython 3.13: A = readline() waits; B = readexactly(5) is scheduled; feed_data(b'x') wakes A's waiter. B runs
    // first and waits on a new waiter, then A resumes and its `_wait_for_data` `finally: self._waiter = None` drops
    // B's waiter. A waits again and gets b'x' at feed_eof(); B never wakes (still pending after feed_eof). That is a
    // lost wakeup. tulipwire clears only its own waiter, so B keeps the wait: A, which comes second, gets the "already
    // waiting" error, and B ends with IncompleteReadError at EOF.
    await lf.run(async () => {
      const r = new StreamReader({ limit: 8, loop: lf.loop });
      const a = lf.loop.createTask(() => r.readline());
      await sleep(0);
      const b = lf.loop.createTask(() => r.readexactly(5));
      r.feedData(Buffer.from('x'));
      for (let i = 0; i < 3; i++) await sleep(0);
      expect(a.done()).toBe(true);
      expect(a.exception()).toBeInstanceOf(InvalidStateError);
      expect((a.exception() as Error).message).toBe('readuntil() called while another coroutine is already waiting for incoming data');
      expect(b.done()).toBe(false);
      r.feedEof();
      for (let i = 0; i < 3; i++) await sleep(0);
      expect(b.done()).toBe(true);
      const e = b.exception() as IncompleteReadError;
      expect(e).toBeInstanceOf(IncompleteReadError);
      expect([e.partial.toString(), e.expected]).toEqual(['x', 5]);
      expect(r.bufferedSize).toBe(0);
    });
  });
});
