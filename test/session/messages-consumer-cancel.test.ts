/**
 * `session.messages` with a consumer whose task is cancelled while it waits: its waiter is cancelled at once, but it
 * leaves the stream's list of waiters only when the task runs again. A message that arrives in between must go to
 * another consumer that waits, not be handed to the cancelled waiter (which threw InvalidStateError out of the
 * delivery, reported as "messageReceived raised", and left the other consumer asleep until some later message).
 * Real mutual TLS on 127.0.0.1: an onNotify handler cancels the first consumer while the next notification, written
 * in the same iteration by the server, is delivered right after it.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import type { Task } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x58);

describe('a messages consumer cancelled while it waits', () => {
  it('the message that arrives before its task ran again goes to the other waiting consumer', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      const s = sx.open(keyring, server.port!);
      await s.whenConnected();
      const first = s.messages[Symbol.asyncIterator]();
      const second = s.messages[Symbol.asyncIterator]();
      const c1: Task<unknown> = fx.loop.createTask(async () => first.next());
      const c2: Task<unknown> = fx.loop.createTask(async () => second.next());
      s.onNotify('stop', () => { c1.cancel(); });
      await sleep(0.05); // both wait now
      const conn = [...server.connections][0]!;
      conn.notify('stop', null);
      conn.notify('state', 7);
      const got = await Promise.race([c2, sleep(3).then(() => 'still waiting after 3 s')]);
      expect(got).toMatchObject({ done: false, value: { method: 'state', params: 7 } });
      await Promise.allSettled([c1]);
      expect(c1.cancelled()).toBe(true);
      expect(fx.take().map((r) => `${r.message}: ${String(r.exception)}`)).toEqual([]);
    });
  }, 20_000);

  it('woken for a message, then cancelled before it took it: the wake-up passes to the other waiting consumer', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      const s = sx.open(keyring, server.port!);
      await s.whenConnected();
      const first = s.messages[Symbol.asyncIterator]();
      const second = s.messages[Symbol.asyncIterator]();
      const c1: Task<unknown> = fx.loop.createTask(async () => first.next());
      await sleep(0.05); // c1 waits first: the next message wakes it
      const c2: Task<unknown> = fx.loop.createTask(async () => second.next());
      s.onNotify('stop', () => { c1.cancel(); });
      await sleep(0.05);
      const conn = [...server.connections][0]!;
      conn.notify('state', 7); // wakes c1 ...
      conn.notify('stop', null); // ... which is cancelled before it runs again
      const got = await Promise.race([c2, sleep(3).then(() => 'still waiting after 3 s')]);
      expect(got).toMatchObject({ done: false, value: { method: 'state', params: 7 } });
      await Promise.allSettled([c1]);
      expect(c1.cancelled()).toBe(true);
    });
  }, 20_000);
});
