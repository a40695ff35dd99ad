/**
 * A `tls` function that throws (its certificate files are being replaced, a secret store is down) is the user's
 * callback failing: it must not end the session. At an attempt it is a failed attempt (retried with backoff); while
 * a RECONNECT notice is pending the session asks it again and again whether a renewed certificate is there, and a
 * throw there means "not yet", not the end of the session and every call on it. Real mutual TLS on 127.0.0.1.
 */
import type { ConnectionOptions } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x1d);

async function until(pred: () => boolean): Promise<boolean> {
  for (let i = 0; i < 500 && !pred(); i++) await sleep(0.01);
  return pred();
}

describe('a tls function that throws while a RECONNECT notice is pending', () => {
  it('the session keeps serving on its connection and moves once the function works again', async () => {
    await fx.run(async () => {
      const keyring = sx.ring();
      const short = await sx.ca.issueClient('player/tls-fn', { lifetime: 20 });
      const renewed = await sx.ca.issueClient('player/tls-fn');
      const server = await sx.serve(keyring, { reconnectNotice: 60 });
      server.handle('echo', (p: unknown) => p);
      let broken = false;
      let current: ConnectionOptions = short.options;
      const s = sx.open(keyring, server.port!, {
        tls: () => {
          if (broken) throw new Error('the certificate files are being replaced');
          return current;
        },
      });
      await s.whenConnected();
      const first = s.link!;
      expect(await until(() => first.notice !== null)).toBe(true); // noticed at once: it expires within 60 s
      broken = true;
      await sleep(0.5); // several rechecks (every heartbeat interval, 0.1 s) find the function throwing
      expect(s.closed.done()).toBe(false);
      expect(s.task.done()).toBe(false);
      expect(s.lastError?.message).toBe('the certificate files are being replaced');
      expect(await s.call('echo', 'still here')).toBe('still here');
      expect(s.link).toBe(first);
      current = renewed.options;
      broken = false;
      expect(await until(() => s.link !== first && s.link !== null && s.connected)).toBe(true); // the move
      expect(await s.call('echo', 'moved')).toBe('moved');
    });
  }, 20_000);
});
