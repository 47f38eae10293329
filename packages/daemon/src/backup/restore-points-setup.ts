import type { RollbackResult } from "@townos/api";
import type { Apps } from "../apps/service.js";
import type { Clock } from "../clock.js";
import type { Db } from "../store/database.js";
import type { Installs } from "../store/installs.js";
import type { Repositories } from "../store/repositories.js";
import type { Settings } from "../store/settings.js";
import { RestorePoints } from "../store/restore-points.js";
import type { Volumes } from "../volumes/volumes.js";
import { desiredState } from "./desired-state.js";
import { restorePointHooks } from "./hooks.js";
import { RestorePointService } from "./restore-points.js";
import { rollback } from "./rollback.js";

/**
 * Restore points for the daemon: the service, rollback, and the hooks that
 * take one before upgrades, reinstalls, quota changes, uploads and restores.
 */
export function createRestorePoints(options: {
  db: Db;
  clock: Clock;
  installs: Installs;
  repositories: Repositories;
  settings: Settings;
  apps: Apps;
  volumes: Volumes;
}): {
  restorePoints: RestorePointService;
  rollback: (repo: string, name: string, to?: string) => Promise<RollbackResult>;
} {
  const { installs, apps, volumes } = options;
  const storage = () => volumes.storageDriver();
  const restorePoints = new RestorePointService({
    installs,
    records: new RestorePoints(options.db),
    storage,
    holdApp: (repo, name, stop) => apps.holdApp(repo, name, stop),
    workloads: () => apps.workloads(),
    desiredState: () => desiredState(options.repositories, options.settings),
    clock: options.clock,
  });
  const hooks = restorePointHooks(restorePoints, installs);
  apps.setChangeHooks(hooks.apps);
  volumes.setChangeHook(hooks.volumes);
  return {
    restorePoints,
    rollback: (repo, name, to) =>
      rollback({ installs, points: restorePoints, storage, apps }, repo, name, to),
  };
}
