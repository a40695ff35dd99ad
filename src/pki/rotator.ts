/**
 * Rotation instead of revocation: the "cron job every 12 hours" of Ronacher's talk "SSL, CAs and keeping your stuff
 * safe" (PyGrunn 2014), built in. A {@link CertRotator} renews a leaf at {@link RENEW_AT_FRACTION} (2/3) of its
 * lifetime on the tulipwire event loop, retries with exponential backoff, reports every failure loudly through the
 * loop's exception handler (with the time left), and hands each new certificate to its subscribers: a server swaps
 * it in with {@link reloadServer} (`setSecureContext`, open connections keep theirs); a client uses
 * {@link CertRotator.current} for its next connection.
 *
 * pki does not depend on the event loop (only on its Clock type): the rotator takes any object with the few loop methods it uses.
 */
import { CERT_WARN_AT_FRACTION, RENEW_AT_FRACTION, RENEW_RETRY_MAX, RENEW_RETRY_MIN } from '../constants.js';
import { CAError, TulipError } from '../errors.js';
import type { Clock } from '../loop/clock.js';
import type { IssuedCertificate } from './ca.js';
import type { SecureContextTarget, ServerTlsBuildOptions } from './tls-options.js';
import { reloadServer } from './tls-options.js';

/** The part of tulipwire's `EventLoop` the rotator uses (seconds everywhere). */
export interface RotatorLoop {
  /** The loop's clock; `epoch()` is compared with certificate lifetimes. */
  readonly clock: Clock;
  /** Schedules `cb` after `delay` seconds. */
  callLater(delay: number, cb: () => void): { cancel(): void };
  /** Schedules `cb` on the next iteration (used to bring promise results back onto the loop). */
  callSoon(cb: () => void): unknown;
  /** True once the loop was closed (a renewal finishing after that just ends). */
  isClosed(): boolean;
  /** Reports a problem (the loop's exception handler). */
  callExceptionHandler(context: { message: string; exception?: unknown; [key: string]: unknown }): void;
}

/** Options of {@link CertRotator}. Times are seconds. */
export interface CertRotatorOptions {
  /** The event loop to run on. */
  loop: RotatorLoop;
  /** The certificate in use now. */
  initial: IssuedCertificate;
  /** Issues the replacement for `current`, e.g. `(c) => ca.renew(c)`. A rejection is retried with backoff. */
  renew: (current: IssuedCertificate) => Promise<IssuedCertificate>;
  /** Renew at this fraction of the lifetime (from issue time). Default {@link RENEW_AT_FRACTION} (2/3). */
  renewAtFraction?: number;
  /** First retry delay, seconds; doubles per failure. Default {@link RENEW_RETRY_MIN}. */
  retryMin?: number;
  /** Longest retry delay, seconds. Default {@link RENEW_RETRY_MAX}. */
  retryMax?: number;
  /** Past this fraction of the lifetime, failures are reported as urgent. Default {@link CERT_WARN_AT_FRACTION}. */
  warnAtFraction?: number;
  /** Called with each new certificate (after {@link CertRotator.current} has moved to it). */
  onRenewed?: (issued: IssuedCertificate, previous: IssuedCertificate) => void;
}

/** The states of a rotator. */
export type RotatorState = 'idle' | 'waiting' | 'renewing' | 'stopped';

/**
 * The epoch second `issued` was made at: as the CA recorded it, else (credentials read from disk) its notAfter minus
 * the lifetime asked for. Not notAfter − lifetime always: notAfter is rounded up to a whole second, so that would put
 * the issue up to a second late and every renewal point with it (a 3 s certificate renewed every 3 s, not every 2).
 */
function issuedAt(issued: IssuedCertificate): number {
  return issued.issuedAt ?? issued.cert.notAfter - issued.lifetime;
}

function describeDuration(seconds: number): string {
  const a = Math.abs(seconds);
  return a < 120 ? `${a.toFixed(1)} s` : a < 7200 ? `${(a / 60).toFixed(1)} min` : `${(a / 3600).toFixed(1)} h`;
}

/** Renews one leaf certificate before it expires, on the event loop. See the module doc. */
export class CertRotator {
  readonly #loop: RotatorLoop;
  readonly #renew: (current: IssuedCertificate) => Promise<IssuedCertificate>;
  readonly #fraction: number;
  readonly #retryMin: number;
  readonly #retryMax: number;
  readonly #warnFraction: number;
  readonly #subscribers = new Set<(issued: IssuedCertificate, previous: IssuedCertificate) => void>();
  #current: IssuedCertificate;
  #state: RotatorState = 'idle';
  #timer: { cancel(): void } | null = null;
  /** Consecutive failed attempts since the last success. */
  #failures = 0;
  /** Epoch second of the next scheduled attempt, or null. */
  #nextAt: number | null = null;
  #renewals = 0;
  /** True once {@link start} ran: only then are renewals scheduled and failures retried. */
  #started = false;
  /** The attempt in flight, shared by concurrent {@link renewNow} calls. */
  #inflight: Promise<IssuedCertificate> | null = null;

  /** @throws CAError when a fraction is outside (0, 1) or a retry delay is not positive. */
  constructor(options: CertRotatorOptions) {
    this.#loop = options.loop;
    this.#renew = options.renew;
    this.#current = options.initial;
    this.#fraction = options.renewAtFraction ?? RENEW_AT_FRACTION;
    this.#retryMin = options.retryMin ?? RENEW_RETRY_MIN;
    this.#retryMax = options.retryMax ?? RENEW_RETRY_MAX;
    this.#warnFraction = options.warnAtFraction ?? CERT_WARN_AT_FRACTION;
    for (const [name, f] of [['renewAtFraction', this.#fraction], ['warnAtFraction', this.#warnFraction]] as const) {
      if (!(f > 0 && f < 1)) throw new CAError(`${name} must be between 0 and 1, got ${f}`);
    }
    if (!(this.#retryMin > 0 && this.#retryMax >= this.#retryMin)) throw new CAError('retryMin must be positive and retryMax ≥ retryMin');
    if (options.onRenewed !== undefined) this.#subscribers.add(options.onRenewed);
  }

  /** The certificate to use now (a client reads this for each new connection). */
  get current(): IssuedCertificate {
    return this.#current;
  }
  /** `'idle'` when nothing is scheduled (before {@link start}), `'waiting'` for the next attempt, `'renewing'` during one, `'stopped'`. */
  get state(): RotatorState {
    return this.#state;
  }
  /** Epoch second of the next scheduled renewal attempt, or null when none is scheduled. */
  get nextRenewalAt(): number | null {
    return this.#nextAt;
  }
  /** Consecutive failed attempts since the last success. */
  get failures(): number {
    return this.#failures;
  }
  /** Successful renewals so far. */
  get renewals(): number {
    return this.#renewals;
  }
  /** Epoch second at which {@link current} is due for renewal: issue time + fraction × lifetime. */
  get renewAt(): number {
    return issuedAt(this.#current) + this.#fraction * this.#current.lifetime;
  }

  /**
   * Adds a listener for new certificates; returns a function that removes it. A throwing listener is reported to
   * the loop's exception handler and does not stop the others.
   */
  subscribe(fn: (issued: IssuedCertificate, previous: IssuedCertificate) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Schedules the first renewal. Idempotent while running. @throws CAError after {@link stop}. */
  start(): this {
    if (this.#state === 'stopped') throw new CAError('the rotator was stopped');
    if (!this.#started) {
      this.#started = true;
      if (this.#state === 'idle') this.#schedule(this.renewAt - this.#loop.clock.epoch());
    }
    return this;
  }

  /** Cancels any scheduled attempt; an attempt in flight finishes but its result is dropped. */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#nextAt = null;
    this.#state = 'stopped';
  }

  /**
   * Renews now (out of schedule), e.g. after a key compromise or from `ca renew`; while an attempt is in flight,
   * returns that one. Resolves with the new certificate. On a started rotator a failure is also reported and
   * retried as a scheduled one would be; on one never started it only rejects.
   * @throws CAError (as a rejection) after {@link stop}.
   */
  renewNow(): Promise<IssuedCertificate> {
    if (this.#inflight !== null) return this.#inflight;
    this.#timer?.cancel();
    this.#timer = null;
    return this.#attempt();
  }

  #schedule(delay: number): void {
    if (this.#state === 'stopped') return;
    const d = Math.max(0, delay);
    this.#state = 'waiting';
    this.#nextAt = this.#loop.clock.epoch() + d;
    this.#timer = this.#loop.callLater(d, () => {
      this.#timer = null;
      // A scheduled attempt's failure is reported through the exception handler, not through this promise.
      this.#attempt().catch(() => undefined);
    });
  }

  #attempt(): Promise<IssuedCertificate> {
    if (this.#state === 'stopped') return Promise.reject(new CAError('the rotator was stopped'));
    this.#state = 'renewing';
    this.#nextAt = null;
    const previous = this.#current;
    let p: Promise<IssuedCertificate>;
    try {
      p = this.#renew(previous);
    } catch (e) {
      p = Promise.reject(e);
    }
    const attempt = new Promise<IssuedCertificate>((resolve, reject) => {
      // Promise callbacks run outside loop iterations: bring the outcome back onto the loop (unless it was closed
      // meanwhile, e.g. a process stopping on SIGTERM during a renewal: then the attempt just ends, stopped).
      const closed = (): boolean => {
        if (!this.#loop.isClosed()) return false;
        this.#inflight = null;
        this.#state = 'stopped';
        reject(new CAError('the rotator was stopped'));
        return true;
      };
      p.then(
        (issued) => closed() || this.#loop.callSoon(() => {
          this.#inflight = null;
          if (this.#state === 'stopped') {
            reject(new CAError('the rotator was stopped'));
            return;
          }
          this.#succeeded(issued, previous);
          resolve(issued);
        }),
        (err: unknown) => closed() || this.#loop.callSoon(() => {
          this.#inflight = null;
          if (this.#state !== 'stopped') {
            if (this.#started) this.#failed(err);
            else this.#state = 'idle';
          }
          reject(err);
        }),
      );
    });
    this.#inflight = attempt;
    return attempt;
  }

  #succeeded(issued: IssuedCertificate, previous: IssuedCertificate): void {
    this.#current = issued;
    this.#failures = 0;
    this.#renewals++;
    for (const fn of [...this.#subscribers]) {
      try {
        fn(issued, previous);
      } catch (e) {
        this.#loop.callExceptionHandler({ message: 'a CertRotator subscriber threw while handling a new certificate', exception: e, rotator: this });
      }
    }
    if (this.#started) this.#schedule(this.renewAt - this.#loop.clock.epoch());
    else this.#state = 'idle';
  }

  #failed(err: unknown): void {
    this.#failures++;
    const cur = this.#current;
    const now = this.#loop.clock.epoch();
    const left = cur.cert.notAfter - now;
    const delay = Math.min(this.#retryMax, this.#retryMin * 2 ** (this.#failures - 1));
    const urgent = now >= issuedAt(cur) + this.#warnFraction * cur.lifetime;
    const what = `certificate ${cur.identity} (serial ${cur.cert.serial})`;
    const state = left <= 0 ? `EXPIRED ${describeDuration(left)} ago: peers now refuse it` : `expires in ${describeDuration(left)}`;
    const message = `${urgent || left <= 0 ? 'URGENT: ' : ''}renewing ${what} failed (attempt ${this.#failures}); it ${state}; retrying in ${describeDuration(delay)}`;
    const exception = TulipError.isTulipError(err) ? err : new CAError(message, { cause: err });
    this.#loop.callExceptionHandler({ message, exception, rotator: this, secondsLeft: left, attempt: this.#failures });
    this.#schedule(delay);
  }

  /**
   * Keeps a server on the current certificate: applies every renewal with {@link reloadServer} (full options, validated
   * before the swap; open connections keep the old certificate). A failed reload is reported to the exception handler
   * and the server keeps its old context. Returns the unsubscribe function.
   */
  attachServer(server: SecureContextTarget, options: ServerTlsBuildOptions = {}): () => void {
    return this.subscribe((issued) => {
      try {
        reloadServer(server, issued, options);
      } catch (e) {
        this.#loop.callExceptionHandler({ message: `could not swap the server to the renewed certificate (serial ${issued.cert.serial})`, exception: e, rotator: this });
      }
    });
  }
}
