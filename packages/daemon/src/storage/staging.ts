/**
 * Filling a directory (a volume) "atomic-ish" from a tree built elsewhere.
 *
 * New content is built in a private staging directory in `stagingRoot` (the
 * storage root's `tmp/`: mode 0700, seen by no container, emptied when the
 * driver opens), then moved into the target entry by entry. Nothing is ever
 * staged inside the target: a container sees its whole volume, so anything
 * there that looks like work in progress may be a link it planted.
 *
 * ```
 * <stagingRoot>/stage-<id>/tree/…   being filled; deleted if found later
 * <stagingRoot>/ready-<id>/tree/…   complete; being moved into the target
 * <stagingRoot>/ready-<id>/target   the target's path
 * ```
 * Renaming `stage-` to `ready-` marks it complete, so `recoverStaging` after
 * a crash knows to finish the move rather than throw the content away. Each
 * top-level entry appears in the target whole: files and links by `link(2)`
 * (which never replaces anything), directories by `rename(2)` (which cannot
 * replace a non-empty directory). Where the target is on another file system
 * or btrfs subvolume (`EXDEV`), an entry is first copied (reflinked where the
 * file system can) to a hidden `.town-incoming-<id>` in the target, then
 * renamed. The target is only ever reached through a handle (`tree.ts`).
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FileHandle } from "node:fs/promises";
import { TownError } from "@townos/format";
import { printable } from "./names.js";
import { RESERVED_ENTRY_PREFIX } from "./paths.js";
import { errnoCode, lstatOrUndefined } from "./safe-fs.js";
import {
  at,
  copyEntry,
  lstatAt,
  namesAt,
  openDirectoryOrUndefined,
  removeAt,
  withDirectory,
} from "./tree.js";

const STAGING_PREFIX = "stage-";
const READY_PREFIX = "ready-";
/** A copied entry's name in the target until it is complete. */
const INCOMING_PREFIX = `${RESERVED_ENTRY_PREFIX}incoming-`;
/** Names of interrupted work in a target: ours, and those of earlier versions that staged inside volumes. */
const LEFTOVER = /^\.town-(incoming|staging|ready)-[0-9a-f]{16}$/;

export interface Staging {
  /** The staging directory: scratch space (spooled uploads) besides `tree`. */
  dir: string;
  /** What ends up in the target. */
  tree: string;
  id: string;
  stagingRoot: string;
}

/** Makes a private staging directory in `stagingRoot` (which must exist, private to the daemon). */
export async function createStaging(stagingRoot: string): Promise<Staging> {
  const id = randomBytes(8).toString("hex");
  const dir = join(stagingRoot, `${STAGING_PREFIX}${id}`);
  await mkdir(dir, { mode: 0o700 });
  const tree = join(dir, "tree");
  await mkdir(tree, { mode: 0o700 });
  return { dir, tree, id, stagingRoot };
}

export async function discardStaging(staging: Staging): Promise<void> {
  await rm(staging.dir, { recursive: true, force: true });
}

/**
 * Moves the staged tree into `target` (a real directory: the caller resolved
 * it) and removes the staging directory.
 * @throws TownError `conflict`, before anything moved, when a top-level name
 *   is taken in the target (or, racing another writer, part way).
 */
export async function commitStaging(staging: Staging, target: string): Promise<void> {
  const ready = join(staging.stagingRoot, `${READY_PREFIX}${staging.id}`);
  try {
    await withDirectory(target, async (dir) => {
      const names = await withDirectory(staging.tree, namesAt);
      const taken: string[] = [];
      for (const name of names) if (await lstatAt(dir, name)) taken.push(name);
      if (taken.length > 0) throw clash("already there", taken);
      await writeFile(join(staging.dir, "target"), target, { mode: 0o600 });
      await rename(staging.dir, ready);
      const clashes = await moveEntries(join(ready, "tree"), dir);
      if (clashes.length > 0) throw clash("appeared meanwhile", clashes);
    });
  } finally {
    await rm(ready, { recursive: true, force: true });
    await discardStaging(staging);
  }
}

/**
 * Finishes what a crash interrupted in `stagingRoot`: completed trees whose
 * target `isTarget` accepts are moved into place (names taken meanwhile keep
 * what is there), unfinished ones deleted. Other entries are left alone.
 * Must not run while another operation stages in `stagingRoot`.
 */
export async function recoverStaging(
  stagingRoot: string,
  isTarget: (path: string) => boolean,
): Promise<void> {
  for (const name of await withDirectory(stagingRoot, namesAt)) {
    const path = join(stagingRoot, name);
    if (name.startsWith(READY_PREFIX)) {
      const target = await readFile(join(path, "target"), "utf8").catch(() => undefined);
      if (
        target !== undefined &&
        isTarget(target) &&
        (await lstatOrUndefined(join(path, "tree")))
      ) {
        const dir = await openDirectoryOrUndefined(target);
        if (dir) {
          try {
            await moveEntries(join(path, "tree"), dir);
          } finally {
            await dir.close();
          }
        }
      }
      await rm(path, { recursive: true, force: true });
    } else if (name.startsWith(STAGING_PREFIX)) {
      await rm(path, { recursive: true, force: true });
    }
  }
}

/**
 * Deletes what interrupted work left at the top of an open target: hidden
 * `.town-incoming-*` copies, and the in-volume staging directories of
 * earlier versions (`.town-staging-*`, `.town-ready-*`), which counted
 * against the volume's quota for good. They are ours only by name (an app
 * may have made them), so nothing in them is followed or moved: deleted.
 */
export async function removeLeftovers(target: FileHandle): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await namesAt(target)) {
    if (LEFTOVER.test(name)) {
      await removeAt(target, name);
      removed.push(name);
    }
  }
  return removed;
}

/** Moves every entry of `from` (private) into the open `to` without replacing anything; returns the names that clashed. */
async function moveEntries(from: string, to: FileHandle): Promise<string[]> {
  const clashes: string[] = [];
  await withDirectory(from, async (source) => {
    for (const name of await namesAt(source)) {
      try {
        if (!(await moveEntry(source, from, name, to))) clashes.push(name);
      } catch (error) {
        const code = errnoCode(error);
        if (code !== "EEXIST" && code !== "ENOTEMPTY" && code !== "ENOTDIR" && code !== "EISDIR")
          throw error;
        clashes.push(name);
      }
    }
  });
  return clashes;
}

/** One entry, whole or not at all; false when the name is taken. */
async function moveEntry(
  source: FileHandle,
  sourcePath: string,
  name: string,
  to: FileHandle,
): Promise<boolean> {
  const stats = await lstatAt(source, name);
  if (!stats) return true;
  if (await lstatAt(to, name)) return false;
  const from = join(sourcePath, name);
  try {
    await place(from, at(to, name), stats.isDirectory());
    return true;
  } catch (error) {
    if (errnoCode(error) !== "EXDEV") throw error;
  }
  // Another file system or btrfs subvolume: copied aside in the target, then put in place.
  const incoming = `${INCOMING_PREFIX}${randomBytes(8).toString("hex")}`;
  try {
    await copyEntry(source, name, to, incoming, {
      maxEntries: Number.MAX_SAFE_INTEGER,
      maxBytes: Number.MAX_SAFE_INTEGER,
      keepOwner: true,
    });
    await place(at(to, incoming), at(to, name), stats.isDirectory());
  } finally {
    await removeAt(to, incoming);
  }
  await rm(from, { recursive: true, force: true });
  return true;
}

/** rename(2) for directories (never over a non-empty one), link(2) for the rest (never over anything). */
async function place(from: string, to: string, directory: boolean): Promise<void> {
  if (directory) {
    await rename(from, to);
  } else {
    await link(from, to);
    await unlink(from);
  }
}

function clash(what: string, names: string[]): TownError {
  return new TownError(
    "conflict",
    `${what}: ${names
      .slice(0, 10)
      .map((name) => `"${printable(name)}"`)
      .join(", ")}`,
  );
}
