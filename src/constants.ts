/**
 * Every default tulipwire uses, each with its reason. Times are seconds and sizes bytes, as everywhere in the API.
 */

/** TLS handshake timeout, seconds: asyncio's `SSL_HANDSHAKE_TIMEOUT`, which matches nginx's. */
export const SSL_HANDSHAKE_TIMEOUT = 60.0;
/** TLS shutdown (close_notify) timeout, seconds: asyncio's `SSL_SHUTDOWN_TIMEOUT`. */
export const SSL_SHUTDOWN_TIMEOUT = 30.0;
/** Transport write buffer high-water mark, bytes: asyncio's TCP default (64 KiB). */
export const WRITE_BUFFER_HIGH = 64 * 1024;
/** Transport write buffer low-water mark, bytes: asyncio's TCP default (a quarter of high). */
export const WRITE_BUFFER_LOW = 16 * 1024;
/**
 * A session connection whose peer stopped reading is closed (SlowConsumer) once its transport holds more than this
 * many bytes, 8 MiB: seconds of a busy game room's traffic, far beyond a burst, so memory stays bounded per peer.
 */
export const MAX_WRITE_BUFFER = 8 * 1024 * 1024;
/** Stream buffer limit, bytes: asyncio's `_DEFAULT_LIMIT` (64 KiB). */
export const STREAM_LIMIT = 64 * 1024;
/** Server listen backlog: asyncio's `create_server` default. */
export const SERVER_BACKLOG = 100;
/** A callback slower than this is logged in debug mode, seconds: asyncio's `slow_callback_duration`. */
export const SLOW_CALLBACK_DURATION = 0.1;
/** The timer heap is compacted once more than this many timers are scheduled and… (asyncio `_MIN_SCHEDULED_TIMER_HANDLES`). */
export const MIN_SCHEDULED_TIMER_HANDLES = 100;
/** …more than this fraction of them are cancelled (asyncio `_MIN_CANCELLED_TIMER_HANDLES_FRACTION`). */
export const MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5;
/**
 * Real time a loop turn runs iterations back to back before it yields to libuv (I/O), seconds (~1 ms). Checked
 * between iterations only, so a turn can overrun it by the iterations since its last clock read.
 */
export const LOOP_TURN_BUDGET = 0.001;
/** Largest frame accepted, bytes: 1 MiB, checked from the 4 header bytes before anything is allocated. */
export const MAX_FRAME_SIZE = 1024 * 1024;
/** Default message lifetime, seconds: long enough for a retry across a reconnect, short enough to bound replay caches. */
export const MESSAGE_TTL = 30;
/** Clock skew allowed when checking expiry, seconds. */
export const CLOCK_SKEW = 5;
/** Rejected messages tolerated on one connection before it is closed. */
export const MAX_REJECTIONS = 16;
/** Certificate lifetime, seconds: ~24 h, Armin Ronacher's "issue certificates for 24 hours", "screw revocations" (talk "SSL, CAs and keeping your stuff safe", PyGrunn 2014). */
export const CERT_LIFETIME = 24 * 3600;
/** notBefore is backdated by this much for clock skew, seconds. */
export const CERT_BACKDATE = 5 * 60;
/** A leaf is renewed at this fraction of its lifetime (Ronacher's "cron job every 12 hours" on 24 h certificates, with margin). */
export const RENEW_AT_FRACTION = 2 / 3;
/** Most nonces a MemoryNonceStore holds at once: ~70 MB at ~70 B/entry; when full it fails closed. */
export const NONCE_CACHE_MAX_ENTRIES = 1_000_000;
/** Width of a MemoryNonceStore expiry bucket, seconds: entries are evicted at most this long after they expire. */
export const NONCE_BUCKET_WIDTH = 1;
/** Expired entries a MemoryNonceStore evicts per reserve: more than the one it inserts, so eviction keeps up, O(1) per call. */
export const NONCE_EVICT_BUDGET = 16;
/** A Redis command that gets no reply within this many seconds fails (StoreUnavailable): fail closed, never hang. */
export const REDIS_COMMAND_TIMEOUT = 2;
/** Access token lifetime, seconds: short-lived; a stolen one is good for at most this long (Ronacher's talks accept ~24 h). */
export const ACCESS_TOKEN_TTL = 3600;
/** Refresh token lifetime, seconds (30 days); bumping the account's generation revokes them all at once. */
export const REFRESH_TOKEN_TTL = 30 * 24 * 3600;
/** Auth ticket lifetime, seconds: `make_auth_ticket(user_id, expires_in=60)` of Ronacher's talk "Writing Secure APIs" (PyCon Russia 2014). */
export const AUTH_TICKET_TTL = 60;
/** Lifetime of a CA root, seconds (10 years): it signs only intermediates and stays offline. */
export const CA_ROOT_LIFETIME = 10 * 365 * 24 * 3600;
/** Lifetime of the issuing intermediate, seconds (90 days): rotated under the same root while leaves renew daily. */
export const CA_INTERMEDIATE_LIFETIME = 90 * 24 * 3600;
/** First retry delay after a failed certificate renewal, seconds; doubles per failure up to {@link RENEW_RETRY_MAX}. */
export const RENEW_RETRY_MIN = 5;
/** Longest retry delay after failed renewals, seconds (a 24 h leaf still gets dozens of attempts before expiry). */
export const RENEW_RETRY_MAX = 300;
/** Past this fraction of its lifetime an unrenewed certificate is reported loudly on every failed attempt. */
export const CERT_WARN_AT_FRACTION = 5 / 6;
/** First reconnect window, seconds: the n-th retry waits uniform [0, min(cap, base·2ⁿ)) (full jitter, AWS 2015). */
export const RECONNECT_BASE = 0.5;
/** Largest reconnect window, seconds: socket.io waits 1–5 s; 30 s keeps a 1,000-client storm spread yet bounded. */
export const RECONNECT_CAP = 30;
/** Reconnect attempts before a session gives up: a game or service session keeps trying until it is cancelled. */
export const RECONNECT_ATTEMPTS = Infinity;
/** Seconds between signed PINGs, both ways: Colyseus pings every 3 s, Nakama 15 s. */
export const HEARTBEAT_INTERVAL = 5;
/** A peer silent this long is dropped with PeerTimeout, seconds: three missed heartbeats (Colyseus ~6–9 s, Nakama 25 s). */
export const IDLE_TIMEOUT = 15;
/** Calls a session holds while disconnected; one more fails with SessionClosed (bounded waiting, never unbounded). */
export const SESSION_QUEUE_SIZE = 1024;
/** Messages a session holds for `Session.messages` (and behind an older connection) before reading pauses. */
export const SESSION_BUFFERED_MESSAGES = 1024;
/** Connections one certificate identity may hold on a session server at once. */
export const MAX_CONNECTIONS_PER_IDENTITY = 8;
/** RPCs one connection may have in flight; one more is answered TooManyInFlight (Nakama kicks at 64 queued). */
export const MAX_IN_FLIGHT = 64;
/** Sustained messages per second per connection (token bucket rate): a 64 Hz client plus its RPCs, with room. */
export const MESSAGE_RATE = 200;
/** Token bucket size per connection, messages: two seconds' worth of burst after a quiet spell or a reconnect. */
export const MESSAGE_BURST = 400;
/** The signed RECONNECT notice goes this many seconds before the connection is closed at the earlier notAfter of the two certificates. */
export const RECONNECT_NOTICE = 30;
/** `SessionServer.drain()` timeout, seconds: in-flight RPCs get this long after GOAWAY before the rest is closed. */
export const DRAIN_TIMEOUT = 30;
/**
 * During `SessionServer.drain()`, a connection with nothing in flight is closed this long after its GOAWAY, seconds
 * (at most a quarter of the drain timeout): time for requests already on the wire and for the client to close its
 * side. Session clients close as soon as their own calls are answered, so it only delays the drain for other clients.
 */
export const DRAIN_GRACE = 0.5;
/** A connection closed by `SessionServer.close()` or at the drain timeout gets this long for close_notify before it is aborted, seconds. */
export const CLOSE_GRACE = 0.25;
/** Default RPC call timeout, seconds: as long as the default message TTL, after which an answer could not verify anyway. */
export const RPC_TIMEOUT = 30;
/** Finished idempotent RPC outcomes kept per cache: forgetting one early is safe (the retry is refused, not re-run). */
export const IDEMPOTENCY_CACHE_MAX_ENTRIES = 10_000;
/** Microtask hops the loop waits for a resumed task to reach its next suspension before it gives up on the step
 *  (a task awaiting a foreign promise: docs/event-loop-internals.md, "Atomic task steps"). Deep async call chains need far fewer. */
export const TASK_STEP_HOP_CAP = 256;
/** Longest wait the loop computes for its next timer, seconds (asyncio `MAXIMUM_SELECT_TIMEOUT`, 24 h). */
export const MAXIMUM_SELECT_TIMEOUT = 24 * 3600;
/** Largest decompressed payload a URL-safe token may carry, bytes (64 KiB): bounds a zlib bomb inside a signed token. */
export const TOKEN_MAX_PAYLOAD = 64 * 1024;
/** An expired access token is remembered this long past its expiry, seconds, so a late use says TokenExpired, not UnknownToken. */
export const EXPIRED_TOKEN_MEMORY = 3600;
/** How often a retry waiting on another process's idempotent run re-reads the shared outcome store, seconds. */
export const OUTCOME_POLL_INTERVAL = 0.05;
