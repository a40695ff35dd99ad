/**
 * docs/wire-format.md, section RPC: the option values whose type makes a REQUEST or NOTIFY malformed. The document
 * listed only "options not a map", while the receiver also refuses `idempotent` that is not a bool (nil included) and
 * `token` that is neither a str nor nil, in a NOTIFY too; an independent client sending `{"idempotent": nil}` got a
 * TW_BAD_PAYLOAD it could not have predicted. The document now says so; this pins the two together. A live pair over
 * a real TCP connection on 127.0.0.1 (the payloads are sent as raw envelope kinds through sendMessage).
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { portOf, untilOn, oneKeyRing } from '../support/wire-tls.js';
import '../../src/net/index.js';
import { RpcProtocol } from '../../src/wire/rpc.js';
import type { MessageMeta } from '../../src/wire/signing.js';
import type { RejectionError } from '../../src/wire/message-protocol.js';

const fx = useLoop({ real: true });
const SECRET = Buffer.alloc(32, 0x33);

class Server extends RpcProtocol {
  rejected: string[] = [];
  override messageRejected(e: RejectionError): void { this.rejected.push(`${e.code} ${e.message}`); }
}
class Client extends RpcProtocol {
  errors: unknown[] = [];
  override messageReceived(m: unknown, meta: MessageMeta): void {
    if (meta.kind === 2 || meta.kind === 3) this.errors.push(m);
    super.messageReceived(m, meta);
  }
}

describe('RPC options of the wrong type are a malformed payload (TW_BAD_PAYLOAD), as documented', () => {
  it('idempotent must be a bool when present, token a str or nil; unknown keys are ignored', async () => {
    await fx.run(async () => {
      const servers: Server[] = [];
      const srv = await fx.loop.createServer(() => {
        const s = new Server({ keyring: oneKeyRing(SECRET), side: 'server', logger: {} });
        s.handle('m', () => 'ran');
        s.onNotify('n', () => {});
        servers.push(s);
        return s;
      }, '127.0.0.1', 0);
      const [, c] = await fx.loop.createConnection(() => new Client({ keyring: oneKeyRing(SECRET), side: 'client', logger: {} }),
        '127.0.0.1', portOf(srv));
      c.sendMessage([1, 'm', null, { idempotent: null }], { kind: 1 });
      c.sendMessage([2, 'm', null, { idempotent: 1 }], { kind: 1 });
      c.sendMessage([3, 'm', null, { token: null }], { kind: 1 });
      c.sendMessage([4, 'm', null, { token: 5 }], { kind: 1 });
      c.sendMessage([5, 'm', null, { future: [1, { x: 2 }] }], { kind: 1 });
      c.sendMessage(['n', null, { idempotent: 'yes' }], { kind: 4 });
      await untilOn(fx.loop, () => c.errors.length >= 5 && (servers[0]?.rejected.length ?? 0) >= 4, 5);
      expect(c.errors).toEqual([
        [1, 'TW_BAD_PAYLOAD', 'options.idempotent must be a boolean', null],
        [2, 'TW_BAD_PAYLOAD', 'options.idempotent must be a boolean', null],
        [3, 'ran'],
        [4, 'TW_BAD_PAYLOAD', 'options.token must be a string', null],
        [5, 'ran'],
      ]);
      expect(servers[0]!.rejected).toEqual([
        'TW_BAD_PAYLOAD options.idempotent must be a boolean',
        'TW_BAD_PAYLOAD options.idempotent must be a boolean',
        'TW_BAD_PAYLOAD options.token must be a string',
        'TW_BAD_PAYLOAD options.idempotent must be a boolean',
      ]);
      c.close();
      srv.close();
      srv.abortClients();
      await srv.waitClosed();
    });
  });
});
