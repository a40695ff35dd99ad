/**
 * `run()` closes the servers and transports `main` left open, with a warning, so a forgotten server does not keep
 * Node's process alive after `run()` returned (asyncio leaves them to the garbage collector; in Node an open socket
 * holds the process). Their protocols still get `connectionLost`.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { ProtocolBase, getRunningLoop, run } from '../../src/index.js';
import type { Transport } from '../../src/index.js';

class Rec extends ProtocolBase {
  lost: (Error | null)[] = [];
  override connectionLost(e: Error | null): void {
    this.lost.push(e);
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('run() and what main left open', () => {
  it('closes a server and its connections, warns once with the counts, and connectionLost still runs', async () => {
    const warnings: string[] = [];
    const protocols: Rec[] = [];
    let port = 0;
    let client: Transport | null = null;
    const result = await run(async () => {
      const loop = getRunningLoop();
      const server = await loop.createServer(() => { const p = new Rec(); protocols.push(p); return p; }, '127.0.0.1', 0);
      port = (server.sockets[0]!.address() as { port: number }).port;
      const [t, p] = await loop.createConnection(() => new Rec(), '127.0.0.1', port);
      protocols.push(p);
      client = t;
      return 'done';
    }, { logger: { warn: (m) => warnings.push(m), error: (m) => warnings.push(`error: ${m}`) }, handleSignals: false });
    expect(result).toBe('done');
    expect(warnings).toEqual([expect.stringMatching(/main returned with 1 server and 2 transports still open; closing them/)]);
    expect(protocols).toHaveLength(2);
    for (const p of protocols) expect(p.lost).toEqual([null]);
    expect(client!.isClosing()).toBe(true);
    expect(await refused(port)).toBe(true);
  });

  it('says nothing when main closed what it opened', async () => {
    const warnings: string[] = [];
    await run(async () => {
      const loop = getRunningLoop();
      const server = await loop.createServer(() => new Rec(), '127.0.0.1', 0);
      const port = (server.sockets[0]!.address() as { port: number }).port;
      const [t] = await loop.createConnection(() => new Rec(), '127.0.0.1', port);
      t.close();
      server.close();
      await server.waitClosed();
    }, { logger: { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) }, handleSignals: false });
    expect(warnings).toEqual([]);
  });

  it('a process whose main forgot a server exits by itself once run() returns', () => {
    const fixture = fileURLToPath(new URL('./fixtures/left-open.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', fixture], { encoding: 'utf8', timeout: 20_000 });
    expect(r.error, 'the child was killed by the timeout: something kept it alive').toBeUndefined();
    expect(r.status).toBe(0);
    const seen = JSON.parse(r.stdout.trim()) as { warnings: string[]; lost: number };
    expect(seen.lost).toBe(2);
    expect(seen.warnings).toHaveLength(1);
  });
});
