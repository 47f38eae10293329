/**
 * Backups end to end: real daemons over HTTP with storage on btrfs loop
 * files, apps in the real Podman, a package repository over smart HTTP,
 * a local restic repository and a directory target. A backup restores in
 * place (what it replaced kept as a restore point), retention keeps what the
 * policy says on both sides, a target that vanished fails and says so, a
 * new daemon on a fresh data directory brings the app back from restic, and
 * a backup of the whole box brings back its repository, settings, people's
 * volumes and apps (stopped where they were) on a box that has none of them.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BackupOverview, BackupRunView } from "@townos/api";
import { ApiError, type TownClient } from "@townos/client";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
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
import { btrfsUnavailable, mountLoopBtrfs, type LoopBtrfs } from "../../test/storage/loop-btrfs.js";
import { flattenPlan, nodeVolumeName } from "../apps/names.js";
import type { RunningDaemon } from "../daemon.js";
import { snapshotPath, volumePath } from "../storage/names.js";
import { mountedAt, storageLocations, unmount } from "../storage/setup.js";

const MiB = 1024 * 1024;
const btrfsSkip = await btrfsUnavailable();
const skip = podmanMissing || btrfsSkip || false;
if (skip) console.log(`# skipping the backup integration test: ${skip}`);

/** Keeps a note in its volume; stops at once on SIGTERM (a held app stops quickly). */
function notesPackage(version: string): string {
  return `
image: ${TEST_IMAGE}
description: Keeps notes in a volume
entrypoint: ["/bin/busybox"]
command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
environment:
  MOTTO: "@motto@"
  NOTES_VERSION: "${version}"
volumes:
  data:
    mountpoint: /data
    quota: 16mb
questions:
  motto:
    query: "A motto"
`;
}

describe("backups with real btrfs, restic and Podman", { skip, timeout: 240_000 }, () => {
  // A repository name of this run only: container names are host-wide.
  const repo = `b${randomBytes(4).toString("hex")}`;
  const app = `${repo}/notes`;
  const answers = { motto: "carpe diem" };
  let scratch: string;
  let test: TestPodman | undefined;
  let server: GitServer | undefined;
  /** Every daemon started, with its data directory. */
  const daemons = new Map<RunningDaemon, string>();
  /** Each daemon's administrator. */
  const admins = new Map<RunningDaemon, TownClient>();
  let daemon: RunningDaemon;
  let admin: TownClient;
  let resticPassword: string;
  /** A second btrfs, standing in for a USB disk. */
  let usb: LoopBtrfs | undefined;

  /** Starts a daemon on its own data directory and btrfs loop file, signed in, with the repository added (unless told not to). */
  async function boxAt(
    dir: string,
    withRepository = true,
  ): Promise<{ daemon: RunningDaemon; admin: TownClient }> {
    assert.ok(test && server);
    const started = await startPodmanDaemon(join(scratch, dir), test.podman, {
      apps: { storageLoopBytes: 512 * MiB, resyncMs: 5_000 },
    });
    daemons.set(started, join(scratch, dir, "data"));
    const client = await setupAdmin(started);
    admins.set(started, client);
    if (withRepository) await client.addRepository({ name: repo, url: server.url("notes.git") });
    await untilAppsAvailable(client);
    return { daemon: started, admin: client };
  }

  /** Where the app's data volume is on the host, in `box`'s storage. */
  function dataVolume(box: RunningDaemon, name = "notes"): { name: string; path: string } {
    const install = box.boot.services?.installs.get(repo, name);
    assert.ok(install?.plan, `${repo}/${name} is installed`);
    const [node] = flattenPlan(install.plan);
    assert.ok(node);
    const volume = nodeVolumeName(node.plan, "data");
    return { name: volume, path: volumePath(storageRoot(box), volume) };
  }

  function storageRoot(box: RunningDaemon): string {
    const dataDir = daemons.get(box);
    assert.ok(dataDir);
    return storageLocations(dataDir).root;
  }

  /** The problem a call was refused with. */
  async function rejection(call: Promise<unknown>): Promise<ApiError> {
    try {
      await call;
    } catch (error) {
      assert.ok(error instanceof ApiError, String(error));
      return error;
    }
    assert.fail("the call succeeded");
  }

  /** Starts runs and waits until each ended. */
  async function runAndWait(
    client: TownClient,
    body: { subject?: string; target?: string },
  ): Promise<BackupRunView[]> {
    const started = await client.runBackup(body);
    assert.ok(started.length > 0);
    const ids = new Set(started.map((run) => run.id));
    const overview = await until(
      "the backup runs to end",
      60_000,
      () => client.backups(),
      (seen: BackupOverview) =>
        [...ids].every((id) => seen.runs.some((run) => run.id === id && run.state !== "running")),
    );
    return overview.runs.filter((run) => ids.has(run.id));
  }

  before(async () => {
    await preparePodmanHost();
    scratch = await scratchDir("town-backup-it-");
    test = await startTestPodman(scratch);
    await createRepo(join(scratch, "git"), "notes.git", {
      "packages/notes/1.0.yaml": notesPackage("1.0"),
      "packages/notes/1.1.yaml": notesPackage("1.1"),
    });
    server = await startGitServer({ root: join(scratch, "git") });
    ({ daemon, admin } = await boxAt("a"));
    await until(
      "the catalog to have notes",
      20_000,
      () => admin.installApp({ repo, name: "notes", version: "1.0", answers }),
      () => true,
    );
    await until(
      "the app to run",
      30_000,
      () => admin.app(repo, "notes"),
      (view) => view.running && view.containers.every((c) => c.state === "running"),
    );
    await writeFile(join(dataVolume(daemon).path, "note.txt"), "the original note\n");
  });

  after(async () => {
    try {
      for (const [started, dataDir] of daemons) {
        await started.stop();
        const { root } = storageLocations(dataDir);
        if (await mountedAt(root)) await unmount(root);
      }
      await usb?.close();
      await server?.close();
      if (test) await removeAppLeftovers(test.podman, [app]);
    } finally {
      if (test) stopTestPodman(test);
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("backs an app up to a local restic repository and restores it in place, keeping what it replaced", async () => {
    const added = await admin.addBackupTarget({
      name: "offsite",
      kind: "restic",
      location: join(scratch, "restic"),
    });
    assert.ok(added.password !== null && added.password.length >= 16, "a password was made");
    resticPassword = added.password;
    assert.equal(added.target.status?.ok, true);
    // The password is answered once, and never again: not in listings, not in the audit log.
    assert.ok(!JSON.stringify(await admin.backupTargets()).includes(resticPassword));
    const audit = await admin.audit({ action: "backup.target.add" });
    assert.equal(audit.items[0]?.target, "offsite");
    assert.ok(!JSON.stringify(audit).includes(resticPassword));

    const [run] = await runAndWait(admin, { subject: app, target: "offsite" });
    assert.equal(run?.state, "ok", run?.error ?? "");
    assert.equal(run.trigger, "manual");
    assert.ok(run.restorePoint);
    const backups = await admin.targetBackups("offsite");
    assert.equal(backups.length, 1);
    const [backup] = backups;
    assert.ok(backup);
    assert.equal(backup.id, run.restorePoint);
    assert.deepEqual(backup.app, { repo, name: "notes", version: "1.0" });

    // The app moves on after the backup (version, answer, data); the restore brings all of it back.
    await admin.changeApp(
      {
        action: "upgrade",
        repo,
        name: "notes",
        version: "1.1",
        answers: { motto: "seize the day" },
      },
      () => undefined,
    );
    const volume = dataVolume(daemon);
    await writeFile(join(volume.path, "note.txt"), "a changed note\n");
    await writeFile(join(volume.path, "added-later.txt"), "not in the backup\n");
    const restored = await admin.restoreBackup({ app, target: "offsite" });
    assert.equal(restored.app, app);
    assert.equal(restored.version, "1.0");
    assert.equal(restored.backup.id, run.restorePoint);
    assert.ok(restored.kept, "what the restore replaced is kept");
    assert.equal(await readFile(join(volume.path, "note.txt"), "utf8"), "the original note\n");
    await assert.rejects(readFile(join(volume.path, "added-later.txt")), { code: "ENOENT" });
    const install = daemon.boot.services?.installs.get(repo, "notes");
    assert.equal(install?.version, "1.0");
    assert.deepEqual(install.answers, answers);
    // The `restore` restore point holds the changed data.
    const points = await admin.restorePoints(repo, "notes");
    const kept = points.find((point) => point.id === restored.kept);
    assert.equal(kept?.reason, "restore");
    assert.equal(
      await readFile(
        join(snapshotPath(storageRoot(daemon), volume.name, restored.kept), "note.txt"),
        "utf8",
      ),
      "a changed note\n",
    );
    await until(
      "the app to run again",
      30_000,
      () => admin.app(repo, "notes"),
      (view) => view.containers.every((c) => c.state === "running"),
    );
  });

  it("keeps exactly what the policy says: last=2 after four runs, on the box and on the target", async () => {
    // Another disk's directory: a path target is only ever written below one that exists.
    await mkdir(join(scratch, "disk"));
    await admin.addBackupTarget({ name: "disk", kind: "path", location: join(scratch, "disk") });
    const policy = await admin.setBackupPolicy({
      subject: app,
      schedule: "0 3 * * *",
      keep: { last: 2 },
      targets: ["disk"],
    });
    assert.ok(policy.nextRunAt !== null && policy.nextRunAt > Date.now());
    const points: string[] = [];
    for (let round = 0; round < 4; round++) {
      const [run] = await runAndWait(admin, { subject: app });
      assert.equal(run?.state, "ok", run?.error ?? "");
      assert.equal(run.target, "disk");
      assert.ok(run.restorePoint);
      points.push(run.restorePoint);
    }
    const scheduled = (await admin.restorePoints(repo, "notes"))
      .filter((point) => point.reason === "schedule")
      .map((point) => point.id);
    assert.deepEqual(new Set(scheduled), new Set(points.slice(2)));
    const onDisk = (await admin.targetBackups("disk")).map((backup) => backup.id);
    assert.deepEqual(new Set(onDisk), new Set(points.slice(2)));
    // Restore points taken for other reasons are not the policy's to prune.
    assert.ok((await admin.restorePoints(repo, "notes")).some((p) => p.reason === "manual"));
    const overview = await admin.backups();
    assert.equal(overview.policies[0]?.lastRun?.ok, true);
    await admin.removeBackupPolicy(app);
  });

  it("puts the volumes back and says so when an in-place restore fails", async () => {
    const [backup] = await admin.targetBackups("disk");
    assert.ok(backup);
    const volume = dataVolume(daemon);
    // Someone with the disk broke the backup's archive.
    await writeFile(
      join(scratch, "disk", "town-backups", backup.id, `${volume.name}.tar.gz`),
      "not gzip",
    );
    await writeFile(join(volume.path, "note.txt"), "written after the backups\n");
    const error = await rejection(admin.restoreBackup({ app, target: "disk", at: backup.id }));
    assert.match(error.problem.detail, /volumes were put back as they were \(restore point /);
    assert.equal(
      await readFile(join(volume.path, "note.txt"), "utf8"),
      "written after the backups\n",
    );
    await writeFile(join(volume.path, "note.txt"), "the original note\n");
    await until(
      "the app to run again",
      30_000,
      () => admin.app(repo, "notes"),
      (view) => view.containers.every((c) => c.state === "running"),
    );
  });

  it("fails a run to a target whose directory vanished, says so on the overview, and keeps the restore points whole", async () => {
    const gone = join(scratch, "gone");
    await mkdir(gone);
    await admin.addBackupTarget({ name: "gone", kind: "path", location: gone });
    await rm(gone, { recursive: true, force: true });
    const [run] = await runAndWait(admin, { subject: app, target: "gone" });
    assert.equal(run?.state, "failed");
    assert.ok(run.error);
    const overview = await admin.backups();
    const failure = overview.failures.find((f) => f.subject === app && f.target === "gone");
    assert.ok(failure, JSON.stringify(overview.failures));
    assert.equal(failure.error, run.error);
    assert.equal(overview.targets.find((t) => t.name === "gone")?.status?.ok, false);
    // Every restore point of the app still has all its snapshots.
    const points = await admin.restorePoints(repo, "notes");
    assert.ok(points.length > 0);
    for (const point of points) {
      assert.ok(
        point.volumes.every((volume) => volume.present),
        `restore point ${point.id} is whole`,
      );
    }
    await admin.removeBackupTarget("gone");
  });

  it("refuses to restore as a new app beside the one it is of, changing nothing", async () => {
    const before = await readFile(join(dataVolume(daemon).path, "note.txt"), "utf8");
    const error = await rejection(admin.restoreBackup({ app, target: "offsite", asNew: true }));
    assert.equal(error.problem.code, "invalid_argument");
    assert.match(error.problem.detail, /restore it in place/i);
    assert.equal(daemon.boot.services?.installs.get(repo, "notes-restored"), undefined);
    assert.equal(await readFile(join(dataVolume(daemon).path, "note.txt"), "utf8"), before);
  });

  it("sends to another btrfs, incrementally after the first", async () => {
    usb = await mountLoopBtrfs(256 * MiB);
    await admin.addBackupTarget({ name: "usb", kind: "btrfs", location: usb.mountPoint });
    const [first] = await runAndWait(admin, { subject: app, target: "usb" });
    assert.equal(first?.state, "ok", first?.error ?? "");
    // What changed since is all the second send carries.
    await writeFile(join(dataVolume(daemon).path, "second.txt"), "written between the two\n");
    const [second] = await runAndWait(admin, { subject: app, target: "usb" });
    assert.equal(second?.state, "ok", second?.error ?? "");
    const held = await admin.targetBackups("usb");
    assert.deepEqual(
      held.map((backup) => [backup.id, backup.incremental]),
      [
        [first.restorePoint, false],
        [second.restorePoint, true],
      ],
    );
  });

  it("restores the app from restic into a new daemon with a fresh data directory", async () => {
    await admin.uninstallApp(repo, "notes", { purge: true });
    await daemon.stop();
    const fresh = await boxAt("b");
    await fresh.admin.addBackupTarget({
      name: "offsite",
      kind: "restic",
      location: join(scratch, "restic"),
      password: resticPassword,
    });
    const result = await until(
      "the catalog to offer notes 1.0",
      30_000,
      () => fresh.admin.restoreBackup({ app, target: "offsite" }),
      () => true,
    );
    assert.equal(result.app, app);
    assert.equal(result.version, "1.0");
    assert.equal(result.kept, null);
    const view = await until(
      "the restored app to run",
      30_000,
      () => fresh.admin.app(repo, "notes"),
      (seen) => seen.containers.length > 0 && seen.containers.every((c) => c.state === "running"),
    );
    assert.equal(view.version, "1.0");
    assert.deepEqual(fresh.daemon.boot.services?.installs.get(repo, "notes")?.answers, answers);
    assert.equal(
      await readFile(join(dataVolume(fresh.daemon).path, "note.txt"), "utf8"),
      "the original note\n",
    );

    // The other disk brings it back too, once it is gone from this box.
    await fresh.admin.uninstallApp(repo, "notes", { purge: true });
    assert.ok(usb);
    await fresh.admin.addBackupTarget({ name: "usb", kind: "btrfs", location: usb.mountPoint });
    const fromUsb = await fresh.admin.restoreBackup({ app, target: "usb" });
    const newest = (await fresh.admin.targetBackups("usb")).at(-1);
    assert.equal(fromUsb.backup.id, newest?.id);
    await until(
      "the app restored from the other disk to run",
      30_000,
      () => fresh.admin.app(repo, "notes"),
      (seen) => seen.containers.length > 0 && seen.containers.every((c) => c.state === "running"),
    );
    assert.equal(
      await readFile(join(dataVolume(fresh.daemon).path, "note.txt"), "utf8"),
      "the original note\n",
    );
  });

  it("backs up the whole box and restores it onto a fresh box: repository, settings, a person's volume and the app as it was", async () => {
    const current = [...daemons.keys()].at(-1);
    assert.ok(current);
    const client = admins.get(current);
    assert.ok(client);
    await client.createVolume({ name: "photos", quota: "8mb" });
    const photos = volumePath(storageRoot(current), "user.photos");
    await mkdir(join(photos, "2026"));
    await writeFile(join(photos, "2026", "beach.txt"), "a day at the beach\n");
    await client.setSetting("uploads.unpack_timeout", 600);
    await client.changeApp({ action: "stop", repo, name: "notes" }, () => undefined);
    await writeFile(join(dataVolume(current).path, "note.txt"), "the note of the whole box\n");
    await mkdir(join(scratch, "whole"));
    await client.addBackupTarget({ name: "whole", kind: "path", location: join(scratch, "whole") });
    const [run] = await runAndWait(client, { subject: "box", target: "whole" });
    assert.equal(run?.state, "ok", run?.error ?? "");
    const [held] = await client.targetBackups("whole");
    assert.equal(held?.subject, "box");
    assert.deepEqual([...held.volumes].sort(), [dataVolume(current).name, "user.photos"].sort());

    // One app of the box comes back from it alone too, in place.
    await writeFile(join(dataVolume(current).path, "note.txt"), "changed after\n");
    const one = await client.restoreBackup({ app, target: "whole" });
    assert.equal(one.backup.id, held.id);
    assert.ok(one.kept);
    assert.equal(
      await readFile(join(dataVolume(current).path, "note.txt"), "utf8"),
      "the note of the whole box\n",
    );

    await client.uninstallApp(repo, "notes", { purge: true });
    await current.stop();
    const fresh = await boxAt("c", false);
    await fresh.admin.addBackupTarget({
      name: "whole",
      kind: "path",
      location: join(scratch, "whole"),
    });
    const restored = await fresh.admin.restoreBox({ target: "whole" });
    assert.equal(restored.backup.id, held.id);
    assert.deepEqual(restored.repositories, [
      { name: repo, url: server?.url("notes.git"), state: "added", error: null },
    ]);
    assert.deepEqual(restored.settings, [{ key: "uploads.unpack_timeout", ok: true, error: null }]);
    assert.deepEqual(restored.volumes, [{ volume: "user.photos", state: "restored", error: null }]);
    assert.deepEqual(restored.apps, [
      { app, version: "1.0", state: "restored", kept: null, error: null },
    ]);
    assert.equal(
      await readFile(join(dataVolume(fresh.daemon).path, "note.txt"), "utf8"),
      "the note of the whole box\n",
    );
    const freshPhotos = volumePath(storageRoot(fresh.daemon), "user.photos");
    assert.equal(
      await readFile(join(freshPhotos, "2026", "beach.txt"), "utf8"),
      "a day at the beach\n",
    );
    assert.equal((await fresh.admin.volume("user.photos")).quota, 8 * MiB);
    const setting = (await fresh.admin.settings()).items.find(
      (item) => item.key === "uploads.unpack_timeout",
    );
    assert.equal(setting?.value, 600);
    const view = await fresh.admin.app(repo, "notes");
    assert.equal(view.running, false, "stopped, as it was on the old box");

    // Again over itself: everything is there, the app is restored in place.
    const again = await fresh.admin.restoreBox({ target: "whole" });
    assert.equal(again.repositories[0]?.state, "present");
    assert.equal(again.volumes[0]?.state, "present");
    assert.equal(again.apps[0]?.state, "restored");
    assert.ok(again.apps[0].kept);
  });
});
