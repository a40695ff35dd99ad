/**
 * Loading a CA refuses two unsafe states instead of carrying on:
 *
 * - a key file (the root key when present, the intermediate key) with any group or other permission bit
 *   (`TW_CA_KEY_PERMISSIONS`, ssh's rule for private keys), unless `allowInsecureKeyMode` / `--allow-insecure-key-mode`;
 *   every key file tulipwire writes itself is 0600, so no flow of its own trips it;
 * - a passphrase given for a root key stored unencrypted (`TW_CA_KEY_NOT_ENCRYPTED`): the giver believes the key is
 *   protected while it is plaintext on disk. Without a passphrase nothing changes.
 *
 * Real CAs in temp dirs; the CLI runs as a child process.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAError, CAKeyNotEncrypted, CAKeyPermissions } from '../../src/errors.js';
import { CA_FILES, PrivateCA } from '../../src/pki/index.js';
import { runCli } from '../support/cli.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-ca-hardening-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => join(root, `ca-${n++}`);
const modeOf = (path: string) => statSync(path).mode & 0o777;

describe.skipIf(process.platform === 'win32')('key file permissions on load', () => {
  it.each([
    [CA_FILES.rootKey, '0644'],
    [CA_FILES.rootKey, '0640'],
    [CA_FILES.intermediateKey, '0644'],
    [CA_FILES.intermediateKey, '0604'],
    [CA_FILES.intermediateKey, '0620'],
  ])('refuses %s with mode %s: CAKeyPermissions naming the file, its mode and chmod 600', async (file, octal) => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'perm.example' });
    const path = join(dir, file);
    const mode = parseInt(octal, 8);
    chmodSync(path, mode);
    const err = await PrivateCA.load({ dir }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CAKeyPermissions);
    expect(err).toBeInstanceOf(CAError);
    expect(err).toMatchObject({ code: 'TW_CA_KEY_PERMISSIONS', path, mode });
    expect((err as Error).message).toContain(`${path} is accessible to its group or others (mode ${octal})`);
    expect((err as Error).message).toContain(`chmod 600 ${path}`);
    // The fix the message gives works.
    chmodSync(path, 0o600);
    expect((await PrivateCA.load({ dir })).name).toBe('perm.example');
  });

  it('checks an encrypted root key too, also when no passphrase is given (it can be copied and attacked offline)', async () => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'perm-enc.example', passphrase: 'open sesame' });
    chmodSync(join(dir, CA_FILES.rootKey), 0o644);
    await expect(PrivateCA.load({ dir })).rejects.toMatchObject({ code: 'TW_CA_KEY_PERMISSIONS' });
    await expect(PrivateCA.load({ dir, passphrase: 'open sesame' })).rejects.toMatchObject({ code: 'TW_CA_KEY_PERMISSIONS' });
  });

  it('accepts 0600 and 0400, and a root key moved offline (only the intermediate key is checked then)', async () => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'perm-ok.example' });
    chmodSync(join(dir, CA_FILES.rootKey), 0o400);
    chmodSync(join(dir, CA_FILES.intermediateKey), 0o400);
    expect((await PrivateCA.load({ dir })).hasRootKey).toBe(true);
    unlinkSync(join(dir, CA_FILES.rootKey));
    chmodSync(join(dir, CA_FILES.intermediateKey), 0o600);
    expect((await PrivateCA.load({ dir })).hasRootKey).toBe(false);
    chmodSync(join(dir, CA_FILES.intermediateKey), 0o644);
    await expect(PrivateCA.load({ dir })).rejects.toMatchObject({ code: 'TW_CA_KEY_PERMISSIONS' });
  });

  it('allowInsecureKeyMode loads it anyway (a file system that cannot keep 0600)', async () => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'perm-allow.example' });
    chmodSync(join(dir, CA_FILES.rootKey), 0o640);
    chmodSync(join(dir, CA_FILES.intermediateKey), 0o644);
    const ca = await PrivateCA.load({ dir, allowInsecureKeyMode: true });
    expect(ca.hasRootKey).toBe(true);
    expect((await ca.issueClient({ identity: 'x' })).identity).toBe('tulip://perm-allow.example/client/x');
  });

  it('every key file tulipwire writes is 0600, so its own flows load: init, rotation, a rotation finished by load', async () => {
    const dir = freshDir();
    const ca = await PrivateCA.init({ dir, name: 'perm-flows.example' });
    for (const f of [CA_FILES.rootKey, CA_FILES.intermediateKey]) expect(modeOf(join(dir, f))).toBe(0o600);
    await ca.rotateIntermediate();
    expect(modeOf(join(dir, CA_FILES.intermediateKey))).toBe(0o600);
    expect((await PrivateCA.load({ dir })).intermediate.fingerprint).toBe(ca.intermediate.fingerprint);
    // A rotation that stopped after moving in its key: load finishes it and loads the new (0600) key.
    const staged = freshDir();
    const other = await PrivateCA.init({ dir: staged, name: 'perm-flows.example' });
    await other.rotateIntermediate();
    const key = join(staged, CA_FILES.intermediateKey);
    const cert = join(staged, CA_FILES.intermediateCert);
    renameSync(cert, `${cert}.next`);
    writeFileSync(cert, readFileSync(join(dir, CA_FILES.intermediateCert))); // any other certificate
    expect((await PrivateCA.load({ dir: staged })).intermediate.fingerprint).toBe(other.intermediate.fingerprint);
    expect(modeOf(key)).toBe(0o600);
  });
});

describe('a passphrase for an unencrypted root key', () => {
  it('is refused with CAKeyNotEncrypted naming the file; without it the CA loads as before', async () => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'plain.example' });
    const path = join(dir, CA_FILES.rootKey);
    const err = await PrivateCA.load({ dir, passphrase: 'I think this protects it' }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CAKeyNotEncrypted);
    expect(err).toBeInstanceOf(CAError);
    expect(err).toMatchObject({ code: 'TW_CA_KEY_NOT_ENCRYPTED', path });
    expect((err as Error).message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is stored unencrypted, but a passphrase was given`));
    expect((err as Error).message).toMatch(/Encrypt it .*openssl pkcs8 -topk8 -v2 aes-256-cbc.*or load without the passphrase/);
    const ca = await PrivateCA.load({ dir });
    expect(ca.hasRootKey).toBe(true);
  });

  it('following the message (openssl pkcs8 -topk8, moved over the file) gives a CA that loads with the passphrase', async () => {
    const dir = freshDir();
    const made = await PrivateCA.init({ dir, name: 'encrypt-later.example' });
    const path = join(dir, CA_FILES.rootKey);
    execFileSync('openssl', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', path, '-out', `${path}.enc`, '-passout', 'pass:now protected']);
    renameSync(`${path}.enc`, path);
    chmodSync(path, 0o600);
    const ca = await PrivateCA.load({ dir, passphrase: 'now protected' });
    expect(ca.hasRootKey).toBe(true);
    await ca.rotateIntermediate();
    expect(ca.root.fingerprint).toBe(made.root.fingerprint);
    await expect(PrivateCA.load({ dir, passphrase: 'wrong' })).rejects.toMatchObject({ code: 'TW_CA_BAD_PASSPHRASE' });
  });

  it('leaves the other cases as they were: an encrypted key, a key moved offline, a root key file that is no key', async () => {
    const enc = freshDir();
    await PrivateCA.init({ dir: enc, name: 'enc.example', passphrase: 'pw' });
    expect((await PrivateCA.load({ dir: enc, passphrase: 'pw' })).hasRootKey).toBe(true);
    expect((await PrivateCA.load({ dir: enc })).hasRootKey).toBe(false);
    const offline = freshDir();
    await PrivateCA.init({ dir: offline, name: 'offline.example' });
    unlinkSync(join(offline, CA_FILES.rootKey));
    // Nothing on disk to be wrong about: the key is elsewhere.
    expect((await PrivateCA.load({ dir: offline, passphrase: 'pw' })).hasRootKey).toBe(false);
    writeFileSync(join(offline, CA_FILES.rootKey), 'not a key\n', { mode: 0o600 });
    await expect(PrivateCA.load({ dir: offline, passphrase: 'pw' })).rejects.toMatchObject({ code: 'TW_CA_CORRUPT' });
  });
});

describe('through the CLI', () => {
  /** Asserts exit 1 with one stderr line `tulipwire: … [code]` matching `reason`. */
  function expectError(r: ReturnType<typeof runCli>, code: string, reason: RegExp): void {
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(reason);
    expect(lines[0]!.endsWith(` [${code}]`)).toBe(true);
  }

  it.skipIf(process.platform === 'win32')('a group-readable key is exit 1 TW_CA_KEY_PERMISSIONS; --allow-insecure-key-mode loads it', async () => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'cli-perm.example' });
    const key = join(dir, CA_FILES.intermediateKey);
    chmodSync(key, 0o640);
    const out = join(root, `out-${n++}`);
    expectError(runCli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--out', out], root), 'TW_CA_KEY_PERMISSIONS',
      new RegExp(`mode 0640.*chmod 600 ${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const ok = runCli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--out', out, '--allow-insecure-key-mode'], root);
    expect(ok.code, ok.stderr).toBe(0);
    expect(runCli(['ca', 'rotate-intermediate', '--help'], root).stdout).toContain('--allow-insecure-key-mode');
  });

  it('a passphrase ($TULIPWIRE_CA_PASSPHRASE or --passphrase-file) for an unencrypted root key is exit 1 TW_CA_KEY_NOT_ENCRYPTED', async () => {
    const dir = freshDir();
    await PrivateCA.init({ dir, name: 'cli-plain.example' });
    const out = join(root, `out-${n++}`);
    const pass = join(root, `pass-${n++}`);
    writeFileSync(pass, 'secret\n');
    expectError(runCli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--out', out], root, { TULIPWIRE_CA_PASSPHRASE: 'secret' }),
      'TW_CA_KEY_NOT_ENCRYPTED', /root\.key\.pem is stored unencrypted, but a passphrase was given/);
    expectError(runCli(['ca', 'rotate-intermediate', '--dir', dir, '--passphrase-file', pass], root), 'TW_CA_KEY_NOT_ENCRYPTED', /stored unencrypted/);
    // Without one, nothing changes.
    const ok = runCli(['ca', 'issue', 'client', '--dir', dir, '--id', 'x', '--out', out], root);
    expect(ok.code, ok.stderr).toBe(0);
  });
});
