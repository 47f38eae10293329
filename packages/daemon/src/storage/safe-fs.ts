/**
 * File-system work below a root that must never leave it, and tree walks that
 * never follow symbolic links.
 *
 * Paths arrive as component lists already checked by `paths.ts` (no `..`,
 * nothing absolute). What remains is the disk itself: a component that is a
 * symbolic link would lead elsewhere. So every parent is `lstat`ed and must be
 * a real directory, files are opened with `O_NOFOLLOW | O_EXCL`, and each new
 * file's real location (read back from `/proc/self/fd`) must be inside the
 * root, which catches a directory swapped for a link between the check and the
 * open. Node has no `openat`, so a program that races us inside the same tree
 * can still make us create an empty directory or file elsewhere; nothing is
 * ever written through such a file. Callers keep trees they fill private
 * (mode 0700 staging directories) or work while the volume's apps are stopped.
 */
import { constants, type Stats } from "node:fs";
import {
  chmod,
  chown,
  copyFile,
  lchown,
  lstat,
  lutimes,
  mkdir,
  open,
  opendir,
  readlink,
  realpath,
  symlink,
  utimes,
  type FileHandle,
} from "node:fs/promises";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { printable } from "./names.js";
import { MAX_DEPTH } from "./paths.js";

/** Owner given to what Town OS writes into a volume. */
export interface Owner {
  uid: number;
  gid: number;
}

/** An entry left out of a copy or an unpack, and why. */
export interface RefusedEntry {
  path: string;
  reason: string;
}

/** A path that would leave its root, or cross something that is not a directory. */
export class PathRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** uid/gid 4294967295 means "unchanged" to chown(2). */
const MAX_ID = 4_294_967_294;

/** @throws TownError `invalid_argument` for ids that are not 0…4294967294 */
export function checkOwner(owner: Owner | undefined): void {
  if (!owner) return;
  for (const [what, id] of [
    ["uid", owner.uid],
    ["gid", owner.gid],
  ] as const) {
    if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) {
      throw new TownError("invalid_argument", `storage: ${what} ${String(id)} is out of range`);
    }
  }
}

/** @throws TownError `invalid_argument` unless `value` is a whole number ≥ 0 */
export function checkLimit(context: string, name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TownError("invalid_argument", `${context}: ${name} must be a whole number ≥ 0`);
  }
  return value;
}

/** The errno code of a Node file-system error. */
export function errnoCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/** The real path of an existing directory. @throws TownError `not_found` */
export async function realDirectory(path: string, what: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    if (errnoCode(error) === "ENOENT")
      throw new TownError("not_found", `${what}: ${path} does not exist`);
    throw ioError(what, error);
  }
  if (!(await lstat(real)).isDirectory()) {
    throw new TownError("invalid_argument", `${what}: ${path} is not a directory`);
  }
  return real;
}

/**
 * Makes sure `root/parts…` exists as real directories, creating the missing
 * ones with `mode` and `owner` (existing ones are left as they are). `known`
 * remembers directories already checked in this operation, for trees only
 * this operation writes.
 * @throws PathRefused when a component is a link or not a directory.
 */
export async function ensureDirs(
  root: string,
  parts: readonly string[],
  options: { mode: number; owner?: Owner | undefined; known?: Set<string> },
): Promise<void> {
  let path = root;
  for (let i = 0; i < parts.length; i++) {
    path = join(path, parts[i] ?? "");
    if (options.known?.has(path)) continue;
    const stats = await lstatOrUndefined(path);
    if (stats === undefined) {
      try {
        await mkdir(path, { mode: options.mode });
      } catch (error) {
        // Someone else made it in the meantime: check what it is, below.
        if (errnoCode(error) !== "EEXIST") throw error;
        await ensureDirs(root, parts.slice(0, i + 1), { mode: options.mode });
        continue;
      }
      await chmod(path, options.mode);
      if (options.owner) await chown(path, options.owner.uid, options.owner.gid);
      if ((await realpath(path)) !== path) {
        throw new PathRefused(
          `"${printable(parts.slice(0, i + 1).join("/"))}" moved while being made`,
        );
      }
    } else if (stats.isSymbolicLink()) {
      throw new PathRefused(
        `goes through the symbolic link "${printable(parts.slice(0, i + 1).join("/"))}"`,
      );
    } else if (!stats.isDirectory()) {
      throw new PathRefused(`"${printable(parts.slice(0, i + 1).join("/"))}" is not a directory`);
    }
    options.known?.add(path);
  }
}

/**
 * `lstat` of `root/parts…` after checking that every parent is a real
 * directory; undefined when it (or a parent) does not exist.
 * @throws PathRefused when a parent is a link or not a directory.
 */
export async function lstatInside(
  root: string,
  parts: readonly string[],
): Promise<Stats | undefined> {
  let path = root;
  for (let i = 0; i < parts.length; i++) {
    path = join(path, parts[i] ?? "");
    const stats = await lstatOrUndefined(path);
    if (stats === undefined || i === parts.length - 1) return stats;
    if (stats.isSymbolicLink()) {
      throw new PathRefused(
        `goes through the symbolic link "${printable(parts.slice(0, i + 1).join("/"))}"`,
      );
    }
    if (!stats.isDirectory()) {
      throw new PathRefused(`"${printable(parts.slice(0, i + 1).join("/"))}" is not a directory`);
    }
  }
  return lstatOrUndefined(root);
}

/**
 * Creates a new file at `root/parts…` (parents must exist: `ensureDirs`),
 * never opening an existing file or following a link, and checks where it
 * landed. `EEXIST` from the open is passed on to the caller.
 * @throws PathRefused when the file did not land inside `root`.
 */
export async function createFileInside(
  root: string,
  parts: readonly string[],
  mode: number,
): Promise<FileHandle> {
  const path = join(root, ...parts);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await open(path, flags, mode);
  try {
    const landed = await readlink(`/proc/self/fd/${handle.fd}`);
    if (landed !== path) {
      throw new PathRefused(`"${printable(parts.join("/"))}" moved while being written`);
    }
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

export interface WalkEntry {
  /** Path relative to the walked directory, `/`-separated. */
  relative: string;
  path: string;
  stats: Stats;
  depth: number;
}

/**
 * Every entry below `dir` (not `dir` itself), parents before children, by
 * `lstat`: links are reported, never followed. Directories deeper than
 * `MAX_DEPTH` are not entered; `tooDeep` is called for each.
 */
export async function* walk(
  dir: string,
  options: { signal?: AbortSignal | undefined; tooDeep?: (entry: WalkEntry) => void } = {},
): AsyncGenerator<WalkEntry> {
  yield* walkBelow(dir, "", 1, options);
}

async function* walkBelow(
  dir: string,
  prefix: string,
  depth: number,
  options: { signal?: AbortSignal | undefined; tooDeep?: (entry: WalkEntry) => void },
): AsyncGenerator<WalkEntry> {
  const handle = await opendir(dir);
  // `for await` over a Dir closes it when the loop ends, early or not.
  for await (const dirent of handle) {
    options.signal?.throwIfAborted();
    const path = join(dir, dirent.name);
    const stats = await lstatOrUndefined(path);
    if (!stats) continue;
    const entry = { relative: `${prefix}${dirent.name}`, path, stats, depth };
    yield entry;
    if (!stats.isDirectory()) continue;
    if (depth >= MAX_DEPTH) options.tooDeep?.(entry);
    else yield* walkBelow(path, `${entry.relative}/`, depth + 1, options);
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

/** Gives `owner` everything in a tree, the tree's root included, links themselves not their targets. */
export async function chownTree(dir: string, owner: Owner, signal?: AbortSignal): Promise<void> {
  await chown(dir, owner.uid, owner.gid);
  for await (const entry of walk(dir, { signal })) {
    await lchown(entry.path, owner.uid, owner.gid);
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

/** Most entries reported as skipped; the rest are counted only. */
export const MAX_REPORTED = 1000;

/**
 * Copies the tree below `source` into the existing, empty directory `target`
 * without following links: links are copied as links (their targets
 * untouched), regular files by content (a reflink where the file system can),
 * directories recursively. Devices, FIFOs and sockets are skipped and
 * reported. Modes are kept without set-id bits; modification times are kept.
 * `target` must be private to the caller: it is written with plain paths.
 * @throws TownError `payload_too_large` past `maxEntries` or `maxBytes`.
 */
export async function copyTree(
  source: string,
  target: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const result: CopyResult = { entries: 0, bytes: 0, skipped: [] };
  const directories: WalkEntry[] = [];
  const skip = (relative: string, reason: string) => {
    if (result.skipped.length < MAX_REPORTED) result.skipped.push({ path: relative, reason });
  };
  const walker = walk(source, {
    signal: options.signal,
    tooDeep: (entry) => {
      skip(entry.relative, `nested deeper than ${MAX_DEPTH} levels`);
    },
  });
  for await (const entry of walker) {
    if (++result.entries > options.maxEntries) {
      throw new TownError("payload_too_large", `copy: more than ${options.maxEntries} entries`);
    }
    const { stats } = entry;
    const destination = join(target, entry.relative);
    const owner =
      options.owner ?? (options.keepOwner ? { uid: stats.uid, gid: stats.gid } : undefined);
    if (stats.isDirectory()) {
      await mkdir(destination, { mode: 0o700 });
      directories.push(entry);
    } else if (stats.isFile()) {
      result.bytes += stats.size;
      if (result.bytes > options.maxBytes) {
        throw new TownError("payload_too_large", `copy: more than ${options.maxBytes} bytes`);
      }
      await copyFile(entry.path, destination, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      await chmod(destination, stats.mode & 0o1777);
      await utimes(destination, stats.atime, stats.mtime);
    } else if (stats.isSymbolicLink()) {
      await symlink(await readlink(entry.path), destination);
      await lutimes(destination, stats.atime, stats.mtime);
    } else {
      skip(entry.relative, `${fileType(stats)} not copied`);
      continue;
    }
    if (owner) await lchown(destination, owner.uid, owner.gid);
  }
  // Modes and times of directories last: writing into them changed their times,
  // and a read-only mode would have stopped the copy.
  for (const entry of directories.reverse()) {
    const destination = join(target, entry.relative);
    await chmod(destination, entry.stats.mode & 0o1777);
    await utimes(destination, entry.stats.atime, entry.stats.mtime);
  }
  return result;
}

function fileType(stats: Stats): string {
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "device file";
  if (stats.isFIFO()) return "FIFO";
  if (stats.isSocket()) return "socket";
  if (stats.isSymbolicLink()) return "symbolic link";
  if (stats.isDirectory()) return "directory";
  return "file";
}

/** Names in a directory, except those starting with `ignorePrefix`. */
export async function entryNames(dir: string, ignorePrefix?: string): Promise<string[]> {
  const names: string[] = [];
  for await (const dirent of await opendir(dir)) {
    if (ignorePrefix === undefined || !dirent.name.startsWith(ignorePrefix))
      names.push(dirent.name);
  }
  return names.sort();
}

export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw error;
  }
}

/**
 * EDQUOT, which libuv has no name for: Node reports it as "Unknown system
 * error -122", so the number is what can be relied on.
 */
function isQuotaExceeded(error: unknown): boolean {
  return (
    error instanceof Error && (error as { errno?: unknown }).errno === -osConstants.errno.EDQUOT
  );
}

/** A file-system failure as a TownError: a full volume is `payload_too_large`, the rest `io`. */
export function ioError(context: string, error: unknown): TownError {
  if (error instanceof TownError) return error.withContext(context);
  if (isQuotaExceeded(error)) {
    return new TownError("payload_too_large", `${context}: the volume's quota is used up`);
  }
  if (errnoCode(error) === "ENOSPC") {
    return new TownError("io", `${context}: no space left on the disk`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TownError("io", `${context}: ${message}`);
}
