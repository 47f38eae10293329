/**
 * Making a tree fit to serve. Caddy serves a version as its own user and
 * follows links, and the tree was made by an archive, a repository, an image
 * or a build container, any of them hostile: links, FIFOs, sockets and
 * devices are deleted, files become 0644 and directories 0755, all owned by
 * root. Nothing is followed: the walk goes through directory handles and
 * files are changed through handles opened with `O_NOFOLLOW`.
 */
import { constants } from "node:fs";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { TownError } from "@townos/format";
import { MAX_DEPTH } from "../storage/paths.js";
import { printable } from "../storage/names.js";
import { openDirectoryOrUndefined, walk } from "../storage/tree.js";

export const SERVED_FILE_MODE = 0o644;
export const SERVED_DIRECTORY_MODE = 0o755;
/** How many left-out paths are reported. */
export const MAX_SKIPPED = 300;
/** O_NONBLOCK: a FIFO swapped in for a file must not hang the open. */
const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const ROOT = { uid: 0, gid: 0 };

export interface SanitiseLimits {
  /** Most bytes of file content (hard links counted once). */
  maxBytes: number;
  /** Most entries, left-out ones included. */
  maxEntries: number;
}

export interface SanitisedTree {
  files: number;
  bytes: number;
  /** Paths of what was deleted, the first `MAX_SKIPPED`. */
  skipped: string[];
  skippedCount: number;
}

/**
 * Sanitises the tree below the open directory `dir` (and `dir` itself).
 * @throws TownError `payload_too_large` past a limit, `invalid_argument`
 *   for a tree nested deeper than `MAX_DEPTH`, `io` for an entry that
 *   changed while being checked.
 */
export async function sanitiseTree(
  dir: FileHandle,
  limits: SanitiseLimits,
  signal?: AbortSignal,
): Promise<SanitisedTree> {
  await fix(dir, SERVED_DIRECTORY_MODE);
  const result: SanitisedTree = { files: 0, bytes: 0, skipped: [], skippedCount: 0 };
  const seen = new Set<number>();
  let entries = 0;
  const tooDeep = () => {
    throw new TownError("invalid_argument", `the site is nested deeper than ${MAX_DEPTH} levels`);
  };
  for await (const entry of walk(dir, { signal, tooDeep })) {
    if (++entries > limits.maxEntries) {
      throw new TownError(
        "payload_too_large",
        `the site has more than ${limits.maxEntries} entries`,
      );
    }
    const { stats } = entry;
    if (stats.isDirectory()) {
      const inner = await openDirectoryOrUndefined(entry.at);
      if (!inner) throw changed(entry.relative);
      try {
        await fix(inner, SERVED_DIRECTORY_MODE);
      } finally {
        await inner.close();
      }
    } else if (stats.isFile()) {
      await fixFile(entry.at, entry.relative);
      result.files++;
      if (stats.nlink > 1) {
        if (seen.has(stats.ino)) continue;
        seen.add(stats.ino);
      }
      result.bytes += stats.size;
      if (result.bytes > limits.maxBytes) {
        throw new TownError(
          "payload_too_large",
          `the site is larger than ${limits.maxBytes} bytes`,
        );
      }
    } else {
      // A link, FIFO, socket or device: unlink(2) removes the entry itself, never a target.
      await unlink(entry.at);
      result.skippedCount++;
      if (result.skipped.length < MAX_SKIPPED) {
        result.skipped.push(printable(entry.relative, 300));
      }
    }
  }
  return result;
}

async function fixFile(path: string, relative: string): Promise<void> {
  let file: FileHandle;
  try {
    file = await open(path, FILE_FLAGS);
  } catch {
    throw changed(relative);
  }
  try {
    if (!(await file.stat()).isFile()) throw changed(relative);
    await fix(file, SERVED_FILE_MODE);
  } finally {
    await file.close();
  }
}

/** Owner before mode: chown(2) may clear set-id bits, chmod sets the final mode. */
async function fix(handle: FileHandle, mode: number): Promise<void> {
  await handle.chown(ROOT.uid, ROOT.gid);
  await handle.chmod(mode);
}

function changed(relative: string): TownError {
  return new TownError("io", `"${printable(relative)}" changed while the site was being checked`);
}
