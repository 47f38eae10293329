/**
 * Filling a directory "atomic-ish": new content is built in a private staging
 * directory inside the target (same file system, so moving is a rename; same
 * volume, so its quota counts), then moved into place entry by entry.
 *
 * ```
 * <target>/.town-staging-<id>/tree/…   being filled; deleted if found later
 * <target>/.town-ready-<id>/tree/…     complete; being moved into <target>
 * ```
 * Renaming the staging directory to `.town-ready-…` marks it complete, so
 * `recoverStaging` after a crash knows to finish the move rather than throw
 * the content away. Each top-level entry appears in the target whole: files
 * and links by `link(2)` (which never replaces anything), directories by
 * `rename(2)` (which cannot replace a non-empty directory).
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, opendir, rename, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { printable } from "./names.js";
import { errnoCode, lstatOrUndefined } from "./safe-fs.js";

const STAGING_PREFIX = ".town-staging-";
const READY_PREFIX = ".town-ready-";

export interface Staging {
  /** The staging directory: scratch space (spooled uploads) besides `tree`. */
  dir: string;
  /** What ends up in the target. */
  tree: string;
  id: string;
}

/** Makes a private staging directory in `target`. */
export async function createStaging(target: string): Promise<Staging> {
  const id = randomBytes(8).toString("hex");
  const dir = join(target, `${STAGING_PREFIX}${id}`);
  await mkdir(dir, { mode: 0o700 });
  const tree = join(dir, "tree");
  await mkdir(tree, { mode: 0o700 });
  return { dir, tree, id };
}

export async function discardStaging(staging: Staging): Promise<void> {
  await rm(staging.dir, { recursive: true, force: true });
}

/**
 * Moves the staged tree into the target and removes the staging directory.
 * @throws TownError `conflict`, before anything moved, when a top-level name
 *   is taken in the target (or, racing another writer, part way).
 */
export async function commitStaging(staging: Staging, target: string): Promise<void> {
  const names = await namesIn(staging.tree);
  const taken: string[] = [];
  for (const name of names) if (await lstatOrUndefined(join(target, name))) taken.push(name);
  if (taken.length > 0) {
    await discardStaging(staging);
    throw new TownError(
      "conflict",
      `already there: ${taken
        .slice(0, 10)
        .map((name) => `"${printable(name)}"`)
        .join(", ")}`,
    );
  }
  const ready = join(target, `${READY_PREFIX}${staging.id}`);
  await rename(staging.dir, ready);
  try {
    const clashes = await moveEntries(join(ready, "tree"), target);
    if (clashes.length > 0) {
      throw new TownError(
        "conflict",
        `appeared meanwhile: ${clashes
          .slice(0, 10)
          .map((name) => `"${printable(name)}"`)
          .join(", ")}`,
      );
    }
  } finally {
    await rm(ready, { recursive: true, force: true });
  }
}

/**
 * Finishes what a crash interrupted in `target`: completed trees are moved
 * into place (names taken meanwhile keep what is there), unfinished ones
 * deleted. Must not run while another operation stages into `target`.
 */
export async function recoverStaging(target: string): Promise<void> {
  for (const name of await namesIn(target)) {
    const path = join(target, name);
    if (name.startsWith(READY_PREFIX)) {
      if (await lstatOrUndefined(join(path, "tree"))) await moveEntries(join(path, "tree"), target);
      await rm(path, { recursive: true, force: true });
    } else if (name.startsWith(STAGING_PREFIX)) {
      await rm(path, { recursive: true, force: true });
    }
  }
}

/** Moves every entry of `from` into `to` without replacing anything; returns the names that clashed. */
async function moveEntries(from: string, to: string): Promise<string[]> {
  const clashes: string[] = [];
  for (const name of await namesIn(from)) {
    const source = join(from, name);
    const destination = join(to, name);
    const stats = await lstatOrUndefined(source);
    try {
      if (stats?.isDirectory()) {
        if (await lstatOrUndefined(destination)) {
          clashes.push(name);
          continue;
        }
        await rename(source, destination);
      } else {
        await link(source, destination);
        await unlink(source);
      }
    } catch (error) {
      const code = errnoCode(error);
      if (code !== "EEXIST" && code !== "ENOTEMPTY" && code !== "ENOTDIR" && code !== "EISDIR")
        throw error;
      clashes.push(name);
    }
  }
  return clashes;
}

async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const dirent of await opendir(dir)) names.push(dirent.name);
  return names.sort();
}
