/**
 * The backup contract: what a backup is (a manifest and one snapshot per
 * volume) and what every kind of target does with it.
 *
 * Contract shared by every target driver:
 * - **Complete or absent.** A backup is listed only once everything of it,
 *   the manifest last, is written. A run that stopped half-way (an error, a
 *   crash, the disk pulled out) leaves nothing that is listed, and what it
 *   left is deleted by the next `put` or `remove`.
 * - **Idempotent.** `put` of a backup the target holds already changes
 *   nothing; `remove` of an absent one does nothing.
 * - **Hostile content.** Volume content was written by apps: it is copied as
 *   it is (links stay links, never followed), and a restore writes only
 *   below the directory it is given, which must be empty.
 * - **Untrusted target.** What is read back (manifests, listings) is
 *   validated and bounded: another machine, or a person, may have written it.
 * - **Bounded.** Every child process has a time limit and an abort signal;
 *   progress is reported as bytes.
 * - **Errors** are TownErrors: `unavailable` when the target cannot be
 *   reached (a missing disk, a refused connection), `not_found` for a backup
 *   or volume it does not hold, `io` for the rest, each with the target's name.
 */
import type { BackupTargetKind, RestorePointReason } from "@townos/api";
import type { BoxApp, PointApp, RestorePointRecord } from "../store/restore-points.js";
import type { Owner } from "../storage/driver.js";

export const MANIFEST_FORMAT = 1;
/** Longest manifest read back from a target. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** One volume in a backup. */
export interface BackupManifestVolume {
  /** The volume's name on the box it came from. */
  name: string;
  /** Its quota then (bytes); null: none. */
  quota: number | null;
  /** The owner of its root directory. */
  owner: Owner;
}

/** What a backup holds besides the volumes' content: enough to bring its app back on a fresh box. */
export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  /** The restore point it was made from: also each volume's snapshot name. */
  id: string;
  /** The box it came from (`LABEL_BOX`). */
  box: string;
  /** `repo/name` of an app, or a volume's name. */
  subject: string;
  app:
    | (PointApp & {
        /** The package repository's URL (credentials left out), to say what to add before a restore. */
        repoUrl: string | null;
      })
    | null;
  /** Only in a whole-box backup (subject `box`): the box's desired state then. */
  desired?: BackupManifestBox;
  volumes: BackupManifestVolume[];
  createdAt: number;
}

/** The desired state a whole-box backup carries; its volumes are every app's and every person's. */
export interface BackupManifestBox {
  apps: BoxApp[];
  /** In their order, URLs without credentials: one that had some is marked so. */
  repositories: { name: string; url: string; credentials: boolean }[];
  /** The settings changed from their defaults. */
  settings: Record<string, number | string | boolean>;
}

/** A volume's content to back up: a read-only snapshot, with the older snapshots of it still on the box. */
export interface BackupSource {
  volume: string;
  /** The snapshot's name (the manifest's id). */
  snapshot: string;
  /** Absolute path of the snapshot (btrfs: a read-only subvolume). */
  path: string;
  /** Older snapshots of the same volume still on the box, oldest first: parents for an incremental send. */
  earlier: { name: string; path: string }[];
}

export interface TargetProgress {
  /** What is being done, e.g. "sending pkg.main.wiki.data". */
  step: string;
  bytes: number;
  /** Bytes expected in all, when known. */
  totalBytes?: number;
}

export interface TargetCallOptions {
  signal?: AbortSignal;
  progress?: (progress: TargetProgress) => void;
}

/** A backup as a target lists it. */
export interface StoredBackup {
  manifest: BackupManifest;
  /** Bytes the target wrote for it; null when it cannot tell (restic deduplicates). */
  bytes: number | null;
  /** Sent as changes from an earlier backup. */
  incremental: boolean;
}

export interface BackupTargetDriver {
  readonly kind: BackupTargetKind;
  /** The target's name, for errors. */
  readonly name: string;

  /** Makes the target ready to take backups (a restic repository is initialised) and checks it can be written. Idempotent. */
  prepare(options?: TargetCallOptions): Promise<void>;

  /** Writes one backup: every source's content, then the manifest. Incremental where the kind can be. */
  put(
    manifest: BackupManifest,
    sources: readonly BackupSource[],
    options?: TargetCallOptions,
  ): Promise<{ bytes: number | null; incremental: boolean }>;

  /** The complete backups, oldest first. */
  list(options?: TargetCallOptions): Promise<StoredBackup[]>;

  /**
   * Writes one volume's content as of backup `id` into `into`, an existing
   * empty directory (the new volume's root). Owners, modes and links are
   * kept as they were backed up. @throws `not_found`
   */
  restoreVolume(
    id: string,
    volume: string,
    into: string,
    options?: TargetCallOptions,
  ): Promise<void>;

  /** Deletes a backup (and what a half-written one left). */
  remove(id: string, options?: TargetCallOptions): Promise<void>;
}

/** How a target is configured: what the store keeps (secrets included; never shown). */
export interface BackupTargetConfig {
  name: string;
  kind: BackupTargetKind;
  location: string;
  /** restic only. */
  password: string | null;
  /** restic only: backend credentials. */
  env: Record<string, string>;
}

/**
 * Restore points as the backup service uses them (`backup/restore-points.ts`
 * implements it): snapshots of a subject's volumes taken together.
 */
export interface RestorePointSource {
  /**
   * Takes a restore point of the subject (an app `repo/name`, with every
   * volume of it and its dependencies, or one volume) now, quiescing the app
   * as its package declares. @throws `not_found`, `unavailable`
   */
  take(subject: string, reason: RestorePointReason): Promise<RestorePointRecord>;
  /** The subject's restore points (all without one), newest first. */
  list(subject?: string): RestorePointRecord[];
  /** What a backup of the restore point reads: each volume's snapshot and its older ones. @throws `not_found` */
  sources(point: RestorePointRecord): Promise<BackupSource[]>;
  /** Deletes the restore point: its snapshots and its record. Absent is fine. */
  remove(subject: string, id: string): Promise<void>;
}
