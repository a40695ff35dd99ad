/**
 * Backpressure end to end on real sockets (the transports issue): a sender writes 256 MiB to a receiver that
 * starts with reading paused. `pauseWriting` must fire, the sender's buffer must stay near the high-water mark
 * (never above high + one chunk), and only a few MiB may leave the sender while the receiver is paused (the
 * kernel's socket buffers), which shows `pauseReading` really stops reading. After `resumeReading` every byte
 * arrives, in order (each 64 KiB chunk carries its index). Plain TCP and TLS 1.3.
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../../src/index.js';
import type { EventLoop, Transport } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { tlsFixture } from '../support/tls-fixture.js';

const TOTAL = 256 * 1024 * 1024;
const CHUNK = 64 * 1024;
const HIGH = 64 * 1024;
const LOW = 16 * 1024;
const fx = tlsFixture();

// The body shared by every chunk; the first 8 bytes of chunk k hold k (big-endian), so order is checked too.
const BODY = Buffer.alloc(CHUNK);
for (let i = 0; i < CHUNK; i++) BODY[i] = (i * 31 + 7) & 0xff;

function chunk(k: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  BODY.copy(b);
  b.writeBigUInt64BE(BigInt(k), 0);
  return b;
}

class Sender {
  transport: Transport | null = null;
  paused = false;
  pauses = 0;
  resumes = 0;
  sent = 0;
  maxBuffered = 0;
  readonly #loop: EventLoop;
  constructor(loop: EventLoop) {
    this.#loop = loop;
  }
  connectionMade(t: Transport): void {
    this.transport = t;
    this.pump();
  }
  pump(): void {
    const t = this.transport!;
    while (!this.paused && this.sent < TOTAL) {
      t.write(chunk(this.sent / CHUNK));
      this.sent += CHUNK;
      this.maxBuffered = Math.max(this.maxBuffered, t.getWriteBufferSize());
    }
    if (this.sent >= TOTAL && !t.isClosing()) t.close();
  }
  pauseWriting(): void {
    this.paused = true;
    this.pauses++;
  }
  resumeWriting(): void {
    this.paused = false;
    this.resumes++;
    this.#loop.callSoon(() => this.pump());
  }
  connectionLost(): void {}
}

class Receiver {
  transport: Transport | null = null;
  received = 0;
  chunksWhilePaused = 0;
  mismatch: string | null = null;
  readonly done: ReturnType<EventLoop['createFuture']>;
  readonly #header = Buffer.alloc(8);
  constructor(loop: EventLoop) {
    this.done = loop.createFuture<void>();
  }
  connectionMade(t: Transport): void {
    this.transport = t;
    t.pauseReading();
  }
  dataReceived(d: Buffer): void {
    if (!this.transport!.isReading()) this.chunksWhilePaused++;
    let off = 0;
    while (off < d.length && this.mismatch === null) {
      const pos = this.received % CHUNK;
      const k = Math.floor(this.received / CHUNK);
      const n = Math.min(d.length - off, CHUNK - pos);
      for (let i = 0; i < n; i++) {
        const p = pos + i;
        if (p >= 8) {
          // The rest of this piece is body: compare it in one call.
          if (d.compare(BODY, p, pos + n, off + i, off + n) !== 0) this.mismatch = `body of chunk ${k} differs`;
          break;
        }
        this.#header[p] = d[off + i]!;
        if (p === 7 && this.#header.readBigUInt64BE(0) !== BigInt(k)) {
          this.mismatch = `chunk ${this.#header.readBigUInt64BE(0)} arrived where ${k} was expected`;
        }
      }
      off += n;
      this.received += n;
    }
  }
  eofReceived(): void {}
  connectionLost(exc: Error | null): void {
    if (exc !== null) this.done.setException(exc);
    else this.done.setResult(undefined);
  }
}

describe('backpressure end to end (256 MiB)', () => {
  const lf = useLoop({ real: true });

  for (const tls of [false, true]) {
    it(`${tls ? 'TLS 1.3' : 'TCP'}: bounded sender buffer while the receiver is paused, every byte in order after`, async () => {
      await lf.run(async () => {
        const r = new Receiver(lf.loop);
        const server = await lf.loop.createServer(() => r, '127.0.0.1', 0, tls ? { ssl: fx.serverOptions() } : {});
        const port = (server.sockets[0]!.address() as AddressInfo).port;
        const s = new Sender(lf.loop);
        try {
          await lf.loop.createConnection(() => s, '127.0.0.1', port, tls ? { ssl: fx.clientOptions() } : {});
          // Wait until the sender is paused and nothing moves any more (the kernel buffers are full).
          let last = -1;
          let stable = 0;
          for (let i = 0; i < 500 && stable < 5; i++) {
            const now = s.transport!.getWriteBufferSize();
            stable = s.paused && now === last ? stable + 1 : 0;
            last = now;
            await sleep(0.02);
          }
          expect(s.paused).toBe(true);
          expect(s.pauses).toBeGreaterThanOrEqual(1);
          expect(r.received).toBe(0);
          expect(s.sent).toBeLessThan(64 * 1024 * 1024); // a few MiB of kernel buffers, not the 256 MiB
          expect(s.transport!.getWriteBufferSize()).toBeGreaterThan(LOW); // still paused: not drained to low water
          expect(s.maxBuffered).toBeLessThanOrEqual(HIGH + CHUNK);
          r.transport!.resumeReading();
          await waitFor(r.done, 120);
          expect(r.mismatch).toBeNull();
          expect(r.received).toBe(TOTAL);
          expect(r.chunksWhilePaused).toBe(0);
          expect(s.maxBuffered).toBeLessThanOrEqual(HIGH + CHUNK);
          expect(s.resumes).toBeGreaterThanOrEqual(s.pauses - 1); // the last pause may end with the connection
        } finally {
          server.close();
          server.abortClients();
        }
      });
    }, 180_000);
  }
});
