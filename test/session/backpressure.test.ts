/**
 * Slow consumers over real mutual TLS (127.0.0.1): a client that stops reading pauses the server connection's
 * writing; notifications sent with `latest` are then held latest-wins (one per key, the newest), and go out when
 * the client reads again; plain traffic to a peer that never reads is bounded by `maxWriteBuffer` (SlowConsumer),
 * while the other clients are served as before. Bounded in messages and bytes; no timed assertions.
 */
import { describe, expect, it } from 'vitest';
import { useLoop } from '../support/loop.js';
import { useMtlsSessions } from '../support/sessions.js';
import { sleep } from '../../src/loop/index.js';
import type { SessionConnection, SessionServer } from '../../src/session/session-server.js';
import { SlowConsumer } from '../../src/errors.js';

const fx = useLoop({ real: true });
const sx = useMtlsSessions(fx, 0x5c);
const { ring, serve, open } = sx;

const PAD = Buffer.alloc(2048, 1);

/**
 * Fills the kernel buffers and the transport's with plain `fill` notifications until the connection's writing stays
 * paused (the kernel takes no more), bounded: 20,000 x 2 KiB.
 */
async function fillUntilPaused(server: SessionServer, conn: SessionConnection): Promise<void> {
  let fill = 0;
  while (fill < 20_000) {
    if (conn.writingPaused) {
      await sleep(0.05);
      if (conn.writingPaused) return;
    }
    for (let i = 0; i < 64; i++) server.broadcast('fill', { n: fill++, pad: PAD });
    await sleep(0);
  }
}

describe('session backpressure', () => {
  it('latest-wins: while the client does not read, one state per key is held (the newest), sent once it reads again', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      const s = open(keyring, server.port!);
      const seen: number[] = [];
      const other: number[] = [];
      s.onNotify('state', (p) => { seen.push((p as { seq: number }).seq); });
      s.onNotify('score', (p) => { other.push(p as number); });
      await s.whenConnected();
      const conn = [...server.connections][0] as SessionConnection;
      s.link!.transport!.pauseReading(); // the player's process hangs
      let seq = 0;
      s.onNotify('fill', () => undefined);
      await fillUntilPaused(server, conn);
      expect(conn.writingPaused).toBe(true);
      const buffered = conn.transport!.getWriteBufferSize();
      // 500 more ticks of state, and two keys of another class: nothing more is buffered, one per key is held.
      for (let i = 0; i < 500; i++) server.broadcast('state', { seq: seq++, pad: PAD }, { latest: true });
      conn.notify('score', 1, { latest: 'score' });
      conn.notify('score', 2, { latest: 'score' });
      await sleep(0.05);
      expect(conn.writingPaused).toBe(true);
      expect(conn.held).toBe(2);
      expect(conn.superseded).toBe(500);
      // Nothing of the 500 states was buffered (a heartbeat PING or two may have been: control is written as usual).
      expect(conn.transport!.getWriteBufferSize() - buffered).toBeLessThan(1024);
      // A value that cannot be encoded is refused at once, held or not.
      expect(() => conn.notify('state', { bad: new Map() }, { latest: true })).toThrow(expect.objectContaining({ code: 'TW_BAD_PAYLOAD' }));
      expect(conn.held).toBe(2);
      // The player reads again: the fill written before arrives, then the newest held state (and score), nothing else.
      s.link!.transport!.resumeReading();
      while (!seen.includes(seq - 1) || other.length === 0) await sleep(0.01);
      expect(conn.held).toBe(0);
      expect(other).toEqual([2]);
      const last = seen[seen.length - 1]!;
      expect(last).toBe(seq - 1);
      expect(seen).toEqual([seq - 1]); // only the newest state: 500 stale ones never went on the wire
      expect(s.connected).toBe(true);
    });
  }, 30_000);

  it('drain: the held newest state goes out ahead of the GOAWAY, so a stalled client with no calls still gets it', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const server = await serve(keyring);
      const s = open(keyring, server.port!);
      let last = -1;
      s.onNotify('state', (p) => { last = (p as { seq: number }).seq; });
      s.onNotify('fill', () => undefined);
      await s.whenConnected();
      const conn = [...server.connections][0] as SessionConnection;
      s.link!.transport!.pauseReading();
      await fillUntilPaused(server, conn);
      let seq = 0;
      for (let i = 0; i < 20; i++) server.broadcast('state', { seq: seq++, pad: PAD }, { latest: true });
      expect(conn.held).toBe(1);
      const drained = server.drain({ timeout: 2 });
      await sleep(0.1);
      s.link!.transport!.resumeReading();
      expect(await drained).toMatchObject({ connections: 1, closedAtTimeout: 0 });
      while (s.link?.isLost === false && last !== seq - 1) await sleep(0.01);
      expect(last).toBe(seq - 1);
      expect(conn.heldDropped).toBe(0);
    });
  }, 30_000);

  it('a peer that never reads is aborted with SlowConsumer at maxWriteBuffer; the other clients are served as before', async () => {
    await fx.run(async () => {
      const keyring = ring();
      const reasons: (Error | null)[] = [];
      const server = await serve(keyring, { maxWriteBuffer: 512 * 1024, onDisconnect: (_c, r) => reasons.push(r) });
      server.handle('ping', () => 'pong');
      const slow = open(keyring, server.port!);
      const fine = open(keyring, server.port!);
      let fineGot = 0;
      fine.onNotify('tick', () => { fineGot += 1; });
      slow.onNotify('tick', () => undefined);
      await slow.whenConnected();
      await fine.whenConnected();
      slow.link!.transport!.pauseReading();
      let sent = 0;
      // Plain notifications (no `latest`): written as usual, until the slow peer's buffer passes the bound. Paced by
      // a timer, so each batch has a libuv turn in which the reading client (in this same process) reads.
      while (reasons.length === 0 && sent < 4000) {
        for (let i = 0; i < 16; i++) server.broadcast('tick', { n: sent++, pad: PAD });
        await sleep(0.001);
      }
      expect(reasons).toHaveLength(1);
      const err = reasons[0] as SlowConsumer;
      expect(err).toBeInstanceOf(SlowConsumer);
      expect(err.code).toBe('TW_SLOW_CONSUMER');
      expect(err.limit).toBe(512 * 1024);
      expect(err.buffered).toBeGreaterThan(512 * 1024);
      expect(server.connections.size).toBe(1);
      // The reading client got every broadcast, and still calls.
      while (fineGot < sent) await sleep(0.01);
      expect(fineGot).toBe(sent);
      expect(await fine.call('ping')).toBe('pong');
      slow.link!.transport!.resumeReading();
    });
  }, 30_000);
});
