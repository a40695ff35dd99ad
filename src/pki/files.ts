/**
 * Files: atomic writes (temp file + fsync + rename) and the `--out DIR` layout a server or client reads its
 * credentials from: `key.pem` (0600), `cert.pem` (leaf + intermediate) and `ca.pem` (the root).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, readFileSync } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, readFile, rename, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CAError } from '../errors.js';

/** File names of a certificate directory (`ca issue ... --out DIR`). */
export const CERT_DIR_FILES = { key: 'key.pem', cert: 'cert.pem', ca: 'ca.pem' } as const;

/** The three PEM texts node:tls needs: a private key, the chain to present, and the roots to trust. */
export interface TlsMaterial {
  /** PKCS#8 PEM private key. */
  key: string;
  /** PEM chain presented to the peer: the leaf followed by the intermediate (never the root). */
  cert: string;
  /** PEM root certificate(s) to trust; several during a root rollover. Replaces the system roots. */
  ca: string | readonly string[];
}

/** The lock file {@link withDirLock} holds in a CA directory while a command changes it. */
export const LOCK_FILE = '.tulipwire.lock';

// The names of the temp files this module makes: `.<12 hex>.tmp` ({@link writeFileAtomic}) and
// `.<ca|key|cert>.pem.<12 hex>.tmp` ({@link writeCertDir}). Cleanup removes these and nothing else.
const ATOMIC_TEMP = /^\.[0-9a-f]{12}\.tmp$/;
const CERT_DIR_TEMP = /^\.(?:ca|key|cert)\.pem\.[0-9a-f]{12}\.tmp$/;

/**
 * Age past which a certificate directory's temp file counts as left by a writer that died. A write holds its temps
 * for milliseconds (prepare, fsync, rename); certificate directories have no lock, so the age is what keeps a
 * cleanup from removing the temps of a write in progress in another process.
 */
const STALE_CERT_DIR_TEMP_AGE = 10 * 60;

/**
 * How long a command that changes a CA waits for a lock held by a tidy-up ({@link tryWithDirLock}, every load: a
 * readdir and a few unlinks, milliseconds), and how often it looks again, in seconds. Without the wait a rotation
 * would fail "busy" because a `ca issue` or `renew --watch` cycle happened to load the CA at that moment.
 */
const BRIEF_LOCK_WAIT = 5;
const BRIEF_LOCK_POLL = 0.01;

/**
 * Runs `fn` holding `dir`'s lock file (created exclusively, holding this process's pid, `what` and a random token),
 * so two commands never change one CA at once. A lock left by a process that no longer runs is taken over
 * atomically: of two commands that find the same stale lock, one takes it and the other fails busy. On the way out
 * the lock is removed only while it is still the one this call wrote. Holding the lock, it first removes the
 * `.<hex>.tmp` files a {@link writeFileAtomic} of an interrupted holder left: every write into a CA directory happens
 * under this lock, so such a file belongs to no write in progress.
 * @throws CAError when another running process holds the lock, naming it and the file.
 */
export async function withDirLock<T>(dir: string, what: string, fn: () => Promise<T>): Promise<T> {
  const mine = await acquireDirLock(dir, what, false);
  try {
    await removeTemps(dir, ATOMIC_TEMP, 0);
    await removeTemps(dir, LOCK_ASIDE, STALE_LOCK_ASIDE_AGE);
    return await fn();
  } finally {
    await releaseDirLock(dir, mine);
  }
}

/**
 * {@link withDirLock} for a reader that only tidies up (`PrivateCA.load`): runs `fn` under the lock, and resolves
 * `undefined` without running it when the lock is held by another running process or cannot be created (a read-only
 * CA directory, another user's). Never throws for the lock itself.
 */
export async function tryWithDirLock<T>(dir: string, what: string, fn: () => Promise<T>): Promise<T | undefined> {
  let mine: string;
  try {
    mine = await acquireDirLock(dir, what, true);
  } catch {
    return undefined;
  }
  try {
    await removeTemps(dir, ATOMIC_TEMP, 0);
    await removeTemps(dir, LOCK_ASIDE, STALE_LOCK_ASIDE_AGE);
    return await fn();
  } finally {
    await releaseDirLock(dir, mine);
  }
}

// Removes the regular files in `dir` whose names match `pattern` and whose mtime is at least `minAge` seconds old.
// Best effort: an unreadable directory or a file that went away meanwhile is skipped.
async function removeTemps(dir: string, pattern: RegExp, minAge: number): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    if (!pattern.test(name)) continue;
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      if (!st.isFile() || now - st.mtimeMs < minAge * 1000) continue;
      await unlink(path);
    } catch {
      // Gone already (another cleanup), or not ours to remove.
    }
  }
}

// The lock file holds `<pid>\n<what>\n`, then `brief\n` for a tidy-up that a command changing the CA waits out, then
// `token <32 hex>\n`: random per acquisition, so a lock is told apart from any other, even one of the same process
// and command (a lock without a token was written by an older tulipwire). A `brief` caller (a tidy-up itself) never
// waits: it skips its work instead. Resolves with the exact text written, which releaseDirLock compares.
async function acquireDirLock(dir: string, what: string, brief: boolean): Promise<string> {
  const path = join(dir, LOCK_FILE);
  const mine = `${process.pid}\n${what}\n${brief ? 'brief\n' : ''}token ${randomBytes(16).toString('hex')}\n`;
  const waitUntil = Date.now() + BRIEF_LOCK_WAIT * 1000;
  let tookOver = false;
  for (;;) {
    try {
      const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      try {
        await fh.writeFile(mine);
      } catch (e) {
        await fh.close().catch(() => undefined);
        // Created by us a moment ago and still empty to everyone else (no one takes over a lock without a pid).
        await unlink(path).catch(() => undefined);
        throw new CAError(`could not lock ${dir}: ${(e as Error).message}`, { cause: e });
      }
      await fh.close();
      return mine;
    } catch (e) {
      if (e instanceof CAError) throw e;
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new CAError(`could not lock ${dir}: ${(e as Error).message}`, { cause: e });
      const text = await readFile(path, 'utf8').catch((re: NodeJS.ErrnoException) => (re.code === 'ENOENT' ? null : ''));
      if (text === null && Date.now() < waitUntil) continue; // released between our open and our read
      const [pidText, holder, mark] = (text ?? '').split('\n');
      const pid = Number(pidText);
      if (!tookOver && text !== null && Number.isInteger(pid) && pid > 0 && !processRuns(pid)) {
        // Stale: its process is gone. Removed only if the file is still the one judged stale (another command that
        // found the same stale lock may have replaced it with its own by now); then create ours as above.
        tookOver = true;
        await removeIfStill(dir, path, text);
        continue;
      }
      // A tidy-up holding it, or a holder that has not written its pid yet: both are done in milliseconds.
      if (!brief && (mark === 'brief' || text === '') && Date.now() < waitUntil) {
        await sleep(BRIEF_LOCK_POLL * 1000);
        continue;
      }
      throw new CAError(`${dir} is busy: ${holder || 'another command'} in process ${pidText || '?'} holds ${path}; `
        + 'wait for it, or remove that file if no such process runs');
    }
  }
}

// Where removeIfStill holds a lock file aside while it checks it: `.tulipwire.lock.<12 hex>.aside` (no pattern of
// removeTemps matches it).
const LOCK_ASIDE = /^\.tulipwire\.lock\.[0-9a-f]{12}\.aside$/;
/**
 * Age in seconds past which a lock file held aside belongs to a process killed while releasing or taking over a
 * lock (that takes milliseconds): the next holder of the lock removes it.
 */
const STALE_LOCK_ASIDE_AGE = 60;

/**
 * Removes the lock file `path` only if its content is `expected`, without ever removing another one: the file is
 * renamed to a private name (atomic: it is then no longer the lock, and no one else can rename the same file), read
 * there, and unlinked if it is `expected`; anything else is put back with link(), which never replaces a lock
 * created meanwhile, so a live holder keeps its lock. Resolves `'removed'`, `'absent'` (no lock file), or `'other'`.
 *
 * While the file is aside there is no lock file. A holder releasing in that moment finds its lock among the asides
 * ({@link releaseDirLock}) and removes it there, so the link() finds nothing to put back. A command that creates a
 * lock in that moment makes the link() fail: the displaced holder then has no file any more (its own release finds
 * none and removes nothing), so for the rest of its run a second command can hold the lock too. That needs a stale
 * lock, two commands taking it over and a third arriving within the same fraction of a millisecond.
 */
async function removeIfStill(dir: string, path: string, expected: string): Promise<'removed' | 'absent' | 'other'> {
  const aside = join(dir, `${LOCK_FILE}.${randomBytes(6).toString('hex')}.aside`);
  try {
    await rename(path, aside);
  } catch {
    return 'absent'; // gone already (released, or taken over by another command), or not ours to move
  }
  let text: string | null;
  try {
    text = await readFile(aside, 'utf8');
  } catch {
    text = null; // its holder found it here and released it
  }
  if (text === expected) {
    await unlink(aside).catch(() => undefined);
    return 'removed';
  }
  if (text !== null) await link(aside, path).catch(() => undefined); // ENOENT: released meanwhile; EEXIST: see above
  await unlink(aside).catch(() => undefined);
  return 'other';
}

// Removes this acquisition's lock (`mine`, the exact text written), and nothing else: a lock file that is not ours
// (removed by hand and taken by another command) stays. When ours is not at the lock path, a takeover may be checking
// it aside this very moment (removeIfStill), from where it would be linked back: remove it there, then look at the
// lock path once more in case the link-back came first.
async function releaseDirLock(dir: string, mine: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  const isMine = async (): Promise<boolean> => (await readFile(path, 'utf8').catch(() => null)) === mine;
  // Read first: a lock that is not ours is never moved, not even for a moment.
  if (await isMine() && await removeIfStill(dir, path, mine) === 'removed') return;
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    // Unreadable: nothing more to find.
  }
  for (const name of names) {
    if (!LOCK_ASIDE.test(name)) continue;
    const aside = join(dir, name);
    if (await readFile(aside, 'utf8').catch(() => null) === mine) await unlink(aside).catch(() => undefined);
  }
  if (await isMine()) await removeIfStill(dir, path, mine);
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes `data` to `path` atomically: a temp file in the same directory is written with `mode`, fsynced and renamed
 * over `path`, so a reader sees the old file or the new one, never a half-written one.
 * @throws CAError wrapping the fs error.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await prepareTemp(tmp, data, mode);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new CAError(`could not write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

async function prepareTemp(tmp: string, data: string | Uint8Array, mode: number): Promise<void> {
  // O_EXCL: never follow or reuse something an attacker placed there.
  const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  try {
    await fh.chmod(mode); // the umask may have removed bits; it can never add any, but be exact
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes a certificate directory atomically per file: `ca.pem`, then `key.pem` (0600), then `cert.pem` last. A watcher
 * that reads between the renames sees a key that does not match the certificate, which {@link readCertDir} callers
 * skip (createSecureContext refuses the pair), and the final rename brings a consistent set. Afterwards it removes
 * this function's own temp files (`.<file>.<hex>.tmp`) older than 10 minutes, left by a write that was killed.
 *
 * A failure (a write cut short, a rename refused) leaves the directory as it was: no temp file stays, a file already
 * renamed into place is put back to its previous content (kept as a hard link, or a copy, until the last rename) or removed when
 * there was none, and a directory this call created is removed again. Only a kill part way can leave temps, which a
 * later call removes once they are old.
 * @throws CAError wrapping the fs error.
 */
export async function writeCertDir(dir: string, material: TlsMaterial): Promise<void> {
  let made: string | undefined;
  try {
    made = await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new CAError(`could not create the certificate directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const ca = typeof material.ca === 'string' ? material.ca : material.ca.join('');
  // Prepare every temp file first so the three renames follow each other closely.
  const parts: [string, string, number][] = [
    [CERT_DIR_FILES.ca, ca, 0o644],
    [CERT_DIR_FILES.key, material.key, 0o600],
    [CERT_DIR_FILES.cert, material.cert, 0o644],
  ];
  const temp = (name: string) => join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  // Every temp file and old-content link this call made (removed on the way out), and the files renamed so far with
  // the link holding each one's old content (null: there was no such file), in order.
  const ours: string[] = [];
  const renamed: [final: string, old: string | null][] = [];
  try {
    const staged: [string, string][] = [];
    for (const [name, data, mode] of parts) {
      const tmp = temp(name);
      ours.push(tmp); // before the open: a write that fails after creating the file leaves it behind otherwise
      await prepareTemp(tmp, data, mode);
      staged.push([tmp, join(dir, name)]);
    }
    // Keep the present files' content reachable, so a failed rename can put back the ones renamed before it: a hard
    // link, or a copy (same mode) on a file system without hard links (FAT, some network mounts).
    const olds: (string | null)[] = [];
    for (const [, final] of staged) {
      const old = temp(basename(final));
      try {
        await link(final, old).catch(async (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') throw e;
          await copyFile(final, old, fsConstants.COPYFILE_EXCL);
        });
        ours.push(old);
        olds.push(old);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        olds.push(null);
      }
    }
    for (const [i, [tmp, final]] of staged.entries()) {
      await rename(tmp, final);
      renamed.push([final, olds[i]!]);
    }
  } catch (e) {
    for (const [final, old] of renamed.reverse()) {
      await (old === null ? unlink(final) : rename(old, final)).catch(() => undefined);
    }
    for (const path of ours) await unlink(path).catch(() => undefined);
    if (made !== undefined) await removeMadeDirs(dir, made);
    throw new CAError(`could not write the certificate directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  for (const path of ours) await unlink(path).catch(() => undefined);
  // Temps an interrupted write left (a kill between prepare and rename): only old ones, as there is no lock here.
  await removeTemps(dir, CERT_DIR_TEMP, STALE_CERT_DIR_TEMP_AGE);
}

// Removes the directories `mkdir(dir, {recursive: true})` created (`made` is the first of them), deepest first, each
// only while empty: something another process put there meanwhile stays.
async function removeMadeDirs(dir: string, made: string): Promise<void> {
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
    if (d === resolve(made) || dirname(d) === d) return;
  }
}

/**
 * Reads a certificate directory written by {@link writeCertDir} (synchronously: three small files, read together so
 * they come from one moment).
 * @throws CAError when a file is missing or unreadable.
 */
export function readCertDir(dir: string): TlsMaterial {
  try {
    return {
      key: readFileSync(join(dir, CERT_DIR_FILES.key), 'utf8'),
      cert: readFileSync(join(dir, CERT_DIR_FILES.cert), 'utf8'),
      ca: readFileSync(join(dir, CERT_DIR_FILES.ca), 'utf8'),
    };
  } catch (e) {
    throw new CAError(`could not read the certificate directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
}
