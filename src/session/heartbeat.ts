/**
 * Heartbeats and dead-peer detection, as a pure state machine ({@link Heartbeat}) plus a small driver that arms one
 * loop timer at a time ({@link HeartbeatTimer}).
 *
 * Each side sends a signed PING `{id}` every `interval` seconds and answers each PING with a PONG echoing the id.
 * Any message from the peer (not only a PONG) proves it alive; a peer silent for `idleTimeout` or longer is
 * dropped with PeerTimeout. Round-trip time is measured on our own clock (the PING's send time is kept locally,
 * never trusted from the peer) and smoothed as TCP does (RFC 6298 §2: SRTT and RTTVAR with gains 1/8 and 1/4).
 */

import type { Clock } from '../loop/clock.js';
import { PeerTimeout } from '../errors.js';
import { HEARTBEAT_INTERVAL, IDLE_TIMEOUT } from '../constants.js';

/** What {@link Heartbeat.poll} says to do now. */
export type HeartbeatAction = 'ping' | 'timeout' | null;

/** Options of {@link Heartbeat}. */
export interface HeartbeatOptions {
  /** Seconds between our PINGs. Default {@link HEARTBEAT_INTERVAL}. */
  interval?: number;
  /** Seconds of silence from the peer after which it is dropped. Default {@link IDLE_TIMEOUT}. */
  idleTimeout?: number;
  /** Time source (the loop's clock). */
  clock: Clock;
  /** PINGs awaiting their PONG that are remembered for RTT; older ones are forgotten. Default 8. */
  maxOutstanding?: number;
}

/** RFC 6298 gains: SRTT ← (1-α)·SRTT + α·R, RTTVAR ← (1-β)·RTTVAR + β·|SRTT-R|. */
const ALPHA = 1 / 8;
const BETA = 1 / 4;

/**
 * The heartbeat state of one connection. Times come from `clock.time()`. Call {@link start} when the connection
 * is made, {@link received} on every message from the peer, {@link ping} when a PING is sent and {@link pong} on
 * each PONG; {@link poll} at (or after) {@link nextDeadline} says whether to ping or drop the peer.
 */
export class Heartbeat {
  /** Seconds between PINGs. */
  readonly interval: number;
  /** Seconds of silence tolerated. */
  readonly idleTimeout: number;
  readonly #clock: Clock;
  readonly #maxOutstanding: number;
  /** PING id → send time; insertion order is send order, so the first key is the oldest. */
  readonly #outstanding = new Map<number, number>();
  #nextId = 1;
  #lastReceived: number;
  #nextPingAt: number;
  #srtt: number | null = null;
  #rttvar: number | null = null;
  #lastRtt: number | null = null;

  /** @throws RangeError when interval or idleTimeout is not positive. */
  constructor(options: HeartbeatOptions) {
    this.interval = options.interval ?? HEARTBEAT_INTERVAL;
    this.idleTimeout = options.idleTimeout ?? IDLE_TIMEOUT;
    this.#clock = options.clock;
    this.#maxOutstanding = options.maxOutstanding ?? 8;
    if (!(this.interval > 0)) throw new RangeError(`heartbeat interval must be > 0 seconds, got ${this.interval}`);
    if (!(this.idleTimeout > 0)) throw new RangeError(`idle timeout must be > 0 seconds, got ${this.idleTimeout}`);
    const now = this.#clock.time();
    this.#lastReceived = now;
    this.#nextPingAt = now + this.interval;
  }

  /** Restarts the clocks as if the peer had just spoken and a PING were just due in `interval` (a new connection). */
  start(): void {
    const now = this.#clock.time();
    this.#lastReceived = now;
    this.#nextPingAt = now + this.interval;
    this.#outstanding.clear();
  }

  /** The peer sent something: it is alive. */
  received(): void {
    this.#lastReceived = this.#clock.time();
  }

  /** Records a PING sent now and returns its id (to put in the PING); the next one is due `interval` from now. */
  ping(): number {
    const now = this.#clock.time();
    const id = this.#nextId;
    this.#nextId = id >= 0x7fffffff ? 1 : id + 1;
    this.#outstanding.set(id, now);
    while (this.#outstanding.size > this.#maxOutstanding) {
      const oldest = this.#outstanding.keys().next().value as number;
      this.#outstanding.delete(oldest);
    }
    this.#nextPingAt = now + this.interval;
    return id;
  }

  /**
   * A PONG for PING `id` arrived: returns the round-trip sample in seconds and updates {@link rtt}, or null when
   * the id is unknown (forgotten, answered twice, or made up by the peer). Counts as {@link received} either way.
   */
  pong(id: number): number | null {
    this.received();
    const sentAt = this.#outstanding.get(id);
    if (sentAt === undefined) return null;
    // Every PING sent before this one and still unanswered will not be answered out of order usefully; drop them
    // with it so a lost PONG does not pin memory.
    for (const key of this.#outstanding.keys()) {
      this.#outstanding.delete(key);
      if (key === id) break;
    }
    const sample = Math.max(0, this.#clock.time() - sentAt);
    this.#lastRtt = sample;
    if (this.#srtt === null || this.#rttvar === null) {
      this.#srtt = sample;
      this.#rttvar = sample / 2;
    } else {
      this.#rttvar = (1 - BETA) * this.#rttvar + BETA * Math.abs(this.#srtt - sample);
      this.#srtt = (1 - ALPHA) * this.#srtt + ALPHA * sample;
    }
    return sample;
  }

  /** Smoothed round-trip time, seconds (RFC 6298 SRTT); null until the first PONG. */
  get rtt(): number | null {
    return this.#srtt;
  }

  /** Round-trip time variation, seconds (RFC 6298 RTTVAR); null until the first PONG. */
  get rttVar(): number | null {
    return this.#rttvar;
  }

  /** The most recent round-trip sample, seconds; null until the first PONG. */
  get lastRtt(): number | null {
    return this.#lastRtt;
  }

  /** PINGs sent and not answered yet (bounded by `maxOutstanding`). */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  /** Seconds since the peer last sent anything. */
  silentFor(): number {
    return this.#clock.time() - this.#lastReceived;
  }

  /** When the peer is dropped unless it speaks first (loop time, seconds). */
  idleDeadline(): number {
    return this.#lastReceived + this.idleTimeout;
  }

  /** The earliest loop time at which {@link poll} may have something to do. */
  nextDeadline(): number {
    return Math.min(this.#nextPingAt, this.idleDeadline());
  }

  /**
   * What to do now: 'timeout' once the peer has been silent for more than `idleTimeout` (checked first), 'ping'
   * when a PING is due, otherwise null.
   */
  poll(): HeartbeatAction {
    const now = this.#clock.time();
    if (now >= this.idleDeadline()) return 'timeout';
    if (now >= this.#nextPingAt) return 'ping';
    return null;
  }

  /** The PeerTimeout to close the connection with, naming the numbers. */
  timeoutError(): PeerTimeout {
    return new PeerTimeout(`peer silent for ${this.silentFor().toFixed(3)} s, idle timeout ${this.idleTimeout} s`);
  }
}

/**
 * A timeout verdict reached more than this long after the idle deadline (seconds) means the loop itself was stalled
 * (a long synchronous callback, a GC pause, a suspended process): the peer's messages of that time may still sit
 * unread in the socket, since a stalled loop runs its due timers before it reads again. Normal timer lateness under
 * load is a few milliseconds.
 */
const STALL_SLACK = 0.05;
/** After such a late verdict, the peer is checked again this much later (seconds), once its waiting bytes were read. */
const STALL_RECHECK = 0.05;

/** The part of an event loop the heartbeat driver needs (structural, so this module does not import the loop). */
export interface HeartbeatScheduler {
  /** The loop's monotonic time, seconds. */
  time(): number;
  /** Calls `cb` at loop time `when`; the handle cancels it. */
  callAt(when: number, cb: () => void): { cancel(): void };
}

/** Options of {@link HeartbeatTimer}. */
export interface HeartbeatTimerOptions {
  /** Sends a PING carrying `id`. */
  sendPing(id: number): void;
  /** Called once when the peer timed out; the timer is stopped already. */
  onTimeout(error: PeerTimeout): void;
}

/**
 * Drives a {@link Heartbeat} with one loop timer at a time. Messages from the peer only move a timestamp; the timer
 * fires at the old deadline, finds nothing due and re-arms for the new one, so a busy connection arms at most one
 * timer per `interval` instead of one per message.
 *
 * A timeout found late (the loop was stalled past the idle deadline: a long tick, a GC pause, a suspended VM) is
 * not acted on at once: the peer kept talking meanwhile, but its messages are still in the socket, unread, because
 * the stalled loop runs the timers now due before it reads. The peer is checked again a moment later, after that
 * read, and dropped then only if it is still silent (once per deadline: a dead peer is dropped at most ~0.05 s
 * later). Without this one stall longer than `idleTimeout` dropped every peer of a game server at once.
 */
export class HeartbeatTimer {
  /** The state machine being driven. */
  readonly heartbeat: Heartbeat;
  readonly #scheduler: HeartbeatScheduler;
  readonly #options: HeartbeatTimerOptions;
  #handle: { cancel(): void } | null = null;
  #stopped = true;
  // The idle deadline whose late timeout verdict was put off once already (see the class doc), or null.
  #recheckedFor: number | null = null;

  constructor(heartbeat: Heartbeat, scheduler: HeartbeatScheduler, options: HeartbeatTimerOptions) {
    this.heartbeat = heartbeat;
    this.#scheduler = scheduler;
    this.#options = options;
  }

  /** Starts (or restarts) the heartbeat for a fresh connection. */
  start(): void {
    this.stop();
    this.#stopped = false;
    this.#recheckedFor = null;
    this.heartbeat.start();
    this.#arm();
  }

  /** Stops the timer; nothing fires after this. */
  stop(): void {
    this.#stopped = true;
    this.#handle?.cancel();
    this.#handle = null;
  }

  /** True between {@link start} and {@link stop} (or a timeout). */
  get running(): boolean {
    return !this.#stopped;
  }

  #arm(): void {
    this.#handle = this.#scheduler.callAt(this.heartbeat.nextDeadline(), () => this.#fire());
  }

  #fire(): void {
    this.#handle = null;
    if (this.#stopped) return;
    const action = this.heartbeat.poll();
    if (action === 'timeout') {
      const now = this.#scheduler.time();
      const deadline = this.heartbeat.idleDeadline();
      if (now - deadline > STALL_SLACK && this.#recheckedFor !== deadline) {
        this.#recheckedFor = deadline;
        this.#handle = this.#scheduler.callAt(now + STALL_RECHECK, () => this.#fire());
        return;
      }
      const err = this.heartbeat.timeoutError();
      this.stop();
      this.#options.onTimeout(err);
      return;
    }
    if (action === 'ping') this.#options.sendPing(this.heartbeat.ping());
    if (!this.#stopped) this.#arm();
  }
}
