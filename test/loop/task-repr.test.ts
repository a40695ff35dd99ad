/**
 * String(task) since it shows `wait_for=` and `result=`/`exception=` (asyncio's repr): it never throws, whatever the
 * value it shows, and it stays one bounded line, as asyncio's `reprlib.repr` keeps it (30 characters, 6 levels). A
 * repr that throws took the whole report with it in the default exception handler (nothing logged); one that shows
 * a megabyte result logged a megabyte; a chain of tasks each waiting on the next formatted every one of them,
 * quadratic output at loop close and a RangeError past a few thousand.
 */
import { describe, expect, it } from 'vitest';
import { EventLoop, VirtualClock } from '../../src/index.js';
import type { Future, Task } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

/** A loop with the default exception handler, logging into an array. */
function loggingLoop(): { loop: EventLoop; errors: string[] } {
  const errors: string[] = [];
  const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }), logger: { error: (m) => errors.push(m), warn: () => undefined } });
  return { loop, errors };
}

describe('String(task) never throws', () => {
  const fx = useLoop();

  it('a task whose result has no toString (a null-prototype object) formats, and a report naming it is logged', async () => {
    const t = fx.loop.createTask(async () => Object.create(null) as object, { name: 'dict' });
    await fx.loop.runUntilComplete(t);
    expect(() => String(t)).not.toThrow();
    expect(String(t)).toMatch(/^<Task finished name=dict result=<unprintable .*>>$/);

    const { loop, errors } = loggingLoop();
    loop.callExceptionHandler({ message: 'look at this task', task: t });
    loop.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('look at this task');
    expect(errors[0]).toContain('task: <Task finished name=dict result=');
  });

  it('a task whose exception has a throwing toString, and one waiting on a Future whose result does', async () => {
    const hostile = { toString(): string { throw new Error('no string for you'); } };
    const t = fx.loop.createTask(async () => { throw hostile; }, { name: 'hostile' });
    await fx.loop.runUntilComplete(t).catch(() => undefined);
    expect(String(t)).toMatch(/^<Task finished name=hostile exception=<unprintable .*>>$/);

    const f = fx.loop.createFuture<unknown>();
    const w = fx.loop.createTask(async () => f, { name: 'waiter' });
    await fx.runBriefly();
    f.setResult(hostile); // finished, the waiter not resumed yet: it still names the Future it waits for
    expect(String(w)).toMatch(/^<Task pending name=waiter wait_for=<Future finished result=<unprintable .*>>>$/);
    await fx.loop.runUntilComplete(w);
  });
});

describe('String(task) is bounded', () => {
  const fx = useLoop();

  it('a megabyte result is shown cut (start ... end), for a Task and for a Future', async () => {
    const big = 'a'.repeat(1_000_000) + 'END';
    const t = fx.loop.createTask(async () => big, { name: 'big' });
    await fx.loop.runUntilComplete(t);
    const s = String(t);
    expect(s.length).toBeLessThan(300);
    expect(s).toMatch(/^<Task finished name=big result=a+\.\.\.a*END>$/);
    const f = fx.loop.createFuture<string>();
    f.setResult(big);
    expect(String(f).length).toBeLessThan(300);
    expect(String(f)).toMatch(/^<Future finished result=a+\.\.\.a*END>$/);
  });

  it('a chain of 3000 tasks each waiting on the next: each formats, a few levels deep, and loop close logs every one of them', async () => {
    const { loop, errors } = loggingLoop();
    const depth = 3000;
    const tasks: Task<void>[] = [];
    await loop.runUntilComplete(async () => {
      let prev: Future<void> = loop.createFuture<void>();
      for (let i = 0; i < depth; i++) {
        const awaited = prev;
        const t = loop.createTask(async () => { await awaited; }, { name: `link-${i}` });
        tasks.push(t);
        prev = t;
      }
      for (let i = 0; i < 3; i++) await new Promise<void>((r) => loop.callSoon(r));
    });
    const last = String(tasks[depth - 1]);
    expect(last).toMatch(/^<Task pending name=link-2999 wait_for=<Task pending name=link-2998 wait_for=/);
    expect(last.length).toBeLessThan(1000);
    loop.close(); // "Task was destroyed but it is pending!" for each
    expect(errors).toHaveLength(depth);
    const total = errors.reduce((n, e) => n + e.length, 0);
    expect(total).toBeLessThan(depth * 1000);
  });
});
