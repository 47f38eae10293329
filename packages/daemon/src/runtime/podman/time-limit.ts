/**
 * The time limit every libpod call has: a timer joined with the caller's
 * signal, and the error a stream call gives when the limit ran out.
 */
import { TownError } from "@townos/format";
import { inContext } from "./params.js";

export class TimeLimit {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  /** Aborts when the limit runs out or the caller's signal aborts. */
  readonly signal: AbortSignal;

  constructor(
    readonly ms: number,
    callerSignal?: AbortSignal,
  ) {
    this.timer = setTimeout(() => {
      this.controller.abort();
    }, ms);
    this.signal = callerSignal
      ? AbortSignal.any([callerSignal, this.controller.signal])
      : this.controller.signal;
  }

  /** Whether the limit ran out (or `end` was called). */
  get expired(): boolean {
    return this.controller.signal.aborted;
  }

  /** Stops the clock. */
  clear(): void {
    clearTimeout(this.timer);
  }

  /** Stops the clock and aborts the signal, ending a stream nobody reads any more. */
  end(): void {
    clearTimeout(this.timer);
    this.controller.abort();
  }
}

/** A stream call's error: `unavailable` when its limit ran out, else the error in the call's context. */
export function streamError(error: unknown, context: string, limit: TimeLimit): TownError {
  if (limit.expired) {
    return new TownError("unavailable", `podman: ${context}: not done within ${limit.ms} ms`);
  }
  return inContext(error, context);
}
