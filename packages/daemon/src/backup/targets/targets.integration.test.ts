/**
 * The three backup target kinds against real things: a volume on a loop-file
 * btrfs (the box), a second loop-file btrfs (the other disk: `path` and
 * `btrfs` targets, and fresh storage roots to restore onto), a local restic
 * repository. One contract for all; then what only some kinds do
 * (incremental sends) and targets that go away in the middle of a run.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
  chmod,
  lchown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
  lstat,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { Header, type HeaderData } from "tar";
import { TownError } from "@townos/format";
import type { BackupTargetKind } from "@townos/api";
import {
  btrfsUnavailable,
  mountLoopBtrfs,
  sh,
  type LoopBtrfs,
} from "../../../test/storage/loop-btrfs.js";
import { expectTownError } from "../../../../format/test/support.js";
import { BtrfsDriver } from "../../storage/btrfs.js";
import { findProgram } from "../../storage/exec.js";
import { packageVolumeName } from "../../storage/names.js";
import {
  MANIFEST_FORMAT,
  type BackupManifest,
  type BackupSource,
  type BackupTargetDriver,
} from "../types.js";
import { openTarget } from "./index.js";

const MiB = 1024 * 1024;
const PASSWORD = "correct horse battery";
const owner = { uid: 1234, gid: 2345 };
const volume = packageVolumeName("default", "wiki", "data");
const [S1, S2, S3, S4] = [
  "20260101T000000Z-manual",
  "20260102T000000Z-manual",
  "20260103T000000Z-manual",
  "20260104T000000Z-manual",
] as const;

const skip =
  (await btrfsUnavailable()) ??
  ((await findProgram("restic")) ? undefined : "restic is not installed");
if (skip) console.log(`# backup target tests skipped: ${skip}`);

let box: LoopBtrfs;
let disk: LoopBtrfs;
let storage: BtrfsDriver;
let resticRepo: string;
const createdAt = new Map<string, number>();
/** What `after` undoes, last first: only what `before` got to make. */
const cleanups: (() => Promise<void>)[] = [];

function manifest(id: string): BackupManifest {
  return {
    format: MANIFEST_FORMAT,
    id,
    box: "test-box",
    subject: volume,
    app: null,
    volumes: [{ name: volume, quota: null, owner }],
    createdAt: createdAt.get(id) ?? 0,
  };
}

async function sources(id: string): Promise<BackupSource[]> {
  const snapshots = await storage.listSnapshots(volume);
  const self = snapshots.find((snapshot) => snapshot.name === id);
  assert.ok(self, `snapshot ${id}`);
  return [
    {
      volume,
      snapshot: id,
      path: self.path,
      earlier: snapshots
        .filter((snapshot) => snapshot.name < id)
        .map((snapshot) => ({ name: snapshot.name, path: snapshot.path })),
    },
  ];
}

async function snapshot(id: string): Promise<void> {
  await storage.snapshot(volume, id);
  createdAt.set(id, createdAt.size + 1);
}

/** Every entry below `dir`: type, mode, owner and content (or link target; special files by type only). */
async function describeTree(dir: string, prefix = ""): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const name of (await readdir(join(dir, prefix))).sort()) {
    const path = join(prefix, name);
    const stats = await lstat(join(dir, path));
    const who = `${stats.uid}:${stats.gid}`;
    if (stats.isSymbolicLink()) {
      found.set(path, `link ${who} -> ${await readlink(join(dir, path))}`);
    } else if (stats.isDirectory()) {
      found.set(path, `dir ${(stats.mode & 0o7777).toString(8)} ${who}`);
      for (const [inner, what] of await describeTree(dir, path)) found.set(inner, what);
    } else if (!stats.isFile()) {
      const type = stats.isFIFO() ? "fifo" : stats.isSocket() ? "socket" : "device";
      found.set(path, `${type} ${(stats.mode & 0o7777).toString(8)} ${who}`);
    } else {
      const hash = createHash("sha256")
        .update(await readFile(join(dir, path)))
        .digest("hex");
      found.set(path, `file ${(stats.mode & 0o7777).toString(8)} ${who} ${hash}`);
    }
  }
  return found;
}

/** What every restore brings back: everything but device files, FIFOs and sockets. */
function withoutSpecialFiles(tree: Map<string, string>): Map<string, string> {
  return new Map([...tree].filter(([, what]) => /^(dir|file|link) /.test(what)));
}

/** An uncompressed tar archive of `entries` as written (paths and all): what a hostile disk may hold. */
function tarOf(entries: (HeaderData & { body?: string })[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { body = "", ...data } of entries) {
    const content = Buffer.from(body);
    const header = new Header({ mode: 0o644, mtime: new Date(0), size: content.length, ...data });
    header.encode();
    assert.ok(header.block);
    blocks.push(header.block, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** A fresh storage root on the other disk, with the volume made empty in it, as a restore onto a new box does. */
async function freshVolume(): Promise<{ driver: BtrfsDriver; path: string }> {
  const root = await mkdtemp(join(disk.mountPoint, "fresh-"));
  const driver = await BtrfsDriver.open(root);
  const made = await driver.create(volume, { owner });
  return { driver, path: made.volume.path };
}

function open(
  kind: BackupTargetKind,
  password = PASSWORD,
  stagingRoot?: string,
): BackupTargetDriver {
  const location =
    kind === "restic"
      ? resticRepo
      : join(disk.mountPoint, kind === "path" ? "archives" : "received");
  return openTarget(
    {
      name: `t-${kind}`,
      kind,
      location,
      password: kind === "restic" ? password : null,
      env: {},
    },
    stagingRoot === undefined ? {} : { stagingRoot },
  );
}

async function writeRandom(path: string, bytes: number): Promise<void> {
  await writeFile(path, randomBytes(bytes));
}

/** Unmounts the other disk lazily (as when it is pulled out: writers in flight keep going into nothing), and mounts it again. */
async function pullDisk(): Promise<void> {
  await sh("umount", ["-l", disk.mountPoint]);
}
async function plugDiskBack(): Promise<void> {
  await sh("mount", ["-o", "loop", join(dirname(disk.mountPoint), "disk.img"), disk.mountPoint]);
}

describe("backup targets", { skip }, () => {
  before(async () => {
    box = await mountLoopBtrfs(512 * MiB);
    cleanups.push(() => box.close());
    disk = await mountLoopBtrfs(512 * MiB);
    cleanups.push(() => disk.close());
    const resticDir = await mkdtemp(join(tmpdir(), "town-restic-"));
    cleanups.push(() => rm(resticDir, { recursive: true, force: true }));
    resticRepo = join(resticDir, "repo");
    storage = await BtrfsDriver.open(join(box.mountPoint, "root"));
    const made = await storage.create(volume, { owner });
    const root = made.volume.path;
    await writeFile(join(root, "a.txt"), "first\n");
    await chmod(join(root, "a.txt"), 0o640);
    await lchown(join(root, "a.txt"), 1000, 1001);
    await mkdir(join(root, "sub"));
    await chmod(join(root, "sub"), 0o750);
    await lchown(join(root, "sub"), 1002, 1003);
    await writeRandom(join(root, "sub", "big.bin"), 8 * MiB);
    await lchown(join(root, "sub", "big.bin"), 33, 33);
    await symlink("/etc/passwd", join(root, "outside"));
    await symlink("sub/big.bin", join(root, "inside"));
    await lchown(join(root, "inside"), 1000, 1001);
    await symlink("../../beyond", join(root, "sub", "up"));
    await writeFile(join(root, "odd\nname\u0007"), "any byte but / and NUL\n");
    // What a hostile container can plant: restores must not make these.
    await sh("mknod", [join(root, "null"), "c", "1", "3"]);
    await sh("mknod", [join(root, "sub", "loop"), "b", "7", "0"]);
    await sh("mkfifo", [join(root, "pipe")]);
    await snapshot(S1);
    await writeFile(join(root, "a.txt"), "second\n");
    await snapshot(S2);
    await mkdir(join(disk.mountPoint, "archives"));
    await mkdir(join(disk.mountPoint, "received"));
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  for (const kind of ["path", "btrfs", "restic"] as const) {
    it(`${kind}: keeps backups complete, restores them as they were, repeats and removes idempotently`, async () => {
      const target = open(kind);
      await target.prepare();
      await target.prepare();
      const first = await target.put(manifest(S1), await sources(S1));
      const second = await target.put(manifest(S2), await sources(S2));
      assert.equal(first.incremental, false);
      assert.ok(first.bytes !== null && first.bytes > 0);
      if (kind === "path") {
        assert.equal(second.incremental, false);
      } else {
        // One small file changed: only it travels.
        assert.equal(second.incremental, true);
        assert.ok(
          second.bytes !== null && second.bytes * 20 < first.bytes,
          `${String(second.bytes)} vs ${String(first.bytes)}`,
        );
      }
      const listed = await target.list();
      assert.deepEqual(
        listed.map((stored) => stored.manifest),
        [manifest(S1), manifest(S2)],
      );
      assert.deepEqual(listed[1], { manifest: manifest(S2), ...second });

      assert.deepEqual(
        await target.put(manifest(S2), await sources(S2)),
        second,
        "put again changes nothing",
      );
      assert.equal((await target.list()).length, 2);

      // The first one goes; the second (sent as changes from it) still restores whole.
      await target.remove(S1);
      await target.remove(S1);
      assert.deepEqual(
        (await target.list()).map((stored) => stored.manifest.id),
        [S2],
      );

      const backedUp = await describeTree((await sources(S2))[0]?.path ?? "");
      assert.equal(backedUp.get("outside"), "link 0:0 -> /etc/passwd");
      assert.equal(backedUp.get("sub/up"), "link 0:0 -> ../../beyond");
      assert.equal(backedUp.get("null"), "device 644 0:0");
      const fresh = await freshVolume();
      const steps: string[] = [];
      // Restored as the service does: staged in the new storage root's own tmp/.
      await open(kind, PASSWORD, fresh.driver.stagingRoot).restoreVolume(S2, volume, fresh.path, {
        progress: (progress) => steps.push(progress.step),
      });
      assert.deepEqual(await describeTree(fresh.path), withoutSpecialFiles(backedUp));
      if (kind !== "path") {
        // A path target's archives never hold them: nothing to leave out there.
        assert.ok(
          steps.includes(`restored ${volume}, leaving out 3 device files, FIFOs and sockets`),
          steps.join("; "),
        );
      }
      if (kind === "btrfs") {
        // The writable snapshot the restore copied from is gone.
        assert.deepEqual(
          (await readdir(join(disk.mountPoint, "received", "town-backups"))).sort(),
          ["manifests", volume],
        );
      }
      assert.equal(await readFile(join(fresh.path, "a.txt"), "utf8"), "second\n");
      const top = await lstat(fresh.path);
      assert.deepEqual([top.uid, top.gid, top.mode & 0o7777], [owner.uid, owner.gid, 0o755]);
      await expectTownError(
        target.restoreVolume(S2, volume, fresh.path),
        "invalid_argument",
        /empty directory/,
      );
      const empty = await mkdtemp(join(disk.mountPoint, "empty-"));
      await expectTownError(target.restoreVolume(S1, volume, empty), "not_found", /no backup/);
    });
  }

  it("path: a hostile archive on the disk restores inside the volume only, its links kept as links", async () => {
    const archive = join(disk.mountPoint, "archives", "town-backups", S2, `${volume}.tar.gz`);
    const original = await readFile(archive);
    const outside = await mkdtemp(join(disk.mountPoint, "outside-"));
    try {
      await writeFile(
        archive,
        gzipSync(
          tarOf([
            { path: "fine.txt", type: "File", uid: 77, gid: 88, mode: 0o600, body: "ok\n" },
            { path: "escape", type: "SymbolicLink", linkpath: outside, uid: 1000, gid: 1001 },
            { path: "escape/planted", type: "File", body: "through the link\n" },
            { path: "../climbed", type: "File", body: "up\n" },
            { path: `${outside}/absolute`, type: "File", body: "absolute\n" },
            { path: "hard", type: "Link", linkpath: "escape" },
            { path: "null", type: "CharacterDevice", devmaj: 1, devmin: 3 },
            { path: "sub/", type: "Directory", uid: 5, gid: 6, mode: 0o750 },
            { path: "sub/up", type: "SymbolicLink", linkpath: "../../../etc", uid: 5, gid: 6 },
          ]),
        ),
      );
      const fresh = await freshVolume();
      const steps: string[] = [];
      await open("path", PASSWORD, fresh.driver.stagingRoot).restoreVolume(S2, volume, fresh.path, {
        progress: (progress) => steps.push(progress.step),
      });
      assert.deepEqual(await readdir(outside), []);
      for (const beside of [dirname(fresh.path), fresh.driver.stagingRoot]) {
        await assert.rejects(lstat(join(beside, "climbed")), { code: "ENOENT" });
      }
      const ok = createHash("sha256").update("ok\n").digest("hex");
      assert.deepEqual(
        await describeTree(fresh.path),
        new Map([
          ["escape", `link 1000:1001 -> ${outside}`],
          ["fine.txt", `file 600 77:88 ${ok}`],
          ["sub", "dir 750 5:6"],
          ["sub/up", "link 5:6 -> ../../../etc"],
        ]),
      );
      assert.ok(
        steps.some((step) => step.startsWith(`restored ${volume}, leaving out 5 unsafe entries (`)),
        steps.join("; "),
      );
    } finally {
      await writeFile(archive, original);
    }
  });

  it("path and btrfs: a disk pulled out mid-run fails the run, and leaves the earlier backups whole", async () => {
    const root = storage.path(volume);
    await writeRandom(join(root, "sub", "more.bin"), 48 * MiB);
    await snapshot(S3);
    for (const kind of ["path", "btrfs"] as const) {
      const target = open(kind);
      let pulled: Promise<void> | undefined;
      const failure = await target
        .put(manifest(S3), await sources(S3), {
          progress: () => {
            pulled ??= pullDisk();
          },
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      await pulled;
      assert.ok(failure instanceof TownError, `${kind}: ${String(failure)}`);
      assert.equal(failure.code, "unavailable", failure.message);
      assert.match(failure.message, new RegExp(`^backup target "t-${kind}"`));
      await expectTownError(target.list(), "unavailable", /is missing/);
      await plugDiskBack();

      assert.deepEqual(
        (await target.list()).map((stored) => stored.manifest.id),
        [S2],
      );
      const fresh = await freshVolume();
      await target.restoreVolume(S2, volume, fresh.path);
      assert.equal(await readFile(join(fresh.path, "a.txt"), "utf8"), "second\n");
      const done = await target.put(manifest(S3), await sources(S3));
      assert.ok(done.bytes !== null && done.bytes > 40 * MiB);
      assert.deepEqual(
        (await target.list()).map((stored) => stored.manifest.id),
        [S2, S3],
      );
      // What the stopped run left is gone.
      const kept =
        kind === "path"
          ? await readdir(join(disk.mountPoint, "archives", "town-backups"))
          : await readdir(join(disk.mountPoint, "received", "town-backups", volume));
      assert.deepEqual(kept.sort(), [S2, S3]);
    }
  });

  it("btrfs and restic: a run stopped by its signal leaves nothing listed, and the next one succeeds", async () => {
    await writeFile(join(storage.path(volume), "a.txt"), "fourth\n");
    await writeRandom(join(storage.path(volume), "sub", "fourth.bin"), 32 * MiB);
    await snapshot(S4);
    for (const kind of ["btrfs", "restic"] as const) {
      const target = open(kind);
      const before = (await target.list()).map((stored) => stored.manifest.id);
      const controller = new AbortController();
      await expectTownError(
        target.put(manifest(S4), await sources(S4), {
          signal: controller.signal,
          progress: () => {
            controller.abort();
          },
        }),
        "io",
        new RegExp(`^backup target "t-${kind}".*cancelled`),
      );
      assert.deepEqual(
        (await target.list()).map((stored) => stored.manifest.id),
        before,
      );
      if (kind === "restic") {
        // The killed restic's lock is stale (its process is gone): unlock removes only such locks.
        const access = ["-r", resticRepo, "--password-file", await passwordFile()];
        await sh("restic", [...access, "unlock"]);
        await sh("restic", [...access, "check"]);
      }
      await target.put(manifest(S4), await sources(S4));
      assert.deepEqual(
        (await target.list()).map((stored) => stored.manifest.id),
        [...before, S4],
      );
      if (kind === "btrfs") {
        assert.deepEqual(
          (await readdir(join(disk.mountPoint, "received", "town-backups", volume))).sort(),
          [...before, S4],
        );
      }
    }
  });

  it("restic: a wrong password is said plainly; a missing repository is unavailable", async () => {
    await expectTownError(
      open("restic", "not the password").list(),
      "invalid_argument",
      /wrong password/,
    );
    const missing = openTarget({
      name: "gone",
      kind: "restic",
      location: join(resticRepo, "nothing-here"),
      password: PASSWORD,
      env: {},
    });
    await expectTownError(missing.list(), "unavailable", /^backup target "gone"/);
    const refused = openTarget({
      name: "refused",
      kind: "restic",
      location: "rest:http://me:s3cret@127.0.0.1:9/repo",
      password: PASSWORD,
      env: {},
    });
    const error = await expectTownError(refused.prepare(), "unavailable", /me:\*\*\*@127/);
    assert.doesNotMatch(error.message, /s3cret/);
  });
});

async function passwordFile(): Promise<string> {
  const path = join(dirname(resticRepo), "password");
  await writeFile(path, PASSWORD, { mode: 0o600 });
  return path;
}
