/**
 * Turns node:tls / OpenSSL verification failures into typed {@link CertificateError}s a person can act on.
 *
 * Who can know what (TLS 1.3, seen on Node 20): a client learns about a bad *server* certificate as an `error`
 * with an X509 code (`CERT_HAS_EXPIRED`, `ERR_TLS_CERT_ALTNAME_INVALID`, …). A server learns about a bad *client*
 * certificate only on the socket: `tlsClientError` says `ECONNRESET`, and the reason is `socket.authorizationError`,
 * so pass the socket as the third argument. The rejected client sees `secureConnect` and then a silent close; only a
 * missing client certificate reaches it (alert 116, `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED`).
 */
import type { TLSSocket } from 'node:tls';
import { peerX509Of } from './peer-identity.js';
import {
  CertificateError, CertificateExpired, CertificateNotYetValid, HostnameMismatch, NoClientCertificate, TulipError,
  UnknownIssuer, WrongPurpose,
} from '../errors.js';

/** Which end of the connection saw the failure. */
export type TlsSide = 'client' | 'server';

type CertErrorClass = new (message?: string, options?: { cause?: unknown }) => CertificateError;

// X509 verification codes (as node names them) → class and what went wrong, from the viewpoint of the side that
// checked: "the client's certificate" on a server, "the server's certificate" on a client.
const VERIFY_CODES: Record<string, [CertErrorClass, (peer: string) => string]> = {
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: [UnknownIssuer, (p) => `${p} was not issued by the trusted CA (its issuer is unknown here)`],
  UNABLE_TO_GET_ISSUER_CERT: [UnknownIssuer, (p) => `${p} chains to a CA that is not the trusted root`],
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: [UnknownIssuer, (p) => `${p} could not be chained to the trusted CA (another CA, or the intermediate was not sent)`],
  SELF_SIGNED_CERT_IN_CHAIN: [UnknownIssuer, (p) => `${p} chains to a self-signed root that is not the trusted CA`],
  DEPTH_ZERO_SELF_SIGNED_CERT: [UnknownIssuer, (p) => `${p} is self-signed, not issued by the trusted CA`],
  CERT_SIGNATURE_FAILURE: [UnknownIssuer, (p) => `${p} has a signature the trusted CA did not make`],
  CERT_UNTRUSTED: [UnknownIssuer, (p) => `${p} is not trusted`],
  PATH_LENGTH_EXCEEDED: [UnknownIssuer, (p) => `${p} was issued by a sub-CA below the issuing intermediate (pathLen 0)`],
  CERT_HAS_EXPIRED: [CertificateExpired, (p) => `${p} has expired`],
  CERT_NOT_YET_VALID: [CertificateNotYetValid, (p) => `${p} is not valid yet (clock skew, or issued for the future)`],
  INVALID_PURPOSE: [WrongPurpose, (p) => `${p} is not issued for this purpose`],
  UNSPECIFIED: [CertificateError, (p) => `${p} was rejected by a check OpenSSL does not name (often a name constraint)`],
};

// Alerts a client receives when the server refused its certificate (TLS 1.2 sends them; TLS 1.3 mostly closes).
const CLIENT_ALERTS: Record<string, [CertErrorClass, string]> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: [NoClientCertificate, 'the server requires a client certificate and none was sent: connect with clientTlsOptions() of a certificate from the server\'s CA'],
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: [UnknownIssuer, 'the server does not know the CA that issued this client\'s certificate'],
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: [CertificateExpired, 'the server says this client\'s certificate has expired'],
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: [WrongPurpose, 'the server says this client\'s certificate is not issued for client authentication'],
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: [CertificateError, 'the server refused this client\'s certificate'],
};

function describeTime(seconds: number): string {
  const a = Math.abs(seconds);
  if (a < 120) return `${a.toFixed(1)} s`;
  if (a < 7200) return `${(a / 60).toFixed(1)} min`;
  if (a < 172800) return `${(a / 3600).toFixed(1)} h`;
  return `${(a / 86400).toFixed(1)} days`;
}

function peerDetails(socket: TLSSocket | undefined, now: number | undefined): string {
  if (socket === undefined) return '';
  try {
    const cert = peerX509Of(socket);
    if (cert === null) return '';
    const notBefore = Date.parse(cert.validFrom) / 1000;
    const notAfter = Date.parse(cert.validTo) / 1000;
    const subject = cert.subject.replace(/\n/g, ', ');
    let when = '';
    if (now !== undefined && now > notAfter) when = `, expired ${describeTime(now - notAfter)} ago`;
    else if (now !== undefined && now < notBefore) when = `, valid only in ${describeTime(notBefore - now)}`;
    return ` [${subject}${cert.subjectAltName !== undefined ? `; ${cert.subjectAltName}` : ''}; valid ${cert.validFrom} – ${cert.validTo}${when}]`;
  } catch {
    return '';
  }
}

/** Options of {@link mapTlsError}. */
export interface MapTlsErrorOptions {
  /** Epoch seconds now, to say how long ago a certificate expired. */
  now?: number;
}

/**
 * Maps a node:tls error to a typed {@link CertificateError}, or returns null when it is not a certificate problem
 * (a reset, a timeout, a protocol-version mismatch: the transport's own errors cover those). A TulipError (a
 * `PinMismatch` or `HostnameMismatch` from the builders' checks) is returned unchanged. The raw code stays in the
 * message and the node error is the `cause`.
 *
 * This is the `Symbol.for('tulipwire.mapTlsError')` hook. On the server side pass the failed socket as `socket`:
 * the verification code is only there (`socket.authorizationError`), the error itself says `ECONNRESET`.
 */
export function mapTlsError(err: Error, side: TlsSide, socket?: TLSSocket, options: MapTlsErrorOptions = {}): CertificateError | null {
  if (TulipError.isTulipError(err)) return err instanceof CertificateError ? err : null;
  const e = err as Error & { code?: string; reason?: string; host?: string; authorizationError?: string };
  const sockCode = (socket as (TLSSocket & { authorizationError?: string | Error }) | undefined)?.authorizationError;
  const verifyCode = typeof sockCode === 'string' ? sockCode : sockCode instanceof Error ? (sockCode as { code?: string }).code : undefined;
  const code = verifyCode ?? e.authorizationError ?? e.code ?? '';
  const peer = side === 'server' ? "the client's certificate" : "the server's certificate";

  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || code === 'ERR_SSL_NO_CERTIFICATE_RETURNED') {
    return new NoClientCertificate(`the client presented no certificate; this server requires one issued by its CA (${code})`, { cause: err });
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const host = e.host !== undefined ? ` ${e.host}` : '';
    return new HostnameMismatch(`${peer} does not name the host${host} the client connected to: ${e.reason ?? e.message} (${code})`, { cause: err });
  }
  const verify = VERIFY_CODES[code];
  if (verify !== undefined) {
    const [cls, text] = verify;
    let msg = text(peer);
    if (cls === WrongPurpose) {
      msg += side === 'server'
        ? ' (its extended key usage lacks clientAuth: a server certificate used as a client\'s?)'
        : ' (its extended key usage lacks serverAuth: a client certificate used as a server\'s?)';
    }
    return new cls(`${msg}${peerDetails(socket, options.now)} (${code})`, { cause: err });
  }
  if (side === 'client') {
    const alert = CLIENT_ALERTS[code];
    if (alert !== undefined) return new alert[0](`${alert[1]} (${code})`, { cause: err });
  }
  return null;
}
