/**
 * `town page` against a real daemon whose ingress (Caddy) serves the pages
 * (apps off: archive and plain git pages need no Podman): an archive sent by
 * `create` and `upload` and served at its HTTPS name, a git page waited out
 * until online, a failed upload's exit code and reason (and the old version
 * still served), the build log with and without `-f`, rollback, ls, show,
 * hook and rm, as a person at a terminal would run them.
 */
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import type { TownClient } from "@townos/client";
import { runTownCaptured, type TownRun } from "../../../cli/test/run-town.js";
import { setupAdmin, testDaemonConfig } from "../../test/daemon.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import { loopbackNetwork, networkMissing, scratchDir } from "../../test/net.js";
import { readyForPages, servesPage, visitPage } from "../../test/pages.js";
import { buildTar } from "../../test/storage/archives.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";

const missing = networkMissing();
if (missing) console.log(`# skipping the town page test: ${missing}`);

describe("town page", { skip: missing, timeout: 180_000 }, () => {
  let scratch = "";
  let caFile = "";
  let daemon: RunningDaemon | undefined;
  let git: GitServer | undefined;
  let admin: TownClient;
  let network: Awaited<ReturnType<typeof loopbackNetwork>>;

  const town = async (...argv: string[]): Promise<TownRun> => {
    assert.ok(daemon);
    return runTownCaptured(["--server", daemon.url, ...argv], {
      cwd: scratch,
      env: { TOWN_TOKEN: admin.token ?? "" },
    });
  };
  const serves = (host: string, body: string) => servesPage(caFile, host, network.httpsPort, body);

  before(async () => {
    scratch = await scratchDir("town-page-cli-");
    await createRepo(join(scratch, "git"), "site.git", {
      "docs/index.html": "from git\n",
      "README.md": "not served\n",
    });
    git = await startGitServer({ root: join(scratch, "git") });
    network = await loopbackNetwork(scratch);
    daemon = await startDaemon(testDaemonConfig(scratch, { apps: false, network }));
    await daemon.booted;
    admin = await setupAdmin(daemon, "admin-password-51c0");
    caFile = await readyForPages(daemon.url, admin, scratch);
    const site = (text: string) =>
      gzipSync(
        buildTar([
          { path: "public/index.html", body: text },
          { path: "public/passwd", type: "SymbolicLink", linkpath: "/etc/passwd" },
        ]),
      );
    await writeFile(join(scratch, "one.tar.gz"), site("page one\n"));
    await writeFile(join(scratch, "two.tar.gz"), site("page two\n"));
    await writeFile(join(scratch, "bad.tar"), "not an archive at all");
  });

  after(async () => {
    const running = daemon?.boot.services?.network;
    await daemon?.stop();
    await running?.stopForTests();
    await git?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("creates an archive page, uploads, fails, rolls back and removes it", async () => {
    const created = await town(
      "page",
      "create",
      "blog",
      "--archive",
      "one.tar.gz",
      "--dir",
      "public",
    );
    assert.equal(created.stderr, "");
    assert.equal(created.code, 0);
    assert.match(
      created.stdout,
      /^blog: online\n {2}url https:\/\/blog\.home\/\n {2}source: archive \(dir public\)\n {2}current: \S+, 1 file, 9 B, /,
    );
    assert.match(
      created.stdout,
      /^ {2}left out \(links and special files\): 1\n {4}public\/passwd$/m,
    );
    await serves("blog.home", "page one\n");

    const uploaded = await town("page", "upload", "blog", "two.tar.gz");
    assert.equal(uploaded.code, 0);
    assert.match(uploaded.stdout, /^ {2}previous \(rollback\): /m);
    await serves("blog.home", "page two\n");

    const bad = await town("page", "upload", "blog", "bad.tar");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^town: .*not a tar, tar\.gz, tar\.xz, tar\.bz2 or zip archive$/m);
    assert.equal((await visitPage(caFile, "blog.home", network.httpsPort)).body, "page two\n");
    const shown = await town("page", "show", "blog");
    assert.match(shown.stdout, /^blog: failed: archive: not a tar/);
    const log = await town("page", "logs", "blog");
    assert.equal(log.code, 0);
    assert.match(log.stdout, /^\S+Z -- failed: archive: not a tar/m);
    const followed = await town("page", "logs", "blog", "-f");
    assert.equal(followed.code, 1);
    assert.match(followed.stderr, /^town: deploying blog failed: archive: not a tar/m);

    const back = await town("page", "rollback", "blog");
    assert.equal(back.code, 0);
    await serves("blog.home", "page one\n");

    const hook = await town("page", "hook", "blog");
    assert.match(hook.stdout, /^https?:\/\/\S+\/api\/v1\/pages\/blog\/hook\/[0-9a-f]+\n$/);
    const listed = await town("page", "ls");
    assert.match(
      listed.stdout,
      // The rollback brought a good version back: the failure is over.
      /^blog +online +\S+Z +https:\/\/blog\.home\/ +archive \(dir public\)$/m,
    );
    const removed = await town("page", "rm", "blog");
    assert.equal(removed.stdout, "deleted blog\n");
    assert.equal((await town("page", "ls")).stdout, "there are no pages\n");
  });

  it("waits for a git page to go online, and says why a page cannot be made", async () => {
    assert.ok(git);
    const created = await town(
      "page",
      "create",
      "docs",
      "--git",
      git.url("site.git"),
      "--dir",
      "docs",
    );
    assert.equal(created.code, 0, created.stderr);
    // Without a terminal, each step the wait saw is a line of its own.
    assert.match(created.stderr, /^docs: deploying/m);
    assert.match(created.stdout, /^docs: online\n/);
    assert.match(created.stdout, /^ {2}current: \S+, 1 file, 9 B, commit [0-9a-f]{40}, /m);
    await serves("docs.home", "from git\n");

    const refused = await town("page", "create", "town", "--archive", "one.tar.gz");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^town: .*"town" is a name of the box itself/);
    assert.equal((await town("page", "rm", "docs")).code, 0);
  });
});
