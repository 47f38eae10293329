/**
 * The box as a state repository sees it: read into a `CurrentState`, and
 * changed one `StateStep` at a time through the same services people use
 * (so every rule they follow, a step follows too).
 */
import type { PageInfo, StatePageFile } from "@townos/api";
import { TownError } from "@townos/format";
import type { Apps } from "../apps/service.js";
import type { Catalog } from "../catalog/catalog.js";
import type { Pages } from "../pages/service.js";
import type { Installs } from "../store/installs.js";
import type { Repositories } from "../store/repositories.js";
import type { Settings } from "../store/settings.js";
import type { StateRecords } from "../store/state.js";
import type { Volumes } from "../volumes/volumes.js";
import type { CurrentState, StateStep } from "./types.js";

export interface BoxServices {
  repositories: Repositories;
  catalog: Pick<Catalog, "refresh" | "forget">;
  settings: Settings;
  installs: Pick<Installs, "get">;
  apps: Pick<Apps, "list" | "install" | "upgrade" | "uninstall" | "expose">;
  volumes: Pick<Volumes, "list" | "create" | "setQuota">;
  pages: Pick<Pages, "list" | "create" | "remove">;
  records: StateRecords;
}

const USER_PREFIX = "user.";

export async function readCurrentState(box: BoxServices): Promise<CurrentState> {
  const apps = await box.apps.list();
  const volumes = await box.volumes.list();
  return {
    repositories: box.repositories.list().map(({ name, url }) => ({ name, url })),
    apps: apps.map((app) => ({
      repo: app.repo,
      name: app.name,
      version: app.version,
      answers: box.installs.get(app.repo, app.name)?.answers ?? {},
      exposures: Object.fromEntries(app.ports.map((port) => [String(port.host), port.exposure])),
    })),
    volumes: volumes
      .filter((volume) => volume.kind === "user")
      .map((volume) => ({ name: volume.name.slice(USER_PREFIX.length), quota: volume.quota })),
    pages: box.pages.list().map((page) => ({ name: page.name, file: pageFile(page) })),
    settings: Object.fromEntries(
      box.settings
        .list()
        .map((setting) => [setting.key, { value: setting.value, default: setting.default }]),
    ),
    managed: box.records.managed(),
    purgeOnRemoval: box.records.purgeOnRemoval(),
  };
}

/** A page as its state file says it (fields the page does not use left out). */
export function pageFile(page: PageInfo): StatePageFile {
  const { source } = page;
  const present = <K extends string, V>(key: K, value: V | null): { [P in K]?: V } =>
    (value === null ? {} : { [key]: value }) as { [P in K]?: V };
  return {
    source: {
      type: source.type,
      ...present("url", source.url),
      ...present("branch", source.branch),
      ...present("dir", source.dir),
      ...present("image", source.image),
      ...present("path", source.path),
    },
    ...present("build", page.build),
    ...(page.domains.length === 0 ? {} : { domains: page.domains }),
  };
}

/** Carries out one step. @throws what the service refuses it with */
export async function applyStep(box: BoxServices, step: StateStep): Promise<void> {
  switch (step.kind) {
    case "repository.add": {
      box.repositories.add({ name: step.name, url: step.url });
      const outcome = await box.catalog.refresh(step.name);
      if (!outcome.ok) {
        throw new TownError("io", `repository ${step.name}: ${outcome.error ?? "fetch failed"}`);
      }
      return;
    }
    case "repository.remove":
      box.repositories.remove(step.name);
      await box.catalog.forget(step.name);
      return;
    case "setting.set":
      box.settings.set(step.key, step.value);
      return;
    case "volume.create":
      await box.volumes.create(step.name, step.quota);
      return;
    case "volume.quota":
      await box.volumes.setQuota(`${USER_PREFIX}${step.name}`, step.quota);
      return;
    case "app.uninstall":
      await box.apps.uninstall(step.repo, step.name, step.purge);
      return;
    case "app.install":
      await box.apps.install({
        repo: step.repo,
        name: step.name,
        ...(step.version === undefined ? {} : { version: step.version }),
        answers: step.answers,
      });
      return;
    case "app.upgrade":
      await box.apps.upgrade({
        repo: step.repo,
        name: step.name,
        ...(step.version === undefined ? {} : { version: step.version }),
        answers: step.answers,
      });
      return;
    case "app.expose":
      await box.apps.expose(step.repo, step.name, step.port, step.level);
      return;
    case "page.create":
      box.pages.create({ name: step.name, ...step.file });
      return;
    case "page.remove":
      await box.pages.remove(step.name);
  }
}
