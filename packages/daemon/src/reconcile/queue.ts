import { isTownError } from "@townos/format";

/** What one reconcile of a key asks for next. */
export interface ReconcileResult {
  /** Look again after this long even without a change (e.g. waiting for a container to get healthy). */
  requeueAfterMs?: number;
}

export type ReconcileFn = (key: string) => Promise<ReconcileResult | undefined>;

/** Schedules `run` after `ms`; returns a cancel function. Injected so tests control time. */
export type Scheduler = (run: () => void, ms: number) => () => void;

export const realScheduler: Scheduler = (run, ms) => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return () => {
    clearTimeout(timer);
  };
};

export interface QueueOptions {
  reconcile: ReconcileFn;
  /** Keys reconciled at the same time (never the same key twice at once). */
  concurrency?: number;
  /** First retry delay after a failure; doubles per failure up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  schedule?: Scheduler;
  /**
   * Told about every failure: `terminal` ones (a TownError whose code says
   * retrying the same input cannot help) are not retried until the key is
   * enqueued again, e.g. because its desired state changed.
   */
  onError?: (
    key: string,
    error: unknown,
    failure: { attempt: number; terminal: boolean; retryInMs: number | null },
  ) => void;
  /** Told when a key reconciled cleanly, so a recorded error can be cleared. */
  onSuccess?: (key: string) => void;
}

/**
 * A level-based work queue of keys, shaped like controller-runtime's:
 * de-duplicated (a key waits in the queue at most once), one worker per key
 * at a time (a key enqueued while it runs is run once more afterwards),
 * exponential backoff on errors, terminal errors parked until the next
 * change. Reconcilers must be idempotent: they compare desired with actual
 * state and may run any number of times.
 */
export class WorkQueue {
  private readonly ready: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  /** Keys enqueued while they ran: run again when done. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, () => void>();
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly schedule: Scheduler;

  constructor(private readonly options: QueueOptions) {
    this.concurrency = options.concurrency ?? 4;
    this.baseDelayMs = options.baseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    this.schedule = options.schedule ?? realScheduler;
  }

  /** Asks for `key` to be reconciled, now or after `delayMs`. Cheap and idempotent. */
  enqueue(key: string, delayMs = 0): void {
    if (this.stopped) return;
    if (delayMs > 0) {
      // The earlier of two delayed requests wins; an immediate one cancels both.
      if (this.delayed.has(key) || this.queued.has(key)) return;
      const cancel = this.schedule(() => {
        this.delayed.delete(key);
        this.enqueue(key);
      }, delayMs);
      this.delayed.set(key, cancel);
      return;
    }
    this.delayed.get(key)?.();
    this.delayed.delete(key);
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.ready.push(key);
    this.pump();
  }

  /** Number of keys waiting or running: for status pages and tests. */
  get depth(): number {
    return this.queued.size + this.running.size + this.delayed.size;
  }

  /** Resolves when nothing is queued or running (delayed retries do not count). */
  idle(): Promise<void> {
    if (this.queued.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking work and waits for the running reconciles to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const cancel of this.delayed.values()) cancel();
    this.delayed.clear();
    this.ready.length = 0;
    this.queued.clear();
    await this.idle();
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift();
      if (key === undefined) break;
      this.queued.delete(key);
      this.running.add(key);
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    let requeueAfterMs: number | undefined;
    try {
      requeueAfterMs = (await this.options.reconcile(key))?.requeueAfterMs;
      this.failures.delete(key);
      this.options.onSuccess?.(key);
    } catch (error) {
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      const terminal = isTownError(error) && error.terminal;
      const retryInMs = terminal
        ? null
        : Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
      this.options.onError?.(key, error, { attempt, terminal, retryInMs });
      if (retryInMs !== null) requeueAfterMs = retryInMs;
    } finally {
      this.running.delete(key);
    }
    if (this.dirty.delete(key)) this.enqueue(key);
    else if (requeueAfterMs !== undefined) this.enqueue(key, requeueAfterMs);
    this.pump();
    if (this.queued.size === 0 && this.running.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
