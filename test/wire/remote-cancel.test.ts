/**
 * A call the *peer* cancelled (its handler threw CancelledError, or a raw CANCEL reached it) fails the caller with a
 * remote error, not with a CancelledError of its own. A rebuilt CancelledError would make the calling Task end
 * cancelled although nobody cancelled it, and a TaskGroup would then finish normally with the failure gone (asyncio
 * treats any CancelledError a coroutine raises as its own cancellation; grpc's asyncio client, likewise, reports a
 * server-side CANCELLED as an error status, never as asyncio.CancelledError). A call the caller cancels itself still
 * ends in its own CancelledError.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { memoryRpcPair, until as untilIn } from '../support/rpc-pair.js';
import { Keyring } from '../../src/wire/keyring.js';
import { KIND } from '../../src/wire/envelope.js';
import { TaskGroup, currentTask } from '../../src/loop/index.js';
import type { Future } from '../../src/loop/index.js';
import { CancelledError, ErrorGroup, RpcError, errorFromCode, isCancelledError } from '../../src/errors.js';

const fx = useLoop({ real: true });

function keyring(): Keyring {
  const k = new Keyring();
  k.add('k1', Buffer.alloc(32, 7));
  return k;
}
const pair = () => memoryRpcPair(fx.loop, keyring(), {}, {});
const until = (pred: () => boolean): Promise<void> => untilIn(fx.loop, pred);

describe('a call cancelled by the peer', () => {
  it('errorFromCode: TW_CANCELLED from the wire is an RpcError (remoteCode TW_CANCELLED), never a CancelledError', () => {
    const err = errorFromCode('TW_CANCELLED', 'call x was cancelled');
    expect(err).toBeInstanceOf(RpcError);
    expect(err).not.toBeInstanceOf(CancelledError);
    expect(isCancelledError(err)).toBe(false);
    expect(err).toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_CANCELLED', remote: true, message: 'call x was cancelled' });
  });

  it('a handler that throws CancelledError fails the caller; its Task is not cancelled and a TaskGroup reports it', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      s.handle('shutting-down', () => { throw new CancelledError('server going away'); });
      const err = await c.call('shutting-down').then(() => null, (e: unknown) => e);
      expect(isCancelledError(err)).toBe(false);
      expect(err).toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_CANCELLED', remote: true });
      expect(currentTask()!.cancelling()).toBe(0);

      // The same call inside a TaskGroup: the group fails with it (with a rebuilt CancelledError the child Task
      // ended cancelled and the group finished as if nothing had happened).
      let ranToEnd = false;
      const outcome = await (async () => {
        const g = new TaskGroup();
        await g.run(async (tg) => {
          tg.createTask(async () => { await c.call('shutting-down'); ranToEnd = true; });
        });
        return 'completed';
      })().catch((e: unknown) => e);
      expect(ranToEnd).toBe(false);
      expect(outcome).toBeInstanceOf(ErrorGroup);
      expect((outcome as ErrorGroup).errors.map((e) => (e as RpcError).remoteCode)).toEqual(['TW_CANCELLED']);
    });
  });

  it('a CANCEL the caller did not send (a raw frame) fails the call with the remote error; a cancel of its own is a CancelledError', async () => {
    await fx.run(async () => {
      const { s, c } = await pair();
      let running: Future<string> | null = null;
      s.handle('slow', () => (running = fx.loop.createFuture<string>()));
      const call = c.call('slow');
      await until(() => running !== null);
      c.sendMessage([1], { kind: KIND.CANCEL });
      const err = await call.then(() => null, (e: unknown) => e);
      expect(isCancelledError(err)).toBe(false);
      expect(err).toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_CANCELLED', remote: true });

      running = null;
      const own = c.call('slow');
      await until(() => running !== null);
      own.cancel();
      const ownErr = await own.then(() => null, (e: unknown) => e);
      expect(isCancelledError(ownErr)).toBe(true);
      expect((ownErr as CancelledError).remote).toBeFalsy();
      await until(() => running!.cancelled()); // the CANCEL it sent reached the handler
    });
  });
});
