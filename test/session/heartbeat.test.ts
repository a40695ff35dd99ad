import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { Heartbeat, HeartbeatTimer, type HeartbeatScheduler } from '../../src/session/heartbeat.js';

describe('Heartbeat state machine', () => {
  it('pings every interval and times out a silent peer after idleTimeout', () => {
    const clock = new VirtualClock();
    const hb = new Heartbeat({ interval: 1, idleTimeout: 3, clock });
    expect(hb.poll()).toBeNull();
    expect(hb.nextDeadline()).toBe(1);
    clock.advance(1);
    expect(hb.poll()).toBe('ping');
    expect(hb.ping()).toBe(1);
    expect(hb.poll()).toBeNull();
    expect(hb.nextDeadline()).toBe(2);
    clock.advance(1); hb.ping();
    clock.advance(1); hb.ping();
    expect(hb.nextDeadline()).toBe(3); // the idle deadline comes before the next ping
    expect(hb.poll()).toBe('timeout');
    const err = hb.timeoutError();
    expect(err.code).toBe('TW_PEER_TIMEOUT');
    expect(err.message).toContain('idle timeout 3 s');
  });

  it('any message from the peer pushes the idle deadline', () => {
    const clock = new VirtualClock();
    const hb = new Heartbeat({ interval: 10, idleTimeout: 3, clock });
    clock.advance(2.5); hb.received();
    clock.advance(2.5);
    expect(hb.poll()).toBeNull();
    expect(hb.idleDeadline()).toBe(5.5);
    clock.advance(0.5);
    expect(hb.poll()).toBe('timeout');
  });

  it('measures RTT on its own clock and smooths it as RFC 6298', () => {
    const clock = new VirtualClock();
    const hb = new Heartbeat({ interval: 1, idleTimeout: 10, clock });
    expect(hb.rtt).toBeNull();
    const a = hb.ping();
    clock.advance(0.2);
    expect(hb.pong(a)).toBeCloseTo(0.2, 9);
    expect(hb.rtt).toBeCloseTo(0.2, 9);
    expect(hb.rttVar).toBeCloseTo(0.1, 9);
    const b = hb.ping();
    clock.advance(0.6);
    expect(hb.pong(b)).toBeCloseTo(0.6, 9);
    // RTTVAR = 3/4·0.1 + 1/4·|0.2-0.6| = 0.175; SRTT = 7/8·0.2 + 1/8·0.6 = 0.25
    expect(hb.rttVar).toBeCloseTo(0.175, 9);
    expect(hb.rtt).toBeCloseTo(0.25, 9);
    expect(hb.lastRtt).toBeCloseTo(0.6, 9);
  });

  it('ignores unknown or repeated PONG ids (but they still prove the peer alive)', () => {
    const clock = new VirtualClock();
    const hb = new Heartbeat({ interval: 1, idleTimeout: 2, clock });
    const id = hb.ping();
    clock.advance(1.5);
    expect(hb.pong(999)).toBeNull();
    expect(hb.rtt).toBeNull();
    expect(hb.silentFor()).toBe(0);
    expect(hb.pong(id)).toBeCloseTo(1.5, 9);
    expect(hb.pong(id)).toBeNull();
  });

  it('keeps at most maxOutstanding unanswered PINGs; a PONG clears older ones', () => {
    const clock = new VirtualClock();
    const hb = new Heartbeat({ interval: 1, idleTimeout: 100, clock, maxOutstanding: 3 });
    const ids = [hb.ping(), hb.ping(), hb.ping(), hb.ping(), hb.ping()];
    expect(hb.outstanding).toBe(3);
    expect(hb.pong(ids[0]!)).toBeNull(); // forgotten
    expect(hb.pong(ids[3]!)).toBe(0);
    expect(hb.outstanding).toBe(1);
  });

  it('start() resets a reused state machine for a new connection', () => {
    const clock = new VirtualClock();
    const hb = new Heartbeat({ interval: 1, idleTimeout: 2, clock });
    hb.ping();
    clock.advance(5);
    expect(hb.poll()).toBe('timeout');
    hb.start();
    expect(hb.poll()).toBeNull();
    expect(hb.outstanding).toBe(0);
    expect(hb.nextDeadline()).toBe(6);
  });

  it('rejects non-positive interval or idle timeout', () => {
    const clock = new VirtualClock();
    expect(() => new Heartbeat({ interval: 0, clock })).toThrow(RangeError);
    expect(() => new Heartbeat({ idleTimeout: -1, clock })).toThrow(RangeError);
  });
});

/**
 * A minimal timer wheel over a VirtualClock for the driver test, standing in only until the loop lands: it runs the
 * due callbacks in (when, seq) order, as the loop's timer heap does.
 */
class ManualScheduler implements HeartbeatScheduler {
  readonly clock = new VirtualClock();
  timers: { when: number; seq: number; cb: () => void; cancelled: boolean }[] = [];
  #seq = 0;
  time(): number { return this.clock.time(); }
  callAt(when: number, cb: () => void) {
    const t = { when, seq: this.#seq++, cb, cancelled: false };
    this.timers.push(t);
    return { cancel: () => { t.cancelled = true; } };
  }
  get armed(): number { return this.timers.filter((t) => !t.cancelled).length; }
  /** Jumps to each due timer in order until `until`. */
  runUntil(until: number): void {
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      this.timers.sort((a, b) => a.when - b.when || a.seq - b.seq);
      const t = this.timers[0];
      if (t === undefined || t.when > until) break;
      this.timers.shift();
      this.clock.jumpTo(t.when);
      t.cb();
    }
    this.clock.jumpTo(until);
  }
}

describe('HeartbeatTimer', () => {
  it('sends pings on schedule, re-arms one timer at a time, and times out a silent peer once', () => {
    const s = new ManualScheduler();
    const hb = new Heartbeat({ interval: 1, idleTimeout: 3.5, clock: s.clock });
    const record: string[] = [];
    const timer = new HeartbeatTimer(hb, s, {
      sendPing: (id) => record.push(`ping ${id} @${s.time()}`),
      onTimeout: (e) => record.push(`${e.code} @${s.time()}`),
    });
    timer.start();
    expect(s.armed).toBe(1);
    s.runUntil(10);
    expect(record).toEqual(['ping 1 @1', 'ping 2 @2', 'ping 3 @3', 'TW_PEER_TIMEOUT @3.5']);
    expect(timer.running).toBe(false);
    expect(s.armed).toBe(0);
  });

  it('a chatty peer is never timed out, and its messages arm no extra timers', () => {
    const s = new ManualScheduler();
    const hb = new Heartbeat({ interval: 1, idleTimeout: 2, clock: s.clock });
    let timeouts = 0;
    let pings = 0;
    const timer = new HeartbeatTimer(hb, s, { sendPing: () => { pings += 1; }, onTimeout: () => { timeouts += 1; } });
    timer.start();
    for (let i = 0; i < 100; i++) {
      s.runUntil(s.time() + 0.3);
      hb.received();
      expect(s.armed).toBe(1);
    }
    expect(timeouts).toBe(0);
    expect(pings).toBe(30);
    timer.stop();
    expect(s.armed).toBe(0);
  });
});
