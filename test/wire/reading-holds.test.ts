/**
 * MessageProtocol pauses its transport's reading while too many messages wait behind a slow nonce store, and lets
 * go as they drain. Its pause is a hold of its own (`_holdReading`), not the user's `pauseReading()`: a protocol that
 * pauses reading itself (application backpressure), before or while the hold is in force, stays paused when the
 * queue drains, until it resumes. Before, the drain called `resumeReading()` and undid the user's pause.
 * Memory transport pair, virtual clock.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryPair } from '../../src/net/memory-transport.js';
import { ProtocolBase } from '../../src/net/protocols.js';
import { sleep } from '../../src/loop/index.js';
import { MAX_PENDING_RESERVATIONS, MessageProtocol } from '../../src/wire/message-protocol.js';
import type { MessageProtocolOptions, RejectionError } from '../../src/wire/message-protocol.js';
import { Keyring, deriveDirectionKey } from '../../src/wire/keyring.js';
import { KIND } from '../../src/wire/envelope.js';
import { sealEnvelope } from '../../src/wire/signing.js';
import type { MessageMeta } from '../../src/wire/signing.js';
import { encode } from '../../src/wire/codec.js';
import { jsMac } from '../../src/wire/mac-js.js';
import { MemoryNonceStore } from '../../src/wire/nonces.js';
import type { NonceStore } from '../../src/wire/nonces.js';
import { useLoop } from '../support/loop.js';

const fx = useLoop();
const SECRET = Buffer.alloc(32, 0x5a);

/** Pauses reading itself when it receives the message `{n: pauseAt}`. */
class Pauser extends MessageProtocol {
  got: number[] = [];
  rejected: RejectionError[] = [];
  pauseAt = -1;
  override messageReceived(m: unknown, _meta: MessageMeta): void {
    const n = (m as { n: number }).n;
    this.got.push(n);
    if (n === this.pauseAt) this.transport!.pauseReading();
  }
  override messageRejected(e: RejectionError): void {
    this.rejected.push(e);
  }
}

class Raw extends ProtocolBase {}

function opts(extra: Partial<MessageProtocolOptions> = {}): MessageProtocolOptions {
  const keyring = new Keyring();
  keyring.add('k1', SECRET);
  return { keyring, side: 'server', logger: {}, clock: fx.clock!, ...extra };
}

function frame(seq: number): Buffer {
  const issued = Math.floor(fx.clock!.epoch() * 1000);
  return sealEnvelope({
    key: deriveDirectionKey(SECRET, 'c2s'), kid: 'k1', kind: KIND.MESSAGE, flags: 0, seq, issuedAtMs: issued,
    expiresAtMs: issued + 30_000, nonce: Buffer.from(seq.toString(16).padStart(32, '0'), 'hex'), payload: encode({ n: seq }),
  }, jsMac);
}

async function until(pred: () => boolean, iterations = 2000): Promise<void> {
  for (let i = 0; i < iterations && !pred(); i++) await sleep(0);
  expect(pred()).toBe(true);
}

async function setUp(): Promise<{ server: Pauser; rawT: ReturnType<typeof createMemoryPair>[0]; serverT: ReturnType<typeof createMemoryPair>[1]; open: () => void; inner: MemoryNonceStore }> {
  const inner = new MemoryNonceStore({ clock: fx.clock! });
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const gated: NonceStore = { reserve: (n, ttl) => opened.then(() => inner.reserve(n, ttl)), close: () => inner.close() };
  const server = new Pauser(opts({ nonceStore: gated }));
  const [rawT, serverT] = createMemoryPair(fx.loop, new Raw(), server);
  await until(() => server.transport !== null);
  return { server, rawT, serverT, open, inner };
}

const N = MAX_PENDING_RESERVATIONS + 100;
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);
/** Frames 1..N in one chunk: more than MAX_PENDING_RESERVATIONS behind the gated store, so the hold comes. */
const flood = (): Buffer => Buffer.concat(range(1, N).map(frame));

describe("MessageProtocol's own pause never undoes the user's", () => {
  it('the user pauses while the store hold is in force: reading stays paused after the drain, until the user resumes', async () => {
    await fx.run(async () => {
      const { server, rawT, serverT, open, inner } = await setUp();
      server.pauseAt = 1;
      rawT.write(flood());
      await until(() => !serverT.isReading());
      open();
      // Everything already read is delivered (it was queued before the pause), then reading stays paused.
      await until(() => server.got.length === N);
      rawT.write(frame(N + 1));
      for (let i = 0; i < 50; i++) await sleep(0);
      expect(serverT.isReading()).toBe(false);
      expect(server.got.at(-1)).toBe(N);
      serverT.resumeReading();
      await until(() => server.got.length === N + 1);
      expect(server.got).toEqual(range(1, N + 1));
      expect(server.rejected).toEqual([]);
      rawT.close();
      await inner.close();
    });
  });

  it('the user paused first: the hold comes and goes, and reading is still paused until the user resumes', async () => {
    await fx.run(async () => {
      const { server, rawT, serverT, open, inner } = await setUp();
      rawT.write(flood());
      // The chunk is read; the user pauses from dataReceived's iteration on (nothing more will be read).
      await until(() => !serverT.isReading());
      serverT.pauseReading();
      open();
      await until(() => server.got.length === N);
      rawT.write(frame(N + 1));
      for (let i = 0; i < 50; i++) await sleep(0);
      expect(serverT.isReading()).toBe(false);
      expect(server.got.length).toBe(N);
      serverT.resumeReading();
      await until(() => server.got.length === N + 1);
      expect(server.got).toEqual(range(1, N + 1));
      rawT.close();
      await inner.close();
    });
  });

  it("the user's resumeReading does not lift the store hold: reading resumes once the queue drains", async () => {
    await fx.run(async () => {
      const { server, rawT, serverT, open, inner } = await setUp();
      rawT.write(flood());
      await until(() => !serverT.isReading());
      serverT.resumeReading(); // not the user's pause: no effect
      expect(serverT.isReading()).toBe(false);
      open();
      await until(() => server.got.length === N);
      await until(() => serverT.isReading());
      rawT.write(frame(N + 1));
      await until(() => server.got.length === N + 1);
      rawT.close();
      await inner.close();
    });
  });
});
