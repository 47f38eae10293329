/**
 * A supervisor's watch: runs `task` every `intervalMs` after the previous run
 * ends (never two at once, never piling up behind a slow one), under the
 * owner's mutex so that it never overlaps the owner's other steps. Its timer
 * does not keep the process alive: the daemon's server does.
 */
import type { Mutex } from "./mutex.js";

export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  /** `task` reports its own failures (status, log); one that throws is still run again. */
  constructor(
    private readonly intervalMs: number,
    private readonly mutex: Mutex,
    private readonly task: () => Promise<void>,
  ) {}

  /** Runs the task after one interval, then after each run; idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** No run starts after this; one under way ends on its own. Idempotent. */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (!this.running) return;
    // A run that ends after a stop and a start must not leave a second timer.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.mutex
        .run(this.task)
        .catch(() => undefined)
        .finally(() => {
          this.schedule();
        });
    }, this.intervalMs);
    this.timer.unref();
  }
}
