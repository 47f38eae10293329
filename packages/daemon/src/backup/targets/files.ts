/**
 * File work shared by the directory-based targets (`path`, `btrfs`): their
 * root `<location>/town-backups`, records written durably (temporary name,
 * fsync, rename) and read back with a bound and without following links;
 * and, for every kind, special files taken out of what a restore wrote.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { lstat, mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { errnoCode, ioError, lstatOrUndefined } from "../../storage/safe-fs.js";
import { KeyedLock } from "../../system/mutex.js";
import { runChild } from "./child.js";

/** What `removeSpecialFiles` takes out. */
export const SPECIAL_FILES = "device files, FIFOs and sockets";
const SPECIAL_TIMEOUT_MS = 3600_000;

/** The directory of Town OS's backups inside a target's location. */
export const BACKUPS_DIR = "town-backups";
/** Names of records being written: never read back as records. */
export const TEMP_PREFIX = ".tmp-";

/** One call at a time per location: a `put` deletes what it takes for a stopped run's leftovers. */
const locks = new KeyedLock();

/** Runs `work` alone on `location`, every error naming the target. */
export async function withTargetLock<T>(
  name: string,
  location: string,
  work: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  let release;
  try {
    release = await locks.acquire(location, signal);
  } catch (error) {
    throw targetError(name, error);
  }
  try {
    return await work();
  } catch (error) {
    throw targetError(name, error);
  } finally {
    release();
  }
}

/** `backup target "usb"`: how every error of a target starts. */
export function targetContext(name: string): string {
  return `backup target "${name}"`;
}

/** Any failure as a TownError naming the target (once). */
export function targetError(name: string, error: unknown): TownError {
  const context = targetContext(name);
  if (error instanceof TownError) {
    return error.message.startsWith(context) ? error : error.withContext(context);
  }
  return ioError(context, error);
}

/**
 * Makes `<location>/town-backups` exist. The location itself must exist: a
 * disk that is not mounted shows an empty mount point or nothing, and
 * backups must not quietly fill the box's own disk instead.
 * @throws TownError `unavailable`
 */
export async function prepareRoot(name: string, location: string): Promise<string> {
  const stats = await lstatOrUndefined(location);
  if (!stats?.isDirectory()) {
    throw new TownError(
      "unavailable",
      `${targetContext(name)}: ${location} is not a directory (is its disk attached?)`,
    );
  }
  const root = join(location, BACKUPS_DIR);
  try {
    await mkdir(root, { mode: 0o700 });
  } catch (error) {
    if (errnoCode(error) !== "EEXIST") throw targetError(name, error);
  }
  return requireRoot(name, location);
}

/**
 * `<location>/town-backups` as `prepare` made it. Missing means the disk is
 * gone (or was never prepared): `unavailable`, never recreated behind its back.
 */
export async function requireRoot(name: string, location: string): Promise<string> {
  const root = join(location, BACKUPS_DIR);
  const stats = await lstatOrUndefined(root);
  if (!stats?.isDirectory()) {
    throw new TownError(
      "unavailable",
      `${targetContext(name)}: ${root} is missing (is its disk attached?)`,
    );
  }
  return root;
}

/** Writes `dir/name` whole or not at all, and durably: a temporary file, fsync, rename, fsync of the directory. */
export async function writeDurably(dir: string, name: string, content: string): Promise<void> {
  const temp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString("hex")}`);
  const file = await open(temp, "wx", 0o600);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temp, join(dir, name));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dir);
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The names in a directory; [] when it is absent. */
export async function namesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return [];
    throw error;
  }
}

/** @throws TownError `invalid_argument` unless `path` is an existing empty directory (not a link). */
export async function requireEmptyDirectory(name: string, path: string): Promise<void> {
  const stats = await lstat(path).catch(() => undefined);
  if (!stats?.isDirectory() || (await readdir(path)).length > 0) {
    throw new TownError(
      "invalid_argument",
      `${targetContext(name)}: restore needs an empty directory, and ${path} is not one`,
    );
  }
}

/**
 * Deletes every device file, FIFO and socket below `dir` (a volume's
 * content as an app left it: through a device node there, its container
 * could open the device) and returns how many there were. `find -P` never
 * follows a link and goes to any depth; `-delete` unlinks each through its
 * parent's handle.
 */
export async function removeSpecialFiles(
  context: string,
  dir: string,
  signal?: AbortSignal,
): Promise<number> {
  const deleted = await runChild(
    "find",
    ["-P", dir, "-type", "b,c,p,s", "-printf", "x", "-delete"],
    {
      context: `${context}: removing ${SPECIAL_FILES}`,
      timeoutMs: SPECIAL_TIMEOUT_MS,
      signal,
      stdout: "collect",
    },
  );
  return deleted.length;
}
