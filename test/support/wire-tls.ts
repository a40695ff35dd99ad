/**
 * What the MessageProtocol tests over real TLS share: a protocol that records everything it receives, a TLS
 * server of them on 127.0.0.1 (port 0) registered for the test file's cleanup, and the file's CA and cleanup
 * ({@link useWireTls}).
 */
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { sleep } from '../../src/loop/index.js';
import type { EventLoop } from '../../src/loop/index.js';
import '../../src/net/index.js';
import type { Server } from '../../src/net/index.js';
import type { PkiServerTlsOptions } from '../../src/pki/index.js';
import { Keyring } from '../../src/wire/keyring.js';
import { MessageProtocol } from '../../src/wire/message-protocol.js';
import type { MessageProtocolOptions, RejectionError } from '../../src/wire/message-protocol.js';
import type { MessageMeta } from '../../src/wire/signing.js';
import { makeTestCA } from './ca.js';
import type { TestCA } from './ca.js';
import type { LoopFixture } from './loop.js';

/** A MessageProtocol that records the raw chunks, the verified messages, the rejections and the loss it sees. */
export class Recorder extends MessageProtocol {
  /** Every chunk received, copied. */
  raw: Buffer[] = [];
  /** Verified messages with their metadata, in order. */
  got: [unknown, MessageMeta][] = [];
  /** Rejected messages' errors, in order. */
  rejected: RejectionError[] = [];
  /** connectionLost's argument, once it ran. */
  lost: (Error | null)[] = [];
  override dataReceived(d: Buffer): void {
    this.raw.push(Buffer.from(d));
    super.dataReceived(d);
  }
  override messageReceived(m: unknown, meta: MessageMeta): void {
    this.got.push([m, meta]);
  }
  override messageRejected(e: RejectionError): void {
    this.rejected.push(e);
  }
  override connectionLost(e: Error | null): void {
    super.connectionLost(e);
    this.lost.push(e);
  }
}

/** The TCP port a tulipwire Server listens on. */
export function portOf(server: Server): number {
  return (server.sockets[0] as { address(): { port: number } }).address().port;
}

/**
 * A TLS server of {@link Recorder}s (side 'server', quiet logger, then `options`) on 127.0.0.1 with `ssl`, pushed to
 * `servers` so the file's afterEach closes it; resolves with its port and the protocols it made, in order.
 */
export async function serveRecorders(loop: EventLoop, ssl: PkiServerTlsOptions, servers: Server[],
  options: Partial<MessageProtocolOptions> & Pick<MessageProtocolOptions, 'keyring'>): Promise<{ port: number; protocols: Recorder[] }> {
  const protocols: Recorder[] = [];
  const server = await loop.createServer(() => {
    const p = new Recorder({ side: 'server', logger: {}, ...options });
    protocols.push(p);
    return p;
  }, '127.0.0.1', 0, { ssl });
  servers.push(server);
  return { port: portOf(server), protocols };
}

/**
 * Closes `servers` and aborts their connections, then lets the loop run the resulting connectionLost callbacks
 * (call it inside the loop, from the test file's afterEach).
 */
export async function closeServers(servers: readonly Server[]): Promise<void> {
  for (const s of servers) {
    s.close();
    s.abortClients();
    await s.waitClosed();
  }
  await sleep(0.01);
}

/** What {@link useWireTls} gives a test file. */
export interface WireTls {
  /** The file's test CA (set in beforeAll). */
  readonly ca: TestCA;
  /** Servers to close (and whose connections to abort) after each test. */
  readonly servers: Server[];
  /** Client protocols to abort after each test. */
  readonly clients: { abort(): void }[];
}

/**
 * The per-file set-up of the MessageProtocol/RPC tests over real mutual TLS: a test CA made once per file, and the
 * servers and client protocols a test pushes closed after it while the loop still runs (before useLoop's afterEach
 * closes the loop).
 */
export function useWireTls(fx: LoopFixture): WireTls {
  let ca: TestCA | undefined;
  const servers: Server[] = [];
  const clients: { abort(): void }[] = [];
  beforeAll(async () => { ca = await makeTestCA(); }, 60_000);
  afterAll(async () => { await ca?.cleanup(); });
  afterEach(async () => {
    const cs = clients.splice(0);
    const ss = servers.splice(0);
    await fx.loop.runUntilComplete(async () => {
      for (const c of cs) c.abort();
      await closeServers(ss);
    });
  });
  return {
    get ca(): TestCA {
      return ca!;
    },
    servers,
    clients,
  };
}

/** A keyring holding the one key `k1` with `secret` (each test file picks its own secret). */
export function oneKeyRing(secret: Buffer): Keyring {
  const k = new Keyring();
  k.add('k1', secret);
  return k;
}

/**
 * Polls every 2 ms of `loop` time, for at most `seconds`, until `pred` holds; then asserts it, so a condition that
 * never came fails the test at this line.
 */
export async function untilOn(loop: EventLoop, pred: () => boolean, seconds = 5): Promise<void> {
  const end = loop.time() + seconds;
  while (!pred() && loop.time() < end) await sleep(0.002);
  expect(pred()).toBe(true);
}
