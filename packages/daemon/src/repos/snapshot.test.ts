import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { expectTownError } from "../../../format/test/support.js";
import { commitTree, initRepo, type FileSpec } from "../../test/git-objects.js";
import { diffEntries } from "../git/diff.js";
import type { GitProgress } from "../git/network.js";
import { ObjectReader } from "../git/objects.js";
import { readSnapshot, type SnapshotContext } from "./snapshot.js";

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function repo(files: Record<string, FileSpec>): Promise<{ dir: string; commit: string }> {
  const dir = await initRepo();
  dirs.push(dir);
  return { dir, commit: await commitTree(dir, files) };
}

function context(extra: Partial<SnapshotContext> = {}): SnapshotContext {
  return {
    display: "https://git.example/r.git",
    maxFiles: 100,
    maxBytes: 10_000,
    signal: new AbortController().signal,
    objects: new ObjectReader(undefined, 1000),
    onProgress: undefined,
    ...extra,
  };
}

describe("readSnapshot", () => {
  it("reads featured.json and packages/<name>/<file> only, reporting what it skips", async () => {
    const { dir, commit } = await repo({
      "featured.json": "[]\n",
      "README.md": "not a package file\n",
      "packages/a/1.0.yaml": "name: a\n",
      "packages/a/nested/2.0.yaml": "name: a\n",
      "packages/a/link.yaml": { symlink: "/etc/passwd" },
      "packages/b/1.0.yaml": "x".repeat(1001),
      "other/packages/c/1.0.yaml": "name: c\n",
    });
    const progress: GitProgress[] = [];
    const snapshot = await readSnapshot(
      context({ onProgress: (p) => progress.push(p) }),
      dir,
      commit,
    );
    assert.deepEqual(
      snapshot.files.map((file) => file.path),
      ["featured.json", "packages/a/1.0.yaml"],
    );
    assert.deepEqual(snapshot.skipped, [
      { path: "packages/a/link.yaml", reason: "not a regular file (a link)" },
      { path: "packages/b/1.0.yaml", reason: "file is 1001 bytes, more than the 1000 allowed" },
    ]);
    assert.equal(snapshot.entries.size, 4);
    assert.deepEqual(progress.at(-1), { phase: "Reading files", loaded: 4, total: 4 });
  });

  it("lists what changed between two commits, skipped files included", async () => {
    const { dir, commit: first } = await repo({
      "packages/a/1.0.yaml": "name: a\n",
      "packages/b/1.0.yaml": "x".repeat(1001),
      "packages/c/1.0.yaml": "name: c\n",
      "README.md": "one\n",
    });
    const second = await commitTree(dir, {
      "packages/a/1.0.yaml": "name: a\n",
      "packages/b/1.0.yaml": "name: b\n",
      "packages/d/1.0.yaml": "name: d\n",
      "README.md": "two\n",
    });
    const ctx = context();
    const before = await readSnapshot(ctx, dir, first);
    const now = await readSnapshot(ctx, dir, second);
    assert.deepEqual(diffEntries(before.entries, now.entries), [
      "packages/b/1.0.yaml",
      "packages/c/1.0.yaml",
      "packages/d/1.0.yaml",
    ]);
  });

  it("refuses more files, package directories or bytes than allowed", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 4; i++) files[`packages/p${i}/1.0.yaml`] = "x".repeat(400);
    const { dir, commit } = await repo(files);
    await expectTownError(
      readSnapshot(context({ maxFiles: 3 }), dir, commit),
      "invalid_argument",
      /^git: https:\/\/git\.example\/r\.git: the repository has more than 3 package directories$/,
    );
    await expectTownError(
      readSnapshot(context({ maxBytes: 1000 }), dir, commit),
      "invalid_argument",
      /the package files hold more than 1000 bytes$/,
    );
    const flat = await repo({
      "packages/p/1.yaml": "a",
      "packages/p/2.yaml": "b",
      "packages/p/3.yaml": "c",
    });
    await expectTownError(
      readSnapshot(context({ maxFiles: 2 }), flat.dir, flat.commit),
      "invalid_argument",
      /more than 2 package files$/,
    );
  });
});
