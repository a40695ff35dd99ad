/**
 * RPC over signed messages: `call`/`handle`, notifications both ways, cancellation across the wire, typed error
 * replies, and idempotent retries (the `handle_request` of Ronacher's talk "Writing Secure APIs").
 *
 * The logic lives in {@link RpcEndpoint}, which knows nothing about sockets: it is given a way to send a signed
 * message ({@link RpcLink}) and is fed the verified messages that arrive. {@link RpcProtocol} is the endpoint wired
 * into a {@link MessageProtocol}, the class applications use; the session layer drives an endpoint over
 * reconnecting connections the same way.
 *
 * Every RPC message is one signed envelope whose header `kind` says what it is and whose msgpack payload is an array
 * (docs/wire-format.md, section "RPC", gives every byte):
 *
 * | kind | payload |
 * |---|---|
 * | REQUEST 1 | `[id, method, params]` or `[id, method, params, {idempotent?, token?}]` |
 * | RESPONSE 2 | `[id, result]` |
 * | ERROR 3 | `[id or nil, code, message, data]` |
 * | NOTIFY 4 | `[method, params]` or `[method, params, {token?}]` |
 * | CANCEL 5 | `[id]` |
 *
 * Ids are chosen by the caller and name its own calls only, so both sides may call each other at once.
 *
 * @module
 */
import { CancelledError, Forbidden, MethodNotFound, BadPayload, ReplayedMessage, RpcError, TimeoutError,
  TooManyInFlight, TransportClosed, TulipError, errorFromCode, isCancelledError } from '../errors.js';
import type { BadData } from '../errors.js';
import { CLOCK_SKEW, MAX_IN_FLIGHT, MESSAGE_TTL, OUTCOME_POLL_INTERVAL, RPC_TIMEOUT } from '../constants.js';
import type { Clock, EventLoop, Future, Task, TimerHandle } from '../loop/index.js';
import { getRunningLoop } from '../loop/index.js';
import { KIND } from './envelope.js';
import { MessageProtocol } from './message-protocol.js';
import type { MessageMeta } from './signing.js';
import type { Transport } from '../net/transports.js';
import { IdempotencyCache, IdempotencyKey } from './idempotency.js';
import type { OutcomeStore, SharedOutcome } from './idempotency.js';
import { decode, encode } from './codec.js';

/** The envelope kinds RPC uses (reserved by the wire format: `KIND.REQUEST` … `KIND.CANCEL`, 1 to 5). */
export const RPC_KIND = Object.freeze({
  REQUEST: KIND.REQUEST, RESPONSE: KIND.RESPONSE, ERROR: KIND.ERROR, NOTIFY: KIND.NOTIFY, CANCEL: KIND.CANCEL,
} as const);

/** Longest method name accepted, bytes of UTF-8 (a longer one is a malformed request). */
export const MAX_METHOD_LENGTH = 256;

/** Largest correlation id: ids are unsigned 32-bit integers. */
const MAX_ID = 0xffff_ffff;

/** The parts of a verified message's metadata RPC reads (MessageProtocol's `MessageMeta` has them all). */
export interface RpcMessageMeta {
  /** The envelope kind. */
  readonly kind: number;
  /** The key id that verified the message. */
  readonly kid: string;
  /** Epoch seconds the message was signed. */
  readonly issuedAt: number;
  /** Epoch seconds the message expires. */
  readonly expiresAt: number;
  /** The envelope's 16-byte nonce. */
  readonly nonce: Uint8Array;
  /** The verified peer identity (mTLS certificate), or null. */
  readonly peer: unknown;
}

/** What the endpoint needs from the connection under it. */
export interface RpcLink {
  /** The loop the endpoint's Futures, Tasks and timers belong to. */
  readonly loop: EventLoop;
  /** The clock message expiries are checked with (its `epoch()`); default the loop's. */
  readonly clock?: Clock;
  /** The lifetime `send` gives a message when none is passed, seconds; default {@link MESSAGE_TTL}. */
  readonly ttl?: number;
  /**
   * Signs and sends one message. `ttl` in seconds (default the link's own), `nonce` the 16 bytes to put in the
   * envelope (default fresh random bytes), `notAfter` the latest expiry (epoch seconds) the envelope may carry.
   * Returns the `expiresAt` written (epoch seconds), when the link knows it.
   * @throws TransportClosed when the connection is closed; BadPayload when `message` cannot be encoded
   */
  send(message: unknown, options: { kind: number; ttl?: number; nonce?: Uint8Array; notAfter?: number }): number | void;
  /** Reports an inbound message the endpoint refused (counted like any rejected message; may close the connection). */
  reject(error: BadData): void;
  /**
   * Called after a reply that was owed (see {@link RpcEndpoint.owedReplies}) was sent or given up, so the link can
   * close once nothing is owed (MessageProtocol's wait after the peer ended its stream). Optional.
   */
  settled?(): void;
}

/**
 * What a role check needs from a security context: tokens' `SecurityContext` (and its `RoleHolder` interface) fits;
 * declared here so the wire area does not import the tokens area.
 */
export interface RpcSecurity {
  /** True when the caller has `role` (the account has it and the current token or certificate grants it). */
  hasRole(role: string): boolean;
}

/** The input of {@link RpcEndpointOptions.securityContext}. */
export interface SecurityInput {
  /** The verified peer identity (mTLS certificate), or null. */
  readonly peer: unknown;
  /** The token the peer attached to this request or notification, or null. */
  readonly token: string | null;
  /** The method called. */
  readonly method: string;
  /** The verified message's metadata. */
  readonly meta: RpcMessageMeta;
}

/**
 * Builds the security context of one request from the peer identity and/or the token it carried. Return null for
 * "nobody"; throw (or reject with) a TulipError such as `TokenExpired` or `UnknownToken` to refuse the request with
 * that error.
 */
export type SecurityContextFactory<S extends RpcSecurity = RpcSecurity> =
  (input: SecurityInput) => S | null | PromiseLike<S | null>;

/** What a request handler receives besides its params. */
export interface RpcContext<S extends RpcSecurity = RpcSecurity> {
  /** The security context built for this request, or null when there is no factory (or it returned null). */
  readonly security: S | null;
  /** The verified peer identity (mTLS certificate), or null. */
  readonly peer: unknown;
  /** Aborts when the caller cancels (its reason a CancelledError), or the connection is lost (TransportClosed). */
  readonly signal: AbortSignal;
  /** The request's verified metadata (key id, issued/expires at, nonce). */
  readonly meta: RpcMessageMeta;
  /** The method called. */
  readonly method: string;
  /** True when the request is idempotent (its outcome is cached for retries). */
  readonly idempotent: boolean;
  /** The endpoint the request came on: call or notify the same peer through it (server-pushed notifications). */
  readonly endpoint: RpcEndpoint<S>;
}

/** What a notification handler receives besides its params. */
export type NotifyContext<S extends RpcSecurity = RpcSecurity> = Omit<RpcContext<S>, 'signal' | 'idempotent'>;

/** A request handler: returns the result (or a promise of it), or throws to send an error reply. */
export type RpcHandler<S extends RpcSecurity = RpcSecurity> = (params: any, ctx: RpcContext<S>) => unknown;
/** A notification handler: its result is ignored; what it throws is reported to the loop's exception handler. */
export type NotifyHandler<S extends RpcSecurity = RpcSecurity> = (params: any, ctx: NotifyContext<S>) => unknown;

/** Options of `handle` and `onNotify`. */
export interface HandlerOptions {
  /** Roles the caller must all hold (`ctx.security.hasRole`); without them the reply is `Forbidden`. */
  roles?: string | readonly string[];
  /**
   * Run the handler in a Task of its own even when it is a plain (non-`async`) function. By default a plain function
   * on an endpoint without a security factory and without roles runs inline, in the iteration that delivered the
   * request, and its reply goes out in that iteration: no Task, no extra iteration (asyncio 3.12's eager tasks, for
   * code that never suspends). `async` functions always get a Task.
   */
  task?: boolean;
}

/** A handler as registered on an {@link RpcRouter}. */
export interface RegisteredHandler<H> {
  /** The handler. */
  readonly fn: H;
  /** The roles every caller must hold. */
  readonly roles: readonly string[];
  /** True when it may run inline: a plain function, with no roles, not registered with `{task: true}`. */
  readonly inline: boolean;
}

/**
 * The table of request and notification handlers. Share one between all the connections of a server, or let each
 * {@link RpcEndpoint} make its own.
 */
export class RpcRouter<S extends RpcSecurity = RpcSecurity> {
  readonly #handlers = new Map<string, RegisteredHandler<RpcHandler<S>>>();
  readonly #notifiers = new Map<string, RegisteredHandler<NotifyHandler<S>>>();

  /**
   * Registers the handler of `method` (replacing any). `roles` are required of every caller.
   * @throws TypeError when `method` is empty or longer than {@link MAX_METHOD_LENGTH} bytes
   */
  handle(method: string, handler: RpcHandler<S>, options: HandlerOptions = {}): this {
    this.#handlers.set(checkMethod(method), registration(handler, options));
    return this;
  }

  /** Registers the handler of notification `method` (replacing any). */
  onNotify(method: string, handler: NotifyHandler<S>, options: HandlerOptions = {}): this {
    this.#notifiers.set(checkMethod(method), registration(handler, options));
    return this;
  }

  /**
   * Registers every handler of a table, e.g. the `handlers` of tokens' `authorize({...})` (whose role checks throw
   * `Forbidden` before the handler runs; such refusals are answered but never cached as an idempotent outcome).
   */
  handleAll(handlers: Readonly<Record<string, RpcHandler<S>>>, options: HandlerOptions = {}): this {
    for (const [method, fn] of Object.entries(handlers)) this.handle(method, fn, options);
    return this;
  }

  /** Removes the request handler of `method`; true if there was one. */
  unhandle(method: string): boolean {
    return this.#handlers.delete(method);
  }

  /** The request handler of `method` and the roles it requires, or undefined. */
  handlerOf(method: string): RegisteredHandler<RpcHandler<S>> | undefined {
    return this.#handlers.get(method);
  }

  /** The notification handler of `method` and the roles it requires, or undefined. */
  notifierOf(method: string): RegisteredHandler<NotifyHandler<S>> | undefined {
    return this.#notifiers.get(method);
  }
}

/** Options of {@link RpcEndpoint.call}. */
export interface CallOptions {
  /** Seconds to wait for the reply; null waits forever. Default {@link RPC_TIMEOUT}. On expiry: TimeoutError, and a CANCEL to the peer. */
  timeout?: number | null;
  /**
   * Makes the call safe to retry: `true` for a one-off, or an {@link IdempotencyKey} shared by every attempt of one
   * operation (on this connection or a new one). The peer runs it at most once while it remembers the nonce and
   * answers every attempt with the same outcome.
   */
  idempotent?: boolean | IdempotencyKey;
  /** Aborting it cancels the call (as `future.cancel()`), which sends a CANCEL to the peer. */
  signal?: AbortSignal;
  /** Lifetime of the request message, seconds (default the link's). Ignored for retries of an IdempotencyKey. */
  ttl?: number;
}

/** Options of {@link RpcEndpoint}. */
export interface RpcEndpointOptions<S extends RpcSecurity = RpcSecurity> {
  /** The handler table (default a fresh one). */
  router?: RpcRouter<S>;
  /** Builds `ctx.security` per request from the peer identity and/or token. Default: none (security is null). */
  securityContext?: SecurityContextFactory<S>;
  /** The token this side attaches to its requests and notifications: a string, or a function asked on each send. */
  token?: string | null | (() => string | null | undefined);
  /** Outcomes of idempotent requests; share one between connections so retries on new ones find them. Default per endpoint. */
  idempotencyCache?: IdempotencyCache<RpcOutcome>;
  /**
   * Shares idempotent outcomes with other server processes (e.g. a {@link RedisOutcomeStore} next to a Redis nonce
   * store), so a retry that lands on another process is answered (waiting while the first still runs) instead of
   * refused with TW_REPLAYED_MESSAGE. Default none.
   */
  outcomeStore?: OutcomeStore;
  /** Clock-skew allowance the link verifies with, seconds (how long past expiry a nonce is remembered). Default {@link CLOCK_SKEW}. */
  skew?: number;
  /** Requests this side runs at once for its peer; one more is answered TooManyInFlight. Default {@link MAX_IN_FLIGHT}. */
  maxInFlight?: number;
  /** Send handlers' plain `Error` messages to the peer (default false: "internal error", the error goes to the loop's handler). */
  exposeErrors?: boolean;
  /** The string idempotent outcomes are filed under for a peer; default from the certificate identity. */
  peerKey?: (peer: unknown) => string;
  /** Called with an ERROR reply that matches no call (id nil: e.g. a refused notification). Default: the loop's exception handler. */
  onUnmatchedError?: (error: TulipError) => void;
}

/** What an idempotent request produced: its result, or the error reply it sent. Cached and re-sent to retries. */
export type RpcOutcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly data: unknown };

interface PendingCall {
  readonly future: Future<unknown>;
  readonly method: string;
  timer: TimerHandle | null;
  unlisten: (() => void) | null;
}

// What #run is given for an idempotent request: where its outcome is filed (complete) or given up (abandon).
interface CachedOutcome {
  complete(v: RpcOutcome): void;
  abandon(): void;
}

interface InFlight {
  // Made on first use of `ctx.signal` (an AbortController costs several µs; most handlers never look at it).
  controller: AbortController | null;
  aborted: boolean;
  reason: unknown;
  readonly idempotent: boolean;
  task: Task<unknown> | null;
  cancelled: boolean;
  // The peer's request id, and whether its reply went out already (interruptRunning answers before the task ends).
  readonly id: number;
  answered: boolean;
  // Set when the handler's promise fulfilled (its value in `value`). A cancel (CANCEL, a closing connection) that
  // lands as the body returns makes the Task end cancelled although the handler finished its work: the reply and
  // the cached outcome are then its result, never TW_CANCELLED (which would let a retry run an idempotent request
  // a second time).
  returned: boolean;
  value: unknown;
}

/** The handler's `ctx.signal`: its AbortController is made on first use, aborted already if the flight was. */
function flightSignal(f: InFlight): AbortSignal {
  if (f.controller === null) {
    f.controller = new AbortController();
    if (f.aborted) f.controller.abort(f.reason);
  }
  return f.controller.signal;
}

/**
 * A request handler's `ctx`. A class, not an object literal with a `get signal()`: V8 gives each such literal its own
 * accessor pair in old space, and that pair's closure kept every finished request (task, params, meta) alive until
 * the next full GC: 25% of a busy server's allocations were promoted and each scavenge paused 3-7 ms.
 */
class ServerCallContext<S extends RpcSecurity> implements RpcContext<S> {
  readonly security: S | null;
  readonly peer: unknown;
  readonly meta: RpcMessageMeta;
  readonly method: string;
  readonly idempotent: boolean;
  readonly endpoint: RpcEndpoint<S>;
  readonly #flight: InFlight;
  constructor(security: S | null, peer: unknown, meta: RpcMessageMeta, method: string, idempotent: boolean,
    endpoint: RpcEndpoint<S>, flight: InFlight) {
    this.security = security;
    this.peer = peer;
    this.meta = meta;
    this.method = method;
    this.idempotent = idempotent;
    this.endpoint = endpoint;
    this.#flight = flight;
  }
  get signal(): AbortSignal {
    return flightSignal(this.#flight);
  }
}

// How a request's handler ended (see RpcEndpoint.#settle).
const OK = 0;
const FAILED = 1;
const CANCELLED = 2;
type Settled = typeof OK | typeof FAILED | typeof CANCELLED;

/** Aborts a flight's signal (once), whether or not the handler has looked at it yet. */
function abortFlight(f: InFlight, reason: unknown): void {
  if (f.aborted) return;
  f.aborted = true;
  f.reason = reason;
  f.controller?.abort(reason);
}

// Error fields that are never copied into an error reply's data (internal, or carrying untrusted bytes).
const UNSENT_FIELDS = new Set(['code', 'name', 'message', 'stack', 'remote', 'fatal', 'payload', 'cause', 'partial',
  'remoteCode', 'data']);

/**
 * One side of an RPC conversation over a {@link RpcLink}: makes calls and sends notifications, and runs the
 * handlers of its {@link RpcRouter} for the peer's.
 *
 * Guarantees: every request that reaches a side is answered exactly once (RESPONSE or ERROR; a cancelled one with
 * TW_CANCELLED) while the connection lasts; a handler that throws gets an error reply and the endpoint keeps
 * serving; an idempotent request runs at most once per (key id, peer, nonce) while the cache remembers it; on
 * {@link close} every pending call fails with the given error.
 */
export class RpcEndpoint<S extends RpcSecurity = RpcSecurity> {
  /** The handler table. */
  readonly router: RpcRouter<S>;
  readonly #link: RpcLink;
  readonly #clock: Clock;
  readonly #security: SecurityContextFactory<S> | null;
  readonly #token: RpcEndpointOptions['token'];
  readonly #cache: IdempotencyCache<RpcOutcome>;
  readonly #skew: number;
  readonly #maxInFlight: number;
  readonly #expose: boolean;
  readonly #peerKey: (peer: unknown) => string;
  readonly #onUnmatchedError: ((error: TulipError) => void) | null;
  readonly #outcomes: OutcomeStore | null;
  // Calls this side made that await a reply, by id.
  readonly #pending = new Map<number, PendingCall>();
  // Requests of the peer this side is running, by the peer's id (the latest, if the peer reused an id).
  readonly #inFlight = new Map<number, InFlight>();
  // Every one of them: a peer that reuses an id would otherwise keep #inFlight's size at 1 (maxInFlight) and
  // hide the older ones from close.
  readonly #running = new Set<InFlight>();
  // Requests answered later without a Task of their own: an idempotent retry waiting for its first attempt's outcome
  // (here, or in another process's outcome store).
  #waiting = 0;
  // Takes back each wait of an idempotent copy for its first attempt's outcome (IdempotencyCache's `wait`): dropped
  // at close, so the cache, shared by the server's connections, does not keep this closed endpoint reachable.
  readonly #waits = new Set<() => void>();
  #nextId = 1;
  #closed: Error | null = null;

  /** An endpoint over `link`; feed it with {@link receive} (and {@link duplicate}), end it with {@link close}. */
  constructor(link: RpcLink, options: RpcEndpointOptions<S> = {}) {
    this.#link = link;
    this.#clock = link.clock ?? link.loop.clock;
    this.router = options.router ?? new RpcRouter<S>();
    this.#security = options.securityContext ?? null;
    this.#token = options.token ?? null;
    this.#cache = options.idempotencyCache ?? new IdempotencyCache<RpcOutcome>({ clock: this.#clock });
    this.#skew = options.skew ?? CLOCK_SKEW;
    this.#maxInFlight = options.maxInFlight ?? MAX_IN_FLIGHT;
    this.#expose = options.exposeErrors ?? false;
    this.#peerKey = options.peerKey ?? defaultPeerKey;
    this.#onUnmatchedError = options.onUnmatchedError ?? null;
    this.#outcomes = options.outcomeStore ?? null;
  }

  /** Calls this side made that still await their reply. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  /** `<RpcEndpoint in flight N, calls waiting M>`: what an exception report prints for `endpoint`. */
  toString(): string {
    return `<RpcEndpoint in flight ${this.#inFlight.size}, calls waiting ${this.pendingCalls}>`;
  }

  /** Requests of the peer running on this side now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /**
   * Replies this side still owes the peer: its requests whose handlers are running ({@link inFlight}) plus the
   * idempotent retries waiting for their first attempt's outcome. The link's `settled` is called whenever it drops.
   */
  get owedReplies(): number {
    return this.#running.size + this.#waiting;
  }

  /** True once {@link close} ran: calls fail at once. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Registers a request handler on this endpoint's router (see {@link RpcRouter.handle}). */
  handle(method: string, handler: RpcHandler<S>, options?: HandlerOptions): this {
    this.router.handle(method, handler, options);
    return this;
  }

  /** Registers a notification handler on this endpoint's router (see {@link RpcRouter.onNotify}). */
  onNotify(method: string, handler: NotifyHandler<S>, options?: HandlerOptions): this {
    this.router.onNotify(method, handler, options);
    return this;
  }

  /**
   * Calls `method` on the peer. The Future resolves with the handler's result, or fails with:
   * the peer's error rebuilt (a `TW_` code as its class with `remote = true`, e.g. `Forbidden`, `MethodNotFound`;
   * any other code as `RpcError` with `remoteCode` and `data`); `TimeoutError` after `timeout` seconds;
   * `TransportClosed` when the connection is or gets lost; `BadPayload` when `params` cannot be encoded.
   * Cancelling the Future (or aborting `signal`) sends a CANCEL, which aborts the handler's `ctx.signal`.
   * @throws TypeError (synchronously, with nothing sent) when `method` is not a string of 1 to
   *   {@link MAX_METHOD_LENGTH} bytes, or `timeout` is neither null nor a number of seconds (NaN included); TypeError
   *   or RangeError when `ttl` is not a number of seconds >= 0 ({@link checkMessageTtl})
   */
  call<T = unknown>(method: string, params?: unknown, options: CallOptions = {}): Future<T> {
    checkMethod(method);
    const timeout = options.timeout === undefined ? RPC_TIMEOUT : options.timeout;
    // Checked before anything is sent: a bad timeout used to throw from callLater after the request was written,
    // leaving the peer running a call whose pending entry nobody could ever settle.
    if (timeout !== null && (typeof timeout !== 'number' || Number.isNaN(timeout))) {
      throw new TypeError(`a call timeout is null or a number of seconds, got ${String(timeout)}`);
    }
    checkMessageTtl(options.ttl);
    const loop = this.#link.loop;
    const future = loop.createFuture<T>();
    if (this.#closed !== null) {
      future.setException(closedError(this.#closed));
      return future;
    }
    if (options.signal?.aborted) {
      future.cancel('aborted before the call was sent');
      return future;
    }
    const id = this.#allocateId();
    const idem = options.idempotent;
    // `instanceof` only when something was passed: on undefined it still looks up Symbol.hasInstance (per call).
    const key = idem === undefined || idem === false ? null : idem === true ? new IdempotencyKey()
      : idem instanceof IdempotencyKey ? idem : null;
    let ttl = options.ttl;
    const retry = key !== null && key.expiresAt !== null;
    if (key !== null) {
      const now = this.#clock.epoch();
      if (key.expiresAt === null) {
        ttl ??= this.#link.ttl ?? MESSAGE_TTL;
        key.expiresAt = now + ttl;
      } else {
        // A retry expires with the first attempt, so it can't arrive after the peer may have forgotten the nonce.
        ttl = key.expiresAt - now;
        if (ttl <= 0) {
          future.setException(new TimeoutError(
            `the idempotency window of this operation closed ${(-ttl).toFixed(3)} s ago; retry with a new IdempotencyKey`));
          return future;
        }
      }
    }
    // Built field by field (no spreads, no Object.keys): this is the per-call path. Same payload, same options.
    const token = this.#currentToken();
    let payload: unknown[];
    if (key === null && token === null) {
      payload = [id, method, params ?? null];
    } else {
      const opts: Record<string, unknown> = {};
      if (key !== null) opts.idempotent = true;
      if (token !== null) opts.token = token;
      payload = [id, method, params ?? null, opts];
    }
    const sendOptions: { kind: number; ttl?: number; nonce?: Uint8Array; notAfter?: number } = { kind: RPC_KIND.REQUEST };
    if (ttl !== undefined) sendOptions.ttl = ttl;
    if (key !== null) sendOptions.nonce = key.nonce;
    if (retry) sendOptions.notAfter = key.expiresAt!;
    try {
      const written = this.#link.send(payload, sendOptions);
      // The first attempt's window is the expiry its envelope really carries (it is stamped at the start of the
      // loop iteration's batch, which can be earlier than this call): every retry is capped there.
      if (key !== null && !retry && typeof written === 'number' && written > 0) key.expiresAt = written;
    } catch (err) {
      // Nothing was sent: a first attempt leaves the key as it found it, so the next attempt (once the params or the
      // connection are fixed) is a first attempt with a full window, not a retry of a request the peer never saw.
      if (key !== null && !retry) key.expiresAt = null;
      future.setException(wrap(err));
      return future;
    }
    const entry: PendingCall = { future: future as Future<unknown>, method, timer: null, unlisten: null };
    this.#pending.set(id, entry);
    if (timeout !== null) {
      entry.timer = loop.callLater(timeout, () => {
        entry.timer = null;
        if (this.#pending.get(id) !== entry || future.done()) return;
        this.#pending.delete(id);
        this.#sendCancel(id);
        future.setException(new TimeoutError(`call ${method} got no reply within ${timeout} s`));
      });
    }
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = (): void => { future.cancel('aborted by the caller'); };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    future.addDoneCallback(() => {
      entry.timer?.cancel();
      entry.timer = null;
      entry.unlisten?.();
      entry.unlisten = null;
      if (this.#pending.get(id) === entry) {
        // Still pending here means the caller cancelled the Future: tell the peer.
        this.#pending.delete(id);
        if (future.cancelled()) this.#sendCancel(id);
      }
    });
    return future;
  }

  /**
   * Sends notification `method` to the peer (fire and forget; server-pushed when sent by a server).
   * @throws TransportClosed when the connection is closed; BadPayload when `params` cannot be encoded; TypeError
   *   for a bad method name
   */
  notify(method: string, params?: unknown, options: { ttl?: number } = {}): void {
    checkMethod(method);
    checkMessageTtl(options.ttl);
    if (this.#closed !== null) throw closedError(this.#closed);
    const token = this.#currentToken();
    const payload = token !== null ? [method, params ?? null, { token }] : [method, params ?? null];
    try {
      this.#link.send(payload, { kind: RPC_KIND.NOTIFY, ...(options.ttl !== undefined ? { ttl: options.ttl } : {}) });
    } catch (err) {
      throw wrap(err);
    }
  }

  /**
   * Feeds one verified message. Returns false when its kind is not an RPC kind (the caller may handle it), true
   * otherwise (also when the message was refused: that went to `link.reject`).
   */
  receive(message: unknown, meta: RpcMessageMeta): boolean {
    switch (meta.kind) {
      case RPC_KIND.REQUEST: this.#onRequest(message, meta, false); return true;
      case RPC_KIND.RESPONSE: this.#onResponse(message); return true;
      case RPC_KIND.ERROR: this.#onError(message); return true;
      case RPC_KIND.NOTIFY: this.#onNotify(message, meta); return true;
      case RPC_KIND.CANCEL: this.#onCancel(message); return true;
      default: return false;
    }
  }

  /**
   * MessageProtocol's `duplicateNonce` hook: a valid, fresh message whose nonce was already seen. An idempotent
   * request is answered from the cache (waiting for the first run if it is still going) and true is returned. Any
   * other request gets a ReplayedMessage error reply, and false is returned so it is also counted as rejected.
   */
  duplicate(message: unknown, meta: RpcMessageMeta): boolean {
    if (meta.kind !== RPC_KIND.REQUEST) return false;
    return this.#onRequest(message, meta, true);
  }

  /**
   * Ends the endpoint: every pending call fails with `reason` (default TransportClosed), and the handlers of
   * non-idempotent requests see `ctx.signal` abort (and their tasks are cancelled). Idempotent requests run on, so
   * their outcome is cached for a retry on another connection. A second call does nothing.
   */
  close(reason: Error = new TransportClosed('the connection closed')): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    const calls = [...this.#pending.values()];
    this.#pending.clear();
    for (const c of calls) {
      if (!c.future.done()) c.future.setException(closedError(reason));
    }
    // Copies waiting for their first attempt's outcome: nobody can be answered here any more.
    for (const drop of this.#waits) {
      drop();
      this.#waiting--;
    }
    this.#waits.clear();
    for (const f of this.#running) {
      if (f.idempotent || f.aborted) continue;
      abortFlight(f, closedError(reason));
      f.task?.cancel('the connection closed');
    }
  }

  /**
   * For a side about to close the connection on purpose (a drain timeout, a server closing, a certificate's
   * notAfter): answers every running request of the peer that is not idempotent now with TW_TRANSPORT_CLOSED and
   * `why`, aborts its `ctx.signal` and cancels its task, so the peer's caller learns why its call ended (it may or may
   * not have had its effect, as for any lost connection) instead of reading a bare "the connection closed". Idempotent
   * requests run on: their outcome is cached for the retry on another connection. Call it before closing (the replies
   * must go out ahead of the close); nothing happens once the endpoint is closed. Returns how many were answered.
   */
  interruptRunning(why: string): number {
    if (this.#closed !== null) return 0;
    let answered = 0;
    for (const f of this.#running) {
      if (f.idempotent || f.answered || f.cancelled) continue;
      f.answered = true;
      answered += 1;
      const err = new TransportClosed(`the peer closed the connection while this call ran (${why}); its handler was cancelled`);
      this.#sendError(f.id, err.code, err.message, null);
      abortFlight(f, err);
      f.task?.cancel('the connection is closing');
    }
    return answered;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Serving requests

  // Returns true when the request was answered or is being handled (for `duplicate`).
  #onRequest(message: unknown, meta: RpcMessageMeta, duplicate: boolean): boolean {
    const req = parseRequest(message);
    if (req instanceof BadPayload) {
      const id = Array.isArray(message) && isId(message[0]) ? message[0] : null;
      this.#sendError(id, req.code, req.message, null);
      this.#link.reject(req);
      return false;
    }
    const { id, method, params, idempotent, token } = req;
    if (!idempotent) {
      if (duplicate) {
        const err = new ReplayedMessage(`request ${id} (${method}) reuses the nonce of a request already handled`);
        this.#sendError(id, err.code, err.message, null);
        return false;
      }
      this.#run(req.id, method, params, meta, token, null);
      return true;
    }
    // The method is part of the key: a key reused for another method never gets the first method's outcome. The
    // kid and the peer carry their lengths, so no two (kid, peer, method) tuples join to the same text ('/' may
    // appear in any of them: peer "player" calling "42/charge" is not peer "player/42" calling "charge").
    const peer = this.#peerKey(meta.peer);
    const key = IdempotencyCache.key(`${meta.kid.length}:${meta.kid}/${peer.length}:${peer}/${method}`, meta.nonce);
    // A copy of a request abandoned before anything ran (refused, cancelled) is evaluated afresh, as a first attempt.
    if (duplicate && !this.#cache.wasAbandoned(key)) {
      const found = this.#cache.lookup(key);
      if (found === null) {
        // The nonce store remembers the nonce but this process has no outcome: ask the processes sharing it, if any.
        if (this.#outcomes !== null) {
          if (this.#overBudget(id)) return true;
          this.#awaitShared(this.#outcomes, id, method, key, meta);
          return true;
        }
        // Refuse, never re-run.
        const err = new ReplayedMessage(`request ${id} (${method}) was already handled and its outcome is not cached here`);
        this.#sendError(id, err.code, err.message, null);
        return false;
      }
    }
    this.#serveIdempotent(id, method, params, meta, token, key);
    return true;
  }

  #serveIdempotent(id: number, method: string, params: unknown, meta: RpcMessageMeta, token: string | null, key: string): void {
    const ttl = meta.expiresAt + this.#skew - this.#clock.epoch();
    const begun = this.#cache.begin(key, ttl);
    if (begun.status === 'done') {
      this.#sendOutcome(id, begun.value);
    } else if (begun.status === 'pending') {
      if (this.#overBudget(id)) return;
      this.#waiting++;
      let drop: (() => void) | null = null;
      drop = begun.wait((outcome) => {
        // Dropped at close (this endpoint's connection is gone): nothing to answer, #waiting counted it down already.
        if (drop === null || !this.#waits.delete(drop)) return;
        this.#waiting--;
        // Abandoned (nothing ran, e.g. cancelled or refused before running): this attempt runs it.
        if (outcome === undefined) this.#serveIdempotent(id, method, params, meta, token, key);
        else this.#sendOutcome(id, outcome);
        this.#link.settled?.();
      });
      this.#waits.add(drop);
    } else if (this.#outcomes === null) {
      this.#run(id, method, params, meta, token, begun);
    } else {
      const shared = this.#outcomes;
      const until = meta.expiresAt + this.#skew;
      this.#shared(`mark request ${id} (${method}) running`, () => shared.markRunning(key, until - this.#clock.epoch()));
      this.#run(id, method, params, meta, token, {
        complete: (outcome) => {
          begun.complete(outcome);
          let bytes: Uint8Array;
          try {
            bytes = Buffer.from(encode(outcome.ok ? [1, outcome.result ?? null] : [0, outcome.code, outcome.message, outcome.data ?? null]));
          } catch (err) {
            // An outcome that cannot be encoded cannot be shared: forget the marker, so other processes refuse retries.
            this.#shared(`forget request ${id}`, () => shared.forget(key));
            this.#report(`the outcome of request ${id} (${method}) could not be shared`, err);
            return;
          }
          this.#shared(`share the outcome of request ${id} (${method})`, () => shared.store(key, bytes, until - this.#clock.epoch()));
        },
        abandon: () => {
          // Forget first: abandon() lets a waiting copy take over at once, and its "running" marker must be written
          // after this delete, not wiped by it (the store sends commands in order).
          this.#shared(`forget request ${id} (${method})`, () => shared.forget(key));
          begun.abandon();
        },
      });
    }
  }

  // A copy that would wait for its first attempt's outcome holds a waiter (and, with an outcome store, a poll) until
  // then: it counts towards maxInFlight like a running request, so a peer re-sending one slow request cannot grow
  // the waiters without bound. Beyond the budget it is answered TW_TOO_MANY_IN_FLIGHT (never cached: a later retry
  // gets the outcome). True when refused.
  #overBudget(id: number): boolean {
    const busy = this.#running.size + this.#waiting;
    if (busy < this.#maxInFlight) return false;
    this.#sendOutcome(id, this.#toOutcome(new TooManyInFlight(
      `${busy} requests are already running or waiting on this connection (maxInFlight ${this.#maxInFlight})`), null));
    return true;
  }

  // Runs a shared-store write; a failure is reported (the retry elsewhere will be refused: fail closed).
  #shared(what: string, op: () => Promise<void>): void {
    let p: Promise<void>;
    try {
      p = op();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(undefined, (err: unknown) => this.#link.loop.callSoon(() => this.#report(`could not ${what} in the outcome store`, err)));
  }

  // A retry whose first run happened in another process: read the shared outcome, polling while it runs there.
  #awaitShared(shared: OutcomeStore, id: number, method: string, key: string, meta: RpcMessageMeta): void {
    const loop = this.#link.loop;
    const until = meta.expiresAt + this.#skew;
    // Owed until answered (or the endpoint closed): counted in owedReplies.
    this.#waiting++;
    let owed = true;
    const answered = (): void => {
      if (!owed) return;
      owed = false;
      this.#waiting--;
      this.#link.settled?.();
    };
    const refuse = (why: string): void => {
      const err = new ReplayedMessage(`request ${id} (${method}) was already handled ${why}`);
      this.#sendError(id, err.code, err.message, null);
      this.#link.reject(err);
      answered();
    };
    const onFound = (found: SharedOutcome): void => {
      if (this.#closed !== null) {
        answered();
        return;
      }
      if (found === null) {
        refuse('and its outcome is not shared');
      } else if (found === 'running') {
        if (this.#clock.epoch() >= until) refuse('and was still running when its nonce expired');
        else loop.callLater(OUTCOME_POLL_INTERVAL, attempt);
      } else {
        const outcome = decodeOutcome(found);
        if (outcome === null) {
          refuse('and its shared outcome is unreadable');
          return;
        }
        const local = this.#cache.begin(key, until - this.#clock.epoch());
        if (local.status === 'new') local.complete(outcome);
        this.#sendOutcome(id, outcome);
        answered();
      }
    };
    const attempt = (): void => {
      let p: Promise<SharedOutcome>;
      try {
        p = shared.get(key);
      } catch (err) {
        p = Promise.reject(err);
      }
      // Store replies arrive in Node I/O callbacks: continue inside a loop iteration.
      p.then(
        (found) => loop.callSoon(() => onFound(found)),
        (err: unknown) => loop.callSoon(() => {
          // Fail closed: the retry is refused with the store's error, never run.
          const e = asTulip(err, 'the outcome store failed');
          this.#sendError(id, e.code, e.message, null);
          answered();
        }),
      );
    };
    attempt();
  }

  #run(id: number, method: string, params: unknown, meta: RpcMessageMeta, token: string | null,
    cached: CachedOutcome | null): void {
    const registered = this.router.handlerOf(method);
    if (registered === undefined) {
      this.#refuse(id, cached, new MethodNotFound(`no handler for method ${JSON.stringify(method)}`, { method }));
      return;
    }
    if (this.#running.size + this.#waiting >= this.#maxInFlight) {
      this.#refuse(id, cached, new TooManyInFlight(
        `${this.#running.size + this.#waiting} requests are already running or waiting on this connection (maxInFlight ${this.#maxInFlight})`));
      return;
    }
    const flight: InFlight = { controller: null, aborted: false, reason: undefined, idempotent: cached !== null, task: null,
      cancelled: false, id, answered: false, returned: false, value: undefined };
    const factory = this.#security;
    let ctx: RpcContext<S> | null = null;   // set once the checks passed and the handler is about to run
    let body: () => Promise<unknown>;
    if (factory === null && registered.inline) {
      // A plain function, nothing to check first: it runs now, inline, and a plain result is answered now, in this
      // iteration (asyncio 3.12's eager tasks for code that never suspends). A returned promise waits in a Task.
      ctx = new ServerCallContext<S>(null, meta.peer, meta, method, cached !== null, this, flight);
      let r: unknown;
      try {
        r = registered.fn(params, ctx);
      } catch (err) {
        this.#settle(id, method, flight, cached, ctx, isCancelledError(err) ? CANCELLED : FAILED, err);
        return;
      }
      if (!isThenable(r)) {
        this.#settle(id, method, flight, cached, ctx, OK, r);
        return;
      }
      const pending = r;
      body = async () => {
        // A library Future awaited in the Task is a cancellation point, as before.
        const v = await pending;
        flight.returned = true;
        flight.value = v;
        return v;
      };
    } else {
      // One Task per request: the security context, the role checks and the handler run in it, so the handler sees
      // `currentTask()`, its awaits on library Futures are cancellation points, and the loop keeps order and time.
      body = async () => {
        let security: S | null = null;
        if (factory !== null) {
          try {
            security = await factory({ peer: meta.peer, token, method, meta });
          } catch (err) {
            if (!TulipError.isTulipError(err)) this.#report(`the security context for ${method} could not be built`, err);
            throw new Refusal(asTulip(err, 'the security context could not be built'));
          }
        }
        if (flight.cancelled) throw new Refusal(new CancelledError(`call ${method} was cancelled before it ran`));
        for (const role of registered.roles) {
          if (security === null || !security.hasRole(role)) {
            throw new Refusal(new Forbidden(`method ${method} requires role ${JSON.stringify(role)}`, { role }));
          }
        }
        ctx = new ServerCallContext<S>(security, meta.peer, meta, method, cached !== null, this, flight);
        const v = await registered.fn(params, ctx);
        flight.returned = true;
        flight.value = v;
        return v;
      };
    }
    // A retry of the same id replaces the older entry for CANCEL purposes; the older one still answers.
    this.#inFlight.set(id, flight);
    this.#running.add(flight);
    const task = this.#link.loop.createTask(body, { name: `rpc ${method} #${id}` });
    flight.task = task as Task<unknown>;
    task.addDoneCallback(() => {
      this.#running.delete(flight);
      if (this.#inFlight.get(id) === flight) this.#inFlight.delete(id);
      try {
        if (flight.answered) return; // interruptRunning answered it already
        if (task.cancelled()) {
          // The handler may have finished anyway (a cancel requested while it awaited a native promise lands only
          // as the body returns): then it is answered, and cached, with its result (rule 3: "or the result, if the
          // handler finished anyway").
          if (flight.returned) this.#settle(id, method, flight, cached, ctx, OK, flight.value);
          else this.#settle(id, method, flight, cached, ctx, CANCELLED, null);
        } else {
          // Read through result(): a handler may throw anything, `null` and `undefined` included, and exception()
          // returns null both for "no exception" and for `throw null` (which then had no reply at all).
          const ended = outcomeOf(task);
          this.#settle(id, method, flight, cached, ctx, ended.failed ? FAILED : OK, ended.value);
        }
      } finally {
        // After the reply was batched: a link waiting for the peer's EOF may now flush it and close.
        this.#link.settled?.();
      }
    });
  }

  // Refusals before the handler runs are answered but never cached: nothing happened, so a retry may succeed.
  // A method, not a closure made per request: under tsx (esbuild's keepNames) each named closure made costs an
  // Object.defineProperty of its name (~8% of an in-process round trip, bench/tmp-rpc measurements).
  #refuse(id: number, cached: CachedOutcome | null, err: TulipError): void {
    try {
      cached?.abandon();
    } finally {
      this.#sendOutcome(id, this.#toOutcome(err, null));
    }
  }

  // How a request ended: its reply (cached when idempotent), or a refusal (answered, never cached).
  #settle(id: number, method: string, flight: InFlight, cached: CachedOutcome | null, ctx: RpcContext<S> | null,
    how: Settled, value: unknown): void {
    if (how === CANCELLED) {
      this.#refuse(id, cached, new CancelledError(`call ${method} was cancelled`));
    } else if (how === OK) {
      const outcome: RpcOutcome = { ok: true, result: value ?? null };
      // The reply goes out even if a waiter on the cache entry throws (that is reported by the loop).
      try {
        cached?.complete(outcome);
      } finally {
        this.#sendOutcome(id, outcome);
      }
    } else if (value instanceof Refusal) {
      this.#refuse(id, cached, value.error);
    } else if (flight.aborted && (isCancelledError(value) || isAbortError(value, flight.reason))) {
      // The handler stopped because it was told to: nothing to cache, a retry runs it afresh.
      this.#refuse(id, cached, new CancelledError(`call ${method} was cancelled`));
    } else if (TulipError.isTulipError(value) && (value.code === 'TW_FORBIDDEN' || value.code === 'TW_METHOD_NOT_FOUND')) {
      // A check inside the handler (tokens' requireRole / authorize table) refused before anything ran.
      this.#refuse(id, cached, value);
    } else {
      const outcome = this.#toOutcome(value, ctx);
      try {
        cached?.complete(outcome);
      } finally {
        this.#sendOutcome(id, outcome);
      }
    }
  }

  #onCancel(message: unknown): void {
    if (!Array.isArray(message) || message.length !== 1 || !isId(message[0])) {
      this.#link.reject(new BadPayload('a CANCEL payload must be [id]'));
      return;
    }
    const flight = this.#inFlight.get(message[0]);
    if (flight === undefined || flight.cancelled) return;  // already answered: nothing to do
    flight.cancelled = true;
    abortFlight(flight, new CancelledError('the caller cancelled the call'));
    flight.task?.cancel('the caller cancelled the call');
  }

  #onNotify(message: unknown, meta: RpcMessageMeta): void {
    const note = parseNotify(message);
    if (note instanceof BadPayload) {
      this.#link.reject(note);
      return;
    }
    const registered = this.router.notifierOf(note.method);
    if (registered === undefined) return;  // notifications are fire-and-forget: an unknown one is ignored (JSON-RPC)
    const factory = this.#security;
    const { method, params, token } = note;
    let body: () => Promise<void>;
    if (factory === null && registered.inline) {
      // A plain function with nothing to check first runs inline, as a request's does; a returned promise waits in a Task.
      let r: unknown;
      try {
        r = registered.fn(params, { security: null, peer: meta.peer, meta, method, endpoint: this });
      } catch (err) {
        this.#notifyFailed(method, err, meta.peer);
        return;
      }
      if (!isThenable(r)) return;
      const pending = r;
      body = async () => { await pending; };
    } else {
      // A Task per notification, as for requests: handlers start in arrival order and may await library Futures.
      body = async () => {
        let security: S | null = null;
        if (factory !== null) {
          try {
            security = await factory({ peer: meta.peer, token, method, meta });
          } catch (err) {
            this.#refusedNotify(method, err);
            return;
          }
        }
        for (const role of registered.roles) {
          if (security === null || !security.hasRole(role)) {
            const err = new Forbidden(`notification ${method} requires role ${JSON.stringify(role)}`, { role });
            this.#sendError(null, err.code, err.message, { role });
            return;
          }
        }
        const ctx: NotifyContext<S> = { security, peer: meta.peer, meta, method, endpoint: this };
        await registered.fn(params, ctx);
      };
    }
    const task = this.#link.loop.createTask(body, { name: `rpc notify ${method}` });
    task.addDoneCallback(() => {
      if (task.cancelled()) return;
      const ended = outcomeOf(task);
      if (ended.failed) this.#notifyFailed(method, ended.value, meta.peer);
    });
  }

  // A notification handler threw. A typed error (any TulipError: `RpcError` with a `remoteCode`, `Forbidden`, …) is
  // a refusal the handler meant: the peer gets it as an ERROR with no id, as for a missing role, and nothing is
  // logged (a game rule refusing an input is not a bug, and a stack per refused input flooded the log). Anything
  // else is a bug in the handler: reported to the exception handler with its stack, the peer told nothing.
  #notifyFailed(method: string, err: unknown, peer: unknown): void {
    if (!TulipError.isTulipError(err)) {
      this.#report(`notification handler ${method} failed`, err, peer);
      return;
    }
    const w = this.#toOutcome(err, null);
    if (!w.ok) this.#sendError(null, w.code, w.message, w.data);
  }

  #refusedNotify(method: string, err: unknown): void {
    if (!TulipError.isTulipError(err)) this.#report(`the security context for notification ${method} could not be built`, err);
    const e = asTulip(err, `the security context for notification ${method} could not be built`);
    const w = this.#toOutcome(e, null);
    if (!w.ok) this.#sendError(null, w.code, w.message, w.data);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Replies

  #onResponse(message: unknown): void {
    if (!Array.isArray(message) || message.length !== 2 || !isId(message[0])) {
      this.#malformedReply(message, 'a RESPONSE payload must be [id, result]');
      return;
    }
    const entry = this.#pending.get(message[0]);
    if (entry === undefined) return;  // a late reply to a call that timed out or was cancelled
    this.#pending.delete(message[0]);
    // Cancelled by the caller, its done callback not run yet: the peer already finished, so nothing to cancel.
    if (entry.future.done()) return;
    entry.future.setResult(message[1]);
  }

  #onError(message: unknown): void {
    if (!Array.isArray(message) || message.length !== 4 || !(message[0] === null || isId(message[0]))
      || typeof message[1] !== 'string' || typeof message[2] !== 'string') {
      this.#malformedReply(message, 'an ERROR payload must be [id | nil, code, message, data]');
      return;
    }
    const err = errorFromWire(message[1], message[2], message[3]);
    if (message[0] === null) {
      if (this.#onUnmatchedError !== null) this.#onUnmatchedError(err);
      else this.#report('the peer sent an error that matches no call', err);
      return;
    }
    const entry = this.#pending.get(message[0]);
    if (entry === undefined) return;
    this.#pending.delete(message[0]);
    if (entry.future.done()) return;
    entry.future.setException(err);
  }

  // A reply of the wrong shape is refused (counted like any malformed message). When its id can still be read and
  // names a pending call, that call is answered with the refusal at once: the reply came, so waiting for the
  // timeout would only hide the peer's bug. The call fails first, as the refusal may close the connection.
  #malformedReply(message: unknown, why: string): void {
    const id = Array.isArray(message) && message.length > 0 && isId(message[0]) ? message[0] : null;
    const entry = id === null ? undefined : this.#pending.get(id);
    if (entry !== undefined) {
      this.#pending.delete(id!);
      if (!entry.future.done()) entry.future.setException(new BadPayload(`the reply to call ${entry.method} is malformed: ${why}`));
    }
    this.#link.reject(new BadPayload(why));
  }

  #sendOutcome(id: number, outcome: RpcOutcome): void {
    if (this.#closed !== null) return;
    if (outcome.ok) {
      try {
        this.#link.send([id, outcome.result ?? null], { kind: RPC_KIND.RESPONSE });
        return;
      } catch (err) {
        if (this.#closed !== null || isTransportError(err)) return;
        // The handler's result is not something the peer would accept (a Date, a Map, a bigint, too deep…: encode
        // refuses what every receiver refuses). The caller gets TW_BAD_PAYLOAD now instead of waiting for its
        // timeout, with the reason (encode's message names a type or a limit, never the data).
        this.#report(`the result of request ${id} could not be sent`, err);
        const why = TulipError.isTulipError(err) && err.code === 'TW_BAD_PAYLOAD' ? `: ${err.message}` : '';
        this.#sendError(id, 'TW_BAD_PAYLOAD', `the result could not be encoded${why}`, null);
        return;
      }
    }
    this.#sendError(id, outcome.code, outcome.message, outcome.data);
  }

  #sendError(id: number | null, code: string, message: string, data: unknown, fallback = false): void {
    if (this.#closed !== null) return;
    try {
      this.#link.send([id, code, message, data ?? null], { kind: RPC_KIND.ERROR });
    } catch (err) {
      if (this.#closed !== null || isTransportError(err)) return;
      if (data !== null && data !== undefined) {
        // The data could not be encoded: send the error without it.
        this.#sendError(id, code, message, null, fallback);
        return;
      }
      this.#report(`the error reply to request ${String(id)} could not be sent`, err);
      // Still answered (exactly one reply per request), with what can be sent: a message too large for the frame
      // would otherwise leave the caller waiting for its timeout.
      if (!fallback) {
        const why = TulipError.isTulipError(err) && err.code === 'TW_BAD_PAYLOAD' ? `: ${err.message}` : '';
        this.#sendError(id, 'TW_BAD_PAYLOAD', `the error reply (${code}) could not be encoded${why}`, null, true);
      }
    }
  }

  #sendCancel(id: number): void {
    if (this.#closed !== null) return;
    try {
      this.#link.send([id], { kind: RPC_KIND.CANCEL });
    } catch {
      // The connection is going away: the peer's handlers are aborted by its own connectionLost.
    }
  }

  // Turns what a handler threw into the error reply sent (and cached).
  #toOutcome(err: unknown, ctx: RpcContext<S> | null): RpcOutcome {
    if (TulipError.isTulipError(err)) {
      // The receiver refuses an ERROR whose code or message is not a str, and counts it against this side (16 and
      // it closes the connection): a handler in JavaScript may throw `new RpcError(text, {remoteCode: 404})` or
      // set a message that is no string. They are sent (and cached, and shared) as their string form ("404").
      if (err instanceof RpcError || err.code === 'TW_RPC') {
        const r = err as RpcError;
        return { ok: false, code: asText(r.remoteCode ?? 'TW_RPC'), message: asText(r.message), data: r.data ?? null };
      }
      return { ok: false, code: asText(err.code), message: asText(err.message), data: errorFields(err) };
    }
    if (ctx !== null) this.#report(`RPC handler ${ctx.method} failed`, err, ctx.peer);
    const message = this.#expose && err instanceof Error ? err.message : 'internal error';
    return { ok: false, code: 'TW_RPC', message, data: null };
  }

  // A handler's failure names the peer it ran for (its certificate identity), so a log line says whose call failed.
  #report(message: string, exception: unknown, peer?: unknown): void {
    const context = peer === undefined ? { message, exception, endpoint: this } : { message, exception, endpoint: this, peer: defaultPeerKey(peer) };
    this.#link.loop.callExceptionHandler(context);
  }

  #currentToken(): string | null {
    const t = this.#token;
    const v = typeof t === 'function' ? t() : t;
    return typeof v === 'string' ? v : null;
  }

  #allocateId(): number {
    // Ids wrap at 2^32; one still waiting for its reply is skipped, so two calls never share an id.
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= MAX_ID ? 1 : id + 1;
      if (!this.#pending.has(id)) return id;
    }
  }
}

// Reads an outcome written by another process (encoded [1, result] or [0, code, message, data]); null if malformed.
function decodeOutcome(bytes: Uint8Array): RpcOutcome | null {
  let v: unknown;
  try {
    v = decode(bytes);
  } catch {
    return null;
  }
  if (!Array.isArray(v)) return null;
  if (v[0] === 1 && v.length === 2) return { ok: true, result: v[1] };
  if (v[0] === 0 && v.length === 4 && typeof v[1] === 'string' && typeof v[2] === 'string') {
    return { ok: false, code: v[1], message: v[2], data: v[3] };
  }
  return null;
}

// A request refused before its handler ran (no handler, not authorized, cancelled early): answered, never cached.
class Refusal extends Error {
  readonly error: TulipError;
  constructor(error: TulipError) {
    super(error.message);
    this.error = error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Payload shapes

interface ParsedRequest { id: number; method: string; params: unknown; idempotent: boolean; token: string | null }

function parseRequest(m: unknown): ParsedRequest | BadPayload {
  if (!Array.isArray(m) || (m.length !== 3 && m.length !== 4)) {
    return new BadPayload('a REQUEST payload must be [id, method, params] or [id, method, params, options]');
  }
  const [id, method, params, opts] = m as [unknown, unknown, unknown, unknown];
  if (!isId(id)) return new BadPayload('a REQUEST id must be an integer in [0, 2^32)');
  if (!isMethodName(method)) {
    return new BadPayload(`a REQUEST method must be a string of 1 to ${MAX_METHOD_LENGTH} bytes`);
  }
  let idempotent = false;
  let token: string | null = null;
  if (m.length === 4) {
    const o = parseOptions(opts);
    if (o instanceof BadPayload) return o;
    idempotent = o.idempotent;
    token = o.token;
  }
  return { id, method, params, idempotent, token };
}

function parseNotify(m: unknown): { method: string; params: unknown; token: string | null } | BadPayload {
  if (!Array.isArray(m) || (m.length !== 2 && m.length !== 3)) {
    return new BadPayload('a NOTIFY payload must be [method, params] or [method, params, options]');
  }
  const method = m[0] as unknown;
  if (typeof method !== 'string' || method.length === 0 || Buffer.byteLength(method) > MAX_METHOD_LENGTH) {
    return new BadPayload(`a NOTIFY method must be a string of 1 to ${MAX_METHOD_LENGTH} bytes`);
  }
  let token: string | null = null;
  if (m.length === 3) {
    const o = parseOptions(m[2]);
    if (o instanceof BadPayload) return o;
    token = o.token;
  }
  return { method, params: m[1], token };
}

function parseOptions(o: unknown): { idempotent: boolean; token: string | null } | BadPayload {
  if (typeof o !== 'object' || o === null || Array.isArray(o) || Buffer.isBuffer(o) || o instanceof Uint8Array) {
    return new BadPayload('RPC options must be a map');
  }
  const r = o as Record<string, unknown>;
  if (r.idempotent !== undefined && typeof r.idempotent !== 'boolean') return new BadPayload('options.idempotent must be a boolean');
  if (r.token !== undefined && r.token !== null && typeof r.token !== 'string') return new BadPayload('options.token must be a string');
  // Unknown keys are ignored, so later versions can add options older peers skip.
  return { idempotent: r.idempotent === true, token: typeof r.token === 'string' ? r.token : null };
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_ID;
}

// True when `method` is a string of 1 to MAX_METHOD_LENGTH bytes of UTF-8. A UTF-16 code unit is at most 3 bytes
// of UTF-8, so a short name needs no byte count (the common case, on every call and request).
function isMethodName(method: unknown): method is string {
  if (typeof method !== 'string' || method.length === 0) return false;
  return method.length * 3 <= MAX_METHOD_LENGTH || Buffer.byteLength(method) <= MAX_METHOD_LENGTH;
}

function checkMethod(method: string): string {
  if (!isMethodName(method)) {
    throw new TypeError(`a method name is a string of 1 to ${MAX_METHOD_LENGTH} bytes`);
  }
  return method;
}

function registration<H>(fn: H, options: HandlerOptions): RegisteredHandler<H> {
  const roles = toRoles(options.roles);
  return { fn, roles, inline: options.task !== true && roles.length === 0 && !isAsyncFunction(fn) };
}

// `async function` and `async () =>` (native ones: a transpiled async function looks plain and takes the thenable path).
function isAsyncFunction(fn: unknown): boolean {
  const tag = Object.prototype.toString.call(fn);
  return tag === '[object AsyncFunction]' || tag === '[object AsyncGeneratorFunction]';
}

// A code or message as the str an ERROR payload must carry.
function asText(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

// How a finished, not cancelled, Task ended: its result, or what it threw (whatever that is: `null` and `undefined`
// too, which `exception()` cannot tell from "no exception").
function outcomeOf(task: Task<unknown>): { failed: boolean; value: unknown } {
  try {
    return { failed: false, value: task.result() };
  } catch (err) {
    return { failed: true, value: err };
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function';
}

function toRoles(roles: HandlerOptions['roles']): readonly string[] {
  if (roles === undefined) return [];
  return typeof roles === 'string' ? [roles] : [...roles];
}

// ---------------------------------------------------------------------------------------------------------------
// Errors on the wire

/** The plain-data fields of an error (role, retryAfter, lateBy, kid, method…) that travel in an error reply's data. */
function errorFields(err: TulipError): Record<string, string | number | boolean | null> | null {
  let out: Record<string, string | number | boolean | null> | null = null;
  for (const [k, v] of Object.entries(err)) {
    if (UNSENT_FIELDS.has(k)) continue;
    if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) {
      (out ??= {})[k] = v;
    }
  }
  return out;
}

/**
 * Rebuilds the error an ERROR reply names: a known `TW_` code as its class (with `remote = true` and its plain
 * fields, such as `Forbidden.role`, restored from `data`), any other code as {@link RpcError}.
 */
export function errorFromWire(code: string, message: string, data: unknown): TulipError {
  const err = errorFromCode(code, message, data);
  if (!(err instanceof RpcError) && typeof data === 'object' && data !== null && !Array.isArray(data)) {
    const target = err as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
      // Own fields only (role, retryAfter…): `k in err` would let the peer's data replace inherited members such
      // as toString or valueOf with strings, and `String(err)` would then throw.
      if (UNSENT_FIELDS.has(k) || !Object.hasOwn(err, k)) continue;
      if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) {
        target[k] = v;
      }
    }
  }
  return err;
}

function closedError(reason: Error): TulipError {
  if (TulipError.isTulipError(reason) && (reason.code === 'TW_TRANSPORT_CLOSED' || reason.code === 'TW_SESSION_CLOSED')) {
    return reason;
  }
  return new TransportClosed('the connection closed', { cause: reason });
}

/**
 * Checks a message lifetime given to `call`/`notify` at once, so a bad one is a plain TypeError (not a number, NaN
 * included) or RangeError (negative, infinite) where it was written, instead of an RpcError later.
 * @throws TypeError / RangeError as above; nothing when `ttl` is undefined (the connection's own ttl).
 */
export function checkMessageTtl(ttl: unknown): void {
  if (ttl === undefined) return;
  if (typeof ttl !== 'number' || Number.isNaN(ttl)) throw new TypeError(`a ttl is a number of seconds, got ${String(ttl)}`);
  if (!(ttl >= 0) || !Number.isFinite(ttl)) throw new RangeError(`a ttl is a finite number of seconds >= 0, got ${ttl}`);
}

function wrap(err: unknown): Error {
  // A bad argument the send checks (a ttl over maxTtl, a nonce of the wrong size) stays what it is: the caller's
  // mistake, named plainly, not "the call could not be sent".
  if (err instanceof RangeError || err instanceof TypeError) return err;
  if (isTransportError(err) && (err as TulipError).code !== 'TW_TRANSPORT_CLOSED') {
    return new TransportClosed('the call could not be sent: the connection is not open', { cause: err });
  }
  return asTulip(err, 'the call could not be sent');
}

// The connection is closed or closing (MessageProtocol.sendMessage throws a TransportError then).
function isTransportError(err: unknown): boolean {
  return TulipError.isTulipError(err) && err.code.startsWith('TW_TRANSPORT');
}

function asTulip(err: unknown, message: string): TulipError {
  if (TulipError.isTulipError(err)) return err;
  return new RpcError(message, { cause: err, remoteCode: 'TW_RPC' });
}

function isAbortError(err: unknown, reason: unknown): boolean {
  return err === reason || (err instanceof Error && err.name === 'AbortError');
}

/**
 * The default identity string idempotent outcomes are filed under: the peer certificate's `tulip://` identity
 * (stable when the certificate is renewed, so a retry after a rotation still finds its outcome), else its
 * fingerprint, else its subject, else "anonymous".
 */
export function defaultPeerKey(peer: unknown): string {
  if (typeof peer !== 'object' || peer === null) return 'anonymous';
  const p = peer as Record<string, unknown>;
  for (const f of ['identity', 'fingerprint', 'subject']) {
    const v = p[f];
    if (typeof v === 'string' && v.length > 0) return v;
  }
  return 'anonymous';
}

// ---------------------------------------------------------------------------------------------------------------
// The Protocol

/** Options of {@link RpcProtocol}: MessageProtocol's (keyring, side, nonceStore, clock, ttl, skew…) and the endpoint's. */
export type RpcProtocolOptions<S extends RpcSecurity = RpcSecurity> =
  ConstructorParameters<typeof MessageProtocol>[0] & Omit<RpcEndpointOptions<S>, 'skew'>;

// Idempotent outcomes are shared exactly as widely as the nonce store, within this process: every RpcProtocol given
// the same NonceStore (all connections of a server, usually) files and finds outcomes in one cache, so a retry on a
// new connection is answered from the first attempt's outcome without any configuration.
const cachesByStore = new WeakMap<object, IdempotencyCache<RpcOutcome>>();

/**
 * RPC over one signed-message connection: a {@link MessageProtocol} whose RPC kinds (REQUEST … CANCEL) go to an
 * {@link RpcEndpoint}. Use it as the protocol of `createServer`/`createConnection`:
 *
 * ```ts
 * const router = new RpcRouter().handle('add', ([a, b]) => a + b);
 * const server = await loop.createServer(() => new RpcProtocol({ keyring, side: 'server', router, nonceStore }), '127.0.0.1', 0, { ssl });
 * const [, client] = await loop.createConnection(() => new RpcProtocol({ keyring, side: 'client' }), '127.0.0.1', port, { ssl });
 * await client.call('add', [2, 3]);   // 5
 * ```
 *
 * Both sides may call and notify each other. Messages of other kinds reach {@link otherMessageReceived}.
 * When the connection is lost every pending call fails with TransportClosed (its `cause` the connection's error).
 */
export class RpcProtocol<S extends RpcSecurity = RpcSecurity> extends MessageProtocol {
  /** The handler table (shared when given in the options). */
  readonly router: RpcRouter<S>;
  readonly #options: RpcProtocolOptions<S>;
  #endpoint: RpcEndpoint<S> | null = null;
  #lost: Error | null = null;
  // True once the peer ended its stream (eofReceived ran).
  #peerEnded = false;

  /** @throws TypeError/RangeError for invalid MessageProtocol options (see MessageProtocol). */
  constructor(options: RpcProtocolOptions<S>) {
    super(options);
    this.#options = options;
    this.router = options.router ?? new RpcRouter<S>();
  }

  /** True once the connection is lost (`connectionLost` ran): calls fail at once with TransportClosed. */
  get closed(): boolean {
    return this.#lost !== null;
  }

  /** The endpoint, from `connectionMade` on (null before). */
  get rpc(): RpcEndpoint<S> | null {
    return this.#endpoint;
  }

  /** Sets up the endpoint; subclasses that override it call `super.connectionMade(transport)`. */
  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    const o = this.#options;
    const store = o.nonceStore;
    let cache = o.idempotencyCache;
    if (cache === undefined && store !== undefined && store !== null) {
      cache = cachesByStore.get(store);
      if (cache === undefined) {
        cache = new IdempotencyCache<RpcOutcome>({ clock: this.clock });
        cachesByStore.set(store, cache);
      }
    }
    // Every transport tulipwire makes runs on an EventLoop; the Transport contract only names the part it uses.
    const loop = transport.getLoop() as unknown as EventLoop;
    const link: RpcLink = {
      loop,
      clock: this.clock,
      ttl: this.ttl,
      send: (message, so) => {
        this.sendMessage(message, so);
        return this._lastExpiresAt;
      },
      reject: (error) => { this.rejectMessage(error); },
      settled: () => { this.repliesSettled(); },
    };
    this.#endpoint = new RpcEndpoint<S>(link, {
      ...o, router: this.router, skew: this.skew,
      ...(cache !== undefined ? { idempotencyCache: cache } : {}),
    });
  }

  /**
   * The endpoint's {@link RpcEndpoint.owedReplies}: after the peer ended its stream, the connection stays open (for at
   * most `eofTimeout` seconds) until the handlers already running have sent their replies.
   */
  protected override get owedReplies(): number {
    return this.#endpoint?.owedReplies ?? 0;
  }

  /** Routes RPC kinds to the endpoint, others to {@link otherMessageReceived}. */
  override messageReceived(message: unknown, meta: MessageMeta): void {
    if (this.#endpoint === null || !this.#endpoint.receive(message, meta)) this.otherMessageReceived(message, meta);
  }

  /** A verified message of a non-RPC kind (16 and up, or a session kind). Override to handle it; default ignores it. */
  otherMessageReceived(_message: unknown, _meta: MessageMeta): void {}

  /** Answers a retried idempotent request from the cache (see {@link RpcEndpoint.duplicate}). */
  override duplicateNonce(message: unknown, meta: MessageMeta): boolean {
    return this.#endpoint !== null && this.#endpoint.duplicate(message, meta);
  }

  /**
   * Flushes what was sent and closes (as MessageProtocol's `close`). When this end closes first, the endpoint ends
   * at once: no reply can be read once this end closed, so the calls still waiting fail now with TransportClosed
   * (not when the peer finishes closing, which may first wait up to its `eofTimeout` for its running handlers), and
   * the handlers of the peer's requests see `ctx.signal` abort (their replies could not be sent any more). After the
   * peer ended its stream the connection ends at once anyway, and that happens in `connectionLost`. Idempotent.
   */
  override close(): void {
    super.close();
    if (!this.#peerEnded) this.#endpoint?.close(new TransportClosed('the connection was closed by this end'));
  }

  /** Notes that the peer ended its stream, then as MessageProtocol's `eofReceived` (which waits for owed replies). */
  override eofReceived(): boolean | void {
    this.#peerEnded = true;
    return super.eofReceived();
  }

  /** Fails every pending call with TransportClosed; subclasses that override it call `super.connectionLost(exc)`. */
  override connectionLost(exc: Error | null): void {
    this.#lost = new TransportClosed(exc === null ? 'the connection closed' : `the connection was lost: ${exc.message}`,
      exc === null ? undefined : { cause: exc });
    this.#endpoint?.close(this.#lost);
    super.connectionLost(exc);
  }

  /** Calls `method` on the peer (see {@link RpcEndpoint.call}); before `connectionMade` the Future fails with TransportClosed. */
  call<T = unknown>(method: string, params?: unknown, options?: CallOptions): Future<T> {
    if (this.#endpoint !== null) return this.#endpoint.call<T>(method, params, options);
    const f = getRunningLoop().createFuture<T>();
    f.setException(this.#lost ?? new TransportClosed('not connected yet'));
    return f;
  }

  /**
   * Sends notification `method` to the peer (see {@link RpcEndpoint.notify}).
   * @throws TransportClosed when not connected
   */
  notify(method: string, params?: unknown, options?: { ttl?: number }): void {
    if (this.#endpoint === null) throw this.#lost ?? new TransportClosed('not connected yet');
    this.#endpoint.notify(method, params, options);
  }

  /** Registers a request handler on {@link router}. */
  handle(method: string, handler: RpcHandler<S>, options?: HandlerOptions): this {
    this.router.handle(method, handler, options);
    return this;
  }

  /** Registers a notification handler on {@link router}. */
  onNotify(method: string, handler: NotifyHandler<S>, options?: HandlerOptions): this {
    this.router.onNotify(method, handler, options);
    return this;
  }
}
