/**
 * The directory of a tree a page serves or builds (`dir`, a build's
 * `output`): a relative path whose every component must be a real
 * directory, looked up without following links.
 */
import { basename, dirname } from "node:path";
import type { FileHandle } from "node:fs/promises";
import { TownError } from "@townos/format";
import { printable } from "../storage/names.js";
import { checkRelativePath } from "../storage/paths.js";
import { PathRefused } from "../storage/safe-fs.js";
import { lstatAt, openDirectory, openInside } from "../storage/tree.js";

/**
 * A sub-directory as path components; null, `.` and `/`-only mean the whole
 * tree (none). A trailing `/` is tolerated.
 * @throws TownError `invalid_argument` for an absolute path, `..`, empty
 *   components or control characters.
 */
export function subdirParts(path: string | null, what: string): string[] {
  if (path === null) return [];
  if (path === "") throw new TownError("invalid_argument", `${what}: the directory is empty`);
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed === "" || trimmed === ".") return [];
  const check = checkRelativePath(trimmed);
  if ("reason" in check) {
    throw new TownError("invalid_argument", `${what} "${printable(path)}": ${check.reason}`);
  }
  return check.parts;
}

/** An entry in an open directory: how a directory is renamed without its path being followed. */
export interface DirectoryEntry {
  parent: FileHandle;
  name: string;
}

/**
 * Opens the parent of `root/parts…` and checks that the entry is a real
 * directory; `root` itself (its parent opened) for no parts. The caller
 * closes `parent`.
 * @throws TownError `invalid_argument` naming `source` ("the archive has no
 *   directory docs/") when it is missing, a link or not a directory.
 */
export async function findDirectory(
  root: string,
  parts: readonly string[],
  source: string,
): Promise<DirectoryEntry> {
  if (parts.length === 0)
    return { parent: await openDirectory(dirname(root)), name: basename(root) };
  const shown = `${printable(parts.join("/"))}/`;
  let parent: FileHandle | undefined;
  try {
    parent = await openInside(root, parts.slice(0, -1));
  } catch (error) {
    if (error instanceof PathRefused) {
      throw new TownError("invalid_argument", `${source}: ${shown} ${error.reason}`);
    }
    throw error;
  }
  if (!parent) throw new TownError("invalid_argument", `${source} has no directory ${shown}`);
  const name = parts[parts.length - 1] ?? "";
  try {
    const stats = await lstatAt(parent, name);
    if (!stats) throw new TownError("invalid_argument", `${source} has no directory ${shown}`);
    if (stats.isSymbolicLink()) {
      throw new TownError("invalid_argument", `${source}: ${shown} is a symbolic link`);
    }
    if (!stats.isDirectory()) {
      throw new TownError("invalid_argument", `${source}: ${shown} is not a directory`);
    }
    return { parent, name };
  } catch (error) {
    await parent.close();
    throw error;
  }
}
