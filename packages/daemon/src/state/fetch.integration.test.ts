/**
 * Fetching a hostile state repository over git's smart HTTP: a state file
 * that is a link (to /etc/passwd) or a directory, an oversized file and a
 * submodule are reported as problems, never read through; other files are
 * read from the branch's head with its author and message; credentials are
 * used and kept out of errors; nothing is left in the scratch directory.
 */
import assert from "node:assert/strict";
import { mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isTownError } from "@townos/format";
import { createRepo, git, startGitServer, type GitServer } from "../../test/git-server.js";
import { scratchDir } from "../../test/net.js";
import { fetchState } from "./fetch.js";
import { MAX_STATE_FILE_BYTES } from "./layout.js";

describe("fetching a state repository", () => {
  let scratch: string;
  let server: GitServer;
  let locked: GitServer;
  let head: string;

  before(async () => {
    scratch = await scratchDir("town-state-fetch-");
    const dir = await createRepo(join(scratch, "git"), "state.git", {
      "repositories.yaml": "- name: main\n  url: https://git.example/pkgs.git\n",
      "apps/main/wiki.yaml": "answers:\n  title: Our wiki\n",
      "apps/main/big.yaml": `# ${"x".repeat(MAX_STATE_FILE_BYTES)}\n`,
      "apps/README.md": "not a state file, ignored\n",
      "apps/stray.yaml": "answers: {}\n",
      "docs/notes.yaml": "outside the layout, ignored\n",
    });
    await symlink("/etc/passwd", join(dir, "settings.yaml"));
    await mkdir(join(dir, "volumes", "photos.yaml"), { recursive: true });
    await writeFile(join(dir, "volumes", "photos.yaml", "inner.txt"), "a directory\n");
    // A submodule entry (a gitlink) where a page file belongs.
    await git(dir, ["add", "--all"]);
    await git(dir, [
      "update-index",
      "--add",
      "--cacheinfo",
      `160000,${await git(dir, ["rev-parse", "HEAD"])},pages/site.yaml`,
    ]);
    await git(dir, ["commit", "--quiet", "-m", "a hostile layout"]);
    head = await git(dir, ["rev-parse", "HEAD"]);
    server = await startGitServer({ root: join(scratch, "git") });
    locked = await startGitServer({
      root: join(scratch, "git"),
      auth: { username: "ann", password: "hunter2-state" },
    });
  });

  after(async () => {
    await server.close();
    await locked.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("reads the layout's files from the head commit and reports what is not a regular file or too large", async () => {
    const scratchRoot = join(scratch, "work");
    const fetched = await fetchState(
      { url: server.url("state.git"), branch: null, username: null, password: null },
      { scratchRoot },
    );
    assert.equal(fetched.commit, head);
    assert.equal(fetched.author, "Town Test <test@town.invalid>");
    assert.equal(fetched.message, "a hostile layout");
    assert.deepEqual(
      fetched.files.map((file) => file.path),
      ["apps/main/wiki.yaml", "repositories.yaml"],
    );
    assert.doesNotMatch(JSON.stringify(fetched), /root:x:0:0/);
    const problems = new Map(fetched.problems.map((p) => [p.path, p.message]));
    assert.match(problems.get("settings.yaml") ?? "", /regular file.*links are not followed/);
    assert.match(problems.get("apps/main/big.yaml") ?? "", /more than the \d+ allowed/);
    assert.match(problems.get("volumes/photos.yaml") ?? "", /regular file/);
    assert.match(problems.get("pages/site.yaml") ?? "", /regular file/);
    assert.match(problems.get("apps/stray.yaml") ?? "", /not where a state file goes/);
    assert.deepEqual(await readdir(scratchRoot), [], "the clone is removed");
  });

  it("signs in with the credentials given, and names neither them nor the URL's in errors", async () => {
    const url = locked.url("state.git");
    const fetched = await fetchState(
      { url, branch: null, username: "ann", password: "hunter2-state" },
      { scratchRoot: join(scratch, "work") },
    );
    assert.equal(fetched.commit, head);
    try {
      await fetchState(
        { url, branch: null, username: "ann", password: "wrong-secret-9" },
        { scratchRoot: join(scratch, "work") },
      );
      assert.fail("a wrong password was accepted");
    } catch (error) {
      assert.ok(isTownError(error), String(error));
      assert.doesNotMatch(error.message, /wrong-secret-9/);
      assert.match(error.message, /credentials were rejected/);
    }
  });

  it("refuses a branch that does not exist", async () => {
    await assert.rejects(
      fetchState(
        { url: server.url("state.git"), branch: "nope", username: null, password: null },
        { scratchRoot: join(scratch, "work") },
      ),
      (error) => isTownError(error) && error.code === "not_found",
    );
  });
});
