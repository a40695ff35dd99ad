/**
 * The distribution path of Ronacher's talk "SSL, CAs and keeping your stuff safe": `tulipwire ca issue ... --out DIR`
 * (or `ca renew --out DIR`, or any cron job) writes `key.pem`, `cert.pem` and `ca.pem` atomically; a server watches
 * the directory and reloads when they change.
 */
import { createHash } from 'node:crypto';
import type { FSWatcher } from 'node:fs';
import { existsSync, statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { CAError } from '../errors.js';
import type { TlsMaterial } from './files.js';
import { readCertDir } from './files.js';
import { validateTlsMaterial } from './tls-options.js';

/** Options of {@link watchCertDir}. */
export interface WatchCertDirOptions {
  /**
   * Called, once per set, with a reload that failed for a reason other than a half-written set (the new key beside
   * the certificate delivered before, which is skipped quietly); a new certificate beside a key that does not match
   * it is reported.
   */
  onError?: (error: CAError) => void;
  /**
   * Where to run the callbacks: with a tulipwire loop, pass it, so `onChange` runs inside a loop iteration
   * (`loop.callSoon`). Default: directly from the fs.watch callback.
   */
  loop?: { callSoon(cb: () => void): unknown };
}

/** A running directory watch. */
export interface CertDirWatcher {
  /** The material last delivered (the directory's content when the watch started, if it was valid). */
  readonly current: TlsMaterial | null;
  /** Re-reads the directory now (what a change event does); returns true when new material was delivered. */
  check(): boolean;
  /** Stops watching. */
  close(): void;
}

function digest(m: TlsMaterial): string {
  return createHash('sha256').update(m.key).update('\0').update(m.cert).update('\0').update(typeof m.ca === 'string' ? m.ca : m.ca.join('')).digest('hex');
}

/**
 * Watches a certificate directory and calls `onChange(material)` whenever `key.pem`, `cert.pem` or `ca.pem` change to a
 * new, usable set (the key matches the leaf), also when they change through a swapped symlink (`..data` in a
 * Kubernetes secret volume), and when `dir` itself is replaced (removed and made again, or a symlink switched to
 * another directory: the parent directory is watched for its name). Between the renames of one update the set can be inconsistent for a
 * moment; such reads are skipped and the last rename delivers the new set. Feed `onChange` to {@link reloadServer}.
 * @throws CAError when the directory cannot be watched.
 */
export function watchCertDir(dir: string, onChange: (material: TlsMaterial) => void, options: WatchCertDirOptions = {}): CertDirWatcher {
  let last: string | null = null;
  // The digest of the last set refused (and reported), so an unchanged broken set is reported once.
  let lastFailed: string | null = null;
  let current: TlsMaterial | null = null;
  let closed = false;
  let started = false;
  const run = (fn: () => void) => (options.loop !== undefined ? options.loop.callSoon(fn) : fn());

  const check = (): boolean => {
    if (closed) return false;
    let material: TlsMaterial;
    try {
      material = readCertDir(dir);
    } catch {
      return false; // a file is missing for a moment (or for good): wait for the next event
    }
    const d = digest(material);
    if (d === last || d === lastFailed) return false; // delivered, or refused (and reported) already
    try {
      validateTlsMaterial(material);
    } catch (e) {
      const code = ((e as CAError).cause as { code?: string } | undefined)?.code;
      // The key of one update next to the certificate delivered before: writeCertDir renames the certificate last,
      // so its next rename completes the set. A changed certificate beside a key that does not match is no such
      // moment (an update that forgot the key) and is reported like any other unusable set.
      const midUpdate = code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' && current !== null && material.cert === current.cert;
      if (!midUpdate) {
        lastFailed = d;
        if (options.onError !== undefined) {
          const err = e as CAError;
          run(() => options.onError?.(err));
        }
      }
      return false;
    }
    last = d;
    current = material;
    if (started) run(() => onChange(material));
    return true;
  };

  check(); // the starting content is the baseline, not a change
  started = true;
  // Every event re-reads the set, whatever file it names: a directory updated by swapping a symlink (Kubernetes
  // secret and configMap volumes: `cert.pem -> ..data/cert.pem`, then `..data` renamed over) changes all three
  // files without an event naming any of them. Events that change nothing (temp files) cost three small reads
  // and a digest, and deliver nothing.
  let watcher: FSWatcher | null = null;
  let watchedIno: number | null = null;
  const onWatchError = (e: Error) => options.onError?.(new CAError(`watching ${dir} failed: ${e.message}`, { cause: e }));
  // (Re)watches the directory `dir` names now. fs.watch follows the inode: a directory removed and made again, or a
  // symlink `dir` switched to another directory, leaves a watch on the old one that never fires again, so the
  // parent's watch below calls this when the entry changes. Throws when `dir` cannot be watched.
  const arm = (): void => {
    let ino: number | null;
    try {
      ino = statSync(dir).ino;
    } catch {
      ino = null; // gone for now: the parent's watch sees it come back
    }
    if (ino === watchedIno && (watcher !== null || ino === null)) return;
    watcher?.close();
    watcher = null;
    watchedIno = ino;
    if (ino === null) return;
    const w = watch(dir, { persistent: false }, () => {
      check();
    });
    w.on('error', (e) => {
      // The directory went away under the watch: the parent's watch takes over.
      if (w === watcher) {
        w.close();
        watcher = null;
        watchedIno = null;
      }
      if (existsSync(dir)) onWatchError(e);
    });
    watcher = w;
  };
  try {
    arm();
    if (watcher === null) throw new Error('no such directory');
  } catch (e) {
    throw new CAError(`cannot watch ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const name = basename(dir);
  let parentWatcher: FSWatcher | null = null;
  try {
    parentWatcher = watch(dirname(dir), { persistent: false }, (_event, entry) => {
      if (closed || (entry !== null && entry !== name)) return;
      try {
        arm();
      } catch (e) {
        onWatchError(e as Error);
        return;
      }
      check();
    });
    parentWatcher.on('error', onWatchError);
  } catch {
    // An unreadable parent: changes inside the directory are still seen, a replaced directory is not.
  }
  return {
    get current() {
      return current;
    },
    check,
    close() {
      closed = true;
      watcher?.close();
      parentWatcher?.close();
    },
  };
}
