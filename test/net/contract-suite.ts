/**
 * `checkProtocolContract(name, makePair)`: the transport conformance suite, in the style of trio's
 * `check_two_way_stream` / `check_half_closeable_stream` (python-trio/trio `src/trio/testing/_check_streams.py`),
 * recast for PEP 3156 callbacks. It runs unchanged against every way tulipwire connects two protocols: TCP, TLS,
 * startTls-upgraded TCP and the in-memory pair.
 *
 * Every check drives two {@link Recorder} protocols and asserts the callback grammar `CM → DR* → ER? → CL`
 * (connectionLost exactly once, last; no callback after it; pause/resume strictly paired) on top of what the check
 * itself is about.
 */
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../../src/index.js';
import type { EventLoop, Future, Transport } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

/** A protocol that records every callback and checks the grammar as it goes. */
export class Recorder {
  /** Callbacks in order: `CM`, `DR:<bytes>`, `ER`, `CL:<null|code>`, `PW`, `RW`. */
  readonly events: string[] = [];
  /** Grammar violations seen (must stay empty). */
  readonly violations: string[] = [];
  /** The transport to use (replaced after startTls). */
  transport: Transport | null = null;
  readonly chunks: Buffer[] = [];
  receivedBytes = 0;
  state: 'init' | 'made' | 'eof' | 'lost' = 'init';
  writingPaused = false;
  /** What eofReceived returns. */
  keepOpenOnEof = false;
  /** Throw from this callback (once). */
  throwIn: 'connectionMade' | 'dataReceived' | 'eofReceived' | null = null;
  /** Called after each dataReceived is recorded. */
  onData: ((d: Buffer) => void) | null = null;
  readonly made: Future<void>;
  readonly lost: Future<Error | null>;
  readonly eof: Future<void>;
  #byteWaiters: { n: number; f: Future<void> }[] = [];
  readonly #loop: EventLoop;

  constructor(loop: EventLoop) {
    this.#loop = loop;
    this.made = loop.createFuture();
    this.lost = loop.createFuture();
    this.eof = loop.createFuture();
  }

  #check(name: string, allowed: string[]): void {
    if (!allowed.includes(this.state)) this.violations.push(`${name} in state ${this.state}`);
  }

  connectionMade(t: Transport): void {
    this.#check('connectionMade', ['init']);
    this.state = 'made';
    this.transport = t;
    this.events.push('CM');
    if (!this.made.done()) this.made.setResult(undefined);
    if (this.throwIn === 'connectionMade') {
      this.throwIn = null;
      throw new Error('boom in connectionMade');
    }
  }

  dataReceived(d: Buffer): void {
    this.#check('dataReceived', ['made']);
    if (!Buffer.isBuffer(d)) this.violations.push('dataReceived got a non-Buffer');
    this.events.push(`DR:${d.length}`);
    this.chunks.push(d);
    this.receivedBytes += d.length;
    this.onData?.(d);
    for (const w of this.#byteWaiters) if (this.receivedBytes >= w.n && !w.f.done()) w.f.setResult(undefined);
    if (this.throwIn === 'dataReceived') {
      this.throwIn = null;
      throw new Error('boom in dataReceived');
    }
  }

  eofReceived(): boolean {
    this.#check('eofReceived', ['made']);
    this.state = 'eof';
    this.events.push('ER');
    if (!this.eof.done()) this.eof.setResult(undefined);
    if (this.throwIn === 'eofReceived') {
      this.throwIn = null;
      throw new Error('boom in eofReceived');
    }
    return this.keepOpenOnEof;
  }

  connectionLost(exc: Error | null): void {
    this.#check('connectionLost', ['made', 'eof']);
    this.state = 'lost';
    this.events.push(`CL:${exc === null ? 'null' : ((exc as { code?: string }).code ?? exc.message)}`);
    if (!this.lost.done()) this.lost.setResult(exc);
    for (const w of this.#byteWaiters) if (!w.f.done()) w.f.setException(new Error(`lost with ${this.receivedBytes} bytes`));
  }

  pauseWriting(): void {
    this.#check('pauseWriting', ['made', 'eof']);
    if (this.writingPaused) this.violations.push('pauseWriting twice');
    this.writingPaused = true;
    this.events.push('PW');
  }

  resumeWriting(): void {
    this.#check('resumeWriting', ['made', 'eof']);
    if (!this.writingPaused) this.violations.push('resumeWriting without pauseWriting');
    this.writingPaused = false;
    this.events.push('RW');
  }

  /** Resolves once `n` bytes arrived in total. */
  waitBytes(n: number): Future<void> {
    const f = this.#loop.createFuture<void>();
    if (this.receivedBytes >= n) f.setResult(undefined);
    else this.#byteWaiters.push({ n, f });
    return f;
  }

  /** Everything received, joined. */
  data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** The events with consecutive `DR:n` merged into one `DR` (chunking is arbitrary). */
  shape(): string[] {
    const out: string[] = [];
    for (const e of this.events) {
      const v = e.startsWith('DR:') ? 'DR' : e;
      if (v === 'DR' && out[out.length - 1] === 'DR') continue;
      out.push(v);
    }
    return out;
  }
}

/** Two connected transports driving `client` and `server`, and how to tear them down. */
export interface Pair {
  client: Transport;
  server: Transport;
  cleanup(): Promise<void>;
}

/** Connects `client` and `server` (both {@link Recorder}s) and resolves once both had `connectionMade`. */
export type MakePair = (loop: EventLoop, client: Recorder, server: Recorder) => Promise<Pair>;

/** Options of {@link checkProtocolContract}. */
export interface ContractOptions {
  /** Run on the real clock (sockets) instead of an autojumping virtual clock. */
  real: boolean;
  /** The transports report `canWriteEof() === true` (every pair tulipwire makes does). */
  halfClose?: boolean;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Registers the suite under `describe(name)`. */
export function checkProtocolContract(name: string, makePair: MakePair, options: ContractOptions): void {
  describe(`protocol contract: ${name}`, () => {
    const fx = useLoop(options.real ? { real: true } : {});
    const T = 20; // seconds: a bound on every wait, never reached when things work

    async function withPair(body: (p: Pair, c: Recorder, s: Recorder) => Promise<void>, setup?: (c: Recorder, s: Recorder) => void): Promise<[Recorder, Recorder]> {
      const c = new Recorder(fx.loop);
      const s = new Recorder(fx.loop);
      setup?.(c, s);
      await fx.run(async () => {
        const pair = await makePair(fx.loop, c, s);
        try {
          await body(pair, c, s);
        } finally {
          await pair.cleanup();
        }
      });
      expect(c.violations, 'client grammar').toEqual([]);
      expect(s.violations, 'server grammar').toEqual([]);
      return [c, s];
    }

    it('moves bytes both ways; Uint8Array views and empty writes are fine', async () => {
      const [c, s] = await withPair(async (p, c, s) => {
        p.client.write(Buffer.from('x'));
        p.client.write(new Uint8Array(0));
        p.client.write(new Uint8Array([0x79, 0x7a]));
        const big = Buffer.from('..abc..');
        p.client.write(big.subarray(2, 5));
        await waitFor(s.waitBytes(6), T);
        p.server.write(Buffer.from('pong'));
        await waitFor(c.waitBytes(4), T);
        expect(() => p.client.write('nope' as unknown as Uint8Array)).toThrow(TypeError);
        p.client.close();
        await waitFor(c.lost, T);
        await waitFor(s.lost, T);
      });
      expect(s.data().toString()).toBe('xyzabc');
      expect(c.data().toString()).toBe('pong');
      expect(s.shape()).toEqual(['CM', 'DR', 'ER', 'CL:null']);
      expect(c.shape()).toEqual(['CM', 'DR', 'CL:null']);
    });

    it('send then close: the peer gets the bytes, then EOF, then connectionLost(null) (close flushes)', async () => {
      const big = pattern(1 << 20, 7);
      const [c, s] = await withPair(async (p, c, s) => {
        p.client.setWriteBufferLimits({ high: 4 << 20 }); // no pause/resume in this check
        p.client.write(big);
        p.client.close();
        expect(p.client.isClosing()).toBe(true);
        p.client.close(); // idempotent
        p.client.write(Buffer.from('dropped')); // after close: silently dropped (asyncio)
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
        expect(p.server.isClosing()).toBe(true);
      });
      expect(s.data().equals(big)).toBe(true);
      expect(s.shape()).toEqual(['CM', 'DR', 'ER', 'CL:null']);
      expect(c.events).toEqual(['CM', 'CL:null']);
    });

    it('abort drops what is buffered and closes now; each side loses the connection exactly once', async () => {
      const [c, s] = await withPair(async (p, c, s) => {
        p.client.setWriteBufferLimits({ high: 4 << 20 });
        p.client.write(pattern(1 << 20, 3)); // corked in this iteration: abort drops it before it reaches the wire
        p.client.abort();
        p.client.abort();
        p.client.close();
        await waitFor(c.lost, T);
        await waitFor(s.lost, T);
      });
      expect(s.receivedBytes).toBe(0);
      expect(c.events).toEqual(['CM', 'CL:null']);
      // The peer sees a clean EOF or a reset; either way, connectionLost comes once and last.
      expect(s.events[0]).toBe('CM');
      expect(s.events.filter((e) => e.startsWith('CL')).length).toBe(1);
      expect(s.events[s.events.length - 1]!.startsWith('CL')).toBe(true);
    });

    it('full duplex: 1 MiB each way at once, in random chunk sizes, arrives intact and in order', async () => {
      const up = pattern(1 << 20, 11);
      const down = pattern(1 << 20, 13);
      const [c, s] = await withPair(async (p, c, s) => {
        let seed = 5;
        const rnd = (): number => {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          return 1 + (seed % 16384);
        };
        const send = async (t: Transport, data: Buffer): Promise<void> => {
          let off = 0;
          while (off < data.length) {
            const n = Math.min(rnd(), data.length - off);
            t.write(data.subarray(off, off + n));
            off += n;
            if (off % 5 === 0) await sleep(0); // spread the writes over several iterations
          }
        };
        await Promise.all([send(p.client, up), send(p.server, down)]);
        await waitFor(s.waitBytes(up.length), T);
        await waitFor(c.waitBytes(down.length), T);
        p.client.close();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      });
      expect(s.data().equals(up)).toBe(true);
      expect(c.data().equals(down)).toBe(true);
    });

    it('half-close: writeEof, the peer keeps writing, then both EOFs end the connection', async () => {
      const [c, s] = await withPair(async (p, c, s) => {
        expect(p.client.canWriteEof()).toBe(options.halfClose ?? true);
        p.client.write(Buffer.from('x'));
        p.client.writeEof();
        p.client.writeEof(); // idempotent
        expect(() => p.client.write(Buffer.from('y'))).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_CLOSED' }));
        await waitFor(s.eof, T);
        expect(s.data().toString()).toBe('x');
        p.server.write(Buffer.from('back'));
        await waitFor(c.waitBytes(4), T);
        p.server.writeEof();
        await waitFor(c.eof, T);
        await waitFor(c.lost, T);
        await waitFor(s.lost, T);
      }, (c, s) => {
        c.keepOpenOnEof = true;
        s.keepOpenOnEof = true;
      });
      expect(c.data().toString()).toBe('back');
      expect(s.shape()).toEqual(['CM', 'DR', 'ER', 'CL:null']);
      expect(c.shape()).toEqual(['CM', 'DR', 'ER', 'CL:null']);
    });

    it('eofReceived returning nothing closes the transport itself', async () => {
      const [c, s] = await withPair(async (p, c, s) => {
        p.client.writeEof();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      }, (c) => {
        c.keepOpenOnEof = true;
      });
      expect(s.events).toEqual(['CM', 'ER', 'CL:null']);
      expect(c.events).toEqual(['CM', 'ER', 'CL:null']);
    });

    it('a throwing dataReceived goes to the exception handler and closes that transport with the error', async () => {
      const [c, s] = await withPair(async (p, c, s) => {
        p.client.write(Buffer.from('first'));
        const exc = await waitFor(s.lost, T);
        expect(exc?.message).toBe('boom in dataReceived');
        await waitFor(c.lost, T);
        p.server.write(Buffer.from('after loss')); // dropped, no throw
      }, (_c, s) => {
        s.throwIn = 'dataReceived';
      });
      const recs = fx.take();
      expect(recs.map((r) => r.message)).toEqual(['Fatal error: protocol.dataReceived() call failed.']);
      expect((recs[0]!.exception as Error).message).toBe('boom in dataReceived');
      expect(recs[0]!.protocol).toBe(s);
      expect(s.events).toEqual(['CM', 'DR:5', 'CL:boom in dataReceived']);
      expect(c.events.filter((e) => e.startsWith('CL')).length).toBe(1);
    });

    it('a throwing eofReceived is fatal too; connectionLost still comes once, last', async () => {
      const [, s] = await withPair(async (p, c, s) => {
        p.client.writeEof();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      }, (c, s) => {
        c.keepOpenOnEof = true;
        s.throwIn = 'eofReceived';
      });
      expect(fx.take().map((r) => r.message)).toEqual(['Fatal error: protocol.eofReceived() call failed.']);
      expect(s.events).toEqual(['CM', 'ER', 'CL:boom in eofReceived']);
    });

    it('pauseReading holds every byte until resumeReading, then delivers them in order', async () => {
      const data = pattern(300_000, 21);
      const [, s] = await withPair(async (p, c, s) => {
        p.server.pauseReading();
        p.server.pauseReading();
        expect(p.server.isReading()).toBe(false);
        p.client.write(data);
        // Give the bytes time to travel; none may be delivered while paused.
        await sleep(options.real ? 0.05 : 0.001);
        expect(s.receivedBytes).toBe(0);
        p.server.resumeReading();
        p.server.resumeReading();
        expect(p.server.isReading()).toBe(true);
        await waitFor(s.waitBytes(data.length), T);
        p.client.close();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      });
      expect(s.data().equals(data)).toBe(true);
    });

    for (const then of ['resume', 'close', 'abort'] as const) {
      it(`a paused protocol gets every held byte and the EOF before connectionLost when the peer closes (then ${then})`, async () => {
        // The client half-closes; the server answers and closes. The client pauses reading in the middle of the
        // reply, so the wire is gone while bytes and the EOF still wait in the transport: asyncio only sees the loss
        // after reading them. close()/abort() instead drop what is held, and the loss still comes (once, clean).
        const reply = pattern(600_000, 17);
        const [c] = await withPair(async (p, c, s) => {
          let paused = false;
          const resumed = fx.loop.createFuture<void>();
          c.onData = () => {
            if (paused || c.receivedBytes <= 100_000) return;
            paused = true;
            p.client.pauseReading();
            fx.loop.callLater(options.real ? 0.15 : 1, () => {
              if (then === 'resume') p.client.resumeReading();
              else if (then === 'close') p.client.close();
              else p.client.abort();
              resumed.setResult(undefined);
            });
          };
          p.client.write(Buffer.from('request'));
          p.client.writeEof();
          await waitFor(s.eof, T);
          p.server.setWriteBufferLimits({ high: 4 << 20 });
          // Sockets: one write (TLS then delivers many records per read); memory: two iterations, two chunks.
          const half = options.real ? reply.length : 150_000;
          for (let off = 0; off < half; off += 50_000) p.server.write(reply.subarray(off, off + 50_000));
          if (half < reply.length) await sleep(0);
          for (let off = half; off < reply.length; off += 50_000) p.server.write(reply.subarray(off, off + 50_000));
          p.server.close();
          await waitFor(s.lost, T);
          await waitFor(resumed, T);
          await waitFor(c.lost, T);
        }, (_c, s) => {
          s.keepOpenOnEof = true;
        });
        expect(c.events.filter((e) => e.startsWith('CL'))).toEqual(['CL:null']);
        if (then !== 'resume') return;
        expect(c.receivedBytes).toBe(reply.length);
        expect(c.data().equals(reply)).toBe(true);
        expect(c.shape()).toEqual(['CM', 'DR', 'ER', 'CL:null']);
      });
    }

    it('flow control: pauseWriting strictly over high water, resumeWriting at low water or below', async () => {
      const [c] = await withPair(async (p, c, s) => {
        p.client.setWriteBufferLimits({ high: 1000 });
        expect(p.client.getWriteBufferLimits()).toEqual({ low: 250, high: 1000 });
        p.server.pauseReading();
        p.client.write(Buffer.alloc(1000));
        expect(c.writingPaused).toBe(false); // exactly at high: not over it
        p.client.write(Buffer.alloc(1));
        expect(c.writingPaused).toBe(true); // synchronous, inside write()
        expect(p.client.getWriteBufferSize()).toBe(1001);
        p.server.resumeReading();
        await waitFor(s.waitBytes(1001), T);
        for (let i = 0; i < 2000 && c.writingPaused; i++) await sleep(0.001);
        expect(p.client.getWriteBufferSize()).toBeLessThanOrEqual(250);
        expect(() => p.client.setWriteBufferLimits({ high: 1, low: 2 })).toThrow(RangeError);
        p.client.close();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      });
      expect(c.events.filter((e) => e === 'PW' || e === 'RW')).toEqual(['PW', 'RW']);
    });

    it('raising the limits resumes a paused protocol (asyncio would not: python/asyncio#329)', async () => {
      const [c] = await withPair(async (p, c, s) => {
        p.client.setWriteBufferLimits({ high: 10, low: 0 });
        p.client.write(Buffer.alloc(100));
        expect(c.writingPaused).toBe(true);
        p.client.setWriteBufferLimits({ high: 1000, low: 500 });
        expect(c.writingPaused).toBe(false);
        p.client.close();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      });
      expect(c.events).toEqual(['CM', 'PW', 'RW', 'CL:null']);
    });

    it('lowering the limits below what the wire still holds pauses, and resumeWriting follows once it drains', async () => {
      const data = pattern(8 << 20, 23);
      const [c] = await withPair(async (p, c, s) => {
        p.server.pauseReading();
        p.client.setWriteBufferLimits({ high: 64 << 20 }); // no pause while the bytes go out
        p.client.write(data);
        // Let the write leave the transport: the kernel takes a few MiB, the socket keeps the rest.
        for (let i = 0; i < 50 && p.client.getWriteBufferSize() === data.length; i++) await sleep(options.real ? 0.01 : 0);
        expect(p.client.getWriteBufferSize()).toBeGreaterThan(1000);
        p.client.setWriteBufferLimits({ high: 1000 });
        expect(c.writingPaused).toBe(true);
        p.server.resumeReading();
        await waitFor(s.waitBytes(data.length), T);
        for (let i = 0; i < 300 && c.writingPaused; i++) await sleep(options.real ? 0.01 : 0.001);
        expect(c.writingPaused).toBe(false);
        p.client.close();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      });
      expect(c.events.filter((e) => e === 'PW' || e === 'RW')).toEqual(['PW', 'RW']);
    });

    it('writes of one iteration are corked and reach the peer together', async () => {
      const [, s] = await withPair(async (p, c, s) => {
        for (let i = 0; i < 100; i++) p.client.write(Buffer.from([i]));
        expect(p.client.getWriteBufferSize()).toBe(100);
        p.client.writelines([Buffer.from([100]), Buffer.from([101])]);
        await waitFor(s.waitBytes(102), T);
        p.client.close();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      });
      expect([...s.data()]).toEqual(Array.from({ length: 102 }, (_, i) => i));
    });

    it('setProtocol switches where later callbacks go; getProtocol tells', async () => {
      await withPair(async (p, c, s) => {
        const second = new Recorder(fx.loop);
        second.state = 'made';
        expect(p.server.getProtocol()).toBe(s);
        p.server.setProtocol(second);
        expect(p.server.getProtocol()).toBe(second);
        p.client.write(Buffer.from('to second'));
        await waitFor(second.waitBytes(9), T);
        expect(s.receivedBytes).toBe(0);
        p.client.close();
        await waitFor(second.lost, T);
        await waitFor(c.lost, T);
        expect(second.violations).toEqual([]);
      });
    });

    it('BufferedProtocol: bytes are copied into the buffers it hands out, in order; an empty buffer is fatal', async () => {
      const data = pattern(100_000, 31);
      const got: Buffer[] = [];
      const hints: number[] = [];
      const [, s] = await withPair(async (p, c, s) => {
        p.client.write(data);
        await waitFor(s.waitBytes(data.length), T);
        p.client.close();
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      }, (_c, s) => {
        const small = Buffer.alloc(777);
        Object.assign(s, {
          getBuffer: (hint: number) => {
            hints.push(hint);
            return small;
          },
          bufferUpdated: (n: number) => {
            got.push(Buffer.from(small.subarray(0, n)));
            s.dataReceived(small.subarray(0, n)); // record through the grammar checks
          },
        });
      });
      expect(Buffer.concat(got).equals(data)).toBe(true);
      expect(hints.every((h) => h > 0)).toBe(true);
      expect(s.shape()).toEqual(['CM', 'DR', 'ER', 'CL:null']);

      const [, s2] = await withPair(async (p, c, s) => {
        p.client.write(Buffer.from('x'));
        await waitFor(s.lost, T);
        await waitFor(c.lost, T);
      }, (_c, s) => {
        Object.assign(s, { getBuffer: () => new Uint8Array(0), bufferUpdated: () => {} });
      });
      const recs = fx.take();
      expect(recs.map((r) => r.message)).toEqual(['Fatal error: protocol.getBuffer() / bufferUpdated() call failed.']);
      expect(s2.events[s2.events.length - 1]).toBe('CL:TW_TRANSPORT');
    });

    it('reports peername and sockname, and the default for unknown keys', async () => {
      await withPair(async (p, c, s) => {
        expect(p.client.getExtraInfo('peername')).toBeDefined();
        expect(p.server.getExtraInfo('sockname')).toBeDefined();
        expect(p.client.getExtraInfo('no such key', 42)).toBe(42);
        expect(p.client.getLoop()).toBe(fx.loop);
        p.client.abort();
        await waitFor(c.lost, T);
        await waitFor(s.lost, T);
      });
    });
  });
}
