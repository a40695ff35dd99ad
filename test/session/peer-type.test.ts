/**
 * Every peer field is typed `unknown` (docs/pki.md): a plain-TCP, in-memory or custom-connector connection has
 * another peer or none, so a `PeerIdentity` type on one of them would be a cast nobody checked. `session.peer` was
 * typed `PeerIdentity | null` (an unchecked cast of the connection's peer). These assertions are checked by the
 * typecheck (`npm run typecheck` covers test/); at run time they are no-ops, with one run-time check beside them.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Session, SessionConnection, SessionLink } from '../../src/session/index.js';
import type { RpcContext } from '../../src/wire/rpc.js';
import { isPeerIdentity, peerIdentity } from '../../src/pki/peer-identity.js';
import type { PeerIdentity } from '../../src/pki/peer-identity.js';

describe('peer fields', () => {
  it('are unknown everywhere, to be narrowed with peerIdentity() / isPeerIdentity()', () => {
    expectTypeOf<Session['peer']>().toBeUnknown();
    expectTypeOf<SessionLink['peer']>().toBeUnknown();
    expectTypeOf<SessionConnection['peer']>().toBeUnknown();
    expectTypeOf<RpcContext['peer']>().toBeUnknown();
    expectTypeOf(peerIdentity).returns.toEqualTypeOf<PeerIdentity>();
    // An object of the right shape that no verified certificate made is not a PeerIdentity.
    expect(isPeerIdentity({ identity: 'tulip://x/client/a', serial: '01' })).toBe(false);
  });
});
