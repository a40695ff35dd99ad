/**
 * A real `redis-server` for tests: started on a free 127.0.0.1 port in a temp dir, with no persistence.
 *
 * ```ts
 * let redis: RedisServer;
 * beforeAll(async () => { redis = await startRedis(); });
 * afterAll(async () => { await redis.stop(); });
 * ```
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running redis-server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  url: string;
  /** The TCP port it listens on (127.0.0.1 only). */
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Kills the server (SIGKILL, a crash) and starts a new one on the same port: with no persistence it comes back
   * empty, as a real Redis without AOF/RDB does after a crash or a reboot.
   */
  crashAndRestart(): Promise<void>;
}

/** A port that was free a moment ago (redis-server cannot listen on port 0 and report it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves once a PING on `port` gets +PONG, or rejects after `timeoutMs`. */
async function waitForPong(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = createConnection({ host: '127.0.0.1', port });
      let buf = '';
      sock.setTimeout(500, () => { sock.destroy(); resolve(false); });
      sock.on('error', () => resolve(false));
      sock.on('connect', () => sock.write('PING\r\n'));
      sock.on('data', (d) => {
        buf += d.toString();
        if (buf.includes('\r\n')) { sock.destroy(); resolve(buf.startsWith('+PONG')); }
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function spawnRedis(port: number, dir: string): ChildProcess {
  const child = spawn('redis-server', [
    '--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes',
    '--loglevel', 'warning', '--logfile', '',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** Starts a redis-server; retries with another port if the chosen one was taken meanwhile. */
export async function startRedis(): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'tulipwire-redis-'));
    let child = spawnRedis(port, dir);
    let stderr = '';
    child.stderr?.on('data', (d) => { stderr += String(d); });
    const exited = exitOf(child);
    try {
      await waitForPong(port, child, 10_000);
    } catch (err) {
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      lastError = new Error(`${(err as Error).message}; stderr: ${stderr.slice(0, 500)}`);
      continue;
    }
    let stopped: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exitOf(child);
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    };
    const crashAndRestart = async (): Promise<void> => {
      child.kill('SIGKILL');
      await exitOf(child);
      // The port is free again once the old process is gone; a new one binds it (retried while the kernel lets go).
      for (let i = 0; ; i++) {
        child = spawnRedis(port, dir);
        try {
          await waitForPong(port, child, 10_000);
          return;
        } catch (err) {
          child.kill('SIGKILL');
          await exitOf(child);
          if (i >= 4) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    return { url: `redis://127.0.0.1:${port}`, port, stop, crashAndRestart };
  }
  throw lastError instanceof Error ? lastError : new Error('could not start redis-server');
}
