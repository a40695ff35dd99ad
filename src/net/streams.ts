/**
 * Streams: `async`/`await` reading and writing over a transport (asyncio `streams.py`).
 *
 * `openConnection` returns a `[StreamReader, StreamWriter]` pair; `startServer` calls `clientConnected(reader,
 * writer)` for each connection (an async callback runs as a Task from its first line, as asyncio's coroutine
 * does). Reads and `drain()` suspend on loop Futures, so they are cancellation points: cancelling the Task that
 * awaits them throws `CancelledError` there and leaves the buffered bytes in place.
 *
 * Reader flow control is asyncio's: the transport is paused once more than `2 × limit` bytes are buffered and
 * resumed when a read brings the buffer to `limit` or below. Only one read may wait at a time.
 *
 * @module
 */
import './connect.js'; // installs loop.createConnection & co. (streams call them)
import { STREAM_LIMIT } from '../constants.js';
import { IncompleteReadError, InvalidStateError, LimitOverrunError, TransportClosed } from '../errors.js';
import { getRunningLoop, shield, sleep } from '../loop/index.js';
import type { EventLoop, Future, Task } from '../loop/index.js';
import type { CreateConnectionOptions, StartTlsOptions } from './connect.js';
import type { Protocol } from './protocols.js';
import type { ClientSslOptions, CreateServerOptions, Server, ServerSslOptions } from './server.js';
import type { Transport } from './transports.js';

const EMPTY = Buffer.alloc(0);

/** Options of {@link StreamReader}. */
export interface StreamReaderOptions {
  /** Buffer limit, bytes (default 64 KiB): the most `readuntil` looks through; reading pauses above twice this. */
  limit?: number;
  /** The loop (default: the running loop). */
  loop?: EventLoop;
}

/** A separator for {@link StreamReader.readuntil}: bytes, a string (UTF-8), or several of them (the first match wins). */
export type Separator = Uint8Array | string | readonly (Uint8Array | string)[];

/** Reads bytes from a connection with `await` (asyncio `StreamReader`). */
export class StreamReader implements AsyncIterable<Buffer> {
  readonly #limit: number;
  readonly #loop: EventLoop;
  // Consolidated bytes, plus chunks fed since (joined on the next read). Invariant: #size === #buf.length + sum(#tail).
  #buf: Buffer = EMPTY;
  #tail: Buffer[] = [];
  #size = 0;
  #eof = false;
  #waiter: Future<void> | null = null;
  #exception: Error | null = null;
  #transport: Transport | null = null;
  #paused = false;

  constructor(options: StreamReaderOptions = {}) {
    const limit = options.limit ?? STREAM_LIMIT;
    if (!(limit > 0)) throw new RangeError('limit must be positive');
    this.#limit = limit;
    this.#loop = options.loop ?? getRunningLoop();
  }

  /** The limit, bytes. */
  get limit(): number {
    return this.#limit;
  }

  /** Bytes buffered and not read yet. */
  get bufferedSize(): number {
    return this.#size;
  }

  /**
   * asyncio's repr, field for field: `<StreamReader 4 bytes eof limit=123 waiter=<Future pending> exception=Error: x
   * transport=… paused>`, each part only when it applies (the limit only when it is not the default 64 KiB);
   * `<StreamReader>` for a fresh reader.
   */
  toString(): string {
    const info = ['StreamReader'];
    if (this.#size > 0) info.push(`${this.#size} bytes`);
    if (this.#eof) info.push('eof');
    if (this.#limit !== STREAM_LIMIT) info.push(`limit=${this.#limit}`);
    if (this.#waiter !== null) info.push(`waiter=${String(this.#waiter)}`);
    if (this.#exception !== null) info.push(`exception=${String(this.#exception)}`);
    if (this.#transport !== null) info.push(`transport=${String(this.#transport)}`);
    if (this.#paused) info.push('paused');
    return `<${info.join(' ')}>`;
  }

  /** The error the connection ended with, or null. */
  exception(): Error | null {
    return this.#exception;
  }

  /** Makes every pending and later read throw `exc`. */
  setException(exc: Error): void {
    this.#exception = exc;
    this.#wakeup(exc);
  }

  /** Attaches the transport whose reading this reader pauses and resumes (done by the protocol). */
  setTransport(transport: Transport): void {
    this.#transport = transport;
    this.#paused = false;
  }

  /** Marks the end of the stream. */
  feedEof(): void {
    this.#eof = true;
    this.#wakeup(null);
  }

  /** True when the stream ended and every byte was read. */
  atEof(): boolean {
    return this.#eof && this.#size === 0;
  }

  /**
   * Adds a copy of `data` (done by the protocol); pauses the transport above `2 × limit` buffered. The reader keeps
   * its own copy, as asyncio's `feed_data` extends a `bytearray`: the caller may reuse `data` at once.
   * @throws InvalidStateError after {@link feedEof}.
   */
  feedData(data: Uint8Array): void {
    if (this.#eof) throw new InvalidStateError('feedData() after feedEof()');
    if (data.length === 0) return;
    this._feedOwned(Buffer.from(data));
  }

  /**
   * @internal {@link feedData} without the copy, for a Buffer nobody writes to again (a transport's `dataReceived`
   * chunk, which is the protocol's to keep).
   */
  _feedOwned(data: Buffer): void {
    if (this.#eof) throw new InvalidStateError('feedData() after feedEof()');
    if (data.length === 0) return;
    this.#tail.push(data);
    this.#size += data.length;
    this.#wakeup(null);
    const t = this.#transport;
    if (t !== null && !this.#paused && this.#size > 2 * this.#limit) {
      t.pauseReading();
      this.#paused = true;
    }
  }

  /**
   * Reads up to `n` bytes (`n` < 0, the default: everything up to EOF). Returns an empty Buffer at EOF. Waits
   * when nothing is buffered.
   * @throws TypeError when `n` is positive but not an integer (nothing is consumed; asyncio raises it from its
   *   slice, once data is there).
   * @throws the connection's error, if it ended with one.
   * @throws CancelledError when the awaiting Task is cancelled (nothing is consumed).
   */
  async read(n = -1): Promise<Buffer> {
    if (this.#exception !== null) throw this.#exception;
    if (n === 0) return EMPTY;
    if (n < 0) {
      const blocks: Buffer[] = [];
      for (;;) {
        const block = await this.read(this.#limit);
        if (block.length === 0) break;
        blocks.push(block);
      }
      return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
    }
    checkSize(n, 'read');
    if (this.#size === 0 && !this.#eof) await this.#waitForData('read');
    const data = this.#take(Math.min(n, this.#size));
    this.#maybeResumeTransport();
    return data;
  }

  /**
   * Reads exactly `n` bytes.
   * @throws IncompleteReadError when the stream ends first (`partial` holds what came; it is consumed).
   * @throws RangeError when `n` < 0.
   * @throws TypeError when `n` is not an integer (nothing is consumed).
   * @throws CancelledError when the awaiting Task is cancelled (nothing is consumed).
   */
  async readexactly(n: number): Promise<Buffer> {
    if (n < 0) throw new RangeError('readexactly size can not be less than zero');
    checkSize(n, 'readexactly');
    if (this.#exception !== null) throw this.#exception;
    if (n === 0) return EMPTY;
    while (this.#size < n) {
      if (this.#eof) {
        const partial = this.#take(this.#size);
        throw new IncompleteReadError(partial, n);
      }
      await this.#waitForData('readexactly');
    }
    const data = this.#take(n);
    this.#maybeResumeTransport();
    return data;
  }

  /**
   * Reads one line, `\n` included. At EOF returns what is left (maybe without `\n`, maybe empty).
   * @throws LimitOverrunError when the line is longer than the limit; unlike `readuntil`, the line (or, without a
   *   separator in sight, the whole buffer) is discarded (asyncio raises ValueError here).
   */
  async readline(): Promise<Buffer> {
    try {
      return await this.readuntil('\n');
    } catch (err) {
      if (err instanceof IncompleteReadError) return err.partial;
      if (err instanceof LimitOverrunError) {
        const buf = this.#consolidate();
        if (buf.length >= err.consumed + 1 && buf[err.consumed] === 0x0a) this.#take(err.consumed + 1);
        else this.#take(this.#size);
        this.#maybeResumeTransport();
      }
      throw err;
    }
  }

  /**
   * Reads up to and including `separator` (default `\n`; with several separators, the one whose match ends first).
   * @throws LimitOverrunError when no separator is found within the limit, or the match starts beyond it; the data
   *   stays buffered and `consumed` tells how much to read past.
   * @throws IncompleteReadError when the stream ends before a separator (`partial`: everything left, consumed).
   * @throws RangeError for an empty separator.
   */
  async readuntil(separator: Separator = '\n'): Promise<Buffer> {
    const seps = (Array.isArray(separator) ? separator : [separator as Uint8Array | string])
      .map((s) => (typeof s === 'string' ? Buffer.from(s) : Buffer.from(s.buffer, s.byteOffset, s.length)))
      .sort((a, b) => a.length - b.length);
    if (seps.length === 0) throw new RangeError('Separator should contain at least one element');
    const minLen = seps[0]!.length;
    const maxLen = seps[seps.length - 1]!.length;
    if (minLen === 0) throw new RangeError('Separator should be at least one-byte string');
    if (this.#exception !== null) throw this.#exception;
    let offset = 0;
    let matchStart = -1;
    let matchEnd = -1;
    for (;;) {
      const buf = this.#consolidate();
      if (buf.length - offset >= minLen) {
        for (const sep of seps) {
          const i = buf.indexOf(sep, offset);
          if (i !== -1) {
            const end = i + sep.length;
            if (matchEnd === -1 || end < matchEnd) {
              matchEnd = end;
              matchStart = i;
            }
          }
        }
        if (matchEnd !== -1) break;
        offset = Math.max(0, buf.length + 1 - maxLen);
        if (offset > this.#limit) {
          throw new LimitOverrunError('Separator is not found, and chunk exceed the limit', offset);
        }
      }
      if (this.#eof) {
        const partial = this.#take(this.#size);
        throw new IncompleteReadError(partial, null);
      }
      await this.#waitForData('readuntil');
    }
    if (matchStart > this.#limit) {
      throw new LimitOverrunError('Separator is found, but chunk is longer than limit', matchStart);
    }
    const chunk = this.#take(matchEnd);
    this.#maybeResumeTransport();
    return chunk;
  }

  /** Iterates over lines until EOF (asyncio's `async for line in reader`). */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const line = await this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }

  /** @internal Takes every buffered byte out (StreamWriter.startTls hands them to the TLS layer). */
  _takeBuffered(): Buffer {
    const b = this.#take(this.#size);
    this.#maybeResumeTransport();
    return b;
  }

  #consolidate(): Buffer {
    if (this.#tail.length > 0) {
      this.#buf = this.#buf.length === 0 && this.#tail.length === 1
        ? this.#tail[0]!
        : Buffer.concat([this.#buf, ...this.#tail], this.#size);
      this.#tail = [];
    }
    return this.#buf;
  }

  // Removes and returns the first n bytes (a view: the buffers are never written to once fed).
  #take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const buf = this.#consolidate();
    const out = buf.subarray(0, n);
    this.#buf = n === buf.length ? EMPTY : buf.subarray(n);
    this.#size -= n;
    return out;
  }

  #maybeResumeTransport(): void {
    if (this.#paused && this.#size <= this.#limit && this.#transport !== null) {
      this.#paused = false;
      this.#transport.resumeReading();
    }
  }

  #wakeup(exc: Error | null): void {
    const w = this.#waiter;
    if (w === null) return;
    this.#waiter = null;
    if (w.done()) return;
    if (exc !== null) w.setException(exc);
    else w.setResult(undefined);
  }

  async #waitForData(funcName: string): Promise<void> {
    if (this.#waiter !== null) {
      throw new InvalidStateError(`${funcName}() called while another coroutine is already waiting for incoming data`);
    }
    if (this.#eof) throw new InvalidStateError('_waitForData after EOF');
    // A paused transport with an empty enough buffer would never wake us (asyncio does the same).
    if (this.#paused && this.#transport !== null) {
      this.#paused = false;
      this.#transport.resumeReading();
    }
    const w = this.#loop.createFuture<void>();
    this.#waiter = w;
    try {
      await w;
    } finally {
      // Only our own waiter: asyncio's `finally: self._waiter = None` also drops a waiter another read set while
      // this one was being woken, and that read then never wakes (a deliberate difference; see
      // test/net/streamreader-differential.test.ts).
      if (this.#waiter === w) this.#waiter = null;
    }
  }
}

// A byte count must be an integer: a fractional one would split a byte between the result and the buffer (asyncio
// raises TypeError from its slice, before consuming anything).
function checkSize(n: number, funcName: string): void {
  if (!Number.isInteger(n)) throw new TypeError(`${funcName}() size must be an integer, not ${String(n)}`);
}

/**
 * What `startServer` calls for each connection. An async function (or a generator function yielding Futures) runs
 * as a Task, from its first line on, as asyncio runs a coroutine callback; a plain function runs inside
 * `connectionMade`, and a promise it returns is awaited by a Task.
 */
export type ClientConnectedCallback = (reader: StreamReader, writer: StreamWriter) =>
  void | Promise<void> | Generator<unknown, void>;

// A native `async function` / `async () =>` or a generator function (a transpiled async function looks plain and
// takes the thenable path).
function isCoroutineFunction(fn: unknown): boolean {
  const tag = Object.prototype.toString.call(fn);
  return tag === '[object AsyncFunction]' || tag === '[object GeneratorFunction]';
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function';
}

function isGenerator(v: unknown): v is Generator {
  return Object.prototype.toString.call(v) === '[object Generator]';
}

/**
 * The protocol between a transport and a {@link StreamReader} / {@link StreamWriter} (asyncio
 * `StreamReaderProtocol`). Made by `openConnection` and `startServer`; rarely used directly.
 */
export class StreamReaderProtocol implements Protocol {
  readonly #loop: EventLoop;
  #reader: StreamReader | null;
  readonly #clientConnected: ClientConnectedCallback | null;
  #transport: Transport | null = null;
  #paused = false;
  #lost = false;
  #drainWaiters: Future<void>[] = [];
  readonly #closed: Future<void>;
  #task: Task<void> | null = null;
  /** @internal True on connections accepted by a server (startTls then runs server-side). */
  readonly _serverSide: boolean;

  constructor(reader: StreamReader, clientConnected: ClientConnectedCallback | null = null, loop?: EventLoop) {
    this.#loop = loop ?? getRunningLoop();
    this.#reader = reader;
    this.#clientConnected = clientConnected;
    this._serverSide = clientConnected !== null;
    this.#closed = this.#loop.createFuture<void>();
  }

  /** The transport, once connected. */
  get transport(): Transport | null {
    return this.#transport;
  }

  /** @internal StreamWriter.startTls swapped the transport. */
  _replaceTransport(t: Transport): void {
    this.#transport = t;
    this.#reader?.setTransport(t);
  }

  /** Hands the transport to the reader; on a server, calls the client-connected callback. */
  connectionMade(transport: Transport): void {
    this.#transport = transport;
    const reader = this.#reader;
    if (reader !== null) reader.setTransport(transport);
    const cb = this.#clientConnected;
    if (cb === null || reader === null) return;
    const writer = new StreamWriter(transport, this, reader, this.#loop);
    // asyncio calls the callback, gets an unstarted coroutine and runs it as a Task. Calling an async function
    // runs its body at once, outside any Task (so `currentTask()` is not the handler's, and cancelling the Task
    // would not reach the body's awaits): an async or generator function is therefore called inside its Task.
    if (isCoroutineFunction(cb)) {
      this.#startTask(transport, () => cb(reader, writer) as Promise<void> | Generator<unknown, void>);
      return;
    }
    // A plain function: it runs now; a promise or generator it returns is then awaited by a Task.
    const res: unknown = cb(reader, writer);
    if (isThenable(res) || isGenerator(res)) {
      this.#startTask(transport, () => res as Promise<void> | Generator<unknown, void>);
    }
  }

  #startTask(transport: Transport, fn: () => Promise<void> | Generator<unknown, void>): void {
    const task = this.#loop.createTask(fn, { name: 'clientConnected' });
    this.#task = task;
    task.addDoneCallback((t) => {
      if (this.#task === t) this.#task = null;
      if (t.cancelled()) {
        transport.close();
        return;
      }
      const exc = t.exception();
      if (exc !== null && exc !== undefined) {
        this.#loop.callExceptionHandler({
          message: 'Unhandled exception in clientConnected callback', exception: exc, transport, protocol: this,
        });
        transport.close();
      }
    });
  }

  /** Feeds the reader (the chunk is the protocol's to keep, so the reader takes it without a copy). */
  dataReceived(data: Buffer): void {
    this.#reader?._feedOwned(data);
  }

  /** Feeds EOF to the reader; keeps the connection half-open when the transport can half-close. */
  eofReceived(): boolean {
    this.#reader?.feedEof();
    return this.#transport?.canWriteEof() ?? false;
  }

  /** Ends the reader (with `exc` if any), wakes `drain()` and `waitClosed()` waiters. */
  connectionLost(exc: Error | null): void {
    this.#lost = true;
    const reader = this.#reader;
    if (reader !== null) {
      if (exc === null) reader.feedEof();
      else reader.setException(exc);
    }
    if (!this.#closed.done()) {
      if (exc === null) this.#closed.setResult(undefined);
      else {
        this.#closed.setException(exc);
        this.#closed.exception(); // retrieved: a connection error is not an unobserved Future error
      }
    }
    const ws = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of ws) {
      if (w.done()) continue;
      if (exc === null) w.setResult(undefined);
      else w.setException(exc);
    }
    this.#reader = null;
    this.#transport = null;
  }

  /** Flow control: `drain()` starts waiting. */
  pauseWriting(): void {
    this.#paused = true;
  }

  /** Flow control: wakes every `drain()`. */
  resumeWriting(): void {
    this.#paused = false;
    const ws = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of ws) if (!w.done()) w.setResult(undefined);
  }

  /** @internal Waits until the transport's buffer drained below low water (many waiters allowed, cpython#74116). */
  async _drainHelper(): Promise<void> {
    if (this.#lost) throw new TransportClosed('connection lost');
    if (!this.#paused) return;
    const w = this.#loop.createFuture<void>();
    this.#drainWaiters.push(w);
    try {
      await w;
    } finally {
      const i = this.#drainWaiters.indexOf(w);
      if (i !== -1) this.#drainWaiters.splice(i, 1);
    }
  }

  /** @internal Resolves at connectionLost (rejects with its error). */
  _closed(): Future<void> {
    return this.#closed;
  }
}

/** Writes to a connection (asyncio `StreamWriter`); pair every burst of writes with `await drain()`. */
export class StreamWriter {
  #transport: Transport;
  readonly #protocol: StreamReaderProtocol;
  readonly #reader: StreamReader | null;
  readonly #loop: EventLoop;

  /** @internal Made by `openConnection` / `startServer`. */
  constructor(transport: Transport, protocol: StreamReaderProtocol, reader: StreamReader | null, loop: EventLoop) {
    this.#transport = transport;
    this.#protocol = protocol;
    this.#reader = reader;
    this.#loop = loop;
  }

  /** The transport (a new one after `startTls`). */
  get transport(): Transport {
    return this.#transport;
  }

  /** Queues bytes (a string is UTF-8); see `Transport.write`. */
  write(data: Uint8Array | string): void {
    this.#transport.write(typeof data === 'string' ? Buffer.from(data) : data);
  }

  /** Queues several chunks. */
  writelines(list: Iterable<Uint8Array | string>): void {
    const bufs: Uint8Array[] = [];
    for (const d of list) bufs.push(typeof d === 'string' ? Buffer.from(d) : d);
    this.#transport.writelines(bufs);
  }

  /** Half-closes the connection after the buffered bytes. @throws TransportError when {@link canWriteEof} is false. */
  writeEof(): void {
    this.#transport.writeEof();
  }

  /** True when {@link writeEof} is supported (TCP, Unix, TLS 1.3). */
  canWriteEof(): boolean {
    return this.#transport.canWriteEof();
  }

  /** Closes the connection after the buffered bytes. */
  close(): void {
    this.#transport.close();
  }

  /** True once closing. */
  isClosing(): boolean {
    return this.#transport.isClosing();
  }

  /**
   * Resolves when the connection is gone (rejects with the error it ended with). Cancellable, each call on its own:
   * cancelling one wait leaves the others (and later calls) waiting. asyncio's wait_closed awaits the protocol's
   * shared future, so a cancelled wait_closed cancels it and every later one raises CancelledError at once; here the
   * shared Future is shielded.
   */
  async waitClosed(): Promise<void> {
    await shield(this.#protocol._closed());
  }

  /** See `Transport.getExtraInfo`. */
  getExtraInfo(name: string, dflt?: unknown): unknown {
    return this.#transport.getExtraInfo(name, dflt);
  }

  /**
   * Waits until the write buffer is at or below its low-water mark. Several tasks may wait at once. Cancellable.
   * @throws the reader's error, when the connection failed.
   * @throws TransportClosed when the connection is lost or closing (after `close()`, as asyncio's
   *   ConnectionResetError: its writes are dropped from then on).
   */
  async drain(): Promise<void> {
    const exc = this.#reader?.exception() ?? null;
    if (exc !== null) throw exc;
    if (this.#transport.isClosing()) {
      // Let connectionLost run first, so a lost connection raises below (asyncio yields here too).
      await sleep(0);
      await this.#protocol._drainHelper();
      // asyncio's connection_lost has run by now and drain() raises; ours waits for the peer's EOF first, so a
      // closing transport raises here too (a write-then-drain loop must not spin on a closed writer).
      throw new TransportClosed('the connection is closing');
    }
    await this.#protocol._drainHelper();
  }

  /**
   * Upgrades the connection to TLS (client side, or server side on a `startServer` connection): drains, then
   * hands the transport and any bytes the reader already holds to `loop.startTls` (so a ClientHello that arrived
   * with the last plaintext is not lost, cpython#142352).
   */
  async startTls(sslOptions: ClientSslOptions | ServerSslOptions, options: Omit<StartTlsOptions, 'serverSide'> = {}): Promise<void> {
    await this.drain();
    const initial = this.#reader?._takeBuffered();
    const t = await this.#loop.startTls(this.#transport, this.#protocol, sslOptions, {
      ...options,
      serverSide: this.#protocol._serverSide,
      ...(initial !== undefined && initial.length > 0 ? { initialData: initial } : {}),
    });
    this.#transport = t;
    this.#protocol._replaceTransport(t);
  }
}

/** Options of {@link openConnection}: the transport's, plus the reader's limit and the loop. */
export interface OpenConnectionOptions extends CreateConnectionOptions {
  /** The reader's limit, bytes (default 64 KiB). */
  limit?: number;
  /** The loop (default: the running loop). */
  loop?: EventLoop;
}

/** Options of {@link startServer}. */
export interface StartServerOptions extends CreateServerOptions {
  /** Each reader's limit, bytes (default 64 KiB). */
  limit?: number;
  /** The loop (default: the running loop). */
  loop?: EventLoop;
}

/**
 * Connects to `host:port` (TLS with `ssl`) and returns a reader and a writer (asyncio `open_connection`).
 * @throws as `loop.createConnection`.
 */
export async function openConnection(host: string, port: number, options: OpenConnectionOptions = {}): Promise<[StreamReader, StreamWriter]> {
  const { limit, loop: l, ...rest } = options;
  const loop = l ?? getRunningLoop();
  const reader = new StreamReader({ loop, ...(limit !== undefined ? { limit } : {}) });
  const protocol = new StreamReaderProtocol(reader, null, loop);
  const [transport] = await loop.createConnection(() => protocol, host, port, rest);
  return [reader, new StreamWriter(transport, protocol, reader, loop)];
}

/** As {@link openConnection}, over a Unix socket. */
export async function openUnixConnection(path: string, options: Omit<OpenConnectionOptions, 'localAddr'> = {}): Promise<[StreamReader, StreamWriter]> {
  const { limit, loop: l, ...rest } = options;
  const loop = l ?? getRunningLoop();
  const reader = new StreamReader({ loop, ...(limit !== undefined ? { limit } : {}) });
  const protocol = new StreamReaderProtocol(reader, null, loop);
  const [transport] = await loop.createUnixConnection(() => protocol, path, rest);
  return [reader, new StreamWriter(transport, protocol, reader, loop)];
}

/**
 * Serves `host:port`, calling `clientConnected(reader, writer)` for each connection (asyncio `start_server`). An
 * async (or generator) callback runs as a Task from its first line (see {@link ClientConnectedCallback}); if it
 * throws, the error goes to the loop's exception handler and the connection is closed; if its Task is cancelled,
 * the connection is closed.
 */
export async function startServer(clientConnected: ClientConnectedCallback, host: string | readonly string[] | null | undefined,
  port: number, options: StartServerOptions = {}): Promise<Server> {
  const { limit, loop: l, ...rest } = options;
  const loop = l ?? getRunningLoop();
  const factory = (): StreamReaderProtocol => {
    const reader = new StreamReader({ loop, ...(limit !== undefined ? { limit } : {}) });
    return new StreamReaderProtocol(reader, clientConnected, loop);
  };
  return await loop.createServer(factory, host, port, rest);
}

/** As {@link startServer}, on a Unix socket. */
export async function startUnixServer(clientConnected: ClientConnectedCallback, path: string,
  options: Omit<StartServerOptions, 'reusePort'> = {}): Promise<Server> {
  const { limit, loop: l, ...rest } = options;
  const loop = l ?? getRunningLoop();
  const factory = (): StreamReaderProtocol => {
    const reader = new StreamReader({ loop, ...(limit !== undefined ? { limit } : {}) });
    return new StreamReaderProtocol(reader, clientConnected, loop);
  };
  return await loop.createUnixServer(factory, path, rest);
}
