/**
 * A stalled loop (a long synchronous tick, a GC pause, a suspended VM) must not drop the peers that kept talking
 * meanwhile. Their PINGs sit unread in the socket while the loop is stalled, and when it runs again it fires the
 * timers now due before it reads: the heartbeat found "silent for longer than idleTimeout" and dropped every peer
 * with PeerTimeout at once (a game server that stalled 3 s lost all its players). Now a timeout found late is
 * checked again a moment later, after the read, and a peer still silent then is dropped (once per deadline).
 *
 * The first cases drive HeartbeatTimer on a loop whose VirtualClock moves only when told: the stall is one big
 * `advance`, and the peer's waiting message is delivered after the timers due then ran (as the real loop reads it).
 * The last case is the real thing: a session client in a child process keeps pinging a session server in this
 * process, and this process's loop is blocked for 1.5 s (idle timeout 0.6 s).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Keyring, serveSessions, sleep } from '../../src/index.js';
import { Heartbeat, HeartbeatTimer } from '../../src/session/heartbeat.js';
import { makeTestCA } from '../support/ca.js';
import { useLoop } from '../support/loop.js';

describe('HeartbeatTimer after a loop stall (manual VirtualClock)', () => {
  const fx = useLoop({ autojump: false });

  async function settle(): Promise<void> {
    for (let i = 0; i < 10; i++) await sleep(0);
  }

  function timer(record: string[]) {
    const loop = fx.loop;
    const hb = new Heartbeat({ interval: 1, idleTimeout: 3, clock: loop.clock });
    const t = new HeartbeatTimer(hb, loop, {
      sendPing: (id) => record.push(`ping ${id} @${loop.time()}`),
      onTimeout: (e) => record.push(`${e.code} @${loop.time()}`),
    });
    t.start();
    return { hb, t };
  }

  it('a peer whose messages waited out the stall is kept', async () => {
    await fx.run(async () => {
      const record: string[] = [];
      const { hb, t } = timer(record);
      fx.clock!.advance(1);
      await settle();
      hb.received(); // the peer answered at 1
      // The loop stalls for 5 s; the peer spoke during it, but its bytes are read only after the timers due ran.
      fx.clock!.advance(5);
      await settle();
      hb.received();
      fx.clock!.advance(0.05);
      await settle();
      expect(record.filter((r) => r.startsWith('TW_PEER_TIMEOUT'))).toEqual([]);
      expect(t.running).toBe(true);
      t.stop();
    });
  });

  it('a peer still silent after the stall is dropped at the recheck, once', async () => {
    await fx.run(async () => {
      const record: string[] = [];
      const { t } = timer(record);
      fx.clock!.advance(6);
      await settle();
      expect(record.filter((r) => r.startsWith('TW_PEER_TIMEOUT'))).toEqual([]);
      fx.clock!.advance(0.05);
      await settle();
      expect(record.filter((r) => r.startsWith('TW_PEER_TIMEOUT'))).toEqual(['TW_PEER_TIMEOUT @6.05']);
      expect(t.running).toBe(false);
      fx.clock!.advance(10);
      await settle();
      expect(record.filter((r) => r.startsWith('TW_PEER_TIMEOUT'))).toHaveLength(1);
    });
  });

  it('a timeout found on time is not put off', async () => {
    await fx.run(async () => {
      const record: string[] = [];
      const { t } = timer(record);
      for (let i = 0; i < 3; i++) {
        fx.clock!.advance(1);
        await settle();
      }
      expect(record).toEqual(['ping 1 @1', 'ping 2 @2', 'TW_PEER_TIMEOUT @3']);
      expect(t.running).toBe(false);
    });
  });
});

describe('a session server whose loop stalls past idleTimeout (client in a child process)', () => {
  const fx = useLoop({ real: true });

  it('keeps the client that pinged all along', async () => {
    const ca = await makeTestCA();
    const secret = Buffer.alloc(32, 0x5a);
    const keyring = new Keyring();
    keyring.add('stall', secret);
    try {
      await fx.run(async () => {
        const reasons: string[] = [];
        const server = await serveSessions({ keyring, tls: ca.serverOptions, heartbeatInterval: 0.1, idleTimeout: 0.6, logger: {},
          onDisconnect: (_c, r) => reasons.push(String((r as { code?: unknown } | null)?.code ?? r)) });
        const script = fileURLToPath(new URL('./stall-peer-client.ts', import.meta.url));
        const child = spawn(process.execPath, ['--import', 'tsx', script, ca.dir, String(server.port), secret.toString('hex')],
          { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
        child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
        const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
        try {
          const end = fx.loop.time() + 20;
          while (!out.includes('connected') && fx.loop.time() < end) await sleep(0.05);
          expect(out).toContain('connected');
          await sleep(0.3);
          expect(server.connections.size).toBe(1);
          const [conn] = [...server.connections];
          // The stall: this process runs nothing for 1.5 s, while the child pings every 0.05 s.
          const blocker = new Int32Array(new SharedArrayBuffer(4));
          Atomics.wait(blocker, 0, 0, 1500);
          await sleep(0.5);
          expect(reasons).toEqual([]);
          expect([...server.connections]).toEqual([conn]);
        } finally {
          child.stdin.end();
          await exited;
          await server.close();
        }
      });
    } finally {
      await ca.cleanup();
    }
  }, 40_000);
});
