/**
 * The reconcile manager, shaped like controller-runtime's: each kind of
 * object (`apps`, `network`; later `vms`, `pages`, `backups`, `state`)
 * registers a reconciler and gets its own work queue; every object has a
 * key `<kind>/<id>`; sources (timers, runtime events, store changes)
 * enqueue keys; and a request can wait for the reconcile that answers it.
 *
 * A reconcile returns a result: done (undefined), or look again after a
 * while (`requeueAfterMs`). It fails by throwing: a TownError whose code
 * says retrying cannot help (`terminal`) is parked until the key is
 * enqueued again; any other error is retried with backoff.
 */
import { realScheduler, WorkQueue, type ReconcileResult, type Scheduler } from "./queue.js";

/** How a failed reconcile goes on. */
export interface Failure {
  attempt: number;
  terminal: boolean;
  /** Null for a terminal error: not retried until enqueued again. */
  retryInMs: number | null;
}

/** Converges one kind of object; `id` is the key without its `<kind>/`. Must be idempotent. */
export interface Reconciler {
  reconcile(id: string): Promise<ReconcileResult | undefined>;
  /** Told when the object reconciled cleanly (a recorded error can be cleared). */
  onSuccess?(id: string): void;
  /** Told about every failure. */
  onError?(id: string, error: unknown, failure: Failure): void;
}

export interface KindOptions {
  /** Objects of this kind reconciled at once (never one object twice at once). Default 4. */
  concurrency?: number;
  /** First retry delay after a failure; doubles per failure up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** How the reconcile a request waited for ended: `error` is undefined when it succeeded. */
export interface Outcome {
  error: unknown;
  terminal: boolean;
}

/**
 * Something that enqueues keys (a timer, an event stream, a store's change
 * listener) until `signal` aborts, which happens when its kind stops.
 */
export type Source = (enqueue: (key: string) => void, signal: AbortSignal) => void;

export interface ManagerOptions {
  /** Injected so tests control time (retries, requeues, waits, periodic sources). */
  schedule?: Scheduler;
}

interface Waiter {
  generation: number;
  resolve: (outcome: Outcome | undefined) => void;
}

interface Kind {
  queue: WorkQueue;
  /** Aborted when the kind stops: its sources end, and requests are answered at once. */
  sources: AbortController;
}

const KIND = /^[a-z][a-z0-9-]*$/;

export class Manager {
  private readonly kinds = new Map<string, Kind>();
  /** Per key: the number of the latest request; waiters wait for a reconcile that started after theirs. */
  private readonly requested = new Map<string, number>();
  /** Per key: the request number the running (or last) reconcile started at. */
  private readonly started = new Map<string, number>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly schedule: Scheduler;

  constructor(options: ManagerOptions = {}) {
    this.schedule = options.schedule ?? realScheduler;
  }

  /** Adds a kind: keys `<kind>/<id>` are reconciled by `reconciler`. @throws on a taken or malformed kind */
  register(kind: string, reconciler: Reconciler, options: KindOptions = {}): void {
    if (!KIND.test(kind)) throw new Error(`"${kind}" cannot name a kind`);
    if (this.kinds.has(kind)) throw new Error(`the kind ${kind} is registered already`);
    const id = (key: string): string => key.slice(kind.length + 1);
    const queue = new WorkQueue({
      reconcile: (key) => {
        this.started.set(key, this.requested.get(key) ?? 0);
        return reconciler.reconcile(id(key));
      },
      onSuccess: (key) => {
        reconciler.onSuccess?.(id(key));
        this.settle(key, { error: undefined, terminal: false });
      },
      onError: (key, error, failure) => {
        reconciler.onError?.(id(key), error, failure);
        this.settle(key, { error, terminal: failure.terminal });
      },
      schedule: this.schedule,
      ...options,
    });
    this.kinds.set(kind, { queue, sources: new AbortController() });
  }

  /** Starts a source feeding keys until the kind stops. */
  watch(kind: string, source: Source): void {
    source((key) => {
      this.enqueue(key);
    }, this.kind(kind).sources.signal);
  }

  /** Asks for the key to be reconciled, now or after `delayMs`. Cheap and idempotent. */
  enqueue(key: string, delayMs = 0): void {
    this.kindOf(key).queue.enqueue(key, delayMs);
  }

  /**
   * Enqueues the key and waits for a reconcile of it that started after
   * this call. Undefined when none finished within `waitMs`, or the kind stopped.
   */
  async requestAndWait(key: string, waitMs = Infinity): Promise<Outcome | undefined> {
    const { queue, sources } = this.kindOf(key);
    if (sources.signal.aborted) return undefined;
    const generation = (this.requested.get(key) ?? 0) + 1;
    this.requested.set(key, generation);
    let cancel = (): void => undefined;
    const finished = new Promise<Outcome | undefined>((resolve) => {
      const waiter: Waiter = { generation, resolve };
      this.waiters.set(key, [...(this.waiters.get(key) ?? []), waiter]);
      if (waitMs === Infinity) return;
      cancel = this.schedule(() => {
        this.drop(key, waiter);
        resolve(undefined);
      }, waitMs);
    });
    queue.enqueue(key);
    try {
      return await finished;
    } finally {
      cancel();
    }
  }

  /** Resolves when nothing of the kind (or of any kind) is queued or running; retries waiting do not count. */
  async idle(kind?: string): Promise<void> {
    const kinds = kind === undefined ? [...this.kinds.values()] : [this.kind(kind)];
    await Promise.all(kinds.map(({ queue }) => queue.idle()));
  }

  /**
   * Stops the kind (or every kind): its sources end, it takes no more work,
   * running reconciles finish, and requests still waiting get undefined.
   */
  async stop(kind?: string): Promise<void> {
    const names = kind === undefined ? [...this.kinds.keys()] : [kind];
    await Promise.all(
      names.map(async (name) => {
        const { queue, sources } = this.kind(name);
        sources.abort();
        await queue.stop();
        for (const [key, waiting] of this.waiters) {
          if (!key.startsWith(`${name}/`)) continue;
          this.waiters.delete(key);
          for (const waiter of waiting) waiter.resolve(undefined);
        }
      }),
    );
  }

  /** Resolves the waiters of the key whose request came before the reconcile that just ended. */
  private settle(key: string, outcome: Outcome): void {
    const seen = this.started.get(key) ?? 0;
    const waiting = (this.waiters.get(key) ?? []).filter((waiter) => {
      if (waiter.generation > seen) return true;
      waiter.resolve(outcome);
      return false;
    });
    if (waiting.length > 0) this.waiters.set(key, waiting);
    else this.waiters.delete(key);
  }

  private drop(key: string, waiter: Waiter): void {
    const waiting = (this.waiters.get(key) ?? []).filter((other) => other !== waiter);
    if (waiting.length > 0) this.waiters.set(key, waiting);
    else this.waiters.delete(key);
  }

  private kindOf(key: string): Kind {
    const slash = key.indexOf("/");
    if (slash <= 0 || slash === key.length - 1)
      throw new Error(`"${key}" is not a <kind>/<id> key`);
    return this.kind(key.slice(0, slash));
  }

  private kind(name: string): Kind {
    const kind = this.kinds.get(name);
    if (!kind) throw new Error(`no kind ${name} is registered`);
    return kind;
  }
}

/**
 * A source that calls `tick` every `ms` until its kind stops: a periodic
 * resync that enqueues every object of a kind, say.
 */
export function periodic(
  ms: number,
  tick: (enqueue: (key: string) => void) => void,
  schedule: Scheduler = realScheduler,
): Source {
  return (enqueue, signal) => {
    let cancel = (): void => undefined;
    const next = (): void => {
      cancel = schedule(() => {
        if (signal.aborted) return;
        tick(enqueue);
        next();
      }, ms);
    };
    signal.addEventListener("abort", () => {
      cancel();
    });
    if (!signal.aborted) next();
  };
}
