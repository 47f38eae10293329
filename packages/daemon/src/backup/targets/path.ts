/**
 * Backup target `path`: a directory, typically on another local disk, that
 * holds each backup as compressed archives.
 *
 * ```
 * <location>/town-backups/<id>/<volume>.tar.gz   one per volume (storage/archive.ts)
 * <location>/town-backups/<id>/manifest.json     the stored record, written last
 * ```
 * A backup directory without `manifest.json` is a run that stopped: not
 * listed, deleted by the next `put` or `remove`. Always full.
 *
 * Archives keep each entry's numeric owner, and restores go through
 * `unpackArchive` as a backup (`asBackedUp`): owners, modes and links come
 * back as they were, links pointing outside the volume included (data, never
 * followed). The archive is still treated as hostile (anyone with the disk
 * may have replaced it): entries that would land outside the volume or
 * through a link, device files and FIFOs are left out, and how many were is
 * reported as a progress step. What it costs against the `btrfs` and
 * `restic` kinds: set-id bits are dropped, and extended attributes are not
 * kept. Archives written before owners were kept restore with the volume
 * root's owner throughout.
 */
import { constants, createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { TownError } from "@townos/format";
import { packVolume, unpackArchive } from "../../storage/archive.js";
import { checkSnapshotName, checkVolumeName } from "../../storage/names.js";
import type { RefusedEntry } from "../../storage/safe-fs.js";
import {
  MAX_MANIFEST_BYTES,
  type BackupManifest,
  type BackupSource,
  type BackupTargetDriver,
  type StoredBackup,
  type TargetCallOptions,
} from "../types.js";
import {
  namesIn,
  prepareRoot,
  requireEmptyDirectory,
  requireRoot,
  syncDirectory,
  withTargetLock,
  TEMP_PREFIX,
  writeDurably,
} from "./files.js";
import { readSmallFile } from "../../system/small-files.js";
import { checkPut, encodeStored, parseStored, oldestFirst } from "./stored.js";

const MANIFEST_FILE = "manifest.json";
const ARCHIVE_SUFFIX = ".tar.gz";
/** Restores are bounded by the disk, not by these: generous on purpose. */
const RESTORE_MAX_BYTES = 2 ** 50;
const RESTORE_MAX_ENTRIES = 100_000_000;
const RESTORE_TIMEOUT_MS = 24 * 3600_000;

export interface PathTargetOptions {
  /**
   * Where restores unpack before moving into place (`StorageDriver.stagingRoot`,
   * on the volumes' file system); default: a private directory in the system's temporary directory.
   */
  stagingRoot?: string | undefined;
}

export class PathTarget implements BackupTargetDriver {
  readonly kind = "path";

  constructor(
    readonly name: string,
    private readonly location: string,
    private readonly options: PathTargetOptions = {},
  ) {}

  async prepare(options: TargetCallOptions = {}): Promise<void> {
    await withTargetLock(
      this.name,
      this.location,
      async () => {
        const root = await prepareRoot(this.name, this.location);
        // The write check: a file made, synced and deleted.
        await writeDurably(root, `${TEMP_PREFIX}check`, "ok\n");
        await rm(join(root, `${TEMP_PREFIX}check`), { force: true });
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
        const root = await requireRoot(this.name, this.location);
        const existing = await this.read(root, manifest.id);
        if (existing) return { bytes: existing.bytes, incremental: false };
        await this.removeLeftovers(root);
        const dir = join(root, manifest.id);
        await mkdir(dir, { mode: 0o700 });
        let bytes = 0;
        try {
          for (const source of sources) {
            options.signal?.throwIfAborted();
            bytes += await this.writeArchive(dir, source, bytes, options);
          }
          await syncDirectory(dir);
          await writeDurably(
            dir,
            MANIFEST_FILE,
            encodeStored({ manifest, bytes, incremental: false }),
          );
        } catch (error) {
          // A target that went away says so (`unavailable`) rather than what broke first.
          await requireRoot(this.name, this.location);
          throw error;
        }
        return { bytes, incremental: false };
      },
      options.signal,
    );
  }

  async list(options: TargetCallOptions = {}): Promise<StoredBackup[]> {
    return withTargetLock(
      this.name,
      this.location,
      async () => {
        const root = await requireRoot(this.name, this.location);
        const found: StoredBackup[] = [];
        for (const name of await namesIn(root)) {
          const stored = await this.read(root, name);
          if (stored) found.push(stored);
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
        const root = await requireRoot(this.name, this.location);
        const stored = await this.read(root, id);
        const entry = stored?.manifest.volumes.find((candidate) => candidate.name === volume);
        if (!entry) {
          throw new TownError("not_found", `there is no backup ${id} of ${volume} on this target`);
        }
        await requireEmptyDirectory(this.name, into);
        const file = await open(
          join(root, id, `${volume}${ARCHIVE_SUFFIX}`),
          constants.O_RDONLY | constants.O_NOFOLLOW,
        );
        // The storage's own staging root lets its `open` finish a restore a crash cut short.
        let staging = this.options.stagingRoot;
        let scratch: string | undefined;
        if (staging === undefined) {
          scratch = await mkdtemp(join(tmpdir(), "town-restore-"));
          staging = scratch;
        }
        try {
          const totalBytes = (await file.stat()).size;
          const result = await unpackArchive(createReadStream("", { fd: file }), "tar.gz", into, {
            stagingRoot: staging,
            maxBytes: RESTORE_MAX_BYTES,
            maxEntries: RESTORE_MAX_ENTRIES,
            timeoutMs: RESTORE_TIMEOUT_MS,
            owner: entry.owner,
            asBackedUp: true,
            ...(options.signal ? { signal: options.signal } : {}),
            onProgress: (progress) => {
              options.progress?.({
                step: `restoring ${volume}`,
                bytes: progress.archiveBytes,
                totalBytes,
              });
            },
          });
          if (result.refusedCount > 0) {
            options.progress?.({
              step: `restored ${volume}, leaving out ${String(result.refusedCount)} unsafe entries (${refusedReasons(result.refused)})`,
              bytes: totalBytes,
              totalBytes,
            });
          }
        } finally {
          if (scratch) await rm(scratch, { recursive: true, force: true });
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
        const root = await requireRoot(this.name, this.location);
        // The manifest first: from then on the backup is not listed, whatever happens to the rest.
        await rm(join(root, id, MANIFEST_FILE), { force: true });
        await this.removeLeftovers(root);
      },
      options.signal,
    );
  }

  /** The stored record of backup `id`, or undefined when it is not complete and valid. */
  private async read(root: string, id: string): Promise<StoredBackup | undefined> {
    try {
      checkSnapshotName(id);
    } catch {
      return undefined;
    }
    const text = await readSmallFile(join(root, id, MANIFEST_FILE), MAX_MANIFEST_BYTES);
    const stored = text === undefined ? undefined : parseStored(text);
    return stored?.manifest.id === id ? stored : undefined;
  }

  /** Deletes every entry of the root that is not a complete backup (stopped runs, stray files). */
  private async removeLeftovers(root: string): Promise<void> {
    for (const name of await namesIn(root)) {
      if (!(await this.read(root, name))) {
        // rm never follows links: a planted one is deleted, not what it points to.
        await rm(join(root, name), { recursive: true, force: true });
      }
    }
  }

  /** One volume's archive; returns its size. */
  private async writeArchive(
    dir: string,
    source: BackupSource,
    before: number,
    options: TargetCallOptions,
  ): Promise<number> {
    const path = join(dir, `${source.volume}${ARCHIVE_SUFFIX}`);
    const archive = await packVolume(source.path, { format: "tar.gz", owners: true });
    let written = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        written += chunk.length;
        options.progress?.({ step: `writing ${source.volume}`, bytes: before + written });
        done(null, chunk);
      },
    });
    const output = createWriteStream(path, { flags: "wx", mode: 0o600 });
    await pipeline(archive, counter, output, { signal: options.signal });
    const file = await open(path, constants.O_RDONLY);
    try {
      await file.sync();
    } finally {
      await file.close();
    }
    return (await stat(path)).size;
  }
}

/** "device file, '..' in path": the distinct reasons, a few of them. */
function refusedReasons(refused: readonly RefusedEntry[]): string {
  return [...new Set(refused.map((entry) => entry.reason))].slice(0, 3).join(", ");
}
