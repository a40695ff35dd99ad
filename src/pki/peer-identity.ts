/**
 * The verified peer as a plain object: what `transport.getExtraInfo('peerIdentity')` returns on both sides of an
 * mTLS connection, built from `socket.getPeerX509Certificate()` after node:tls has validated the chain.
 */
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { Forbidden } from '../errors.js';
import { normalizeSerial, parseIdentityUri } from './issue.js';

/** Who is on the other end of a verified mTLS connection. Times are epoch seconds, hex is lowercase. */
export interface PeerIdentity {
  /** The `tulip://<ca>/<kind>/<id>` URI SAN, or null when the certificate has none (not one of ours). */
  identity: string | null;
  /** The `<kind>` segment of `identity` (`'server'` for server certificates), or null. */
  kind: string | null;
  /** The `<id>` segment of `identity`, or null. */
  id: string | null;
  /** The CA name in `identity`, or null. */
  caName: string | null;
  /** The subject DN as Node prints it (`'CN=player-42'`; several attributes joined with `, `). */
  subject: string;
  /** The subject's CN, or null. */
  commonName: string | null;
  /** DNS SANs. */
  dnsNames: string[];
  /** IP SANs. */
  ipAddresses: string[];
  /** URI SANs (all of them, `identity` included). */
  uris: string[];
  /** Extended key usages by name where known (`'serverAuth'`, `'clientAuth'`), else the OID. */
  purposes: string[];
  /** Serial, lowercase hex without leading zero bytes. */
  serial: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint: string;
  /** Validity start, epoch seconds. */
  notBefore: number;
  /** Validity end, epoch seconds: a connection must not outlive it (rotation replaces revocation). */
  notAfter: number;
}

const PURPOSE_NAMES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
};

/**
 * Splits Node's `subjectAltName` string (`'DNS:a, IP Address:1.2.3.4, URI:tulip://x/y/z'`). Since CVE-2021-44532
 * Node quotes (JSON-style) any value containing a separator, so a quoted value is read with JSON.parse.
 */
export function parseSubjectAltName(san: string | undefined): { dns: string[]; ip: string[]; uri: string[] } {
  const out = { dns: [] as string[], ip: [] as string[], uri: [] as string[] };
  if (san === undefined) return out;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      // Find the closing quote, skipping escaped characters.
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      } catch {
        value = san.slice(colon + 2, j);
      }
      next = san.indexOf(', ', j);
    } else {
      next = san.indexOf(', ', colon);
      value = san.slice(colon + 1, next < 0 ? undefined : next);
    }
    if (type === 'DNS') out.dns.push(value);
    else if (type === 'IP Address') out.ip.push(value);
    else if (type === 'URI') out.uri.push(value);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/**
 * Builds the {@link PeerIdentity} of a certificate: the very object the handshake hook gives for it. Made from the
 * legacy view on purpose: `X509Certificate.subject` escapes RFC 4514 specials (`CN=Front End\, Inc`), the
 * legacy object (what a socket gives) does not; reading the former gave another `commonName` and `subject` than the
 * peer of a connection showed for the same certificate.
 */
export function identityOfCertificate(cert: X509Certificate): PeerIdentity {
  return identityOfPeerCertificate(cert.toLegacyObject());
}

/**
 * Builds the {@link PeerIdentity} from node's legacy peer-certificate object (`socket.getPeerCertificate()`), which
 * is ~10x cheaper than parsing a `crypto.X509Certificate` (~150 µs each on this machine): this runs once per
 * handshake on both sides.
 */
export function identityOfPeerCertificate(cert: PeerCertificate): PeerIdentity {
  const made = buildIdentity(cert);
  MADE.add(made);
  return made;
}

// The identities made from certificates here: isPeerIdentity tells them from look-alike objects.
const MADE = new WeakSet<object>();

/**
 * True when `value` is a {@link PeerIdentity} this module built from a certificate (a handshake hook's, or
 * {@link identityOfCertificate}'s): an object of the same shape made elsewhere is not one. The guard for
 * `ctx.peer`, `connection.peer` and `transport.getExtraInfo('peerIdentity')`, which are typed `unknown` because a
 * plain-TCP or in-memory connection has some other peer (or none).
 */
export function isPeerIdentity(value: unknown): value is PeerIdentity {
  return typeof value === 'object' && value !== null && MADE.has(value);
}

/**
 * The verified certificate identity of a peer (`ctx.peer` in a handler, `connection.peer`, `session.peer`),
 * without a cast: `server.handle('move', (p, ctx) => world.move(peerIdentity(ctx.peer).identity, p))`.
 * @throws Forbidden (TW_FORBIDDEN; thrown in a handler it refuses the call with that code) when the peer is not a
 *   verified certificate's identity: no client certificate, a connection without TLS, or an object made elsewhere
 */
export function peerIdentity(peer: unknown): PeerIdentity {
  if (isPeerIdentity(peer)) return peer;
  throw new Forbidden(peer === null || peer === undefined
    ? 'the peer presented no verified certificate'
    : 'the peer is not a verified certificate identity');
}

function buildIdentity(cert: PeerCertificate): PeerIdentity {
  const san = parseSubjectAltName(cert.subjectaltname);
  const identityUri = san.uri.find((u) => parseIdentityUri(u) !== null) ?? null;
  const parsed = identityUri !== null ? parseIdentityUri(identityUri) : null;
  const subjectEntries = Object.entries((cert.subject ?? {}) as unknown as Record<string, string | string[]>);
  const subject = subjectEntries.flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${x}`)).join(', ');
  const cn = (cert.subject as unknown as Record<string, string | string[]> | undefined)?.['CN'];
  return {
    identity: identityUri,
    kind: parsed?.kind ?? null,
    id: parsed?.id ?? null,
    caName: parsed?.caName ?? null,
    subject,
    commonName: cn === undefined ? null : Array.isArray(cn) ? (cn[0] ?? null) : cn,
    dnsNames: san.dns,
    ipAddresses: san.ip,
    uris: san.uri,
    purposes: ((cert as PeerCertificate & { ext_key_usage?: string[] }).ext_key_usage ?? []).map((oid) => PURPOSE_NAMES[oid] ?? oid),
    serial: normalizeSerial(cert.serialNumber),
    fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    notBefore: Date.parse(cert.valid_from) / 1000,
    notAfter: Date.parse(cert.valid_to) / 1000,
  };
}

/**
 * The verified peer of a TLS socket, or null when the peer sent no certificate or it was not verified
 * (`socket.authorized` false). This is the `Symbol.for('tulipwire.peerIdentity')` hook of the TLS builders.
 */
export function peerIdentityOf(socket: TLSSocket): PeerIdentity | null {
  if (!socket.authorized) return null;
  const cert = socket.getPeerCertificate(false);
  return cert === null || cert.raw === undefined ? null : identityOfPeerCertificate(cert);
}

/**
 * The peer's leaf as a `crypto.X509Certificate`, or null. Built from `getPeerCertificate().raw` on purpose: on
 * Node 20.20.2 a *client* socket's `getPeerX509Certificate()` works once, and after it both it and
 * `getPeerCertificate()` return nothing (observed; server sockets are not affected). This never calls it.
 */
export function peerX509Of(socket: TLSSocket): X509Certificate | null {
  const legacy = socket.getPeerCertificate(false);
  const raw = (legacy as { raw?: Buffer } | null)?.raw;
  return raw === undefined ? null : new NodeX509Certificate(raw);
}
