/**
 * The raw `node:tls` baseline: the same frames the signed peers send (4-byte big-endian length + body), pre-built
 * once and written again and again, framing counted by hand on the receiving side, no signing and no decoding.
 * It is the ceiling every signed path is measured against in the same run.
 *
 * `npx tsx bench/raw.ts [--json] [--quick] [--only <label>]` runs the baseline cases alone.
 * With `--role recv|send|echo-server|ping` it is one side of a case (see bench/support/workers.ts), as run by
 * bench/signed.ts.
 */
import { connect, createServer, type TLSSocket } from 'node:tls';
import {
  argValue, type BenchCase, type BenchReport, cpuMicros, emitReport, majorGcCount, errorText, gameMessage, isMain, loadCerts, makeCerts, now,
  parseFlags, progress, removeCerts, round, summarise,
} from './support/common.js';
import { epochNow, NoncePool, PEER_TTL, signFrame } from './support/peer-format.js';
import { budget, throughputScenarios } from './support/scenarios.js';
import { emitEvent, finishReceiver, listenAndAnnounce, exitWithParent, runPing, runThroughput, tlsOf } from './support/workers.js';

/** Bytes per sender write (at most 256 frames). */
const BATCH_BYTES = 256 * 1024;

/**
 * Counts complete frames in a byte stream without copying: only the 4 length bytes are looked at (a header split
 * across reads is assembled in a 4-byte scratch buffer).
 */
export class FrameCounter {
  #remaining = 0; // body bytes still to come of the current frame
  #hdr = Buffer.alloc(4);
  #hdrHave = 0;
  /** Feeds a chunk; returns how many frames it completed. */
  feed(chunk: Buffer): number {
    let i = 0;
    let frames = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, n - i);
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) frames++;
        continue;
      }
      if (this.#hdrHave === 0 && n - i >= 4) {
        this.#remaining = chunk.readUInt32BE(i);
        i += 4;
      } else {
        this.#hdr[this.#hdrHave++] = chunk[i++]!;
        if (this.#hdrHave < 4) continue;
        this.#remaining = this.#hdr.readUInt32BE(0);
        this.#hdrHave = 0;
      }
      if (this.#remaining === 0) frames++;
    }
    return frames;
  }
}

/** Pre-built signed frames for `pad` (distinct nonces), as many as fit one write, concatenated. */
export function prebuiltBatch(pad: number): { batch: Buffer; frames: number; frameLen: number } {
  const nonces = new NoncePool();
  const exp = epochNow() + 3600;
  const one = signFrame(gameMessage(pad, 1), exp, nonces.take());
  const frames = Math.max(1, Math.min(256, Math.floor(BATCH_BYTES / one.length)));
  const list = [one];
  for (let i = 1; i < frames; i++) list.push(signFrame(gameMessage(pad, i + 1), exp, nonces.take()));
  return { batch: Buffer.concat(list), frames, frameLen: one.length };
}

/** node:tls server options for the bench certificates (mTLS). */
export function tlsServerOptions(certsDir: string) {
  const c = loadCerts(certsDir);
  return { key: c.serverKey, cert: c.serverCert, ca: c.ca, requestCert: true, rejectUnauthorized: true };
}

function tlsClientOptions(certsDir: string, port: number) {
  const c = loadCerts(certsDir);
  return { host: '127.0.0.1', port, servername: 'localhost', key: c.clientKey, cert: c.clientCert, ca: c.ca };
}

/** Connects one mTLS client socket to 127.0.0.1:`port` (noDelay on). */
export function connectOne(certsDir: string, port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect(tlsClientOptions(certsDir, port), () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

// ------------------------------------------------------------------ worker roles

function recvRole(argv: string[]): void {
  const warmup = Number(argValue(argv, 'warmup', '0.3'));
  const duration = Number(argValue(argv, 'duration', '1'));
  const sockets = new Set<TLSSocket>();
  let msgs = 0;
  let bytes = 0;
  let started = false;
  let tls = '';
  let mark: [number, number, number, number, number] | null = null;
  const server = createServer(tlsServerOptions(argValue(argv, 'certs', '')), (sock) => {
    sock.setNoDelay(true);
    sockets.add(sock);
    tls = tlsOf(sock);
    const counter = new FrameCounter();
    sock.on('data', (chunk: Buffer) => {
      if (!started) {
        started = true;
        setTimeout(() => {
          mark = [now(), msgs, bytes, cpuMicros(), majorGcCount()];
          setTimeout(finish, duration * 1000);
        }, warmup * 1000);
      }
      msgs += counter.feed(chunk);
      bytes += chunk.length;
    });
    sock.on('error', () => {});
  });
  function finish(): void {
    finishReceiver(server, sockets, mark!, msgs, bytes, { tls });
  }
  listenAndAnnounce(server);
}

async function sendRole(argv: string[]): Promise<void> {
  const certs = argValue(argv, 'certs', '');
  const port = Number(argValue(argv, 'port', '0'));
  const conns = Number(argValue(argv, 'conns', '1'));
  const { batch, frames } = prebuiltBatch(Number(argValue(argv, 'pad', '0')));
  const socks = await Promise.all(Array.from({ length: conns }, () => connectOne(certs, port)));
  let sent = 0;
  let open = socks.length;
  const c0 = cpuMicros();
  for (const s of socks) {
    let closed = false;
    const pump = (): void => {
      while (!closed) {
        sent += frames;
        if (!s.write(batch)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      if (--open === 0) {
        emitEvent({ event: 'result', sent, cpuUs: cpuMicros() - c0 });
        process.exit(0);
      }
    });
    pump();
  }
}

function echoServerRole(argv: string[]): void {
  // The raw echo returns every chunk as it comes: the client sends one frame and waits for as many bytes back.
  const server = createServer(tlsServerOptions(argValue(argv, 'certs', '')), (sock) => {
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => sock.write(chunk));
    sock.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    emitEvent({ event: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
  });
}

async function pingRole(argv: string[]): Promise<void> {
  const certs = argValue(argv, 'certs', '');
  const count = Number(argValue(argv, 'count', '1000'));
  const warmup = Number(argValue(argv, 'warmup', '100'));
  const duration = Number(argValue(argv, 'duration', '1'));
  const frame = signFrame(gameMessage(Number(argValue(argv, 'pad', '0'))), epochNow() + PEER_TTL, new NoncePool().take());
  const sock = await connectOne(certs, Number(argValue(argv, 'port', '0')));
  const samples: number[] = [];
  let got = 0;
  let i = 0;
  let t0 = 0;
  let deadline = Infinity;
  await new Promise<void>((resolve) => {
    const next = (): void => {
      i++;
      got = 0;
      t0 = now();
      sock.write(frame);
    };
    sock.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got < frame.length) return;
      const t = now();
      if (i > warmup) {
        if (deadline === Infinity) deadline = t + duration;
        samples.push((t - t0) * 1e6);
      }
      if (samples.length >= count || t > deadline) resolve();
      else next();
    });
    next();
  });
  emitEvent({ event: 'result', ...summarise(samples) });
  sock.destroy();
  process.exit(0);
}

// ------------------------------------------------------------------ standalone bench

async function standalone(): Promise<void> {
  const flags = parseFlags();
  const b = budget(flags);
  const certs = makeCerts();
  const cases: BenchCase[] = [];
  try {
    for (const sc of throughputScenarios(flags)) {
      progress(`raw node:tls ${sc.label}`);
      try {
        const r = await runThroughput({ impl: 'raw', certsDir: certs.dir, conns: sc.conns, pad: sc.pad, warmup: b.warmup, duration: b.duration });
        cases.push({ case: `raw node:tls ${sc.label}`, unit: 'msg/s', value: round(r.msgsPerSec), extra: {
          MBps: round(r.MBps, 1), cpuSendUs: round(r.cpuSendUs, 3), cpuRecvUs: round(r.cpuRecvUs, 3) } });
      } catch (err) {
        cases.push({ case: `raw node:tls ${sc.label}`, unit: 'msg/s', value: null, extra: { error: errorText(err) } });
      }
    }
    progress('raw node:tls ping-pong');
    try {
      const p = await runPing({ impl: 'raw', certsDir: certs.dir, pad: 0, count: b.pingCount, warmup: b.pingWarmup, duration: b.pingDuration });
      for (const k of ['p50', 'p99', 'max'] as const) cases.push({ case: `raw node:tls round trip ${k}`, unit: 'us', value: p[k], extra: { n: p.n } });
    } catch (err) {
      cases.push({ case: 'raw node:tls round trip p50', unit: 'us', value: null, extra: { error: errorText(err) } });
    }
  } finally {
    removeCerts(certs);
  }
  const report: BenchReport = { name: 'raw', cases };
  emitReport(report, flags);
}

/** Runs the role named by `--role`, or the standalone bench. */
async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const role = argValue(argv, 'role', '');
  if (role !== '') exitWithParent();
  if (role === 'recv') recvRole(argv);
  else if (role === 'send') await sendRole(argv);
  else if (role === 'echo-server') echoServerRole(argv);
  else if (role === 'ping') await pingRole(argv);
  else await standalone();
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`raw: ${errorText(err)}\n`);
    process.exit(1);
  });
}
