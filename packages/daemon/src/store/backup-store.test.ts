import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { BackupPolicies, policyView } from "./backup-policies.js";
import { BackupRuns, INTERRUPTED, KEPT_RUNS, runView } from "./backup-runs.js";
import { openDatabase } from "./database.js";

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

function ok(restorePoint: string, bytes: number | null, finishedAt: number) {
  return { state: "ok" as const, error: null, restorePoint, bytes, finishedAt };
}

function failed(error: string, finishedAt: number) {
  return { state: "failed" as const, error, restorePoint: null, bytes: null, finishedAt };
}

describe("BackupPolicies", () => {
  it("sets (replacing), gets, lists by subject and removes policies", () => {
    const db = openDatabase(":memory:");
    const { clock, advance } = fakeClock();
    const policies = new BackupPolicies(db, clock);
    const wiki = policies.set({
      subject: "main/wiki",
      schedule: " 0  3 * * * ",
      keep: { daily: 7, weekly: 4 },
      targets: ["usb", "usb", "offsite"],
    });
    assert.deepEqual(wiki, {
      subject: "main/wiki",
      schedule: "0 3 * * *",
      keep: { daily: 7, weekly: 4 },
      targets: ["usb", "offsite"],
      createdAt: clock(),
    });
    policies.set({ subject: "data", schedule: "@hourly", keep: { hourly: 24 }, targets: [] });
    assert.deepEqual(policies.get("main/wiki"), wiki);
    assert.deepEqual(
      policies.list().map((p) => p.subject),
      ["data", "main/wiki"],
    );

    advance(60_000);
    const changed = policies.set({
      subject: "main/wiki",
      schedule: "@daily",
      keep: { last: 3 },
      targets: [],
    });
    assert.equal(changed.createdAt, clock());
    assert.deepEqual(policies.get("main/wiki"), changed);
    assert.equal(policies.list().length, 2);

    assert.equal(policies.remove("main/wiki"), true);
    assert.equal(policies.remove("main/wiki"), false);
    assert.equal(policies.get("main/wiki"), undefined);
  });

  it("refuses a bad schedule or a keep policy that keeps nothing, storing nothing", () => {
    const policies = new BackupPolicies(openDatabase(":memory:"), fakeClock().clock);
    for (const bad of [
      { subject: "x", schedule: "0 0 3 * * *", keep: { daily: 1 }, targets: [] },
      { subject: "x", schedule: "@daily", keep: { daily: 0 }, targets: [] },
    ]) {
      assert.throws(
        () => policies.set(bad),
        (e) => e instanceof TownError && e.code === "invalid_argument",
      );
    }
    assert.deepEqual(policies.list(), []);
  });

  it("shows a policy with its next run and last run", () => {
    const policy = {
      subject: "main/wiki",
      schedule: "@daily",
      keep: { daily: 7 },
      targets: ["usb"],
      createdAt: 5,
    };
    assert.deepEqual(policyView(policy, 86_400_000, { at: 9, ok: true, error: null }), {
      subject: "main/wiki",
      schedule: "@daily",
      keep: { daily: 7 },
      targets: ["usb"],
      nextRunAt: 86_400_000,
      lastRun: { at: 9, ok: true, error: null },
    });
  });
});

describe("BackupRuns", () => {
  it("records a run from start to finish and lists runs newest first", () => {
    const db = openDatabase(":memory:");
    const { clock, advance } = fakeClock();
    const runs = new BackupRuns(db, clock);
    const first = runs.start("main/wiki", "usb", "schedule");
    const started = clock();
    assert.deepEqual(runs.get(first), {
      id: first,
      subject: "main/wiki",
      target: "usb",
      trigger: "schedule",
      state: "running",
      error: null,
      restorePoint: null,
      bytes: null,
      startedAt: started,
      finishedAt: null,
    });
    const run = runs.get(first);
    assert.ok(run);
    assert.equal(runView(run, "sending (40 %)").step, "sending (40 %)");
    advance(1000);
    runs.finish(first, ok("20260315T030000Z-schedule", 1234, clock()));
    const done = runs.get(first);
    assert.ok(done);
    assert.deepEqual(runView(done, "stale step"), {
      ...done,
      state: "ok",
      restorePoint: "20260315T030000Z-schedule",
      bytes: 1234,
      finishedAt: started + 1000,
      step: null,
    });
    advance(1000);
    const second = runs.start("data", null, "manual");
    assert.deepEqual(
      runs.list().map((r) => r.id),
      [second, first],
    );
    assert.deepEqual(
      runs.list(1).map((r) => r.id),
      [second],
    );
  });

  it("answers how a subject's last run went, over all its targets, and when one last started", () => {
    const db = openDatabase(":memory:");
    const { clock, advance } = fakeClock();
    const runs = new BackupRuns(db, clock);
    assert.equal(runs.lastFor("main/wiki"), null);
    assert.equal(runs.lastStartedAt("main/wiki", "schedule"), undefined);

    const usb = runs.start("main/wiki", "usb", "schedule");
    const firstStart = clock();
    advance(1); // the clock may tick between the records of one run
    const offsite = runs.start("main/wiki", "offsite", "schedule");
    // Still running: nothing finished yet.
    assert.equal(runs.lastFor("main/wiki"), null);
    assert.equal(runs.lastStartedAt("main/wiki", "schedule"), firstStart + 1);
    advance(500);
    runs.finish(usb, failed("usb: no space left", clock()));
    advance(500);
    runs.finish(offsite, ok("a", 10, clock()));
    // The first target's failure counts though the other, started a tick later, went well.
    assert.deepEqual(runs.lastFor("main/wiki"), {
      at: clock(),
      ok: false,
      error: "usb: no space left",
    });

    advance(60_000);
    const manual = runs.start("main/wiki", "usb", "manual");
    assert.equal(runs.lastStartedAt("main/wiki", "schedule"), firstStart + 1);
    assert.equal(runs.lastStartedAt("main/wiki", "manual"), clock());
    runs.finish(manual, ok("b", 5, clock()));
    assert.deepEqual(runs.lastFor("main/wiki"), { at: clock(), ok: true, error: null });
    assert.equal(runs.lastFor("other"), null);
  });

  it("lists failures: the newest finished run per subject and target, when it failed", () => {
    const db = openDatabase(":memory:");
    const { clock, advance } = fakeClock();
    const runs = new BackupRuns(db, clock);
    const end = (id: number, error: string | null): void => {
      advance(10);
      runs.finish(id, error === null ? ok("p", 1, clock()) : failed(error, clock()));
    };
    // wiki → usb: failed, then ok: no failure.
    end(runs.start("main/wiki", "usb", "schedule"), "usb gone");
    end(runs.start("main/wiki", "usb", "schedule"), null);
    // wiki → offsite: ok, then failed: a failure.
    end(runs.start("main/wiki", "offsite", "schedule"), null);
    end(runs.start("main/wiki", "offsite", "schedule"), "offsite: timeout");
    const offsiteAt = clock();
    // data, restore point only: failed, then one running: still the failure.
    end(runs.start("data", null, "manual"), "no space");
    const dataAt = clock();
    runs.start("data", null, "manual");
    assert.deepEqual(runs.failures(), [
      { subject: "data", target: null, error: "no space", at: dataAt },
      { subject: "main/wiki", target: "offsite", error: "offsite: timeout", at: offsiteAt },
    ]);
  });

  it("fails the runs a crash left running, and only those", () => {
    const db = openDatabase(":memory:");
    const { clock, advance } = fakeClock();
    const runs = new BackupRuns(db, clock);
    const done = runs.start("a", "usb", "schedule");
    runs.finish(done, ok("p", 1, clock()));
    const interrupted = runs.start("b", "usb", "schedule");
    advance(5000);
    // A new daemon on the same database.
    const after = new BackupRuns(db, clock);
    assert.equal(after.failInterrupted(), 1);
    assert.equal(after.failInterrupted(), 0);
    assert.equal(after.get(done)?.state, "ok");
    assert.deepEqual(after.get(interrupted), {
      ...after.get(interrupted),
      state: "failed",
      error: INTERRUPTED,
      finishedAt: clock(),
    });
    assert.deepEqual(after.failures(), [
      { subject: "b", target: "usb", error: INTERRUPTED, at: clock() },
    ]);
  });

  it(`keeps the newest ${String(KEPT_RUNS)} runs, and those running`, () => {
    const db = openDatabase(":memory:");
    const { clock, advance } = fakeClock();
    const runs = new BackupRuns(db, clock);
    const running = runs.start("slow", "usb", "schedule");
    const ids: number[] = [];
    for (let i = 0; i < KEPT_RUNS + 20; i++) {
      advance(1);
      const id = runs.start("main/wiki", "usb", "schedule");
      runs.finish(id, ok("p", 1, clock()));
      ids.push(id);
    }
    const left = runs.list(10_000).map((r) => r.id);
    assert.equal(left.length, KEPT_RUNS + 1);
    assert.ok(left.includes(running));
    assert.deepEqual(left.slice(0, KEPT_RUNS), ids.slice(-KEPT_RUNS).reverse());
    assert.equal(runs.get(ids[0] ?? -1), undefined);
  });
});
