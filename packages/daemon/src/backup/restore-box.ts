/**
 * Restoring the whole box from a whole-box backup, onto a fresh install or
 * over what is there: the package repositories (those missing are added and
 * fetched), the settings, people's volumes (made where missing, an existing
 * one is left as it is) and every app (`restore-app.ts`: in place, keeping
 * what it replaces, or installed afresh on its data), stopped again and
 * exposed as a person had chosen.
 *
 * Each part is done on its own: one that fails is reported and the others go
 * on, so that one unreachable repository does not keep every other app away.
 */
import { BOX_SUBJECT, type RestoreBoxBody, type RestoreBoxResult } from "@townos/api";
import { TownError } from "@townos/format";
import { parseVolumeName } from "../storage/names.js";
import type { Settings } from "../store/settings.js";
import { type BackupContext } from "./context.js";
import { errorText } from "../error-text.js";
import { appManifestOf, type AppRestorer } from "./restore-app.js";
import type {
  BackupManifest,
  BackupManifestBox,
  BackupTargetDriver,
  StoredBackup,
} from "./types.js";
import { backupView } from "./views.js";
import { restoreIntoNewVolume } from "./volume-content.js";

type BoxManifest = BackupManifest & { desired: BackupManifestBox };

export class BoxRestorer {
  constructor(
    private readonly context: BackupContext,
    private readonly apps: AppRestorer,
    private readonly settings: Pick<Settings, "set">,
  ) {}

  /** @throws `not_found` (target, backup), `unavailable`; a part's failure is in the result instead */
  async restore(body: RestoreBoxBody): Promise<RestoreBoxResult> {
    this.context.storage();
    const { driver } = this.context.target(body.target);
    const stored = pickBoxBackup(await driver.list(), body);
    const manifest = stored.manifest as BoxManifest;
    const release = await this.context.subjects.acquire(BOX_SUBJECT);
    try {
      const repositories = await this.restoreRepositories(manifest.desired);
      const settings = this.restoreSettings(manifest.desired);
      const volumes = await this.restoreVolumes(manifest, driver);
      const apps: RestoreBoxResult["apps"] = [];
      for (const entry of manifest.desired.apps) {
        apps.push(await this.restoreApp(manifest, `${entry.repo}/${entry.name}`, driver));
      }
      return { backup: backupView(body.target, stored), repositories, settings, volumes, apps };
    } finally {
      release();
    }
  }

  /** Adds and fetches the repositories the box lacks; those of the same name are kept as they are. */
  private async restoreRepositories(
    box: BackupManifestBox,
  ): Promise<RestoreBoxResult["repositories"]> {
    const { repositories, catalog } = this.context.options;
    const results: RestoreBoxResult["repositories"] = [];
    for (const { name, url, credentials } of box.repositories) {
      if (repositories.list().some((repository) => repository.name === name)) {
        results.push({ name, url, state: "present", error: null });
        continue;
      }
      try {
        repositories.add({ name, url });
        const outcome = await catalog.refresh(name);
        if (outcome.ok) {
          results.push({ name, url, state: "added", error: null });
        } else {
          const hint = credentials
            ? ": it was reached with credentials, which backups do not keep; give them to the repository and restore its apps again"
            : "";
          results.push({
            name,
            url,
            state: "failed",
            error: `${outcome.error ?? "fetch failed"}${hint}`,
          });
        }
      } catch (error) {
        results.push({ name, url, state: "failed", error: errorText(error) });
      }
    }
    return results;
  }

  private restoreSettings(box: BackupManifestBox): RestoreBoxResult["settings"] {
    return Object.entries(box.settings).map(([key, value]) => {
      try {
        this.settings.set(key, value);
        return { key, ok: true, error: null };
      } catch (error) {
        return { key, ok: false, error: errorText(error) };
      }
    });
  }

  /** People's volumes, made with their quota and owner where missing. */
  private async restoreVolumes(
    manifest: BoxManifest,
    target: BackupTargetDriver,
  ): Promise<RestoreBoxResult["volumes"]> {
    const storage = this.context.storage();
    const results: RestoreBoxResult["volumes"] = [];
    for (const from of manifest.volumes) {
      if (parseVolumeName(from.name)?.kind !== "user") continue;
      try {
        const made = await restoreIntoNewVolume(
          storage,
          from.name,
          { target, id: manifest.id, from },
          {},
        );
        results.push({ volume: from.name, state: made ? "restored" : "present", error: null });
      } catch (error) {
        results.push({ volume: from.name, state: "failed", error: errorText(error) });
      }
    }
    return results;
  }

  /** One app with its data, then stopped and exposed as it was. */
  private async restoreApp(
    manifest: BoxManifest,
    app: string,
    target: BackupTargetDriver,
  ): Promise<RestoreBoxResult["apps"][number]> {
    const entry = manifest.desired.apps.find((boxed) => `${boxed.repo}/${boxed.name}` === app);
    const version = entry?.version ?? "";
    let kept: string | null;
    try {
      const part = appManifestOf(manifest, app);
      if (!entry || !part) throw new TownError("not_found", `the backup holds no ${app}`);
      kept = await this.apps.restoreFrom(part, target);
    } catch (error) {
      return { app, version, state: "failed", kept: null, error: errorText(error) };
    }
    const unapplied: string[] = [];
    const { apps } = this.context.options;
    for (const [port, level] of Object.entries(entry.exposures)) {
      await apps.expose(entry.repo, entry.name, Number(port), level).catch((error: unknown) => {
        unapplied.push(`exposing port ${port} to ${level}: ${errorText(error)}`);
      });
    }
    if (!entry.running) {
      await apps.setState(entry.repo, entry.name, "stop").catch((error: unknown) => {
        unapplied.push(`stopping it: ${errorText(error)}`);
      });
    }
    return {
      app,
      version,
      state: "restored",
      kept,
      error: unapplied.length === 0 ? null : `restored, but not: ${unapplied.join("; ")}`,
    };
  }
}

/** The whole-box backup asked for (`at`), or the newest on the target. @throws `not_found` */
function pickBoxBackup(backups: StoredBackup[], body: RestoreBoxBody): StoredBackup {
  const boxes = backups.filter((backup) => backup.manifest.desired !== undefined);
  const found =
    body.at === undefined ? boxes.at(-1) : boxes.find((backup) => backup.manifest.id === body.at);
  if (!found) {
    throw new TownError(
      "not_found",
      body.at === undefined
        ? `backup target ${body.target} holds no backup of the whole box`
        : `backup target ${body.target} holds no whole-box backup ${body.at}`,
    );
  }
  return found;
}
