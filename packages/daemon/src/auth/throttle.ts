import { TownError } from "@townos/format";
import type { Clock } from "../clock.js";

export interface ThrottleOptions {
  /** Failures allowed per source within the window. */
  maxFailures: number;
  windowMs: number;
  /** Sources remembered at most; the oldest are forgotten first (bounded memory). */
  maxSources?: number;
}

/**
 * Counts failed sign-ins per source address in a sliding window. While a
 * source is over the limit every attempt is refused before the password is
 * even checked.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly options: ThrottleOptions,
    private readonly clock: Clock,
  ) {}

  /** Throws `rate_limited`, with the seconds to wait, when the source must wait. */
  check(source: string): void {
    const recent = this.recent(source);
    if (recent.length >= this.options.maxFailures) {
      const oldest = recent[0] ?? this.clock();
      const retryAfter = Math.max(
        1,
        Math.ceil((oldest + this.options.windowMs - this.clock()) / 1000),
      );
      throw new TownError(
        "rate_limited",
        `too many failed sign-ins; try again in ${retryAfter} s`,
        {
          retryAfter,
        },
      );
    }
  }

  fail(source: string): void {
    const recent = this.recent(source);
    recent.push(this.clock());
    this.failures.delete(source);
    this.failures.set(source, recent);
    const max = this.options.maxSources ?? 10_000;
    for (const key of this.failures.keys()) {
      if (this.failures.size <= max) break;
      this.failures.delete(key);
    }
  }

  succeed(source: string): void {
    this.failures.delete(source);
  }

  private recent(source: string): number[] {
    const cutoff = this.clock() - this.options.windowMs;
    return (this.failures.get(source) ?? []).filter((at) => at > cutoff);
  }
}
