/**
 * tulipwire's wire layer alone on raw `node:tls` sockets: `Sealer` (one batch of up to 256 messages per
 * `setImmediate` turn, MACed in one engine call, one socket write) and `FrameDecoder` + `Opener` (every complete
 * frame of a `'data'` chunk verified in one call, then expiry, sequence window, msgpack decode and shape check),
 * with no event loop, transport or Protocol in between. Beside the `MessageProtocol` row it shows what the
 * loop and the transport layer cost on top of the signing itself.
 *
 * Roles `recv` and `send` of the line protocol in bench/support/workers.ts; run by bench/signed.ts.
 */
import { createServer, type TLSSocket } from 'node:tls';
// The wire barrel and the clock directly (not src/index.ts): this row isolates the wire layer, and should not
// depend on the loop or the transports being importable.
import { systemClock } from '../src/loop/clock.js';
import * as wire from '../src/wire/index.js';
import { connectOne, tlsServerOptions } from './raw.js';
import { argValue, cpuMicros, errorText, gameMessage, majorGcCount, now } from './support/common.js';
import { emitEvent, finishReceiver, listenAndAnnounce, exitWithParent, tlsOf } from './support/workers.js';

const SECRET = Buffer.alloc(32, 0x5a);
const BATCH = 256;
const BATCH_BYTES = 256 * 1024;
const TTL = 60;

function schedule(side: 'client' | 'server', engine: wire.MacEngine): wire.KeySchedule {
  const ring = new wire.Keyring();
  ring.add('bench', SECRET);
  return new wire.KeySchedule({ keyring: ring, side, engine });
}

function recvRole(argv: string[]): void {
  const warmup = Number(argValue(argv, 'warmup', '0.3'));
  const duration = Number(argValue(argv, 'duration', '1'));
  const engine = wire.defaultMacEngine();
  const sockets = new Set<TLSSocket>();
  let msgs = 0;
  let bytes = 0;
  let rejected = 0;
  let firstReject = '';
  let tls = '';
  let started = false;
  let mark: [number, number, number, number, number] | null = null;
  const server = createServer(tlsServerOptions(argValue(argv, 'certs', '')), (sock) => {
    sock.setNoDelay(true);
    sockets.add(sock);
    tls = tlsOf(sock);
    const decoder = new wire.FrameDecoder();
    const opener = new wire.Opener({ schedule: schedule('server', engine), engine, clock: systemClock, skew: 5, maxTtl: 300 });
    const add = (buf: Buffer, start: number, end: number): void => opener.add(buf, start, end);
    // Counted once decoded; a payload that does not decode is a rejection (as in MessageProtocol), not a crash.
    const accept = (_meta: wire.MessageMeta, buf: Buffer, ps: number, pe: number): void => {
      try {
        wire.decode(buf, undefined, ps, pe);
      } catch (e) {
        reject(e as Error);
        return;
      }
      msgs++;
    };
    const reject = (e: Error): void => {
      if (rejected++ === 0) firstReject = errorText(e);
    };
    sock.on('data', (chunk: Buffer) => {
      if (!started) {
        started = true;
        setTimeout(() => {
          mark = [now(), msgs, bytes, cpuMicros(), majorGcCount()];
          setTimeout(finish, duration * 1000);
        }, warmup * 1000);
      }
      bytes += chunk.length;
      decoder.feedRanges(chunk, add);
      opener.run(accept, reject);
    });
    sock.on('error', () => {});
  });
  function finish(): void {
    finishReceiver(server, sockets, mark!, msgs, bytes, { rejected, firstReject, engine: engine.name, tls });
  }
  listenAndAnnounce(server);
}

async function sendRole(argv: string[]): Promise<void> {
  const certs = argValue(argv, 'certs', '');
  const port = Number(argValue(argv, 'port', '0'));
  const conns = Number(argValue(argv, 'conns', '1'));
  const pad = Number(argValue(argv, 'pad', '0'));
  const padBytes = pad > 0 ? (gameMessage(pad)['pad'] as Buffer) : null;
  const perTurn = Math.max(1, Math.min(BATCH, Math.floor(BATCH_BYTES / (pad + 100))));
  const engine = wire.defaultMacEngine();
  const socks = await Promise.all(Array.from({ length: conns }, () => connectOne(certs, port)));
  let sent = 0;
  let open = socks.length;
  let seq = 0;
  const c0 = cpuMicros();
  for (const s of socks) {
    const sealer = new wire.Sealer({ schedule: schedule('client', engine), engine, clock: systemClock });
    let closed = false;
    const write = (b: Buffer): void => {
      s.write(b);
    };
    const pump = (): void => {
      if (closed) return;
      for (let i = 0; i < perTurn; i++) {
        const m: Record<string, unknown> = { t: 'move', id: 42, x: 1.5, y: -3.25, seq: ++seq, ts: 1700000000000 };
        if (padBytes) m['pad'] = padBytes;
        // As MessageProtocol.sendMessage does: encoded straight into the batch buffer.
        sealer.appendValue(m, wire.KIND.MESSAGE, TTL);
      }
      sent += perTurn;
      sealer.flush(write);
      if (s.writableNeedDrain) s.once('drain', () => setImmediate(pump));
      else setImmediate(pump);
    };
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      if (--open === 0) {
        emitEvent({ event: 'result', sent, cpuUs: cpuMicros() - c0 });
        process.exit(0);
      }
    });
    setImmediate(pump);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const role = argValue(argv, 'role', '');
  if (role !== '') exitWithParent();
  if (role === 'recv') recvRole(argv);
  else if (role === 'send') await sendRole(argv);
  else throw new Error('usage: signed-wire-worker.ts --role recv|send ... (run by bench/signed.ts)');
}

main().catch((err: unknown) => {
  process.stderr.write(`Error: tulipwire wire worker: ${errorText(err)}\n`);
  process.exit(1);
});
