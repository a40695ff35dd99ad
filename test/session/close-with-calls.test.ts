/**
 * What each call gets when its session closes (docs/sessions.md, Cancellation): a call already sent fails with
 * TransportClosed ("the connection was closed by this end": it may or may not have run, as after any connection
 * loss), an idempotent one too (it is not sent again); a call still queued (no connection yet) fails with
 * SessionClosed. Real mutual TLS on 127.0.0.1.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x66);

describe('session.close() with calls outstanding', () => {
  it('sent calls fail with TW_TRANSPORT_CLOSED (idempotent ones are not resent); the handler saw each once', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      const release = fx.loop.createFuture<void>();
      let runs = 0;
      server.handle('slow', async () => { runs++; await release; return 'done'; });
      const s = sx.open(keyring, server.port!);
      await s.whenConnected();
      const plain = s.call('slow', null, { timeout: null });
      const idem = s.call('slow', null, { timeout: null, idempotent: true });
      for (let i = 0; i < 300 && runs < 2; i++) await sleep(0.01);
      expect(runs).toBe(2);
      s.close();
      const codes = await Promise.all([plain, idem].map((c) => c.then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`)));
      expect(codes).toEqual([
        'TW_TRANSPORT_CLOSED: the connection was closed by this end',
        'TW_TRANSPORT_CLOSED: the connection was closed by this end',
      ]);
      await s.closed;
      release.setResult(undefined);
      await sleep(0.05);
      expect(runs).toBe(2);
    });
  }, 20_000);

  it('a call still queued (no connection yet) fails with TW_SESSION_CLOSED', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const server = await sx.serve(keyring);
      const port = server.port!;
      server.close();
      await sleep(0.05);
      const s = sx.open(keyring, port, { backoff: { base: 0.05, cap: 0.05 } });
      const queued = s.call('slow', null, { timeout: null });
      await sleep(0.05);
      expect(s.queued).toBe(1);
      s.close();
      expect(await queued.then(() => 'ok', (e: { code?: string }) => e.code)).toBe('TW_SESSION_CLOSED');
      await s.closed;
    });
  }, 20_000);
});
