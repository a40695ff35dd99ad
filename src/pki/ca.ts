/**
 * The private CA: an offline-capable root that signs only intermediates, and an issuing intermediate (pathLen 0)
 * that signs short-lived server and client leaves. The model of Armin Ronacher's talk "SSL, CAs and keeping your
 * stuff safe" (PyGrunn 2014): run your own CA, issue certificates for about a day, trust your own CA only, replace
 * revocation with short lifetimes and rotation.
 *
 * Directory layout (`dir`):
 * - `ca.json`            name, key algorithm, format version
 * - `root.pem`           the root certificate (distribute it: it is the only trust anchor)
 * - `root.key.pem`       the root key, PKCS#8, 0600, optionally passphrase-encrypted; may be moved offline
 * - `intermediate.pem`   the issuing intermediate certificate
 * - `intermediate.key.pem` its key, PKCS#8, 0600 (needed for daily issuing)
 *
 * On POSIX a key file with any group or other permission bit is refused on load (ssh's rule for private keys).
 */
// Before @peculiar/x509, whose tsyringe needs the Reflect polyfill at import: module evaluation follows import order.
import 'reflect-metadata';
import { X509Certificate as PeculiarCertificate } from '@peculiar/x509';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { CA_INTERMEDIATE_LIFETIME, CA_ROOT_LIFETIME, CERT_BACKDATE, CERT_LIFETIME } from '../constants.js';
import {
  CABadPassphrase, CACorrupt, CAError, CAKeyNotEncrypted, CAKeyPermissions, CANotFound, CertificateExpired,
} from '../errors.js';
import type { Clock } from '../loop/clock.js';
import { systemClock } from '../loop/clock.js';
import type { TlsMaterial } from './files.js';
import { tryWithDirLock, withDirLock, writeCertDir, writeFileAtomic } from './files.js';
import type { CertificateInfo, KeyAlgorithm, KeyPair, Purpose } from './issue.js';
import {
  EKU as EKU_OIDS, certificateInfo, checkCAName, checkKeyAlgorithm, createCertificate, encryptPrivateKeyPem,
  generateKeyPair, identityUri, importPrivateKeyPem, parseIdentityUri, privateKeyToPem, sanIpText, splitPemCertificates, spkiPin,
} from './issue.js';

/** File names inside a CA directory. */
export const CA_FILES = {
  meta: 'ca.json',
  rootCert: 'root.pem',
  rootKey: 'root.key.pem',
  intermediateCert: 'intermediate.pem',
  intermediateKey: 'intermediate.key.pem',
} as const;

const FORMAT = 'tulipwire-ca';
const VERSION = 1;

/** Options of {@link PrivateCA.init}. Lifetimes are seconds. */
export interface PrivateCAInitOptions {
  /** Directory to create the CA in (created 0700 if missing; must not already hold a CA). */
  dir: string;
  /** The CA's name: lowercase DNS-style; it is the host of every `tulip://<name>/<kind>/<id>` identity. */
  name: string;
  /** Key algorithm of the root, the intermediate and (by default) every leaf. Default `'ECDSA-P256'`. */
  keyAlgorithm?: KeyAlgorithm;
  /** Encrypts the root key with this passphrase (PKCS#8 PBES2, AES-256-CBC). Default: unencrypted. */
  passphrase?: string;
  /** Where "now" comes from. Default the system clock. */
  clock?: Clock;
  /** Root lifetime, seconds. Default {@link CA_ROOT_LIFETIME} (10 years). */
  rootLifetime?: number;
  /** Intermediate lifetime, seconds. Default {@link CA_INTERMEDIATE_LIFETIME} (90 days). */
  intermediateLifetime?: number;
}

/** Options of {@link PrivateCA.load}. */
export interface PrivateCALoadOptions {
  /** The CA directory. */
  dir: string;
  /**
   * Decrypts the root key; without it an encrypted root key stays locked (issuing leaves does not need it). Given
   * for a root key stored unencrypted, it is refused ({@link CAKeyNotEncrypted}) rather than ignored.
   */
  passphrase?: string;
  /** Where "now" comes from. Default the system clock. */
  clock?: Clock;
  /**
   * Load even when a key file can be read or written by its group or others. Default false
   * ({@link CAKeyPermissions}): fix the mode with `chmod 600` instead. For a file system that cannot keep a 0600
   * mode (a Kubernetes secret volume with `fsGroup`, some network or FAT mounts). Ignored on Windows, which is not
   * checked.
   */
  allowInsecureKeyMode?: boolean;
}

/** Validity options shared by both issue calls. Times are seconds. */
export interface ValidityOptions {
  /** Lifetime, seconds, counted from now. Default {@link CERT_LIFETIME} (24 h). */
  lifetime?: number;
  /** Explicit validity start, epoch seconds (for not-yet-valid test certificates). Default now − {@link CERT_BACKDATE}. */
  notBefore?: number;
  /** Explicit validity end, epoch seconds (for expired test certificates). Default now + lifetime. */
  notAfter?: number;
  /** Leaf key algorithm. Default the CA's. */
  keyAlgorithm?: KeyAlgorithm;
  /**
   * Extended key usages. Default serverAuth for servers, clientAuth for clients (never both). Tests use this to
   * mint wrong-purpose certificates.
   */
  purposes?: readonly Purpose[];
}

/** Options of {@link PrivateCA.adopt}. */
export interface AdoptOptions {
  /**
   * Accept a certificate already past its notAfter. Default false ({@link CertificateExpired}): renewing a lapsed
   * certificate brings back a credential that letting it lapse is how one drops (there is no revocation), so the
   * caller says so. A certificate not valid yet is always accepted (its renewal is valid from now).
   */
  allowExpired?: boolean;
}

/** Options of {@link PrivateCA.issueServer}. */
export interface IssueServerOptions extends ValidityOptions {
  /**
   * DNS names the server answers to (SAN dNSName): letters, digits, `-` and `_` in dot-separated labels of 1-63
   * characters, at most 253 in all, `*.` first for a wildcard over two labels or more (`*.svc.internal`, not
   * `*.internal`); anything else (a name no hostname check can match, an IP address among them: give it in
   * `ipAddresses`) is refused with CAError.
   */
  dnsNames?: readonly string[];
  /** IP addresses the server answers on (SAN iPAddress): IPv4 or IPv6 (an embedded IPv4 part allowed), else CAError; a scoped `%zone` address is CAError too. */
  ipAddresses?: readonly string[];
  /** Subject CN, stored exactly as given (not read as RFC 4514 text). Default the first DNS name, else the first IP. */
  commonName?: string;
}

/** Options of {@link PrivateCA.issueClient}. */
export interface IssueClientOptions extends ValidityOptions {
  /**
   * The client's identity: a bare id (`'player-42'`, kind from `kind`), `'<kind>/<id>'`, or a full
   * `tulip://<this-ca>/<kind>/<id>` URI. It becomes the certificate's one URI SAN and its CN is the id.
   */
  identity: string;
  /** The kind segment when `identity` is a bare id. Default `'client'`. */
  kind?: string;
}

/** What an issue call returns (one object per issue, never a bare key or PEM): the key, the leaf, the chain to present, and the root to trust. */
export interface IssuedCertificate {
  /** `'server'` or `'client'`. */
  kind: 'server' | 'client';
  /** The leaf's private key: PKCS#8 PEM (unencrypted; write it 0600). */
  key: { pem: string; algorithm: KeyAlgorithm };
  /** The leaf alone. */
  cert: CertificateInfo;
  /** The leaf followed by the intermediate: what a peer presents (`cert` option of node:tls). */
  chain: { pem: string };
  /** The root: what a peer trusts (`ca` option of node:tls). */
  ca: { pem: string };
  /** The `tulip://` identity URI in the certificate. */
  identity: string;
  /** DNS SANs (servers). */
  dnsNames: readonly string[];
  /** IP SANs (servers). */
  ipAddresses: readonly string[];
  /** The lifetime asked for, seconds (notAfter − now at issue time, before rounding); a renewal asks for the same. */
  lifetime: number;
  /**
   * When the CA issued it, epoch seconds (not rounded: the certificate's own times are whole seconds, rounded up).
   * A rotator counts its renewal point from here. Absent for credentials read back from disk (`adopt`), where it
   * is taken as `notAfter − lifetime`.
   */
  issuedAt?: number;
}

/** Turns an {@link IssuedCertificate} into the three PEM texts node:tls and `--out DIR` use. */
export function toTlsMaterial(issued: IssuedCertificate): TlsMaterial {
  return { key: issued.key.pem, cert: issued.chain.pem, ca: issued.ca.pem };
}

interface CAState {
  dir: string;
  name: string;
  keyAlgorithm: KeyAlgorithm;
  clock: Clock;
  root: PeculiarCertificate;
  rootKeys: KeyPair | null;
  intermediate: PeculiarCertificate;
  intermediateKeys: KeyPair;
}

// The longest server id segment of an identity URI: a whole DNS name (253 characters).
const SERVER_ID_MAX = 253;

// A DNS name a TLS client can match: LDH labels (and `_`, which container service names use) of 1-63 characters, at most 253 in all, optionally `*.` first (a
// wildcard for one label). Anything else would be a SAN no hostname check ever matches.
const DNS_LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;
function checkDnsName(name: string): void {
  if (typeof name !== 'string') throw new CAError(`${String(name)} is not a DNS name (a string is required)`);
  // node's checkServerIdentity matches a host that is an IP address against IP SANs only: `DNS:127.0.0.1` would
  // fail every handshake to 127.0.0.1 as HostnameMismatch.
  if (isIP(name) !== 0) {
    throw new CAError(`${JSON.stringify(name)} is an IP address, not a DNS name: a client connecting to it checks IP SANs only,`
      + ' so give it as an IP address (ipAddresses; CLI: --ip)');
  }
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  const trimmed = bare.endsWith('.') ? bare.slice(0, -1) : bare;
  const labels = trimmed.split('.');
  if (trimmed.length === 0 || trimmed.length > 253 || !labels.every((l) => DNS_LABEL.test(l))) {
    throw new CAError(`${JSON.stringify(name)} is not a DNS name (letters, digits and '-' in dot-separated labels, '*.' first for a wildcard)`);
  }
  // OpenSSL (X509_check_host) and node's checkServerIdentity both refuse a wildcard over a single label (`*.tld`):
  // such a SAN would fail every handshake as HostnameMismatch.
  if (name !== bare && labels.length < 2) {
    throw new CAError(`${JSON.stringify(name)} is a wildcard over a single label, which no TLS client matches: give the names`
      + ` themselves, or a wildcard under a domain of two labels or more (*.svc.${trimmed})`);
  }
}

// The SAN entries of one type, as node prints them (`DNS:a, IP Address:1.2.3.4, URI:tulip://…`).
function sanPart(cert: X509Certificate, prefix: string): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter((e) => e.startsWith(prefix)).map((e) => e.slice(prefix.length));
}

// An IP address in one spelling (node prints IPv6 SANs expanded: `0:0:0:0:0:0:0:1` for `::1`).
function canonicalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname : ip;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((x) => sa.has(x));
}

function parseNodeCert(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new CAError(`${what} is not a PEM certificate (${(e as Error).message})`, { cause: e });
  }
}

// A CA certificate's lifetime in seconds, when given: > 0 (0, a negative number or NaN would make a certificate
// expired when written, or one whose notAfter is no time at all, which rotateIntermediate would move in over the
// working intermediate). Infinity is allowed where the root caps the value (the intermediate's).
function checkCALifetime(name: string, value: number | undefined, cappedByRoot: boolean): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !(value > 0) || (!cappedByRoot && !Number.isFinite(value))) {
    throw new CAError(`${name} must be positive seconds${cappedByRoot ? '' : ' (finite)'}, got ${String(value)}`);
  }
}

// Suffix of a staged intermediate file (rotateIntermediate).
const NEXT = '.next';

// Completes a rotateIntermediate that stopped between its two renames: the new key is live and its certificate is
// still staged. Anything else staged is left for the next rotation to overwrite.
function finishIntermediateRotation(dir: string): void {
  const cert = join(dir, CA_FILES.intermediateCert);
  const key = join(dir, CA_FILES.intermediateKey);
  if (!existsSync(cert + NEXT) || !existsSync(key)) return;
  try {
    if (sameKey(readFileSync(cert + NEXT, 'utf8'), readFileSync(key, 'utf8'))) renameSync(cert + NEXT, cert);
  } catch {
    // Unreadable or unparsable staged file, or a rotation finishing at the same moment: the checks below decide.
  }
}

function readMeta(dir: string): { name: string; keyAlgorithm: KeyAlgorithm } {
  const path = join(dir, CA_FILES.meta);
  if (!existsSync(path)) throw new CANotFound(`no CA in ${dir}: ${CA_FILES.meta} is missing (create one with \`tulipwire ca init --dir ${dir}\`)`);
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CACorrupt(`${path} is not valid JSON`, { cause: e });
  }
  const m = meta as { format?: unknown; version?: unknown; name?: unknown; keyAlgorithm?: unknown };
  if (m.format !== FORMAT || m.version !== VERSION || typeof m.name !== 'string' || typeof m.keyAlgorithm !== 'string') {
    throw new CACorrupt(`${path} is not a tulipwire CA description (format ${FORMAT} version ${VERSION})`);
  }
  try {
    return { name: checkCAName(m.name), keyAlgorithm: checkKeyAlgorithm(m.keyAlgorithm) };
  } catch (e) {
    throw new CACorrupt(`${path}: ${(e as Error).message}`, { cause: e });
  }
}

function readPem(dir: string, file: string): string {
  const path = join(dir, file);
  if (!existsSync(path)) throw new CACorrupt(`the CA in ${dir} is incomplete: ${file} is missing`);
  return readFileSync(path, 'utf8');
}

function parseCert(dir: string, file: string, pem: string): PeculiarCertificate {
  try {
    return new PeculiarCertificate(pem);
  } catch (e) {
    throw new CACorrupt(`${join(dir, file)} is not a PEM certificate`, { cause: e });
  }
}

async function importKey(dir: string, file: string, pem: string, passphrase?: string): Promise<KeyPair> {
  try {
    return await importPrivateKeyPem(pem, passphrase);
  } catch (e) {
    // PBES2 has no integrity check: about one wrong passphrase in 256 passes AES-CBC's padding check and yields
    // garbage that fails later as "not a key" (an ASN.1 error, not BAD_DECRYPT). With a passphrase on an encrypted
    // key, any failure is a wrong passphrase as far as can be told.
    if (passphrase !== undefined && isEncryptedPem(pem)) {
      throw new CABadPassphrase(`the passphrase does not decrypt ${join(dir, file)}`, { cause: e });
    }
    throw new CACorrupt(`${join(dir, file)} is not a usable PKCS#8 private key`, { cause: e });
  }
}

// ssh's rule for private keys: no permission bit for group or others. POSIX only: on Windows access is by ACL and
// node reports a made-up mode. A missing file is left to the read that follows, which reports it.
function checkKeyMode(path: string): void {
  if (process.platform === 'win32') return;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return;
  }
  if ((mode & 0o077) !== 0) {
    const octal = `0${mode.toString(8).padStart(3, '0')}`;
    throw new CAKeyPermissions(`${path} is accessible to its group or others (mode ${octal}): a CA key must be readable by`
      + ` its owner only; run \`chmod 600 ${path}\` (or, on a file system that cannot keep that mode, load with`
      + ' allowInsecureKeyMode; CLI: --allow-insecure-key-mode)', { path, mode });
  }
}

function isEncryptedPem(pem: string): boolean {
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
}

function sameKey(certPem: string, keyPem: string, passphrase?: string): boolean {
  const fromCert = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const priv = createPrivateKey(passphrase !== undefined ? { key: keyPem, passphrase } : keyPem);
  return createPublicKey(priv).export({ type: 'spki', format: 'der' }).equals(fromCert);
}

/** A private certificate authority on disk. Make one with {@link PrivateCA.init}, open one with {@link PrivateCA.load}. */
export class PrivateCA {
  readonly #s: CAState;

  private constructor(state: CAState) {
    this.#s = state;
  }

  /**
   * Creates a CA in `dir`: a self-signed root (BasicConstraints CA, keyCertSign|cRLSign) and an intermediate signed
   * by it (pathLen 0). Keys are PKCS#8 PEM, mode 0600, written atomically; the root key is encrypted when a
   * `passphrase` is given. Takes ~20 ms.
   * Holds the directory's lock file (`.tulipwire.lock`) while it writes.
   * @throws CAError when `dir` already holds a CA, the name or algorithm is invalid, a lifetime is not positive,
   *   another running process holds the directory's lock, or a file cannot be written.
   */
  static async init(options: PrivateCAInitOptions): Promise<PrivateCA> {
    const { dir } = options;
    const name = checkCAName(options.name);
    const keyAlgorithm = checkKeyAlgorithm(options.keyAlgorithm ?? 'ECDSA-P256');
    const clock = options.clock ?? systemClock;
    if (existsSync(join(dir, CA_FILES.meta))) throw new CAError(`${dir} already holds a CA (${CA_FILES.meta} exists)`);
    if (options.passphrase !== undefined && options.passphrase.length === 0) throw new CAError('the root key passphrase is empty');
    checkCALifetime('rootLifetime', options.rootLifetime, false);
    checkCALifetime('intermediateLifetime', options.intermediateLifetime, true);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new CAError(`could not create ${dir}: ${(e as Error).message}`, { cause: e });
    }
    // Two inits at once would each report a root that the other then overwrites: one holds the lock, the other fails.
    return withDirLock(dir, 'ca init', async () => {
    if (existsSync(join(dir, CA_FILES.meta))) throw new CAError(`${dir} already holds a CA (${CA_FILES.meta} exists)`);
    const now = clock.epoch();
    const rootKeys = await generateKeyPair(keyAlgorithm);
    const root = await createCertificate({
      kind: 'root', commonName: `${name} root CA`, organization: name, subjectKeys: rootKeys, issuerKeys: rootKeys,
      notBefore: now - CERT_BACKDATE, notAfter: now + (options.rootLifetime ?? CA_ROOT_LIFETIME),
    });
    const intermediateKeys = await generateKeyPair(keyAlgorithm);
    const intermediate = await PrivateCA.#makeIntermediate(name, root, rootKeys, intermediateKeys, now, options.intermediateLifetime);
    let rootKeyPem = await privateKeyToPem(rootKeys.privateKey);
    if (options.passphrase !== undefined) rootKeyPem = encryptPrivateKeyPem(rootKeyPem, options.passphrase);
    // Keys first, then certificates, then ca.json last: a crash midway leaves no ca.json, so no half CA loads.
    await writeFileAtomic(join(dir, CA_FILES.rootKey), rootKeyPem, 0o600);
    await writeFileAtomic(join(dir, CA_FILES.intermediateKey), await privateKeyToPem(intermediateKeys.privateKey), 0o600);
    await writeFileAtomic(join(dir, CA_FILES.rootCert), root.toString('pem') + '\n');
    await writeFileAtomic(join(dir, CA_FILES.intermediateCert), intermediate.toString('pem') + '\n');
    await writeFileAtomic(join(dir, CA_FILES.meta), JSON.stringify({ format: FORMAT, version: VERSION, name, keyAlgorithm }, null, 2) + '\n');
    return new PrivateCA({ dir, name, keyAlgorithm, clock, root, rootKeys, intermediate, intermediateKeys });
    });
  }

  static async #makeIntermediate(name: string, root: PeculiarCertificate, rootKeys: KeyPair, keys: KeyPair, now: number, lifetime?: number) {
    const rootNotAfter = root.notAfter.getTime() / 1000;
    return createCertificate({
      kind: 'intermediate', commonName: `${name} issuing CA`, organization: name, subjectKeys: keys, issuerCert: root,
      issuerKeys: rootKeys, notBefore: now - CERT_BACKDATE,
      notAfter: Math.min(rootNotAfter, now + (lifetime ?? CA_INTERMEDIATE_LIFETIME)),
    });
  }

  /**
   * Opens the CA in `dir`. The root key is read only if it is present (it may live offline) and, when encrypted, only
   * if `passphrase` is given. A {@link rotateIntermediate} that stopped between moving in the new key and its
   * certificate is finished here (the new pair loads); one that stopped before loads the old pair. Temp files
   * (`.<hex>.tmp`) an interrupted init or rotation left are removed here, holding the directory's lock for that
   * moment; when another running process holds it, or it cannot be created (a read-only directory), they are left.
   * On POSIX both key files (the root key when present, the intermediate key) must have no group or other
   * permission bits (like ssh with a private key), unless `allowInsecureKeyMode`.
   * @throws CANotFound when `dir` has no `ca.json`; CACorrupt when a file is missing, unparsable, or the parts do not
   *   belong together (intermediate not signed by the root, key not matching its certificate); CAKeyPermissions when
   *   a key file is group- or world-accessible; CABadPassphrase when `passphrase` does not decrypt the root key;
   *   CAKeyNotEncrypted when `passphrase` is given but the root key is stored unencrypted.
   */
  static async load(options: PrivateCALoadOptions): Promise<PrivateCA> {
    const { dir, passphrase } = options;
    const { name, keyAlgorithm } = readMeta(dir);
    // Temp files an interrupted init or rotation left (keys among them) go, but only holding the lock: a CA being
    // written by another process right now, or a directory this process may not write, is left as it is.
    await tryWithDirLock(dir, 'ca load', async () => undefined);
    finishIntermediateRotation(dir);
    const rootKeyPath = join(dir, CA_FILES.rootKey);
    if (options.allowInsecureKeyMode !== true) {
      checkKeyMode(join(dir, CA_FILES.intermediateKey));
      checkKeyMode(rootKeyPath); // also when encrypted, or locked for lack of a passphrase: it can be copied and attacked
    }
    const rootPem = readPem(dir, CA_FILES.rootCert);
    const interPem = readPem(dir, CA_FILES.intermediateCert);
    const interKeyPem = readPem(dir, CA_FILES.intermediateKey);
    const root = parseCert(dir, CA_FILES.rootCert, rootPem);
    const intermediate = parseCert(dir, CA_FILES.intermediateCert, interPem);
    const nodeRoot = new X509Certificate(rootPem);
    const nodeInter = new X509Certificate(interPem);
    if (!nodeInter.checkIssued(nodeRoot) || !nodeInter.verify(nodeRoot.publicKey)) {
      throw new CACorrupt(`${join(dir, CA_FILES.intermediateCert)} is not signed by ${join(dir, CA_FILES.rootCert)}`);
    }
    const intermediateKeys = await importKey(dir, CA_FILES.intermediateKey, interKeyPem);
    if (!sameKey(interPem, interKeyPem)) throw new CACorrupt(`${join(dir, CA_FILES.intermediateKey)} does not match ${CA_FILES.intermediateCert}`);
    let rootKeys: KeyPair | null = null;
    if (existsSync(rootKeyPath)) {
      const rootKeyPem = readFileSync(rootKeyPath, 'utf8');
      if (!isEncryptedPem(rootKeyPem) && passphrase !== undefined) {
        // A passphrase makes its giver believe the key is protected: say that it is plaintext on disk. (A file that is
        // no key at all is CACorrupt, from the import.)
        await importKey(dir, CA_FILES.rootKey, rootKeyPem);
        throw new CAKeyNotEncrypted(`${rootKeyPath} is stored unencrypted, but a passphrase was given (CLI: --passphrase-file`
          + ' or $TULIPWIRE_CA_PASSPHRASE): the key is plaintext on disk. Encrypt it'
          + ` (\`openssl pkcs8 -topk8 -v2 aes-256-cbc -in ${rootKeyPath} -out ${rootKeyPath}.enc\`, then move the .enc file`
          + ' over it, mode 0600), or load without the passphrase', { path: rootKeyPath });
      }
      if (!isEncryptedPem(rootKeyPem) || passphrase !== undefined) {
        rootKeys = await importKey(dir, CA_FILES.rootKey, rootKeyPem, isEncryptedPem(rootKeyPem) ? passphrase : undefined);
        if (!sameKey(rootPem, rootKeyPem, isEncryptedPem(rootKeyPem) ? passphrase : undefined)) {
          throw new CACorrupt(`${rootKeyPath} does not match ${CA_FILES.rootCert}`);
        }
      }
    }
    return new PrivateCA({ dir, name, keyAlgorithm, clock: options.clock ?? systemClock, root, rootKeys, intermediate, intermediateKeys });
  }

  /** The CA directory. */
  get dir(): string {
    return this.#s.dir;
  }
  /** The CA's name (the host of its identity URIs). */
  get name(): string {
    return this.#s.name;
  }
  /** The key algorithm of the CA and its default leaves. */
  get keyAlgorithm(): KeyAlgorithm {
    return this.#s.keyAlgorithm;
  }
  /** The clock this CA reads "now" from. */
  get clock(): Clock {
    return this.#s.clock;
  }
  /** True when the root key is loaded (so the intermediate can be rotated). */
  get hasRootKey(): boolean {
    return this.#s.rootKeys !== null;
  }
  /** The root certificate: the one trust anchor peers need. */
  get root(): CertificateInfo {
    return certificateInfo(this.#s.root);
  }
  /** The issuing intermediate certificate. */
  get intermediate(): CertificateInfo {
    return certificateInfo(this.#s.intermediate);
  }
  /** SHA-256 of the root's SubjectPublicKeyInfo, lowercase hex: the value for the TLS builders' `pin` option. */
  get rootPin(): string {
    return spkiPin(this.root.x509);
  }

  /**
   * Issues a server certificate: EKU serverAuth, SAN DNS/IP names plus the URI `tulip://<ca>/server/<cn>`, KU
   * digitalSignature, 128-bit random serial, notBefore backdated {@link CERT_BACKDATE}, lifetime default 24 h.
   * @throws CAError when no DNS name or IP is given, a DNS name or IP address is not valid (see
   *   {@link IssueServerOptions}), or the leaf would outlive the intermediate.
   */
  async issueServer(options: IssueServerOptions): Promise<IssuedCertificate> {
    const dnsNames = [...(options.dnsNames ?? [])];
    const ipAddresses = [...(options.ipAddresses ?? [])];
    if (dnsNames.length === 0 && ipAddresses.length === 0) throw new CAError('a server certificate needs at least one DNS name or IP address');
    for (const d of dnsNames) checkDnsName(d);
    for (const ip of ipAddresses) sanIpText(ip); // CAError for a non-address or a scoped (%zone) one
    const commonName = options.commonName ?? dnsNames[0] ?? ipAddresses[0]!;
    // Up to 253 characters, as the DNS name it is usually made from (a client id segment stops at 128).
    const identity = identityUri(this.#s.name, 'server', commonName.replace(/[^A-Za-z0-9._~-]/g, '-'), SERVER_ID_MAX);
    return this.#issue('server', commonName, identity, dnsNames, ipAddresses, options);
  }

  /**
   * Issues a client certificate: EKU clientAuth, one URI SAN `tulip://<ca>/<kind>/<id>`, CN = id, KU
   * digitalSignature, 128-bit random serial, backdated notBefore, lifetime default 24 h.
   * @throws CAError when the identity is malformed or names another CA, or the leaf would outlive the intermediate.
   */
  async issueClient(options: IssueClientOptions): Promise<IssuedCertificate> {
    let kind = options.kind ?? 'client';
    let id = options.identity;
    if (id.startsWith('tulip://')) {
      const parsed = parseIdentityUri(id);
      if (parsed === null) throw new CAError(`identity ${JSON.stringify(id)} is not tulip://<ca>/<kind>/<id>`);
      if (parsed.caName !== this.#s.name) throw new CAError(`identity ${id} names CA ${parsed.caName}, not this CA (${this.#s.name})`);
      ({ kind, id } = parsed);
    } else if (id.includes('/')) {
      const parts = id.split('/');
      if (parts.length !== 2) throw new CAError(`identity ${JSON.stringify(id)} must be <id>, <kind>/<id> or a tulip:// URI`);
      [kind, id] = parts as [string, string];
    }
    const identity = identityUri(this.#s.name, kind, id);
    return this.#issue('client', id, identity, [], [], options);
  }

  /**
   * Issues a new leaf with the same profile as `previous` (kind, subject CN, SANs, identity URI, lifetime, key
   * algorithm; a new key and serial), valid from now: what rotation calls. `previous` may have expired (a rotator
   * whose renewals failed past notAfter, a device that was off) or not be valid yet; either way the new certificate
   * runs from now for the same lifetime. The profile is read from `previous.cert` after checking that this CA issued
   * it (its signature leads through this CA's current intermediate, or one in `previous.chain` such as the one before
   * a {@link rotateIntermediate}, to this CA's root).
   * @throws CAError when `previous.cert` is not a certificate of this CA (another CA's, or altered), or its fields
   *   (`identity`, `dnsNames`, `ipAddresses`) do not match that certificate; or as {@link issueServer}.
   */
  async renew(previous: IssuedCertificate, options: ValidityOptions = {}): Promise<IssuedCertificate> {
    const leaf = parseNodeCert(previous.cert.pem, 'the certificate to renew');
    this.#checkIssuedHere(leaf, splitPemCertificates(previous.chain.pem).slice(1));
    const identity = sanPart(leaf, 'URI:').find((u) => parseIdentityUri(u) !== null);
    const dnsNames = sanPart(leaf, 'DNS:');
    const ipAddresses = sanPart(leaf, 'IP Address:');
    if (identity !== previous.identity || !sameSet(dnsNames.map((d) => d.toLowerCase()), previous.dnsNames.map((d) => d.toLowerCase()))
      || !sameSet(ipAddresses.map(canonicalIp), previous.ipAddresses.map(canonicalIp))) {
      throw new CAError(`the certificate to renew does not match its description: it names ${identity ?? 'no tulip:// identity'}`
        + ` (DNS ${dnsNames.join(',') || '-'}, IP ${ipAddresses.join(',') || '-'}), the description ${previous.identity}`
        + ` (DNS ${previous.dnsNames.join(',') || '-'}, IP ${previous.ipAddresses.join(',') || '-'})`);
    }
    if (parseIdentityUri(identity)!.caName !== this.#s.name) {
      throw new CAError(`identity ${identity} names CA ${parseIdentityUri(identity)!.caName}, not this CA (${this.#s.name})`);
    }
    const lifetime = previous.lifetime > 0 ? previous.lifetime : (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000;
    const validity = { lifetime, keyAlgorithm: previous.key.algorithm, ...options };
    if (previous.kind === 'server') {
      // The CN as stored, not as node prints it: node's `subject` escapes RFC 4514 specials (`a, b` → `a\, b`), and
      // the identity URI is the previous one as it stands, so renewal never changes who the server is.
      const commonName = new PeculiarCertificate(previous.cert.pem).subjectName.getField('CN')[0];
      if (dnsNames.length === 0 && ipAddresses.length === 0) throw new CAError('a server certificate needs at least one DNS name or IP address');
      return this.#issue('server', commonName ?? dnsNames[0] ?? ipAddresses[0]!, identity, dnsNames, ipAddresses, validity);
    }
    return this.issueClient({ ...validity, identity });
  }

  // Throws unless `leaf` was signed by an intermediate (this CA's current one, or one of `chain`) that this CA's root
  // signed. Signatures only, not validity dates: an expired leaf or a rotated-out intermediate still passes.
  #checkIssuedHere(leaf: X509Certificate, chain: readonly string[]): void {
    const root = this.root.x509;
    const issuers = [...chain.map((p) => parseNodeCert(p, 'a certificate of the chain')), this.intermediate.x509];
    const issuer = issuers.find((i) => i.ca && leaf.checkIssued(i) && leaf.verify(i.publicKey) && i.checkIssued(root) && i.verify(root.publicKey));
    if (issuer === undefined) {
      throw new CAError(`${leaf.subject.replace(/\n/g, ', ')} was not issued by this CA (${this.#s.name})`);
    }
  }

  /**
   * Rebuilds the {@link IssuedCertificate} view of credentials read from disk (`key.pem`/`cert.pem`/`ca.pem`), so they
   * can be renewed with the same profile: kind from the EKU, SANs, identity, and the lifetime it was issued with.
   * @throws CAError when a PEM text is not a certificate or key, the chain does not lead to this CA's root, or the
   *   leaf is not a tulipwire server/client leaf; CertificateExpired when the leaf is past its notAfter and
   *   `allowExpired` is not set.
   */
  adopt(material: TlsMaterial, options: AdoptOptions = {}): IssuedCertificate {
    const certs = splitPemCertificates(material.cert);
    const leafPem = certs[0];
    if (leafPem === undefined) throw new CAError('the cert PEM holds no certificate');
    const leaf = certificateInfo(parseNodeCert(leafPem, 'the first certificate of the cert PEM'));
    this.#checkIssuedHere(leaf.x509, certs.slice(1));
    const eku = leaf.x509.keyUsage ?? [];
    const kind = eku.includes(EKU_OIDS.serverAuth) ? 'server' : eku.includes(EKU_OIDS.clientAuth) ? 'client' : null;
    if (kind === null) throw new CAError('the certificate has neither serverAuth nor clientAuth in its extended key usage');
    const identity = sanPart(leaf.x509, 'URI:').find((u) => parseIdentityUri(u) !== null);
    if (identity === undefined) throw new CAError('the certificate has no tulip:// identity URI');
    const now = this.#s.clock.epoch();
    if (leaf.notAfter <= now && options.allowExpired !== true) {
      throw new CertificateExpired(`the certificate of ${identity} (serial ${leaf.serial}) expired ${formatAgo(now - leaf.notAfter)} ago`
        + ` (${new Date(leaf.notAfter * 1000).toISOString()}): renewing it brings back a certificate that was let lapse;`
        + ' renew it anyway with allowExpired (CLI: --allow-expired)');
    }
    let keyAlgorithm: KeyAlgorithm;
    try {
      keyAlgorithm = createPrivateKey(material.key).asymmetricKeyType === 'ed25519' ? 'Ed25519' : 'ECDSA-P256';
    } catch (e) {
      throw new CAError(`the key PEM is not an unencrypted private key (${(e as Error).message})`, { cause: e });
    }
    // Issued at notBefore + backdate (both rounded up to whole seconds alike), so this is the lifetime that was asked
    // for, exactly when it was whole seconds (a window set by hand shorter than the backdate: its whole length).
    const asked = leaf.notAfter - leaf.notBefore - CERT_BACKDATE;
    return {
      kind,
      key: { pem: material.key, algorithm: keyAlgorithm },
      cert: leaf,
      chain: { pem: material.cert },
      ca: { pem: typeof material.ca === 'string' ? material.ca : material.ca.join('') },
      identity,
      dnsNames: sanPart(leaf.x509, 'DNS:'),
      ipAddresses: sanPart(leaf.x509, 'IP Address:'),
      lifetime: asked > 0 ? asked : leaf.notAfter - leaf.notBefore,
    };
  }

  #pemCache: { for: PeculiarCertificate; root: string; intermediate: string } | null = null;
  #pems(): { root: string; intermediate: string } {
    // Cached per intermediate (rotateIntermediate replaces it): encoding PEM is JS work on every issue otherwise.
    if (this.#pemCache?.for !== this.#s.intermediate) {
      this.#pemCache = { for: this.#s.intermediate, root: this.#s.root.toString('pem') + '\n', intermediate: this.#s.intermediate.toString('pem') + '\n' };
    }
    return this.#pemCache;
  }

  async #issue(
    kind: 'server' | 'client', commonName: string, identity: string, dnsNames: string[], ipAddresses: string[],
    options: ValidityOptions,
  ): Promise<IssuedCertificate> {
    const now = this.#s.clock.epoch();
    const lifetime = options.lifetime ?? CERT_LIFETIME;
    if (!(lifetime > 0)) throw new CAError(`lifetime must be positive seconds, got ${lifetime}`);
    const notBefore = options.notBefore ?? now - CERT_BACKDATE;
    const notAfter = options.notAfter ?? now + lifetime;
    if (!(notAfter > notBefore)) throw new CAError('notAfter must be later than notBefore');
    const interNotAfter = this.#s.intermediate.notAfter.getTime() / 1000;
    // Compared as written into the certificate (whole seconds, rounded up by createCertificate).
    if (Math.ceil(notAfter) > interNotAfter) {
      throw new CAError(`the leaf would outlive the issuing intermediate (expires ${new Date(interNotAfter * 1000).toISOString()}): rotate the intermediate`);
    }
    const keyAlgorithm = checkKeyAlgorithm(options.keyAlgorithm ?? this.#s.keyAlgorithm);
    const keys = await generateKeyPair(keyAlgorithm);
    const leaf = await createCertificate({
      kind, commonName, subjectKeys: keys, issuerCert: this.#s.intermediate, issuerKeys: this.#s.intermediateKeys,
      notBefore, notAfter, dnsNames, ipAddresses, uris: [identity], purposes: options.purposes,
    });
    const cert = certificateInfo(leaf);
    const interPem = this.#pems().intermediate;
    return {
      kind,
      key: { pem: await privateKeyToPem(keys.privateKey), algorithm: keyAlgorithm },
      cert,
      chain: { pem: cert.pem + interPem },
      ca: { pem: this.#pems().root },
      identity,
      dnsNames,
      ipAddresses,
      // What a renewal asks for again: the lifetime from now, or for a window set by hand (an expired or not-yet-valid
      // test certificate) its length, so the renewal is a full-length certificate from now rather than none.
      lifetime: options.notBefore === undefined && notAfter - now > 0 ? notAfter - now : notAfter - notBefore,
      issuedAt: now,
    };
  }

  /**
   * Replaces the issuing intermediate with a new one signed by the root (new key, new lifetime). Leaves issued by
   * the old one stay valid (peers trust the root), and move over as they renew. Crash-safe: the new key and
   * certificate are staged as `*.next` files and moved in key first, holding the directory's lock file.
   * @throws CAError when the lifetime is not positive, the root key is not loaded (offline, or encrypted and no
   *   passphrase given), another running process holds the directory's lock, or the new files cannot be moved in.
   */
  async rotateIntermediate(options: { lifetime?: number } = {}): Promise<void> {
    checkCALifetime('lifetime', options.lifetime, true);
    const rootKeys = this.#s.rootKeys;
    if (rootKeys === null) throw new CAError(`the root key of ${this.#s.dir} is not loaded: load the CA with its passphrase (PrivateCA.load({ passphrase }); CLI: --passphrase-file or $TULIPWIRE_CA_PASSPHRASE), or bring the key back online`);
    const keys = await generateKeyPair(this.#s.keyAlgorithm);
    const inter = await PrivateCA.#makeIntermediate(this.#s.name, this.#s.root, rootKeys, keys, this.#s.clock.epoch(), options.lifetime);
    // Staged beside the live files, then moved in key first: the key's rename is the commit point. A crash before it
    // leaves the old pair (the staged files are overwritten by the next rotation); a crash after it leaves the new
    // key with its certificate staged, which load() moves in (finishIntermediateRotation).
    const dir = this.#s.dir;
    await withDirLock(dir, 'ca rotate-intermediate', async () => this.#moveInIntermediate(inter, keys));
    this.#s.intermediate = inter;
    this.#s.intermediateKeys = keys;
  }

  async #moveInIntermediate(inter: PeculiarCertificate, keys: KeyPair): Promise<void> {
    const dir = this.#s.dir;
    const [key, cert] = [join(dir, CA_FILES.intermediateKey), join(dir, CA_FILES.intermediateCert)];
    await writeFileAtomic(cert + NEXT, inter.toString('pem') + '\n');
    await writeFileAtomic(key + NEXT, await privateKeyToPem(keys.privateKey), 0o600);
    try {
      await rename(key + NEXT, key);
      await rename(cert + NEXT, cert).catch((e: NodeJS.ErrnoException) => {
        // A load() in another process finished the move already.
        if (e.code !== 'ENOENT' || !sameKey(readFileSync(cert, 'utf8'), readFileSync(key, 'utf8'))) throw e;
      });
    } catch (e) {
      throw new CAError(`could not move the new intermediate into ${dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Writes `issued` to a certificate directory (`key.pem` 0600, `cert.pem` chain, `ca.pem` root), atomically per file.
   * @throws CAError when the directory cannot be created.
   */
  async writeTo(dir: string, issued: IssuedCertificate): Promise<void> {
    await writeCertDir(dir, toTlsMaterial(issued));
  }
}

// "3.2 h", "12 s": how long ago a certificate expired, for messages.
function formatAgo(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}
