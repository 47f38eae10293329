/**
 * Test helpers: repositories written object by object with isomorphic-git
 * (no system git, no server), including trees real git would never make.
 */
import fs from "node:fs";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import * as git from "isomorphic-git";

/** A file's content, or a symbolic link (mode 120000) to a target, or an executable. */
export type FileSpec = string | Buffer | { symlink: string } | { executable: string };

/** A fresh repository in a temporary directory, on branch `main`. */
export async function initRepo(prefix = "town-git-"): Promise<string> {
  const dir = await mkdtemp(join(os.tmpdir(), prefix));
  await git.init({ fs, dir, defaultBranch: "main" });
  return dir;
}

/** Writes the files (paths with `/`) as trees and commits them on `main`; returns the commit. */
export async function commitTree(dir: string, files: Record<string, FileSpec>): Promise<string> {
  const tree = await writeTreeOf(dir, files);
  return commitRawTree(dir, tree);
}

/** Commits a tree written by hand (`writeRawTree`) on `main`; returns the commit. */
export async function commitRawTree(dir: string, tree: string): Promise<string> {
  const parent = await git.resolveRef({ fs, dir, ref: "main" }).catch(() => undefined);
  const author = { name: "Town Test", email: "test@town.invalid", timestamp: 0, timezoneOffset: 0 };
  const commit = await git.writeCommit({
    fs,
    dir,
    commit: { message: "test\n", tree, parent: parent ? [parent] : [], author, committer: author },
  });
  await git.writeRef({ fs, dir, ref: "refs/heads/main", value: commit, force: true });
  return commit;
}

/**
 * Writes a tree object as given, byte for byte: names isomorphic-git would
 * refuse to write, repeated names, any order. Entries are [mode, name, oid].
 */
export async function writeRawTree(
  dir: string,
  entries: [string, string, string][],
): Promise<string> {
  const object = Buffer.concat(
    entries.flatMap(([mode, name, oid]) => [
      Buffer.from(`${mode} ${name}\0`),
      Buffer.from(oid, "hex"),
    ]),
  );
  // writeTree would refuse these names: writing the object itself is the point.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  return git.writeObject({ fs, dir, type: "tree", object, format: "content" });
}

async function writeTreeOf(dir: string, files: Record<string, FileSpec>): Promise<string> {
  const here = new Map<string, FileSpec>();
  const below = new Map<string, Record<string, FileSpec>>();
  for (const [path, spec] of Object.entries(files)) {
    const slash = path.indexOf("/");
    if (slash === -1) here.set(path, spec);
    else {
      const name = path.slice(0, slash);
      const sub = below.get(name) ?? {};
      sub[path.slice(slash + 1)] = spec;
      below.set(name, sub);
    }
  }
  const tree: git.TreeEntry[] = [];
  for (const [name, spec] of here) {
    const [mode, content] =
      typeof spec === "string" || Buffer.isBuffer(spec)
        ? ["100644", Buffer.from(spec)]
        : "symlink" in spec
          ? ["120000", Buffer.from(spec.symlink)]
          : ["100755", Buffer.from(spec.executable)];
    const oid = await git.writeBlob({ fs, dir, blob: content });
    tree.push({ mode, path: name, oid, type: "blob" });
  }
  for (const [name, sub] of below) {
    tree.push({ mode: "040000", path: name, oid: await writeTreeOf(dir, sub), type: "tree" });
  }
  return git.writeTree({ fs, dir, tree });
}
