/**
 * `writeCertDir` writes three files, each through a temp file and a rename. A failure part way (a write that the
 * file-size limit cuts short, a target that is a directory) must leave the directory as it was: no temp file behind,
 * and none of the three files replaced, so a watcher never picks up a half-delivered set and an operator finds the
 * old, consistent credentials.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { IssuedCertificate } from '../../src/pki/index.js';
import { PrivateCA, toTlsMaterial, writeCertDir } from '../../src/pki/index.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const FILES = pathToFileURL(join(ROOT, 'src/pki/files.ts')).href;

let root: string;
let n = 0;
const fresh = (what: string) => join(root, `${what}-${n++}`);
let ca: PrivateCA;
let first: IssuedCertificate;
let second: IssuedCertificate;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-certdir-fail-'));
  ca = await PrivateCA.init({ dir: fresh('ca'), name: 'certdir.example' });
  first = await ca.issueServer({ dnsNames: ['localhost'] });
  second = await ca.issueServer({ dnsNames: ['localhost'] });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    out[name] = statSync(p).isDirectory() ? '<dir>' : readFileSync(p, 'utf8');
  }
  return out;
}

/**
 * Runs writeCertDir in a child whose file-size limit (RLIMIT_FSIZE, applied with prlimit once the child has loaded
 * its code) is `limit` bytes, with SIGXFSZ ignored so an oversized write fails with EFBIG instead of killing it.
 * Resolves with the error code the child saw.
 */
async function writeUnderSizeLimit(dir: string, limit: number, material: unknown): Promise<string> {
  const script = `
    import { writeCertDir } from ${JSON.stringify(FILES)};
    process.on('SIGXFSZ', () => {});
    const material = JSON.parse(process.argv[process.argv.length - 1]);
    process.stdout.write('ready\\n');
    process.stdin.once('data', async () => {
      try { await writeCertDir(${JSON.stringify(dir)}, material); process.stdout.write('ok\\n'); }
      catch (e) { process.stdout.write('error ' + e.code + ' ' + (e.cause && e.cause.code) + '\\n'); }
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', script, JSON.stringify(material)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => {
    out += s;
    let i: number;
    while ((i = out.indexOf('\n')) >= 0) {
      lines.push(out.slice(0, i));
      out = out.slice(i + 1);
    }
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (lines.length === 0) {
      await new Promise<void>((res, rej) => {
        wake = res;
        child.once('exit', () => rej(new Error(`child exited: ${out}`)));
      });
    }
    return lines.shift()!;
  };
  try {
    expect(await next()).toBe('ready');
    execFileSync('prlimit', [`--pid=${child.pid}`, `--fsize=${limit}:${limit}`]);
    child.stdin.write('go\n');
    return await next();
  } finally {
    child.kill();
  }
}

describe('a failed writeCertDir leaves the directory as it was', () => {
  it('a write cut short by the file-size limit leaves no temp file and no file replaced', async () => {
    const dir = fresh('out');
    await writeCertDir(dir, toTlsMaterial(first));
    const before = snapshot(dir);
    // ca.pem and key.pem are well under 1200 bytes, cert.pem (leaf + intermediate) well over: the third write fails.
    const material = toTlsMaterial(second);
    expect(Buffer.byteLength(material.cert)).toBeGreaterThan(1200);
    expect(Buffer.byteLength(material.key)).toBeLessThan(1200);
    const result = await writeUnderSizeLimit(dir, 1200, material);
    expect(result).toBe('error TW_CA EFBIG');
    expect(snapshot(dir)).toEqual(before);
  });

  it('a rename that fails (key.pem is a directory) replaces nothing and leaves no temp file', async () => {
    const dir = fresh('out');
    await writeCertDir(dir, toTlsMaterial(first));
    rmSync(join(dir, 'key.pem'));
    mkdirSync(join(dir, 'key.pem'));
    const before = snapshot(dir);
    await expect(writeCertDir(dir, toTlsMaterial(second))).rejects.toMatchObject({ code: 'TW_CA' });
    expect(snapshot(dir)).toEqual(before); // ca.pem still the first set's, cert.pem too
  });

  it('a rename that fails on the last file (cert.pem is a directory) puts back the files already renamed', async () => {
    const dir = fresh('out');
    await writeCertDir(dir, toTlsMaterial(first));
    rmSync(join(dir, 'cert.pem'));
    mkdirSync(join(dir, 'cert.pem'));
    const before = snapshot(dir);
    await expect(writeCertDir(dir, toTlsMaterial(second))).rejects.toMatchObject({ code: 'TW_CA' });
    expect(snapshot(dir)).toEqual(before);
  });

  it('a failure into a directory that had no files leaves none of them', async () => {
    const dir = fresh('out');
    mkdirSync(dir);
    mkdirSync(join(dir, 'cert.pem'));
    await expect(writeCertDir(dir, toTlsMaterial(second))).rejects.toMatchObject({ code: 'TW_CA' });
    expect(readdirSync(dir)).toEqual(['cert.pem']);
  });

  it('after a failure the next write succeeds and delivers the whole new set', async () => {
    const dir = fresh('out');
    await writeCertDir(dir, toTlsMaterial(first));
    rmSync(join(dir, 'cert.pem'));
    mkdirSync(join(dir, 'cert.pem'));
    await expect(writeCertDir(dir, toTlsMaterial(second))).rejects.toMatchObject({ code: 'TW_CA' });
    rmSync(join(dir, 'cert.pem'), { recursive: true });
    await writeCertDir(dir, toTlsMaterial(second));
    const m = toTlsMaterial(second);
    expect(snapshot(dir)).toEqual({ 'ca.pem': m.ca, 'cert.pem': m.cert, 'key.pem': m.key });
    expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
  });
});
