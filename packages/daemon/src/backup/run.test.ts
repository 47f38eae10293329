import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RestorePointReason } from "@townos/api";
import { TownError } from "@townos/format";
import { BackupPolicies } from "../store/backup-policies.js";
import { BackupRuns } from "../store/backup-runs.js";
import { BackupTargets } from "../store/backup-targets.js";
import { openDatabase } from "../store/database.js";
import type { Installs } from "../store/installs.js";
import type { Repositories } from "../store/repositories.js";
import type { RestorePointRecord } from "../store/restore-points.js";
import type { StorageDriver } from "../storage/driver.js";
import type { Catalog } from "../catalog/catalog.js";
import { BackupContext, type BackupApps } from "./context.js";
import { BackupRunner } from "./run.js";
import type {
  BackupManifest,
  BackupSource,
  BackupTargetDriver,
  RestorePointSource,
  StoredBackup,
} from "./types.js";

const SUBJECT = "main/wiki";
const PASSWORD = "correct-horse-battery";

/** Restore points kept in memory, one a "second" apart. */
class MemoryPoints implements RestorePointSource {
  readonly points: RestorePointRecord[] = [];
  private tick = 0;

  take(subject: string, reason: RestorePointReason): Promise<RestorePointRecord> {
    this.tick += 1;
    const point: RestorePointRecord = {
      id: `p${String(this.tick)}-${reason}`,
      subject,
      app: null,
      reason,
      quiesce: "none",
      volumes: ["pkg.main.wiki.data"],
      createdAt: this.tick * 1000,
    };
    this.points.unshift(point);
    return Promise.resolve(point);
  }
  list(subject?: string): RestorePointRecord[] {
    return this.points.filter((point) => subject === undefined || point.subject === subject);
  }
  sources(point: RestorePointRecord): Promise<BackupSource[]> {
    return Promise.resolve(
      point.volumes.map((volume) => ({
        volume,
        snapshot: point.id,
        path: `/snapshots/${volume}/${point.id}`,
        earlier: [],
      })),
    );
  }
  remove(subject: string, id: string): Promise<void> {
    const at = this.points.findIndex((point) => point.subject === subject && point.id === id);
    if (at !== -1) this.points.splice(at, 1);
    return Promise.resolve();
  }
}

/** A target holding manifests in memory; `failing` makes every put fail naming the password. */
class MemoryTarget implements BackupTargetDriver {
  readonly kind = "restic";
  readonly name = "offsite";
  readonly held: BackupManifest[] = [];
  failing = false;

  prepare(): Promise<void> {
    return Promise.resolve();
  }
  put(
    manifest: BackupManifest,
    sources: readonly BackupSource[],
    options: { progress?: (p: { step: string; bytes: number; totalBytes?: number }) => void } = {},
  ): Promise<{ bytes: number | null; incremental: boolean }> {
    if (this.failing) {
      return Promise.reject(
        new TownError("unavailable", `restic -p ${PASSWORD}: repository not found`),
      );
    }
    assert.deepEqual(
      sources.map((source) => source.snapshot),
      [manifest.id],
    );
    options.progress?.({ step: "sending pkg.main.wiki.data", bytes: 40, totalBytes: 100 });
    this.held.push(manifest);
    return Promise.resolve({ bytes: 100, incremental: false });
  }
  list(): Promise<StoredBackup[]> {
    return Promise.resolve(
      this.held.map((manifest) => ({ manifest, bytes: 100, incremental: false })),
    );
  }
  restoreVolume(): Promise<void> {
    return Promise.reject(new Error("not used"));
  }
  remove(id: string): Promise<void> {
    const at = this.held.findIndex((manifest) => manifest.id === id);
    if (at !== -1) this.held.splice(at, 1);
    return Promise.resolve();
  }
}

function setup() {
  const db = openDatabase(":memory:");
  let now = 1_000_000;
  const clock = () => (now += 1000);
  const targets = new BackupTargets(db, clock);
  targets.add({ name: "offsite", kind: "restic", location: "/srv/r", password: PASSWORD, env: {} });
  const runs = new BackupRuns(db, clock);
  const points = new MemoryPoints();
  const target = new MemoryTarget();
  const logged: string[] = [];
  const storage = {
    attributes: () => Promise.resolve({ quota: null, owner: { uid: 0, gid: 0 } }),
  } as unknown as StorageDriver;
  const context = new BackupContext({
    targets,
    policies: new BackupPolicies(db, clock),
    runs,
    restorePoints: points,
    installs: {} as unknown as Installs,
    repositories: { list: () => [] } as unknown as Repositories,
    catalog: {} as unknown as Catalog,
    settings: { set: () => assert.fail("a run sets no setting") },
    apps: { box: "box1" } as BackupApps,
    openTarget: () => target,
    storage: () => storage,
    scheduler: {
      start: () => undefined,
      stop: () => Promise.resolve(),
      nextRunAt: () => null,
      policiesChanged: () => undefined,
    },
    clock,
    log: (message, fields) => logged.push(`${message} ${JSON.stringify(fields)}`),
  });
  return { runner: new BackupRunner(context), runs, targets, points, target, logged };
}

describe("backup runs", () => {
  it("send each policy run's restore point and prune what keep no longer holds on both sides", async () => {
    const { runner, runs, points, target, targets } = setup();
    for (let round = 0; round < 4; round++) {
      const id = runs.start(SUBJECT, "offsite", "schedule");
      await runner.run({
        subject: SUBJECT,
        trigger: "schedule",
        keep: { last: 2 },
        runs: [{ id, target: "offsite" }],
      });
      assert.equal(runs.get(id)?.state, "ok");
      assert.equal(runner.step(id), null);
    }
    assert.deepEqual(
      points.list(SUBJECT).map((point) => point.id),
      ["p4-schedule", "p3-schedule"],
    );
    assert.deepEqual(
      target.held.map((manifest) => manifest.id),
      ["p3-schedule", "p4-schedule"],
    );
    assert.equal(targets.get("offsite")?.status?.ok, true);
  });

  it("leave manual restore points alone", async () => {
    const { runner, runs, points } = setup();
    for (let round = 0; round < 3; round++) {
      const id = runs.start(SUBJECT, null, "manual");
      await runner.run({
        subject: SUBJECT,
        trigger: "manual",
        keep: null,
        runs: [{ id, target: null }],
      });
      assert.equal(runs.get(id)?.restorePoint, `p${String(round + 1)}-manual`);
    }
    assert.equal(points.list(SUBJECT).length, 3);
  });

  it("fail with the reason, the password left out, and prune nothing when a send fails", async () => {
    const { runner, runs, points, target, targets, logged } = setup();
    const first = runs.start(SUBJECT, "offsite", "schedule");
    await runner.run({
      subject: SUBJECT,
      trigger: "schedule",
      keep: { last: 1 },
      runs: [{ id: first, target: "offsite" }],
    });
    target.failing = true;
    const second = runs.start(SUBJECT, "offsite", "schedule");
    await runner.run({
      subject: SUBJECT,
      trigger: "schedule",
      keep: { last: 1 },
      runs: [{ id: second, target: "offsite" }],
    });
    const failed = runs.get(second);
    assert.equal(failed?.state, "failed");
    assert.match(failed.error ?? "", /repository not found/);
    assert.equal(failed.restorePoint, "p2-schedule");
    const status = targets.get("offsite")?.status;
    assert.equal(status?.ok, false);
    assert.ok(
      !JSON.stringify([failed, status, logged]).includes(PASSWORD),
      "the password is in no run, status or log line",
    );
    // The box keeps both points while the newest is not off the box.
    assert.equal(points.list(SUBJECT).length, 2);
    assert.deepEqual(
      target.held.map((manifest) => manifest.id),
      ["p1-schedule"],
    );
  });
});
