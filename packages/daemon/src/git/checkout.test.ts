import assert from "node:assert/strict";
import fs from "node:fs";
import { readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import * as git from "isomorphic-git";
import { expectTownError } from "../../../format/test/support.js";
import { commitRawTree, commitTree, initRepo, writeRawTree } from "../../test/git-objects.js";
import { MAX_DEPTH } from "../storage/paths.js";
import { checkoutHead, type CheckoutOptions } from "./checkout.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function repo(): Promise<string> {
  const dir = await initRepo();
  dirs.push(dir);
  return dir;
}

function options(dir: string, extra: Partial<CheckoutOptions> = {}): CheckoutOptions {
  return {
    dir,
    cache: {},
    maxFiles: 1000,
    context: "git: clone x",
    onProgress: undefined,
    ...extra,
  };
}

/** A repository whose root tree holds `entries` next to a fair file. */
async function hostile(entries: (blob: string) => [string, string, string][]): Promise<string> {
  const dir = await repo();
  const blob = await git.writeBlob({ fs, dir, blob: Buffer.from("x\n") });
  await commitRawTree(
    dir,
    await writeRawTree(dir, [["100644", "fair.txt", blob], ...entries(blob)]),
  );
  return dir;
}

describe("checkoutHead", () => {
  it("checks out files, executables and links as git does", async () => {
    const dir = await repo();
    const commit = await commitTree(dir, {
      "index.html": "<h1>hi</h1>\n",
      "bin/start.sh": { executable: "#!/bin/sh\n" },
      "home.html": { symlink: "index.html" },
    });
    const phases = new Set<string>();
    const checked = await checkoutHead(
      options(dir, { onProgress: (progress) => phases.add(progress.phase) }),
    );
    assert.equal(checked, commit);
    assert.equal(await readFile(join(dir, "index.html"), "utf8"), "<h1>hi</h1>\n");
    assert.equal(await readlink(join(dir, "home.html")), "index.html");
    assert.equal((await stat(join(dir, "bin", "start.sh"))).mode & 0o111, 0o111);
    assert.ok(phases.size > 0);
  });

  it("refuses names with control characters, empty names and repeated names, checking out nothing", async () => {
    const dir = await hostile((blob) => [
      ["100644", "", blob],
      ["100644", "evil\nname", blob],
      ["100644", "twice", blob],
      ["040000", "twice", blob],
    ]);
    const error = await expectTownError(
      checkoutHead(options(dir)),
      "invalid_argument",
      /^git: clone x: the repository holds paths that are not safe to check out$/,
    );
    assert.deepEqual(
      error.issues.map((issue) => `${issue.field}: ${issue.message}`),
      [
        ": not a valid name",
        "evil\\u000aname: a control character in the name",
        "twice: a name listed twice",
      ],
    );
    assert.deepEqual(await readdir(dir), [".git"]);
  });

  it("refuses what isomorphic-git cannot read: .git, .. and names with a slash", async () => {
    for (const name of [".git", ".GIT", "..", "a/b"]) {
      const dir = await hostile((blob) => [["100644", name, blob]]);
      await expectTownError(
        checkoutHead(options(dir)),
        "io",
        /^git: clone x: reading the tree failed: /,
      );
      assert.deepEqual(await readdir(dir), [".git"]);
    }
  });

  it("bounds the number of paths and the depth", async () => {
    const many = await repo();
    await commitTree(
      many,
      Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`f${i}`, "x"])),
    );
    await expectTownError(
      checkoutHead(options(many, { maxFiles: 10 })),
      "invalid_argument",
      /more than 10 paths$/,
    );
    const deep = await repo();
    await commitTree(deep, { [`${"d/".repeat(MAX_DEPTH)}file`]: "x" });
    await expectTownError(
      checkoutHead(options(deep)),
      "invalid_argument",
      /nested deeper than 128 levels$/,
    );
    assert.deepEqual(await readdir(deep), [".git"]);
  });

  it("says so when there is no commit", async () => {
    const dir = await repo();
    await expectTownError(
      checkoutHead(options(dir)),
      "not_found",
      /the repository has no commits$/,
    );
  });
});
