/** Test helpers for the work queue and the reconcile manager: time and promises the test drives. */
import type { Scheduler } from "../../src/reconcile/queue.js";

/** A scheduler whose clock moves only when the test says so. */
export function manualTime() {
  let now = 0;
  const timers: { at: number; run: () => void; cancelled: boolean }[] = [];
  const schedule: Scheduler = (run, ms) => {
    const timer = { at: now + ms, run, cancelled: false };
    timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };
  const advance = (ms: number): void => {
    now += ms;
    for (const timer of timers.filter((t) => !t.cancelled && t.at <= now)) {
      timer.cancelled = true;
      timer.run();
    }
  };
  return {
    schedule,
    advance,
    pending: () => timers.filter((t) => !t.cancelled).map((t) => t.at - now),
  };
}

/** A promise and the function that resolves it, for holding a run until the test lets go. */
export function deferred() {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}
