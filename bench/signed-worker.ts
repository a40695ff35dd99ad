/**
 * The tulipwire side of bench/signed.ts: one process of a case, speaking the line protocol of
 * bench/support/workers.ts. Everything goes through the public entry (`src/index.ts`): the event loop, the mTLS
 * builders of src/pki, `loop.createServer`/`loop.createConnection` of src/net, and `MessageProtocol` (one-way
 * messages) and `RpcProtocol` (round trips) of src/wire.
 *
 * Roles: `recv` (counts verified messages over `--conns` connections), `send` (sends the game message, padded by
 * `--pad` bytes, as fast as flow control allows, one batch per loop iteration), `echo-server` and `ping` (sequential
 * signed RPC calls of an `echo` method).
 *
 * A failure (e.g. an area that does not import) makes the worker exit with the error, which the suite shows in the row.
 */
import {
  type ClientSslOptions, EventLoop, Keyring, MessageProtocol, RpcProtocol, type Server, type ServerSslOptions, type Transport,
  clientTlsOptions, defaultMacEngine, serverTlsOptions,
} from '../src/index.js';
import { argValue, cpuMicros, errorText, gameMessage, loadCerts, majorGcCount, now, summarise } from './support/common.js';
import { emitEvent, exitWithParent } from './support/workers.js';

/** The secret both sides share (32 bytes; the bench is not about key handling). */
const SECRET = Buffer.alloc(32, 0x5a);
/** Messages sent per loop iteration by the sender, at most (the raw baseline's and the peers' batch too). */
const BATCH = 256;
/** Bytes per iteration, at most (so 16 KiB messages go 16 at a time). */
const BATCH_BYTES = 256 * 1024;

function keyring(): Keyring {
  const k = new Keyring();
  k.add('bench', SECRET);
  return k;
}

function macEngineName(): string {
  return defaultMacEngine().name;
}

function tlsOptions(certsDir: string): { server: ServerSslOptions; client: ClientSslOptions } {
  const c = loadCerts(certsDir);
  return {
    server: serverTlsOptions({ key: c.serverKey, cert: c.serverCert, ca: c.ca }),
    client: clientTlsOptions({ key: c.clientKey, cert: c.clientCert, ca: c.ca }, { servername: 'localhost' }),
  };
}

function portOf(server: Server): number {
  const a = server.sockets[0]?.address();
  return typeof a === 'object' && a !== null ? a.port : 0;
}

// ---- roles

async function recvRole(argv: string[]): Promise<void> {
  const warmup = Number(argValue(argv, 'warmup', '0.3'));
  const duration = Number(argValue(argv, 'duration', '1'));
  const loop = new EventLoop();
  const ring = keyring();
  const ssl = tlsOptions(argValue(argv, 'certs', '')).server;
  let msgs = 0;
  let bytes = 0;
  let rejected = 0;
  let firstReject = '';
  let tls = '';
  let started = false;
  let mark: [number, number, number, number, number] | null = null;
  const protos = new Set<MessageProtocol>();
  let done!: () => void;
  const finished = new Promise<void>((res) => (done = res));

  class Receiver extends MessageProtocol {
    constructor() {
      super({ keyring: ring, side: 'server' });
    }
    override connectionMade(t: Transport): void {
      super.connectionMade(t);
      protos.add(this);
      const c = t.getExtraInfo('cipher') as { standardName?: string; name: string } | undefined;
      tls = `${String(t.getExtraInfo('tlsVersion') ?? '?')} ${c?.standardName ?? c?.name ?? '?'}`;
    }
    override dataReceived(d: Buffer): void {
      if (!started) {
        started = true;
        loop.callLater(warmup, () => {
          mark = [now(), msgs, bytes, cpuMicros(), majorGcCount()];
          loop.callLater(duration, finish);
        });
      }
      bytes += d.length;
      super.dataReceived(d);
    }
    override messageReceived(): void {
      msgs++;
    }
    override messageRejected(error: Error): void {
      if (rejected++ === 0) firstReject = errorText(error);
    }
  }
  function finish(): void {
    const [t0, m0, b0, c0, g0] = mark!;
    emitEvent({ event: 'result', msgs: msgs - m0, bytes: bytes - b0, seconds: now() - t0, cpuUs: cpuMicros() - c0,
      majorGcs: majorGcCount() - g0, rejected, firstReject, tls,
      engine: macEngineName() });
    for (const p of protos) p.transport?.abort();
    done();
  }
  await loop.runUntilComplete(loop.createTask(async () => {
    const server = await loop.createServer(() => new Receiver(), '127.0.0.1', 0, { ssl });
    emitEvent({ event: 'listening', port: portOf(server) });
    await finished;
    server.close();
  }));
  setTimeout(() => process.exit(0), 50);
}

async function sendRole(argv: string[]): Promise<void> {
  const port = Number(argValue(argv, 'port', '0'));
  const conns = Number(argValue(argv, 'conns', '1'));
  const pad = Number(argValue(argv, 'pad', '0'));
  const padBytes = pad > 0 ? (gameMessage(pad)['pad'] as Buffer) : null;
  const perIteration = Math.max(1, Math.min(BATCH, Math.floor(BATCH_BYTES / (pad + 100))));
  const loop = new EventLoop();
  const ring = keyring();
  const ssl = tlsOptions(argValue(argv, 'certs', '')).client;
  let sent = 0;
  let open = 0;
  let seq = 0;
  let done!: () => void;
  const finished = new Promise<void>((res) => (done = res));

  class Sender extends MessageProtocol {
    paused = false;
    lost = false;
    constructor() {
      super({ keyring: ring, side: 'client' });
    }
    override connectionMade(t: Transport): void {
      super.connectionMade(t);
      open++;
    }
    override pauseWriting(): void {
      super.pauseWriting();
      this.paused = true;
    }
    override resumeWriting(): void {
      super.resumeWriting();
      this.paused = false;
      loop.callSoon(this.pump);
    }
    override connectionLost(e: Error | null): void {
      super.connectionLost(e);
      this.lost = true;
      if (--open === 0) done();
    }
    // One batch per loop iteration: the transport coalesces the iteration's writes into one socket write.
    readonly pump = (): void => {
      if (this.paused || this.lost || this.transport === null || this.transport.isClosing()) return;
      for (let i = 0; i < perIteration; i++) {
        const m: Record<string, unknown> = { t: 'move', id: 42, x: 1.5, y: -3.25, seq: ++seq, ts: 1700000000000 };
        if (padBytes) m['pad'] = padBytes;
        this.sendMessage(m);
      }
      sent += perIteration;
      loop.callSoon(this.pump);
    };
  }
  let c0 = 0;
  await loop.runUntilComplete(loop.createTask(async () => {
    const protos: Sender[] = [];
    for (let i = 0; i < conns; i++) {
      const [, p] = await loop.createConnection(() => new Sender(), '127.0.0.1', port, { ssl, serverHostname: 'localhost' });
      protos.push(p);
    }
    c0 = cpuMicros();
    for (const p of protos) loop.callSoon(p.pump);
    await finished;
  }));
  emitEvent({ event: 'result', sent, cpuUs: cpuMicros() - c0 });
  setTimeout(() => process.exit(0), 20);
}

async function echoServerRole(argv: string[]): Promise<void> {
  const loop = new EventLoop();
  const ring = keyring();
  const ssl = tlsOptions(argValue(argv, 'certs', '')).server;
  const factory = (): RpcProtocol => {
    const p = new RpcProtocol({ keyring: ring, side: 'server' });
    p.handle('echo', (params) => params);
    return p;
  };
  await loop.runUntilComplete(loop.createTask(async () => {
    const server = await loop.createServer(factory, '127.0.0.1', 0, { ssl });
    emitEvent({ event: 'listening', port: portOf(server) });
    // Until killed. A loop Future, not a foreign Promise: awaiting a foreign promise in a task turns on the
    // loop's foreign-await tracking (AsyncLocalStorage + promise hooks) for the whole process, which taxes every
    // promise of every request and is not what a server built on the library would normally do.
    await loop.createFuture<void>();
  }));
}

async function pingRole(argv: string[]): Promise<void> {
  const count = Number(argValue(argv, 'count', '1000'));
  const warmup = Number(argValue(argv, 'warmup', '100'));
  const duration = Number(argValue(argv, 'duration', '1'));
  const pad = Number(argValue(argv, 'pad', '0'));
  const loop = new EventLoop();
  const ring = keyring();
  const ssl = tlsOptions(argValue(argv, 'certs', '')).client;
  const samples: number[] = [];
  await loop.runUntilComplete(loop.createTask(async () => {
    const [transport, p] = await loop.createConnection(() => new RpcProtocol({ keyring: ring, side: 'client' }), '127.0.0.1',
      Number(argValue(argv, 'port', '0')), { ssl, serverHostname: 'localhost' });
    const proto = p;
    let deadline = Infinity;
    for (let i = 1; samples.length < count; i++) {
      const t0 = now();
      await proto.call('echo', gameMessage(pad, i), { timeout: 10 });
      const t = now();
      if (i > warmup) {
        if (deadline === Infinity) deadline = t + duration;
        samples.push((t - t0) * 1e6);
        if (t > deadline) break;
      }
    }
    transport.close();
  }));
  emitEvent({ event: 'result', ...summarise(samples) });
  setTimeout(() => process.exit(0), 20);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const role = argValue(argv, 'role', '');
  if (role !== '') exitWithParent();
  if (role === 'recv') await recvRole(argv);
  else if (role === 'send') await sendRole(argv);
  else if (role === 'echo-server') await echoServerRole(argv);
  else if (role === 'ping') await pingRole(argv);
  else throw new Error('usage: signed-worker.ts --role recv|send|echo-server|ping ... (run by bench/signed.ts)');
}

main().catch((err: unknown) => {
  process.stderr.write(`Error: tulipwire worker: ${errorText(err)}\n`);
  process.exit(1);
});
