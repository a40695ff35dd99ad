/** The session area's public exports, re-exported by src/index.ts. */
export { Backoff, backoffWindow } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { ConnectionCounter, TokenBucket } from './rate-limit.js';
export type { TokenBucketOptions } from './rate-limit.js';
export { Heartbeat, HeartbeatTimer } from './heartbeat.js';
export type { HeartbeatAction, HeartbeatOptions, HeartbeatScheduler, HeartbeatTimerOptions } from './heartbeat.js';
export { WaitQueue } from './wait-queue.js';
export type { Waiter } from './wait-queue.js';
export { SESSION_KIND } from './protocol.js';
export type { ConnectionNotifyOptions, GoawayNotice, HeldNotification, ReconnectNotice, SessionProtocolOptions } from './protocol.js';
export { Session, SessionLink, openSession } from './session.js';
export type { ClientCertificateSource, SessionCallOptions, SessionConnector, SessionMessage, SessionNotifyOptions, SessionOptions } from './session.js';
export { SessionConnection, SessionServer, ownCertificateNotAfter, serveSessions } from './session-server.js';
export type {
  DrainOptions, DrainResult, ListeningServer, ServerCertificateSource, SessionServerOptions,
} from './session-server.js';
