/**
 * Restoring an app from a backup: its version, answers and volumes' content.
 *
 * - Not installed (a fresh box, or a box it was uninstalled from): each
 *   volume of the new install is made with the backed-up quota and owner
 *   and filled before the app is installed, which then finds its data.
 * - Installed: a `restore` restore point keeps what is there, the app is
 *   held stopped, each volume's content is replaced and the install moved
 *   to the backup's version and answers; on failure the volumes go back to
 *   the restore point.
 *
 * `asNew` (a copy beside the app, `<name>-restored`) is refused for now: an
 * install is named by its package, and nothing records another name's package.
 */
import type { RestoreBackupBody, RestoreBackupResult } from "@townos/api";
import { savedAnswersAsGiven, TownError, type PackageSource } from "@townos/format";
import { flattenPlan, nodeVolumeName } from "../apps/names.js";
import type { InstallRecord } from "../store/installs.js";
import type { PointApp } from "../store/restore-points.js";
import type { BackupContext } from "./context.js";
import { planVolumes } from "./restore-points.js";
import type { BackupManifest, BackupTargetDriver, StoredBackup } from "./types.js";
import { backupView } from "./views.js";
import { replaceVolumeContent, restoreIntoNewVolume } from "./volume-content.js";

/** A backup's manifest as one app's: an app's own, or one app's part of a whole-box backup. */
export type AppManifest = BackupManifest & { app: NonNullable<BackupManifest["app"]> };

export class AppRestorer {
  constructor(private readonly context: BackupContext) {}

  /** @throws `not_found` (target, backup, repository or version), `invalid_argument`, `conflict` */
  async restore(body: RestoreBackupBody): Promise<RestoreBackupResult> {
    const { repo, name } = parseApp(body.app);
    if (body.asNew === true) {
      // An install is its package's name: a second copy would need installs to name their package.
      throw new TownError(
        "invalid_argument",
        `${body.app} cannot be restored as a new app beside it: an app is installed under its package's name only. Restore it in place (what it replaces is kept as a restore point) or onto another box`,
        { issues: [{ field: "asNew", message: "not supported yet" }] },
      );
    }
    this.context.storage();
    const { driver } = this.context.target(body.target);
    const { stored, manifest } = pickBackup(await driver.list(), body);
    const kept = await this.restoreFrom(manifest, driver);
    return {
      app: `${repo}/${name}`,
      version: manifest.app.version,
      backup: backupView(body.target, stored),
      kept,
    };
  }

  /**
   * Restores the app the manifest is of from `target`, in place or as a
   * fresh install. @returns the restore point keeping what it replaced;
   * null when the app was not installed
   */
  async restoreFrom(manifest: AppManifest, target: BackupTargetDriver): Promise<string | null> {
    const { repo, name } = manifest.app;
    const source = this.packageSource(manifest);
    const release = await this.context.subjects.acquire(`${repo}/${name}`);
    try {
      const installed = this.context.options.installs.get(repo, name);
      if (installed) return await this.inPlace(manifest, installed, target, source);
      await this.freshInstall(manifest, target, source);
      return null;
    } finally {
      release();
    }
  }

  /** The package the backup was made from, in this box's catalog. @throws `not_found` */
  private packageSource(manifest: AppManifest): PackageSource {
    const { repo, name, version, repoUrl } = manifest.app;
    const { repositories, catalog } = this.context.options;
    const where = repoUrl === null ? "" : ` (${repoUrl})`;
    if (!repositories.list().some((repository) => repository.name === repo)) {
      throw new TownError(
        "not_found",
        `the backup is of ${repo}/${name} ${version}: add its package repository${where} under the name ${repo} first`,
      );
    }
    const source = catalog.index().find({ repo, name, version });
    if (!source) {
      throw new TownError(
        "not_found",
        `the package repository ${repo}${where} has no version ${version} of ${name} (yet: it may still be loading)`,
      );
    }
    return source;
  }

  /** The answers saved in the backup, spelled so that they compile again. */
  private answers(manifest: AppManifest, source: PackageSource): Record<string, string> {
    return savedAnswersAsGiven(source.definition.questions, manifest.app.answers);
  }

  /**
   * The new install's volumes, each with the backed-up volume it is filled
   * from: matched by instance (less the app's own name) and volume name.
   * @throws `invalid_argument` when the new install's plan has problems
   */
  private async newVolumes(
    manifest: AppManifest,
    source: PackageSource,
  ): Promise<{ volume: string; from: BackupManifest["volumes"][number] }[]> {
    const { repo, name, version } = manifest.app;
    const preview = await this.context.options.apps.preview({
      repo,
      name,
      version,
      answers: this.answers(manifest, source),
      reuseVolumes: false,
    });
    const problems = [...preview.answerProblems, ...preview.problems];
    if (problems.length > 0) {
      throw new TownError(
        "invalid_argument",
        `${repo}/${name} cannot be installed from the backup: ${problems.map((p) => p.message).join("; ")}`,
        { issues: problems },
      );
    }
    const backedUp = new Map<string, BackupManifest["volumes"][number]>();
    const plan = manifest.app.plan;
    if (plan) {
      for (const { plan: node } of flattenPlan(plan)) {
        for (const volume of node.volumes) {
          const stored = manifest.volumes.find((v) => v.name === nodeVolumeName(node, volume.name));
          const suffix = node.instance.slice(plan.instance.length);
          if (stored) backedUp.set(`${suffix}/${volume.name}`, stored);
        }
      }
    } else {
      // No plan saved: the volumes' names are the install's own.
      for (const volume of manifest.volumes) backedUp.set(volume.name, volume);
    }
    return preview.volumes.flatMap((volume) => {
      const from = plan
        ? backedUp.get(`${volume.instance.slice(name.length)}/${volume.name}`)
        : backedUp.get(volume.volume);
      return from ? [{ volume: volume.volume, from }] : [];
    });
  }

  /** Fills new volumes from the backup and installs the app on them; undone on failure. */
  private async freshInstall(
    manifest: AppManifest,
    target: BackupTargetDriver,
    source: PackageSource,
  ): Promise<void> {
    const { repo, name, version } = manifest.app;
    const storage = this.context.storage();
    const volumes = await this.newVolumes(manifest, source);
    const made: string[] = [];
    try {
      for (const { volume, from } of volumes) {
        const created = await restoreIntoNewVolume(
          storage,
          volume,
          { target, id: manifest.id, from },
          {},
        );
        if (!created) {
          throw new TownError(
            "conflict",
            `volume ${volume} exists already: ${repo}/${name} is not installed, so it was left by something else; remove or rename it first`,
          );
        }
        made.push(volume);
      }
      await this.context.options.apps.install({
        repo,
        name,
        version,
        answers: this.answers(manifest, source),
        reuseVolumes: false,
      });
    } catch (error) {
      for (const volume of made) await storage.remove(volume).catch(() => false);
      throw error;
    }
  }

  /** Replaces the installed app's data and settings with the backup's; returns the restore point kept. */
  private async inPlace(
    manifest: AppManifest,
    install: InstallRecord,
    target: BackupTargetDriver,
    source: PackageSource,
  ): Promise<string> {
    const { repo, name, version } = manifest.app;
    const { restorePoints, apps } = this.context.options;
    const storage = this.context.storage();
    const kept = await restorePoints.take(`${repo}/${name}`, "restore");
    const release = await apps.holdApp(repo, name);
    try {
      for (const from of manifest.volumes) {
        const content = { target, id: manifest.id, from };
        if (await storage.exists(from.name)) {
          await replaceVolumeContent(storage, from.name, content, {});
        } else {
          await restoreIntoNewVolume(storage, from.name, content, {});
        }
      }
      const answers = this.answers(manifest, source);
      if (install.version !== version || !sameAnswers(install.answers, manifest.app.answers)) {
        await apps.upgrade({ repo, name, version, answers });
      }
    } catch (error) {
      const back: string[] = [];
      for (const volume of kept.volumes) {
        try {
          await storage.restoreSnapshot(volume, kept.id);
          back.push(volume);
        } catch {
          // Said below: the volumes not listed were not put back.
        }
      }
      const message = error instanceof Error ? error.message : String(error);
      throw new TownError(
        "io",
        `restoring ${repo}/${name} from backup ${manifest.id} failed: ${message}; ` +
          `${back.length === kept.volumes.length ? "its volumes were put back" : `volumes put back: ${back.join(", ") || "none"}`} as they were (restore point ${kept.id})`,
        { cause: error },
      );
    } finally {
      await release();
    }
    return kept.id;
  }
}

/** `repo/name`. @throws `invalid_argument` */
function parseApp(app: string): { repo: string; name: string } {
  const slash = app.indexOf("/");
  if (slash <= 0 || slash === app.length - 1 || app.indexOf("/", slash + 1) !== -1) {
    throw new TownError("invalid_argument", `"${app.slice(0, 80)}" is not REPO/NAME`);
  }
  return { repo: app.slice(0, slash), name: app.slice(slash + 1) };
}

/**
 * The backup asked for (`at`), or the app's newest on the target: a backup
 * of the app, or a whole-box one holding it. @throws `not_found`
 */
function pickBackup(
  backups: StoredBackup[],
  body: RestoreBackupBody,
): { stored: StoredBackup; manifest: AppManifest } {
  const ofApp = backups.flatMap((stored) => {
    const manifest = appManifestOf(stored.manifest, body.app);
    return manifest ? [{ stored, manifest }] : [];
  });
  const found =
    body.at === undefined
      ? ofApp.reduce<(typeof ofApp)[number] | undefined>(
          (newest, backup) =>
            !newest || backup.manifest.createdAt > newest.manifest.createdAt ? backup : newest,
          undefined,
        )
      : ofApp.find((backup) => backup.manifest.id === body.at);
  if (!found) {
    throw new TownError(
      "not_found",
      body.at === undefined
        ? `backup target ${body.target} holds no backup of ${body.app}`
        : `backup target ${body.target} holds no backup ${body.at} of ${body.app}`,
    );
  }
  return found;
}

/** The manifest as app `repo/name`'s: its own, or its part of a whole-box backup; undefined when it holds none. */
export function appManifestOf(manifest: BackupManifest, app: string): AppManifest | undefined {
  const own = manifest.app;
  if (own) return `${own.repo}/${own.name}` === app ? { ...manifest, app: own } : undefined;
  const entry = manifest.desired?.apps.find((boxed) => `${boxed.repo}/${boxed.name}` === app);
  if (!manifest.desired || !entry) return undefined;
  const names = new Set(entry.plan ? carriedPlanVolumes(entry.plan, app) : []);
  const repository = manifest.desired.repositories.find((r) => r.name === entry.repo);
  return {
    ...manifest,
    subject: app,
    app: {
      repo: entry.repo,
      name: entry.name,
      version: entry.version,
      definitionHash: entry.definitionHash,
      answers: entry.answers,
      plan: entry.plan,
      repoUrl: repository?.url ?? null,
    },
    volumes: manifest.volumes.filter((volume) => names.has(volume.name)),
  };
}

/** The volumes of a plan read back from a target, which only looks like one. @throws `invalid_argument` */
function carriedPlanVolumes(plan: NonNullable<PointApp["plan"]>, app: string): string[] {
  try {
    return planVolumes(plan);
  } catch {
    throw new TownError("invalid_argument", `the backup's plan of ${app} cannot be read`);
  }
}

function sameAnswers(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
