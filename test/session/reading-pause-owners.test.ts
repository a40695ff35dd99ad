/**
 * A session link's reading is paused for three reasons of three owners: the `messages` stream's backpressure (full
 * at `maxBufferedMessages`), the order hold of a make-before-break successor (`maxHeld` messages waiting behind the
 * old connection's), and the user's own `pauseReading()` of `session.link.transport` (documented, to simulate a
 * stalled client). Each is a hold of its own: one owner's release never lifts another's pause. Before, both layers
 * of the session used the user's pauseReading()/resumeReading(): the stream's catch-up and the order release
 * resumed a link the user had paused, and the user's resume lifted the stream's backpressure and the order bound.
 * Real mutual TLS on 127.0.0.1; assertions on `isReading()`, `link.ordered` and the messages delivered (all of
 * them, in order), never on timing.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import type { Session, SessionLink, SessionMessage } from '../../src/session/session.js';
import type { SessionServer } from '../../src/session/session-server.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x61);
const { ring, serve, open } = sx;

const MAX = 4; // maxBufferedMessages: the stream's bound and the order hold's (maxHeld)
const range = (n: number): number[] => [...Array(n).keys()];

/** Polls (bounded) until `pred` holds. */
async function until(pred: () => boolean, what: string, tries = 600): Promise<void> {
  for (let i = 0; i < tries && !pred(); i++) await sleep(0.005);
  expect(pred(), what).toBe(true);
}

/** One connected session whose `messages` stream is full: MAX numbered notifications 0..MAX-1, reading paused. */
async function fullStream(): Promise<{ server: SessionServer; s: Session; link: SessionLink; it: AsyncIterator<SessionMessage> }> {
  const keyring = ring();
  const server = await serve(keyring);
  const s = open(keyring, server.port!, { maxBufferedMessages: MAX });
  await s.whenConnected();
  const link = s.link!;
  await until(() => server.connections.size === 1 && [...server.connections][0]!.ready, 'the server joined the session');
  for (let i = 0; i < MAX; i++) server.broadcast('n', i);
  await until(() => !link.transport!.isReading(), 'the full stream paused reading');
  return { server, s, link, it: s.messages[Symbol.asyncIterator]() };
}

async function take(it: AsyncIterator<SessionMessage>, n: number): Promise<number[]> {
  const got: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    expect(r.done).toBe(false);
    got.push(r.value.params as number);
  }
  return got;
}

describe("the messages stream's backpressure and the user's pause are separate", () => {
  it("the consumer catching up does not resume a link the user paused; the user's resume does", async () => {
    await fx.run(async () => {
      const { server, link, it } = await fullStream();
      link.transport!.pauseReading(); // the user's own pause, while the stream's is in force
      const got = await take(it, MAX / 2); // down to half: the stream lets go
      expect(link.transport!.isReading()).toBe(false); // the user's pause is still in force
      for (let i = MAX; i < MAX + 10; i++) server.broadcast('n', i);
      link.transport!.resumeReading();
      expect(link.transport!.isReading()).toBe(true);
      got.push(...await take(it, MAX / 2 + 10));
      expect(got).toEqual(range(MAX + 10)); // none lost, in order
    });
  }, 20_000);

  it("the user's pause and resume while the stream is full leave the stream's backpressure in force", async () => {
    await fx.run(async () => {
      const { server, link, it } = await fullStream();
      link.transport!.pauseReading();
      link.transport!.resumeReading(); // the user's stall is over, the consumer's is not
      expect(link.transport!.isReading()).toBe(false);
      for (let i = MAX; i < MAX + 10; i++) server.broadcast('n', i);
      const got = await take(it, MAX / 2);
      expect(link.transport!.isReading()).toBe(true); // down to half: reading resumes
      got.push(...await take(it, MAX / 2 + 10));
      expect(got).toEqual(range(MAX + 10));
    });
  }, 20_000);
});

// The notice comes as soon as the short certificate's connection is up (3 s lifetime, notice 2.9 s before notAfter).
const LIFETIME = 3;
const NOTICE = 2.9;

describe("a successor's order hold and the user's pause are separate", () => {
  /**
   * A move whose old connection the client reads late: the new connection holds the server's ticks behind the old
   * one's until it reads the old one's ["moved"], and pauses its reading once it holds MAX. `during(second)` runs
   * then; `old.resumeReading()` lets the old connection deliver and say ["moved"]; `after(second)` runs once the held
   * ticks are released. Returns every tick delivered (by an onNotify handler), after the last one arrived.
   */
  async function move(identity: string, during: (second: SessionLink) => void, after: (second: SessionLink) => void): Promise<{ ticks: number[]; last: number }> {
    const keyring = ring();
    const short = await sx.ca.issueClient(identity, { lifetime: LIFETIME });
    const renewed = await sx.ca.issueClient(identity, { lifetime: 600 });
    const server = await serve(keyring, { reconnectNotice: NOTICE });
    let current = short.options;
    const s = open(keyring, server.port!, { tls: () => current, maxBufferedMessages: MAX });
    const ticks: number[] = [];
    s.onNotify('tick', (n) => { ticks.push(n as number); });
    await s.whenConnected();
    const first = s.link!;
    await until(() => first.notice !== null, 'the RECONNECT notice came');
    first.transport!.pauseReading(); // the old connection is read late: its ["moved"] waits
    current = renewed.options;
    await until(() => s.link !== first, 'the session moved to its next connection');
    const second = s.link!;
    let n = 0;
    // Ticks in small batches until the new connection holds MAX of them and has paused its reading (bounded).
    for (let i = 0; i < 200 && second.transport!.isReading(); i++) {
      for (let j = 0; j < 2; j++) server.broadcast('tick', n++);
      await sleep(0.005);
    }
    expect(second.ordered).toBeGreaterThanOrEqual(MAX);
    expect(second.transport!.isReading()).toBe(false);
    during(second);
    first.transport!.resumeReading();
    await until(() => second.ordered === 0 && (first.moved || first.isLost), 'the old connection said moved, the held ticks went out');
    after(second);
    const last = n - 1;
    await until(() => ticks.at(-1) === last, 'every tick arrived');
    return { ticks, last };
  }

  it("the order release does not resume a successor the user paused; the user's resume does", async () => {
    await fx.run(async () => {
      const { ticks, last } = await move('player/61', (second) => {
        second.transport!.pauseReading(); // the user's own pause, while the order hold is in force
      }, (second) => {
        expect(second.transport!.isReading()).toBe(false); // the user's pause is still in force
        second.transport!.resumeReading();
        expect(second.transport!.isReading()).toBe(true);
      });
      expect(ticks).toEqual(range(last + 1)); // none lost, none twice, in order
    });
  }, 20_000);

  it("the user's pause and resume on a successor holding MAX leave the order bound in force", async () => {
    await fx.run(async () => {
      let heldAtResume = -1;
      const { ticks, last } = await move('player/62', (second) => {
        second.transport!.pauseReading();
        second.transport!.resumeReading();
        expect(second.transport!.isReading()).toBe(false); // still held behind the old connection
        heldAtResume = second.ordered;
      }, (second) => {
        expect(second.transport!.isReading()).toBe(true); // released: reading runs again
      });
      expect(heldAtResume).toBeGreaterThanOrEqual(MAX);
      expect(ticks).toEqual(range(last + 1));
    });
  }, 20_000);
});
