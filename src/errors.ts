/**
 * Every error tulipwire throws or sends, in one tree rooted at {@link TulipError}.
 *
 * Each class has a stable `code` (`TW_` + the class name in SCREAMING_SNAKE, acronyms as one word), set both as a
 * static and an instance property. Match on `err.code`, not on `instanceof`: codes survive the wire (an error reply
 * carries the same string) and duplicate copies of the package. `docs/errors.md` gives each code one sentence.
 *
 * To add a class: subclass the right parent, give it a `static readonly code` and a default message, add its code to
 * {@link TulipErrorCode}, a row in `test/errors.test.ts`, and a line in `docs/errors.md`.
 */

/** Options every tulipwire error accepts. */
export interface TulipErrorOptions {
  /** The underlying error (from node:tls, msgpackr, ioredis, …), never passed through raw. */
  cause?: unknown;
}

const kTulipError = Symbol.for('tulipwire.error');

/** The root of every tulipwire error. */
export class TulipError extends Error {
  /** The stable code of this class. */
  static readonly code: string = 'TW_ERROR';
  /** The stable code of this error; an error reply on the wire carries the same string. */
  readonly code: TulipErrorCode;
  /** True when this error was decoded from a peer's error reply rather than raised here. */
  remote = false;

  constructor(message?: string, options?: TulipErrorOptions) {
    super(message ?? (new.target as typeof TulipError).defaultMessage, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = (new.target as typeof TulipError).code as TulipErrorCode;
    Object.defineProperty(this, kTulipError, { value: true });
  }

  /** The message used when none is given. */
  static get defaultMessage(): string {
    return 'tulipwire error';
  }

  /** True for any tulipwire error, also one made by another copy of this package. */
  static isTulipError(value: unknown): value is TulipError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kTulipError] === true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The loop

/** The operation was cancelled (asyncio's `CancelledError`). Always rethrow it after cleaning up; see {@link isCancelledError}. */
export class CancelledError extends TulipError {
  static override readonly code: string = 'TW_CANCELLED';
  static override get defaultMessage() { return 'cancelled'; }
}
/** An operation did not finish before its deadline (asyncio's `TimeoutError`); `cause` is the `CancelledError` it replaced. */
export class TimeoutError extends TulipError {
  static override readonly code: string = 'TW_TIMEOUT';
  static override get defaultMessage() { return 'timed out'; }
}
/** A Future or Task was used in a state that does not allow it (result of a pending Future, result set twice). */
export class InvalidStateError extends TulipError {
  static override readonly code: string = 'TW_INVALID_STATE';
  static override get defaultMessage() { return 'invalid state'; }
}
/** The event loop is closed (asyncio raises a bare `RuntimeError('Event loop is closed')`). */
export class LoopClosedError extends TulipError {
  static override readonly code: string = 'TW_LOOP_CLOSED';
  static override get defaultMessage() { return 'event loop is closed'; }
}
/** `getNowait()` on an empty queue. */
export class QueueEmpty extends TulipError {
  static override readonly code: string = 'TW_QUEUE_EMPTY';
  static override get defaultMessage() { return 'queue is empty'; }
}
/** `putNowait()` on a full queue. */
export class QueueFull extends TulipError {
  static override readonly code: string = 'TW_QUEUE_FULL';
  static override get defaultMessage() { return 'queue is full'; }
}
/** A put on a queue that was shut down, or a get on one that is shut down and empty. */
export class QueueShutDown extends TulipError {
  static override readonly code: string = 'TW_QUEUE_SHUT_DOWN';
  static override get defaultMessage() { return 'queue is shut down'; }
}
/** A `Barrier` was reset or aborted while a task waited on it. */
export class BrokenBarrierError extends TulipError {
  static override readonly code: string = 'TW_BROKEN_BARRIER';
  static override get defaultMessage() { return 'barrier is broken'; }
}

// ---------------------------------------------------------------------------------------------------------------
// Streams

/** The stream ended before `expected` bytes arrived; `partial` holds what did. */
export class IncompleteReadError extends TulipError {
  static override readonly code: string = 'TW_INCOMPLETE_READ';
  /** The bytes read before the end of the stream. */
  readonly partial: Buffer;
  /** How many bytes were wanted, or null when reading up to a separator. */
  readonly expected: number | null;
  constructor(partial: Buffer, expected: number | null, options?: TulipErrorOptions) {
    super(`${partial.length} bytes read on a total of ${expected ?? 'undefined'} expected bytes`, options);
    this.partial = partial;
    this.expected = expected;
  }
}
/** The separator was not found within the stream's limit; `consumed` bytes are still buffered. */
export class LimitOverrunError extends TulipError {
  static override readonly code: string = 'TW_LIMIT_OVERRUN';
  /** How many bytes must be consumed to get past the overrun. */
  readonly consumed: number;
  constructor(message: string, consumed: number, options?: TulipErrorOptions) {
    super(message, options);
    this.consumed = consumed;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Transports

/** The root of transport failures. */
export class TransportError extends TulipError {
  static override readonly code: string = 'TW_TRANSPORT';
  static override get defaultMessage() { return 'transport error'; }
}
/** The transport is closed or closing. */
export class TransportClosed extends TransportError {
  static override readonly code: string = 'TW_TRANSPORT_CLOSED';
  static override get defaultMessage() { return 'transport is closed'; }
}
/** The TLS handshake did not finish within `sslHandshakeTimeout`. */
export class HandshakeTimeout extends TransportError {
  static override readonly code: string = 'TW_HANDSHAKE_TIMEOUT';
  static override get defaultMessage() { return 'TLS handshake timed out'; }
}
/** The peer refused the connection or the TLS handshake; `cause` is the node:tls error when there is one. */
export class PeerRejected extends TransportError {
  static override readonly code: string = 'TW_PEER_REJECTED';
  static override get defaultMessage() { return 'the peer rejected the connection'; }
}

// ---------------------------------------------------------------------------------------------------------------
// PKI

/**
 * The root of private-CA failures, also thrown itself: an invalid name, DNS name or IP address, a leaf outliving
 * the intermediate, a CA directory another process holds locked, a file or directory that cannot be written.
 */
export class CAError extends TulipError {
  static override readonly code: string = 'TW_CA';
  static override get defaultMessage() { return 'certificate authority error'; }
}
/** No CA exists in the given directory. */
export class CANotFound extends CAError {
  static override readonly code: string = 'TW_CA_NOT_FOUND';
  static override get defaultMessage() { return 'no CA found in that directory'; }
}
/** A CA file exists but cannot be parsed, or its parts do not belong together. */
export class CACorrupt extends CAError {
  static override readonly code: string = 'TW_CA_CORRUPT';
  static override get defaultMessage() { return 'the CA directory is corrupt'; }
}
/** The passphrase does not decrypt the CA's root key. */
export class CABadPassphrase extends CAError {
  static override readonly code: string = 'TW_CA_BAD_PASSPHRASE';
  static override get defaultMessage() { return 'wrong passphrase for the CA root key'; }
}
/**
 * A CA key file (`root.key.pem`, `intermediate.key.pem`) can be read or written by its group or by others (mode 0644
 * after a careless copy, say), so `PrivateCA.load` refuses it, as ssh refuses such a private key. `path` names the
 * file and `mode` holds its permission bits; the fix is `chmod 600 <path>`.
 */
export class CAKeyPermissions extends CAError {
  static override readonly code: string = 'TW_CA_KEY_PERMISSIONS';
  static override get defaultMessage() { return 'a CA key file is accessible to its group or others'; }
  /** The key file, as the CA directory names it; null when not known. */
  path: string | null = null;
  /** Its permission bits (`mode & 0o777`, e.g. `0o644`); null when not known. */
  mode: number | null = null;
  constructor(message?: string, options?: TulipErrorOptions & { path?: string | null; mode?: number | null }) {
    super(message, options);
    this.path = options?.path ?? null;
    this.mode = options?.mode ?? null;
  }
}
/**
 * A passphrase was given for a root key stored unencrypted (`root.key.pem` is a plain `PRIVATE KEY`): refused so that
 * no one believes a plaintext key is protected. `path` names the file.
 */
export class CAKeyNotEncrypted extends CAError {
  static override readonly code: string = 'TW_CA_KEY_NOT_ENCRYPTED';
  static override get defaultMessage() { return 'a passphrase was given but the CA root key is not encrypted'; }
  /** The unencrypted key file; null when not known. */
  path: string | null = null;
  constructor(message?: string, options?: TulipErrorOptions & { path?: string | null }) {
    super(message, options);
    this.path = options?.path ?? null;
  }
}
/** The root of certificate verification failures; `cause` is the node:tls error. */
export class CertificateError extends TulipError {
  static override readonly code: string = 'TW_CERTIFICATE';
  static override get defaultMessage() { return 'certificate verification failed'; }
}
/** The client presented no certificate to a server that requires one. */
export class NoClientCertificate extends CertificateError {
  static override readonly code: string = 'TW_NO_CLIENT_CERTIFICATE';
  static override get defaultMessage() { return 'the client presented no certificate'; }
}
/** The peer's certificate was not issued by the trusted CA. */
export class UnknownIssuer extends CertificateError {
  static override readonly code: string = 'TW_UNKNOWN_ISSUER';
  static override get defaultMessage() { return 'the certificate was not issued by the trusted CA'; }
}
/** The peer's certificate has expired. */
export class CertificateExpired extends CertificateError {
  static override readonly code: string = 'TW_CERTIFICATE_EXPIRED';
  static override get defaultMessage() { return 'the certificate has expired'; }
}
/** The peer's certificate is not valid yet (clock skew, or issued for the future). */
export class CertificateNotYetValid extends CertificateError {
  static override readonly code: string = 'TW_CERTIFICATE_NOT_YET_VALID';
  static override get defaultMessage() { return 'the certificate is not valid yet'; }
}
/** The certificate's extended key usage does not allow this use (a client certificate used by a server). */
export class WrongPurpose extends CertificateError {
  static override readonly code: string = 'TW_WRONG_PURPOSE';
  static override get defaultMessage() { return 'the certificate is not issued for this purpose'; }
}
/** The server's certificate does not name the host the client connected to. */
export class HostnameMismatch extends CertificateError {
  static override readonly code: string = 'TW_HOSTNAME_MISMATCH';
  static override get defaultMessage() { return 'the certificate does not match the host name'; }
}
/** The chain's root does not match the pinned SPKI hash. */
export class PinMismatch extends CertificateError {
  static override readonly code: string = 'TW_PIN_MISMATCH';
  static override get defaultMessage() { return 'the CA root does not match the pinned key'; }
}

// ---------------------------------------------------------------------------------------------------------------
// Stores

/** A bounded replay cache is full; the message is refused rather than accepted unchecked (fail closed). */
export class ReplayCacheFull extends TulipError {
  static override readonly code: string = 'TW_REPLAY_CACHE_FULL';
  static override get defaultMessage() { return 'the replay cache is full'; }
}
/**
 * A shared store (Redis) could not be reached, or a nonce store failed with an error of its own (a MessageProtocol
 * refuses the message as StoreUnavailable, not counted against the peer); the operation fails closed.
 */
export class StoreUnavailable extends TulipError {
  static override readonly code: string = 'TW_STORE_UNAVAILABLE';
  static override get defaultMessage() { return 'the store is unavailable'; }
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input from a peer (shared by tokens and the wire)

/** The root of errors about data a peer sent (itsdangerous's `BadData`). `fatal` errors close the connection. */
export class BadData extends TulipError {
  static override readonly code: string = 'TW_BAD_DATA';
  static override get defaultMessage() { return 'bad data'; }
  /** True when the byte stream can no longer be trusted to be in sync, so the connection must close. */
  fatal = false;
}
/** The signature does not match. `payload` is the unverified payload: never trust it. */
export class BadSignature extends BadData {
  static override readonly code: string = 'TW_BAD_SIGNATURE';
  static override get defaultMessage() { return 'signature does not match'; }
  /** The payload whose signature failed, for debugging only; never to be trusted. */
  payload: unknown = undefined;
  constructor(message?: string, options?: TulipErrorOptions & { payload?: unknown }) {
    super(message, options);
    this.payload = options?.payload;
  }
}
/** A timestamped signature is malformed or does not match. `dateSigned` is epoch seconds when it could be read. */
export class BadTimeSignature extends BadSignature {
  static override readonly code: string = 'TW_BAD_TIME_SIGNATURE';
  static override get defaultMessage() { return 'timestamp signature does not match'; }
  /** When the value was signed, epoch seconds, if known. */
  dateSigned: number | null = null;
  constructor(message?: string, options?: TulipErrorOptions & { payload?: unknown; dateSigned?: number | null }) {
    super(message, options);
    this.dateSigned = options?.dateSigned ?? null;
  }
}
/** The signature is valid but older than allowed. `lateBy` says by how many seconds. */
export class SignatureExpired extends BadTimeSignature {
  static override readonly code: string = 'TW_SIGNATURE_EXPIRED';
  static override get defaultMessage() { return 'signature expired'; }
  /** How many seconds past its expiry (plus allowance) the value arrived. */
  lateBy = 0;
  constructor(message?: string, options?: TulipErrorOptions & { payload?: unknown; dateSigned?: number | null; lateBy?: number }) {
    super(message, options);
    this.lateBy = options?.lateBy ?? 0;
  }
}
/** The envelope names a key id the keyring does not hold. */
export class UnknownKeyId extends BadSignature {
  static override readonly code: string = 'TW_UNKNOWN_KEY_ID';
  static override get defaultMessage() { return 'unknown key id'; }
  /** The key id the message named. */
  kid: string | null = null;
  constructor(message?: string, options?: TulipErrorOptions & { kid?: string | null }) {
    super(message, options);
    this.kid = options?.kid ?? null;
  }
}
/**
 * The signed payload could not be decoded, or its shape is not allowed (itsdangerous's `BadPayload`). Also thrown at
 * send time for a value a receiver would refuse (a Date, Map, bigint, class instance, NaN, too deep…: see `encode`),
 * with nothing sent.
 */
export class BadPayload extends BadData {
  static override readonly code: string = 'TW_BAD_PAYLOAD';
  static override get defaultMessage() { return 'could not decode the payload'; }
}
/** The envelope's header is malformed (wrong version, truncated, impossible fields). */
export class MalformedEnvelope extends BadData {
  static override readonly code: string = 'TW_MALFORMED_ENVELOPE';
  static override get defaultMessage() { return 'malformed envelope'; }
}
/** The message's nonce or sequence number was seen before. */
export class ReplayedMessage extends BadData {
  static override readonly code: string = 'TW_REPLAYED_MESSAGE';
  static override get defaultMessage() { return 'message was replayed'; }
}
/** A frame's declared length exceeds `maxFrameSize`; fatal, since the stream is out of sync. */
export class FrameTooLarge extends BadData {
  static override readonly code: string = 'TW_FRAME_TOO_LARGE';
  /** The declared frame size, bytes. */
  readonly size: number;
  /** The limit it exceeded, bytes. */
  readonly limit: number;
  constructor(size: number, limit: number, options?: TulipErrorOptions) {
    super(`frame of ${size} bytes exceeds maxFrameSize ${limit}`, options);
    this.size = size;
    this.limit = limit;
    this.fatal = true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Authorization and tokens

/** The caller lacks a role the handler requires. */
export class Forbidden extends TulipError {
  static override readonly code: string = 'TW_FORBIDDEN';
  static override get defaultMessage() { return 'forbidden'; }
  /** The role that was missing, if one. */
  role: string | null = null;
  constructor(message?: string, options?: TulipErrorOptions & { role?: string | null }) {
    super(message, options);
    this.role = options?.role ?? null;
  }
}
/** An access or refresh token has expired. */
export class TokenExpired extends TulipError {
  static override readonly code: string = 'TW_TOKEN_EXPIRED';
  static override get defaultMessage() { return 'token expired'; }
}
/** A token was revoked (its account's generation was bumped). */
export class TokenRevoked extends TulipError {
  static override readonly code: string = 'TW_TOKEN_REVOKED';
  static override get defaultMessage() { return 'token revoked'; }
}
/** A token is not known to the token store. */
export class UnknownToken extends TulipError {
  static override readonly code: string = 'TW_UNKNOWN_TOKEN';
  static override get defaultMessage() { return 'unknown token'; }
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions and limits

/** The session is closed, or its queue of waiting calls overflowed. */
export class SessionClosed extends TulipError {
  static override readonly code: string = 'TW_SESSION_CLOSED';
  static override get defaultMessage() { return 'session closed'; }
}
/** The peer was silent for longer than the idle timeout. */
export class PeerTimeout extends TulipError {
  static override readonly code: string = 'TW_PEER_TIMEOUT';
  static override get defaultMessage() { return 'peer timed out'; }
}
/** The message rate limit was exceeded; `retryAfter` is in seconds. */
export class RateLimited extends TulipError {
  static override readonly code: string = 'TW_RATE_LIMITED';
  static override get defaultMessage() { return 'rate limited'; }
  /** Seconds until a message would be accepted again. */
  retryAfter = 0;
  constructor(message?: string, options?: TulipErrorOptions & { retryAfter?: number }) {
    super(message, options);
    this.retryAfter = options?.retryAfter ?? 0;
  }
}
/**
 * The peer stopped reading: the connection's write buffer passed its bound (`maxWriteBuffer`) and was closed.
 * `buffered` is the bytes it held, `limit` the bound.
 */
export class SlowConsumer extends TulipError {
  static override readonly code: string = 'TW_SLOW_CONSUMER';
  static override get defaultMessage() { return 'the peer is not reading'; }
  /** Bytes the connection's transport held when it was closed. */
  buffered = 0;
  /** The bound it passed, bytes. */
  limit = 0;
  constructor(message?: string, options?: TulipErrorOptions & { buffered?: number; limit?: number }) {
    super(message, options);
    this.buffered = options?.buffered ?? 0;
    this.limit = options?.limit ?? 0;
  }
}
/** The identity already holds the maximum number of connections. */
export class TooManyConnections extends TulipError {
  static override readonly code: string = 'TW_TOO_MANY_CONNECTIONS';
  static override get defaultMessage() { return 'too many connections for this identity'; }
}
/** The connection already has the maximum number of RPCs in flight. */
export class TooManyInFlight extends TulipError {
  static override readonly code: string = 'TW_TOO_MANY_IN_FLIGHT';
  static override get defaultMessage() { return 'too many calls in flight'; }
}
/** The peer has no handler for the RPC method called; `method` names it. */
export class MethodNotFound extends TulipError {
  static override readonly code: string = 'TW_METHOD_NOT_FOUND';
  static override get defaultMessage() { return 'method not found'; }
  /** The method that was called, if known. */
  method: string | null = null;
  constructor(message?: string, options?: TulipErrorOptions & { method?: string | null }) {
    super(message, options);
    this.method = options?.method ?? null;
  }
}
/** A remote error whose code the peer's application defined; `remoteCode` and `data` come from the reply. */
export class RpcError extends TulipError {
  static override readonly code: string = 'TW_RPC';
  static override get defaultMessage() { return 'remote call failed'; }
  /** The code the peer sent. */
  remoteCode: string;
  /** Extra data the peer sent with the error. */
  data: unknown;
  constructor(message?: string, options?: TulipErrorOptions & { remoteCode?: string; data?: unknown }) {
    super(message, options);
    this.remoteCode = options?.remoteCode ?? 'TW_RPC';
    this.data = options?.data;
    this.remote = true;
  }
}

/** Several errors raised together (asyncio's `ExceptionGroup`), e.g. by a `TaskGroup`. */
export class ErrorGroup extends AggregateError {
  /** The stable code of this class. */
  static readonly code = 'TW_ERROR_GROUP';
  /** The stable code. */
  readonly code = 'TW_ERROR_GROUP' as const;
  constructor(message: string, errors: readonly unknown[]) {
    super(errors, message);
    this.name = 'ErrorGroup';
  }
}

/** Every stable error code. */
export type TulipErrorCode =
  | 'TW_ERROR' | 'TW_CANCELLED' | 'TW_TIMEOUT' | 'TW_INVALID_STATE' | 'TW_LOOP_CLOSED'
  | 'TW_QUEUE_EMPTY' | 'TW_QUEUE_FULL' | 'TW_QUEUE_SHUT_DOWN' | 'TW_BROKEN_BARRIER'
  | 'TW_INCOMPLETE_READ' | 'TW_LIMIT_OVERRUN'
  | 'TW_TRANSPORT' | 'TW_TRANSPORT_CLOSED' | 'TW_HANDSHAKE_TIMEOUT' | 'TW_PEER_REJECTED'
  | 'TW_CA' | 'TW_CA_NOT_FOUND' | 'TW_CA_CORRUPT' | 'TW_CA_BAD_PASSPHRASE' | 'TW_CA_KEY_PERMISSIONS'
  | 'TW_CA_KEY_NOT_ENCRYPTED'
  | 'TW_CERTIFICATE' | 'TW_NO_CLIENT_CERTIFICATE' | 'TW_UNKNOWN_ISSUER' | 'TW_CERTIFICATE_EXPIRED'
  | 'TW_CERTIFICATE_NOT_YET_VALID' | 'TW_WRONG_PURPOSE' | 'TW_HOSTNAME_MISMATCH' | 'TW_PIN_MISMATCH'
  | 'TW_REPLAY_CACHE_FULL' | 'TW_STORE_UNAVAILABLE'
  | 'TW_BAD_DATA' | 'TW_BAD_SIGNATURE' | 'TW_BAD_TIME_SIGNATURE' | 'TW_SIGNATURE_EXPIRED' | 'TW_UNKNOWN_KEY_ID'
  | 'TW_BAD_PAYLOAD' | 'TW_MALFORMED_ENVELOPE' | 'TW_REPLAYED_MESSAGE' | 'TW_FRAME_TOO_LARGE'
  | 'TW_FORBIDDEN' | 'TW_TOKEN_EXPIRED' | 'TW_TOKEN_REVOKED' | 'TW_UNKNOWN_TOKEN'
  | 'TW_SESSION_CLOSED' | 'TW_PEER_TIMEOUT' | 'TW_RATE_LIMITED' | 'TW_SLOW_CONSUMER' | 'TW_TOO_MANY_CONNECTIONS'
  | 'TW_TOO_MANY_IN_FLIGHT'
  | 'TW_METHOD_NOT_FOUND' | 'TW_RPC' | 'TW_ERROR_GROUP';

/** True when `value` is a {@link CancelledError}. Code that catches everything must rethrow these. */
export function isCancelledError(value: unknown): value is CancelledError {
  return TulipError.isTulipError(value) && value.code === 'TW_CANCELLED';
}

/** Every TulipError class, for table tests and for turning a wire error code back into its class. */
export const ERROR_CLASSES: readonly (typeof TulipError)[] = [
  TulipError, CancelledError, TimeoutError, InvalidStateError, LoopClosedError, QueueEmpty, QueueFull, QueueShutDown,
  BrokenBarrierError, TransportError, TransportClosed, HandshakeTimeout, PeerRejected, CAError, CANotFound, CACorrupt,
  CABadPassphrase, CAKeyPermissions, CAKeyNotEncrypted, CertificateError, NoClientCertificate, UnknownIssuer,
  CertificateExpired, CertificateNotYetValid, WrongPurpose, HostnameMismatch, PinMismatch, ReplayCacheFull,
  StoreUnavailable, BadData, BadSignature, BadTimeSignature, SignatureExpired, UnknownKeyId, BadPayload,
  MalformedEnvelope, ReplayedMessage, Forbidden, TokenExpired, TokenRevoked, UnknownToken, SessionClosed, PeerTimeout,
  RateLimited, SlowConsumer, TooManyConnections, TooManyInFlight, MethodNotFound, RpcError,
];

const byCode = new Map<string, typeof TulipError>(ERROR_CLASSES.map((c) => [c.code, c]));

/**
 * Builds the error a peer's error reply names: a known `TW_` code becomes its class (with `remote = true`), any
 * other code an {@link RpcError} carrying `remoteCode` and `data`. A handler that throws IncompleteReadError,
 * LimitOverrunError or FrameTooLarge is answered with its code, but as their constructors need extra arguments the
 * caller's rebuild here falls back to RpcError (that `remoteCode`, the plain fields in `data`). `TW_CANCELLED` is
 * never rebuilt as a CancelledError: the peer cancelled its handler, not the caller's Task, and a CancelledError
 * would cancel that Task (a TaskGroup would then finish as if nothing had failed); it is an RpcError with
 * `remoteCode` `TW_CANCELLED`.
 */
export function errorFromCode(code: string, message: string, data?: unknown): TulipError {
  const cls = byCode.get(code);
  if (cls !== undefined && cls !== RpcError && cls !== CancelledError && cls.length <= 2) {
    const err = new cls(message);
    err.remote = true;
    return err;
  }
  return new RpcError(message, { remoteCode: code, data });
}
