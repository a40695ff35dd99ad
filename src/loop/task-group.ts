/**
 * {@link TaskGroup}: structured concurrency (asyncio 3.11 `taskgroups.py`, with cpython main's `cancel()` and the
 * gh-155433 fix). `await TaskGroup.run(async (tg) => { tg.createTask(…); … })` waits for every child; the first
 * child failure cancels the others and the body, and all failures are thrown together as an {@link ErrorGroup}
 * (even a single one, like `ExceptionGroup`).
 */
import { ErrorGroup, InvalidStateError, isCancelledError } from '../errors.js';
import type { EventLoop } from './event-loop.js';
import { ERRORED, type Future } from './futures.js';
import { getRunningLoop } from './state.js';
import { currentTask, type Task, type TaskFunction, type TaskOptions } from './tasks.js';

/** A group of child tasks bound to the task that runs its body. */
export class TaskGroup {
  #entered = false;
  #exiting = false;
  #aborting = false;
  #loop: EventLoop | null = null;
  #parent: Task<unknown> | null = null;
  #parentCancelRequested = false;
  #tasks = new Set<Task<unknown>>();
  #errors: unknown[] = [];
  #onCompleted: Future<boolean> | null = null;
  #cancelOnEnter = false;
  readonly #onTaskDone = (t: Future<unknown>): void => this.#taskDone(t as Task<unknown>);

  /**
   * Runs `body` with a new group in the current Task and returns its value once every child is done.
   * @throws ErrorGroup with every child failure (and the body's own, if any); CancelledError when cancelled from outside.
   */
  static run<T>(body: (tg: TaskGroup) => PromiseLike<T> | T): Promise<T | undefined> {
    return new TaskGroup().run(body);
  }

  /** Like {@link TaskGroup.run} on this (unentered) group, e.g. one whose `cancel()` was handed out earlier. */
  async run<T>(body: (tg: TaskGroup) => PromiseLike<T> | T): Promise<T | undefined> {
    this.#enter();
    let result: T | undefined;
    let failed = false;
    let error: unknown;
    try {
      result = await body(this);
    } catch (e) {
      failed = true;
      error = e;
    }
    await this.#exit(failed, error);
    return failed ? undefined : result;
  }

  /**
   * Starts a child task in this group.
   * @throws InvalidStateError before the group is entered, once it has finished, or while it shuts down.
   */
  createTask<T>(fn: TaskFunction<T>, options?: TaskOptions): Task<T> {
    if (!this.#entered) throw new InvalidStateError(`${this} has not been entered`);
    if (this.#exiting && this.#tasks.size === 0) throw new InvalidStateError(`${this} is finished`);
    if (this.#aborting) throw new InvalidStateError(`${this} is shutting down`);
    const task = this.#loop!.createTask(fn, options);
    this.#tasks.add(task as Task<unknown>);
    task.addDoneCallback(this.#onTaskDone as (f: Future<T>) => void);
    return task;
  }

  /**
   * Cancels every child and the body; the group then exits quietly, without CancelledError (cpython 3.15).
   * Before the group is entered, it is cancelled on entry. Idempotent.
   */
  cancel(): void {
    if (!this.#entered) {
      this.#cancelOnEnter = true;
      return;
    }
    if (this.#exiting && this.#tasks.size === 0) return;
    if (!this.#aborting) {
      this.#abort();
      if (this.#parent !== null && !this.#parentCancelRequested) {
        this.#parentCancelRequested = true;
        this.#parent.cancel();
      }
    }
  }

  /** `<TaskGroup tasks=2 entered>`. */
  toString(): string {
    const info = [''];
    if (this.#tasks.size > 0) info.push(`tasks=${this.#tasks.size}`);
    if (this.#errors.length > 0) info.push(`errors=${this.#errors.length}`);
    if (this.#aborting) info.push('cancelling');
    else if (this.#entered) info.push('entered');
    return `<TaskGroup${info.join(' ')}>`;
  }

  #enter(): void {
    if (this.#entered) throw new InvalidStateError(`${this} has already been entered`);
    this.#loop ??= getRunningLoop();
    this.#parent = currentTask(this.#loop);
    if (this.#parent === null) throw new InvalidStateError(`${this} cannot determine the parent task`);
    this.#entered = true;
    if (this.#cancelOnEnter) this.cancel();
  }

  async #exit(failed: boolean, exc: unknown): Promise<void> {
    this.#exiting = true;
    const bodyCancelled = failed && isCancelledError(exc);
    let propagateCancel: unknown = bodyCancelled ? exc : null;
    if (failed && !this.#aborting) this.#abort();
    let pendingCancel: unknown = null;
    // A loop: the completion Future can be cancelled repeatedly if the parent is cancelled repeatedly.
    while (this.#tasks.size > 0) {
      this.#onCompleted ??= this.#loop!.createFuture<boolean>();
      try {
        await this.#onCompleted;
      } catch (e) {
        if (!isCancelledError(e)) throw e;
        pendingCancel = e;
        if (!this.#aborting) {
          // The parent is cancelled from outside while children still run.
          propagateCancel = e;
          this.#abort();
        }
      }
      this.#onCompleted = null;
    }
    const parent = this.#parent!;
    if (this.#parentCancelRequested) {
      // We cancelled the parent, so we must uncancel it.
      if (parent.uncancel() === 0) propagateCancel = null;
      else if (propagateCancel === null) propagateCancel = pendingCancel; // gh-155433: that cancel is not ours
    }
    const errors = this.#errors;
    if (propagateCancel !== null && errors.length === 0) throw propagateCancel;
    if (failed && !bodyCancelled) errors.push(exc);
    if (errors.length > 0) {
      // Cancelled from outside as well: un-cancel and re-cancel to keep the count stable.
      if (parent.cancelling() > 0) {
        parent.uncancel();
        parent.cancel();
      }
      this.#errors = [];
      throw new ErrorGroup('unhandled errors in a TaskGroup', errors);
    }
  }

  #abort(): void {
    this.#aborting = true;
    for (const t of this.#tasks) if (!t.done()) t.cancel();
  }

  #taskDone(task: Task<unknown>): void {
    this.#tasks.delete(task);
    const oc = this.#onCompleted;
    if (oc !== null && this.#tasks.size === 0 && !oc.done()) oc.setResult(true);
    if (task.cancelled()) return;
    const exc = task.exception();
    // The state, not `exc === null`: a child that throws null or undefined has failed too.
    if (task._state !== ERRORED) return;
    this.#errors.push(exc);
    const parent = this.#parent!;
    if (parent.done()) {
      this.#loop!.callExceptionHandler({
        message: `Task ${task} has errored out but its parent task ${parent} is already completed`,
        exception: exc,
        task,
      });
      return;
    }
    if (!this.#aborting && !this.#parentCancelRequested) {
      // Cancel the body (whatever it awaits now) and un-cancel it on exit.
      this.#abort();
      this.#parentCancelRequested = true;
      parent.cancel();
    }
  }
}
