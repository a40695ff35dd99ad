/**
 * Certificate minting with `@peculiar/x509` over Node's WebCrypto: key generation, the X.509 profiles (root,
 * intermediate, server leaf, client leaf), serials, and the PEM/`X509Certificate` views a caller gets back.
 *
 * Pure apart from randomness: every time comes in as an argument (epoch seconds), never from `Date.now()`.
 * {@link PrivateCA} (ca.ts) adds the files and the CA's own clock on top.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs a Reflect polyfill loaded first (else the
// import throws "tsyringe requires a reflect polyfill"). It patches the global `Reflect`; docs/pki.md says so.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createHash, createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { CAError } from '../errors.js';

type CryptoKey = webcrypto.CryptoKey;

// Node 20 picks the default provider (its WebCrypto) on its own; setting it keeps the choice explicit.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The key algorithms a CA and its leaves can use. `'ECDSA-P256'` is the default; see docs/pki.md for Ed25519. */
export type KeyAlgorithm = 'ECDSA-P256' | 'Ed25519';

/** Every key algorithm accepted by {@link KeyAlgorithm}, for validation and CLI help. */
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ECDSA-P256', 'Ed25519'];

/** OIDs of the two extended key usages tulipwire issues. */
export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** A purpose a leaf may carry in its extended key usage. */
export type Purpose = keyof typeof EKU;

/** The scheme of tulipwire identity URIs: `tulip://<ca-name>/<kind>/<id>`. */
export const IDENTITY_SCHEME = 'tulip';

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const SEGMENT_RE = /^[A-Za-z0-9._~-]+$/;
const SEGMENT_MAX = 128;

/** A WebCrypto key pair plus the algorithm it belongs to. */
export interface KeyPair {
  /** The algorithm of both keys. */
  algorithm: KeyAlgorithm;
  /** The private key (extractable, so it can be written as PKCS#8). */
  privateKey: CryptoKey;
  /** The public key. */
  publicKey: CryptoKey;
}

function genParams(algorithm: KeyAlgorithm): webcrypto.EcKeyGenParams | webcrypto.Algorithm {
  return algorithm === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: 'P-256' };
}

function signParams(algorithm: KeyAlgorithm): webcrypto.EcdsaParams | webcrypto.Algorithm {
  return algorithm === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', hash: 'SHA-256' };
}

/** Checks that `algorithm` is one of {@link KEY_ALGORITHMS}. @throws CAError otherwise. */
export function checkKeyAlgorithm(algorithm: string): KeyAlgorithm {
  if (!(KEY_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new CAError(`unknown key algorithm ${JSON.stringify(algorithm)}: use one of ${KEY_ALGORITHMS.join(', ')}`);
  }
  return algorithm as KeyAlgorithm;
}

/** Generates a fresh extractable key pair. */
export async function generateKeyPair(algorithm: KeyAlgorithm): Promise<KeyPair> {
  const pair = (await webcrypto.subtle.generateKey(genParams(algorithm), true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return { algorithm, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

/** Exports a private key as unencrypted PKCS#8 PEM (what node:tls takes as `key`). */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/**
 * Imports a PKCS#8 PEM private key (optionally encrypted) as a WebCrypto signing key and the matching public key.
 * @throws CAError when the PEM is not a key of a supported algorithm; node:crypto's errors (wrong passphrase) are
 *   rethrown as they are so the caller can classify them.
 */
export async function importPrivateKeyPem(pem: string, passphrase?: string): Promise<KeyPair> {
  const keyObject = createPrivateKey(passphrase !== undefined ? { key: pem, passphrase } : { key: pem });
  const type = keyObject.asymmetricKeyType;
  let algorithm: KeyAlgorithm;
  if (type === 'ed25519') algorithm = 'Ed25519';
  else if (type === 'ec' && keyObject.asymmetricKeyDetails?.namedCurve === 'prime256v1') algorithm = 'ECDSA-P256';
  else throw new CAError(`unsupported private key type ${type ?? 'unknown'}`);
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const publicDer = createPublicSpki(keyObject);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, genParams(algorithm), true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', publicDer, genParams(algorithm), true, ['verify']);
  return { algorithm, privateKey, publicKey };
}

function createPublicSpki(keyObject: ReturnType<typeof createPrivateKey>): Buffer {
  return createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
}

/**
 * Encrypts a PKCS#8 PEM private key with a passphrase (PKCS#8 `ENCRYPTED PRIVATE KEY`, PBES2 with AES-256-CBC),
 * for the root key that is meant to stay offline.
 */
export function encryptPrivateKeyPem(pem: string, passphrase: string): string {
  return createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** A 128-bit random serial as hex; @peculiar/x509 encodes it as a positive INTEGER (a 0x00 byte added when needed). */
export function randomSerial(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Normalizes a certificate serial to lowercase hex without leading zero bytes (Node gives uppercase, @peculiar
 * lowercase, and either may carry the 0x00 sign byte). This is the form of `PeerIdentity.serial` and `cert.serial`.
 */
export function normalizeSerial(serial: string): string {
  let s = serial.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (s.length % 2 === 1) s = `0${s}`;
  while (s.length > 2 && s.startsWith('00')) s = s.slice(2);
  return s;
}

/** SHA-256 of a certificate's DER, lowercase hex with no separators (the form of every fingerprint in tulipwire). */
export function fingerprintOf(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/**
 * The SPKI pin of a certificate: SHA-256 over its DER SubjectPublicKeyInfo, lowercase hex. Pin the CA root with it
 * (`pin` option of the TLS builders). Pins survive re-issuing the root with the same key.
 */
export function spkiPin(cert: X509Certificate | string): string {
  const c = typeof cert === 'string' ? new X509Certificate(cert) : cert;
  return createHash('sha256').update(c.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Checks a CA name: a lowercase DNS-style label sequence, as it becomes the host of identity URIs. @throws CAError */
export function checkCAName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new CAError(`CA name ${JSON.stringify(name)} must be lowercase letters, digits, '-' and '.' (it is the host of tulip:// identity URIs)`);
  }
  return name;
}

/**
 * Builds `tulip://<caName>/<kind>/<id>`.
 * @param maxIdLength the longest `id` accepted: 128 by default; a server's id is its DNS name, up to 253
 * @throws CAError when `kind` (1-128) or `id` (1-`maxIdLength`) is empty, too long, or has characters outside `A-Za-z0-9._~-`.
 */
export function identityUri(caName: string, kind: string, id: string, maxIdLength = SEGMENT_MAX): string {
  for (const [what, v, max] of [['kind', kind, SEGMENT_MAX], ['id', id, maxIdLength]] as const) {
    if (typeof v !== 'string' || !SEGMENT_RE.test(v) || v.length > max) {
      throw new CAError(`identity ${what} ${JSON.stringify(v)} must be 1-${max} characters of A-Za-z0-9._~-`);
    }
  }
  return `${IDENTITY_SCHEME}://${caName}/${kind}/${id}`;
}

/** The parts of a `tulip://<ca>/<kind>/<id>` URI, or null when `uri` is not one. */
export function parseIdentityUri(uri: string): { caName: string; kind: string; id: string } | null {
  const m = /^tulip:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
  if (m === null) return null;
  return { caName: m[1]!, kind: m[2]!, id: m[3]! };
}

/** The kinds of certificate a CA makes. */
export type CertificateKind = 'root' | 'intermediate' | 'server' | 'client';

/** What goes into one certificate. Times are epoch seconds. */
export interface CertificateSpec {
  /** Which profile: CA certificates get BasicConstraints CA:TRUE and keyCertSign; leaves digitalSignature. */
  kind: CertificateKind;
  /** The subject's common name. */
  commonName: string;
  /** Extra subject attribute: the organization (tulipwire puts the CA name here). */
  organization?: string;
  /** The key pair being certified. */
  subjectKeys: KeyPair;
  /** The issuer's certificate (absent for a self-signed root). */
  issuerCert?: x509.X509Certificate;
  /** The issuer's key pair (the subject's own for a root). */
  issuerKeys: KeyPair;
  /** Validity start, epoch seconds. */
  notBefore: number;
  /** Validity end, epoch seconds. */
  notAfter: number;
  /** DNS SANs. */
  dnsNames?: readonly string[];
  /** IP SANs. */
  ipAddresses?: readonly string[];
  /** URI SANs. */
  uris?: readonly string[];
  /** Extended key usages of a leaf (default by kind: server → serverAuth, client → clientAuth). `[]` omits the extension. */
  purposes?: readonly Purpose[];
  /** pathLen of a CA certificate: none for the root by default, 0 for the intermediate. */
  pathLength?: number;
  /** The serial as hex; default {@link randomSerial}. */
  serial?: string;
}

// The issuer's AKI is the same for every leaf it signs: compute it once per key (an export and a SHA-1 each time).
const akiCache = new WeakMap<CryptoKey, Promise<x509.AuthorityKeyIdentifierExtension>>();
function authorityKeyId(issuerPublicKey: CryptoKey): Promise<x509.AuthorityKeyIdentifierExtension> {
  let p = akiCache.get(issuerPublicKey);
  if (p === undefined) {
    p = x509.AuthorityKeyIdentifierExtension.create(issuerPublicKey);
    akiCache.set(issuerPublicKey, p);
  }
  return p;
}

/**
 * A subject attribute value that @peculiar/x509 stores exactly as given. Its plain-string form is parsed as RFC 4514
 * text (a backslash escapes the next character, a leading `#` is read as hex, a quoted part is extracted), so a CN
 * with a backslash lost it and one starting with `#` threw; the object form is stored verbatim (PrintableString
 * when the text allows it, as the string form chose, else UTF8String).
 */
function literalNameValue(value: string): x509.JsonAttributeObject {
  return x509.Name.isPrintableString(value) ? { printableString: value } : { utf8String: value };
}

/**
 * An IP address in the spelling @peculiar/x509's encoder reads correctly. Its IPv6 parser knows only hex groups: an
 * embedded IPv4 part (`::ffff:127.0.0.1`, `64:ff9b::192.0.2.33`) became other bytes (`::ffff:0:127`), and a zone
 * (`fe80::1%eth0`) was cut off silently. IPv6 goes through the WHATWG URL parser, which writes the same 16 bytes as
 * hex groups (`::ffff:7f00:1`); a zone cannot be in a certificate and is refused.
 * @throws CAError for text that is not an IPv4 or IPv6 address, or a scoped IPv6 address
 */
export function sanIpText(ip: string): string {
  const family = typeof ip === 'string' ? isIP(ip) : 0;
  if (family === 4) return ip;
  if (family !== 6) throw new CAError(`${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
  if (ip.includes('%')) {
    throw new CAError(`${JSON.stringify(ip)} is a scoped IPv6 address: a certificate holds the address alone (no %zone), give ${JSON.stringify(ip.slice(0, ip.indexOf('%')))}`);
  }
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Mints one certificate from a {@link CertificateSpec}. */
export async function createCertificate(spec: CertificateSpec): Promise<x509.X509Certificate> {
  const isCA = spec.kind === 'root' || spec.kind === 'intermediate';
  const pathLength = spec.pathLength ?? (spec.kind === 'intermediate' ? 0 : undefined);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(isCA, isCA ? pathLength : undefined, true),
    new x509.KeyUsagesExtension(
      isCA ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(spec.subjectKeys.publicKey),
    // @peculiar/x509 adds no AKI itself, and without it `openssl verify -x509_strict` fails; a root carries its own.
    await authorityKeyId(spec.issuerKeys.publicKey),
  ];
  if (!isCA) {
    const purposes = spec.purposes ?? (spec.kind === 'server' ? ['serverAuth'] : ['clientAuth']);
    if (purposes.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(purposes.map((p) => EKU[p])));
  }
  const names: x509.JsonGeneralName[] = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value: sanIpText(value) })),
    ...(spec.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const subject: x509.JsonNameParams = [{ CN: [literalNameValue(spec.commonName)] }];
  if (spec.organization !== undefined) subject.unshift({ O: [literalNameValue(spec.organization)] });
  const subjectName = new x509.Name(subject);
  return x509.X509CertificateGenerator.create({
    serialNumber: spec.serial ?? randomSerial(),
    subject: subjectName,
    // The issuer's Name object, not a re-typed string: byte-identical to its subject, for stacks that match names.
    issuer: spec.issuerCert !== undefined ? spec.issuerCert.subjectName : subjectName,
    // X.509 time has second precision: both ends round up to whole seconds, so a certificate never ends before the
    // time asked for and a window keeps its length (adopt() reads a whole-second lifetime back exactly). notAfter
    // used to round down: a 1 s certificate issued at x.7 s lived 0.3 s, and a rotator renewing at 2/3 of the
    // lifetime was past that point at once and re-issued ~7 times a second. A default notBefore is backdated
    // (CERT_BACKDATE) far more than the second this can add.
    notBefore: new Date(Math.ceil(spec.notBefore) * 1000),
    notAfter: new Date(Math.ceil(spec.notAfter) * 1000),
    publicKey: spec.subjectKeys.publicKey,
    signingKey: spec.issuerKeys.privateKey,
    signingAlgorithm: signParams(spec.issuerKeys.algorithm),
    extensions,
  });
}

/** A certificate as the PEM text and as Node's `X509Certificate`, with the fields tulipwire reports. */
export interface CertificateInfo {
  /** PEM of this certificate alone. */
  pem: string;
  /** Node's parsed view (`subject`, `subjectAltName`, `verify()`, `checkIssued()`, …), made on first access. */
  readonly x509: X509Certificate;
  /** Serial, lowercase hex without leading zero bytes. */
  serial: string;
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint: string;
  /** Validity start, epoch seconds. */
  notBefore: number;
  /** Validity end, epoch seconds. */
  notAfter: number;
}

/**
 * Builds a {@link CertificateInfo} from PEM text or a parsed certificate. From a @peculiar certificate (what issuing
 * produces) the fields come from its own parse and `x509` is made on first access: node's `X509Certificate`
 * constructor costs ~150 µs, a sizeable part of issuing one leaf.
 */
export function certificateInfo(cert: string | x509.X509Certificate | X509Certificate): CertificateInfo {
  if (cert instanceof x509.X509Certificate) {
    const raw = Buffer.from(cert.rawData);
    const pem = `${cert.toString('pem')}\n`;
    let node: X509Certificate | undefined;
    return {
      pem,
      get x509() {
        node ??= new X509Certificate(raw);
        return node;
      },
      serial: normalizeSerial(cert.serialNumber),
      fingerprint: createHash('sha256').update(raw).digest('hex'),
      notBefore: cert.notBefore.getTime() / 1000,
      notAfter: cert.notAfter.getTime() / 1000,
    };
  }
  const pem = typeof cert === 'string' ? cert : cert.toString();
  const node = cert instanceof X509Certificate ? cert : new X509Certificate(pem);
  return {
    pem: pem.endsWith('\n') ? pem : `${pem}\n`,
    x509: node,
    serial: normalizeSerial(node.serialNumber),
    fingerprint: fingerprintOf(node),
    notBefore: Date.parse(node.validFrom) / 1000,
    notAfter: Date.parse(node.validTo) / 1000,
  };
}

/** Splits a PEM bundle into its certificates' PEM blocks, in order. */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? [];
}
