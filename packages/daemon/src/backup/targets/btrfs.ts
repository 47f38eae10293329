/**
 * Backup target `btrfs`: a directory on another btrfs file system (a USB
 * disk) that receives the volumes' read-only snapshots with `btrfs send |
 * btrfs receive`, each one sent as changes from the newest earlier snapshot
 * the target holds complete.
 *
 * ```
 * <location>/town-backups/<volume>/<snapshot>      received subvolumes (read-only)
 * <location>/town-backups/manifests/<id>.json      stored records, written last
 * ```
 * `btrfs receive` sets a subvolume's received UUID only once the whole
 * stream arrived, and a record is written only after every volume's
 * subvolume has one. Subvolumes no record names are what a stopped run
 * left: the next `put` or `remove` deletes them. Each received subvolume is
 * a full snapshot on its own (sharing extents with its parent), so deleting
 * any of them never breaks another.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { TownError } from "@townos/format";
import { isOnBtrfs } from "../../storage/btrfs.js";
import { requireProgram } from "../../storage/exec.js";
import { checkSnapshotName, checkVolumeName, parseVolumeName } from "../../storage/names.js";
import { lstatOrUndefined } from "../../storage/safe-fs.js";
import {
  MAX_MANIFEST_BYTES,
  type BackupManifest,
  type BackupSource,
  type BackupTargetDriver,
  type StoredBackup,
  type TargetCallOptions,
} from "../types.js";
import { runChild, startChild } from "./child.js";
import {
  namesIn,
  prepareRoot,
  removeSpecialFiles,
  requireEmptyDirectory,
  SPECIAL_FILES,
  requireRoot,
  targetContext,
  withTargetLock,
  TEMP_PREFIX,
  writeDurably,
} from "./files.js";
import { readSmallFile } from "../../system/small-files.js";
import { checkPut, encodeStored, parseStored, oldestFirst } from "./stored.js";

const MANIFESTS_DIR = "manifests";
const RECORD_SUFFIX = ".json";
/** The inode number of every btrfs subvolume's root directory. */
const SUBVOLUME_ROOT_INO = 256;
const COMMAND_TIMEOUT_MS = 2 * 60_000;
const TRANSFER_TIMEOUT_MS = 24 * 3600_000;
const PROGRESS_STEP_BYTES = 4 * 1024 * 1024;

export class BtrfsTarget implements BackupTargetDriver {
  readonly kind = "btrfs";
  private readonly context: string;

  constructor(
    readonly name: string,
    private readonly location: string,
  ) {
    this.context = targetContext(name);
  }

  async prepare(options: TargetCallOptions = {}): Promise<void> {
    await withTargetLock(
      this.name,
      this.location,
      async () => {
        const root = await prepareRoot(this.name, this.location);
        await this.requireBtrfs(root);
        await mkdir(join(root, MANIFESTS_DIR), { recursive: true, mode: 0o700 });
        await writeDurably(join(root, MANIFESTS_DIR), `${TEMP_PREFIX}check`, "ok\n");
        await rm(join(root, MANIFESTS_DIR, `${TEMP_PREFIX}check`), { force: true });
      },
      options.signal,
    );
  }

  async put(
    manifest: BackupManifest,
    sources: readonly BackupSource[],
    options: TargetCallOptions = {},
  ): Promise<{ bytes: number | null; incremental: boolean }> {
    checkPut(this.name, manifest, sources);
    return withTargetLock(
      this.name,
      this.location,
      async () => {
        const root = await this.root();
        await mkdir(join(root, MANIFESTS_DIR), { recursive: true, mode: 0o700 });
        const records = await this.records(root);
        const existing = records.get(manifest.id);
        if (existing) return { bytes: existing.bytes, incremental: existing.incremental };
        await this.removeLeftovers(root, records);
        const btrfs = await requireProgram("btrfs", this.context);
        let bytes = 0;
        let incremental = true;
        try {
          for (const source of sources) {
            const sent = await this.send(btrfs, root, source, bytes, options);
            bytes += sent.bytes;
            incremental &&= sent.incremental;
          }
          // A target that went away meanwhile must not get a record on whatever is at its path now.
          await this.root();
          // The subvolumes on disk before the record listing them: a power cut in between leaves garbage, never a broken backup.
          await runChild(btrfs, ["filesystem", "sync", "--", root], {
            context: `${this.context}: btrfs filesystem sync`,
            timeoutMs: COMMAND_TIMEOUT_MS,
            signal: options.signal,
          });
          await writeDurably(
            join(root, MANIFESTS_DIR),
            `${manifest.id}${RECORD_SUFFIX}`,
            encodeStored({ manifest, bytes, incremental }),
          );
        } catch (error) {
          throw await this.explain(error);
        }
        return { bytes, incremental };
      },
      options.signal,
    );
  }

  async list(options: TargetCallOptions = {}): Promise<StoredBackup[]> {
    return withTargetLock(
      this.name,
      this.location,
      async () => {
        const root = await this.root();
        const found: StoredBackup[] = [];
        for (const stored of (await this.records(root)).values()) {
          // A subvolume deleted by hand makes the backup incomplete: not listed.
          let whole = true;
          for (const volume of stored.manifest.volumes) {
            whole &&= await isSubvolume(join(root, volume.name, stored.manifest.id));
          }
          if (whole) found.push(stored);
        }
        return oldestFirst(found);
      },
      options.signal,
    );
  }

  async restoreVolume(
    id: string,
    volume: string,
    into: string,
    options: TargetCallOptions = {},
  ): Promise<void> {
    checkSnapshotName(id);
    checkVolumeName(volume);
    await withTargetLock(
      this.name,
      this.location,
      async () => {
        const root = await this.root();
        const stored = (await this.records(root)).get(id);
        const received = join(root, volume, id);
        if (
          !stored?.manifest.volumes.some((entry) => entry.name === volume) ||
          !(await isSubvolume(received))
        ) {
          throw new TownError("not_found", `there is no backup ${id} of ${volume} on this target`);
        }
        await requireEmptyDirectory(this.name, into);
        options.progress?.({ step: `restoring ${volume}`, bytes: 0 });
        const btrfs = await requireProgram("btrfs", this.context);
        // Special files an app made (device nodes above all) are not
        // restored: they go from a writable snapshot of the backup, here on
        // the target's disk, so none is ever made on the box. A stopped
        // restore's snapshot is deleted by the next `put` or `remove`.
        const work = join(root, `${TEMP_PREFIX}restore-${randomBytes(8).toString("hex")}`);
        await runChild(btrfs, ["subvolume", "snapshot", "--", received, work], {
          context: `${this.context}: btrfs subvolume snapshot`,
          timeoutMs: COMMAND_TIMEOUT_MS,
          signal: options.signal,
        });
        try {
          const left = await removeSpecialFiles(this.context, work, options.signal);
          // A plain copy, not a send back: the new volume exists already (made
          // with its quota by the storage driver), and a received subvolume
          // could only be swapped in, not filled in. `cp -a` keeps owners,
          // modes, times, hard and symbolic links (never followed) and xattrs.
          await runChild("cp", ["-a", "--reflink=auto", "--", `${work}/.`, `${into}/`], {
            context: `${this.context}: restore ${volume}`,
            timeoutMs: TRANSFER_TIMEOUT_MS,
            signal: options.signal,
          });
          if (left > 0) {
            options.progress?.({
              step: `restored ${volume}, leaving out ${String(left)} ${SPECIAL_FILES}`,
              bytes: 0,
            });
          }
        } finally {
          await this.deleteEntry(btrfs, work);
        }
      },
      options.signal,
    );
  }

  async remove(id: string, options: TargetCallOptions = {}): Promise<void> {
    checkSnapshotName(id);
    await withTargetLock(
      this.name,
      this.location,
      async () => {
        const root = await this.root();
        // The record first: from then on the backup is not listed, whatever happens to the rest.
        await rm(join(root, MANIFESTS_DIR, `${id}${RECORD_SUFFIX}`), { force: true });
        await this.removeLeftovers(root, await this.records(root));
      },
      options.signal,
    );
  }

  /** One volume's snapshot sent and received; bytes counted through the pipe. */
  private async send(
    btrfs: string,
    root: string,
    source: BackupSource,
    before: number,
    options: TargetCallOptions,
  ): Promise<{ bytes: number; incremental: boolean }> {
    const dir = join(root, source.volume);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await lstatOrUndefined(dir))?.isDirectory()) {
      // A link planted on the disk would take the received data elsewhere.
      throw new TownError("io", `${this.context}: ${dir} is not a directory`);
    }
    let parent: string | undefined;
    // Same name is not enough: `btrfs receive` finds the parent by its UUID
    // (another box may have sent a snapshot of that name).
    for (const earlier of [...source.earlier].reverse()) {
      const received = await this.uuids(btrfs, join(dir, earlier.name));
      if (received?.received === undefined) continue;
      if ((await this.uuids(btrfs, earlier.path))?.own === received.received) {
        parent = earlier.path;
        break;
      }
    }
    const context = `${this.context}: send ${source.volume}`;
    const sender = startChild(
      btrfs,
      ["send", ...(parent ? ["-p", parent] : []), "--", source.path],
      {
        context: `${context}: btrfs send`,
        timeoutMs: TRANSFER_TIMEOUT_MS,
        stdout: "pipe",
        signal: options.signal,
      },
    );
    const receiver = startChild(btrfs, ["receive", "--", dir], {
      context: `${context}: btrfs receive`,
      timeoutMs: TRANSFER_TIMEOUT_MS,
      stdin: "pipe",
      signal: options.signal,
    });
    let bytes = 0;
    let reported = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes - reported >= PROGRESS_STEP_BYTES) {
          reported = bytes;
          options.progress?.({ step: `sending ${source.volume}`, bytes: before + bytes });
        }
        done(null, chunk);
      },
    });
    const stdout = sender.child.stdout;
    const stdin = receiver.child.stdin;
    if (!stdout || !stdin) throw new TownError("internal", `${context}: no pipe`);
    const piped = pipeline(stdout, counter, stdin).catch((error: unknown) => {
      // One side failed: the other must not wait for ever.
      sender.kill();
      receiver.kill();
      return error;
    });
    const outcomes = await Promise.allSettled([sender.finished, receiver.finished, piped]);
    for (const outcome of outcomes.slice(0, 2)) {
      if (outcome.status === "rejected") throw outcome.reason;
    }
    if (!(await this.receivedWhole(btrfs, join(dir, source.snapshot)))) {
      throw new TownError("io", `${context}: the received snapshot is incomplete`);
    }
    options.progress?.({ step: `sent ${source.volume}`, bytes: before + bytes });
    return { bytes, incremental: parent !== undefined };
  }

  /** Whether `path` is a subvolume that `btrfs receive` finished (it has a received UUID). */
  private async receivedWhole(btrfs: string, path: string): Promise<boolean> {
    return (await this.uuids(btrfs, path))?.received !== undefined;
  }

  /** A subvolume's own UUID and, once `btrfs receive` finished it, its received UUID; undefined for no subvolume. */
  private async uuids(
    btrfs: string,
    path: string,
  ): Promise<{ own: string | undefined; received: string | undefined } | undefined> {
    if (!(await isSubvolume(path))) return undefined;
    const shown = await runChild(btrfs, ["subvolume", "show", "--", path], {
      context: `${this.context}: btrfs subvolume show`,
      timeoutMs: COMMAND_TIMEOUT_MS,
      stdout: "collect",
    });
    const field = (name: string) => {
      const value = new RegExp(`^\\s*${name}:\\s*(\\S+)\\s*$`, "m").exec(shown)?.[1];
      return value === undefined || value === "-" ? undefined : value;
    };
    return { own: field("UUID"), received: field("Received UUID") };
  }

  /** Every valid record, by id. */
  private async records(root: string): Promise<Map<string, StoredBackup>> {
    const records = new Map<string, StoredBackup>();
    for (const name of await namesIn(join(root, MANIFESTS_DIR))) {
      if (!name.endsWith(RECORD_SUFFIX)) continue;
      const text = await readSmallFile(join(root, MANIFESTS_DIR, name), MAX_MANIFEST_BYTES);
      const stored = text === undefined ? undefined : parseStored(text);
      if (stored && `${stored.manifest.id}${RECORD_SUFFIX}` === name) {
        records.set(stored.manifest.id, stored);
      }
    }
    return records;
  }

  /** Deletes the subvolumes no record names, and stray records being written. */
  private async removeLeftovers(root: string, records: Map<string, StoredBackup>): Promise<void> {
    const kept = new Set<string>();
    for (const stored of records.values()) {
      for (const volume of stored.manifest.volumes)
        kept.add(`${volume.name}/${stored.manifest.id}`);
    }
    for (const name of await namesIn(join(root, MANIFESTS_DIR))) {
      if (name.startsWith(TEMP_PREFIX)) await rm(join(root, MANIFESTS_DIR, name), { force: true });
    }
    const btrfs = await requireProgram("btrfs", this.context);
    for (const volume of await namesIn(root)) {
      if (volume === MANIFESTS_DIR) continue;
      const dir = join(root, volume);
      if (!parseVolumeName(volume) || !(await lstatOrUndefined(dir))?.isDirectory()) {
        await this.deleteEntry(btrfs, dir);
        continue;
      }
      for (const snapshot of await namesIn(dir)) {
        if (!kept.has(`${volume}/${snapshot}`)) await this.deleteEntry(btrfs, join(dir, snapshot));
      }
    }
  }

  /** A subvolume with `btrfs subvolume delete`, anything else with rm (links not followed). */
  private async deleteEntry(btrfs: string, path: string): Promise<void> {
    if (await isSubvolume(path)) {
      await runChild(btrfs, ["subvolume", "delete", "--", path], {
        context: `${this.context}: btrfs subvolume delete`,
        timeoutMs: COMMAND_TIMEOUT_MS,
      });
    } else {
      await rm(path, { recursive: true, force: true });
    }
  }

  private async root(): Promise<string> {
    const root = await requireRoot(this.name, this.location);
    await this.requireBtrfs(root);
    return root;
  }

  private async requireBtrfs(root: string): Promise<void> {
    if (!(await isOnBtrfs(root))) {
      throw new TownError(
        "unavailable",
        `${this.context}: ${this.location} is not on a btrfs file system (is its disk attached?)`,
      );
    }
  }

  /** A failure while the target went away says so (`unavailable`) rather than what broke first. */
  private async explain(error: unknown): Promise<unknown> {
    try {
      await this.root();
    } catch (gone) {
      return gone;
    }
    return error;
  }
}

async function isSubvolume(path: string): Promise<boolean> {
  const stats = await lstatOrUndefined(path);
  return stats?.isDirectory() === true && stats.ino === SUBVOLUME_ROOT_INO;
}
