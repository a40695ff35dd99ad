/**
 * Clocks: where time comes from. The only module that reads the system's time (`performance.now`, `Date.now`);
 * everything else takes a {@link Clock}.
 *
 * A clock gives two readings in seconds: {@link Clock.time} (monotonic, for timers and timeouts) and
 * {@link Clock.epoch} (wall time since 1970, for expiries, certificate lifetimes and tokens). A
 * {@link VirtualClock} moves both together, so a test of "an hour later" is deterministic and instant.
 */

/** A source of time, in seconds. */
export interface Clock {
  /** Monotonic time in seconds (asyncio's `loop.time()`): never goes backwards; its zero is arbitrary. */
  time(): number;
  /** Wall-clock time in seconds since the Unix epoch (fractional). */
  epoch(): number;
  /**
   * When true, an event loop driven by this clock jumps time forward to its next timer whenever nothing is ready
   * (trio's `autojump_clock`). Only virtual clocks set it.
   */
  readonly autojump: boolean;
  /**
   * Moves the clock forward to `when` (monotonic seconds). Called by the loop when it autojumps; a real clock
   * ignores it. Never moves backwards.
   */
  jumpTo?(when: number): void;
}

/** The real clock: `performance.now()` for monotonic time, `Date.now()` for the epoch. */
export class SystemClock implements Clock {
  readonly autojump = false;
  /** Monotonic seconds. */
  time(): number {
    return performance.now() / 1000;
  }
  /** Epoch seconds. */
  epoch(): number {
    return Date.now() / 1000;
  }
}

/** The process-wide real clock. */
export const systemClock: Clock = new SystemClock();

/** Options of {@link VirtualClock}. */
export interface VirtualClockOptions {
  /** Jump to the next timer whenever the loop has nothing ready. Default false (time moves only by `advance`). */
  autojump?: boolean;
  /** Monotonic time to start at, seconds. Default 0. */
  start?: number;
  /** Epoch seconds that correspond to `start`. Default the real epoch when the clock is made. */
  epochStart?: number;
}

/** A clock that moves only when told to (`advance`) or, with `autojump`, when the loop is idle. */
export class VirtualClock implements Clock {
  readonly autojump: boolean;
  #now: number;
  readonly #epochOffset: number;
  readonly #listeners = new Set<() => void>();

  /**
   * @throws TypeError when `start` or `epochStart` is given but is not a number; RangeError when it is not finite
   *   (NaN would make every timer never due, a string would make `time()` a string).
   */
  constructor(options: VirtualClockOptions = {}) {
    this.autojump = options.autojump ?? false;
    this.#now = finiteSeconds(options.start ?? 0, 'start');
    this.#epochOffset = finiteSeconds(options.epochStart ?? Date.now() / 1000, 'epochStart') - this.#now;
  }

  /** Virtual monotonic seconds. */
  time(): number {
    return this.#now;
  }

  /** Virtual epoch seconds: moves with {@link time}. */
  epoch(): number {
    return this.#now + this.#epochOffset;
  }

  /**
   * Moves time forward by `seconds`.
   * @throws TypeError when `seconds` is not a number (from JavaScript: `advance('5')` made `time()` the string
   *   `'05'`); RangeError when it is negative (time can't go backwards, trio's `MockClock.jump`) or NaN.
   */
  advance(seconds: number): void {
    if (typeof seconds !== 'number') throw new TypeError(`advance() takes a number of seconds, got ${typeof seconds}`);
    if (Number.isNaN(seconds)) throw new RangeError('advance() takes a number of seconds, got NaN');
    if (!(seconds >= 0)) throw new RangeError("time can't go backwards");
    this.#now += seconds;
    if (seconds > 0) this.#notify();
  }

  /** Moves time forward to `when`; does nothing when `when` is not later than now (or is not a number). */
  jumpTo(when: number): void {
    if (typeof when === 'number' && when > this.#now) {
      this.#now = when;
      this.#notify();
    }
  }

  /**
   * Calls `listener` whenever time moves (an event loop uses it to wake up and fire the timers now due).
   * Returns a function that removes the listener.
   */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }
}

/** A VirtualClock option checked: a finite number of seconds. */
function finiteSeconds(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new TypeError(`VirtualClock ${name} must be a number of seconds, got ${typeof v}`);
  if (!Number.isFinite(v)) throw new RangeError(`VirtualClock ${name} must be a finite number of seconds, got ${v}`);
  return v;
}
