import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { commitTree, initRepo } from "../../test/git-objects.js";
import { ObjectReader } from "./objects.js";

describe("ObjectReader", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("reads trees and UTF-8 blobs, says why others are not taken, and memoizes by id", async () => {
    const dir = await initRepo();
    dirs.push(dir);
    const commit = await commitTree(dir, {
      "ok.txt": "héllo\n",
      "big.txt": "x".repeat(101),
      "latin1.txt": Buffer.from([0x68, 0xe9, 0x0a]),
    });
    const first = new ObjectReader(undefined, 100);
    const root = await first.tree(dir, commit);
    assert.deepEqual(root.map((entry) => entry.path).sort(), ["big.txt", "latin1.txt", "ok.txt"]);
    const blob = (name: string) => root.find((entry) => entry.path === name)?.oid ?? "";
    assert.deepEqual(await first.blob(dir, blob("ok.txt")), { text: "héllo\n" });
    assert.deepEqual(await first.blob(dir, blob("big.txt")), {
      reason: "file is 101 bytes, more than the 100 allowed",
    });
    assert.deepEqual(await first.blob(dir, blob("latin1.txt")), { reason: "not valid UTF-8 text" });

    // With the objects gone, only what the memo holds can still be read.
    await rm(join(dir, ".git", "objects"), { recursive: true });
    const second = new ObjectReader(first.used, 100);
    assert.deepEqual(await second.tree(dir, commit), root);
    assert.deepEqual(await second.blob(dir, blob("ok.txt")), { text: "héllo\n" });
    assert.deepEqual(
      [...second.used.blobs.keys()],
      [blob("ok.txt")],
      "the next memo keeps what was used",
    );
    await assert.rejects(new ObjectReader(undefined, 100).tree(dir, commit));
  });
});
