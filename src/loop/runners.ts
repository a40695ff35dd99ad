/**
 * `run(main)` (asyncio `asyncio.run` / `Runner`): a fresh loop runs `main` as a Task; on the way out every task
 * still pending is cancelled and awaited, servers and transports still open are closed with a warning (in Node an
 * open socket keeps the process alive; asyncio leaves them to the garbage collector), and the loop is closed. SIGINT/SIGTERM cancel the main task (it may
 * clean up); a second signal exits the process at once. Until then the process stays open even when nothing but a
 * signal can wake main, as `asyncio.run()` blocks (see `keepProcessAlive`).
 */
import { MessageChannel } from 'node:worker_threads';
import { CancelledError, InvalidStateError } from '../errors.js';
import { systemClock, type Clock } from './clock.js';
import { EventLoop } from './event-loop.js';
import type { LoopLogger } from './events.js';
import { gather } from './combinators.js';
import { ERRORED, reportUnretrieved } from './futures.js';
import { runningLoopOrNull } from './state.js';
import type { Task, TaskFunction } from './tasks.js';

/** Options of {@link run}. */
export interface RunOptions {
  /** Debug mode (slow-callback warnings, creation tracebacks). Default false. */
  debug?: boolean;
  /** The loop's clock (default the real clock). */
  clock?: Clock;
  /** The loop's logger (default console). */
  logger?: LoopLogger;
  /** Turn SIGINT/SIGTERM into a cancel of `main` (default true); a signal the loop has a handler for (`loop.addSignalHandler`) is left to it. */
  handleSignals?: boolean;
  /**
   * Called with the loop before `main` starts (to set an exception handler or a tracer). One that throws ends
   * run() with its error, the loop closed; an async one is not awaited, and its rejection goes to the loop's
   * exception handler ("run() setup failed").
   */
  setup?: (loop: EventLoop) => void;
  /**
   * Foreign-await tracking (default true): tasks that await promises not made by tulipwire (`fs/promises`,
   * `Promise.all`, other clients) keep `currentTask()` and their cancellation points. Costs promise hooks
   * process-wide; pass false for a loop whose tasks await only tulipwire Futures (the loop still turns it on at
   * the first foreign await it sees). See `enableForeignAwaitTracking`.
   */
  trackForeignAwaits?: boolean;
}

/** Exit codes for a second signal: 128 + the signal number, as a shell reports it. */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Runs `main` on a new {@link EventLoop} and returns its result.
 * @throws whatever `main` throws; CancelledError (message "SIGINT"/"SIGTERM") when a signal cancelled it (and no
 *   other cancel of `main` was pending: then main's own CancelledError, as asyncio's Runner);
 *   InvalidStateError when called from inside a running loop (a task or a callback), as asyncio.run(); TypeError
 *   when `main` is not a function, or is an async generator function (before any loop is made); whatever `setup` throws (the loop is closed first).
 */
export async function run<T>(main: TaskFunction<T>, options: RunOptions = {}): Promise<T> {
  // asyncio.run() refuses too (test_asyncio_run_from_running_loop): run() is the program's entry point, not a way to
  // start a second loop from a task or a callback of the first. Checked before anything is created.
  if (runningLoopOrNull() !== null) throw new InvalidStateError('run() cannot be called from a running event loop');
  // Before the loop exists (asyncio's Runner.run checks the coroutine first too): `run(main())` hands over a Promise.
  if (typeof main !== 'function' || main.constructor?.name === 'AsyncGeneratorFunction') {
    throw new TypeError(`run() takes a function (async or generator), not ${notAFunction(main)}`);
  }
  const loop = new EventLoop({
    debug: options.debug ?? false,
    ...(options.clock !== undefined ? { clock: options.clock } : {}),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
    trackForeignAwaits: options.trackForeignAwaits ?? true,
  });
  let task: Task<T>;
  try {
    const r: unknown = options.setup?.(loop);
    // An async setup is not awaited (main starts now); its rejection would be an unhandled rejection, which ends
    // a Node process: the loop's exception handler gets it instead.
    if (r instanceof Promise) r.then(undefined, (e: unknown) => loop.callExceptionHandler({ message: 'run() setup failed', exception: e }));
    task = loop.createTask(main, { name: 'main' });
  } catch (e) {
    // As asyncio's `with Runner()`: the loop is closed whatever fails, with the signal handlers setup installed
    // (left behind, their process listeners keep Node's default action for the signal off).
    loop.close();
    throw e;
  }
  let interrupted: string | null = null;
  // True once the signal's cancel reached the still-pending main task (and so counts in its cancelling()).
  let signalCancelled = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    // The program handles this signal itself (loop.addSignalHandler): as in asyncio, where the loop's handler
    // replaces the Runner's SIGINT handler, run() neither cancels main nor exits.
    if (loop._signals.has(sig)) return;
    if (interrupted !== null || task.done()) {
      // A second signal: the user really wants out.
      process.exit(SIGNAL_EXIT[sig] ?? 1);
    }
    interrupted = sig;
    if (!loop.isClosed()) {
      loop.callSoon(() => {
        if (task.cancel(sig)) signalCancelled = true;
      });
    }
  };
  const handle = options.handleSignals ?? true;
  if (handle) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const release = keepProcessAlive();
  try {
    return await loop.runUntilComplete(task);
  } catch (e) {
    // The signal ended main only if its cancel was the last one pending (asyncio's Runner: KeyboardInterrupt only
    // when `uncancel() == 0`); main cancelled by its own code as well ends with its own CancelledError.
    if (signalCancelled && e instanceof CancelledError && task.cancelled() && task.uncancel() === 0) {
      throw new CancelledError(interrupted!, { cause: e });
    }
    throw e;
  } finally {
    try {
      await cancelAllTasks(loop);
      await closeLeftOpen(loop);
    } finally {
      // Failed tasks nobody awaited: Node may exit before any garbage collection reports them (asyncio's
      // reference counting reports them about when main's frame goes), so report the ones still alive now.
      reportUnretrieved(loop);
      if (handle) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      release();
      loop.close();
    }
  }
}

/**
 * What `run()`'s TypeError calls a `main` it cannot run: no function, or an async generator function (asyncio.run
 * refuses an async generator too; a Task would drive its object as a generator whose every next() is a bare yield).
 */
function notAFunction(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'function') return 'an async generator function';
  if (typeof v === 'object' && typeof (v as PromiseLike<unknown>).then === 'function') return 'a Promise (pass main, not main())';
  return typeof v === 'object' ? 'an object' : typeof v;
}

/**
 * Holds the process open until `run()` is over, as `asyncio.run()` blocks in `select()` until main is done. A loop
 * whose tasks wait only for a signal (run()'s own SIGINT cancel, or a Future a signal listener sets) arms no Node
 * timer, and signal listeners keep nothing alive, so Node used to exit at once (code 13 under a top-level await,
 * else 0) with main still pending and its `finally` never run (test_runners `test_interrupt_wait`). A MessagePort
 * with a listener is a referenced libuv handle that never fires; the returned function closes it.
 */
function keepProcessAlive(): () => void {
  const { port1, port2 } = new MessageChannel();
  port1.on('message', () => {});
  return () => {
    port1.close();
    port2.close();
  };
}

/** How long `run()` lets aborted transports report `connectionLost` before it closes the loop, real seconds. */
const LEFT_OPEN_GRACE = 1;
/** How often it looks whether they all have, real milliseconds. */
const LEFT_OPEN_POLL_MS = 5;

/**
 * Closes the servers and transports `main` left open, with a warning: in Node an open socket keeps the process
 * alive, so after asyncio's shutdown (which leaves them to the garbage collector and a ResourceWarning) a forgotten
 * server would hang the program. Their protocols still get `connectionLost`.
 */
async function closeLeftOpen(loop: EventLoop): Promise<void> {
  const left = [...loop._open];
  if (left.length === 0) return;
  const servers = left.filter((r) => r._resourceKind === 'server').length;
  const transports = left.length - servers;
  const what = [servers > 0 ? `${servers} server${servers > 1 ? 's' : ''}` : '', transports > 0 ? `${transports} transport${transports > 1 ? 's' : ''}` : '']
    .filter(Boolean).join(' and ');
  loop._warnSafe(`run(): main returned with ${what} still open; closing ${left.length > 1 ? 'them' : 'it'} (close what you open: an open socket keeps Node running)`);
  for (const r of left) {
    try {
      r._abortOpen();
    } catch (e) {
      loop.callExceptionHandler({ message: 'closing a resource left open failed', exception: e });
    }
  }
  // Real time, whatever the loop's clock: the kernel closes sockets in real time, and a VirtualClock moved only by
  // advance() would never end a sleep() here (run() hung), an autojump one would end the grace at once.
  await loop.runUntilComplete(async () => {
    const end = systemClock.time() + LEFT_OPEN_GRACE;
    while (loop._open.size > 0 && systemClock.time() < end) {
      await loop._realDelay(LEFT_OPEN_POLL_MS);
    }
  });
}

/** Cancels every pending task of `loop` and runs the loop until they are done (asyncio `_cancel_all_tasks`). */
async function cancelAllTasks(loop: EventLoop): Promise<void> {
  const pending = [...loop._tasks].filter((t) => !t.done());
  if (pending.length === 0) return;
  for (const t of pending) t.cancel();
  await loop.runUntilComplete(() => gather(...pending, { returnExceptions: true }));
  for (const t of pending) {
    if (t.cancelled()) continue;
    const exc = t.exception();
    // The state, not `exc !== null`: a task that threw null or undefined failed too.
    if (t._state === ERRORED) {
      loop.callExceptionHandler({ message: 'unhandled exception during run() shutdown', exception: exc, task: t });
    }
  }
}
