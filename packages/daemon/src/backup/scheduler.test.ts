import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Manager } from "../reconcile/manager.js";
import { BackupPolicies } from "../store/backup-policies.js";
import { BackupRuns } from "../store/backup-runs.js";
import { openDatabase } from "../store/database.js";
import { deferred, manualTime } from "../../test/reconcile/time.js";
import { BackupScheduler, MAX_SLEEP_MS } from "./scheduler.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number): string => new Date(ms).toISOString();
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A scheduler on real stores (in memory) and the manager, with one clock
 * for both the manager's timers and the scheduler. `runPolicy` records a
 * run as the backup service does, and may be held or made to fail.
 */
function setup(start: string) {
  const time = manualTime();
  let now = at(start);
  const clock = (): number => now;
  const db = openDatabase(":memory:");
  const policies = new BackupPolicies(db, clock);
  const runs = new BackupRuns(db, clock);
  const manager = new Manager({ schedule: time.schedule });
  const fired: string[] = [];
  let hold: Promise<void> | undefined;
  let fail: Error | undefined;
  const scheduler = new BackupScheduler({
    manager,
    policies,
    runs,
    clock,
    runPolicy: async (subject) => {
      fired.push(`${subject} ${iso(now)}`);
      const id = runs.start(subject, null, "schedule");
      if (hold) await hold;
      runs.finish(id, {
        state: fail ? "failed" : "ok",
        error: fail?.message ?? null,
        restorePoint: null,
        bytes: null,
        finishedAt: now,
      });
      if (fail) throw fail;
    },
  });
  /** Moves time a minute at a time, letting reconciles run in between. */
  const advance = async (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= MINUTE) {
      // Reconciles started before run to their end (and set their timers) first.
      await tick();
      const step = Math.min(MINUTE, left);
      now += step;
      time.advance(step);
      await tick();
      await tick();
    }
  };
  return {
    time,
    clock,
    policies,
    runs,
    manager,
    scheduler,
    fired,
    advance,
    setNow: (iso: string) => (now = at(iso)),
    holdRuns: (promise: Promise<void> | undefined) => (hold = promise),
    failRuns: (error: Error | undefined) => (fail = error),
  };
}

describe("BackupScheduler", () => {
  it("fires a policy at each slot of its schedule, from when it was set", async () => {
    const t = setup("2026-03-15T10:07:00Z");
    t.policies.set({
      subject: "main/wiki",
      schedule: "@hourly",
      keep: { hourly: 24 },
      targets: [],
    });
    t.scheduler.start();
    await tick();
    assert.deepEqual(t.fired, []);
    assert.equal(iso(t.scheduler.nextRunAt("main/wiki") ?? 0), "2026-03-15T11:00:00.000Z");
    assert.deepEqual(t.time.pending(), [53 * MINUTE]);
    await t.advance(3 * HOUR);
    assert.deepEqual(t.fired, [
      "main/wiki 2026-03-15T11:00:00.000Z",
      "main/wiki 2026-03-15T12:00:00.000Z",
      "main/wiki 2026-03-15T13:00:00.000Z",
    ]);
    assert.equal(iso(t.scheduler.nextRunAt("main/wiki") ?? 0), "2026-03-15T14:00:00.000Z");
    await t.scheduler.stop();
  });

  it("sleeps at most an hour at a time, and notices a clock that jumped", async () => {
    const t = setup("2026-03-15T10:00:00Z");
    t.policies.set({ subject: "data", schedule: "0 3 * * *", keep: { daily: 7 }, targets: [] });
    t.scheduler.start();
    await tick();
    assert.deepEqual(t.time.pending(), [MAX_SLEEP_MS]);
    // The wall clock jumps past the slot (an NTP fix after a boot): seen at the next look.
    t.setNow("2026-03-16T03:30:00Z");
    await t.advance(HOUR);
    assert.deepEqual(t.fired, ["data 2026-03-16T04:30:00.000Z"]);
    await t.advance(HOUR);
    assert.equal(t.fired.length, 1);
    assert.equal(iso(t.scheduler.nextRunAt("data") ?? 0), "2026-03-17T03:00:00.000Z");
    await t.scheduler.stop();
  });

  it("runs a policy once at start after missing several slots, then keeps its schedule", async () => {
    const t = setup("2026-03-10T02:00:00Z");
    t.policies.set({
      subject: "main/wiki",
      schedule: "0 3 * * *",
      keep: { daily: 7 },
      targets: [],
    });
    // Its last run was on the 10th; the daemon was down from then to the 15th, 12:00.
    t.setNow("2026-03-10T03:00:00Z");
    t.runs.start("main/wiki", null, "schedule");
    t.setNow("2026-03-15T12:00:00Z");
    // Overdue since the 11th: due now.
    assert.equal(iso(t.scheduler.nextRunAt("main/wiki") ?? 0), "2026-03-15T12:00:00.000Z");
    t.scheduler.start();
    await tick();
    await tick();
    assert.deepEqual(t.fired, ["main/wiki 2026-03-15T12:00:00.000Z"]);
    await t.advance(16 * HOUR);
    assert.deepEqual(t.fired, [
      "main/wiki 2026-03-15T12:00:00.000Z",
      "main/wiki 2026-03-16T03:00:00.000Z",
    ]);
    await t.scheduler.stop();
  });

  it("counts a run from before a restart: no second run for the same slot", async () => {
    const t = setup("2026-03-15T03:00:00Z");
    t.policies.set({ subject: "v", schedule: "0 3 * * *", keep: { daily: 7 }, targets: [] });
    t.runs.start("v", null, "schedule");
    t.setNow("2026-03-15T03:20:00Z");
    t.scheduler.start();
    await tick();
    assert.deepEqual(t.fired, []);
    assert.equal(iso(t.scheduler.nextRunAt("v") ?? 0), "2026-03-16T03:00:00.000Z");
    // A manual run does not move the schedule.
    t.runs.start("v", null, "manual");
    assert.equal(iso(t.scheduler.nextRunAt("v") ?? 0), "2026-03-16T03:00:00.000Z");
    await t.scheduler.stop();
  });

  it("follows a policy set again or removed", async () => {
    const t = setup("2026-03-15T10:30:00Z");
    t.policies.set({ subject: "main/wiki", schedule: "@daily", keep: { daily: 7 }, targets: [] });
    t.scheduler.start();
    await tick();
    await t.advance(10 * MINUTE);
    t.policies.set({
      subject: "main/wiki",
      schedule: "*/15 * * * *",
      keep: { last: 4 },
      targets: [],
    });
    t.scheduler.policiesChanged("main/wiki");
    await t.advance(20 * MINUTE);
    assert.deepEqual(t.fired, [
      "main/wiki 2026-03-15T10:45:00.000Z",
      "main/wiki 2026-03-15T11:00:00.000Z",
    ]);
    t.policies.set({ subject: "other", schedule: "*/15 * * * *", keep: { last: 4 }, targets: [] });
    t.scheduler.policiesChanged();
    // Removed: it is looked at once more, and then never again.
    t.policies.remove("main/wiki");
    t.scheduler.policiesChanged("main/wiki");
    await t.advance(30 * MINUTE);
    assert.deepEqual(t.fired.slice(2), [
      "other 2026-03-15T11:15:00.000Z",
      "other 2026-03-15T11:30:00.000Z",
    ]);
    assert.equal(t.scheduler.nextRunAt("main/wiki"), null);
    await t.scheduler.stop();
  });

  it("skips the slots that pass while a run goes on", async () => {
    const t = setup("2026-03-15T10:59:00Z");
    t.policies.set({ subject: "big", schedule: "*/10 * * * *", keep: { last: 3 }, targets: [] });
    const gate = deferred();
    t.holdRuns(gate.promise);
    t.scheduler.start();
    await t.advance(MINUTE);
    assert.deepEqual(t.fired, ["big 2026-03-15T11:00:00.000Z"]);
    // The run takes 25 minutes: the 11:10 and 11:20 slots pass.
    await t.advance(25 * MINUTE);
    t.holdRuns(undefined);
    gate.resolve();
    await tick();
    await tick();
    assert.equal(iso(t.scheduler.nextRunAt("big") ?? 0), "2026-03-15T11:30:00.000Z");
    await t.advance(5 * MINUTE);
    assert.deepEqual(t.fired, ["big 2026-03-15T11:00:00.000Z", "big 2026-03-15T11:30:00.000Z"]);
    await t.scheduler.stop();
  });

  it("tries a run that threw again at the next slot, not at once", async () => {
    const t = setup("2026-03-15T10:59:00Z");
    t.policies.set({ subject: "x", schedule: "@hourly", keep: { hourly: 3 }, targets: [] });
    t.failRuns(new Error("storage is being set up"));
    t.scheduler.start();
    await t.advance(30 * MINUTE);
    assert.deepEqual(t.fired, ["x 2026-03-15T11:00:00.000Z"]);
    t.failRuns(undefined);
    await t.advance(31 * MINUTE);
    assert.deepEqual(t.fired, ["x 2026-03-15T11:00:00.000Z", "x 2026-03-15T12:00:00.000Z"]);
    assert.equal(t.runs.lastFor("x")?.ok, true);
    await t.scheduler.stop();
  });

  it("does nothing before start", async () => {
    const t = setup("2026-03-15T10:00:00Z");
    t.policies.set({ subject: "x", schedule: "@hourly", keep: { hourly: 3 }, targets: [] });
    t.scheduler.policiesChanged();
    await t.advance(2 * HOUR);
    assert.deepEqual(t.fired, []);
    assert.deepEqual(t.time.pending(), []);
  });
});
