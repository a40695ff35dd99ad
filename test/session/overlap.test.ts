/**
 * Make-before-break without duplicates, over real mutual TLS on 127.0.0.1 with certificates from the test CA: a
 * client certificate of 3 s whose RECONNECT notice comes at once, a renewed one handed to the session when the test
 * says so. During the overlap the server sends each notification (broadcast or to one connection) to the session's
 * current connection only, and the client keeps their order across the two connections: every numbered broadcast
 * arrives exactly once, in order, through onNotify handlers and `messages` alike, and latest-wins states held on the
 * old connection move to the new one instead of being sent twice or dropped.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import type { SessionConnection } from '../../src/session/session-server.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x5a);
const { ring, serve, open } = sx;

// The notice comes as soon as the short certificate's connection is up (3 s lifetime, notice 2.9 s before notAfter).
const LIFETIME = 3;
const NOTICE = 2.9;

describe('make-before-break delivers each server notification once', () => {
  it('numbered broadcasts across a forced rotation: each exactly once and in order, the old connection read late', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/31', { lifetime: LIFETIME });
      const renewed = await sx.ca.issueClient('player/31', { lifetime: 600 });
      const conns: SessionConnection[] = [];
      const server = await serve(keyring, { reconnectNotice: NOTICE, onConnection: (c) => { conns.push(c); } });
      // A call that stays open over the switch keeps the old connection up (the overlap), until the test lets it end.
      const gate = fx.loop.createFuture<void>();
      server.handle('slow', async () => { await gate; return 'ok'; });
      let current = short.options;
      const s = open(keyring, server.port!, { tls: () => current });
      const ticks: number[] = [];
      const tocks: number[] = [];
      s.onNotify('tick', (n) => { ticks.push(n as number); });
      const reader = (async () => {
        for await (const m of s.messages) if (m.method === 'tock') tocks.push(m.params as number);
      })();
      await s.whenConnected();
      const first = s.link!;
      const slow = s.call<string>('slow', null, { timeout: 10 });
      // Every 2 ms one numbered broadcast of each kind: to a handler (tick) and to `messages` (tock).
      let n = 0;
      let ticking = true;
      const tick = (): void => {
        if (!ticking) return;
        server.broadcast('tick', n);
        server.broadcast('tock', n);
        n += 1;
        fx.loop.callLater(0.002, tick);
      };
      tick();
      while (first.notice === null) await sleep(0.01);
      // The client reads its old connection late, from before the switch on: what the new one brings meanwhile
      // (the server writes there once it has the activation) must wait behind the old one's.
      first.transport!.pauseReading();
      current = renewed.options; // the renewal: the session opens its next connection while the old one serves
      while (s.link === first) await sleep(0.005);
      const pausedAt = n;
      let heldBehind = 0;
      while (n < pausedAt + 40) {
        await sleep(0.005);
        heldBehind = Math.max(heldBehind, s.link!.ordered);
      }
      first.transport!.resumeReading();
      gate.setResult();
      expect(await slow).toBe('ok');
      while (!first.isLost) await sleep(0.01);
      const lostAt = n;
      while (n < lostAt + 20) await sleep(0.005);
      ticking = false;
      const last = n - 1;
      while (ticks.length === 0 || ticks[ticks.length - 1]! < last || tocks.length === 0 || tocks[tocks.length - 1]! < last) {
        await sleep(0.01);
      }
      await sleep(0.05); // a duplicate still on its way would land now
      const expected = [...Array(last + 1).keys()];
      expect(ticks).toEqual(expected);
      expect(tocks).toEqual(expected);
      expect(heldBehind).toBeGreaterThan(0); // the new connection's notifications did wait behind the old one's
      expect(s.connects).toBe(2);
      expect(conns.length).toBe(2);
      expect(conns[0]!.moved).toBe(true);
      expect(conns[1]!.sessionId).toBe(conns[0]!.sessionId);
      expect(conns[0]!.current).toBe(conns[1]);
      expect(server.broadcast('tick', last + 1)).toBe(1); // one session, one copy
      await s.close();
      await reader;
    });
  }, 20_000);

  it('latest-wins held on the old connection moves to the new one (once, the newest); a notify to the old connection is forwarded', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const short = await sx.ca.issueClient('player/32', { lifetime: LIFETIME });
      const renewed = await sx.ca.issueClient('player/32', { lifetime: 600 });
      const conns: SessionConnection[] = [];
      const server = await serve(keyring, { reconnectNotice: NOTICE, onConnection: (c) => { conns.push(c); } });
      let current = short.options;
      const s = open(keyring, server.port!, { tls: () => current });
      const states: number[] = [];
      const plain: number[] = [];
      s.onNotify('state', (p) => { states.push((p as { seq: number }).seq); });
      s.onNotify('plain', (p) => { plain.push(p as number); });
      await s.whenConnected();
      const first = s.link!;
      while (conns.length === 0 || conns[0]!.ready === false) await sleep(0.005);
      const old = conns[0]!;
      // The old connection's writing is paused (as a full buffer would): states are held there, latest-wins.
      old.pauseWriting();
      for (let seq = 0; seq < 10; seq++) server.broadcast('state', { seq }, { latest: true });
      server.broadcast('plain', 1); // plain ones are written as usual
      expect(old.held).toBe(1);
      expect(old.superseded).toBe(9);
      while (first.notice === null) await sleep(0.01);
      current = renewed.options;
      while (!first.isLost) await sleep(0.01);
      // After the switch: a notify to the old connection object reaches the session on its new connection.
      old.notify('state', { seq: 10 }, { latest: true });
      old.notify('plain', 2);
      server.broadcast('state', { seq: 11 }, { latest: true });
      server.broadcast('plain', 3);
      while (states[states.length - 1] !== 11 || plain[plain.length - 1] !== 3) await sleep(0.01);
      await sleep(0.05); // a duplicate still on its way would land now
      expect(states).toEqual([9, 10, 11]); // the held newest once (moved to the new connection), then the later ones
      expect(plain).toEqual([1, 2, 3]);
      expect(old.heldDropped).toBe(0);
      expect(s.connects).toBe(2);
      expect(conns[1]!.superseded).toBe(0);
    });
  }, 20_000);
});
