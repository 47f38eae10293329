import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { Manager, periodic, type Failure, type Reconciler } from "./manager.js";
import type { ReconcileResult } from "./queue.js";
import { deferred, manualTime } from "../../test/reconcile/time.js";

/** A reconciler that records each id it is given and answers what `next` says. */
function recorder(
  next: (id: string, run: number) => Promise<ReconcileResult | undefined> = () =>
    Promise.resolve(undefined),
) {
  const runs: string[] = [];
  const successes: string[] = [];
  const failures: { id: string; failure: Failure }[] = [];
  const reconciler: Reconciler = {
    reconcile: (id) => {
      runs.push(id);
      return next(id, runs.filter((seen) => seen === id).length);
    },
    onSuccess: (id) => {
      successes.push(id);
    },
    onError: (id, _error, failure) => {
      failures.push({ id, failure });
    },
  };
  return { reconciler, runs, successes, failures };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("Manager", () => {
  it("hands each key to its kind's reconciler as an id, which may hold slashes", async () => {
    const manager = new Manager();
    const apps = recorder();
    const network = recorder();
    manager.register("apps", apps.reconciler);
    manager.register("network", network.reconciler);
    manager.enqueue("apps/default/hello");
    manager.enqueue("network/box");
    await manager.idle();
    assert.deepEqual(apps.runs, ["default/hello"]);
    assert.deepEqual(apps.successes, ["default/hello"]);
    assert.deepEqual(network.runs, ["box"]);
  });

  it("refuses unknown kinds, keys that are not kind/id, and a kind registered twice", () => {
    const manager = new Manager();
    manager.register("apps", recorder().reconciler);
    assert.throws(() => {
      manager.enqueue("vms/one");
    }, /no kind vms/);
    assert.throws(() => {
      manager.enqueue("apps");
    }, /not a <kind>\/<id> key/);
    assert.throws(() => {
      manager.enqueue("apps/");
    }, /not a <kind>\/<id> key/);
    assert.throws(() => {
      manager.register("apps", recorder().reconciler);
    }, /registered already/);
    assert.throws(() => {
      manager.register("Apps/x", recorder().reconciler);
    }, /cannot name a kind/);
  });

  it("answers a request when a reconcile that started after it is done", async () => {
    const manager = new Manager();
    const gate = deferred();
    const { reconciler, runs } = recorder(async (_id, run) => {
      if (run === 1) await gate.promise;
      return undefined;
    });
    manager.register("apps", reconciler);
    manager.enqueue("apps/a");
    await tick();
    // The first pass is running: it started before this request, so it does not answer it.
    let answered = false;
    const request = manager.requestAndWait("apps/a").then((outcome) => {
      answered = true;
      return outcome;
    });
    await tick();
    assert.equal(answered, false);
    gate.resolve();
    assert.deepEqual(await request, { error: undefined, terminal: false });
    assert.deepEqual(runs, ["a", "a"]);
  });

  it("runs one key at a time: requests during a pass share one more pass", async () => {
    const manager = new Manager();
    const gate = deferred();
    let active = 0;
    let most = 0;
    const { reconciler, runs } = recorder(async () => {
      active += 1;
      most = Math.max(most, active);
      await gate.promise;
      active -= 1;
      return undefined;
    });
    manager.register("apps", reconciler, { concurrency: 4 });
    const first = manager.requestAndWait("apps/a");
    await tick();
    const later = [manager.requestAndWait("apps/a"), manager.requestAndWait("apps/a")];
    gate.resolve();
    await Promise.all([first, ...later]);
    assert.equal(most, 1);
    assert.deepEqual(runs, ["a", "a"]);
  });

  it("gives a terminal error to the request and parks the key until it is enqueued again", async () => {
    const time = manualTime();
    const manager = new Manager({ schedule: time.schedule });
    const error = new TownError("not_found", "no such image");
    const { reconciler, runs, failures } = recorder(() => Promise.reject(error));
    manager.register("apps", reconciler);
    assert.deepEqual(await manager.requestAndWait("apps/a"), { error, terminal: true });
    assert.deepEqual(failures, [
      { id: "a", failure: { attempt: 1, terminal: true, retryInMs: null } },
    ]);
    assert.deepEqual(time.pending(), []);
    time.advance(60 * 60_000);
    await manager.idle();
    assert.deepEqual(runs, ["a"]);
  });

  it("retries other errors with backoff, and clears the failure count once a pass succeeds", async () => {
    const time = manualTime();
    const manager = new Manager({ schedule: time.schedule });
    const { reconciler, runs, failures, successes } = recorder((_id, run) =>
      run < 3 ? Promise.reject(new Error("disk on fire")) : Promise.resolve(undefined),
    );
    manager.register("apps", reconciler, { baseDelayMs: 100 });
    const outcome = await manager.requestAndWait("apps/a");
    assert.ok(outcome);
    assert.equal(outcome.terminal, false);
    assert.match(String(outcome.error), /disk on fire/);
    assert.deepEqual(time.pending(), [100]);
    time.advance(100);
    await manager.idle();
    assert.deepEqual(time.pending(), [200]);
    time.advance(200);
    await manager.idle();
    assert.deepEqual(
      failures.map(({ failure }) => failure.retryInMs),
      [100, 200],
    );
    assert.deepEqual(runs, ["a", "a", "a"]);
    assert.deepEqual(successes, ["a"]);
    assert.deepEqual(time.pending(), []);
  });

  it("reconciles again after the delay a result asks for", async () => {
    const time = manualTime();
    const manager = new Manager({ schedule: time.schedule });
    const { reconciler, runs } = recorder((_id, run) =>
      Promise.resolve(run === 1 ? { requeueAfterMs: 5_000 } : undefined),
    );
    manager.register("apps", reconciler);
    await manager.requestAndWait("apps/a");
    assert.deepEqual(time.pending(), [5_000]);
    time.advance(4_999);
    await manager.idle();
    assert.deepEqual(runs, ["a"]);
    time.advance(1);
    await manager.idle();
    assert.deepEqual(runs, ["a", "a"]);
    assert.deepEqual(time.pending(), []);
  });

  it("answers undefined when no pass finished in time, and forgets the waiter", async () => {
    const time = manualTime();
    const manager = new Manager({ schedule: time.schedule });
    const gate = deferred();
    const { reconciler } = recorder(async () => {
      await gate.promise;
      return undefined;
    });
    manager.register("apps", reconciler);
    const request = manager.requestAndWait("apps/a", 1_000);
    await tick();
    time.advance(1_000);
    assert.equal(await request, undefined);
    gate.resolve();
    await manager.idle();
    // A later request is answered by its own pass, not by the stale waiter.
    assert.deepEqual(await manager.requestAndWait("apps/a", 1_000), {
      error: undefined,
      terminal: false,
    });
  });

  it("stops one kind: its sources end, running passes finish, waiting requests get undefined", async () => {
    const time = manualTime();
    const manager = new Manager({ schedule: time.schedule });
    const gate = deferred();
    const apps = recorder(async (_id, run) => {
      if (run === 1) await gate.promise;
      return undefined;
    });
    const network = recorder();
    manager.register("apps", apps.reconciler);
    manager.register("network", network.reconciler);
    let ticks = 0;
    manager.watch(
      "apps",
      periodic(
        1_000,
        (enqueue) => {
          ticks += 1;
          enqueue("apps/b");
        },
        time.schedule,
      ),
    );
    const running = manager.requestAndWait("apps/a");
    await tick();
    // Asked for while the first pass runs: it would need a second pass, which never comes.
    const queued = manager.requestAndWait("apps/a");
    let stopped = false;
    const stopping = manager.stop("apps").then(() => {
      stopped = true;
    });
    await tick();
    assert.equal(stopped, false, "stop waits for the running pass");
    gate.resolve();
    await stopping;
    assert.deepEqual(await running, { error: undefined, terminal: false });
    assert.equal(await queued, undefined);
    time.advance(10_000);
    assert.equal(ticks, 0);
    manager.enqueue("apps/c");
    assert.equal(await manager.requestAndWait("apps/c"), undefined);
    assert.deepEqual(apps.runs, ["a"]);
    // The other kind goes on.
    await manager.requestAndWait("network/box");
    assert.deepEqual(network.runs, ["box"]);
    await manager.stop();
  });

  it("feeds keys from a periodic source on every tick", async () => {
    const time = manualTime();
    const manager = new Manager({ schedule: time.schedule });
    const { reconciler, runs } = recorder();
    manager.register("apps", reconciler);
    manager.watch(
      "apps",
      periodic(
        60_000,
        (enqueue) => {
          enqueue("apps/a");
          enqueue("apps/b");
        },
        time.schedule,
      ),
    );
    await manager.idle();
    assert.deepEqual(runs, []);
    time.advance(60_000);
    await manager.idle();
    time.advance(60_000);
    await manager.idle();
    assert.deepEqual(runs, ["a", "b", "a", "b"]);
    await manager.stop();
    assert.deepEqual(time.pending(), []);
  });
});
