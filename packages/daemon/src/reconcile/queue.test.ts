import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { WorkQueue } from "./queue.js";
import { deferred, manualTime } from "../../test/reconcile/time.js";

describe("WorkQueue", () => {
  it("runs each key once however often it is enqueued while waiting", async () => {
    const gate = deferred();
    const runs: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      reconcile: async (key) => {
        runs.push(key);
        if (key === "first") await gate.promise;
        return undefined;
      },
    });
    queue.enqueue("first");
    for (const key of ["a", "b", "a", "a", "b"]) queue.enqueue(key);
    gate.resolve();
    await queue.idle();
    assert.deepEqual(runs, ["first", "a", "b"]);
  });

  it("never runs one key twice at once, and runs it again if it changed meanwhile", async () => {
    const gate = deferred();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const queue = new WorkQueue({
      concurrency: 4,
      reconcile: async () => {
        runs += 1;
        active += 1;
        maxActive = Math.max(maxActive, active);
        if (runs === 1) await gate.promise;
        active -= 1;
        return undefined;
      },
    });
    queue.enqueue("app");
    queue.enqueue("app"); // waits: "app" runs already
    queue.enqueue("app");
    gate.resolve();
    await queue.idle();
    assert.equal(maxActive, 1);
    assert.equal(runs, 2);
  });

  it("backs off exponentially on errors and forgets failures after a success", async () => {
    const time = manualTime();
    const failures: (number | null)[] = [];
    let fail = 3;
    const queue = new WorkQueue({
      baseDelayMs: 100,
      maxDelayMs: 300,
      schedule: time.schedule,
      reconcile: () =>
        fail-- > 0
          ? Promise.reject(new Error("podman is not answering"))
          : Promise.resolve(undefined),
      onError: (_key, _error, failure) => failures.push(failure.retryInMs),
    });
    queue.enqueue("app");
    await queue.idle();
    assert.deepEqual(time.pending(), [100]);
    time.advance(100);
    await queue.idle();
    time.advance(200);
    await queue.idle();
    assert.deepEqual(time.pending(), [300]);
    time.advance(300);
    await queue.idle();
    assert.deepEqual(failures, [100, 200, 300]);
    assert.deepEqual(time.pending(), []);
  });

  it("parks a key after a terminal error until it is enqueued again", async () => {
    const time = manualTime();
    const seen: boolean[] = [];
    let runs = 0;
    const queue = new WorkQueue({
      schedule: time.schedule,
      reconcile: () => {
        runs += 1;
        return Promise.reject(
          new TownError("invalid_package", "image: not a valid image reference"),
        );
      },
      onError: (_key, _error, failure) => seen.push(failure.terminal),
    });
    queue.enqueue("app");
    await queue.idle();
    time.advance(10 * 60_000);
    await queue.idle();
    assert.equal(runs, 1);
    assert.deepEqual(seen, [true]);
    queue.enqueue("app");
    await queue.idle();
    assert.equal(runs, 2);
  });

  it("requeues on request and lets an immediate enqueue overtake a delayed one", async () => {
    const time = manualTime();
    let runs = 0;
    const queue = new WorkQueue({
      schedule: time.schedule,
      reconcile: () => {
        runs += 1;
        return Promise.resolve(runs === 1 ? { requeueAfterMs: 5000 } : undefined);
      },
    });
    queue.enqueue("app");
    await queue.idle();
    assert.deepEqual(time.pending(), [5000]);
    queue.enqueue("app");
    await queue.idle();
    assert.equal(runs, 2);
    assert.deepEqual(time.pending(), []);
  });

  it("stops taking work and waits for what runs", async () => {
    const gate = deferred();
    const done: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      reconcile: async (key) => {
        await gate.promise;
        done.push(key);
        return undefined;
      },
    });
    queue.enqueue("a");
    queue.enqueue("b");
    const stopping = queue.stop();
    queue.enqueue("c");
    gate.resolve();
    await stopping;
    assert.deepEqual(done, ["a"]);
    assert.equal(queue.depth, 0);
  });
});
