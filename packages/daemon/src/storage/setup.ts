/**
 * Picks the storage driver for a data directory, and says why in a sentence
 * fit for logs and the UI.
 *
 * Volumes live in `<dataDir>/storage`. In order of preference:
 * 1. That directory is on btrfs (natively, or because the loop file below is
 *    mounted there): the btrfs driver.
 * 2. `<dataDir>/storage.btrfs` exists: it holds the volumes, so it is mounted
 *    (`mount -o loop`) and used. If that fails, setup fails: falling back to
 *    empty directories would hide every volume.
 * 3. The caller asked for a loop file, the daemon runs as root, `mkfs.btrfs`,
 *    `btrfs` and `mount` exist and `<dataDir>/storage` is empty: a sparse file
 *    of the requested size is made (as `storage.btrfs.new`, renamed once
 *    formatted, so a crash never leaves a half-made file under the real
 *    name), formatted, mounted and used. Sparse means it takes disk space
 *    only as volumes fill; the host disk filling up shows as ENOSPC inside.
 * 4. Plain directories, with the reason.
 * Every step is idempotent: after a restart the same choice is made again,
 * and an existing loop file is mounted again when it is not.
 */
import { constants } from "node:fs";
import { mkdir, open, readFile, rename, rm, statfs } from "node:fs/promises";
import { join, resolve } from "node:path";
import { formatByteSize, TownError } from "@townos/format";
import { BtrfsDriver, BTRFS_SUPER_MAGIC, isOnBtrfs } from "./btrfs.js";
import { DirectoryDriver } from "./directory.js";
import type { StorageDriver } from "./driver.js";
import { findProgram, run } from "./exec.js";
import { entryNames, errnoCode, lstatOrUndefined } from "./safe-fs.js";

export const MIN_LOOP_FILE_BYTES = 256 * 1024 * 1024;
export const MAX_LOOP_FILE_BYTES = 2 ** 50;

export interface StorageSetupOptions {
  dataDir: string;
  /**
   * When the data directory is not on btrfs: make a btrfs file system in a
   * sparse file of this many bytes (at least 256 MiB) and use it. Needs root.
   */
  loopFileBytes?: number;
}

export type StorageMode = "btrfs" | "btrfs-loop" | "directory";

export interface StorageSetup {
  driver: StorageDriver;
  mode: StorageMode;
  /** Why this driver, in one sentence. */
  reason: string;
}

export interface StorageLocations {
  /** The storage root the driver works in. */
  root: string;
  /** The sparse file holding a btrfs file system, when one is used. */
  loopFile: string;
}

export function storageLocations(dataDir: string): StorageLocations {
  const dir = resolve(dataDir);
  return { root: join(dir, "storage"), loopFile: join(dir, "storage.btrfs") };
}

/**
 * Sets storage up for a data directory (see the module comment).
 * @throws TownError `invalid_argument` for a loop size out of range; `io`
 *   when an existing loop file cannot be mounted or btrfs cannot be opened.
 */
export async function setupStorage(options: StorageSetupOptions): Promise<StorageSetup> {
  const size = options.loopFileBytes;
  if (
    size !== undefined &&
    !(Number.isSafeInteger(size) && size >= MIN_LOOP_FILE_BYTES && size <= MAX_LOOP_FILE_BYTES)
  ) {
    throw new TownError(
      "invalid_argument",
      `storage: a loop file must be a whole number of bytes from ${MIN_LOOP_FILE_BYTES} to ${MAX_LOOP_FILE_BYTES}`,
    );
  }
  const { root, loopFile } = storageLocations(options.dataDir);
  await mkdir(root, { recursive: true, mode: 0o755 });
  const haveLoopFile = (await lstatOrUndefined(loopFile)) !== undefined;

  if (await isOnBtrfs(root)) {
    if (haveLoopFile && (await mountedAt(root)) !== undefined) {
      return useBtrfs(
        root,
        "btrfs-loop",
        `Volumes are btrfs subvolumes in ${loopFile}, mounted at ${root}.`,
      );
    }
    try {
      return await useBtrfs(root, "btrfs", `Volumes are btrfs subvolumes: ${root} is on btrfs.`);
    } catch (error) {
      return useDirectories(
        root,
        `${root} is on btrfs, but it cannot be managed (${message(error)}).`,
      );
    }
  }

  if (haveLoopFile) {
    try {
      await mountLoopFile(loopFile, root);
    } catch (error) {
      throw new TownError(
        "io",
        `storage: ${loopFile} holds the volumes but cannot be mounted: ${message(error)}`,
      );
    }
    return useBtrfs(
      root,
      "btrfs-loop",
      `Volumes are btrfs subvolumes in ${loopFile}, mounted again at ${root}.`,
    );
  }

  const hostFs = await fileSystemName(root);
  if (size === undefined) return useDirectories(root, `${root} is on ${hostFs}, not btrfs.`);
  const obstacle = await loopObstacle(root);
  if (obstacle) {
    return useDirectories(
      root,
      `${root} is on ${hostFs}, and no btrfs loop file was made: ${obstacle}.`,
    );
  }
  try {
    await makeLoopFile(loopFile, size);
    await mountLoopFile(loopFile, root);
    return await useBtrfs(
      root,
      "btrfs-loop",
      `Volumes are btrfs subvolumes in ${loopFile} (${formatByteSize(size)}, sparse), made because ${root} is on ${hostFs}.`,
    );
  } catch (error) {
    // Nothing lives in a file just made: undo it all and fall back.
    if ((await mountedAt(root)) !== undefined) await unmount(root).catch(() => undefined);
    await rm(loopFile, { force: true });
    return useDirectories(root, `making a btrfs loop file failed (${message(error)}).`);
  }
}

// ---------------------------------------------------------------------------

async function useBtrfs(
  root: string,
  mode: "btrfs" | "btrfs-loop",
  reason: string,
): Promise<StorageSetup> {
  return { driver: await BtrfsDriver.open(root), mode, reason };
}

async function useDirectories(root: string, why: string): Promise<StorageSetup> {
  return {
    driver: await DirectoryDriver.open(root),
    mode: "directory",
    reason: `Volumes are plain directories: quotas are not enforced and snapshots are full copies. ${capitalize(why)}`,
  };
}

/** Why a loop file cannot be made here, or undefined when it can. */
async function loopObstacle(root: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "Town OS is not running as root";
  for (const program of ["mkfs.btrfs", "btrfs", "mount"]) {
    if (!(await findProgram(program))) return `the program ${program} is not installed`;
  }
  const filesystems = await readFile("/proc/filesystems", "utf8").catch(() => "");
  if (!/\sbtrfs$/m.test(filesystems)) return "this kernel has no btrfs support";
  if ((await entryNames(root)).length > 0) {
    return `${root} already holds volumes as plain directories (move them away to switch)`;
  }
  return undefined;
}

async function makeLoopFile(loopFile: string, size: number): Promise<void> {
  const mkfs = await findProgram("mkfs.btrfs");
  if (!mkfs) throw new TownError("unavailable", "mkfs.btrfs is not installed");
  const fresh = `${loopFile}.new`;
  await rm(fresh, { force: true });
  const handle = await open(
    fresh,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
    0o600,
  );
  try {
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
  await run(mkfs, ["-q", "-L", "townos-storage", fresh], "mkfs.btrfs");
  await rename(fresh, loopFile);
}

async function mountLoopFile(loopFile: string, root: string): Promise<void> {
  const mount = await findProgram("mount");
  if (!mount) throw new TownError("unavailable", "mount is not installed");
  await run(mount, ["-t", "btrfs", "-o", "loop,noatime", loopFile, root], "mount");
}

/** Unmounts `path` (a loop device set up by `mount -o loop` is released with it). */
export async function unmount(path: string): Promise<void> {
  const umount = await findProgram("umount");
  if (!umount) throw new TownError("unavailable", "umount is not installed");
  await run(umount, [path], "umount");
}

/** The mount at exactly `path`, from /proc/self/mountinfo (the last one wins: mounts stack). */
export async function mountedAt(
  path: string,
): Promise<{ fsType: string; source: string } | undefined> {
  let text: string;
  try {
    text = await readFile("/proc/self/mountinfo", "utf8");
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw error;
  }
  let found: { fsType: string; source: string } | undefined;
  for (const line of text.split("\n")) {
    const [left, right] = line.split(" - ");
    const mountPoint = left?.split(" ")[4];
    const [fsType, source] = right?.split(" ") ?? [];
    if (mountPoint === undefined || fsType === undefined || source === undefined) continue;
    // mountinfo escapes space, tab, newline and backslash as octal.
    const decoded = mountPoint.replace(/\\([0-7]{3})/g, (_, octal: string) =>
      String.fromCharCode(parseInt(octal, 8)),
    );
    if (decoded === path) found = { fsType, source };
  }
  return found;
}

const FILE_SYSTEMS: Record<number, string> = {
  [BTRFS_SUPER_MAGIC]: "btrfs",
  0xef53: "ext4",
  0x58465342: "xfs",
  0x01021994: "tmpfs",
  0x794c7630: "overlayfs",
  0x2fc12fc1: "zfs",
  0x6969: "nfs",
  0x65735546: "a FUSE file system",
};

async function fileSystemName(path: string): Promise<string> {
  const type = (await statfs(path)).type;
  return FILE_SYSTEMS[type] ?? `a file system of type 0x${type.toString(16)}`;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
