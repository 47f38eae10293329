/**
 * Work on trees a container can write to while the daemon (root) works on
 * them: walks, ownership changes, copies and deletes that never follow a
 * link and cannot be redirected by a directory swapped for a link meanwhile.
 *
 * Node has no `openat(2)`, so each directory is opened once with
 * `O_DIRECTORY | O_NOFOLLOW` and its entries are named through the handle as
 * `/proc/self/fd/<fd>/<name>` (`at`): the kernel resolves that from the open
 * directory itself, whatever happened to its path since, and only the last
 * component is looked up, never followed (lstat, lchown, `O_NOFOLLOW`).
 * Modes, owners and times are set on handles (fchmod, fchown, futimes).
 * What is swapped while we look is skipped or refused, never followed.
 */
import { constants, type Stats } from "node:fs";
import {
  copyFile,
  lchown,
  lstat,
  lutimes,
  mkdir,
  open,
  opendir,
  readlink,
  rmdir,
  symlink,
  unlink,
  type FileHandle,
} from "node:fs/promises";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { MAX_DEPTH } from "./paths.js";
import { printable } from "./names.js";
import { errnoCode, MAX_REPORTED, PathRefused, type Owner, type RefusedEntry } from "./safe-fs.js";

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** O_NONBLOCK: a FIFO swapped in for a file must not hang the open. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Deepest tree `removeAt` deletes. */
const MAX_REMOVE_DEPTH = 4 * MAX_DEPTH;
const CREATE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** The entry `name` of the directory open as `dir`, as a path the kernel resolves from the handle. */
export function at(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name}`;
}

/** The open file itself, as a path (for calls that only take paths). */
export function handlePath(file: FileHandle): string {
  return `/proc/self/fd/${file.fd}`;
}

/** Opens a real directory, never a link to one. @throws ELOOP/ENOTDIR/ENOENT as Node errors */
export function openDirectory(path: string): Promise<FileHandle> {
  return open(path, DIRECTORY_FLAGS);
}

/** Like `openDirectory`, undefined when `path` is missing, a link or not a directory (swapped, say). */
export async function openDirectoryOrUndefined(path: string): Promise<FileHandle | undefined> {
  try {
    return await openDirectory(path);
  } catch (error) {
    if (isNotThere(error)) return undefined;
    throw error;
  }
}

/**
 * Opens `root/parts…` as real directories, making missing ones with `mode`
 * and `owner` (set on their handles); existing ones are left as they are.
 * @throws PathRefused when a component is a link or not a directory.
 */
export async function openDirectories(
  root: string,
  parts: readonly string[],
  make: { mode: number; owner?: Owner | undefined },
): Promise<FileHandle> {
  const dir = await descend(root, parts, make);
  if (!dir) throw new PathRefused(`"${printable(parts.join("/"))}" moved while being made`);
  return dir;
}

/**
 * Opens `root/parts…`, which must be real directories; undefined when one is
 * missing. @throws PathRefused when a component is a link or not a directory.
 */
export function openInside(
  root: string,
  parts: readonly string[],
): Promise<FileHandle | undefined> {
  return descend(root, parts, undefined);
}

async function descend(
  root: string,
  parts: readonly string[],
  make: { mode: number; owner?: Owner | undefined } | undefined,
): Promise<FileHandle | undefined> {
  let dir = await openDirectory(root);
  try {
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i] ?? "";
      const shown = printable(parts.slice(0, i + 1).join("/"));
      let made = false;
      if (make) {
        try {
          await mkdir(at(dir, name), { mode: make.mode });
          made = true;
        } catch (error) {
          if (errnoCode(error) !== "EEXIST") throw error;
        }
      }
      let next: FileHandle;
      try {
        next = await openDirectory(at(dir, name));
      } catch (error) {
        if (!isNotThere(error)) throw error;
        const stats = await lstatAt(dir, name);
        if (stats?.isSymbolicLink())
          throw new PathRefused(`goes through the symbolic link "${shown}"`);
        if (stats && !stats.isDirectory()) throw new PathRefused(`"${shown}" is not a directory`);
        await dir.close();
        return undefined;
      }
      await dir.close();
      dir = next;
      if (made && make) {
        await dir.chmod(make.mode);
        if (make.owner) await dir.chown(make.owner.uid, make.owner.gid);
      }
    }
    return dir;
  } catch (error) {
    await dir.close();
    throw error;
  }
}

export async function lstatAt(dir: FileHandle, name: string): Promise<Stats | undefined> {
  try {
    return await lstat(at(dir, name));
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

/** Runs `work` with the directory open, closing it after. */
export async function withDirectory<T>(
  path: string,
  work: (dir: FileHandle) => Promise<T>,
): Promise<T> {
  const dir = await openDirectory(path);
  try {
    return await work(dir);
  } finally {
    await dir.close();
  }
}

/** Names in an open directory, sorted. */
export async function namesAt(dir: FileHandle): Promise<string[]> {
  const names: string[] = [];
  for await (const dirent of await opendir(handlePath(dir))) names.push(dirent.name);
  return names.sort();
}

export interface WalkEntry {
  /** Path relative to the walked directory, `/`-separated. */
  relative: string;
  /** For messages only: the path may lead elsewhere by now. */
  path: string;
  /** The entry through its parent's handle (see `at`): valid until the walk moves on. */
  at: string;
  stats: Stats;
  depth: number;
}

export interface WalkOptions {
  signal?: AbortSignal | undefined;
  /** Called for each directory deeper than `MAX_DEPTH`, which is not entered. */
  tooDeep?: (entry: WalkEntry) => void;
}

/**
 * Every entry below `dir` (not `dir` itself), parents before children, by
 * `lstat` through the parent's handle: links are reported, never followed,
 * and a directory is entered only if it opens as one with `O_NOFOLLOW`.
 * `dir` is a path, or a directory already open (left open).
 */
export async function* walk(
  dir: string | FileHandle,
  options: WalkOptions = {},
): AsyncGenerator<WalkEntry> {
  if (typeof dir !== "string") {
    yield* walkBelow(dir, handlePath(dir), "", 1, options);
    return;
  }
  const handle = await openDirectory(dir);
  try {
    yield* walkBelow(handle, dir, "", 1, options);
  } finally {
    await handle.close();
  }
}

async function* walkBelow(
  dir: FileHandle,
  dirPath: string,
  prefix: string,
  depth: number,
  options: WalkOptions,
): AsyncGenerator<WalkEntry> {
  // `for await` over a Dir closes it when the loop ends, early or not.
  for await (const dirent of await opendir(handlePath(dir))) {
    options.signal?.throwIfAborted();
    const name = dirent.name;
    const stats = await lstatAt(dir, name);
    if (!stats) continue;
    const entry = {
      relative: `${prefix}${name}`,
      path: join(dirPath, name),
      at: at(dir, name),
      stats,
      depth,
    };
    yield entry;
    if (!stats.isDirectory()) continue;
    if (depth >= MAX_DEPTH) {
      options.tooDeep?.(entry);
      continue;
    }
    const child = await openDirectoryOrUndefined(entry.at);
    if (!child) continue; // swapped for something else meanwhile: not ours to enter
    try {
      yield* walkBelow(child, entry.path, `${entry.relative}/`, depth + 1, options);
    } finally {
      await child.close();
    }
  }
}

export interface TreeSize {
  /** Bytes allocated on disk (hard links counted once). */
  bytes: number;
  entries: number;
  /** The walk stopped at the entry limit or depth limit: `bytes` is a lower bound. */
  partial: boolean;
}

/** Adds up what a tree takes on disk, by walking at most `maxEntries` entries. */
export async function measureTree(dir: string, maxEntries: number): Promise<TreeSize> {
  const seen = new Set<number>();
  let bytes = 0;
  let entries = 0;
  let partial = false;
  for await (const entry of walk(dir, { tooDeep: () => (partial = true) })) {
    if (entries >= maxEntries) {
      partial = true;
      break;
    }
    entries++;
    if (entry.stats.nlink > 1 && !entry.stats.isDirectory()) {
      if (seen.has(entry.stats.ino)) continue;
      seen.add(entry.stats.ino);
    }
    bytes += entry.stats.blocks * 512;
  }
  return { bytes, entries, partial };
}

/**
 * Gives `owner` everything in a tree, the tree's root included: links
 * themselves, never their targets. Safe on a volume whose app runs (every
 * change goes through a handle or `lchown` of a name in an open directory).
 */
export async function chownTree(dir: string, owner: Owner, signal?: AbortSignal): Promise<void> {
  await withDirectory(dir, (root) => root.chown(owner.uid, owner.gid));
  for await (const entry of walk(dir, { signal })) {
    try {
      await lchown(entry.at, owner.uid, owner.gid);
    } catch (error) {
      if (errnoCode(error) !== "ENOENT") throw error; // removed meanwhile
    }
  }
}

/**
 * Deletes the entry `name` of `dir` and, for a directory, everything in it,
 * never following a link (a link is removed, not its target).
 */
export async function removeAt(dir: FileHandle, name: string, depth = 0): Promise<void> {
  const stats = await lstatAt(dir, name);
  if (!stats) return;
  if (stats.isDirectory()) {
    // One handle per level: deeper than this would run out of file descriptors.
    if (depth >= MAX_REMOVE_DEPTH) throw new TownError("io", "storage: nested too deep to delete");
    const child = await openDirectoryOrUndefined(at(dir, name));
    if (child) {
      try {
        for (const inner of await namesAt(child)) await removeAt(child, inner, depth + 1);
      } finally {
        await child.close();
      }
      try {
        await rmdir(at(dir, name));
        return;
      } catch (error) {
        if (errnoCode(error) === "ENOENT") return;
        if (errnoCode(error) !== "ENOTDIR") throw error;
      }
    }
  }
  try {
    await unlink(at(dir, name));
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") return;
    // A directory swapped in for what was a file: delete it as one.
    if (code === "EISDIR") return removeAt(dir, name, depth + 1);
    throw error;
  }
}

export interface CopyOptions {
  maxEntries: number;
  maxBytes: number;
  /** Give every copy this owner; without it copies keep their source's owner when `keepOwner`. */
  owner?: Owner | undefined;
  keepOwner?: boolean;
  signal?: AbortSignal | undefined;
}

export interface CopyResult {
  entries: number;
  bytes: number;
  skipped: RefusedEntry[];
}

/**
 * Copies the tree below `source` into the existing, empty directory `target`
 * without following links on either side: links are copied as links (their
 * targets untouched), regular files by content (a reflink where the file
 * system can), directories recursively. Devices, FIFOs and sockets are
 * skipped and reported. Modes are kept without set-id bits; modification
 * times are kept.
 * @throws TownError `payload_too_large` past `maxEntries` or `maxBytes`.
 */
export async function copyTree(
  source: string,
  target: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const result: CopyResult = { entries: 0, bytes: 0, skipped: [] };
  const from = await openDirectory(source);
  try {
    const to = await openDirectory(target);
    try {
      await copyBelow(from, to, "", 1, options, result);
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
  return result;
}

async function copyBelow(
  from: FileHandle,
  to: FileHandle,
  prefix: string,
  depth: number,
  options: CopyOptions,
  result: CopyResult,
): Promise<void> {
  for await (const dirent of await opendir(handlePath(from))) {
    options.signal?.throwIfAborted();
    await copyOne(
      from,
      dirent.name,
      to,
      dirent.name,
      `${prefix}${dirent.name}`,
      depth,
      options,
      result,
    );
  }
}

/**
 * Copies the entry `name` of `from` (whatever it is, a whole directory
 * included) to `toName` in `to`, which must be free; see `copyTree`.
 */
export async function copyEntry(
  from: FileHandle,
  name: string,
  to: FileHandle,
  toName: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const result: CopyResult = { entries: 0, bytes: 0, skipped: [] };
  await copyOne(from, name, to, toName, name, 1, options, result);
  return result;
}

async function copyOne(
  from: FileHandle,
  name: string,
  to: FileHandle,
  toName: string,
  relative: string,
  depth: number,
  options: CopyOptions,
  result: CopyResult,
): Promise<void> {
  const skip = (reason: string) => {
    if (result.skipped.length < MAX_REPORTED) result.skipped.push({ path: relative, reason });
  };
  const stats = await lstatAt(from, name);
  if (!stats) return;
  if (++result.entries > options.maxEntries) {
    throw new TownError("payload_too_large", `copy: more than ${options.maxEntries} entries`);
  }
  const owner =
    options.owner ?? (options.keepOwner ? { uid: stats.uid, gid: stats.gid } : undefined);
  if (stats.isDirectory()) {
    if (depth >= MAX_DEPTH) {
      skip(`nested deeper than ${MAX_DEPTH} levels`);
      return;
    }
    const inner = await openDirectoryOrUndefined(at(from, name));
    if (!inner) return; // swapped meanwhile
    try {
      await mkdir(at(to, toName), { mode: 0o700 });
      const made = await openDirectory(at(to, toName));
      try {
        await copyBelow(inner, made, `${relative}/`, depth + 1, options, result);
        // Mode and times last: writing into it changed its times, and a read-only mode would have stopped the copy.
        await made.chmod(stats.mode & 0o1777);
        if (owner) await made.chown(owner.uid, owner.gid);
        await made.utimes(stats.atime, stats.mtime);
      } finally {
        await made.close();
      }
    } finally {
      await inner.close();
    }
  } else if (stats.isFile()) {
    const copied = await copyFileAt(from, name, to, toName, owner);
    if (copied === undefined) {
      skip("changed while being copied");
      return;
    }
    result.bytes += copied;
    if (result.bytes > options.maxBytes) {
      throw new TownError("payload_too_large", `copy: more than ${options.maxBytes} bytes`);
    }
  } else if (stats.isSymbolicLink()) {
    const target = await readLinkOrUndefined(at(from, name));
    if (target === undefined) {
      skip("changed while being copied");
      return;
    }
    await symlink(target, at(to, toName));
    await lutimes(at(to, toName), stats.atime, stats.mtime);
    if (owner) await lchown(at(to, toName), owner.uid, owner.gid);
  } else {
    skip(`${fileType(stats)} not copied`);
  }
}

/** Copies one regular file by handles; undefined when it is no longer a regular file. */
async function copyFileAt(
  from: FileHandle,
  name: string,
  to: FileHandle,
  toName: string,
  owner: Owner | undefined,
): Promise<number | undefined> {
  let input: FileHandle;
  try {
    input = await open(at(from, name), READ_FLAGS);
  } catch (error) {
    if (isNotThere(error)) return undefined;
    throw error;
  }
  try {
    const stats = await input.stat();
    if (!stats.isFile()) return undefined;
    const output = await open(at(to, toName), CREATE_FLAGS, 0o600);
    try {
      // Both ends through their handles: a reflink where the file system can.
      await copyFile(handlePath(input), handlePath(output), constants.COPYFILE_FICLONE);
      await output.chmod(stats.mode & 0o1777);
      if (owner) await output.chown(owner.uid, owner.gid);
      await output.utimes(stats.atime, stats.mtime);
    } finally {
      await output.close();
    }
    return stats.size;
  } finally {
    await input.close();
  }
}

/** A link's target; undefined when it is no longer a link (removed or swapped meanwhile). */
export async function readLinkOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT" || code === "EINVAL") return undefined;
    throw error;
  }
}

function fileType(stats: Stats): string {
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "device file";
  if (stats.isFIFO()) return "FIFO";
  if (stats.isSocket()) return "socket";
  return "file";
}

/** What an open with O_NOFOLLOW (and O_DIRECTORY) says about something missing, a link, or another type. */
function isNotThere(error: unknown): boolean {
  const code = errnoCode(error);
  return code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR";
}
