import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Mutex } from "./mutex.js";
import { Periodic } from "./periodic.js";

describe("Periodic", () => {
  it("runs again after each run, under the mutex, after a throw too, and not after stop", async () => {
    const mutex = new Mutex();
    let runs = 0;
    let ownerHolds = false;
    let overlaps = 0;
    const periodic = new Periodic(5, mutex, async () => {
      runs += 1;
      if (ownerHolds) overlaps += 1;
      await sleep(5);
      if (runs === 1) throw new Error("the task's own failure");
    });
    periodic.start();
    periodic.start();
    // The owner's step holds the mutex: no run starts inside it.
    await mutex.run(async () => {
      ownerHolds = true;
      await sleep(30);
      ownerHolds = false;
    });
    assert.equal(overlaps, 0);
    const until = Date.now() + 2_000;
    while (runs < 3 && Date.now() < until) await sleep(5);
    assert.ok(runs >= 3, `ran ${String(runs)} times`);
    periodic.stop();
    await sleep(20);
    const stopped = runs;
    await sleep(50);
    assert.equal(runs, stopped);
  });
});
