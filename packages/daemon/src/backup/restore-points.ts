/**
 * Restore points: read-only snapshots of an app's volumes (every node of its
 * plan) or of one volume, taken together under one name, recorded with what
 * the app was then. The app is quiesced as its package declares (`backup:`
 * in the format extensions): stopped, a command run in it, or nothing (a
 * crash-consistent snapshot, like pulling the plug).
 */
import { TownError, type CompiledPackage } from "@townos/format";
import { BOX_SUBJECT, type RestorePointReason, type RestorePointView } from "@townos/api";
import type { Clock } from "../clock.js";
import type { WorkloadRuntime } from "../runtime/workload.js";
import type { StorageDriver } from "../storage/driver.js";
import { checkVolumeName, parseVolumeName, timestamp } from "../storage/names.js";
import type { InstallRecord, Installs } from "../store/installs.js";
import type {
  BoxState,
  PointApp,
  Quiesce,
  RestorePointRecord,
  RestorePoints,
} from "../store/restore-points.js";
import { flattenPlan, nodeVolumeName } from "../apps/names.js";
import type { BackupSource, RestorePointSource } from "./types.js";

export interface RestorePointServiceOptions {
  installs: Installs;
  records: RestorePoints;
  /** The storage driver once storage is set up. @throws `unavailable` before */
  storage: () => StorageDriver;
  /** Keeps the app stopped until the returned release is called; `stop` stops it first. */
  holdApp: (repo: string, name: string, stop?: () => Promise<void>) => Promise<() => Promise<void>>;
  /** The apps' workloads: a quiesce command runs in one, `stop` stops them with the package's timeout. */
  workloads: () => Pick<WorkloadRuntime, "exec" | "stop">;
  /** The box's package repositories and changed settings, for a whole-box restore point. */
  desiredState: () => Omit<BoxState, "apps">;
  clock: Clock;
}

/** A volume to snapshot: by its name now, recorded under the name it will have (a reinstall renames). */
export interface PointVolume {
  current: string;
  recordAs: string;
}

/** Volumes snapshotted while their app is quiesced, one app after the other. */
interface VolumeGroup {
  app: PointApp | null;
  quiesce: Quiesce;
  volumes: PointVolume[];
}

const MAX_SUFFIX = 99;

export class RestorePointService implements RestorePointSource {
  constructor(private readonly options: RestorePointServiceOptions) {}

  /**
   * Takes a restore point of an installed app (`repo/name`) or of a volume.
   * @throws `not_found`, `unavailable`, `invalid_argument`
   */
  async take(subject: string, reason: RestorePointReason): Promise<RestorePointRecord> {
    if (subject === BOX_SUBJECT) return this.takeBox(reason);
    const app = splitApp(subject);
    if (!app) {
      checkVolumeName(subject);
      if (!(await this.options.storage().exists(subject))) {
        throw new TownError("not_found", `there is no volume ${subject}`);
      }
      return this.takeOf(subject, reason, null, [{ current: subject, recordAs: subject }], "none");
    }
    const install = this.options.installs.get(app.repo, app.name);
    if (!install) throw new TownError("not_found", `${subject} is not installed`);
    const { volumes, quiesce } = installGroup(install);
    return this.takeOf(subject, reason, pointApp(install), volumes, quiesce);
  }

  /**
   * Takes a whole-box restore point: every app's volumes (each app quiesced
   * in turn, as its package says) and every person's volume, under one id,
   * recorded with the box's desired state.
   */
  private async takeBox(reason: RestorePointReason): Promise<RestorePointRecord> {
    const driver = this.options.storage();
    const installs = this.options.installs.list();
    const people = (await driver.list()).filter(
      (volume) => parseVolumeName(volume.name)?.kind === "user",
    );
    const groups: VolumeGroup[] = [
      ...installs.map((install) => ({ app: pointApp(install), ...installGroup(install) })),
      {
        app: null,
        quiesce: "none",
        volumes: people.map(({ name }) => ({ current: name, recordAs: name })),
      },
    ];
    const box: BoxState = {
      apps: installs.map((install) => ({
        ...pointApp(install),
        running: install.running,
        exposures: install.exposures,
      })),
      ...this.options.desiredState(),
    };
    return this.takeGroups(BOX_SUBJECT, reason, groups, { app: null, box });
  }

  /**
   * Snapshots `volumes` (those that exist) under one new id and records the
   * point; quiesces `app` as asked. A failure leaves no snapshot of it behind.
   */
  takeOf(
    subject: string,
    reason: RestorePointReason,
    app: PointApp | null,
    volumes: readonly PointVolume[],
    quiesce: Quiesce,
  ): Promise<RestorePointRecord> {
    return this.takeGroups(subject, reason, [{ app, quiesce, volumes: [...volumes] }], { app });
  }

  /** Snapshots the groups' volumes that exist under one new id, each group quiesced while its are taken. */
  private async takeGroups(
    subject: string,
    reason: RestorePointReason,
    groups: readonly VolumeGroup[],
    record: Pick<RestorePointRecord, "app" | "box">,
  ): Promise<RestorePointRecord> {
    // An app without volumes has a restore point too (its version and answers), storage or not.
    const driver = groups.some((group) => group.volumes.length > 0)
      ? this.options.storage()
      : undefined;
    const present: VolumeGroup[] = [];
    for (const group of groups) {
      const volumes: PointVolume[] = [];
      for (const volume of group.volumes) {
        if (await driver?.exists(volume.current)) volumes.push(volume);
      }
      present.push({ ...group, volumes });
    }
    const all = present.flatMap((group) => group.volumes);
    const id = await this.newId(driver, subject, reason, all);
    const taken: string[] = [];
    try {
      for (const group of present) {
        if (!driver || group.volumes.length === 0) continue;
        const release = await this.quiesce(group.app, group.quiesce);
        try {
          for (const volume of group.volumes) {
            await driver.snapshot(volume.current, id);
            taken.push(volume.current);
          }
        } finally {
          await release();
        }
      }
    } catch (error) {
      for (const volume of taken) await driver?.removeSnapshot(volume, id).catch(() => false);
      throw error;
    }
    const point: RestorePointRecord = {
      id,
      subject,
      ...record,
      reason,
      quiesce: strongest(present.map((group) => group.quiesce)),
      volumes: all.map((volume) => volume.recordAs),
      createdAt: this.options.clock(),
    };
    this.options.records.add(point);
    return point;
  }

  list(subject?: string): RestorePointRecord[] {
    return this.options.records.list(subject);
  }

  /** @throws `not_found` */
  get(subject: string, id: string): RestorePointRecord {
    const point = this.options.records.get(subject, id);
    if (!point) throw new TownError("not_found", `${subject} has no restore point ${id}`);
    return point;
  }

  /** The point as the API shows it: which snapshots are still there, and what each holds alone. */
  async view(point: RestorePointRecord): Promise<RestorePointView> {
    const volumes = [];
    for (const volume of point.volumes) {
      const driver = this.options.storage();
      const snapshots = await driver.listSnapshots(volume);
      const present = snapshots.some((snapshot) => snapshot.name === point.id);
      volumes.push({
        volume,
        snapshot: point.id,
        present,
        exclusiveBytes: present
          ? ((await driver.snapshotUsage(volume, point.id).catch(() => null))?.exclusiveBytes ??
            null)
          : null,
      });
    }
    return {
      id: point.id,
      subject: point.subject,
      app: point.app && { repo: point.app.repo, name: point.app.name },
      reason: point.reason,
      version: point.app?.version ?? null,
      answers: point.app?.answers ?? null,
      quiesce: point.quiesce,
      createdAt: point.createdAt,
      volumes,
    };
  }

  async sources(point: RestorePointRecord): Promise<BackupSource[]> {
    const driver = this.options.storage();
    const sources: BackupSource[] = [];
    // Ordered by the restore points' records: a btrfs snapshot keeps its volume's birth and
    // change times, so the snapshots' own times are the same for all of them.
    const records = this.options.records.list();
    for (const volume of point.volumes) {
      const takenAt = new Map(
        records.filter((r) => r.volumes.includes(volume)).map((r) => [r.id, r.createdAt]),
      );
      const snapshots = await driver.listSnapshots(volume);
      const own = snapshots.find((snapshot) => snapshot.name === point.id);
      if (!own) {
        throw new TownError(
          "not_found",
          `the snapshot ${point.id} of volume ${volume} is gone: restore point ${point.id} cannot be read`,
        );
      }
      const earlier = snapshots.flatMap((snapshot) => {
        const at = takenAt.get(snapshot.name);
        return at !== undefined && at < point.createdAt ? [{ snapshot, at }] : [];
      });
      sources.push({
        volume,
        snapshot: point.id,
        path: own.path,
        earlier: earlier
          .sort((a, b) => a.at - b.at)
          .map(({ snapshot }) => ({ name: snapshot.name, path: snapshot.path })),
      });
    }
    return sources;
  }

  async remove(subject: string, id: string): Promise<void> {
    const point = this.options.records.get(subject, id);
    if (!point) return;
    const driver = this.options.storage();
    for (const volume of point.volumes) await driver.removeSnapshot(volume, id);
    this.options.records.remove(subject, id);
  }

  /** `YYYYMMDDTHHMMSSZ-<reason>`, with `-2`… when taken already (by name or by a snapshot of one of the volumes). */
  private async newId(
    driver: StorageDriver | undefined,
    subject: string,
    reason: RestorePointReason,
    volumes: readonly PointVolume[],
  ): Promise<string> {
    const base = `${timestamp(new Date(this.options.clock()))}-${reason}`;
    const taken = new Set<string>();
    for (const volume of volumes) {
      for (const snapshot of (await driver?.listSnapshots(volume.current)) ?? []) {
        taken.add(snapshot.name);
      }
    }
    for (let suffix = 1; suffix <= MAX_SUFFIX; suffix++) {
      const id = suffix === 1 ? base : `${base}-${suffix}`;
      if (!taken.has(id) && !this.options.records.get(subject, id)) return id;
    }
    throw new TownError("conflict", `too many restore points of ${subject} in one second`);
  }

  /** Quiesces the app; resolves to what undoes it. */
  private async quiesce(app: PointApp | null, quiesce: Quiesce): Promise<() => Promise<void>> {
    if (!app?.plan || quiesce === "none") return () => Promise.resolve();
    const nodes = flattenPlan(app.plan);
    if (quiesce === "stop") {
      // Stopped here (the app before its dependencies) to give each the time its package asks for.
      return this.options.holdApp(app.repo, app.name, async () => {
        for (const { plan } of [...nodes].reverse()) {
          const timeoutSeconds = plan.backup?.timeoutSeconds;
          if (timeoutSeconds !== undefined) {
            await this.options.workloads().stop(plan.hostname, { timeoutSeconds });
          }
        }
      });
    }
    for (const { plan } of nodes) {
      const backup = plan.backup ?? null;
      if (backup?.quiesce !== "command") continue;
      const result = await this.options
        .workloads()
        .exec(plan.hostname, backup.command, {
          timeoutMs: backup.timeoutSeconds * 1000,
          maxOutputBytes: 64 * 1024,
        })
        // A container that does not run has nothing in flight: its volumes are quiet already.
        .catch((error: unknown) => {
          if (error instanceof TownError && error.code === "conflict") return undefined;
          throw error;
        });
      if (result && result.exitCode !== 0) {
        throw new TownError(
          "io",
          `the quiesce command of ${plan.hostname} failed (exit ${result.exitCode}): ${lastLine(result.stderr || result.stdout)}`,
        );
      }
    }
    return () => Promise.resolve();
  }
}

/** `repo/name` split, or undefined for a volume name (which holds no `/`). */
export function splitApp(subject: string): { repo: string; name: string } | undefined {
  const slash = subject.indexOf("/");
  if (slash < 0) return undefined;
  const repo = subject.slice(0, slash);
  const name = subject.slice(slash + 1);
  if (!repo || !name || name.includes("/")) {
    throw new TownError("invalid_argument", `"${subject}" is neither repo/name nor a volume name`);
  }
  return { repo, name };
}

/** Every volume of every node of the plan, by name. */
export function planVolumes(plan: CompiledPackage): string[] {
  return flattenPlan(plan).flatMap(({ plan: node }) =>
    node.volumes.map((volume) => nodeVolumeName(node, volume.name)),
  );
}

/** The strongest quiesce any node of the plan declares. */
export function quiesceOf(plan: CompiledPackage): Quiesce {
  return strongest(flattenPlan(plan).map(({ plan: node }) => node.backup?.quiesce ?? "none"));
}

/** Stop over command over none. */
function strongest(declared: readonly Quiesce[]): Quiesce {
  if (declared.includes("stop")) return "stop";
  return declared.includes("command") ? "command" : "none";
}

/** What a restore point records of an installed app. */
function pointApp(install: InstallRecord): PointApp {
  return {
    repo: install.repo,
    name: install.name,
    version: install.version,
    definitionHash: install.definitionHash,
    answers: install.answers,
    plan: install.plan,
  };
}

/** The install's volumes, and how its package says to quiesce it. */
function installGroup(install: InstallRecord): Omit<VolumeGroup, "app"> {
  const volumes = install.plan ? planVolumes(install.plan) : [];
  return {
    quiesce: install.plan ? quiesceOf(install.plan) : "none",
    volumes: volumes.map((volume) => ({ current: volume, recordAs: volume })),
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return (lines[lines.length - 1] ?? "").slice(0, 300);
}
