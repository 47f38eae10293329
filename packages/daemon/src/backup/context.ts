/**
 * What the backup service's parts (targets, runs, restores) share: the
 * stores, the restore points, the apps and the storage once it is there.
 */
import { TownError } from "@townos/format";
import type { BackupScheduler } from "./scheduler.js";
import type { Catalog } from "../catalog/catalog.js";
import type { Clock } from "../clock.js";
import type { StorageDriver } from "../storage/driver.js";
import type { Installs } from "../store/installs.js";
import type { Repositories } from "../store/repositories.js";
import type { Settings } from "../store/settings.js";
import type { BackupPolicies } from "../store/backup-policies.js";
import type { BackupRuns } from "../store/backup-runs.js";
import type { BackupTargets } from "../store/backup-targets.js";
import type { Apps } from "../apps/service.js";
import { KeyedLock } from "../system/mutex.js";
import type { BackupTargetConfig, BackupTargetDriver, RestorePointSource } from "./types.js";

/** What of the apps service backups use. */
export type BackupApps = Pick<
  Apps,
  "box" | "install" | "upgrade" | "preview" | "holdApp" | "expose" | "setState"
>;

export interface BackupContextOptions {
  targets: BackupTargets;
  policies: BackupPolicies;
  runs: BackupRuns;
  restorePoints: RestorePointSource;
  installs: Installs;
  repositories: Repositories;
  catalog: Catalog;
  /** A whole-box restore sets the backed-up settings. */
  settings: Pick<Settings, "set">;
  apps: BackupApps;
  /** Opens a target's driver (`targets/index.ts`). */
  openTarget: (config: BackupTargetConfig) => BackupTargetDriver;
  /** The storage driver once storage is set up. @throws `unavailable` before */
  storage: () => StorageDriver;
  /** Fires policies: when one runs next, told when one changed. */
  scheduler: Pick<BackupScheduler, "start" | "stop" | "nextRunAt" | "policiesChanged">;
  clock: Clock;
  log: (message: string, fields: Record<string, unknown>) => void;
}

export class BackupContext {
  /** Held while a subject is backed up or restored: one at a time. */
  readonly subjects = new KeyedLock();

  constructor(readonly options: BackupContextOptions) {}

  /** @throws `unavailable` until storage is set up */
  storage(): StorageDriver {
    return this.options.storage();
  }

  /** The target's driver. @throws `not_found` */
  target(name: string): { config: BackupTargetConfig; driver: BackupTargetDriver } {
    const config = this.options.targets.get(name);
    if (!config) throw new TownError("not_found", `there is no backup target ${name}`);
    return { config, driver: this.options.openTarget(config) };
  }
}

/** The values of a target's configuration that must never be shown. */
export function targetSecrets(config: BackupTargetConfig): string[] {
  return [...(config.password === null ? [] : [config.password]), ...Object.values(config.env)];
}
