/**
 * GitOps end to end: a real daemon with Podman and btrfs follows a state
 * repository served over git's smart HTTP. The box is exported into the
 * repository; a pushed app file and the webhook install it; a changed
 * answer reconfigures; a removed file uninstalls keeping the data; a broken
 * commit is refused whole; what git declares cannot be changed through the
 * API; an answer encrypted to the box's key is installed decrypted (and one
 * encrypted to another key refused); a force-push back to an older commit
 * converges.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { lstat, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, type TownClient } from "@townos/client";
import type { StateStatus } from "@townos/api";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import {
  commitFiles,
  createRepo,
  git,
  startGitServer,
  type GitServer,
} from "../../test/git-server.js";
import { setupAdmin, startPodmanDaemon, until, untilAppsAvailable } from "../../test/daemon.js";
import { scratchDir } from "../../test/net.js";
import {
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
  type TestPodman,
} from "../../test/runtime/podman-host.js";
import { btrfsUnavailable } from "../../test/storage/loop-btrfs.js";
import type { RunningDaemon } from "../daemon.js";
import { mountedAt, storageLocations, unmount } from "../storage/setup.js";
import { encryptAnswer, IDENTITY_FILE } from "./age-key.js";

const MiB = 1024 * 1024;
const btrfsSkip = await btrfsUnavailable();
const skip = podmanMissing || btrfsSkip || false;
if (skip) console.log(`# skipping the state integration test: ${skip}`);

/** Sleeps until stopped, with its motto in the environment and a volume. */
function sleeperPackage(description: string): string {
  return `
image: ${TEST_IMAGE}
description: ${description}
entrypoint: ["/bin/busybox"]
command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
environment:
  MOTTO: "@motto@"
volumes:
  data:
    mountpoint: /data
    quota: 8mb
questions:
  motto:
    query: "A motto"
`;
}

describe("a box following a state repository", { skip, timeout: 300_000 }, () => {
  const repo = `s${randomBytes(4).toString("hex")}`;
  let scratch: string;
  let test: TestPodman | undefined;
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let admin: TownClient;
  let stateDir: string;
  /** The commit with both apps and the first motto. */
  let bothApps: string;

  const appFile = (motto: string) => `answers:\n  motto: "${motto}"\n`;

  function answersOf(name: string): Record<string, string> | undefined {
    return daemon?.boot.services?.installs.get(repo, name)?.answers;
  }

  async function sync(): Promise<StateStatus> {
    return admin.syncState();
  }

  before(async () => {
    await preparePodmanHost();
    scratch = await scratchDir("town-state-it-");
    test = await startTestPodman(scratch);
    await createRepo(join(scratch, "git"), "pkgs.git", {
      "packages/notes/1.0.yaml": sleeperPackage("Keeps notes"),
      "packages/extra/1.0.yaml": sleeperPackage("An extra app"),
    });
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startPodmanDaemon(join(scratch, "box"), test.podman, {
      apps: { storageLoopBytes: 512 * MiB, resyncMs: 5_000 },
    });
    admin = await setupAdmin(daemon);
    await admin.addRepository({ name: repo, url: server.url("pkgs.git") });
    await untilAppsAvailable(admin);
    await until(
      "the catalog to have notes",
      20_000,
      () => admin.installApp({ repo, name: "notes", version: "1.0", answers: { motto: "one" } }),
      () => true,
    );
  });

  after(async () => {
    try {
      if (daemon) {
        await daemon.stop();
        const { root } = storageLocations(join(scratch, "box", "data"));
        if (await mountedAt(root)) await unmount(root);
      }
      await server?.close();
      if (test) await removeAppLeftovers(test.podman, [`${repo}/notes`, `${repo}/extra`]);
    } finally {
      if (test) stopTestPodman(test);
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("exports the box into a repository that the box then follows without a change", async () => {
    const exported = await admin.exportState();
    const paths = exported.files.map((file) => file.path);
    assert.ok(paths.includes("repositories.yaml"), paths.join(", "));
    assert.ok(paths.includes(`apps/${repo}/notes.yaml`), paths.join(", "));
    stateDir = await createRepo(
      join(scratch, "git"),
      "state.git",
      Object.fromEntries(exported.files.map((file) => [file.path, file.text])),
    );
    assert.ok(server);
    const status = await admin.setState({ url: server.url("state.git"), interval: "1h" });
    assert.equal(status.error, null);
    assert.equal(status.commit, await git(stateDir, ["rev-parse", "HEAD"]));
    assert.deepEqual(status.history[0]?.changes, []);
    assert.ok(status.managed.some((o) => o.kind === "app" && o.name === `${repo}/notes`));
    assert.ok(status.managed.some((o) => o.kind === "repository" && o.name === repo));
  });

  it("installs an app pushed to the repository when the git host calls the webhook", async () => {
    bothApps = await commitFiles(
      stateDir,
      { [`apps/${repo}/extra.yaml`]: appFile("extra") },
      "add extra",
    );
    const { url } = await admin.stateHook();
    const hooked = await fetch(url, { method: "POST" });
    assert.equal(hooked.status, 202);
    const view = await until(
      "the pushed app to run",
      60_000,
      () => admin.app(repo, "extra"),
      (seen) => seen.containers.length > 0 && seen.containers.every((c) => c.state === "running"),
    );
    assert.equal(view.version, "1.0");
    // The app may run before the sync has done its last steps and recorded the commit.
    const status = await until(
      "the sync to record the commit",
      20_000,
      () => admin.stateStatus(),
      (seen) => seen.step === null,
    );
    assert.equal(status.commit, bothApps);
    assert.equal(status.history[0]?.author, "Town Test <test@town.invalid>");
    assert.equal(status.history[0].message, "add extra");
    assert.deepEqual(status.history[0].changes, [`install ${repo}/extra`]);
    // A wrong token is no hook at all.
    assert.equal((await fetch(url.replace(/[^/]+$/, "nope"), { method: "POST" })).status, 404);
  });

  it("reconfigures an app whose answer changed", async () => {
    await commitFiles(stateDir, { [`apps/${repo}/notes.yaml`]: appFile("two") }, "motto two");
    const status = await sync();
    assert.equal(status.error, null);
    assert.deepEqual(answersOf("notes")?.["motto"], "two");
  });

  it("refuses a broken commit whole and changes nothing", async () => {
    const broken = await commitFiles(
      stateDir,
      {
        [`apps/${repo}/notes.yaml`]: appFile("three"),
        [`apps/${repo}/extra.yaml`]: "answers: [1, 2]\n",
      },
      "broken",
    );
    const status = await sync();
    assert.match(status.error ?? "", /refused/);
    assert.match(status.error ?? "", new RegExp(`apps/${repo}/extra.yaml`));
    assert.notEqual(status.commit, broken);
    assert.equal(status.history[0]?.result, "refused");
    assert.equal(answersOf("notes")?.["motto"], "two");
  });

  it("uninstalls an app whose file was removed, keeping its data", async () => {
    await commitFiles(
      stateDir,
      { [`apps/${repo}/extra.yaml`]: null, [`apps/${repo}/notes.yaml`]: appFile("two") },
      "remove extra",
    );
    const status = await sync();
    assert.equal(status.error, null);
    assert.equal(daemon?.boot.services?.installs.get(repo, "extra"), undefined);
    const kept = (await admin.volumes()).items.filter(
      (volume) => volume.kind === "uninstalled" && volume.package?.instance === "extra",
    );
    assert.equal(kept.length, 1);
  });

  it("refuses changes by hand to what git declares", async () => {
    try {
      await admin.uninstallApp(repo, "notes");
      assert.fail("the uninstall went through");
    } catch (error) {
      assert.ok(error instanceof ApiError, String(error));
      assert.equal(error.problem.status, 409);
      assert.match(error.problem.detail, /declared in the state repository/);
    }
  });

  it("installs an answer encrypted to the box's key as its plaintext, never showing it", async () => {
    const { publicKey } = await admin.stateKey();
    const elsewhere = await identityToRecipient(await generateX25519Identity());
    const encryptedFile = async (recipient: string) =>
      `answers:\n  motto: ${JSON.stringify({ age: await encryptAnswer("s3cret motto", recipient) })}\n`;
    await commitFiles(
      stateDir,
      { [`apps/${repo}/notes.yaml`]: await encryptedFile(elsewhere) },
      "motto for another box",
    );
    const refused = await sync();
    assert.match(refused.error ?? "", /refused/);
    assert.match(
      refused.error ?? "",
      new RegExp(`apps/${repo}/notes.yaml: answer motto: .*another key`),
    );
    assert.equal(answersOf("notes")?.["motto"], "two");

    await commitFiles(
      stateDir,
      { [`apps/${repo}/notes.yaml`]: await encryptedFile(publicKey) },
      "secret motto",
    );
    const status = await sync();
    assert.equal(status.error, null);
    assert.equal(answersOf("notes")?.["motto"], "s3cret motto");
    assert.deepEqual(status.history[0]?.changes, [`update ${repo}/notes to 1.0`]);
    assert.doesNotMatch(JSON.stringify(status), /s3cret/);
    const identity = await lstat(join(scratch, "box", "data", "state", IDENTITY_FILE));
    assert.equal(identity.mode & 0o777, 0o600);
  });

  it("converges back when the branch is force-pushed to an older commit", async () => {
    await git(stateDir, ["reset", "--quiet", "--hard", bothApps]);
    const status = await sync();
    assert.equal(status.error, null);
    assert.equal(status.commit, bothApps);
    assert.equal(answersOf("notes")?.["motto"], "one");
    await until(
      "the app to be back",
      60_000,
      () => admin.app(repo, "extra"),
      (seen) => seen.containers.length > 0 && seen.containers.every((c) => c.state === "running"),
    );
  });
});
