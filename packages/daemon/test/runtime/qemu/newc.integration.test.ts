import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { lstat, mkdtemp, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { newcArchive } from "./newc.js";

const run = promisify(execFile);

describe("newcArchive read by busybox cpio", () => {
  const dir = mkdtemp(join(tmpdir(), "town-newc-"));
  after(async () => rm(await dir, { recursive: true, force: true }));

  it("unpacks to the same directories, files, modes and links", async () => {
    const root = join(await dir, "root");
    const archive = newcArchive([
      { type: "directory", path: "bin", mode: 0o750 },
      { type: "file", path: "bin/tool", data: "#!/bin/sh\necho hi\n", mode: 0o755 },
      { type: "symlink", path: "bin/alias", target: "tool" },
      { type: "file", path: "empty", data: "" },
      { type: "file", path: "odd", data: Buffer.from([1, 2, 3, 4, 5]) },
    ]);
    await writeFile(join(await dir, "archive.cpio"), archive);
    await run("sh", [
      "-c",
      `mkdir "$1" && cd "$1" && busybox cpio -i -d < "$2"`,
      "sh",
      root,
      join(await dir, "archive.cpio"),
    ]);
    assert.equal((await lstat(join(root, "bin"))).mode & 0o7777, 0o750);
    assert.equal((await lstat(join(root, "bin/tool"))).mode & 0o7777, 0o755);
    assert.equal(await readFile(join(root, "bin/tool"), "utf8"), "#!/bin/sh\necho hi\n");
    assert.equal(await readlink(join(root, "bin/alias")), "tool");
    assert.equal((await readFile(join(root, "empty"))).length, 0);
    assert.deepEqual([...(await readFile(join(root, "odd")))], [1, 2, 3, 4, 5]);
  });
});
