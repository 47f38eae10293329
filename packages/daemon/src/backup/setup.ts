/**
 * Backups for the daemon: the stores, the service and the scheduler that
 * fires policies. Runs a crash left `running` are marked failed here, before
 * anything can start one.
 */
import type { Apps } from "../apps/service.js";
import type { Catalog } from "../catalog/catalog.js";
import type { Clock } from "../clock.js";
import type { Manager } from "../reconcile/manager.js";
import { BackupPolicies } from "../store/backup-policies.js";
import { BackupRuns } from "../store/backup-runs.js";
import { BackupTargets } from "../store/backup-targets.js";
import type { Db } from "../store/database.js";
import type { Installs } from "../store/installs.js";
import type { Repositories } from "../store/repositories.js";
import type { Settings } from "../store/settings.js";
import type { Volumes } from "../volumes/volumes.js";
import { BackupScheduler } from "./scheduler.js";
import { Backups } from "./service.js";
import { openTarget, type OpenTargetOptions } from "./targets/index.js";
import type { RestorePointSource } from "./types.js";

export function createBackups(options: {
  db: Db;
  clock: Clock;
  installs: Installs;
  repositories: Repositories;
  catalog: Catalog;
  settings: Settings;
  apps: Apps;
  volumes: Volumes;
  restorePoints: RestorePointSource;
  manager: Manager;
  log: (message: string, fields: Record<string, unknown>) => void;
}): Backups {
  const { db, clock, volumes } = options;
  const policies = new BackupPolicies(db, clock);
  const runs = new BackupRuns(db, clock);
  runs.failInterrupted();
  const scheduler = new BackupScheduler({
    manager: options.manager,
    policies,
    runs,
    runPolicy: (subject) => backups.runPolicy(subject),
    clock,
    log: options.log,
  });
  const backups: Backups = new Backups({
    targets: new BackupTargets(db, clock),
    policies,
    runs,
    restorePoints: options.restorePoints,
    installs: options.installs,
    repositories: options.repositories,
    catalog: options.catalog,
    settings: options.settings,
    apps: options.apps,
    // Restores unpack next to the volumes, where they move in from.
    openTarget: (config) => openTarget(config, stagingRootOf(volumes)),
    storage: () => volumes.storageDriver(),
    scheduler,
    clock,
    log: options.log,
  });
  return backups;
}

/** The storage's staging root once storage is set up. */
function stagingRootOf(volumes: Volumes): OpenTargetOptions {
  try {
    return { stagingRoot: volumes.storageDriver().stagingRoot };
  } catch {
    return {};
  }
}
