/**
 * Backup target `restic`: a restic repository (a local path, `sftp:…`,
 * `s3:…`, …), encrypted and deduplicated by restic.
 *
 * Each backup is restic snapshots on host `town`: one per volume (taken
 * with the volume's snapshot as the working directory and path `.`, so
 * that paths are the volume's own and a restore puts them at the top of
 * the target directory), tagged `town-id=<id>` and `town-volume=<volume>`,
 * and last its manifest, read from stdin as `/manifest.json` and tagged
 * `town-manifest`, `town-id=<id>`, `town-bytes=<n>` and
 * `town-incremental=<0|1>`. Volume snapshots without a manifest snapshot
 * are a stopped run's: forgotten by the next `put` or `remove`.
 *
 * `bytes` is what restic added to the repository (after deduplication and
 * compression); incremental means each volume had an earlier complete
 * backup to start from (`--parent`), so only changed files were read.
 *
 * The repository goes to restic in its environment (it may hold
 * credentials), the password through file descriptor 3 (`/dev/fd/3`),
 * neither ever on a command line.
 */
import { isAbsolute, dirname } from "node:path";
import { TownError, type ErrorCode } from "@townos/format";
import { requireProgram } from "../../storage/exec.js";
import { checkSnapshotName, checkVolumeName } from "../../storage/names.js";
import { lstatOrUndefined } from "../../storage/safe-fs.js";
import {
  type BackupManifest,
  type BackupSource,
  type BackupTargetConfig,
  type BackupTargetDriver,
  type StoredBackup,
  type TargetCallOptions,
} from "../types.js";
import { startChild, type ChildOptions } from "./child.js";
import {
  removeSpecialFiles,
  requireEmptyDirectory,
  SPECIAL_FILES,
  targetContext,
  withTargetLock,
} from "./files.js";
import { redactLocation } from "./location.js";
import { checkPut, parseManifest, valid, oldestFirst } from "./stored.js";

const HOST = "town";
const MANIFEST_TAG = "town-manifest";
const MANIFEST_PATH = "/manifest.json";
const COMMAND_TIMEOUT_MS = 10 * 60_000;
const TRANSFER_TIMEOUT_MS = 24 * 3600_000;
/** Most snapshot ids given to one `restic forget`. */
const FORGET_BATCH = 100;

/** Manifests read from repositories, by location and snapshot id: `list` dumps each only once. */
const manifests = new Map<string, BackupManifest | undefined>();
const MAX_CACHED_MANIFESTS = 10_000;

/** A restic snapshot as `restic snapshots --json` lists it (only what is used). */
interface ResticSnapshot {
  id: string;
  time: string;
  tags: string[];
}

/** The Town OS tags of a snapshot, parsed. */
interface Tagged {
  snapshot: ResticSnapshot;
  id: string;
  volume: string | undefined;
  manifest: boolean;
  bytes: number | null;
  incremental: boolean;
}

export class ResticTarget implements BackupTargetDriver {
  readonly kind = "restic";
  readonly name: string;
  private readonly context: string;

  constructor(private readonly config: BackupTargetConfig) {
    this.name = config.name;
    this.context = targetContext(config.name);
  }

  async prepare(options: TargetCallOptions = {}): Promise<void> {
    await this.locked(async () => {
      const exists = await this.restic(["cat", "config"], options, { stdout: "collect" }).then(
        () => true,
        (error: unknown) => {
          if (error instanceof TownError && error.code === "unavailable" && noRepository(error))
            return false;
          throw error;
        },
      );
      if (!exists) {
        if (isAbsolute(this.config.location)) {
          // restic makes missing parents: a disk that is not mounted must not become a repository on the box's own.
          const parent = await lstatOrUndefined(dirname(this.config.location));
          if (!parent?.isDirectory()) {
            throw new TownError(
              "unavailable",
              `${this.context}: ${dirname(this.config.location)} does not exist (is its disk attached?)`,
            );
          }
        }
        await this.restic(["init"], options);
      }
      // The write check: listing takes a lock, which is a file written in the repository.
      await this.restic(["snapshots", "--json", "--tag", MANIFEST_TAG], options, {
        stdout: "collect",
      });
    }, options.signal);
  }

  async put(
    manifest: BackupManifest,
    sources: readonly BackupSource[],
    options: TargetCallOptions = {},
  ): Promise<{ bytes: number | null; incremental: boolean }> {
    checkPut(this.name, manifest, sources);
    return this.locked(async () => {
      await this.restic(["unlock"], options);
      const snapshots = await this.snapshots(options);
      const existing = snapshots.find((tagged) => tagged.manifest && tagged.id === manifest.id);
      if (existing) return { bytes: existing.bytes, incremental: existing.incremental };
      await this.forgetLeftovers(snapshots, options);
      const complete = new Set(snapshots.filter((tagged) => tagged.manifest).map((t) => t.id));
      let bytes = 0;
      let incremental = true;
      for (const source of sources) {
        const parent = snapshots
          .filter((tagged) => tagged.volume === source.volume && complete.has(tagged.id))
          .sort((a, b) => a.snapshot.time.localeCompare(b.snapshot.time))
          .at(-1);
        bytes += await this.backupVolume(manifest.id, source, parent, bytes, options);
        incremental &&= parent !== undefined;
      }
      const tags = [
        MANIFEST_TAG,
        `town-id=${manifest.id}`,
        `town-bytes=${bytes}`,
        `town-incremental=${incremental ? 1 : 0}`,
      ];
      const writer = this.start(
        [
          "backup",
          "--stdin",
          "--stdin-filename",
          MANIFEST_PATH.slice(1),
          "--host",
          HOST,
          ...tags.flatMap((tag) => ["--tag", tag]),
        ],
        options,
        { stdin: "pipe", timeoutMs: COMMAND_TIMEOUT_MS },
      );
      writer.child.stdin?.on("error", () => undefined);
      writer.child.stdin?.end(JSON.stringify(manifest));
      await writer.finished;
      return { bytes, incremental };
    }, options.signal);
  }

  async list(options: TargetCallOptions = {}): Promise<StoredBackup[]> {
    return this.locked(async () => {
      const snapshots = await this.snapshots(options);
      const found: StoredBackup[] = [];
      for (const tagged of snapshots) {
        if (!tagged.manifest) continue;
        const manifest = await this.manifest(tagged, options);
        if (manifest?.id !== tagged.id) continue;
        // Every volume's snapshot must be there (one forgotten by hand makes the backup incomplete).
        const whole = manifest.volumes.every((volume) =>
          snapshots.some((other) => other.id === tagged.id && other.volume === volume.name),
        );
        if (whole) found.push({ manifest, bytes: tagged.bytes, incremental: tagged.incremental });
      }
      return oldestFirst(found);
    }, options.signal);
  }

  async restoreVolume(
    id: string,
    volume: string,
    into: string,
    options: TargetCallOptions = {},
  ): Promise<void> {
    checkSnapshotName(id);
    checkVolumeName(volume);
    await this.locked(async () => {
      const snapshots = await this.snapshots(options);
      const complete = snapshots.some((tagged) => tagged.manifest && tagged.id === id);
      const found = snapshots.find((tagged) => tagged.id === id && tagged.volume === volume);
      if (!complete || !found) {
        throw new TownError("not_found", `there is no backup ${id} of ${volume} on this target`);
      }
      await requireEmptyDirectory(this.name, into);
      options.progress?.({ step: `restoring ${volume}`, bytes: 0 });
      // restic never follows links in what it restores, and keeps owners, modes and xattrs.
      await this.restic(["restore", found.snapshot.id, "--target", into], options, {
        timeoutMs: TRANSFER_TIMEOUT_MS,
      });
      // It makes device files and FIFOs too (it cannot be told not to): an
      // app's device node would give its container the device. Taken out
      // before the volume is anyone's.
      const left = await removeSpecialFiles(this.context, into, options.signal);
      if (left > 0) {
        options.progress?.({
          step: `restored ${volume}, leaving out ${String(left)} ${SPECIAL_FILES}`,
          bytes: 0,
        });
      }
    }, options.signal);
  }

  async remove(id: string, options: TargetCallOptions = {}): Promise<void> {
    checkSnapshotName(id);
    await this.locked(async () => {
      await this.restic(["unlock"], options);
      const snapshots = await this.snapshots(options);
      const mine = snapshots.filter((tagged) => tagged.id === id);
      // The manifest first: from then on the backup is not listed, whatever happens to the rest.
      await this.forget(
        mine.filter((tagged) => tagged.manifest),
        options,
      );
      await this.forget(
        mine.filter((tagged) => !tagged.manifest),
        options,
      );
      await this.forgetLeftovers(
        snapshots.filter((tagged) => tagged.id !== id),
        options,
      );
      await this.restic(["prune"], options, { timeoutMs: TRANSFER_TIMEOUT_MS });
    }, options.signal);
  }

  /** One volume's `restic backup`; returns the bytes it added to the repository. */
  private async backupVolume(
    id: string,
    source: BackupSource,
    parent: Tagged | undefined,
    before: number,
    options: TargetCallOptions,
  ): Promise<number> {
    let added: number | undefined;
    await this.restic(
      [
        "backup",
        "--json",
        "--host",
        HOST,
        "--tag",
        `town-id=${id}`,
        "--tag",
        `town-volume=${source.volume}`,
        ...(parent ? ["--parent", parent.snapshot.id] : []),
        ".",
      ],
      options,
      {
        cwd: source.path,
        timeoutMs: TRANSFER_TIMEOUT_MS,
        stdout: "lines",
        onLine: (line) => {
          const message = parseJsonObject(line);
          if (!message) return;
          if (message["message_type"] === "status") {
            const done = message["bytes_done"];
            const total = message["total_bytes"];
            options.progress?.({
              step: `backing up ${source.volume}`,
              bytes: before + (Number.isSafeInteger(done) ? (done as number) : 0),
              ...(Number.isSafeInteger(total) ? { totalBytes: before + (total as number) } : {}),
            });
          } else if (message["message_type"] === "summary") {
            const data = message["data_added"];
            if (Number.isSafeInteger(data) && (data as number) >= 0) added = data as number;
          }
        },
      },
    );
    if (added === undefined) {
      throw new TownError(
        "io",
        `${this.context}: restic backup of ${source.volume} gave no summary`,
      );
    }
    return added;
  }

  /** A manifest snapshot's content: read once per snapshot (its id is a hash of it, so it never changes). */
  private async manifest(
    tagged: Tagged,
    options: TargetCallOptions,
  ): Promise<BackupManifest | undefined> {
    const key = `${this.config.location}\n${tagged.snapshot.id}`;
    if (manifests.has(key)) return manifests.get(key);
    const text = await this.restic(["dump", tagged.snapshot.id, MANIFEST_PATH], options, {
      stdout: "collect",
    });
    const manifest = parseManifest(text);
    if (manifests.size >= MAX_CACHED_MANIFESTS) {
      const oldest = manifests.keys().next();
      if (!oldest.done) manifests.delete(oldest.value);
    }
    manifests.set(key, manifest);
    return manifest;
  }

  /** Every snapshot of host `town` carrying a valid `town-id` tag. */
  private async snapshots(options: TargetCallOptions): Promise<Tagged[]> {
    const text = await this.restic(["snapshots", "--json", "--host", HOST], options, {
      stdout: "collect",
    });
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new TownError("io", `${this.context}: restic snapshots gave no JSON`);
    }
    if (!Array.isArray(value))
      throw new TownError("io", `${this.context}: restic snapshots gave no list`);
    const found: Tagged[] = [];
    for (const item of value as unknown[]) {
      const tagged = parseTagged(item);
      if (tagged) found.push(tagged);
    }
    return found;
  }

  /** Forgets the volume snapshots of runs that wrote no manifest. */
  private async forgetLeftovers(snapshots: Tagged[], options: TargetCallOptions): Promise<void> {
    const complete = new Set(snapshots.filter((tagged) => tagged.manifest).map((t) => t.id));
    await this.forget(
      snapshots.filter((tagged) => !complete.has(tagged.id)),
      options,
    );
  }

  private async forget(snapshots: Tagged[], options: TargetCallOptions): Promise<void> {
    for (let start = 0; start < snapshots.length; start += FORGET_BATCH) {
      const ids = snapshots.slice(start, start + FORGET_BATCH).map((tagged) => tagged.snapshot.id);
      await this.restic(["forget", ...ids], options);
    }
  }

  private start(args: readonly string[], options: TargetCallOptions, extra: Partial<ChildOptions>) {
    const started = startChild(this.program, ["--password-file", "/dev/fd/3", ...args], {
      context: `${this.context}: restic ${args[0] ?? ""}`,
      timeoutMs: COMMAND_TIMEOUT_MS,
      signal: options.signal,
      env: { ...this.config.env, RESTIC_REPOSITORY: this.config.location },
      dropEnv: (name) => name.startsWith("RESTIC_"),
      fd3: this.config.password ?? "",
      failureCode: classify,
      ...extra,
    });
    // restic names the repository in its errors: credentials in its URL stay out of them.
    const finished = started.finished.catch((error: unknown) => {
      const location = this.config.location;
      if (!(error instanceof TownError) || !error.message.includes(location)) throw error;
      throw new TownError(error.code, error.message.replaceAll(location, redactLocation(location)));
    });
    return { ...started, finished };
  }

  private program = "restic";

  private restic(
    args: readonly string[],
    options: TargetCallOptions,
    extra: Partial<ChildOptions> = {},
  ): Promise<string> {
    return this.start(args, options, extra).finished;
  }

  private locked<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withTargetLock(
      this.name,
      this.config.location,
      async () => {
        this.program = await requireProgram("restic", this.context);
        if (!this.config.password) {
          throw new TownError(
            "invalid_argument",
            `${this.context}: a restic target needs a password`,
          );
        }
        return work();
      },
      signal,
    );
  }
}

/** What restic's last words say about the failure. */
function classify(stderr: string): ErrorCode {
  if (/wrong password or no key found/i.test(stderr)) return "invalid_argument";
  if (
    /Is there a repository at the following location|unable to open repository|connection refused|no such host|unable to start the sftp session|i\/o timeout|network is unreachable|repository does not exist/i.test(
      stderr,
    )
  )
    return "unavailable";
  return "io";
}

function noRepository(error: TownError): boolean {
  return /unable to open config file|repository does not exist/i.test(error.message);
}

function parseTagged(item: unknown): Tagged | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const { id, time, tags } = item as Record<string, unknown>;
  if (typeof id !== "string" || !/^[0-9a-f]{64}$/.test(id) || typeof time !== "string")
    return undefined;
  if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === "string")) return undefined;
  const value = (key: string) =>
    tags.find((tag) => tag.startsWith(`${key}=`))?.slice(key.length + 1);
  const townId = value("town-id");
  if (
    townId === undefined ||
    !valid(() => {
      checkSnapshotName(townId);
    })
  )
    return undefined;
  const volume = value("town-volume");
  if (volume !== undefined && !valid(() => checkVolumeName(volume))) return undefined;
  const bytes = Number(value("town-bytes"));
  return {
    snapshot: { id, time, tags: tags },
    id: townId,
    volume,
    manifest: tags.includes(MANIFEST_TAG),
    bytes: Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : null,
    incremental: value("town-incremental") === "1",
  };
}

function parseJsonObject(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
