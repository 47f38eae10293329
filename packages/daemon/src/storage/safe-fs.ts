/**
 * File-system work below a root that must never leave it, for trees only the
 * daemon writes: private staging trees in the storage root's `tmp/`. (Trees a
 * container can write, its volumes, are handled by `tree.ts`, on handles.)
 *
 * Paths arrive as component lists already checked by `paths.ts` (no `..`,
 * nothing absolute). What remains is the disk itself: a component that is a
 * symbolic link would lead elsewhere. So every parent is `lstat`ed and must be
 * a real directory, files are opened with `O_NOFOLLOW | O_EXCL`, and each new
 * file's real location (read back from `/proc/self/fd`) must be inside the
 * root, a last check that the tree is still private.
 */
import { constants, type Stats } from "node:fs";
import {
  chmod,
  chown,
  lstat,
  mkdir,
  open,
  opendir,
  readlink,
  realpath,
  type FileHandle,
} from "node:fs/promises";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { printable } from "./names.js";

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

/** Most entries reported as skipped or refused; the rest are counted only. */
export const MAX_REPORTED = 1000;

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
