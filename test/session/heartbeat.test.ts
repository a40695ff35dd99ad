import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/loop/clock.js';
import { Heartbeat, HeartbeatTimer } from '../../src/session/heartbeat.js';
import { sleep } from '../../src/loop/index.js';
import { useLoop } from '../support/loop.js';

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

describe('HeartbeatTimer on the event loop (VirtualClock, autojump)', () => {
  const fx = useLoop();

  it('sends pings on schedule and times out a silent peer once, at the exact virtual time', async () => {
    await fx.run(async () => {
      const loop = fx.loop;
      const hb = new Heartbeat({ interval: 1, idleTimeout: 3.5, clock: loop.clock });
      const record: string[] = [];
      const done = loop.createFuture<void>();
      const timer = new HeartbeatTimer(hb, loop, {
        sendPing: (id) => record.push(`ping ${id} @${loop.time()}`),
        onTimeout: (e) => { record.push(`${e.code} @${loop.time()}`); done.setResult(undefined); },
      });
      timer.start();
      await done;
      await sleep(10);
      expect(record).toEqual(['ping 1 @1', 'ping 2 @2', 'ping 3 @3', 'TW_PEER_TIMEOUT @3.5']);
      expect(timer.running).toBe(false);
    });
  });

  it('a chatty peer is never timed out; PONGs give the RTT', async () => {
    await fx.run(async () => {
      const loop = fx.loop;
      const hb = new Heartbeat({ interval: 1, idleTimeout: 2, clock: loop.clock });
      let timeouts = 0;
      let pings = 0;
      const timer = new HeartbeatTimer(hb, loop, {
        sendPing: (id) => { pings += 1; loop.callLater(0.125, () => hb.pong(id)); },
        onTimeout: () => { timeouts += 1; },
      });
      timer.start();
      await sleep(30.05);
      expect(timeouts).toBe(0);
      expect(pings).toBe(30);
      expect(hb.rtt).toBe(0.125);
      timer.stop();
      await sleep(10);
      expect(pings).toBe(30);
    });
  });
});
