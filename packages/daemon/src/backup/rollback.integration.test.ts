/**
 * Restore points and rollback against the real programs: Podman, btrfs on a
 * loop file, git over smart HTTP. An upgrade to a version whose post_update
 * corrupts the app's data is undone by `town app rollback`: the version, its
 * answers and the data come back, and the corrupted state is kept. The
 * package's quiesce command runs before each snapshot; quota changes and
 * uploads take their own restore points.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient } from "@townos/client";
import { runTownCaptured, type TownRun } from "../../../cli/test/run-town.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  freePort,
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import { buildTar } from "../../test/storage/archives.js";
import { btrfsUnavailable } from "../../test/storage/loop-btrfs.js";
import { setupAdmin, startPodmanDaemon, until, untilAppsAvailable } from "../../test/daemon.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { mountedAt, storageLocations, unmount } from "../storage/setup.js";

const skip = podmanMissing || (await btrfsUnavailable()) || false;
if (skip) console.log(`# skipping the rollback integration test: ${skip}`);

const PASSWORD = "admin-password-5b1c";
const MiB = 1024 * 1024;

/** 1.0 serves /data; 2.0's post_update destroys what it holds. Both flush before a snapshot. */
function notesPackage(version: string): string {
  return `
image: ${TEST_IMAGE}
description: Notes kept in a volume
entrypoint: ["/bin/busybox"]
command: ["httpd", "-f", "-p", "8080", "-h", "/data"]
environment:
  NOTES_VERSION: "${version}"
  NOTES_TITLE: "@title@"
network:
  external:
    "@port@": "8080"
volumes:
  data:
    mountpoint: /data
    quota: 16mb
backup:
  quiesce: command
  command: ["/bin/sh", "-c", "date +%s > /data/flushed.txt"]
questions:
  port:
    query: "Port"
    type: port
  title:
    query: "Title"
    default: "mine"
${version === "1.0" ? "" : `post_update:\n  - "echo corrupted > /data/notes.txt; rm -f /data/keep.txt"\n`}`;
}

describe("restore points and rollback on btrfs and Podman", { skip, timeout: 240_000 }, () => {
  const repo = `r${randomBytes(4).toString("hex")}`;
  const app = `${repo}/notes`;
  const volume = `pkg.${repo}.notes.data`;
  let scratch: string;
  let dataDir: string;
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let admin: TownClient;
  let port: number;

  const snapshotFile = (id: string, file: string): Promise<string> =>
    readFile(join(dataDir, "storage/snapshots", volume, id, file), "utf8");
  const page = async (path: string): Promise<string> => {
    const response = await fetch(`http://127.0.0.1:${port}/${path}`, {
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.text();
  };
  const exec = (script: string) => podman.exec(`town-${repo}--notes`, ["/bin/sh", "-c", script]);
  async function town(...argv: string[]): Promise<TownRun> {
    return runTownCaptured(argv, {
      cwd: scratch,
      env: { TOWN_SERVER: daemon?.url ?? "", XDG_CONFIG_HOME: join(scratch, "config") },
    });
  }

  before(async () => {
    await preparePodmanHost();
    scratch = await mkdtemp(join(tmpdir(), "town-rollback-"));
    dataDir = join(scratch, "data");
    ({ podman, service } = await startTestPodman(scratch));
    await createRepo(join(scratch, "git"), "apps.git", {
      "packages/notes/1.0.yaml": notesPackage("1.0"),
      "packages/notes/2.0.yaml": notesPackage("2.0"),
    });
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startPodmanDaemon(scratch, podman, {
      apps: { storageLoopBytes: 512 * MiB },
    });
    await setupAdmin(daemon, PASSWORD);
    const signedIn = await new TownClient({ baseUrl: daemon.url }).login({
      username: "admin",
      password: PASSWORD,
    });
    admin = new TownClient({ baseUrl: daemon.url, token: signedIn.token });
    const login = await town("login", "--username", "admin", "--password", PASSWORD);
    assert.equal(login.code, 0, login.stderr);
    await untilAppsAvailable(admin, 30_000);
    await admin.addRepository({ name: repo, url: server.url("apps.git") });
    port = await freePort();
  });

  after(async () => {
    try {
      await daemon?.stop();
      await server?.close();
      await removeAppLeftovers(podman, [app]);
    } finally {
      stopTestPodman({ podman, service });
      const { root } = storageLocations(dataDir);
      if (await mountedAt(root)) await unmount(root);
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("takes a restore point before an upgrade, after the package's quiesce command", async () => {
    const install = await town(
      "app",
      "install",
      `${app}@1.0`,
      "--set",
      `port=${port}`,
      "--set",
      "title=first",
    );
    assert.equal(install.code, 0, install.stderr);
    await exec("echo precious > /data/notes.txt && echo keep > /data/keep.txt");
    const upgrade = await town("app", "upgrade", app);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    assert.equal((await admin.app(repo, "notes")).version, "2.0");
    assert.equal(
      await until(
        "the page",
        15_000,
        () => page("notes.txt"),
        () => true,
      ),
      "corrupted\n",
    );

    const points = await admin.restorePoints(repo, "notes");
    const before = points.find((point) => point.reason === "upgrade");
    assert.ok(before, JSON.stringify(points));
    assert.equal(before.version, "1.0");
    assert.equal(before.answers?.title, "first");
    assert.equal(before.quiesce, "command");
    assert.deepEqual(
      before.volumes.map((entry) => [entry.volume, entry.present]),
      [[volume, true]],
    );
    // The snapshot holds the data as it was, and the quiesce command ran just before it.
    assert.equal(await snapshotFile(before.id, "notes.txt"), "precious\n");
    assert.match(await snapshotFile(before.id, "flushed.txt"), /^\d+\n$/);

    const listing = await town("app", "snapshots", app);
    assert.equal(listing.code, 0, listing.stderr);
    assert.match(listing.stdout, new RegExp(`${before.id}.*upgrade.*1\\.0`));
  });

  it("rolls back to the version, answers and data before the upgrade, keeping what it replaces", async () => {
    const rolled = await town("app", "rollback", app, "--yes");
    assert.equal(rolled.code, 0, rolled.stderr);
    const view = await admin.app(repo, "notes");
    assert.equal(view.version, "1.0");
    assert.equal(
      await until(
        "the page",
        20_000,
        () => page("notes.txt"),
        (text) => text === "precious\n",
      ),
      "precious\n",
    );
    assert.equal(await page("keep.txt"), "keep\n");
    const env = await exec("echo $NOTES_VERSION $NOTES_TITLE");
    assert.equal(env.stdout, "1.0 first\n");

    const points = await admin.restorePoints(repo, "notes");
    const kept = points.find((point) => point.reason === "rollback");
    assert.ok(kept, JSON.stringify(points));
    assert.equal(kept.version, "2.0");
    assert.equal(await snapshotFile(kept.id, "notes.txt"), "corrupted\n");
    // Rolling back again returns to the same point: the box is back at 1.0 either way.
    const again = await admin.rollback(repo, "notes");
    assert.equal(again.version, "1.0");
    assert.equal(again.restoredFrom.reason, "upgrade");
  });

  it("rolls forward to a chosen point, and refuses unknown or malformed ones", async () => {
    const kept = (await admin.restorePoints(repo, "notes")).find(
      (point) => point.reason === "rollback" && point.version === "2.0",
    );
    assert.ok(kept);
    const result = await admin.rollback(repo, "notes", kept.id);
    assert.equal(result.version, "2.0");
    assert.equal(
      await until(
        "the page",
        20_000,
        () => page("notes.txt"),
        (text) => text === "corrupted\n",
      ),
      "corrupted\n",
    );
    await assert.rejects(
      admin.rollback(repo, "notes", "20000101T000000Z-upgrade"),
      (error: unknown) => {
        assert.ok(error instanceof ApiError);
        assert.equal(error.problem.code, "not_found");
        return true;
      },
    );
    const escape = await fetch(`${daemon?.url}/api/v1/apps/${repo}/notes/rollback`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin.token ?? ""}`, "content-type": "application/json" },
      body: JSON.stringify({ to: "../../volumes/x" }),
    });
    assert.equal(escape.status, 400);
  });

  it("takes a restore point of a volume before its quota changes and before an upload", async () => {
    const count = async (reason: string): Promise<number> =>
      (await admin.volumeSnapshots(volume)).filter((snapshot) =>
        snapshot.name.endsWith(`-${reason}`),
      ).length;
    await admin.setVolumeQuota(volume, "32mb");
    assert.equal(await count("quota"), 1);
    const upload = buildTar([{ path: "uploaded.txt", body: "new\n" }]);
    await admin.uploadVolumeArchive(volume, new Blob([upload]));
    assert.equal(await count("upload"), 1);
    const uploadPoint = (await admin.volumeSnapshots(volume)).find((snapshot) =>
      snapshot.name.endsWith("-upload"),
    );
    assert.ok(uploadPoint);
    // The point holds the volume as it was before the upload.
    await assert.rejects(snapshotFile(uploadPoint.name, "uploaded.txt"), { code: "ENOENT" });
    assert.equal(await snapshotFile(uploadPoint.name, "notes.txt"), "corrupted\n");
  });
});
