/**
 * The CA directory lock (`.tulipwire.lock`) under contention:
 *
 * - two commands that both find a stale lock (its process is gone) never both hold it: one takes it over, the other
 *   fails busy (200 rounds of two concurrent `withDirLock` calls on a fresh stale lock, critical sections recorded);
 * - a holder releases only its own lock: a lock file that is no longer the one it wrote (another holder's, put there
 *   by hand or by a takeover) is left in place;
 * - the lock file carries a random token besides the pid, so two locks of one process are told apart.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, tryWithDirLock, withDirLock } from '../../src/pki/files.js';

let root: string;
let deadPid: number;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tulipwire-lock-test-'));
  // A pid that ran and exited: a lock naming it is stale.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  deadPid = Number(gone.stdout);
  expect(Number.isInteger(deadPid) && deadPid > 0).toBe(true);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => {
  const d = join(root, `d-${n++}`);
  mkdirSync(d);
  return d;
};

describe('stale lock takeover', () => {
  it('two concurrent withDirLock calls on a stale lock never overlap (200 rounds): one wins, the other fails busy or runs after', async () => {
    let active = 0;
    let maxActive = 0;
    let overlaps = 0;
    const critical = async (): Promise<void> => {
      active++;
      maxActive = Math.max(maxActive, active);
      if (active > 1) overlaps++;
      await sleep(2);
      active--;
    };
    // The old code overlapped in about 1 round of 50 (both unlinked the stale file); 200 rounds make a pass by luck unlikely.
    for (let round = 0; round < 200; round++) {
      const dir = freshDir();
      const lock = join(dir, LOCK_FILE);
      // Alternate the old format (no token) and the current one: both are judged stale by their pid.
      writeFileSync(lock, round % 2 === 0 ? `${deadPid}\nca rotate-intermediate\n` : `${deadPid}\nca init\ntoken 00112233445566778899aabbccddeeff\n`, { mode: 0o600 });
      const results = await Promise.allSettled([
        withDirLock(dir, 'ca rotate-intermediate', critical),
        withDirLock(dir, 'ca rotate-intermediate', critical),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won.length, `round ${round}`).toBeGreaterThanOrEqual(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'TW_CA', message: expect.stringMatching(/is busy: ca rotate-intermediate in process \d+/) });
      }
      // No lock and nothing held aside while checking it (`.tulipwire.lock.<hex>.aside`) is left behind.
      expect(readdirSync(dir), `round ${round}: files left behind`).toEqual([]);
    }
    expect(overlaps).toBe(0);
    expect(maxActive).toBe(1);
  });

  it('a stale lock and a brief tidy-up racing: the tidy-up skips or runs alone, never beside the command', async () => {
    let active = 0;
    let overlaps = 0;
    const critical = async (): Promise<void> => {
      if (++active > 1) overlaps++;
      await sleep(2);
      active--;
    };
    for (let round = 0; round < 30; round++) {
      const dir = freshDir();
      writeFileSync(join(dir, LOCK_FILE), `${deadPid}\nca init\n`, { mode: 0o600 });
      const results = await Promise.allSettled([withDirLock(dir, 'ca rotate-intermediate', critical), tryWithDirLock(dir, 'ca load', critical)]);
      // The command either took the lock or waited out the tidy-up's (brief) one; it never fails here.
      expect(results[0]!.status, `round ${round}`).toBe('fulfilled');
      expect(results[1]!.status).toBe('fulfilled');
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    }
    expect(overlaps).toBe(0);
  });
});

describe('release', () => {
  it('leaves a lock file that is not its own (another holder took its place) where it is', async () => {
    const dir = freshDir();
    const lock = join(dir, LOCK_FILE);
    const foreign = `${process.pid}\nca init\ntoken ffeeddccbbaa99887766554433221100\n`;
    await withDirLock(dir, 'ca rotate-intermediate', async () => {
      // Someone removed our lock (by hand: "remove that file if no such process runs") and another command took it.
      unlinkSync(lock);
      writeFileSync(lock, foreign, { mode: 0o600 });
    });
    expect(readFileSync(lock, 'utf8')).toBe(foreign);
  });

  it('removes its own lock, and the lock holds the pid, the command and a random token', async () => {
    const dir = freshDir();
    const lock = join(dir, LOCK_FILE);
    const seen: string[] = [];
    for (let i = 0; i < 2; i++) await withDirLock(dir, 'ca init', async () => void seen.push(readFileSync(lock, 'utf8')));
    for (const text of seen) expect(text).toMatch(new RegExp(`^${process.pid}\\nca init\\ntoken [0-9a-f]{32}\\n$`));
    expect(seen[0]).not.toBe(seen[1]);
    expect(existsSync(lock)).toBe(false);
    // A tidy-up's lock keeps `brief` on the third line (what a waiting command looks for).
    await tryWithDirLock(dir, 'ca load', async () => {
      expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid}\\nca load\\nbrief\\ntoken [0-9a-f]{32}\\n$`));
    });
    expect(existsSync(lock)).toBe(false);
  });
});

describe('lock files held aside by a killed process', () => {
  it('the next holder removes an .aside file older than a minute, and leaves a fresh one (a release in progress)', async () => {
    const d = freshDir();
    const old = join(d, `${LOCK_FILE}.0123456789ab.aside`);
    const fresh = join(d, `${LOCK_FILE}.ba9876543210.aside`);
    const other = join(d, `${LOCK_FILE}.not-ours.aside`);
    for (const f of [old, fresh, other]) writeFileSync(f, `${deadPid}\nissue\ntoken 00\n`);
    const { utimesSync } = await import('node:fs');
    const past = new Date(Date.now() - 120_000);
    utimesSync(old, past, past);
    utimesSync(other, past, past);
    await withDirLock(d, 'test', async () => undefined);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(other)).toBe(true); // not a name this module makes
  });
});
