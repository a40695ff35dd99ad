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
/** Longest run of loop iterations inside one libuv turn before yielding to I/O, seconds (ASYNCIO-NOTES §0: ~1 ms). */
export const LOOP_TURN_BUDGET = 0.001;
/** Largest frame accepted, bytes: 1 MiB, checked from the 4 header bytes before anything is allocated. */
export const MAX_FRAME_SIZE = 1024 * 1024;
/** Default message lifetime, seconds: long enough for a retry across a reconnect, short enough to bound replay caches. */
export const MESSAGE_TTL = 30;
/** Clock skew allowed when checking expiry, seconds. */
export const CLOCK_SKEW = 5;
/** Rejected messages tolerated on one connection before it is closed. */
export const MAX_REJECTIONS = 16;
/** Certificate lifetime, seconds: ~24 h, the seeds' "issue certificates for about a day, skip revocation". */
export const CERT_LIFETIME = 24 * 3600;
/** notBefore is backdated by this much for clock skew, seconds. */
export const CERT_BACKDATE = 5 * 60;
/** A leaf is renewed at this fraction of its lifetime (the seeds' "cron job every 12 hours" on 24 h certificates, with margin). */
export const RENEW_AT_FRACTION = 2 / 3;
