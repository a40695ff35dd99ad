#!/usr/bin/env node
/**
 * The `tulipwire` command line: `tulipwire ca init | issue server | issue client | inspect | renew [--watch] |
 * rotate-intermediate`.
 *
 * Every `ca` subcommand takes `--dir` (the CA directory, default `./pki`). A passphrase for the root key comes from
 * `--passphrase-file FILE` or the `TULIPWIRE_CA_PASSPHRASE` environment variable (CI has no terminal to prompt on);
 * one given for a root key stored unencrypted is an error. The commands that load the CA refuse a key file with group
 * or other permission bits unless `--allow-insecure-key-mode`.
 * Exit codes: 0 ok, 1 error (one line on stderr: `tulipwire: <reason>`), 2 usage error.
 *
 * Runs when executed (`npx tsx src/cli/main.ts ca --help`, or the `tulipwire` bin built into dist/).
 */
import { Command, CommanderError, Option } from 'commander';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, rmdirSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CERT_LIFETIME, RENEW_AT_FRACTION } from '../constants.js';
import { CAError, TulipError } from '../errors.js';
import { systemClock } from '../loop/clock.js';
import type { IssuedCertificate, KeyAlgorithm } from '../pki/index.js';
import {
  CA_FILES, CERT_DIR_FILES, CertRotator, KEY_ALGORITHMS, PrivateCA, fingerprintOf, identityOfCertificate, normalizeSerial,
  readCertDir, splitPemCertificates, spkiPin,
} from '../pki/index.js';

/** Exit code: success. */
export const EXIT_OK = 0;
/** Exit code: the command failed (reason on stderr). */
export const EXIT_ERROR = 1;
/** Exit code: the command line was wrong. */
export const EXIT_USAGE = 2;

/** A usage problem found after commander parsed the line (exit 2). */
class UsageError extends Error {}

/**
 * The first SIGINT/SIGTERM received while a one-shot command runs (null: none). Such a command is not cut short
 * mid-write: it finishes, then `init` removes the CA it made and every command exits 1 (a second signal quits at once).
 */
let interruptedBy: NodeJS.Signals | null = null;

/**
 * Parses a lifetime: seconds (`3600`), or a number with `s`, `m`, `h` or `d` (`90m`, `24h`, `7d`).
 * @throws UsageError for anything else.
 */
export function parseLifetime(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(text.trim());
  if (m === null) throw new UsageError(`invalid lifetime ${JSON.stringify(text)}: use seconds or a number with s, m, h or d (e.g. 24h)`);
  const n = Number(m[1]) * ({ s: 1, m: 60, h: 3600, d: 86400 } as const)[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  if (!(n > 0)) throw new UsageError('the lifetime must be positive');
  // X.509 times are whole seconds: a shorter lifetime would give a certificate expired when it is written.
  if (n < 1) throw new UsageError(`invalid lifetime ${JSON.stringify(text)}: at least 1 second`);
  return n;
}

/**
 * Parses a renewal fraction: a decimal (`0.75`, `.5`) or `a/b` (`2/3`, the form `--help` shows the default in),
 * strictly between 0 and 1.
 * @throws UsageError for anything else, naming the value.
 */
export function parseFraction(text: string): number {
  const m = /^\s*(?:(\d*\.?\d+)|(\d+)\s*\/\s*(\d+))\s*$/.exec(text);
  const f = m === null ? NaN : m[1] !== undefined ? Number(m[1]) : Number(m[2]) / Number(m[3]);
  if (!(f > 0 && f < 1)) {
    throw new UsageError(`--fraction ${JSON.stringify(text)}: give a fraction between 0 and 1, as a decimal (0.75) or a/b (2/3)`);
  }
  return f;
}

function formatDuration(seconds: number): string {
  const a = Math.abs(seconds);
  if (a < 120) return `${a.toFixed(0)} s`;
  if (a < 7200) return `${(a / 60).toFixed(1)} min`;
  if (a < 172800) return `${(a / 3600).toFixed(1)} h`;
  return `${(a / 86400).toFixed(1)} days`;
}

function readPassphrase(file: string | undefined): string | undefined {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new CAError(`cannot read the passphrase file ${file}: ${(e as Error).message}`, { cause: e });
    }
    // One line; a trailing newline from `echo` is not part of it.
    const line = text.replace(/\r?\n$/, '');
    if (/[\r\n]/.test(line)) throw new CAError(`the passphrase file ${file} holds more than one line: put the passphrase alone on one line`);
    if (line.length === 0) throw new CAError(`the passphrase file ${file} is empty`);
    return line;
  }
  const env = process.env['TULIPWIRE_CA_PASSPHRASE'];
  return env !== undefined && env.length > 0 ? env : undefined;
}

function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)];
}

interface CommonOpts {
  dir: string;
  passphraseFile?: string;
  allowInsecureKeyMode?: boolean;
}

/**
 * Set once stdout failed (EPIPE: its reader went away, `tulipwire … | head -1`): later output is dropped. Without an
 * 'error' listener node raises the failed write as an unhandled 'error' event, and the CLI died with a stack trace
 * after its work was done (a `renew --watch` at its next renewal).
 */
let stdoutBroken = false;

function out(line: string): void {
  if (!stdoutBroken) process.stdout.write(`${line}\n`);
}

// The 'error' listeners main() installs on stdout and stderr: a closed pipe ends the output, not the command
// (stderr's reason line is lost with it, the exit code still tells).
const onStdoutError = (): void => {
  stdoutBroken = true;
};
const onStderrError = (): void => undefined;

async function loadCA(o: CommonOpts): Promise<PrivateCA> {
  return PrivateCA.load({ dir: o.dir, passphrase: readPassphrase(o.passphraseFile), allowInsecureKeyMode: o.allowInsecureKeyMode === true });
}

function printIssued(issued: IssuedCertificate, dir: string): void {
  out(`wrote ${join(dir, CERT_DIR_FILES.key)} (0600), ${join(dir, CERT_DIR_FILES.cert)} (leaf + intermediate), ${join(dir, CERT_DIR_FILES.ca)} (root)`);
  out(`identity: ${issued.identity}`);
  out(`serial:   ${issued.cert.serial}`);
  out(`expires:  ${new Date(issued.cert.notAfter * 1000).toISOString()} (in ${formatDuration(issued.cert.notAfter - systemClock.epoch())})`);
}

/** What `ca inspect` reports (also its `--json` output). */
interface Inspection {
  file: string;
  subject: string;
  issuer: string;
  serial: string;
  sans: string[];
  eku: string[];
  notBefore: string;
  notAfter: string;
  secondsLeft: number;
  fingerprint: string;
  spkiPin: string;
  chain: { ok: boolean | null; detail: string };
}

async function inspect(file: string, o: CommonOpts, explicitDir: boolean): Promise<Inspection> {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CAError(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const blocks = splitPemCertificates(pem);
  if (blocks.length === 0) throw new CAError(`${file} holds no PEM certificate`);
  let certs: X509Certificate[];
  try {
    certs = blocks.map((b) => new X509Certificate(b));
  } catch (e) {
    throw new CAError(`${file} holds a PEM block that is not a certificate (${(e as Error).message})`, { cause: e });
  }
  const leaf = certs[0]!;
  const id = identityOfCertificate(leaf);
  const now = systemClock.epoch();
  let chain: Inspection['chain'];
  let ca: PrivateCA | null = null;
  try {
    ca = await loadCA(o);
  } catch (e) {
    // Without a CA in the default ./pki the chain is just not checked; a --dir given by hand must hold one.
    if (explicitDir || !(TulipError.isTulipError(e) && e.code === 'TW_CA_NOT_FOUND')) throw e;
  }
  if (ca === null) {
    chain = { ok: null, detail: `not checked: no CA in ${o.dir}` };
  } else {
    const root = ca.root.x509;
    const candidates = [...certs.slice(1), ca.intermediate.x509];
    if (leaf.fingerprint256 === root.fingerprint256) {
      chain = { ok: true, detail: `OK: this is the root of CA ${ca.name}` };
    } else if (leaf.checkIssued(root) && leaf.verify(root.publicKey)) {
      chain = { ok: true, detail: `OK: this is issued directly by the root of CA ${ca.name}` };
    } else {
      const inter = candidates.find((c) => leaf.checkIssued(c) && leaf.verify(c.publicKey));
      if (inter === undefined) chain = { ok: false, detail: `FAILED: not issued by CA ${ca.name} in ${o.dir}` };
      else if (!(inter.checkIssued(root) && inter.verify(root.publicKey))) chain = { ok: false, detail: `FAILED: its intermediate is not signed by the root of CA ${ca.name}` };
      else {
        const interLeft = Date.parse(inter.validTo) / 1000 - now;
        chain = interLeft > 0
          ? { ok: true, detail: `OK: leaf <- ${inter.subject.replace(/\n/g, ', ')} <- root of CA ${ca.name} (${o.dir})` }
          : { ok: false, detail: `FAILED: the intermediate expired ${formatDuration(interLeft)} ago` };
      }
    }
  }
  return {
    file,
    subject: id.subject,
    issuer: leaf.issuer.replace(/\n/g, ', '),
    serial: normalizeSerial(leaf.serialNumber),
    sans: (leaf.subjectAltName ?? '').split(', ').filter((s) => s.length > 0),
    eku: id.purposes,
    notBefore: new Date(id.notBefore * 1000).toISOString(),
    notAfter: new Date(id.notAfter * 1000).toISOString(),
    secondsLeft: Math.round(id.notAfter - now),
    fingerprint: fingerprintOf(leaf),
    spkiPin: spkiPin(leaf),
    chain,
  };
}

function printInspection(r: Inspection): void {
  const left = r.secondsLeft;
  const notYet = Date.parse(r.notBefore) / 1000 > systemClock.epoch();
  out(`file:        ${r.file}`);
  out(`subject:     ${r.subject}`);
  out(`issuer:      ${r.issuer}`);
  out(`serial:      ${r.serial}`);
  out(`SANs:        ${r.sans.length > 0 ? r.sans.join(', ') : '(none)'}`);
  out(`EKU:         ${r.eku.length > 0 ? r.eku.join(', ') : '(none)'}`);
  out(`valid:       ${r.notBefore} -> ${r.notAfter}`);
  out(`time left:   ${left <= 0 ? `EXPIRED ${formatDuration(left)} ago` : notYet ? `not valid yet; ${formatDuration(left)} until expiry` : formatDuration(left)}`);
  out(`SHA-256:     ${r.fingerprint}`);
  out(`SPKI pin:    ${r.spkiPin}`);
  out(`chain:       ${r.chain.detail}`);
}

function buildProgram(): Command {
  const program = new Command('tulipwire')
    .description('tulipwire: asyncio-style transports over mutual TLS pinned to a private CA')
    .version(packageVersion(), '-V, --version', 'print the tulipwire version')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // commander's "error: unknown option '--x'\n(Did you mean --y?)" as one line: `tulipwire: unknown option …`.
      outputError: (s, write) => write(`tulipwire: ${s.replace(/^error: /, '').trim().split('\n').join(' ')}\n`),
    });
  const ca = program.command('ca').description('run a private CA: a root that stays offline, an intermediate that issues 24 h certificates');
  ca.exitOverride();

  const dirOpt = () => new Option('--dir <dir>', 'the CA directory').default('./pki');
  const passOpt = () => new Option('--passphrase-file <file>', 'file holding the root key passphrase (else $TULIPWIRE_CA_PASSPHRASE)');
  // Every command that loads the CA: PrivateCA.load refuses key files with group/other permission bits (TW_CA_KEY_PERMISSIONS).
  const keyModeOpt = () => new Option('--allow-insecure-key-mode', 'load even if a CA key file is group- or world-accessible (a file system that cannot keep mode 0600)');
  const lifetimeOpt = () => new Option('--lifetime <duration>', 'certificate lifetime: seconds or 90m, 24h, 7d').default(`${CERT_LIFETIME / 3600}h`);

  ca.command('init')
    .description('create a CA: root + issuing intermediate (pathLen 0); the root key is encrypted when a passphrase is given')
    .addOption(dirOpt())
    .requiredOption('--name <name>', 'CA name: lowercase DNS-style, the host of tulip://<name>/<kind>/<id> identities')
    .addOption(new Option('--key-algorithm <alg>', 'key algorithm').choices(KEY_ALGORITHMS as string[]).default('ECDSA-P256'))
    .addOption(passOpt())
    .action(async (o: CommonOpts & { name: string; keyAlgorithm: KeyAlgorithm }) => {
      const passphrase = readPassphrase(o.passphraseFile);
      const dirExisted = existsSync(o.dir);
      const created = await PrivateCA.init({ dir: o.dir, name: o.name, keyAlgorithm: o.keyAlgorithm, passphrase });
      if (interruptedBy !== null) {
        // Ctrl-C while the files were written: take the new CA back out, ca.json first (without it nothing loads).
        for (const f of [CA_FILES.meta, CA_FILES.rootKey, CA_FILES.rootCert, CA_FILES.intermediateKey, CA_FILES.intermediateCert]) {
          rmSync(join(o.dir, f), { force: true });
        }
        if (!dirExisted) {
          try {
            rmdirSync(o.dir);
          } catch {
            // Not empty: someone else's files; leave it.
          }
        }
        throw new CAError(`interrupted by ${interruptedBy}: the CA was not created (nothing is left of it in ${o.dir})`);
      }
      out(`created CA ${created.name} (${created.keyAlgorithm}) in ${o.dir}`);
      out(`root:      ${created.root.fingerprint} (SHA-256), expires ${new Date(created.root.notAfter * 1000).toISOString()}`);
      out(`root pin:  ${created.rootPin} (SPKI SHA-256)`);
      out(`root key:  ${join(o.dir, 'root.key.pem')} ${passphrase !== undefined ? '(encrypted)' : '(NOT encrypted: move it offline)'}`);
    });

  const issue = ca.command('issue').description('issue a leaf certificate into a directory (key.pem, cert.pem, ca.pem)');
  issue.exitOverride();
  issue.command('server')
    .description('issue a server certificate (EKU serverAuth, SAN DNS/IP)')
    .addOption(dirOpt())
    .option('--dns <names>', 'DNS name(s), comma-separated or repeated', list, [])
    .option('--ip <addresses>', 'IP address(es), comma-separated or repeated', list, [])
    .addOption(lifetimeOpt())
    .requiredOption('--out <dir>', 'directory to write key.pem (0600), cert.pem and ca.pem to, atomically')
    .addOption(passOpt())
    .addOption(keyModeOpt())
    .action(async (o: CommonOpts & { dns: string[]; ip: string[]; lifetime: string; out: string }) => {
      if (o.dns.length === 0 && o.ip.length === 0) throw new UsageError('give at least one --dns or --ip');
      for (const ip of o.ip) {
        if (isIP(ip) === 0) throw new UsageError(`invalid IP address ${JSON.stringify(ip)} in --ip: give an IPv4 or IPv6 address`);
      }
      const lifetime = parseLifetime(o.lifetime);
      const c = await loadCA(o);
      const issued = await c.issueServer({ dnsNames: o.dns, ipAddresses: o.ip, lifetime });
      await c.writeTo(o.out, issued);
      printIssued(issued, o.out);
    });
  issue.command('client')
    .description('issue a client certificate (EKU clientAuth, SAN URI tulip://<ca>/<kind>/<id>)')
    .addOption(dirOpt())
    .requiredOption('--id <id>', 'client id, <kind>/<id>, or a full tulip:// URI')
    .option('--kind <kind>', 'identity kind when --id is a bare id', 'client')
    .addOption(lifetimeOpt())
    .requiredOption('--out <dir>', 'directory to write key.pem (0600), cert.pem and ca.pem to, atomically')
    .addOption(passOpt())
    .addOption(keyModeOpt())
    .action(async (o: CommonOpts & { id: string; kind: string; lifetime: string; out: string }) => {
      const lifetime = parseLifetime(o.lifetime);
      const c = await loadCA(o);
      const issued = await c.issueClient({ identity: o.id, kind: o.kind, lifetime });
      await c.writeTo(o.out, issued);
      printIssued(issued, o.out);
    });

  ca.command('inspect')
    .description('show a certificate: subject, SANs, EKU, validity, time left, SHA-256, and its chain against the CA in --dir')
    .argument('<file>', 'PEM file (cert.pem, a leaf, or a CA certificate)')
    .addOption(dirOpt())
    .addOption(passOpt())
    .addOption(keyModeOpt())
    .option('--json', 'print JSON')
    .action(async (file: string, o: CommonOpts & { json?: boolean }, cmd: Command) => {
      const r = await inspect(file, o, cmd.getOptionValueSource('dir') === 'cli');
      if (o.json === true) out(JSON.stringify(r, null, 2));
      else printInspection(r);
      if (r.chain.ok === false) process.exitCode = EXIT_ERROR;
    });

  ca.command('rotate-intermediate')
    .description('replace the issuing intermediate with a new one signed by the root (needs the root key and its passphrase)')
    .addOption(dirOpt())
    .option('--lifetime <duration>', 'intermediate lifetime', '90d')
    .addOption(passOpt())
    .addOption(keyModeOpt())
    .action(async (o: CommonOpts & { lifetime: string }) => {
      const lifetime = parseLifetime(o.lifetime);
      const c = await loadCA(o);
      const rootKeyFile = join(o.dir, CA_FILES.rootKey);
      if (!c.hasRootKey && !existsSync(rootKeyFile)) {
        throw new CAError(`the root key ${rootKeyFile} is offline (the file is not there): put it back to rotate the intermediate, then take it offline again`);
      }
      const before = c.intermediate.fingerprint;
      await c.rotateIntermediate({ lifetime });
      out(`rotated the intermediate of CA ${c.name}: ${before} -> ${c.intermediate.fingerprint}`);
      out(`expires: ${new Date(c.intermediate.notAfter * 1000).toISOString()}; leaves issued before stay valid (same root) and move over as they renew`);
    });

  ca.command('renew')
    .description('re-issue the certificate in --out with the same profile; with --watch keep renewing at 2/3 of its lifetime')
    .addOption(dirOpt())
    .requiredOption('--out <dir>', 'the certificate directory to renew (key.pem, cert.pem, ca.pem)')
    .option('--lifetime <duration>', 'new lifetime (default: the one the certificate was issued with)')
    .option('--watch', 'stay running and renew before expiry (the built-in "cron job"); renews an expired certificate too')
    .option('--allow-expired', 'renew the certificate even when it has already expired (refused otherwise: letting it lapse is how a client is dropped)')
    .addOption(new Option('--fraction <f>', 'with --watch, renew at this fraction of the lifetime: 0.75 or 3/4').default(String(RENEW_AT_FRACTION), '2/3'))
    .addOption(passOpt())
    .addOption(keyModeOpt())
    .action(async (o: CommonOpts & { out: string; lifetime?: string; watch?: boolean; allowExpired?: boolean; fraction: string }) => {
      const lifetime = o.lifetime !== undefined ? parseLifetime(o.lifetime) : undefined;
      const fraction = parseFraction(o.fraction);
      const c = await loadCA(o);
      // A watcher is a standing decision to keep this certificate alive (stop it to drop the client): it renews one
      // that expired while the machine was off. A one-shot renewal of a lapsed certificate needs --allow-expired.
      const current = c.adopt(readCertDir(o.out), { allowExpired: o.allowExpired === true || o.watch === true });
      if (o.watch !== true) {
        const issued = await c.renew(current, lifetime !== undefined ? { lifetime } : {});
        await c.writeTo(o.out, issued);
        printIssued(issued, o.out);
        return;
      }
      await watchRenewals(o, current, o.out, fraction, lifetime);
    });
  return program;
}

async function watchRenewals(o: CommonOpts, current: IssuedCertificate, dir: string, fraction: number, lifetime?: number): Promise<void> {
  // Loaded lazily: only `renew --watch` needs an event loop.
  const { EventLoop } = await import('../loop/index.js');
  const loop = new EventLoop();
  loop.setExceptionHandler((_loop, context) => {
    process.stderr.write(`tulipwire: ${context.message}${context.exception !== undefined ? ` (${(context.exception as Error).message})` : ''}\n`);
  });
  // The renewal in progress, if any: a stop signal lets it finish writing before the loop closes.
  let pending: Promise<unknown> = Promise.resolve();
  const rotator = new CertRotator({
    loop,
    initial: current,
    renewAtFraction: fraction,
    renew: (cur) => {
      const p = renewOnce(cur);
      pending = p.catch(() => undefined);
      return p;
    },
    onRenewed: (issued) => printIssued(issued, dir),
  });
  async function renewOnce(cur: IssuedCertificate): Promise<IssuedCertificate> {
    // Re-read the CA and the directory every cycle: an intermediate rotated or a certificate replaced by someone
    // else is picked up, and no key is kept in memory across cycles (step's renew daemon caches its key, so a new key
    // file left it with a cert/key mismatch: smallstep/cli#1632).
    const c = await loadCA(o);
    let onDisk = cur;
    try {
      onDisk = c.adopt(readCertDir(dir), { allowExpired: true });
    } catch {
      // Unreadable or foreign: renew what we last wrote.
    }
    const issued = await c.renew(onDisk, lifetime !== undefined ? { lifetime } : {});
    await c.writeTo(dir, issued);
    return issued;
  }
  const stop = () => {
    rotator.stop();
    void pending.then(() => loop.stop());
  };
  // The handlers before the "watching" line: that line says the watcher is ready, and a supervisor that stops it
  // the moment it reads it must find them installed (else the signal kills the process, no clean exit 0).
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  out(`watching ${dir}: ${current.identity}, next renewal at ${new Date(rotator.renewAt * 1000).toISOString()}`);
  rotator.start();
  await loop.runForever();
  loop.close();
}

/**
 * Runs the CLI on `argv` (without the node and script entries) and resolves with the exit code; never throws.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  interruptedBy = null;
  stdoutBroken = false;
  // Kept after the run: a failed write is reported asynchronously, often after main() returned.
  if (!process.stdout.listeners('error').includes(onStdoutError)) process.stdout.on('error', onStdoutError);
  if (!process.stderr.listeners('error').includes(onStderrError)) process.stderr.on('error', onStderrError);
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interruptedBy !== null) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    interruptedBy = signal;
  };
  let deferring = false;
  program.hook('preAction', (_program, action) => {
    // `renew --watch` handles the signals itself (it stops, exit 0); every other command finishes what it writes.
    if (action.name() === 'renew' && action.opts()['watch'] === true) return;
    deferring = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    if (interruptedBy !== null) throw new CAError(`interrupted by ${interruptedBy} after the command had finished (what it wrote is complete)`);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end through here too, with exit code 0; a missing subcommand (help shown as an error)
      // is a usage error.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return EXIT_OK;
      return EXIT_USAGE;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`tulipwire: ${e.message}\n`);
      return EXIT_USAGE;
    }
    const msg = e instanceof Error ? e.message : String(e);
    const code = TulipError.isTulipError(e) ? ` [${e.code}]` : '';
    process.stderr.write(`tulipwire: ${msg.split('\n')[0]}${code}\n`);
    return EXIT_ERROR;
  } finally {
    if (deferring) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

/** The version in package.json (one directory above src/ and dist/). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
