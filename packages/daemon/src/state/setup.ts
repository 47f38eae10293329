/**
 * GitOps for the daemon: the records, the state service and what it reads
 * of the catalog (newest versions, which answers are secrets).
 */
import { join } from "node:path";
import { isSecretQuestion } from "@townos/format";
import type { Apps } from "../apps/service.js";
import type { Catalog } from "../catalog/catalog.js";
import type { Clock } from "../clock.js";
import type { Pages } from "../pages/service.js";
import type { Manager } from "../reconcile/manager.js";
import type { AuditLog } from "../store/audit.js";
import type { Db } from "../store/database.js";
import type { Installs } from "../store/installs.js";
import type { Repositories } from "../store/repositories.js";
import type { Settings } from "../store/settings.js";
import { StateRecords } from "../store/state.js";
import type { Volumes } from "../volumes/volumes.js";
import { loadOrCreateIdentity, type BoxIdentity } from "./age-key.js";
import { fetchState } from "./fetch.js";
import { StateService } from "./service.js";

/** Where a sync clones the state repository, under the data directory. */
const SCRATCH_DIR = "state-scratch";
/** Where the box's age identity is kept, under the data directory. */
const KEY_DIR = "state";

export function createState(options: {
  db: Db;
  clock: Clock;
  dataDir: string;
  repositories: Repositories;
  catalog: Catalog;
  settings: Settings;
  installs: Installs;
  apps: Apps;
  volumes: Volumes;
  pages: Pages;
  manager: Manager;
  audit: AuditLog;
  log: (message: string, fields: Record<string, unknown>) => void;
}): StateService {
  const { catalog, installs, apps } = options;
  const records = new StateRecords(options.db, options.clock);
  // Read (or made) once, when first needed; a failure is tried again next time.
  let identity: Promise<BoxIdentity> | undefined;
  const boxIdentity = () => {
    identity ??= loadOrCreateIdentity(join(options.dataDir, KEY_DIR)).catch((error: unknown) => {
      identity = undefined;
      throw error;
    });
    return identity;
  };
  return new StateService({
    records,
    box: {
      repositories: options.repositories,
      catalog,
      settings: options.settings,
      installs,
      apps,
      volumes: options.volumes,
      pages: options.pages,
      records,
    },
    fetch: (remote) => fetchState(remote, { scratchRoot: join(options.dataDir, SCRATCH_DIR) }),
    preview: (request) => apps.preview(request),
    latest: (repo, name) => catalog.index().find({ repo, name })?.version,
    secretQuestions: (repo, name) => {
      const install = installs.get(repo, name);
      const source = install && catalog.index().find({ repo, name, version: install.version });
      if (!source) return [];
      return [...source.definition.questions]
        .filter(([, question]) => isSecretQuestion(question))
        .map(([key]) => key);
    },
    identity: boxIdentity,
    manager: options.manager,
    audit: options.audit,
    clock: options.clock,
    log: options.log,
  });
}
