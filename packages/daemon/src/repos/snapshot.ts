/**
 * The package files of a commit: `featured.json` at the root and
 * `packages/<name>/<version>.yaml`, listed and read through the object memo.
 * Only the root, `packages` and `packages/<name>` trees are read: nothing
 * else in the repository costs anything. Bounded by the number of files and
 * directories and by the bytes of all files together.
 */
import { isRepositoryPath, TownError, type RepositoryFile } from "@townos/format";
import type { TreeEntry } from "isomorphic-git";
import type { TreeFile } from "../git/diff.js";
import { reportProgress, type GitProgress } from "../git/network.js";
import type { ObjectReader } from "../git/objects.js";

/** A repository file that was not read, and why. */
export interface SkippedFile {
  path: string;
  reason: string;
}

export interface Snapshot {
  /** Every repository path of the commit, read or not. */
  entries: Map<string, TreeFile>;
  /** The files read, sorted by path. */
  files: RepositoryFile[];
  skipped: SkippedFile[];
}

export interface SnapshotContext {
  /** The repository's URL as shown in messages. */
  display: string;
  /** Most repository files, and most package directories. */
  maxFiles: number;
  /** Most bytes of all files read together. */
  maxBytes: number;
  signal: AbortSignal;
  objects: ObjectReader;
  onProgress: ((progress: GitProgress) => void) | undefined;
}

/** Lists the repository files of a commit without reading them. */
export async function listRepositoryFiles(
  ctx: SnapshotContext,
  dir: string,
  commit: string,
): Promise<Map<string, TreeFile>> {
  const entries = new Map<string, TreeFile>();
  const add = (path: string, entry: TreeEntry) => {
    if (!isRepositoryPath(path)) return;
    if (entries.size >= ctx.maxFiles) {
      throw new TownError(
        "invalid_argument",
        `git: ${ctx.display}: the repository has more than ${ctx.maxFiles} package files`,
      );
    }
    entries.set(path, { oid: entry.oid, mode: entry.mode, type: entry.type });
  };
  const root = await ctx.objects.tree(dir, commit);
  for (const entry of root) add(entry.path, entry);
  const packages = root.find((entry) => entry.path === "packages" && entry.type === "tree");
  if (!packages) return entries;
  const names = await ctx.objects.tree(dir, packages.oid);
  if (names.length > ctx.maxFiles) {
    throw new TownError(
      "invalid_argument",
      `git: ${ctx.display}: the repository has more than ${ctx.maxFiles} package directories`,
    );
  }
  for (const name of names) {
    if (name.type !== "tree") continue;
    ctx.signal.throwIfAborted();
    for (const version of await ctx.objects.tree(dir, name.oid)) {
      add(`packages/${name.path}/${version.path}`, version);
    }
  }
  return entries;
}

/** Lists and reads the repository files of a commit. */
export async function readSnapshot(
  ctx: SnapshotContext,
  dir: string,
  commit: string,
): Promise<Snapshot> {
  const entries = await listRepositoryFiles(ctx, dir, commit);
  const files: RepositoryFile[] = [];
  const skipped: SkippedFile[] = [];
  const paths = [...entries.keys()].sort();
  let loaded = 0;
  let bytes = 0;
  for (const path of paths) {
    const entry = entries.get(path);
    if (!entry) continue;
    ctx.signal.throwIfAborted();
    if (entry.type !== "blob" || entry.mode === "120000") {
      const kind =
        entry.type === "tree" ? "a directory" : entry.type === "commit" ? "a submodule" : "a link";
      skipped.push({ path, reason: `not a regular file (${kind})` });
    } else {
      const content = await ctx.objects.blob(dir, entry.oid);
      if ("text" in content) {
        bytes += Buffer.byteLength(content.text, "utf8");
        if (bytes > ctx.maxBytes) {
          throw new TownError(
            "invalid_argument",
            `git: ${ctx.display}: the package files hold more than ${ctx.maxBytes} bytes`,
          );
        }
        files.push({ path, text: content.text });
      } else skipped.push({ path, reason: content.reason });
    }
    loaded++;
    if (loaded % 200 === 0) {
      reportProgress(ctx.onProgress, { phase: "Reading files", loaded, total: paths.length });
    }
  }
  reportProgress(ctx.onProgress, {
    phase: "Reading files",
    loaded: paths.length,
    total: paths.length,
  });
  return { entries, files, skipped };
}
