/**
 * Pinned mutual-TLS option builders for node:tls (and for tulipwire's `createServer`/`createConnection`, which take
 * the same objects as their `ssl` option).
 *
 * Both sides trust only the CA root(s) given (the `ca` option replaces Node's Mozilla roots), present leaf +
 * intermediate, and require TLS 1.3 by default. The server requires and verifies a client certificate; the client
 * checks the server's host name. An optional SPKI pin of the root (sha256) makes a look-alike CA fail even if it was
 * slipped into the trust list. The returned object carries the three `Symbol.for('tulipwire.…')` hooks the
 * transports call (NET-CONTRACT): `peerIdentity`, `mapTlsError` and `verifyPeer`.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { ConnectionOptions, DetailedPeerCertificate, PeerCertificate, SecureVersion, TLSSocket, TlsOptions } from 'node:tls';
import { checkServerIdentity as nodeCheckServerIdentity, createSecureContext } from 'node:tls';
import { CAError, CertificateExpired, CertificateNotYetValid, HostnameMismatch, PinMismatch } from '../errors.js';
import type { Clock } from '../loop/clock.js';
import { systemClock } from '../loop/clock.js';
import type { IssuedCertificate } from './ca.js';
import type { TlsMaterial } from './files.js';
import { splitPemCertificates } from './issue.js';
import type { PeerIdentity } from './peer-identity.js';
import { peerIdentityOf } from './peer-identity.js';
import type { TlsSide } from './tls-errors.js';
import { mapTlsError } from './tls-errors.js';

// Symbol.for keys shared with src/net (which defines the same ones): no import either way.
const kPeerIdentity = Symbol.for('tulipwire.peerIdentity');
const kMapTlsError = Symbol.for('tulipwire.mapTlsError');
const kVerifyPeer = Symbol.for('tulipwire.verifyPeer');

/** The hooks the builders attach (symbol-keyed, enumerable so they survive `{...opts}`; node:tls ignores them). */
export interface PkiTlsHooks {
  /** `Symbol.for('tulipwire.peerIdentity')`: the verified peer, once after the handshake. */
  [kPeerIdentity]: (socket: TLSSocket) => PeerIdentity | null;
  /** `Symbol.for('tulipwire.mapTlsError')`: a handshake failure as a typed CertificateError (or null). */
  [kMapTlsError]: (err: Error, side: TlsSide, socket?: TLSSocket) => Error | null;
  /** `Symbol.for('tulipwire.verifyPeer')`: the extra post-handshake check (SPKI pin of the root), or null. */
  [kVerifyPeer]: (socket: TLSSocket) => Error | null;
}

/** Server options as node:tls takes them, plus the hooks. */
export type PkiServerTlsOptions = TlsOptions & PkiTlsHooks;
/** Client options as node:tls takes them, plus the hooks. */
export type PkiClientTlsOptions = ConnectionOptions & PkiTlsHooks;

/** What the builders accept: an issue call's result, or the three PEM texts (e.g. from {@link readCertDir}). */
export type TlsSource = IssuedCertificate | TlsMaterial;

/** Options shared by both builders. */
export interface PinnedTlsOptions {
  /**
   * SHA-256 pin(s) of the CA root's SubjectPublicKeyInfo: lowercase hex (`ca.rootPin`), base64, or `sha256/<base64>`.
   * When set, only roots with this key are trusted, even if others are in `ca.pem` or `extraCa` (their chains then
   * fail as `UnknownIssuer`); building throws `PinMismatch` when no root matches; and a client re-checks the verified
   * chain's root after the handshake (`PinMismatch`). Default: no pin (trusting `ca` alone).
   */
  pin?: string | readonly string[];
  /** Lowest TLS version. Default `'TLSv1.3'` (we own both ends). */
  minVersion?: SecureVersion;
  /** Extra roots to trust besides the source's (a root rollover: old and new side by side). */
  extraCa?: readonly string[];
  /** Where "now" comes from (session lifetimes, error messages). Default the system clock. */
  clock?: Clock;
}

/** Options of {@link serverTlsOptions}. */
export interface ServerTlsBuildOptions extends PinnedTlsOptions {
  /**
   * TLS session ticket lifetime, seconds. Default 300, capped at the server certificate's remaining life so a
   * resumed session never outlives the certificate that authenticated it (resumption skips the certificate checks).
   */
  sessionTimeout?: number;
}

/** Options of {@link clientTlsOptions}. */
export interface ClientTlsBuildOptions extends PinnedTlsOptions {
  /** The name to send as SNI and to check the server's certificate against. Default: the host connected to. */
  servername?: string;
  /** If set, the server's certificate must also carry this `tulip://` URI SAN (checked after the host name). */
  expectedIdentity?: string;
}

function materialOf(source: TlsSource): TlsMaterial {
  if (typeof (source as TlsMaterial).key === 'string') return source as TlsMaterial;
  const issued = source as IssuedCertificate;
  return { key: issued.key.pem, cert: issued.chain.pem, ca: issued.ca.pem };
}

function caList(material: TlsMaterial, extra: readonly string[] | undefined, pins: readonly string[]): string[] {
  const roots = typeof material.ca === 'string' ? [material.ca] : [...material.ca];
  // Split bundles: node takes one entry per certificate most reliably.
  const all = [...roots, ...(extra ?? [])].flatMap((pem) => splitPemCertificates(pem));
  if (pins.length === 0) return all;
  // With a pin, only pinned roots are trusted at all: a look-alike slipped into ca.pem or extraCa is dropped here,
  // so OpenSSL refuses its chains (UnknownIssuer) on both sides. (The server cannot re-check the pin after the
  // handshake: node exposes only the client's leaf there, not the chain.)
  const kept = all.filter((pem) => pins.includes(spkiPinOfRaw(new X509Certificate(pem).raw)));
  if (kept.length === 0) {
    throw new PinMismatch(`none of the ${all.length} trusted root(s) matches the pin ${pins.join(' or ')}: the CA bundle is not the pinned CA's`);
  }
  return kept;
}

/**
 * Normalizes a pin to lowercase hex: accepts 64 hex digits, 44-character base64, or `sha256/<base64>` (the HPKP
 * `pin-sha256` form). @throws CAError when it is none of those.
 */
export function normalizePin(pin: string): string {
  const p = pin.trim().replace(/^sha256\//i, '');
  if (/^[0-9a-fA-F]{64}$/.test(p)) return p.toLowerCase();
  if (/^[A-Za-z0-9+/]{43}=$/.test(p)) return Buffer.from(p, 'base64').toString('hex');
  throw new CAError(`pin ${JSON.stringify(pin)} is not a SHA-256 SPKI hash (64 hex digits or base64)`);
}

function spkiPinOfRaw(raw: Buffer): string {
  return createHash('sha256').update(new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The root (last certificate) of the chain Node built for a peer, as DER, or null when the chain does not end self-signed. */
function chainRoot(cert: DetailedPeerCertificate | PeerCertificate): Buffer | null {
  let c = cert as DetailedPeerCertificate;
  for (let depth = 0; depth < 10; depth++) {
    const issuer = c.issuerCertificate as DetailedPeerCertificate | undefined;
    // Node marks the self-signed end of the chain by pointing issuerCertificate at itself.
    if (issuer === undefined || issuer === c || issuer.fingerprint256 === c.fingerprint256) {
      return c.raw ?? null;
    }
    c = issuer;
  }
  return null;
}

/**
 * Checks the root of a verified peer chain against SPKI pins (lowercase hex). `knownRoots` (DER of roots already
 * known to match) skips parsing the root, which costs ~150 µs per `X509Certificate`.
 * @returns a `PinMismatch` or null when the pin matches (or `pins` is empty).
 */
export function checkChainPin(cert: DetailedPeerCertificate | PeerCertificate, pins: readonly string[], knownRoots: readonly Buffer[] = []): PinMismatch | null {
  if (pins.length === 0) return null;
  const raw = chainRoot(cert);
  if (raw === null) return new PinMismatch('the peer chain does not end at a self-signed root, so the root pin cannot match');
  if (knownRoots.some((k) => k.equals(raw))) return null;
  const actual = spkiPinOfRaw(raw);
  if (pins.includes(actual)) return null;
  return new PinMismatch(`the peer's chain ends at a root whose key (SPKI sha256 ${actual}) is not pinned (expected ${pins.join(' or ')}): a look-alike CA?`);
}

/**
 * Checks the root pin of a connected TLS socket from the client side (the chain node builds for a client ends at
 * the trust anchor). Use it yourself with plain node:tls. A resumed session has no peer certificate on a client
 * and is refused. @returns a `PinMismatch`, or null.
 */
export function verifyPeerPin(socket: TLSSocket, pins: readonly string[]): PinMismatch | null {
  if (pins.length === 0) return null;
  const cert = socket.getPeerCertificate(true);
  if (cert === null || Object.keys(cert).length === 0) {
    // Node gives a client no peer certificate on a resumed session: nothing to check the pin against, so refuse.
    if (socket.isSessionReused()) return new PinMismatch('the session was resumed, and node then gives a client no server certificate, so the root pin cannot be checked: connect without `session` when pinning');
    return new PinMismatch('the peer presented no certificate to check the root pin against');
  }
  // A server gets only the client's leaf from node (no issuerCertificate); there the trust list, already cut down
  // to pinned roots by the builder, is the check.
  if (cert.issuerCertificate === undefined) return null;
  return checkChainPin(cert, pins);
}

/** Leaf fingerprints whose chain passed the pin in checkServerIdentity, so verifyPeer need not walk it again. */
class RecentlyVerified {
  readonly #set = new Set<string>();
  add(fp: string): void {
    if (this.#set.size >= 1024) this.#set.delete(this.#set.values().next().value as string);
    this.#set.add(fp);
  }
  has(fp: string): boolean {
    return this.#set.has(fp);
  }
}

function pinsOf(options: PinnedTlsOptions): string[] {
  const p = options.pin;
  return p === undefined ? [] : (typeof p === 'string' ? [p] : [...p]).map(normalizePin);
}

/**
 * Plain node:tls options (a user's own `{ ca, cert, key }`, not built by {@link clientTlsOptions}) with tulipwire's
 * typed handshake errors added: a refused handshake becomes the CertificateError that says why (`NoClientCertificate`
 * for the server's certificate_required alert, `UnknownIssuer`, `CertificateExpired`, `HostnameMismatch`, …) instead
 * of OpenSSL's text as a TransportError. Options that already carry a mapping are returned as they are.
 */
export function withTlsErrorMapping<T extends object>(options: T, clock: Clock = systemClock): T {
  if (typeof (options as Partial<PkiTlsHooks>)[kMapTlsError] === 'function') return options;
  return { ...options, [kMapTlsError]: (err: Error, side: TlsSide, socket?: TLSSocket) => mapTlsError(err, side, socket, { now: clock.epoch() }) };
}

function hooks(clock: Clock, verifyPeer: (socket: TLSSocket) => Error | null): PkiTlsHooks {
  return {
    [kPeerIdentity]: peerIdentityOf,
    [kMapTlsError]: (err, side, socket) => mapTlsError(err, side, socket, { now: clock.epoch() }),
    [kVerifyPeer]: verifyPeer,
  };
}

/**
 * The server's check after the handshake. Node exposes only the client's leaf there, so the pin is enforced by the
 * trust list itself (cut down to the pinned roots in caList). What is left is a resumed session: it skips the
 * certificate checks and brings back the client certificate of the original handshake, so a client whose
 * certificate expired since (let lapse, which is how a client is dropped) resumed with its ticket, which the
 * ticket lifetime (capped at the *server* certificate's life) does not stop. Such a session is refused unless the
 * client certificate is within its validity at `clock`'s now. A full handshake was checked by OpenSSL just now.
 */
function serverVerifyPeer(clock: Clock): (socket: TLSSocket) => Error | null {
  return (socket) => {
    if (!socket.isSessionReused()) return null;
    const cert = socket.getPeerCertificate(false);
    if (cert === null || cert.valid_to === undefined) return null; // no client certificate: node refused it already
    const now = clock.epoch();
    const notBefore = Date.parse(cert.valid_from) / 1000;
    const notAfter = Date.parse(cert.valid_to) / 1000;
    const who = `the client's certificate (serial ${cert.serialNumber.toLowerCase()}, valid ${cert.valid_from} – ${cert.valid_to})`;
    if (!(now <= notAfter)) {
      return new CertificateExpired(`${who} expired ${(now - notAfter).toFixed(1)} s ago; the client resumed a TLS session made`
        + ' before that, and a resumed session does not bring an expired certificate back (CERT_HAS_EXPIRED)');
    }
    if (!(now >= notBefore)) {
      return new CertificateNotYetValid(`${who} is not valid yet, in a resumed TLS session (CERT_NOT_YET_VALID)`);
    }
    return null;
  };
}

function leafNotAfter(certPem: string): number {
  const first = splitPemCertificates(certPem)[0];
  if (first === undefined) throw new CAError('the cert PEM holds no certificate');
  return Date.parse(new X509Certificate(first).validTo) / 1000;
}

/**
 * Server options for mTLS: `requestCert` + `rejectUnauthorized`, `ca` = the CA root only (never the system roots),
 * `cert` = leaf + intermediate, TLS 1.3 minimum, session tickets capped at the certificate's remaining life, and the
 * three hooks (whose `verifyPeer` refuses a resumed session whose client certificate has expired since, as
 * `CertificateExpired`). Pass the whole object to `server.setSecureContext()` on rotation (leaving `ca` out would silently
 * fall back to the public roots: Node resets every field it is not given), or use {@link reloadServer}.
 * @throws CAError when the pin is malformed or the cert PEM is empty; PinMismatch when no trusted root matches the pin.
 */
export function serverTlsOptions(source: TlsSource, options: ServerTlsBuildOptions = {}): PkiServerTlsOptions {
  const material = materialOf(source);
  const clock = options.clock ?? systemClock;
  const pins = pinsOf(options);
  const remaining = Math.floor(leafNotAfter(material.cert) - clock.epoch());
  return {
    key: material.key,
    cert: material.cert,
    ca: caList(material, options.extraCa, pins),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: options.minVersion ?? 'TLSv1.3',
    sessionTimeout: Math.max(1, Math.min(options.sessionTimeout ?? 300, remaining)),
    ...hooks(clock, serverVerifyPeer(clock)),
  };
}

/**
 * Client options for mTLS: `ca` = the CA root only, `cert` = leaf + intermediate, `rejectUnauthorized`, TLS 1.3
 * minimum, and a `checkServerIdentity` that checks the host name (`HostnameMismatch`), then the root pin
 * (`PinMismatch`), then `expectedIdentity`. The typed error is what the `error` event (and tulipwire's
 * `createConnection`) reports.
 * @throws CAError when the pin is malformed; PinMismatch when no trusted root matches the pin.
 */
export function clientTlsOptions(source: TlsSource, options: ClientTlsBuildOptions = {}): PkiClientTlsOptions {
  const material = materialOf(source);
  const clock = options.clock ?? systemClock;
  const pins = pinsOf(options);
  const expected = options.expectedIdentity;
  const ca = caList(material, options.extraCa, pins);
  const knownRoots = pins.length > 0 ? ca.map((pem) => new X509Certificate(pem).raw) : [];
  const verified = new RecentlyVerified();
  const opts: PkiClientTlsOptions = {
    key: material.key,
    cert: material.cert,
    ca,
    rejectUnauthorized: true,
    minVersion: options.minVersion ?? 'TLSv1.3',
    // Node calls this only after the chain verified, with the detailed chain (root included), on every full
    // handshake. A resumed session skips it, and node then gives the client no peer certificate at all, so a pinned
    // client's verifyPeer refuses resumed sessions (PinMismatch).
    checkServerIdentity: (host: string, cert: PeerCertificate) => {
      const hostErr = nodeCheckServerIdentity(host, cert);
      if (hostErr !== undefined) {
        const reason = (hostErr as Error & { reason?: string }).reason ?? hostErr.message;
        return new HostnameMismatch(`the server's certificate does not name the host ${host} the client connected to: ${reason}`, { cause: hostErr });
      }
      const pinErr = checkChainPin(cert, pins, knownRoots);
      if (pinErr !== null) return pinErr;
      if (expected !== undefined && !(cert.subjectaltname ?? '').split(', ').includes(`URI:${expected}`)) {
        return new HostnameMismatch(`the server's certificate does not carry the identity ${expected} (it has ${cert.subjectaltname ?? 'no SANs'})`);
      }
      if (pins.length > 0) verified.add(cert.fingerprint256);
      return undefined;
    },
    ...hooks(clock, (socket) => {
      if (pins.length === 0) return null;
      const leaf = socket.getPeerCertificate(false);
      if (leaf !== null && leaf.fingerprint256 !== undefined && verified.has(leaf.fingerprint256)) return null;
      return verifyPeerPin(socket, pins);
    }),
  };
  if (options.servername !== undefined) opts.servername = options.servername;
  return opts;
}

/** Anything with node's `setSecureContext` (a `tls.Server`, or tulipwire's `Server`). */
export interface SecureContextTarget {
  /** Replaces the server's credentials for new connections; open connections keep theirs. */
  setSecureContext(options: TlsOptions): void;
}

/**
 * Swaps a running server to new credentials without dropping open connections: builds the full option set with
 * {@link serverTlsOptions} (so `ca` and `minVersion` are never lost), validates it with `createSecureContext` first
 * (a key that does not match its certificate throws here, before the swap), then calls `setSecureContext`.
 * @returns the options now in force.
 * @throws CAError when the new material is unusable; the server keeps its old context.
 */
export function reloadServer(server: SecureContextTarget, source: TlsSource, options: ServerTlsBuildOptions = {}): PkiServerTlsOptions {
  validateTlsMaterial(source, options.extraCa);
  const opts = serverTlsOptions(source, options);
  try {
    createSecureContext(opts);
  } catch (e) {
    throw new CAError(`the new server credentials are unusable (${(e as { code?: string }).code ?? (e as Error).message}); keeping the old ones`, { cause: e });
  }
  server.setSecureContext(opts);
  return opts;
}

/**
 * Checks that key, chain and roots form a usable TLS identity: the PEMs parse, the key matches the leaf, and the
 * chain in `cert` leads to a root in `ca` (or `extraCa`), so a leaf without its intermediate or a `ca` of another CA
 * is refused before it goes live (peers, or this server, would refuse every handshake with it).
 * @throws CAError with the node error as cause.
 */
export function validateTlsMaterial(source: TlsSource, extraCa?: readonly string[]): void {
  const m = materialOf(source);
  const leafPem = splitPemCertificates(m.cert)[0];
  if (leafPem === undefined) throw new CAError('unusable TLS material: the cert PEM holds no certificate');
  let leaf: X509Certificate;
  let key: KeyObject;
  try {
    leaf = new X509Certificate(leafPem);
    key = createPrivateKey(m.key);
  } catch (e) {
    throw new CAError(`unusable TLS material (${(e as { code?: string }).code ?? (e as Error).message})`, { cause: e });
  }
  if (!leaf.checkPrivateKey(key)) {
    const cause = Object.assign(new Error('the private key does not match the certificate'), { code: 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' });
    throw new CAError('unusable TLS material: the private key does not match the certificate', { cause });
  }
  let chain: X509Certificate[];
  let roots: X509Certificate[];
  try {
    createSecureContext({ key: m.key, cert: m.cert, ca: caList(m, undefined, []) });
    chain = splitPemCertificates(m.cert).map((pem) => new X509Certificate(pem));
    roots = caList(m, extraCa, []).map((pem) => new X509Certificate(pem));
  } catch (e) {
    throw new CAError(`unusable TLS material (${(e as { code?: string }).code ?? (e as Error).message})`, { cause: e });
  }
  const issuedBy = (c: X509Certificate, issuer: X509Certificate) => c.checkIssued(issuer) && c.verify(issuer.publicKey);
  let cur = leaf;
  const rest = chain.slice(1);
  while (!roots.some((r) => issuedBy(cur, r))) {
    const k = rest.findIndex((c) => issuedBy(cur, c));
    if (k < 0) {
      const what = cur === leaf && chain.length === 1 ? 'the cert PEM holds only the leaf, without its intermediate' : 'the chain in the cert PEM does not lead to a root in ca';
      throw new CAError(`unusable TLS material: ${what} (${cur.subject.replace(/\n/g, ', ')} was issued by ${cur.issuer.replace(/\n/g, ', ')})`);
    }
    cur = rest.splice(k, 1)[0]!;
  }
}
