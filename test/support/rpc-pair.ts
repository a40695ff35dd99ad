/**
 * What the RPC tests over in-memory transports share: a protocol that records its rejections and its loss, a
 * connected client/server pair of them, and a bounded poll.
 */
import type { EventLoop } from '../../src/loop/index.js';
import { sleep } from '../../src/loop/index.js';
import { createMemoryPair } from '../../src/net/memory-transport.js';
import type { Keyring } from '../../src/wire/keyring.js';
import type { RejectionError } from '../../src/wire/message-protocol.js';
import { RpcProtocol } from '../../src/wire/rpc.js';
import type { RpcProtocolOptions } from '../../src/wire/rpc.js';

/** An RpcProtocol that records the messages it rejected and what connectionLost got (undefined until it ran). */
export class Recording extends RpcProtocol {
  readonly rejected: RejectionError[] = [];
  lost: Error | null | undefined = undefined;
  override messageRejected(error: RejectionError): void {
    this.rejected.push(error);
  }
  override connectionLost(exc: Error | null): void {
    this.lost = exc;
    super.connectionLost(exc);
  }
}

/**
 * A server and a client {@link Recording} (quiet logger, `keyring`, then the given options) joined by an in-memory
 * pair on `loop`, both past connectionMade; the transports too.
 */
export async function memoryRpcPair(loop: EventLoop, keyring: Keyring, server: Partial<RpcProtocolOptions> = {},
  client: Partial<RpcProtocolOptions> = {}) {
  const s = new Recording({ keyring, side: 'server', logger: {}, ...server });
  const c = new Recording({ keyring, side: 'client', logger: {}, ...client });
  const [ct, st] = createMemoryPair(loop, c, s);
  await sleep(0);
  await sleep(0);
  return { s, c, ct, st };
}

/** Polls (at most ~5 s of `loop` time) until `pred` holds; the assertions after it fail if it never does. */
export async function until(loop: EventLoop, pred: () => boolean): Promise<void> {
  const end = loop.time() + 5;
  while (!pred() && loop.time() < end) await sleep(0.005);
}
