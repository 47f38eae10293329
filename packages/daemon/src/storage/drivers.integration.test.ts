/**
 * Both storage drivers against real file systems: btrfs on a loop file this
 * test makes (root only) and plain directories in a temporary directory.
 * The shared contract runs against each; what only one can do is tested
 * on its own.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import {
  btrfsUnavailable,
  mountLoopBtrfs,
  sh,
  type LoopBtrfs,
} from "../../test/storage/loop-btrfs.js";
import { BtrfsDriver } from "./btrfs.js";
import { DirectoryDriver } from "./directory.js";
import type { StorageDriver } from "./driver.js";
import { packageVolumeName, uninstalledVolumeName, userVolumeName } from "./names.js";
import { expectTownError } from "../../../format/test/support.js";

const MiB = 1024 * 1024;
/** Giving files away needs root; otherwise the daemon's own ids stand in. */
const owner =
  process.getuid?.() === 0
    ? { uid: 1234, gid: 2345 }
    : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const skipBtrfs = await btrfsUnavailable();
if (skipBtrfs) console.log(`# btrfs driver tests skipped: ${skipBtrfs}`);

/** The contract every driver keeps. */
function contract(open: () => Promise<StorageDriver>) {
  const data = packageVolumeName("default", "gitea", "data");
  const music = userVolumeName("music");

  it("creates volumes idempotently, complete with owner and mode", async () => {
    const driver = await open();
    const made = await driver.create(data, { owner });
    assert.deepEqual(made, { created: true, volume: { name: data, path: driver.path(data) } });
    const stats = await stat(made.volume.path);
    assert.equal(stats.uid, owner.uid);
    assert.equal(stats.gid, owner.gid);
    assert.equal(stats.mode & 0o7777, 0o755);
    await writeFile(join(made.volume.path, "keep.txt"), "kept");
    const again = await driver.create(data, { owner: { uid: 1, gid: 1 } });
    assert.equal(again.created, false);
    assert.equal(await readFile(join(made.volume.path, "keep.txt"), "utf8"), "kept");
    assert.equal(
      (await stat(made.volume.path)).uid,
      owner.uid,
      "an existing volume keeps its owner",
    );
    assert.equal(await driver.exists(data), true);
    assert.deepEqual(await readdir(join(driver.root, "tmp")), [], "nothing left in tmp/");
  });

  it("lists volumes sorted and ignores what is not one", async () => {
    const driver = await open();
    await driver.create(music);
    await mkdir(join(driver.root, "volumes", "not-a-volume"), { recursive: true });
    assert.deepEqual(
      (await driver.list()).map((volume) => volume.name),
      [data, music],
    );
  });

  it("describes a volume, and says absent plainly", async () => {
    const driver = await open();
    const details = await driver.get(music);
    assert.ok(details);
    assert.equal(details.path, driver.path(music));
    assert.equal(details.owner.uid, process.getuid?.());
    assert.equal(typeof details.usage.usedBytes, "number");
    const absent = userVolumeName("absent");
    assert.equal(await driver.get(absent), undefined);
    assert.equal(await driver.exists(absent), false);
    await expectTownError(driver.usage(absent), "not_found", /no volume user\.absent/);
    await expectTownError(driver.setQuota(absent, 8 * MiB), "not_found", /no volume/);
    await expectTownError(driver.snapshot(absent, "s"), "not_found", /no volume/);
    assert.deepEqual(await driver.listSnapshots(absent), []);
    assert.equal(await driver.removeSnapshot(absent, "s"), false);
    assert.equal(await driver.remove(absent), false);
  });

  it("validates names and quotas before touching anything", async () => {
    const driver = await open();
    await expectTownError(driver.create("../etc"), "invalid_argument", /not a valid volume name/);
    await expectTownError(driver.create("pkg.x.y"), "invalid_argument", /not a valid volume name/);
    await expectTownError(driver.create(music, { quota: 5 }), "invalid_argument", /at least/);
    await expectTownError(
      driver.create(music, { quota: MiB + 0.5 }),
      "invalid_argument",
      /whole number/,
    );
    await expectTownError(driver.snapshot(music, "../x"), "invalid_argument", /snapshot name/);
    await expectTownError(driver.rename(music, music), "invalid_argument", /itself/);
  });

  it("takes snapshots that keep the content of their moment", async () => {
    const driver = await open();
    const path = driver.path(music);
    await writeFile(join(path, "song.txt"), "la la");
    const first = await driver.snapshot(music, "before");
    assert.equal(first.created, true);
    assert.equal(first.snapshot.name, "before");
    await writeFile(join(path, "song.txt"), "changed");
    const again = await driver.snapshot(music, "before");
    assert.equal(again.created, false);
    assert.equal(await readFile(join(first.snapshot.path, "song.txt"), "utf8"), "la la");
    await driver.snapshot(music, "after");
    assert.deepEqual(
      (await driver.listSnapshots(music)).map((snapshot) => snapshot.name),
      ["after", "before"],
    );
    assert.ok((await driver.listSnapshots(music))[0]?.createdAt instanceof Date);
    assert.equal(await driver.removeSnapshot(music, "after"), true);
    assert.equal(await driver.removeSnapshot(music, "after"), false);
    await expectTownError(driver.snapshotUsage(music, "after"), "not_found", /no snapshot after/);
    await expectTownError(driver.snapshotUsage(music, "../x"), "invalid_argument", /snapshot name/);
  });

  it("dates a snapshot when it was taken, not when its volume was made", async () => {
    const driver = await open();
    const name = userVolumeName("dated");
    await driver.create(name);
    const volumeMade = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const { snapshot } = await driver.snapshot(name, "later");
    const taken = snapshot.createdAt.getTime();
    // btrfs keeps whole seconds: 1.1 s later is still past the volume's moment.
    assert.ok(taken > volumeMade, `${snapshot.createdAt.toISOString()} after the volume`);
    assert.ok(Math.abs(Date.now() - taken) < 5000, `${snapshot.createdAt.toISOString()} is now`);
    assert.deepEqual(
      (await driver.listSnapshots(name)).map((listed) => listed.createdAt),
      [snapshot.createdAt],
    );
    await driver.remove(name);
  });

  it("restores a snapshot: content as it was, snapshots, quota and owner kept", async () => {
    const driver = await open();
    const name = userVolumeName("photos");
    const path = driver.path(name);
    await driver.create(name, { owner, quota: 64 * MiB });
    await mkdir(join(path, "album"));
    await writeFile(join(path, "album", "a.jpg"), "a");
    await writeFile(join(path, "b.jpg"), "b");
    await driver.snapshot(name, "first");
    await writeFile(join(path, "album", "a.jpg"), "changed");
    await rm(join(path, "b.jpg"));
    await writeFile(join(path, "new.jpg"), "new");
    await driver.snapshot(name, "second");
    for (let round = 0; round < 2; round++) {
      await driver.restoreSnapshot(name, "first");
      assert.deepEqual((await readdir(path)).sort(), ["album", "b.jpg"]);
      assert.equal(await readFile(join(path, "album", "a.jpg"), "utf8"), "a");
      assert.equal(await readFile(join(path, "b.jpg"), "utf8"), "b");
    }
    const stats = await stat(path);
    assert.deepEqual({ uid: stats.uid, gid: stats.gid }, owner);
    assert.equal(stats.mode & 0o7777, 0o755);
    const attributes = await driver.attributes(name);
    assert.equal(attributes?.quota, driver.capabilities.quotas ? 64 * MiB : null);
    assert.deepEqual(
      (await driver.listSnapshots(name)).map((snapshot) => snapshot.name),
      ["first", "second"],
    );
    await writeFile(join(path, "after-restore.jpg"), "writable");
    await driver.restoreSnapshot(name, "second");
    assert.deepEqual((await readdir(path)).sort(), ["album", "new.jpg"]);
    assert.equal(await readFile(join(path, "album", "a.jpg"), "utf8"), "changed");
    assert.deepEqual(await readdir(join(driver.root, "tmp")), [], "nothing left in tmp/");
    await expectTownError(driver.restoreSnapshot(name, "nope"), "not_found", /no snapshot nope/);
    await expectTownError(
      driver.restoreSnapshot(userVolumeName("absent"), "first"),
      "not_found",
      /no volume/,
    );
    await expectTownError(driver.restoreSnapshot(name, "../x"), "invalid_argument", /snapshot/);
    await driver.remove(name);
  });

  it("finishes a restore a crash interrupted once its swap had begun", async () => {
    const driver = await open();
    const name = userVolumeName("crashed");
    const path = driver.path(name);
    const tmp = join(driver.root, "tmp");
    for (const movedAside of [false, true]) {
      await driver.create(name);
      await writeFile(join(path, "state"), "live");
      const fresh = join(tmp, "00000000000000f1");
      const old = join(tmp, "00000000000000f2");
      await mkdir(fresh);
      await writeFile(join(fresh, "state"), "restored");
      await writeFile(
        join(tmp, "restore-00000000000000f1"),
        JSON.stringify({ target: path, fresh, old }),
      );
      if (movedAside) await sh("mv", [path, old]);
      await open();
      assert.equal(await readFile(join(path, "state"), "utf8"), "restored");
      assert.deepEqual(await readdir(tmp), []);
      await driver.remove(name);
    }
  });

  it("renames volumes with their snapshots, idempotently", async () => {
    const driver = await open();
    const aside = uninstalledVolumeName(data, new Date("2024-01-02T03:04:05Z"));
    await driver.snapshot(data, "pre-uninstall");
    await driver.rename(data, aside);
    assert.equal(await driver.exists(data), false);
    assert.equal(await readFile(join(driver.path(aside), "keep.txt"), "utf8"), "kept");
    assert.deepEqual(
      (await driver.listSnapshots(aside)).map((snapshot) => snapshot.name),
      ["pre-uninstall"],
    );
    assert.deepEqual(await driver.listSnapshots(data), []);
    await driver.rename(data, aside); // done already: fine
    await driver.create(data);
    await expectTownError(driver.rename(data, aside), "conflict", /exists already/);
    await driver.remove(data);
    await driver.rename(aside, data); // and back
    assert.equal(await readFile(join(driver.path(data), "keep.txt"), "utf8"), "kept");
    await driver.rename(aside, data); // done already
    await expectTownError(
      driver.rename(userVolumeName("nobody"), aside),
      "not_found",
      /no volume user\.nobody/,
    );
  });

  it("removes volumes with their snapshots, idempotently", async () => {
    const driver = await open();
    assert.equal(await driver.remove(data), true);
    assert.equal(await driver.exists(data), false);
    assert.equal(await driver.remove(data), false);
    assert.deepEqual(await driver.listSnapshots(data), []);
    await assert.rejects(lstat(join(driver.root, "snapshots", data)), /ENOENT/);
  });

  it("empties tmp/ when it opens: interrupted work is discarded", async () => {
    const driver = await open();
    const leftover = join(driver.root, "tmp", "0123456789abcdef");
    await mkdir(join(leftover, "half"), { recursive: true });
    await writeFile(join(leftover, "half", "file"), "x");
    await open();
    assert.deepEqual(await readdir(join(driver.root, "tmp")), []);
  });
}

describe("DirectoryDriver", () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(os.tmpdir(), "town-dirdriver-"));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });
  const open = () => DirectoryDriver.open(join(base, "storage"));

  describe("contract", () => {
    contract(open);
  });

  it("says plainly that quotas are not enforced, and keeps none", async () => {
    const driver = await open();
    assert.deepEqual(driver.capabilities, { quotas: false, snapshots: "copy", usage: "walked" });
    const name = userVolumeName("big");
    await driver.create(name, { quota: 2 * MiB });
    await writeFile(join(driver.path(name), "blob"), Buffer.alloc(4 * MiB, 1));
    await driver.setQuota(name, 2 * MiB);
    const details = await driver.get(name);
    assert.ok(details);
    assert.equal(details.quota, null);
    assert.ok(details.usage.usedBytes >= 4 * MiB);
    assert.equal(details.usage.exclusiveBytes, null);
    assert.equal(details.usage.partial, false);
    await driver.snapshot(name, "copy");
    assert.deepEqual(await driver.snapshotUsage(name, "copy"), { exclusiveBytes: null });
  });

  it("walks usage without following links, and marks a bounded walk partial", async () => {
    const driver = await DirectoryDriver.open(join(base, "bounded"), { maxUsageEntries: 3 });
    const name = userVolumeName("walked");
    await driver.create(name);
    const path = driver.path(name);
    for (let i = 0; i < 5; i++) await writeFile(join(path, `f${i}`), Buffer.alloc(64 * 1024, 1));
    await sh("ln", ["-s", "/usr", join(path, "usr")]);
    const usage = await driver.usage(name);
    assert.equal(usage.partial, true);
    assert.ok(usage.usedBytes < 5 * 64 * 1024, String(usage.usedBytes));
    const full = await (await DirectoryDriver.open(join(base, "bounded"))).usage(name);
    assert.equal(full.partial, false);
    assert.ok(
      full.usedBytes >= 5 * 64 * 1024 && full.usedBytes < 1024 * 1024,
      String(full.usedBytes),
    );
  });
});

describe("BtrfsDriver", { skip: skipBtrfs ?? false }, () => {
  let loop: LoopBtrfs;
  before(async () => {
    loop = await mountLoopBtrfs();
  });
  after(async () => {
    await loop.close();
  });
  const open = () => BtrfsDriver.open(join(loop.mountPoint, "storage"));

  describe("contract", () => {
    contract(open);
  });

  it("makes each volume a subvolume and each snapshot read-only", async () => {
    const driver = await open();
    const name = userVolumeName("sub");
    await driver.create(name);
    assert.equal((await stat(driver.path(name))).ino, 256);
    const { snapshot } = await driver.snapshot(name, "ro");
    await assert.rejects(writeFile(join(snapshot.path, "x"), "x"), /EROFS/);
    await driver.remove(name);
  });

  it("dates each snapshot right when another storage root holds the same names", async () => {
    const driver = await open();
    const other = await BtrfsDriver.open(join(loop.mountPoint, "other", "storage"));
    const name = userVolumeName("twin");
    await other.create(name);
    const { snapshot: earlier } = await other.snapshot(name, "same");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await driver.create(name);
    const { snapshot: later } = await driver.snapshot(name, "same");
    assert.ok(later.createdAt > earlier.createdAt, later.createdAt.toISOString());
    assert.deepEqual(
      (await other.listSnapshots(name)).map((listed) => listed.createdAt),
      [earlier.createdAt],
    );
    assert.deepEqual(
      (await driver.listSnapshots(name)).map((listed) => listed.createdAt),
      [later.createdAt],
    );
    await other.remove(name);
    await driver.remove(name);
  });

  it("dates a plain directory among the snapshots by its birth", async () => {
    const driver = await open();
    const name = userVolumeName("copied");
    await driver.create(name);
    await mkdir(join(driver.root, "snapshots", name, "copy"), { recursive: true });
    const listed = await driver.listSnapshots(name);
    assert.deepEqual(
      listed.map((snapshot) => snapshot.name),
      ["copy"],
    );
    assert.ok(
      listed.every((snapshot) => Math.abs(Date.now() - snapshot.createdAt.getTime()) < 5000),
    );
    await driver.remove(name);
  });

  it("restores a snapshot as a writable subvolume under the volume's current quota", async () => {
    const driver = await open();
    const name = userVolumeName("restored");
    await driver.create(name, { quota: 32 * MiB });
    await driver.snapshot(name, "roomy");
    await driver.setQuota(name, 8 * MiB);
    await driver.restoreSnapshot(name, "roomy");
    const path = driver.path(name);
    assert.equal((await stat(path)).ino, 256);
    assert.equal((await driver.get(name))?.quota, 8 * MiB, "not the snapshot's 32 MiB");
    await assert.rejects(
      writeFile(join(path, "fill"), Buffer.alloc(16 * MiB, 7)),
      (error: unknown) => {
        assert.equal((error as { errno?: unknown }).errno, -os.constants.errno.EDQUOT);
        return true;
      },
    );
    await driver.remove(name);
  });

  it("enforces quotas: writing past one fails with EDQUOT", async () => {
    const driver = await open();
    assert.deepEqual(driver.capabilities, {
      quotas: true,
      snapshots: "atomic",
      usage: "accounted",
    });
    const name = packageVolumeName("default", "small", "data");
    await driver.create(name, { quota: 8 * MiB });
    assert.equal((await driver.get(name))?.quota, 8 * MiB);
    const file = join(driver.path(name), "fill");
    await assert.rejects(writeFile(file, Buffer.alloc(16 * MiB, 7)), (error: unknown) => {
      // libuv has no name for EDQUOT: Node says "Unknown system error -122".
      assert.equal((error as { errno?: unknown }).errno, -os.constants.errno.EDQUOT);
      return true;
    });
    await rm(file);
    await driver.setQuota(name, null);
    assert.equal((await driver.get(name))?.quota, null);
    await writeFile(file, Buffer.alloc(16 * MiB, 7));
    await driver.create(name, { quota: 32 * MiB }); // an existing volume takes the new quota
    assert.equal((await driver.get(name))?.quota, 32 * MiB);
  });

  it("reports usage from the quota groups", async () => {
    const driver = await open();
    const name = packageVolumeName("default", "small", "data");
    const usage = await driver.usage(name, { sync: true });
    assert.ok(usage.usedBytes >= 16 * MiB && usage.usedBytes < 17 * MiB, String(usage.usedBytes));
    assert.ok(usage.exclusiveBytes !== null && usage.exclusiveBytes >= 16 * MiB);
    await driver.snapshot(name, "shared");
    await writeFile(join(driver.path(name), "more"), Buffer.alloc(4 * MiB, 9));
    const after = await driver.usage(name, { sync: true });
    assert.ok(after.usedBytes >= 20 * MiB, String(after.usedBytes));
    // The first 16 MiB are shared with the snapshot now: no longer exclusive.
    assert.ok((after.exclusiveBytes ?? 0) < 5 * MiB, String(after.exclusiveBytes));
  });

  it("measures what a snapshot alone holds: more once the volume rewrites a file they shared", async () => {
    const driver = await open();
    const name = userVolumeName("measured");
    await driver.create(name);
    const file = join(driver.path(name), "db");
    await writeFile(file, Buffer.alloc(8 * MiB, 1));
    await driver.snapshot(name, "then");
    const shared = (await driver.snapshotUsage(name, "then", { sync: true })).exclusiveBytes;
    assert.ok(shared !== null && shared < 1 * MiB, String(shared));
    await writeFile(file, Buffer.alloc(8 * MiB, 2));
    const alone = (await driver.snapshotUsage(name, "then", { sync: true })).exclusiveBytes;
    assert.ok(alone !== null && alone >= 8 * MiB, String(alone));
    await driver.remove(name);
  });

  it("removes volumes holding subvolumes an app made", async () => {
    const driver = await open();
    const name = userVolumeName("nested");
    await driver.create(name);
    await sh("btrfs", ["subvolume", "create", join(driver.path(name), "inner")]);
    await sh("btrfs", ["subvolume", "create", join(driver.path(name), "inner", "deeper")]);
    assert.equal(await driver.remove(name), true);
    assert.equal(await driver.exists(name), false);
  });

  it("refuses a root that is not on btrfs", async () => {
    const plain = await mkdtemp(join(os.tmpdir(), "town-notbtrfs-"));
    try {
      await expectTownError(BtrfsDriver.open(plain), "invalid_argument", /not on a btrfs/);
    } finally {
      await rm(plain, { recursive: true, force: true });
    }
  });
});
