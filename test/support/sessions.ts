/**
 * The fixture the session tests over real mutual TLS share: a test CA (test/support/ca.ts) made once per file,
 * `serve()` / `open()` with quiet defaults (short heartbeats, a long idle timeout so a stalled CI machine never drops
 * a link where no timeout is tested, fast backoff), and everything they open closed after each test while the loop
 * still runs (before useLoop's afterEach closes it).
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { LoopFixture } from './loop.js';
import { makeTestCA } from './ca.js';
import type { TestCA } from './ca.js';
import { Keyring } from '../../src/wire/keyring.js';
import { serveSessions } from '../../src/session/session-server.js';
import type { SessionServer, SessionServerOptions } from '../../src/session/session-server.js';
import { openSession } from '../../src/session/session.js';
import type { Session, SessionOptions } from '../../src/session/session.js';
import type { CertRotator } from '../../src/pki/index.js';

/** The quiet defaults both ends get. */
export const QUIET = { logger: {}, heartbeatInterval: 0.1, idleTimeout: 5 } as const;

/** What {@link useMtlsSessions} gives a test file. */
export interface MtlsSessions {
  /** The file's test CA (set in beforeAll). */
  readonly ca: TestCA;
  /** Rotators to stop after each test. */
  readonly rotators: CertRotator[];
  /** A keyring holding `k1`, 32 bytes of the file's key byte. */
  ring(): Keyring;
  /** A session server on 127.0.0.1 with the CA's server options, closed after the test. */
  serve(keyring: Keyring, extra?: Partial<SessionServerOptions>): Promise<SessionServer>;
  /** A session to `port` with the CA's client options, closed after the test. */
  open(keyring: Keyring, port: number, extra?: Partial<SessionOptions>): Session;
}

/** Registers the hooks and returns the fixture; `keyByte` fills the shared secret. */
export function useMtlsSessions(fx: LoopFixture, keyByte: number): MtlsSessions {
  let ca: TestCA | undefined;
  const servers: SessionServer[] = [];
  const sessions: Session[] = [];
  const rotators: CertRotator[] = [];
  beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
  afterAll(async () => { await ca?.cleanup(); });
  afterEach(async () => {
    const ss = sessions.splice(0);
    const vs = servers.splice(0);
    for (const r of rotators.splice(0)) r.stop();
    await fx.loop.runUntilComplete(async () => {
      await Promise.all(ss.map((s) => s.close()));
      for (const v of vs) await v.close();
    });
  });
  return {
    get ca(): TestCA {
      return ca!;
    },
    rotators,
    ring(): Keyring {
      const k = new Keyring();
      k.add('k1', Buffer.alloc(32, keyByte));
      return k;
    },
    async serve(keyring, extra = {}) {
      const s = await serveSessions({ keyring, tls: ca!.serverOptions, ...QUIET, ...extra });
      servers.push(s);
      return s;
    },
    open(keyring, port, extra = {}) {
      const s = openSession({ keyring, port, tls: ca!.clientOptions, ...QUIET, shutdownTimeout: 0.5,
        backoff: { base: 0.02, cap: 0.2 }, ...extra });
      sessions.push(s);
      return s;
    },
  };
}
