/**
 * The naive Node signed path of PERF-NOTES, as a reference row: per message `randomBytes(16)` + msgpackr `pack`
 * + `createHmac`, one `socket.write` per tick of concatenated frames; the receiver deframes with `Buffer.concat`,
 * checks each tag with `createHmac` + `timingSafeEqual`, unpacks and checks the expiry. It is what "just write it
 * in Node" gives, so the table shows what tulipwire's batching, pooled nonces and MAC engines buy.
 *
 * Roles `recv` and `send` of the line protocol in bench/support/workers.ts; run by bench/signed.ts.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type TLSSocket } from 'node:tls';
import { Packr, Unpackr } from 'msgpackr';
import { connectOne, tlsServerOptions } from '../raw.js';
import { argValue, cpuMicros, errorText, majorGcCount, now } from '../support/common.js';
import { PEER_KEY, PEER_TTL } from '../support/peer-format.js';
import { emitEvent, finishReceiver, listenAndAnnounce, exitWithParent, tlsOf } from '../support/workers.js';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });
const BATCH = 256;

function recvRole(argv: string[]): void {
  const warmup = Number(argValue(argv, 'warmup', '0.3'));
  const duration = Number(argValue(argv, 'duration', '1'));
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
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      if (!started) {
        started = true;
        setTimeout(() => {
          mark = [now(), msgs, bytes, cpuMicros(), majorGcCount()];
          setTimeout(finish, duration * 1000);
        }, warmup * 1000);
      }
      bytes += chunk.length;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const t = Date.now() / 1000;
      let i = 0;
      while (buf.length - i >= 4) {
        const n = buf.readUInt32BE(i);
        if (buf.length - i - 4 < n) break;
        const body = buf.subarray(i + 4, i + 4 + n);
        i += 4 + n;
        // Only a message that verified and decoded is counted; a bad one is rejected on its own and counted in
        // `rejected` (the suite fails a row with rejections), as tulipwire's MessageProtocol does.
        try {
          if (n < 33) throw new Error('short body');
          const packed = body.subarray(0, n - 32);
          const tag = createHmac('sha256', PEER_KEY).update(packed).digest();
          if (!timingSafeEqual(tag, body.subarray(n - 32))) throw new Error('bad signature');
          const decoded = unpackr.unpack(packed) as unknown;
          if (!Array.isArray(decoded) || !(decoded[0] >= t)) throw new Error('expired or malformed');
          msgs++;
        } catch (e) {
          if (rejected++ === 0) firstReject = errorText(e);
        }
      }
      buf = buf.subarray(i);
    });
    sock.on('error', () => {});
  });
  function finish(): void {
    finishReceiver(server, sockets, mark!, msgs, bytes, { rejected, firstReject, tls });
  }
  listenAndAnnounce(server);
}

async function sendRole(argv: string[]): Promise<void> {
  const conns = Number(argValue(argv, 'conns', '1'));
  const pad = Number(argValue(argv, 'pad', '0'));
  const padBytes = pad > 0 ? Buffer.alloc(pad, 7) : null;
  const perTick = Math.max(1, Math.min(BATCH, Math.floor((256 * 1024) / (pad + 100))));
  const socks = await Promise.all(Array.from({ length: conns }, () => connectOne(argValue(argv, 'certs', ''), Number(argValue(argv, 'port', '0')))));
  let sent = 0;
  let open = socks.length;
  let seq = 0;
  const c0 = cpuMicros();
  for (const s of socks) {
    let closed = false;
    const pump = (): void => {
      if (closed) return;
      const exp = Date.now() / 1000 + PEER_TTL;
      const frames: Buffer[] = [];
      for (let i = 0; i < perTick; i++) {
        const m: Record<string, unknown> = { t: 'move', id: 42, x: 1.5, y: -3.25, seq: ++seq, ts: 1700000000000 };
        if (padBytes) m['pad'] = padBytes;
        const packed = packr.pack([exp, randomBytes(16), m]);
        const tag = createHmac('sha256', PEER_KEY).update(packed).digest();
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32BE(packed.length + 32, 0);
        frames.push(len, packed, tag);
      }
      sent += perTick;
      if (s.write(Buffer.concat(frames))) setImmediate(pump);
      else s.once('drain', pump);
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
  else throw new Error('usage: naive.ts --role recv|send ... (run by bench/signed.ts)');
}

main().catch((err: unknown) => {
  process.stderr.write(`Error: naive worker: ${errorText(err)}\n`);
  process.exit(1);
});
