/**
 * Rollback: an app back to a restore point's version, answers and data.
 * What it replaces is kept as a restore point first, and the app is held
 * stopped while its volumes are swapped, so it never runs the old version
 * on new data or the reverse.
 */
import { TownError } from "@townos/format";
import type { RollbackResult } from "@townos/api";
import type { StorageDriver } from "../storage/driver.js";
import type { Installs } from "../store/installs.js";
import type { RestorePointRecord } from "../store/restore-points.js";
import type { RevertTarget } from "../apps/service.js";
import type { RestorePointService } from "./restore-points.js";

export interface RollbackOptions {
  installs: Installs;
  points: RestorePointService;
  storage: () => StorageDriver;
  apps: {
    holdApp(repo: string, name: string): Promise<() => Promise<void>>;
    revert(repo: string, name: string, target: RevertTarget): Promise<unknown>;
  };
}

/**
 * Returns the app to restore point `to` (default: the newest one taken
 * before an upgrade). @throws `not_found` (app, point, or a snapshot of it
 * gone), `unavailable`
 */
export async function rollback(
  options: RollbackOptions,
  repo: string,
  name: string,
  to?: string,
): Promise<RollbackResult> {
  const subject = `${repo}/${name}`;
  if (!options.installs.get(repo, name)) {
    throw new TownError("not_found", `${subject} is not installed`);
  }
  const point =
    to === undefined
      ? newestUpgradePoint(options.points, subject)
      : options.points.get(subject, to);
  const app = point.app;
  if (!app) throw new TownError("not_found", `restore point ${point.id} records no app version`);
  const driver = options.storage();
  await checkSnapshots(driver, point);
  const kept = await options.points.take(subject, "rollback");
  const release = await options.apps.holdApp(repo, name);
  try {
    await restoreVolumes(driver, point);
    await options.apps.revert(repo, name, {
      version: app.version,
      answers: app.answers,
      definitionHash: app.definitionHash,
      plan: app.plan,
    });
  } catch (error) {
    // Put the data back as it was: the app must not be left on half of each.
    await restoreVolumes(driver, kept).catch(() => undefined);
    throw new TownError(
      error instanceof TownError ? error.code : "io",
      `rollback of ${subject} to ${point.id} failed, its data is as it was before: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  } finally {
    await release();
  }
  return {
    restoredFrom: await options.points.view(point),
    kept: await options.points.view(kept),
    version: app.version,
  };
}

function newestUpgradePoint(points: RestorePointService, subject: string): RestorePointRecord {
  const point = points.list(subject).find((candidate) => candidate.reason === "upgrade");
  if (!point) {
    throw new TownError(
      "not_found",
      `${subject} has no restore point taken before an upgrade; \`town app snapshots ${subject}\` lists the others`,
    );
  }
  return point;
}

async function checkSnapshots(driver: StorageDriver, point: RestorePointRecord): Promise<void> {
  for (const volume of point.volumes) {
    const snapshots = await driver.listSnapshots(volume);
    if (!snapshots.some((snapshot) => snapshot.name === point.id)) {
      throw new TownError(
        "not_found",
        `the snapshot ${point.id} of volume ${volume} is gone: restore point ${point.id} cannot be returned to`,
      );
    }
  }
}

async function restoreVolumes(driver: StorageDriver, point: RestorePointRecord): Promise<void> {
  for (const volume of point.volumes) {
    await driver.restoreSnapshot(volume, point.id);
    // btrfs accounts at its next commit: without one, lists would show the old usage for up to 30 s.
    await driver.usage(volume, { sync: true });
  }
}
