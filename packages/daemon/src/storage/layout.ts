/**
 * What both storage drivers share: the layout of the storage root
 * (`names.ts`), name checks, locking, the staging of new volumes in
 * `<root>/tmp` so that they appear complete or not at all, renames that
 * carry snapshots along, and restores that swap a snapshot's copy in.
 * Subclasses supply the file-system primitives.
 *
 * A restore builds a writable copy of the snapshot in `<root>/tmp/<id>`
 * (`fresh`), then writes `<root>/tmp/restore-<id>` (JSON: the volume's path,
 * `fresh`, and `old`, a path in tmp) and swaps: the volume moves to `old`,
 * `fresh` moves to the volume's path, the marker and `old` are deleted. Node
 * has no renameat2(RENAME_EXCHANGE), so the swap is two renames; `open`
 * finishes a swap whose marker it finds (a copy without a marker is just
 * deleted with the rest of tmp).
 */
import { randomBytes } from "node:crypto";
import {
  chmod,
  chown,
  lstat,
  mkdir,
  opendir,
  readFile,
  realpath,
  rename,
  rm,
  rmdir,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { TownError } from "@townos/format";
import type {
  CreateVolumeOptions,
  SnapshotInfo,
  StorageCapabilities,
  StorageDriver,
  VolumeDetails,
  VolumeInfo,
  VolumeUsage,
} from "./driver.js";
import { KeyedLock } from "../system/mutex.js";
import {
  checkSnapshotName,
  isValidSnapshotName,
  parseVolumeName,
  snapshotPath,
  snapshotsDir,
  SNAPSHOTS_DIR,
  TMP_DIR,
  volumePath,
  VOLUMES_DIR,
} from "./names.js";
import { checkOwner, errnoCode, ioError, lstatOrUndefined, type Owner } from "./safe-fs.js";
import { recoverStaging, removeLeftovers } from "./staging.js";
import { chownTree, withDirectory } from "./tree.js";

/** Smallest quota accepted: anything less leaves a volume unusable. */
export const MIN_QUOTA_BYTES = 1024 * 1024;

/** Mode of a new volume's root: like podman's named volumes. */
const VOLUME_MODE = 0o755;

export interface Accounting {
  quota: number | null;
  usage: VolumeUsage;
}

export abstract class LayoutDriver implements StorageDriver {
  abstract readonly kind: "btrfs" | "directory";
  abstract readonly capabilities: StorageCapabilities;
  private readonly lock = new KeyedLock();

  protected constructor(readonly root: string) {}

  /** Makes an empty volume at `path` (absent). */
  protected abstract makeVolume(path: string): Promise<void>;
  /** Deletes a volume, snapshot or leftover at `path`, whatever it holds. */
  protected abstract deleteTree(path: string): Promise<void>;
  protected abstract applyQuota(path: string, bytes: number | null): Promise<void>;
  protected abstract account(path: string, sync: boolean): Promise<Accounting>;
  /** Makes `target` (absent) a snapshot of `source`; it must appear complete or not at all. */
  protected abstract makeSnapshot(source: string, target: string): Promise<void>;
  /** Makes `target` (absent, in `<root>/tmp`) a writable copy of the snapshot at `snapshot`. */
  protected abstract makeWritableCopy(snapshot: string, target: string): Promise<void>;
  /** Bytes only the snapshot at `path` holds; null when the driver cannot tell cheaply. */
  protected abstract snapshotExclusive(path: string, sync: boolean): Promise<number | null>;

  path(name: string): string {
    return volumePath(this.root, name);
  }

  /**
   * Creates the layout and recovers from a crash: uploads and seeds staged
   * complete are moved into their volumes, the rest of `<root>/tmp` is
   * deleted, and so are leftovers inside volumes (see `removeLeftovers`).
   */
  protected async prepare(): Promise<void> {
    const volumes = join(this.root, VOLUMES_DIR);
    await mkdir(volumes, { recursive: true, mode: 0o755 });
    await mkdir(join(this.root, SNAPSHOTS_DIR), { recursive: true, mode: 0o700 });
    const tmp = join(this.root, TMP_DIR);
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    const realVolumes = await realpath(volumes);
    await this.recoverRestores(
      tmp,
      (target) =>
        (dirname(target) === realVolumes || dirname(target) === volumes) &&
        parseVolumeName(basename(target)) !== undefined,
    );
    await recoverStaging(
      tmp,
      (target) =>
        dirname(target) === realVolumes && parseVolumeName(basename(target)) !== undefined,
    );
    for await (const dirent of await opendir(tmp)) await this.deleteTree(join(tmp, dirent.name));
    for (const { path } of await this.list()) {
      // Apps may run meanwhile: one racing the delete keeps its leftovers until the next start.
      await withDirectory(path, removeLeftovers).catch(() => undefined);
    }
  }

  /** Where uploads and seeds stage their content: private, emptied by `open`, on the volumes' file system. */
  get stagingRoot(): string {
    return join(this.root, TMP_DIR);
  }

  /** A fresh path in `<root>/tmp`: same file system as the volumes, so renames work. */
  protected tmpPath(): string {
    return join(this.root, TMP_DIR, randomBytes(8).toString("hex"));
  }

  async create(
    name: string,
    options: CreateVolumeOptions = {},
  ): Promise<{ created: boolean; volume: VolumeInfo }> {
    const path = this.path(name);
    if (options.quota !== undefined) checkQuota(options.quota);
    checkOwner(options.owner);
    return this.locked([name], `create ${name}`, async () => {
      if (await this.present(path)) {
        if (options.quota !== undefined) await this.applyQuota(path, this.enforced(options.quota));
        return { created: false, volume: { name, path } };
      }
      const staged = this.tmpPath();
      await this.makeVolume(staged);
      try {
        await chmod(staged, VOLUME_MODE);
        if (options.owner) await chown(staged, options.owner.uid, options.owner.gid);
        const quota = this.enforced(options.quota ?? null);
        if (quota !== null) await this.applyQuota(staged, quota);
        await rename(staged, path);
      } catch (error) {
        await this.deleteTree(staged);
        throw error;
      }
      return { created: true, volume: { name, path } };
    });
  }

  async remove(name: string): Promise<boolean> {
    const path = this.path(name);
    return this.locked([name], `remove ${name}`, async () => {
      await this.removeSnapshots(name);
      if (!(await this.present(path))) return false;
      // Out of sight first: a crash part way leaves garbage in tmp/, not half a volume.
      const doomed = this.tmpPath();
      await rename(path, doomed);
      await this.deleteTree(doomed);
      return true;
    });
  }

  async exists(name: string): Promise<boolean> {
    const path = this.path(name);
    try {
      return await this.present(path);
    } catch (error) {
      throw ioError(`storage: ${name}`, error);
    }
  }

  async get(name: string): Promise<VolumeDetails | undefined> {
    const path = this.path(name);
    return this.locked([name], `get ${name}`, async () => {
      const stats = await lstatOrUndefined(path);
      if (!stats?.isDirectory()) return undefined;
      const { quota, usage } = await this.account(path, false);
      return { name, path, quota, owner: { uid: stats.uid, gid: stats.gid }, usage };
    });
  }

  async attributes(name: string): Promise<{ quota: number | null; owner: Owner } | undefined> {
    const path = this.path(name);
    return this.locked([name], `attributes of ${name}`, async () => {
      const stats = await lstatOrUndefined(path);
      if (!stats?.isDirectory()) return undefined;
      const quota = this.capabilities.quotas ? (await this.account(path, false)).quota : null;
      return { quota, owner: { uid: stats.uid, gid: stats.gid } };
    });
  }

  async setOwner(name: string, owner: Owner): Promise<void> {
    const path = this.path(name);
    checkOwner(owner);
    await this.locked([name], `set owner of ${name}`, async () => {
      await this.mustExist(name, path);
      await chownTree(path, owner);
    });
  }

  async list(): Promise<VolumeInfo[]> {
    const dir = join(this.root, VOLUMES_DIR);
    const volumes: VolumeInfo[] = [];
    try {
      for await (const dirent of await opendir(dir)) {
        if (dirent.isDirectory() && parseVolumeName(dirent.name)) {
          volumes.push({ name: dirent.name, path: join(dir, dirent.name) });
        }
      }
    } catch (error) {
      throw ioError("storage: list volumes", error);
    }
    return volumes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async setQuota(name: string, bytes: number | null): Promise<void> {
    const path = this.path(name);
    checkQuota(bytes);
    await this.locked([name], `set quota of ${name}`, async () => {
      await this.mustExist(name, path);
      await this.applyQuota(path, this.enforced(bytes));
    });
  }

  async usage(name: string, options: { sync?: boolean } = {}): Promise<VolumeUsage> {
    const path = this.path(name);
    return this.locked([name], `usage of ${name}`, async () => {
      await this.mustExist(name, path);
      return (await this.account(path, options.sync ?? false)).usage;
    });
  }

  async snapshot(
    name: string,
    snapshot: string,
  ): Promise<{ created: boolean; snapshot: SnapshotInfo }> {
    const source = this.path(name);
    const target = snapshotPath(this.root, name, snapshot);
    return this.locked([name], `snapshot ${name}`, async () => {
      await this.mustExist(name, source);
      const existing = await this.snapshotInfo(name, snapshot);
      if (existing) return { created: false, snapshot: existing };
      await mkdir(snapshotsDir(this.root, name), { recursive: true, mode: 0o700 });
      await this.makeSnapshot(source, target);
      const made = await this.snapshotInfo(name, snapshot);
      if (!made) throw new TownError("io", `snapshot ${snapshot} did not appear`);
      return { created: true, snapshot: made };
    });
  }

  async listSnapshots(name: string): Promise<SnapshotInfo[]> {
    const dir = snapshotsDir(this.root, name);
    return this.locked([name], `list snapshots of ${name}`, async () =>
      this.snapshotInfos(name, await this.snapshotNames(dir)),
    );
  }

  async removeSnapshot(name: string, snapshot: string): Promise<boolean> {
    const path = snapshotPath(this.root, name, snapshot);
    return this.locked([name], `remove snapshot ${snapshot} of ${name}`, async () => {
      if (!(await lstatOrUndefined(path))?.isDirectory()) return false;
      await this.deleteTree(path);
      return true;
    });
  }

  async snapshotUsage(
    name: string,
    snapshot: string,
    options: { sync?: boolean } = {},
  ): Promise<{ exclusiveBytes: number | null }> {
    const path = snapshotPath(this.root, name, snapshot);
    return this.locked([name], `usage of snapshot ${snapshot} of ${name}`, async () => {
      if (!(await lstatOrUndefined(path))?.isDirectory())
        throw new TownError("not_found", `volume ${name} has no snapshot ${snapshot}`);
      return { exclusiveBytes: await this.snapshotExclusive(path, options.sync ?? false) };
    });
  }

  async restoreSnapshot(name: string, snapshot: string): Promise<void> {
    const path = this.path(name);
    checkSnapshotName(snapshot);
    const source = snapshotPath(this.root, name, snapshot);
    await this.locked([name], `restore ${name} to snapshot ${snapshot}`, async () => {
      await this.mustExist(name, path);
      if (!(await lstatOrUndefined(source))?.isDirectory())
        throw new TownError("not_found", `volume ${name} has no snapshot ${snapshot}`);
      const live = await lstat(path);
      const quota = this.capabilities.quotas ? (await this.account(path, false)).quota : null;
      const fresh = this.tmpPath();
      const old = this.tmpPath();
      const marker = join(this.root, TMP_DIR, `${RESTORE_PREFIX}${basename(fresh)}`);
      try {
        await this.makeWritableCopy(source, fresh);
        await chown(fresh, live.uid, live.gid);
        await chmod(fresh, live.mode & 0o7777);
        // Always: a copy of a snapshot may carry the limit the volume had then.
        if (this.capabilities.quotas) await this.applyQuota(fresh, quota);
        const plan: RestorePlan = { target: path, fresh, old };
        await writeFile(`${marker}.part`, JSON.stringify(plan), { mode: 0o600 });
        await rename(`${marker}.part`, marker);
      } catch (error) {
        await rm(`${marker}.part`, { force: true });
        await this.deleteTree(fresh);
        throw error;
      }
      // From here on the restore happens: `open` finishes it after a crash.
      await this.finishRestore({ target: path, fresh, old }, marker);
    });
  }

  async rename(from: string, to: string): Promise<void> {
    const fromPath = this.path(from);
    const toPath = this.path(to);
    if (from === to)
      throw new TownError("invalid_argument", `storage: cannot rename ${from} to itself`);
    await this.locked([from, to], `rename ${from} to ${to}`, async () => {
      const fromPresent = await this.present(fromPath);
      const toPresent = await this.present(toPath);
      if (fromPresent && toPresent)
        throw new TownError("conflict", `a volume named ${to} exists already`);
      if (!fromPresent && !toPresent)
        throw new TownError("not_found", `there is no volume ${from}`);
      if (fromPresent) await rename(fromPath, toPath);
      // Second, so that a retry after a crash in between still brings them along.
      await this.moveSnapshots(from, to);
    });
  }

  // -------------------------------------------------------------------------

  /** Completes a restore whose marker was written: swaps `fresh` in, deletes `old` and the marker. */
  private async finishRestore(plan: RestorePlan, marker: string): Promise<void> {
    if (await lstatOrUndefined(plan.fresh)) {
      if ((await lstatOrUndefined(plan.target)) && !(await lstatOrUndefined(plan.old)))
        await rename(plan.target, plan.old);
      await rename(plan.fresh, plan.target);
    }
    await this.deleteTree(plan.old);
    await rm(marker, { force: true });
  }

  /** Finishes the restores a crash interrupted after their marker was written (see the top). */
  private async recoverRestores(tmp: string, isTarget: (path: string) => boolean): Promise<void> {
    const markers: string[] = [];
    for await (const dirent of await opendir(tmp)) {
      if (dirent.isFile() && RESTORE_MARKER.test(dirent.name)) markers.push(dirent.name);
    }
    for (const name of markers) {
      const marker = join(tmp, name);
      const plan = parsePlan(await readFile(marker, "utf8").catch(() => ""));
      const inTmp = (path: string): boolean =>
        dirname(path) === tmp && /^[0-9a-f]{16}$/.test(basename(path));
      if (plan && isTarget(plan.target) && inTmp(plan.fresh) && inTmp(plan.old)) {
        await this.finishRestore(plan, marker);
      }
      await rm(marker, { force: true });
    }
  }

  /** The quota to apply: none when the driver does not enforce quotas. */
  private enforced(bytes: number | null): number | null {
    return this.capabilities.quotas ? bytes : null;
  }

  private async present(path: string): Promise<boolean> {
    const stats = await lstatOrUndefined(path);
    if (!stats) return false;
    if (!stats.isDirectory()) throw new TownError("io", `${path} is not a directory`);
    return true;
  }

  private async mustExist(name: string, path: string): Promise<void> {
    if (!(await this.present(path))) throw new TownError("not_found", `there is no volume ${name}`);
  }

  private async snapshotNames(dir: string): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const dirent of await opendir(dir)) {
        if (dirent.isDirectory() && isValidSnapshotName(dirent.name)) names.push(dirent.name);
      }
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return [];
      throw error;
    }
    return names.sort();
  }

  /**
   * When each of the volume's snapshots `names` (present) was taken, by name:
   * here for snapshots that are copies, their birth time where the file system
   * records it (ext4, xfs), else their last change.
   */
  protected async snapshotTimes(
    volume: string,
    names: readonly string[],
  ): Promise<Map<string, Date>> {
    const times = new Map<string, Date>();
    for (const name of names) {
      const stats = await lstat(snapshotPath(this.root, volume, name));
      times.set(name, stats.birthtimeMs > 0 ? stats.birthtime : stats.mtime);
    }
    return times;
  }

  private async snapshotInfo(volume: string, name: string): Promise<SnapshotInfo | undefined> {
    checkSnapshotName(name);
    const path = snapshotPath(this.root, volume, name);
    if (!(await lstatOrUndefined(path))?.isDirectory()) return undefined;
    const [info] = await this.snapshotInfos(volume, [name]);
    return info;
  }

  /** The volume's snapshots `names` (present), in that order. */
  private async snapshotInfos(volume: string, names: readonly string[]): Promise<SnapshotInfo[]> {
    if (names.length === 0) return [];
    const times = await this.snapshotTimes(volume, names);
    return names.map((name) => {
      const createdAt = times.get(name);
      if (!createdAt) throw new TownError("io", `no creation time for snapshot ${name}`);
      return { volume, name, path: snapshotPath(this.root, volume, name), createdAt };
    });
  }

  private async removeSnapshots(name: string): Promise<void> {
    const dir = snapshotsDir(this.root, name);
    if (!(await lstatOrUndefined(dir))) return;
    for await (const dirent of await opendir(dir)) await this.deleteTree(join(dir, dirent.name));
    await rmdir(dir);
  }

  private async moveSnapshots(from: string, to: string): Promise<void> {
    const fromDir = snapshotsDir(this.root, from);
    const toDir = snapshotsDir(this.root, to);
    if (!(await lstatOrUndefined(fromDir))) return;
    // Read-only snapshots cannot move between directories (EROFS), so two sets never merge.
    if (await lstatOrUndefined(toDir)) {
      try {
        await rmdir(toDir);
      } catch (error) {
        if (errnoCode(error) !== "ENOTEMPTY") throw error;
        throw new TownError("conflict", `snapshots of ${from} cannot join those ${to} already has`);
      }
    }
    await rename(fromDir, toDir);
  }

  /** Runs `work` holding the volumes' locks; failures get the operation as context. */
  private async locked<T>(names: string[], operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await this.lock.run(names, work);
    } catch (error) {
      if (error instanceof TownError && error.code !== "io" && error.code !== "payload_too_large") {
        throw error;
      }
      throw ioError(`storage: ${operation}`, error);
    }
  }
}

const RESTORE_PREFIX = "restore-";
const RESTORE_MARKER = /^restore-[0-9a-f]{16}$/;

/** What a restore swaps, written to its marker before the swap starts. */
interface RestorePlan {
  target: string;
  fresh: string;
  old: string;
}

function parsePlan(text: string): RestorePlan | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return undefined;
    const { target, fresh, old } = value as Record<string, unknown>;
    if (typeof target !== "string" || typeof fresh !== "string" || typeof old !== "string")
      return undefined;
    return { target, fresh, old };
  } catch {
    return undefined;
  }
}

/** @throws TownError `invalid_argument` for a quota that is not null or a whole number of bytes ≥ 1 MiB. */
function checkQuota(bytes: number | null): void {
  if (bytes === null) return;
  if (!Number.isSafeInteger(bytes) || bytes < MIN_QUOTA_BYTES) {
    throw new TownError(
      "invalid_argument",
      `storage: a quota must be a whole number of bytes, at least ${MIN_QUOTA_BYTES}`,
    );
  }
}
