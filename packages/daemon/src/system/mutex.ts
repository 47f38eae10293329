/**
 * In-process mutual exclusion. `Mutex` runs work one call at a time, in the
 * order of the calls; `KeyedLock` does so per key (a volume, a directory),
 * with other keys in parallel. A failing holder releases like any other.
 */

/** Gives the lock back; calling it again does nothing. */
export type Release = () => void;

export class Mutex {
  /** Settles once the last caller so far has released. */
  private tail: Promise<void> = Promise.resolve();

  /**
   * Waits until every earlier caller has released, then holds the lock until
   * `release` is called (which may be later than the caller's own work, e.g.
   * until work that ignored an abort has settled).
   * @throws the signal's reason when it aborts while waiting (the lock is not held then).
   */
  async acquire(signal?: AbortSignal): Promise<Release> {
    const previous = this.tail;
    let resolve: () => void = () => undefined;
    const mine = new Promise<void>((done) => {
      resolve = done;
    });
    this.tail = previous.then(() => mine);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      resolve();
    };
    try {
      await (signal === undefined ? previous : untilAborted(previous, signal));
    } catch (error) {
      // Our turn still comes after `previous`: the callers behind us keep their order.
      release();
      throw error;
    }
    return release;
  }

  /** Runs `work` once every earlier call has finished. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Resolves once every call made so far has finished (never rejects). */
  idle(): Promise<void> {
    return this.tail;
  }
}

/** Mutexes by key, made on first use and dropped when nobody holds or waits for them. */
export class KeyedLock {
  private readonly locks = new Map<string, { mutex: Mutex; users: number }>();

  /** Holds `key` (see `Mutex.acquire`). */
  async acquire(key: string, signal?: AbortSignal): Promise<Release> {
    let entry = this.locks.get(key);
    if (entry === undefined) {
      entry = { mutex: new Mutex(), users: 0 };
      this.locks.set(key, entry);
    }
    const held = entry;
    held.users += 1;
    const leave = (): void => {
      held.users -= 1;
      if (held.users === 0) this.locks.delete(key);
    };
    let release: Release;
    try {
      release = await held.mutex.acquire(signal);
    } catch (error) {
      leave();
      throw error;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      leave();
    };
  }

  /**
   * Runs `work` holding every key. Several keys are taken in sorted order,
   * so two callers never wait on each other.
   */
  async run<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const releases: Release[] = [];
    try {
      for (const key of sorted) releases.push(await this.acquire(key));
      return await work();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  /** Resolves once no key is held or waited for (shutdown waits for running work). */
  async idle(): Promise<void> {
    while (this.locks.size > 0)
      await Promise.all([...this.locks.values()].map(({ mutex }) => mutex.idle()));
  }

  /** Keys held or waited for (tests: nothing is kept once all is released). */
  get size(): number {
    return this.locks.size;
  }
}

/** `promise`, or the signal's reason once it aborts first. */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(toError(signal.reason));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      reject(toError(signal.reason));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}
