/**
 * Volumes as people see them: listing with kind, owning app, quota, usage and
 * snapshots; user volumes made and removed; quotas; snapshots; archives
 * uploaded into a volume (streamed, bounded, hostile entries refused and
 * reported) and downloaded out of one (streamed).
 *
 * Storage is set up in the background after the API is ready: until
 * `attach`, every call answers `unavailable` with the reason.
 */
import { statfs } from "node:fs/promises";
import type { Readable } from "node:stream";
import { parseByteSize, TownError, type CompiledPackage } from "@townos/format";
import {
  packVolume,
  unpackArchive,
  type PackFormat,
  type UnpackResult,
} from "../storage/archive.js";
import type { Owner, SnapshotInfo, StorageCapabilities, StorageDriver } from "../storage/driver.js";
import {
  checkSnapshotName,
  checkVolumeName,
  parseVolumeName,
  printable,
  timestamp,
  userVolumeName,
} from "../storage/names.js";
import type { StorageMode, StorageSetup } from "../storage/setup.js";
import type { SettingKey } from "../store/settings.js";
import { nodeVolumeName } from "../apps/names.js";
import { flattenPlan } from "../apps/names.js";

/**
 * Stops whatever uses a volume so that it can be written from outside.
 * `holdVolume` resolves once nothing runs on the volume (nothing to stop is
 * fine) and returns the function that starts it all again.
 */
export interface VolumeHolder {
  holdVolume(volumeName: string): Promise<() => Promise<void>>;
}

/**
 * Told before a change that could lose a volume's data, so that a restore
 * point keeps what was there; a hook that fails stops the change.
 */
export type VolumeChangeHook = (
  volume: string,
  reason: "quota" | "upload" | "restore",
) => Promise<unknown>;

export interface VolumesOptions {
  settings: { number(key: SettingKey): number };
  /** Package volume name → the app (`repo/name`) that has it: installed, or being uninstalled. */
  volumeUsers: () => ReadonlyMap<string, string>;
  holder: VolumeHolder;
}

export type VolumeKind = "package" | "user" | "uninstalled";

export interface VolumeView {
  name: string;
  kind: VolumeKind;
  /** Package and uninstalled volumes: the package instance they were made for. */
  package: { repo: string; instance: string; volume: string } | null;
  /** The app (`repo/name`) that uses the volume now; null when none does. */
  usedBy: string | null;
  /** Uninstalled volumes: when their app was uninstalled (ms since the epoch). */
  uninstalledAt: number | null;
  /** Bytes the file system enforces; null: none (always null when quotas are not enforced). */
  quota: number | null;
  usedBytes: number;
  /** Bytes freed by removing the volume; null when the driver cannot tell. */
  exclusiveBytes: number | null;
  /** `usedBytes` is a lower bound: measuring stopped at its limits. */
  usagePartial: boolean;
  owner: Owner;
  snapshots: number;
}

export interface StorageView {
  mode: StorageMode;
  /** Why this storage, in a sentence. */
  reason: string;
  capabilities: StorageCapabilities;
  /** What is and is not enforced, said plainly. */
  notes: string[];
  /** The file system the volumes are on; null when it cannot be read. */
  disk: { totalBytes: number; freeBytes: number } | null;
}

export interface SnapshotView {
  volume: string;
  name: string;
  createdAt: number;
}

export interface RestoreResult {
  volume: string;
  /** The snapshot whose content the volume has now. */
  snapshot: SnapshotView;
  /** The app stopped during the restore and started again after, if any. */
  heldApp: string | null;
}

export interface UploadResult extends UnpackResult {
  volume: string;
  /** The app stopped during the unpack and started again after, if any. */
  heldApp: string | null;
}

export interface UploadOptions {
  /** The declared size (Content-Length), checked before anything is read. */
  declaredBytes?: number;
  signal?: AbortSignal;
}

/** The longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Volumes {
  private storage: StorageSetup | undefined;
  private unavailableReason = "storage is being set up";
  private beforeChange: VolumeChangeHook | undefined;

  constructor(private readonly options: VolumesOptions) {}

  /** Restore points before quota changes, uploads and restores. */
  setChangeHook(hook: VolumeChangeHook): void {
    this.beforeChange = hook;
  }

  /** The storage driver. @throws `unavailable` until storage is set up */
  storageDriver(): StorageDriver {
    return this.driver();
  }

  /** Says why there is no storage; ignored once storage is attached. */
  setUnavailable(reason: string): void {
    this.unavailableReason = reason;
  }

  /** Storage is ready: calls are answered from now on. */
  attach(setup: StorageSetup): void {
    this.storage = setup;
  }

  private setup(): StorageSetup {
    if (!this.storage) {
      throw new TownError("unavailable", `volumes cannot be used: ${this.unavailableReason}`, {
        retryAfter: 5,
      });
    }
    return this.storage;
  }

  private driver(): StorageDriver {
    return this.setup().driver;
  }

  /** The storage mode and what it enforces. @throws `unavailable` */
  async info(): Promise<StorageView> {
    const { mode, reason, driver } = this.setup();
    const { capabilities } = driver;
    const disk = await statfs(driver.root).then(
      (stats) => ({
        totalBytes: stats.blocks * stats.bsize,
        freeBytes: stats.bavail * stats.bsize,
      }),
      () => null,
    );
    return {
      mode,
      reason,
      disk,
      capabilities: { ...capabilities },
      notes: [
        capabilities.quotas
          ? "Quotas are enforced: writing past one fails."
          : "Quotas are NOT enforced: a volume can fill the whole disk.",
        capabilities.snapshots === "atomic"
          ? "Snapshots are instant, read-only and share space with their volume."
          : "Snapshots are full copies: slow, as large as the volume, and not read-only.",
        capabilities.usage === "accounted"
          ? "Usage is kept by the file system and may lag writes by up to 30 seconds."
          : "Usage is measured by walking each volume: slow for large ones.",
      ],
    };
  }

  /** Every volume with its figures. Cost: one usage reading per volume (see the driver). */
  async list(): Promise<VolumeView[]> {
    const driver = this.driver();
    const users = this.options.volumeUsers();
    const views: VolumeView[] = [];
    for (const { name } of await driver.list()) {
      // Something that is not a volume name was put there by hand: not ours to show.
      if (!parseVolumeName(name)) continue;
      const view = await this.viewOf(driver, name, users);
      if (view) views.push(view);
    }
    return views;
  }

  /** @throws `not_found`, `invalid_argument` */
  async get(name: string): Promise<VolumeView> {
    const driver = this.driver();
    checkVolumeName(name);
    const view = await this.viewOf(driver, name, this.options.volumeUsers());
    if (!view) throw notFound(name);
    return view;
  }

  /**
   * Makes the user volume `user.<name>` with `quota` bytes (default: the
   * `storage.default_quota` setting). @throws `invalid_argument` (bad or
   * reserved name), `conflict` (exists)
   */
  async create(name: string, quota?: number | string | null): Promise<VolumeView> {
    const driver = this.driver();
    const volume = userVolumeName(name);
    const bytes =
      quota === undefined ? this.options.settings.number("storage.default_quota") : toBytes(quota);
    if (await driver.exists(volume)) {
      throw new TownError("conflict", `volume ${volume} exists already`);
    }
    const { created } = await driver.create(volume, { quota: bytes });
    if (!created) throw new TownError("conflict", `volume ${volume} exists already`);
    return this.get(volume);
  }

  /**
   * Deletes a volume with its snapshots. A package volume is refused while
   * an app has it: uninstall the app (with purge) instead.
   * @throws `not_found`, `conflict`
   */
  async remove(name: string): Promise<void> {
    const driver = this.driver();
    const parsed = checkVolumeName(name);
    const user = this.options.volumeUsers().get(name);
    if (parsed.kind === "package" && user !== undefined) {
      throw new TownError(
        "conflict",
        `volume ${name} belongs to the installed app ${user}; uninstall it with purge to delete its volumes`,
      );
    }
    if (!(await driver.remove(name))) throw notFound(name);
  }

  /** Sets (bytes or "10gb") or lifts (null) a quota. @throws `not_found`, `invalid_argument` */
  async setQuota(name: string, quota: number | string | null): Promise<VolumeView> {
    const driver = this.driver();
    checkVolumeName(name);
    const bytes = toBytes(quota);
    if (!(await driver.exists(name))) throw notFound(name);
    await this.beforeChange?.(name, "quota");
    await driver.setQuota(name, bytes);
    return this.get(name);
  }

  /** @throws `not_found` */
  async snapshots(name: string): Promise<SnapshotView[]> {
    const driver = this.driver();
    checkVolumeName(name);
    if (!(await driver.exists(name))) throw notFound(name);
    return (await driver.listSnapshots(name)).map(snapshotView);
  }

  /**
   * Takes a snapshot named `snapshot` (default: the time, `YYYYMMDDTHHMMSSZ`).
   * @throws `not_found`, `conflict` (a snapshot of that name exists)
   */
  async snapshot(name: string, snapshot: string = timestamp(new Date())): Promise<SnapshotView> {
    const driver = this.driver();
    checkVolumeName(name);
    checkSnapshotName(snapshot);
    if (!(await driver.exists(name))) throw notFound(name);
    const taken = await driver.snapshot(name, snapshot);
    if (!taken.created) {
      throw new TownError("conflict", `volume ${name} has a snapshot named ${snapshot} already`);
    }
    return snapshotView(taken.snapshot);
  }

  /** @throws `not_found` */
  async removeSnapshot(name: string, snapshot: string): Promise<void> {
    const driver = this.driver();
    checkVolumeName(name);
    checkSnapshotName(snapshot);
    if (!(await driver.removeSnapshot(name, snapshot))) {
      throw new TownError("not_found", `volume ${name} has no snapshot named ${snapshot}`);
    }
  }

  /**
   * Makes the volume's content that of `snapshot` (which stays, like the
   * others); the volume keeps its quota and owner. A package volume's app is
   * stopped during the restore and started again after.
   * @throws `not_found` (volume or snapshot)
   */
  async restore(name: string, snapshot: string): Promise<RestoreResult> {
    const driver = this.driver();
    const parsed = checkVolumeName(name);
    checkSnapshotName(snapshot);
    if (!(await driver.exists(name))) throw notFound(name);
    const found = (await driver.listSnapshots(name)).find((entry) => entry.name === snapshot);
    if (!found)
      throw new TownError("not_found", `volume ${name} has no snapshot named ${snapshot}`);
    const heldApp =
      parsed.kind === "package" ? (this.options.volumeUsers().get(name) ?? null) : null;
    const release =
      parsed.kind === "package" ? await this.options.holder.holdVolume(name) : undefined;
    try {
      await this.beforeChange?.(name, "restore");
      await driver.restoreSnapshot(name, snapshot);
      // btrfs accounts at its next commit: without one, lists would show the old usage for up to 30 s.
      await driver.usage(name, { sync: true });
    } finally {
      await release?.();
    }
    return { volume: name, snapshot: snapshotView(found), heldApp };
  }

  /**
   * Unpacks an uploaded archive into a volume (see `unpackArchive`): at most
   * `uploads.max_size` archive bytes, `uploads.unpack_timeout` seconds, and
   * what is left of the volume's quota (else the free space) unpacked. Files
   * belong to the volume's owner. A package volume's app is stopped during
   * the unpack and started again after. `input` is read to its end or destroyed.
   * @throws `not_found`, `payload_too_large`, `invalid_argument`, `conflict`, `io`
   */
  async upload(name: string, input: Readable, options: UploadOptions = {}): Promise<UploadResult> {
    let release: (() => Promise<void>) | undefined;
    try {
      const driver = this.driver();
      const parsed = checkVolumeName(name);
      const maxArchiveBytes = this.options.settings.number("uploads.max_size");
      if (options.declaredBytes !== undefined && options.declaredBytes > maxArchiveBytes) {
        throw tooLarge(maxArchiveBytes);
      }
      const details = await driver.attributes(name);
      if (!details) throw notFound(name);
      const path = driver.path(name);
      const space = await statfs(path);
      const free = space.bavail * space.bsize;
      // Staged outside the volume, so its quota cannot stop the unpack: what is left of it does.
      const left =
        details.quota === null
          ? free
          : details.quota - (await driver.usage(name, { sync: true })).usedBytes;
      const maxBytes = Math.max(0, Math.min(left, free));
      const heldApp =
        parsed.kind === "package" ? (this.options.volumeUsers().get(name) ?? null) : null;
      if (parsed.kind === "package") release = await this.options.holder.holdVolume(name);
      await this.beforeChange?.(name, "upload");
      const timeoutMs = Math.min(
        this.options.settings.number("uploads.unpack_timeout") * 1000,
        MAX_TIMER_MS,
      );
      const result = await unpackArchive(input, "auto", path, {
        stagingRoot: driver.stagingRoot,
        maxBytes,
        maxArchiveBytes,
        timeoutMs,
        owner: details.owner,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      // btrfs accounts writes at its next commit: without one, lists would show the old usage for up to 30 s.
      await driver.usage(name, { sync: true });
      return { volume: name, heldApp, ...result };
    } catch (error) {
      if (!input.destroyed) input.destroy();
      throw error;
    } finally {
      await release?.();
    }
  }

  /**
   * The volume (or `paths` in it) as a tar.gz or tar.xz stream. The volume
   * is read as it is: files written meanwhile may be caught half-written.
   * @throws `not_found`, `invalid_argument` (a bad path)
   */
  async download(
    name: string,
    options: { format: PackFormat; paths?: readonly string[] },
  ): Promise<{ stream: Readable; filename: string }> {
    const driver = this.driver();
    checkVolumeName(name);
    if (!(await driver.exists(name))) throw notFound(name);
    const stream = await packVolume(driver.path(name), {
      format: options.format,
      ...(options.paths && options.paths.length > 0 ? { paths: options.paths } : {}),
    });
    return { stream, filename: `${name}.${options.format}` };
  }

  private async viewOf(
    driver: StorageDriver,
    name: string,
    users: ReadonlyMap<string, string>,
  ): Promise<VolumeView | undefined> {
    const parsed = checkVolumeName(name);
    const details = await driver.get(name);
    if (!details) return undefined;
    const snapshots = await driver.listSnapshots(name);
    return {
      name,
      kind: parsed.kind,
      package:
        parsed.kind === "user"
          ? null
          : { repo: parsed.repo, instance: parsed.instance, volume: parsed.volume },
      usedBy: users.get(name) ?? null,
      uninstalledAt: parsed.kind === "uninstalled" ? parsed.uninstalledAt.getTime() : null,
      quota: details.quota,
      usedBytes: details.usage.usedBytes,
      exclusiveBytes: details.usage.exclusiveBytes,
      usagePartial: details.usage.partial,
      owner: details.owner,
      snapshots: snapshots.length,
    };
  }
}

/**
 * Which app has which package volume: every installed app's plan, and the
 * plans of apps being uninstalled (their volumes are about to move).
 */
export function volumeUsers(
  apps: readonly { repo: string; name: string; plan: CompiledPackage | null }[],
): Map<string, string> {
  const users = new Map<string, string>();
  for (const app of apps) {
    if (!app.plan) continue;
    for (const { plan } of flattenPlan(app.plan)) {
      for (const volume of plan.volumes) {
        users.set(nodeVolumeName(plan, volume.name), `${app.repo}/${app.name}`);
      }
    }
  }
  return users;
}

/** A quota as given: bytes, a size with a unit ("10gb"), or null for none. */
function toBytes(quota: number | string | null): number | null {
  if (quota === null) return null;
  const bytes = typeof quota === "number" ? quota : parseByteSize(quota);
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes < 1024 * 1024) {
    throw new TownError(
      "invalid_argument",
      `quota "${printable(String(quota))}" must be a size of at least 1 MiB, e.g. 1073741824 or 10gb`,
      { issues: [{ field: "quota", message: "must be a size of at least 1 MiB" }] },
    );
  }
  return bytes;
}

function snapshotView(snapshot: SnapshotInfo): SnapshotView {
  return {
    volume: snapshot.volume,
    name: snapshot.name,
    createdAt: snapshot.createdAt.getTime(),
  };
}

function notFound(name: string): TownError {
  return new TownError("not_found", `there is no volume ${name}`);
}

function tooLarge(max: number): TownError {
  return new TownError(
    "payload_too_large",
    `the upload is larger than ${max} bytes (setting uploads.max_size)`,
  );
}
