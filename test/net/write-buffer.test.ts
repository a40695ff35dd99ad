/**
 * What `getWriteBufferSize()` counts on a socket transport whose peer stopped reading (asyncio: the bytes the
 * transport holds; `pauseWriting` once it goes strictly over high, `resumeWriting` once it is at or below low).
 *
 * Suspected: on TLS the count sees only the `TLSSocket`'s own buffer, not the ciphertext queued beneath it in the
 * TCP handle's libuv write queue, so a writer could queue far more than high before the pause, or hear
 * `resumeWriting` while ciphertext still waits in user space. Measured on Node 20 (TLS 1.3, 127.0.0.1): no. A
 * `TLSSocket` write completes only once its last ciphertext byte left libuv for the kernel (node's TLSWrap runs the
 * write callback after the underlying write finished), so the cleartext of every record still queued beneath is
 * still in the `TLSSocket`'s `writableLength`, which the transport counts. The pause fires at high + one chunk with
 * nothing beneath; once the kernel buffers are full the transport counts 64-80 KiB while ~30 KiB of that
 * ciphertext waits in libuv. These tests pin that: they fail if ciphertext ever waits beneath bytes the transport
 * no longer counts (a count of the raw socket's buffer, or a write callback that ran early).
 *
 * The libuv queue is read from `socket._handle.writeQueueSize`, a Node internal (checked to be a number, so a
 * Node that drops it fails here rather than passing quietly).
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../../src/index.js';
import type { EventLoop, Future, Transport } from '../../src/index.js';
import { useLoop } from '../support/loop.js';
import { tlsFixture } from '../support/tls-fixture.js';

const fx = tlsFixture();
const CHUNK = 16 * 1024;
const HIGH = 64 * 1024;
const LOW = 16 * 1024;
// Far above what the kernel buffers of one loopback connection take (a few MiB): the writer stalls long before.
const MAX_SENT = 64 * 1024 * 1024;
// TLS 1.3 adds 22 bytes per record of up to 16 KiB (header, content type, tag); 1% covers it with room to spare.
const CIPHER_OVERHEAD = 1.01;

/** Bytes queued in libuv under `socket` (the handle's write queue). */
function libuvQueued(socket: unknown): number {
  const handle = (socket as { _handle?: { writeQueueSize?: unknown } | null })._handle;
  if (handle === null || handle === undefined) return 0; // destroyed: nothing queued
  expect(typeof handle.writeQueueSize).toBe('number');
  return handle.writeQueueSize as number;
}

/** One observation of the sending transport and everything under it. */
interface Sample {
  what: string;
  /** `getWriteBufferSize()`. */
  counted: number;
  /** Ciphertext (TLS) or bytes (TCP) waiting in the TCP handle's libuv queue. */
  beneath: number;
}

class Writer {
  transport: Transport | null = null;
  paused = false;
  pauses = 0;
  resumes = 0;
  sent = 0;
  // Set once the stall was measured: no more writes, so the peer can catch up with a fixed total.
  stopped = false;
  readonly samples: Sample[] = [];
  readonly #loop: EventLoop;
  constructor(loop: EventLoop) {
    this.#loop = loop;
  }
  sample(what: string): Sample {
    const t = this.transport!;
    const s = { what, counted: t.getWriteBufferSize(), beneath: libuvQueued(t.getExtraInfo('socket')) };
    this.samples.push(s);
    return s;
  }
  connectionMade(t: Transport): void {
    this.transport = t;
    t.setWriteBufferLimits({ high: HIGH, low: LOW });
    this.pump();
  }
  pump(): void {
    const t = this.transport!;
    while (!this.paused && !this.stopped && this.sent < MAX_SENT && !t.isClosing()) {
      t.write(Buffer.alloc(CHUNK, this.sent / CHUNK));
      this.sent += CHUNK;
    }
  }
  pauseWriting(): void {
    this.paused = true;
    this.pauses++;
    this.sample('pause');
  }
  resumeWriting(): void {
    this.paused = false;
    this.resumes++;
    this.sample('resume');
    this.#loop.callSoon(() => this.pump());
  }
  connectionLost(): void {}
}

class StoppedReader {
  transport: Transport | null = null;
  received = 0;
  target = Infinity;
  readonly lost: Future<void>;
  readonly all: Future<void>;
  constructor(loop: EventLoop) {
    this.lost = loop.createFuture<void>();
    this.all = loop.createFuture<void>();
  }
  connectionMade(t: Transport): void {
    this.transport = t;
    t.pauseReading(); // the peer stops reading: the kernel buffers fill, then the writer's own
  }
  dataReceived(d: Buffer): void {
    this.received += d.length;
    if (this.received >= this.target && !this.all.done()) this.all.setResult(undefined);
  }
  eofReceived(): void {}
  connectionLost(): void {
    this.lost.setResult(undefined);
  }
}

describe('write buffer accounting against a peer that stopped reading', () => {
  const lf = useLoop({ real: true });

  for (const tls of [true, false]) {
    it(`${tls ? 'TLS 1.3' : 'TCP'}: getWriteBufferSize covers every byte still queued beneath the transport`, async () => {
      await lf.run(async () => {
        const r = new StoppedReader(lf.loop);
        const server = await lf.loop.createServer(() => r, '127.0.0.1', 0, tls ? { ssl: fx.serverOptions() } : {});
        const port = (server.sockets[0]!.address() as AddressInfo).port;
        const w = new Writer(lf.loop);
        try {
          const [t] = await lf.loop.createConnection(() => w, '127.0.0.1', port, tls ? { ssl: fx.clientOptions() } : {});
          if (tls) expect(t.getExtraInfo('tlsVersion')).toBe('TLSv1.3');
          // Wait (events only) until the writer is paused and no resume came for 10 looks in a row: the kernel
          // buffers are full and the rest waits in user space.
          let quiet = 0;
          let lastResumes = -1;
          for (let i = 0; i < 1000 && quiet < 10; i++) {
            await sleep(0.01);
            quiet = w.paused && w.resumes === lastResumes ? quiet + 1 : 0;
            lastResumes = w.resumes;
            w.sample('stalled');
          }
          expect(w.paused).toBe(true);
          expect(w.sent).toBeLessThan(MAX_SENT);
          expect(r.received).toBe(0);
          const stalled = w.sample('stalled');
          // The stalled state is the interesting one: something really waits beneath (else nothing is measured).
          expect(stalled.beneath).toBeGreaterThan(0);
          expect(stalled.counted).toBeGreaterThan(LOW);

          for (const s of w.samples) {
            // Never more queued under the transport than it counts (in ciphertext terms).
            expect(s.beneath, `${s.what}: ${s.beneath} bytes beneath, ${s.counted} counted`)
              .toBeLessThanOrEqual(Math.ceil(s.counted * CIPHER_OVERHEAD) + 64);
            if (s.what === 'pause') {
              // asyncio: strictly over high, and the write that crossed it is the only excess.
              expect(s.counted).toBeGreaterThan(HIGH);
              expect(s.counted).toBeLessThanOrEqual(HIGH + CHUNK);
            }
            if (s.what === 'resume') {
              // At or below low, and nothing left in libuv: the backed-up path really drained.
              expect(s.counted).toBeLessThanOrEqual(LOW);
              expect(s.beneath).toBe(0);
            }
          }
          expect(w.pauses).toBeGreaterThanOrEqual(1);

          // The peer reads again: everything written arrives, and the writer hears resumeWriting.
          w.stopped = true;
          r.target = w.sent;
          const pausesBefore = w.pauses;
          const resumesBefore = w.resumes;
          r.transport!.resumeReading();
          await waitFor(r.all, 30);
          expect(r.received).toBe(w.sent);
          expect(w.resumes).toBeGreaterThan(resumesBefore);
          expect(w.resumes).toBeGreaterThanOrEqual(pausesBefore);
          t.close();
          await waitFor(r.lost, 10);
        } finally {
          server.close();
          server.abortClients();
        }
      });
    }, 60_000);
  }
});
