/**
 * The CA fixture for every area's tests: a real {@link PrivateCA} in a temp dir, a server certificate for
 * 127.0.0.1/localhost and a client certificate, ready-made pinned mTLS options for both sides, and mints for the
 * certificates that must fail (another CA, a look-alike CA, expired, not yet valid, wrong EKU). No checked-in PEMs.
 *
 * ```ts
 * let t: TestCA;
 * beforeAll(async () => { t = await makeTestCA(); });
 * afterAll(() => t.cleanup());
 * // tls.createServer(t.serverOptions) / tls.connect({port, host: '127.0.0.1', ...t.clientOptions})
 * // loop.createServer(f, '127.0.0.1', 0, {ssl: t.serverOptions}) / loop.createConnection(f, '127.0.0.1', port, {ssl: t.clientOptions})
 * ```
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  ClientTlsBuildOptions, IssueClientOptions, IssuedCertificate, IssueServerOptions, KeyAlgorithm, PkiClientTlsOptions,
  PkiServerTlsOptions, ServerTlsBuildOptions,
} from '../../src/pki/index.js';
import { PrivateCA, clientTlsOptions, serverTlsOptions } from '../../src/pki/index.js';
import type { Clock } from '../../src/loop/clock.js';

/** A minted certificate together with the node:tls options that present it. */
export interface TestCredentials<O> {
  /** The certificate, key and chain. */
  issued: IssuedCertificate;
  /** Options to pass to `tls.createServer`/`tls.connect` (or as `ssl` to the tulipwire transports). */
  options: O;
}

/** What {@link makeTestCA} returns. */
export interface TestCA {
  /** The temp directory holding the CA (removed by {@link TestCA.cleanup}). */
  dir: string;
  /** The CA itself. */
  ca: PrivateCA;
  /** Server certificate: DNS localhost, IP 127.0.0.1, 24 h. */
  server: IssuedCertificate;
  /** Client certificate: identity `tulip://<name>/client/test-client`, 24 h. */
  client: IssuedCertificate;
  /** Server options (requestCert, rejectUnauthorized, ca = this root only, TLS 1.3, root pinned). */
  serverOptions: PkiServerTlsOptions;
  /** Client options with `servername: 'localhost'` (root pinned). Connect to 127.0.0.1. */
  clientOptions: PkiClientTlsOptions;
  /** Issues another server certificate (default SANs localhost/127.0.0.1) with its pinned options. */
  issueServer(options?: IssueServerOptions, tls?: ServerTlsBuildOptions): Promise<TestCredentials<PkiServerTlsOptions>>;
  /** Issues another client certificate (`identity` e.g. `'player/42'`) with its pinned options. */
  issueClient(identity: string, options?: Omit<IssueClientOptions, 'identity'>, tls?: ClientTlsBuildOptions): Promise<TestCredentials<PkiClientTlsOptions>>;
  /** A client whose certificate expired an hour ago (issued a day before). */
  expiredClient(): Promise<TestCredentials<PkiClientTlsOptions>>;
  /** A server whose certificate expired an hour ago. */
  expiredServer(): Promise<TestCredentials<PkiServerTlsOptions>>;
  /** A client whose certificate becomes valid only in an hour. */
  notYetValidClient(): Promise<TestCredentials<PkiClientTlsOptions>>;
  /** A server whose certificate becomes valid only in an hour. */
  notYetValidServer(): Promise<TestCredentials<PkiServerTlsOptions>>;
  /** A client presenting a certificate with EKU serverAuth only (a server certificate used as a client's). */
  wrongEkuClient(): Promise<TestCredentials<PkiClientTlsOptions>>;
  /** A server presenting a certificate with EKU clientAuth only (a client certificate used as a server's). */
  wrongEkuServer(): Promise<TestCredentials<PkiServerTlsOptions>>;
  /**
   * Another, unrelated CA (a different name and keys) as a full fixture of its own; its cleanup is part of this
   * fixture's cleanup.
   */
  otherCA(): Promise<TestCA>;
  /**
   * A look-alike CA: the same name, so byte-identical subject DNs, but different keys. Node must refuse it by key;
   * a pinned client refuses it even when it is added to `ca`.
   */
  lookalikeCA(): Promise<TestCA>;
  /** Removes the temp directories. */
  cleanup(): Promise<void>;
}

/** Options of {@link makeTestCA}. */
export interface MakeTestCAOptions {
  /** CA name. Default `'test.tulipwire'`. */
  name?: string;
  /** Key algorithm. Default ECDSA-P256. */
  keyAlgorithm?: KeyAlgorithm;
  /** Clock for "now" (a VirtualClock for rotation tests). Default the system clock. */
  clock?: Clock;
  /** Pin the root in the ready-made options. Default true. */
  pin?: boolean;
}

const HOUR = 3600;

/** Creates a CA in a fresh temp dir with ready server and client credentials. ~30-80 ms. */
export async function makeTestCA(options: MakeTestCAOptions = {}): Promise<TestCA> {
  const dir = await mkdtemp(join(tmpdir(), 'tulipwire-ca-'));
  const extraDirs: TestCA[] = [];
  const name = options.name ?? 'test.tulipwire';
  const ca = await PrivateCA.init({ dir: join(dir, 'ca'), name, keyAlgorithm: options.keyAlgorithm, clock: options.clock });
  const pinOpt = options.pin === false ? {} : { pin: ca.rootPin };
  const clock = options.clock;
  const sOpts = (issued: IssuedCertificate, tls: ServerTlsBuildOptions = {}) => serverTlsOptions(issued, { ...pinOpt, clock, ...tls });
  const cOpts = (issued: IssuedCertificate, tls: ClientTlsBuildOptions = {}) =>
    clientTlsOptions(issued, { servername: 'localhost', ...pinOpt, clock, ...tls });
  const now = () => ca.clock.epoch();
  const server = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const client = await ca.issueClient({ identity: 'test-client' });
  const serverSans = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };

  const t: TestCA = {
    dir,
    ca,
    server,
    client,
    serverOptions: sOpts(server),
    clientOptions: cOpts(client),
    async issueServer(o = {}, tls = {}) {
      const issued = await ca.issueServer({ ...serverSans, ...o });
      return { issued, options: sOpts(issued, tls) };
    },
    async issueClient(identity, o = {}, tls = {}) {
      const issued = await ca.issueClient({ ...o, identity });
      return { issued, options: cOpts(issued, tls) };
    },
    async expiredClient() {
      const issued = await ca.issueClient({ identity: 'expired-client', notBefore: now() - 25 * HOUR, notAfter: now() - HOUR });
      return { issued, options: cOpts(issued) };
    },
    async expiredServer() {
      const issued = await ca.issueServer({ ...serverSans, notBefore: now() - 25 * HOUR, notAfter: now() - HOUR });
      return { issued, options: sOpts(issued) };
    },
    async notYetValidClient() {
      const issued = await ca.issueClient({ identity: 'future-client', notBefore: now() + HOUR, notAfter: now() + 25 * HOUR });
      return { issued, options: cOpts(issued) };
    },
    async notYetValidServer() {
      const issued = await ca.issueServer({ ...serverSans, notBefore: now() + HOUR, notAfter: now() + 25 * HOUR });
      return { issued, options: sOpts(issued) };
    },
    async wrongEkuClient() {
      const issued = await ca.issueClient({ identity: 'wrong-eku-client', purposes: ['serverAuth'] });
      return { issued, options: cOpts(issued) };
    },
    async wrongEkuServer() {
      const issued = await ca.issueServer({ ...serverSans, purposes: ['clientAuth'] });
      return { issued, options: sOpts(issued) };
    },
    async otherCA() {
      const other = await makeTestCA({ ...options, name: `other.${name}` });
      extraDirs.push(other);
      return other;
    },
    async lookalikeCA() {
      const other = await makeTestCA({ ...options, name });
      extraDirs.push(other);
      return other;
    },
    async cleanup() {
      for (const o of extraDirs.splice(0)) await o.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return t;
}
