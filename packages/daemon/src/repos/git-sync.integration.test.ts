import { describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { MAX_PACKAGE_FILE_BYTES } from "@townos/format";
import {
  commitFiles,
  createRepo,
  git,
  startGitServer,
  type BasicAuth,
  type GitServer,
} from "../../test/git-server.js";
import {
  MAX_PACK_FILES,
  readLocalRepository,
  removeRepository,
  syncRepository,
} from "./git-sync.js";
import type { GitProgress } from "../git/network.js";
import { expectTownError } from "../../../format/test/support.js";

interface Fixture {
  /** Served repositories live here. */
  root: string;
  /** Clones go here. */
  work: string;
  server: GitServer;
}

/** Starts a git server over fresh temporary directories and removes it all afterwards. */
async function withServer(
  options: { auth?: BasicAuth },
  body: (fixture: Fixture) => Promise<void>,
): Promise<void> {
  const base = await mkdtemp(join(os.tmpdir(), "town-git-sync-"));
  const root = join(base, "served");
  const work = join(base, "work");
  await mkdir(root, { recursive: true });
  const server = await startGitServer({ root, ...options });
  try {
    await body({ root, work, server });
  } finally {
    await server.close();
    await rm(base, { recursive: true, force: true });
  }
}

const pkg = (name: string, version: string, extra = "") =>
  `name: ${name}\nversion: ${version}\ndescription: ${name} ${version}${extra}\n`;

const familyFiles = {
  "featured.json": '["nextcloud"]\n',
  "packages/nextcloud/1.0.0.yaml": pkg("nextcloud", "1.0.0"),
  "packages/nextcloud/1.1.0.yaml": pkg("nextcloud", "1.1.0"),
  "packages/gitea/2.0.0.yaml": pkg("gitea", "2.0.0"),
  // Outside the package layout: never read.
  "README.md": "# family packages\n",
  "packages/gitea/notes.md": "notes\n",
  "packages/gitea/nested/3.0.0.yaml": pkg("gitea", "3.0.0"),
  "other/packages/x/1.0.0.yaml": pkg("x", "1.0.0"),
};

describe("syncRepository against a smart-HTTP git server", () => {
  it("clones, then reports added, modified and deleted files", async () => {
    await withServer({}, async ({ root, work, server }) => {
      const repo = await createRepo(root, "family.git", familyFiles);
      const dir = join(work, "family");
      const progress: GitProgress[] = [];

      const first = await syncRepository({
        dir,
        url: server.url("family.git"),
        onProgress: (p) => progress.push(p),
      });
      assert.equal(first.commit, await git(repo, ["rev-parse", "HEAD"]));
      assert.equal(first.previousCommit, null);
      assert.equal(first.changedPaths, null);
      assert.deepEqual(
        first.files.map((file) => file.path),
        [
          "featured.json",
          "packages/gitea/2.0.0.yaml",
          "packages/nextcloud/1.0.0.yaml",
          "packages/nextcloud/1.1.0.yaml",
        ],
      );
      assert.equal(
        first.files.find((file) => file.path === "packages/gitea/2.0.0.yaml")?.text,
        pkg("gitea", "2.0.0"),
      );
      assert.deepEqual(first.skipped, []);
      assert.ok(progress.some((p) => p.phase === "Reading files"));
      // No work tree: only the git directory.
      assert.deepEqual(await readdir(dir), [".git"]);

      const second = await commitFiles(
        repo,
        {
          "packages/nextcloud/1.1.0.yaml": pkg("nextcloud", "1.1.0", " (fixed)"),
          "packages/immich/1.0.0.yaml": pkg("immich", "1.0.0"),
          "README.md": "# changed, but not a package file\n",
        },
        "update nextcloud, add immich",
      );
      const updated = await syncRepository({ dir, url: server.url("family.git") });
      assert.equal(updated.commit, second);
      assert.equal(updated.previousCommit, first.commit);
      assert.deepEqual(updated.changedPaths, [
        "packages/immich/1.0.0.yaml",
        "packages/nextcloud/1.1.0.yaml",
      ]);
      assert.equal(updated.files.length, 5);

      const unchanged = await syncRepository({ dir, url: server.url("family.git") });
      assert.equal(unchanged.commit, second);
      assert.equal(unchanged.previousCommit, second);
      assert.deepEqual(unchanged.changedPaths, []);
      assert.equal(unchanged.files.length, 5);

      await commitFiles(
        repo,
        { "packages/nextcloud/1.0.0.yaml": null, "featured.json": '["immich"]\n' },
        "drop nextcloud 1.0.0",
      );
      const deleted = await syncRepository({ dir, url: server.url("family.git") });
      assert.deepEqual(deleted.changedPaths, ["featured.json", "packages/nextcloud/1.0.0.yaml"]);
      assert.ok(!deleted.files.some((file) => file.path === "packages/nextcloud/1.0.0.yaml"));
    });
  });

  it("fetches only what is new after the shallow first clone", async () => {
    await withServer({}, async ({ root, work, server }) => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 50; i++) files[`packages/p${i}/1.0.0.yaml`] = pkg(`p${i}`, "1.0.0");
      const repo = await createRepo(root, "r.git", files);
      await commitFiles(repo, { "packages/p0/1.0.0.yaml": pkg("p0", "1.0.0", "!") }, "two");
      const dir = join(work, "r");
      await syncRepository({ dir, url: server.url("r.git") });
      assert.equal(await git(dir, ["rev-list", "--count", "HEAD"]), "1");

      await commitFiles(repo, { "packages/p1/1.0.0.yaml": pkg("p1", "1.0.0", "!") }, "three");
      await commitFiles(repo, { "packages/p2/1.0.0.yaml": pkg("p2", "1.0.0", "!") }, "four");
      const result = await syncRepository({ dir, url: server.url("r.git") });
      assert.deepEqual(result.changedPaths, ["packages/p1/1.0.0.yaml", "packages/p2/1.0.0.yaml"]);
      // The commits in between arrived; the clone is consistent for real git too.
      assert.equal(await git(dir, ["rev-list", "--count", "HEAD"]), "3");
      await git(dir, ["fsck", "--no-progress", "--no-dangling"]);
    });
  });

  it("recovers when the branch is reset behind the shallow boundary", async () => {
    await withServer({}, async ({ root, work, server }) => {
      const repo = await createRepo(root, "r.git", { "packages/a/1.yaml": pkg("a", "1") });
      const old = await git(repo, ["rev-parse", "HEAD"]);
      await commitFiles(repo, { "packages/b/1.yaml": pkg("b", "1") }, "add b");
      const dir = join(work, "r");
      const first = await syncRepository({ dir, url: server.url("r.git") });
      assert.equal(first.files.length, 2);

      // The server believes we have `old` (an ancestor of what we have), but
      // the shallow clone never downloaded it.
      await git(repo, ["reset", "--hard", "--quiet", old]);
      const reset = await syncRepository({ dir, url: server.url("r.git") });
      assert.equal(reset.commit, old);
      assert.deepEqual(reset.changedPaths, ["packages/b/1.yaml"]);
      assert.deepEqual(
        reset.files.map((file) => file.path),
        ["packages/a/1.yaml"],
      );

      // A rewritten, unrelated history.
      await git(repo, ["checkout", "--quiet", "--orphan", "rewritten"]);
      await commitFiles(repo, { "packages/c/1.yaml": pkg("c", "1") }, "new history");
      await git(repo, ["branch", "--quiet", "-M", "main"]);
      const rewritten = await syncRepository({ dir, url: server.url("r.git") });
      assert.deepEqual(
        rewritten.files.map((file) => file.path),
        ["packages/a/1.yaml", "packages/c/1.yaml"],
      );
      assert.deepEqual(rewritten.changedPaths, ["packages/c/1.yaml"]);
    });
  });

  it("follows a named branch and refuses a missing one", async () => {
    await withServer({}, async ({ root, work, server }) => {
      const repo = await createRepo(root, "r.git", { "packages/a/1.yaml": pkg("a", "1") });
      await git(repo, ["checkout", "--quiet", "-b", "testing"]);
      await commitFiles(repo, { "packages/a/2.yaml": pkg("a", "2") }, "a 2 for testing");
      await git(repo, ["checkout", "--quiet", "main"]);

      const dir = join(work, "r");
      const testing = await syncRepository({ dir, url: server.url("r.git"), branch: "testing" });
      assert.deepEqual(
        testing.files.map((file) => file.path),
        ["packages/a/1.yaml", "packages/a/2.yaml"],
      );
      // Switching branch re-clones and still reports the difference.
      const main = await syncRepository({ dir, url: server.url("r.git") });
      assert.deepEqual(main.changedPaths, ["packages/a/2.yaml"]);

      await expectTownError(
        syncRepository({ dir: join(work, "x"), url: server.url("r.git"), branch: "nope" }),
        "not_found",
        /^git: clone http:\/\/127\.0\.0\.1:\d+\/r\.git: branch "nope" not found$/,
      );
      await expectTownError(
        syncRepository({ dir, url: server.url("r.git"), branch: "nope" }),
        "not_found",
        /branch "nope" not found/,
      );
      await expectTownError(
        syncRepository({ dir, url: server.url("r.git"), branch: "-x" }),
        "invalid_argument",
        /not a valid branch/,
      );
      // The failed syncs left the clone as it was.
      const again = await syncRepository({ dir, url: server.url("r.git") });
      assert.deepEqual(again.changedPaths, []);
    });
  });

  it("uses basic-auth credentials and never leaks them", async () => {
    const auth = { username: "alice", password: "s3cret-passw0rd" };
    await withServer({ auth }, async ({ root, work, server }) => {
      await createRepo(root, "private.git", { "packages/a/1.yaml": pkg("a", "1") });
      const url = server.url("private.git");
      const dir = join(work, "private");

      const ok = await syncRepository({ dir, url, ...auth });
      assert.deepEqual(
        ok.files.map((file) => file.path),
        ["packages/a/1.yaml"],
      );
      const again = await syncRepository({ dir, url, ...auth });
      assert.deepEqual(again.changedPaths, []);

      // Credentials in the URL work too, and are not stored in the clone.
      const inUrl = url.replace("http://", `http://${auth.username}:${auth.password}@`);
      const viaUrl = await syncRepository({ dir: join(work, "via-url"), url: inUrl });
      assert.equal(viaUrl.files.length, 1);
      for (const clone of [dir, join(work, "via-url")]) {
        const config = await readFile(join(clone, ".git", "config"), "utf8");
        assert.ok(!config.includes(auth.password), config);
        assert.ok(!config.includes("alice@"), config);
      }

      const wrong = await expectTownError(
        syncRepository({ dir: join(work, "wrong"), url, username: "alice", password: "guess" }),
        "io",
        /^git: clone http:\/\/127\.0\.0\.1:\d+\/private\.git: HTTP 401 .*credentials were rejected/,
      );
      assert.ok(!wrong.message.includes("guess"));
      const wrongInUrl = await expectTownError(
        syncRepository({
          dir: join(work, "wrong"),
          url: url.replace("http://", "http://alice:hunter2-wrong@"),
        }),
        "io",
        /HTTP 401/,
      );
      assert.ok(!wrongInUrl.message.includes("hunter2"), wrongInUrl.message);
      assert.ok(!existsSync(join(work, "wrong")), "a failed clone leaves nothing behind");
      await expectTownError(
        syncRepository({ dir: join(work, "anonymous"), url }),
        "io",
        /HTTP 401 .*needs credentials/,
      );
      // A failed fetch keeps the existing clone usable.
      await expectTownError(
        syncRepository({ dir, url, username: "alice", password: "guess" }),
        "io",
        /^git: fetch .*HTTP 401/,
      );
      assert.deepEqual((await syncRepository({ dir, url, ...auth })).changedPaths, []);
    });
  });

  it("fails clearly for a missing repository, a non-git server and an empty repository", async () => {
    await withServer({}, async ({ root, work, server }) => {
      await expectTownError(
        syncRepository({ dir: join(work, "missing"), url: server.url("missing.git") }),
        "io",
        /^git: clone http:\/\/127\.0\.0\.1:\d+\/missing\.git: HTTP 404/,
      );
      await git(root, ["init", "--quiet", "empty.git"]);
      await expectTownError(
        syncRepository({ dir: join(work, "empty"), url: server.url("empty.git") }),
        "not_found",
        /the repository has no commits/,
      );
      await expectTownError(
        syncRepository({ dir: join(work, "refused"), url: "http://127.0.0.1:1/nothing.git" }),
        "io",
        /^git: clone http:\/\/127\.0\.0\.1:1\/nothing\.git: .*ECONNREFUSED/,
      );

      const website = http.createServer((_request, response) => {
        response.writeHead(200, { "Content-Type": "text/html" });
        response.end("<html><body>Welcome</body></html>");
      });
      await new Promise<void>((resolve) => website.listen(0, "127.0.0.1", resolve));
      try {
        const { port } = website.address() as AddressInfo;
        await expectTownError(
          syncRepository({ dir: join(work, "web"), url: `http://127.0.0.1:${port}/page` }),
          "io",
          /: the server did not answer as a git smart-HTTP server/,
        );
      } finally {
        website.closeAllConnections();
        website.close();
      }
      assert.deepEqual(await readdir(work).catch(() => []), []);
    });
  });

  it("refuses URLs that are not http(s)", async () => {
    const dir = join(os.tmpdir(), "town-git-sync-never-created");
    for (const url of [
      "ssh://git@example.com/repo.git",
      "git@example.com:repo.git",
      "file:///srv/git/repo.git",
      "git://example.com/repo.git",
      "not a url",
    ]) {
      await expectTownError(syncRepository({ dir, url }), "invalid_argument", /^git: /);
    }
    assert.ok(!existsSync(dir));
  });

  it("skips and reports files it cannot take, and ignores paths outside the layout", async () => {
    await withServer({}, async ({ root, work, server }) => {
      const big = `name: big\n# ${"x".repeat(MAX_PACKAGE_FILE_BYTES)}\n`;
      const repo = await createRepo(root, "r.git", {
        "packages/big/1.0.0.yaml": big,
        "packages/latin1/1.0.0.yaml": Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xe9, 0x0a]),
        "packages/ok/1.0.0.yaml": pkg("ok", "1.0.0"),
        "packages/ok/1.0.0.yml": pkg("ok", "1.0.0"),
        "packages/ok/README.md": "hello\n",
        "docs/packages/ok/1.0.0.yaml": pkg("ok", "1.0.0"),
        "featured.json.bak": "[]\n",
      });
      await symlink("/etc/passwd", join(repo, "packages", "ok", "2.0.0.yaml"));
      await commitFiles(repo, {}, "add a link");

      const result = await syncRepository({ dir: join(work, "r"), url: server.url("r.git") });
      assert.deepEqual(
        result.files.map((file) => file.path),
        ["packages/ok/1.0.0.yaml"],
      );
      assert.deepEqual(
        result.skipped.map((file) => file.path),
        ["packages/big/1.0.0.yaml", "packages/latin1/1.0.0.yaml", "packages/ok/2.0.0.yaml"],
      );
      assert.match(result.skipped[0]?.reason ?? "", /more than the 1048576 allowed/);
      assert.match(result.skipped[1]?.reason ?? "", /UTF-8/);
      assert.match(result.skipped[2]?.reason ?? "", /not a regular file/);

      // Skipped files still count as changed when they change.
      await commitFiles(repo, { "packages/big/1.0.0.yaml": pkg("big", "1.0.0") }, "shrink");
      const shrunk = await syncRepository({ dir: join(work, "r"), url: server.url("r.git") });
      assert.deepEqual(shrunk.changedPaths, ["packages/big/1.0.0.yaml"]);
      assert.equal(shrunk.skipped.length, 2);
      assert.ok(shrunk.files.some((file) => file.path === "packages/big/1.0.0.yaml"));
    });
  });

  it("enforces the file-count and download limits", async () => {
    await withServer({}, async ({ root, work, server }) => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 30; i++) files[`packages/p${i}/1.0.0.yaml`] = pkg(`p${i}`, "1.0.0");
      await createRepo(root, "r.git", files);
      const url = server.url("r.git");
      await expectTownError(
        syncRepository({ dir: join(work, "few"), url, maxFiles: 10 }),
        "invalid_argument",
        /more than 10 package/,
      );
      await expectTownError(
        syncRepository({ dir: join(work, "small"), url, maxDownloadBytes: 2000 }),
        "invalid_argument",
        /^git: clone .*larger than 2000 bytes/,
      );
      assert.equal((await syncRepository({ dir: join(work, "ok"), url })).files.length, 30);
    });
  });

  it("times out on a server that never answers, and honours an abort signal", async (t) => {
    const server = http.createServer(() => {
      // Never respond.
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const { port } = server.address() as AddressInfo;
    const base = await mkdtemp(join(os.tmpdir(), "town-git-sync-"));
    t.after(() => rm(base, { recursive: true, force: true }));
    const url = `http://127.0.0.1:${port}/slow.git`;

    const started = Date.now();
    await expectTownError(
      syncRepository({ dir: join(base, "slow"), url, timeoutMs: 300 }),
      "io",
      /^git: clone http:\/\/127\.0\.0\.1:\d+\/slow\.git: timed out after 300 ms$/,
    );
    assert.ok(Date.now() - started < 5000);

    const controller = new AbortController();
    setTimeout(() => {
      controller.abort();
    }, 100);
    await expectTownError(
      syncRepository({ dir: join(base, "slow"), url, signal: controller.signal }),
      "io",
      /: aborted$/,
    );
  });

  it("serializes concurrent syncs of one directory", async () => {
    await withServer({}, async ({ root, work, server }) => {
      await createRepo(root, "r.git", { "packages/a/1.yaml": pkg("a", "1") });
      const dir = join(work, "r");
      const url = server.url("r.git");
      const results = await Promise.all([1, 2, 3].map(() => syncRepository({ dir, url })));
      assert.deepEqual(
        results.map((result) => result.changedPaths),
        [null, [], []],
      );
    });
  });

  it("re-clones once fetches have piled up pack files, still reporting changes", async () => {
    await withServer({}, async ({ root, work, server }) => {
      const repo = await createRepo(root, "r.git", { "packages/a/0.yaml": pkg("a", "0") });
      const dir = join(work, "r");
      const url = server.url("r.git");
      await syncRepository({ dir, url });
      const packs = async () =>
        (await readdir(join(dir, ".git", "objects", "pack"))).filter((n) => n.endsWith(".pack"));
      for (let i = 1; i <= MAX_PACK_FILES + 2; i++) {
        await commitFiles(repo, { [`packages/a/${i}.yaml`]: pkg("a", String(i)) }, `a ${i}`);
        const result = await syncRepository({ dir, url });
        assert.deepEqual(result.changedPaths, [`packages/a/${i}.yaml`]);
        assert.ok((await packs()).length <= MAX_PACK_FILES + 1);
      }
      assert.ok((await packs()).length < MAX_PACK_FILES);
      assert.deepEqual(await readdir(work), ["r"], "no temporary directories are left");
    });
  });

  it("removeRepository deletes the clone; the next sync starts over", async () => {
    await withServer({}, async ({ root, work, server }) => {
      await createRepo(root, "r.git", { "packages/a/1.yaml": pkg("a", "1") });
      const dir = join(work, "r");
      await syncRepository({ dir, url: server.url("r.git") });
      await removeRepository(dir);
      assert.ok(!existsSync(dir));
      await removeRepository(dir);
      const fresh = await syncRepository({ dir, url: server.url("r.git") });
      assert.equal(fresh.changedPaths, null);
    });
  });

  it("readLocalRepository reads the last synced commit without the network", async () => {
    await withServer({}, async ({ root, work, server }) => {
      const repo = await createRepo(root, "r.git", {
        "packages/a/1.yaml": pkg("a", "1"),
        "packages/big/1.yaml": "#".repeat(MAX_PACKAGE_FILE_BYTES + 1),
      });
      const dir = join(work, "r");
      assert.equal(await readLocalRepository(dir), undefined);
      const synced = await syncRepository({ dir, url: server.url("r.git") });
      await commitFiles(repo, { "packages/a/2.yaml": pkg("a", "2") }, "a 2");
      await server.close();

      const local = await readLocalRepository(dir);
      assert.ok(local);
      assert.equal(local.commit, synced.commit);
      assert.deepEqual(local.files, synced.files);
      assert.deepEqual(local.skipped, synced.skipped);
      assert.equal(local.changedPaths, null);

      await writeFile(join(dir, ".git", "HEAD"), "garbage\n");
      await expectTownError(
        readLocalRepository(dir),
        "io",
        /^git: read http:\/\/127\.0\.0\.1:\d+\/r\.git: /,
      );
    });
  });

  it("syncs 500 packages with one changed file quickly", async (t: TestContext) => {
    await withServer({}, async ({ root, work, server }) => {
      const files: Record<string, string> = { "featured.json": '["p1"]\n' };
      for (let i = 0; i < 500; i++) {
        files[`packages/p${i}/1.0.0.yaml`] = pkg(
          `p${i}`,
          "1.0.0",
          `\n# ${"lorem ipsum ".repeat(60)}`,
        );
      }
      const repo = await createRepo(root, "big.git", files);
      const dir = join(work, "big");
      const url = server.url("big.git");

      let started = performance.now();
      const first = await syncRepository({ dir, url });
      const cloneMs = performance.now() - started;
      const cloneBytes = server.bytesSent;
      assert.equal(first.files.length, 501);

      await commitFiles(repo, { "packages/p42/1.0.0.yaml": pkg("p42", "1.0.0", " v2") }, "p42");
      const before = server.bytesSent;
      started = performance.now();
      const changed = await syncRepository({ dir, url });
      const fetchMs = performance.now() - started;
      const fetchBytes = server.bytesSent - before;
      assert.deepEqual(changed.changedPaths, ["packages/p42/1.0.0.yaml"]);

      started = performance.now();
      await syncRepository({ dir, url });
      const noopMs = performance.now() - started;

      t.diagnostic(
        `500 packages: clone ${cloneMs.toFixed(0)} ms (${cloneBytes} bytes), ` +
          `sync with one change ${fetchMs.toFixed(0)} ms (${fetchBytes} bytes), ` +
          `unchanged sync ${noopMs.toFixed(0)} ms`,
      );
      assert.ok(fetchMs < 10_000);
    });
  });
});
