import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  shownState,
  backoffDelay,
  initialStatus,
  tailLines,
  transition,
  type ProcessEvent,
  type ProcessStatus,
  type RestartPolicy,
} from "./supervisor-state.js";

const policy: RestartPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 1_000,
  stableAfterMs: 10_000,
  failedAfter: 3,
};

function run(events: ProcessEvent[], from: ProcessStatus = initialStatus) {
  let status = from;
  const retries: (number | undefined)[] = [];
  for (const event of events) {
    const next = transition(status, event, policy);
    status = next.status;
    retries.push(next.retryInMs);
  }
  return { status, retries };
}

const exit = (at: number, code: number | null = 1) => ({ code, signal: null, at });

describe("backoffDelay", () => {
  it("starts at the initial delay, doubles with each failure in a row, and stops at the maximum", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 30].map((failures) => backoffDelay(failures, policy)),
      [100, 100, 200, 400, 800, 1_000, 1_000],
    );
  });
});

describe("transition", () => {
  it("a start, then running; an unexpected exit soon after schedules a restart", () => {
    const { status, retries } = run([
      { type: "starting" },
      { type: "started", pid: 42, origin: "started", at: 1_000 },
      { type: "exited", exit: exit(2_000), message: "died" },
    ]);
    assert.deepEqual(retries, [undefined, undefined, 100]);
    assert.equal(status.state, "restarting");
    assert.equal(status.pid, null);
    assert.equal(status.failures, 1);
    assert.deepEqual(status.lastExit, exit(2_000));
    assert.deepEqual(status.lastError, { message: "died", at: 2_000 });
  });

  it("counts restarts, backs off further with each failure, and is failed after three", () => {
    const { status, retries } = run([
      { type: "starting" },
      { type: "start-failed", message: "no program", at: 1 },
      { type: "restarting" },
      { type: "start-failed", message: "no program", at: 2 },
      { type: "restarting" },
      { type: "start-failed", message: "still none", at: 3 },
    ]);
    assert.deepEqual(retries, [undefined, 100, undefined, 200, undefined, 400]);
    assert.equal(status.state, "failed");
    assert.equal(status.restarts, 2);
    assert.equal(status.failures, 3);
    assert.deepEqual(status.lastError, { message: "still none", at: 3 });
  });

  it("a success clears the error but not the failures; a stable run forgets them", () => {
    const failing = run([
      { type: "start-failed", message: "a", at: 1 },
      { type: "start-failed", message: "b", at: 2 },
      { type: "started", pid: 7, origin: "started", at: 3 },
    ]).status;
    assert.equal(failing.state, "running");
    assert.equal(failing.lastError, null);
    assert.equal(failing.failures, 2);
    const crashSoon = run([{ type: "exited", exit: exit(5), message: "x" }], failing);
    assert.equal(crashSoon.status.state, "failed");
    assert.deepEqual(crashSoon.retries, [400]);
    const crashLate = run([{ type: "exited", exit: exit(3 + 10_000), message: "x" }], failing);
    assert.equal(crashLate.status.state, "restarting");
    assert.equal(crashLate.status.failures, 0);
    assert.deepEqual(crashLate.retries, [100]);
  });

  it("adopted keeps its origin; stopped forgets the process but not its history", () => {
    const adopted = run([{ type: "started", pid: 9, origin: "adopted", at: 1 }]).status;
    assert.equal(adopted.origin, "adopted");
    assert.equal(adopted.pid, 9);
    const stopped = run(
      [
        { type: "exited", exit: exit(2, null), message: "gone" },
        { type: "restarting" },
        { type: "started", pid: 10, origin: "started", at: 3 },
        { type: "stopped" },
      ],
      adopted,
    );
    assert.deepEqual(stopped.retries, [100, undefined, undefined, undefined]);
    assert.equal(stopped.status.state, "stopped");
    assert.equal(stopped.status.pid, null);
    assert.equal(stopped.status.origin, null);
    assert.equal(stopped.status.restarts, 1);
    assert.deepEqual(stopped.status.lastExit, exit(2, null));
  });
});

describe("tailLines", () => {
  it("keeps the last non-empty lines and drops a partial first line", () => {
    assert.deepEqual(tailLines("a\nb\n\nc\n", 2, false), ["b", "c"]);
    assert.deepEqual(tailLines("ial line\nwhole\n", 5, true), ["whole"]);
    assert.deepEqual(tailLines("", 3, false), []);
  });
});

describe("a supervised program's shown state", () => {
  it("says adopted for one found running, stopped once unwatched, else its own state", () => {
    assert.equal(shownState(true, { state: "running", origin: "adopted" }), "adopted");
    assert.equal(shownState(true, { state: "running", origin: "started" }), "running");
    assert.equal(shownState(true, { state: "restarting", origin: null }), "restarting");
    assert.equal(shownState(false, { state: "running", origin: "adopted" }), "stopped");
  });
});
