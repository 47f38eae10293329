/**
 * The storage driver contract: volumes (one directory tree each, named by
 * `names.ts`), their quotas, usage and snapshots.
 *
 * Contract shared by every implementation:
 * - **Idempotent.** Every operation may be repeated, and repeating one that
 *   completed changes nothing: `create` of an existing volume only applies the
 *   quota, `remove` of an absent one does nothing, `rename` that already
 *   happened succeeds. An operation interrupted by a crash is completed or
 *   undone by the next call or by the next `open` of the driver (work in
 *   progress lives in `<root>/tmp`, which `open` empties).
 * - **Hostile content.** A volume's content is written by its app, which may
 *   be hostile: the driver never follows a link inside a volume, and never
 *   keeps its own work in progress there.
 * - **Absent** means: no directory at the volume's path. A volume that is
 *   absent has no snapshots, no quota and no usage.
 * - **Names are validated** (`names.ts`) on every call: a bad name is
 *   TownError `invalid_argument`; a missing volume where one is needed is
 *   `not_found`; a name already taken by another volume is `conflict`.
 * - **Serialized per volume** within one process; different volumes proceed
 *   in parallel. One daemon owns a storage root.
 * - **Errors** are TownErrors with context (`storage: create pkg.x.y.z: …`).
 *
 * Cost is stated per method; "cheap" means a few system calls and no child
 * process.
 */
import type { Owner } from "./safe-fs.js";

export type { Owner };

/** What a driver can do, so the API and UI can state plainly what is not enforced. */
export interface StorageCapabilities {
  /** Quotas are enforced by the file system: writing past one fails with EDQUOT. When false, quotas are not kept at all. */
  quotas: boolean;
  /** `atomic`: read-only, copy-on-write, instant. `copy`: a full copy, slow and not read-only. */
  snapshots: "atomic" | "copy";
  /** `accounted`: kept by the file system, cheap to read. `walked`: measured by walking the tree, slow and bounded. */
  usage: "accounted" | "walked";
}

export interface CreateVolumeOptions {
  /** Quota in bytes; null: none; undefined: leave an existing volume's as it is (new: none). */
  quota?: number | null;
  /** Owner of the volume's root directory when it is created. */
  owner?: Owner;
}

export interface VolumeInfo {
  name: string;
  /** Absolute path of the volume's root directory: what gets mounted. */
  path: string;
}

export interface VolumeUsage {
  /** Bytes the volume takes (btrfs: referenced bytes, shared with snapshots included). */
  usedBytes: number;
  /** Bytes only this volume holds (freed by removing it); null when the driver cannot tell. */
  exclusiveBytes: number | null;
  /** The figure is a lower bound: a walk stopped at its limits. */
  partial: boolean;
}

export interface VolumeDetails extends VolumeInfo {
  /** The quota the file system enforces; null when none (always null without `capabilities.quotas`). */
  quota: number | null;
  /** Owner of the volume's root directory. */
  owner: Owner;
  usage: VolumeUsage;
}

export interface SnapshotInfo {
  volume: string;
  name: string;
  path: string;
  /** When it was taken (btrfs: to the second). */
  createdAt: Date;
}

export interface StorageDriver {
  readonly kind: "btrfs" | "directory";
  /** The storage root (see `names.ts` for its layout). */
  readonly root: string;
  /**
   * Where uploads and seeds build content before it moves into a volume
   * (`staging.ts`): private to the daemon, seen by no container, on the
   * volumes' file system; what a crash left there is finished or deleted by
   * the next `open`.
   */
  readonly stagingRoot: string;
  readonly capabilities: StorageCapabilities;

  /** Where a volume is (or would be). Pure: validates the name, touches nothing. */
  path(name: string): string;

  /**
   * Makes the volume exist. A new volume appears complete (owner, quota) or
   * not at all. An existing one keeps its data and owner; `quota`, when
   * given, is applied to it. Cheap (btrfs: two or three `btrfs` runs).
   */
  create(
    name: string,
    options?: CreateVolumeOptions,
  ): Promise<{ created: boolean; volume: VolumeInfo }>;

  /** Deletes a volume with its snapshots. False when it was absent. Cost: directory driver deletes file by file. */
  remove(name: string): Promise<boolean>;

  /** Cheap. */
  exists(name: string): Promise<boolean>;

  /** Path, quota, owner and usage; undefined when absent. Cost: as `usage`. */
  get(name: string): Promise<VolumeDetails | undefined>;

  /**
   * Quota and root owner, without usage: what the reconciler compares with
   * the plan. Cheap (btrfs: one `btrfs` run; directories: one lstat).
   * Undefined when absent.
   */
  attributes(name: string): Promise<{ quota: number | null; owner: Owner } | undefined>;

  /**
   * Gives the volume's whole tree to `owner` (files an app made included).
   * Safe while the volume's app runs: done on handles, links never followed
   * (`tree.ts`). Cost: a walk of the whole tree. @throws `not_found`
   */
  setOwner(name: string, owner: Owner): Promise<void>;

  /** Every volume, sorted by name, without figures. Cheap (one directory read). */
  list(): Promise<VolumeInfo[]>;

  /** Sets (bytes) or lifts (null) the quota. A no-op when quotas are not enforced. @throws `not_found` */
  setQuota(name: string, bytes: number | null): Promise<void>;

  /**
   * How much the volume takes. btrfs: one `btrfs qgroup show`; figures lag
   * writes until the next transaction commit (up to 30 s) unless `sync`.
   * Directory: a walk of the whole tree, bounded. @throws `not_found`
   */
  usage(name: string, options?: { sync?: boolean }): Promise<VolumeUsage>;

  /**
   * Takes a snapshot of the volume under `snapshot` unless one of that name
   * exists (then nothing changes and `created` is false). Cost: see
   * `capabilities.snapshots`. @throws `not_found`
   */
  snapshot(name: string, snapshot: string): Promise<{ created: boolean; snapshot: SnapshotInfo }>;

  /**
   * The volume's snapshots, sorted by name; empty for an absent volume.
   * Cheap (btrfs: one `btrfs subvolume list`).
   */
  listSnapshots(name: string): Promise<SnapshotInfo[]>;

  /** False when there was no such snapshot. */
  removeSnapshot(name: string, snapshot: string): Promise<boolean>;

  /**
   * Bytes only this snapshot holds (what deleting it frees): the volume's
   * blocks it still shares are not counted. btrfs: the snapshot's quota
   * group, as `usage` (lagging unless `sync`). Directories: null, since a
   * copy's size would cost a walk (it is the whole volume then's).
   * @throws `not_found` for a missing snapshot
   */
  snapshotUsage(
    name: string,
    snapshot: string,
    options?: { sync?: boolean },
  ): Promise<{ exclusiveBytes: number | null }>;

  /**
   * Makes the volume's content that of `snapshot`: what was added since is
   * gone, what was removed or changed is back. The snapshot and the others
   * stay; the volume keeps its quota and the owner and mode of its root.
   * Appears complete or not at all (a swap in `<root>/tmp` that `open`
   * finishes after a crash); repeating it restores again. The volume's path
   * then names a new directory: whoever holds the old one open (a running
   * app) keeps seeing the old content, so stop its app first. Cost: btrfs a
   * writable snapshot and a few `btrfs` runs; directories a full copy.
   * @throws `not_found` for a missing volume or snapshot
   */
  restoreSnapshot(name: string, snapshot: string): Promise<void>;

  /**
   * Renames a volume, its snapshots following: how volumes move aside as
   * "uninstalled" and come back. Done already (`from` absent, `to` present)
   * is success. @throws `not_found` when neither exists, `conflict` when both do.
   */
  rename(from: string, to: string): Promise<void>;
}
