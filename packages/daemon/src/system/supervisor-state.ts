/**
 * The pure half of the process supervisor (supervisor.ts): its status, how
 * each event changes it, and when the next start is due. No clocks, timers
 * or processes here, so every transition is tested directly.
 */

/**
 * `starting`: a start was asked for and has not answered yet; `running`:
 * up (started or adopted); `restarting`: down, a start is due; `failed`:
 * several starts in a row failed (still retrying, slower); `stopped`: not
 * watched (stopped, detached, or never started).
 */
export type ProcessState = "stopped" | "starting" | "running" | "restarting" | "failed";

export interface ProcessExit {
  /** null when killed by a signal, or when an adopted process vanished (no status to read). */
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

export interface ProcessStatus {
  state: ProcessState;
  pid: number | null;
  /** `started` by this supervisor, or `adopted` from the pid file. */
  origin: "started" | "adopted" | null;
  /** Starts after the first: retries after a crash or a failed start. */
  restarts: number;
  /** Failures since the process last ran stably; sets the backoff. */
  failures: number;
  startedAt: number | null;
  lastExit: ProcessExit | null;
  lastError: { message: string; at: number } | null;
}

/**
 * A supervised program's state as its status shows it: `adopted` for one
 * found running, `stopped` once nobody watches it any more.
 */
export function shownState(
  watching: boolean,
  status: Pick<ProcessStatus, "state" | "origin">,
): ProcessState | "adopted" {
  if (!watching) return "stopped";
  return status.state === "running" && status.origin === "adopted" ? "adopted" : status.state;
}

export interface RestartPolicy {
  /** First delay before a restart; doubles with each failure in a row. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** A process that ran this long before exiting was healthy: its failures are forgotten. */
  stableAfterMs: number;
  /** This many failures in a row make the state `failed`. */
  failedAfter: number;
}

export type ProcessEvent =
  | { type: "starting" }
  | { type: "started"; pid: number; origin: "started" | "adopted"; at: number }
  /** A start that did not come up (could not spawn, exited before ready, timed out). */
  | { type: "start-failed"; message: string; at: number }
  /** The running process is gone without being asked to. */
  | { type: "exited"; exit: ProcessExit; message: string }
  /** A due restart begins. */
  | { type: "restarting" }
  | { type: "stopped" };

export const initialStatus: ProcessStatus = {
  state: "stopped",
  pid: null,
  origin: null,
  restarts: 0,
  failures: 0,
  startedAt: null,
  lastExit: null,
  lastError: null,
};

/** The wait before the next start after `failures` failures in a row. */
export function backoffDelay(failures: number, policy: RestartPolicy): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, failures - 1));
}

/**
 * The status after `event`, and `retryInMs` when a restart is to be
 * scheduled: after an unexpected exit, and after a failed start.
 */
export function transition(
  status: ProcessStatus,
  event: ProcessEvent,
  policy: RestartPolicy,
): { status: ProcessStatus; retryInMs?: number } {
  switch (event.type) {
    case "starting":
      return { status: { ...status, state: "starting" } };
    case "restarting":
      return { status: { ...status, restarts: status.restarts + 1 } };
    case "started":
      return {
        status: {
          ...status,
          state: "running",
          pid: event.pid,
          origin: event.origin,
          startedAt: event.at,
          lastError: null,
        },
      };
    case "start-failed":
      return down(status, status.failures + 1, { message: event.message, at: event.at }, policy);
    case "exited": {
      const ranFor = event.exit.at - (status.startedAt ?? event.exit.at);
      const failures = ranFor >= policy.stableAfterMs ? 0 : status.failures + 1;
      const lastError = { message: event.message, at: event.exit.at };
      const next = down(status, failures, lastError, policy);
      return { ...next, status: { ...next.status, lastExit: event.exit } };
    }
    case "stopped":
      return { status: { ...status, state: "stopped", pid: null, origin: null, startedAt: null } };
  }
}

function down(
  status: ProcessStatus,
  failures: number,
  lastError: ProcessStatus["lastError"],
  policy: RestartPolicy,
): { status: ProcessStatus; retryInMs: number } {
  return {
    status: {
      ...status,
      state: failures >= policy.failedAfter ? "failed" : "restarting",
      pid: null,
      origin: null,
      startedAt: null,
      failures,
      lastError,
    },
    retryInMs: backoffDelay(failures, policy),
  };
}

/** The last `maxLines` non-empty lines of `text` (a log's tail, read as bytes, may start mid-line). */
export function tailLines(text: string, maxLines: number, partialFirst: boolean): string[] {
  const lines = text.split("\n");
  if (partialFirst) lines.shift();
  return lines
    .map((line) => line.trimEnd())
    .filter((line) => line !== "")
    .slice(-maxLines);
}
