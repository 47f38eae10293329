/**
 * Choosing and setting up storage for a data directory: plain directories
 * where nothing better is possible, a btrfs loop file made, mounted and
 * mounted again after an unmount, and native btrfs.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { btrfsUnavailable, mountLoopBtrfs, type LoopBtrfs } from "../../test/storage/loop-btrfs.js";
import { userVolumeName } from "./names.js";
import { mountedAt, setupStorage, storageLocations, unmount } from "./setup.js";

const MiB = 1024 * 1024;
const skip = await btrfsUnavailable();
if (skip) console.log(`# storage setup tests skipped: ${skip}`);

describe("setupStorage", { skip: skip ?? false }, () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(os.tmpdir(), "town-setup-"));
  });
  after(async () => {
    // A failed test may leave the loop file mounted.
    for (const name of ["loop", "garbage"]) {
      const { root } = storageLocations(join(base, name));
      if (await mountedAt(root)) await unmount(root);
    }
    await rm(base, { recursive: true, force: true });
  });

  it("falls back to plain directories, saying why", async () => {
    const setup = await setupStorage({ dataDir: join(base, "plain") });
    assert.equal(setup.mode, "directory");
    assert.equal(setup.driver.kind, "directory");
    assert.equal(setup.driver.capabilities.quotas, false);
    assert.match(setup.reason, /quotas are not enforced/);
    assert.match(setup.reason, /is on (ext4|xfs|tmpfs|overlayfs|a file system).*, not btrfs\.$/);
  });

  it("makes, mounts and uses a sparse btrfs loop file when asked", async () => {
    const dataDir = join(base, "loop");
    const setup = await setupStorage({ dataDir, loopFileBytes: 512 * MiB });
    const { root, loopFile } = storageLocations(dataDir);
    assert.equal(setup.mode, "btrfs-loop");
    assert.equal(setup.driver.kind, "btrfs");
    assert.match(setup.reason, /storage\.btrfs \(512 MiB, sparse\)/);
    assert.equal((await mountedAt(root))?.fsType, "btrfs");
    const file = await stat(loopFile);
    assert.equal(file.size, 512 * MiB);
    assert.ok(file.blocks * 512 < 128 * MiB, `sparse: ${file.blocks * 512} bytes allocated`);
    await setup.driver.create(userVolumeName("kept"), { quota: 64 * MiB });
  });

  it("uses the mounted loop file again, idempotently", async () => {
    const dataDir = join(base, "loop");
    const setup = await setupStorage({ dataDir, loopFileBytes: 512 * MiB });
    assert.equal(setup.mode, "btrfs-loop");
    assert.match(setup.reason, /mounted at/);
    assert.equal((await setup.driver.get(userVolumeName("kept")))?.quota, 64 * MiB);
  });

  it("mounts the loop file again after a restart unmounted it, asked or not", async () => {
    const dataDir = join(base, "loop");
    const { root } = storageLocations(dataDir);
    await unmount(root);
    const setup = await setupStorage({ dataDir });
    assert.equal(setup.mode, "btrfs-loop");
    assert.match(setup.reason, /mounted again/);
    assert.equal(await setup.driver.exists(userVolumeName("kept")), true);
    await unmount(root);
  });

  it("fails rather than hide volumes when the loop file cannot be mounted", async () => {
    const dataDir = join(base, "garbage");
    await mkdir(dataDir);
    await writeFile(storageLocations(dataDir).loopFile, Buffer.alloc(MiB, 0x55));
    await assert.rejects(setupStorage({ dataDir }), (error: unknown) => {
      assert.ok(error instanceof TownError);
      assert.equal(error.code, "io");
      assert.match(error.message, /holds the volumes but cannot be mounted/);
      return true;
    });
  });

  it("keeps volumes that already live in plain directories", async () => {
    const dataDir = join(base, "had-directories");
    const first = await setupStorage({ dataDir });
    await first.driver.create(userVolumeName("old"));
    const setup = await setupStorage({ dataDir, loopFileBytes: 512 * MiB });
    assert.equal(setup.mode, "directory");
    assert.match(setup.reason, /already holds volumes as plain directories/);
    assert.equal(await setup.driver.exists(userVolumeName("old")), true);
  });

  it("refuses loop sizes out of range", async () => {
    await assert.rejects(
      setupStorage({ dataDir: join(base, "tiny"), loopFileBytes: MiB }),
      (error: unknown) => error instanceof TownError && error.code === "invalid_argument",
    );
  });

  describe("on a btrfs data directory", () => {
    let loop: LoopBtrfs;
    before(async () => {
      loop = await mountLoopBtrfs();
    });
    after(async () => {
      await loop.close();
    });

    it("uses btrfs as it is", async () => {
      const setup = await setupStorage({
        dataDir: join(loop.mountPoint, "town"),
        loopFileBytes: 512 * MiB,
      });
      assert.equal(setup.mode, "btrfs");
      assert.match(setup.reason, /is on btrfs/);
      assert.equal(setup.driver.capabilities.quotas, true);
    });
  });
});
