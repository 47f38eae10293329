/**
 * Both storage drivers against a hostile app's volume (plain directories in a
 * temporary directory, and btrfs on a loop file this test makes): links out
 * of the volume, staging-looking names (findings 3 and 13 of issue 10), and
 * a directory swapped for a link over and over in another process while the
 * driver changes owners, measures, snapshots, packs and writes templates.
 * A decoy "host" directory beside the storage root must come out of all of
 * it exactly as it went in.
 */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { buildTar } from "../../test/storage/archives.js";
import {
  describeTree,
  holdsSecret,
  makeOutside,
  PLANTED,
  plantHostileContent,
  SECRET,
  swapForLink,
} from "../../test/storage/hostile.js";
import { btrfsUnavailable, mountLoopBtrfs, type LoopBtrfs } from "../../test/storage/loop-btrfs.js";
import { packVolume, unpackArchive } from "./archive.js";
import { BtrfsDriver } from "./btrfs.js";
import { DirectoryDriver } from "./directory.js";
import type { StorageDriver } from "./driver.js";
import { userVolumeName } from "./names.js";
import { writeTemplates } from "./seed.js";
import { expectTownError } from "../../../format/test/support.js";

const MiB = 1024 * 1024;
const APP = { uid: 4321, gid: 4321 };
/** How long each operation races the swapping. */
const RACE_MS = 1500;
const skipBtrfs = await btrfsUnavailable();
if (skipBtrfs) console.log(`# btrfs hostile-volume tests skipped: ${skipBtrfs}`);
const notRoot = process.getuid?.() === 0 ? undefined : "needs root (chown to another user)";

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Runs `work` again and again for `ms`. */
async function repeatFor(ms: number, work: () => Promise<unknown>): Promise<number> {
  const end = Date.now() + ms;
  let rounds = 0;
  while (Date.now() < end) {
    await work();
    rounds++;
  }
  return rounds;
}

function hostileVolume(base: () => string, open: () => Promise<StorageDriver>) {
  let outside = "";
  let host: string[] | undefined;
  let count = 0;

  /** A fresh volume of the app's, holding what a hostile app plants (`plantHostileContent`). */
  async function plantedVolume(
    driver: StorageDriver,
    leftoverBytes = 0,
  ): Promise<{ name: string; volume: string }> {
    const name = userVolumeName(`hostile${++count}`);
    const volume = (await driver.create(name, { owner: APP })).volume.path;
    await plantHostileContent(volume, outside, leftoverBytes);
    return { name, volume };
  }

  beforeEach(async () => {
    if (host) return;
    outside = join(base(), "host");
    await makeOutside(outside);
    host = await describeTree(outside);
  });

  it("opens over a crash's and an app's leftovers: finishes, sweeps, never follows", async () => {
    let driver = await open();
    const { name, volume } = await plantedVolume(driver, 4 * MiB);
    // What a daemon killed mid-upload leaves: one tree staged complete, one half-made.
    const ready = join(driver.stagingRoot, "ready-00000000000000aa");
    await mkdir(join(ready, "tree"), { recursive: true });
    await writeFile(join(ready, "tree", "restored.txt"), "finished at open");
    await writeFile(join(ready, "target"), volume);
    await mkdir(join(driver.stagingRoot, "stage-00000000000000bb", "tree"), { recursive: true });
    const usedBefore = (await driver.usage(name, { sync: true })).usedBytes;
    assert.ok(usedBefore >= 4 * MiB, `the leftover counts: ${usedBefore}`);

    driver = await open();
    assert.deepEqual(await readdir(driver.stagingRoot), [], "tmp/ is empty after open");
    const names = (await readdir(volume)).sort();
    assert.deepEqual(names, ["data.txt", "deep", "etc", "restored.txt", "sub"]);
    for (const planted of Object.values(PLANTED)) assert.ok(!names.includes(planted), planted);
    assert.equal(await readFile(join(volume, "restored.txt"), "utf8"), "finished at open");
    const usedAfter = (await driver.usage(name, { sync: true })).usedBytes;
    assert.ok(usedBefore - usedAfter >= 4 * MiB, `usage ${usedBefore} → ${usedAfter}`);
    assert.deepEqual(await describeTree(outside), host, "the host directory is untouched");
  });

  it("changes owners, measures, snapshots, packs and unpacks without following links", async () => {
    const driver = await open();
    const { name, volume } = await plantedVolume(driver);
    await driver.setOwner(name, { uid: 5555, gid: 5555 });
    assert.equal((await lstat(join(volume, "etc"))).uid, 5555, "the link itself");
    assert.equal((await lstat(join(volume, "sub", "f0"))).uid, 5555);

    const usage = await driver.usage(name, { sync: true });
    assert.ok(usage.usedBytes < MiB, `links not followed: ${usage.usedBytes}`);

    const { snapshot } = await driver.snapshot(name, "s1");
    assert.equal(await readlink(join(snapshot.path, "etc")), outside);

    const archive = await collect(await packVolume(volume, { format: "tar.gz" }));
    assert.ok(!gunzipSync(archive).includes(SECRET), "the download holds nothing of the host");
    const back = join(base(), "back");
    await mkdir(back);
    const unpacked = await unpackArchive(Readable.from([archive]), "tar.gz", back, {
      stagingRoot: driver.stagingRoot,
      maxBytes: 10 * MiB,
    });
    assert.match(
      JSON.stringify(unpacked.refused.find((entry) => entry.path === "etc")),
      /absolute target/,
      "packed as a link (which an upload refuses)",
    );
    await expectTownError(
      packVolume(volume, { format: "tar.gz", paths: ["etc/secret"] }),
      "invalid_argument",
      /symbolic link "etc"/,
    );

    const upload = buildTar([{ path: "uploaded/file.txt", body: "up" }]);
    await unpackArchive(Readable.from([upload]), "tar", volume, {
      stagingRoot: driver.stagingRoot,
      maxBytes: MiB,
      owner: APP,
    });
    assert.equal(await readFile(join(volume, "uploaded", "file.txt"), "utf8"), "up");
    assert.equal((await lstat(join(volume, "uploaded", "file.txt"))).uid, APP.uid);

    await expectTownError(
      writeTemplates(
        [
          { volume: "v", path: "etc/new.conf", content: "x" },
          { volume: "v", path: "deep/up/new.conf", content: "x" },
        ],
        { v: { dir: volume, owner: APP } },
      ),
      "conflict",
      /2 file\(s\) could not be written safely/,
    );
    assert.deepEqual(await readdir(driver.stagingRoot), []);
    assert.deepEqual(await describeTree(outside), host, "the host directory is untouched");
  });

  it("never follows a directory swapped for a link while it works", async () => {
    const driver = await open();
    const { name, volume } = await plantedVolume(driver);
    const swapper = swapForLink(join(volume, "sub"), outside);
    const rounds: Record<string, number> = {};
    let leaks = 0;
    // The swap may make an operation fail now and then; it must never reach outside.
    const tolerant = (work: () => Promise<unknown>) => () => work().catch(() => undefined);
    try {
      rounds.chown = await repeatFor(
        RACE_MS,
        tolerant(() => driver.setOwner(name, APP)),
      );
      rounds.usage = await repeatFor(
        RACE_MS,
        tolerant(() => driver.usage(name)),
      );
      let snapshots = 0;
      rounds.snapshot = await repeatFor(
        RACE_MS,
        tolerant(() => driver.snapshot(name, `race-${++snapshots}`)),
      );
      rounds.pack = await repeatFor(RACE_MS, async () => {
        const packed = await collect(await packVolume(volume, { format: "tar.gz" })).catch(
          () => undefined,
        );
        if (packed && gunzipSync(packed).includes(SECRET)) leaks++;
      });
      rounds.templates = await repeatFor(
        RACE_MS,
        tolerant(() =>
          writeTemplates([{ volume: "v", path: "sub/new.conf", content: "x" }], {
            v: { dir: volume, owner: APP },
          }),
        ),
      );
    } finally {
      await swapper.stop();
    }
    console.log(`# raced the swapping: ${JSON.stringify(rounds)}`);
    assert.deepEqual(await describeTree(outside), host, "the host directory is untouched");
    assert.equal(leaks, 0, "no archive holds the host's secret");
    for (const snapshot of await driver.listSnapshots(name)) {
      assert.equal(await holdsSecret(snapshot.path), false, `snapshot ${snapshot.name}`);
    }
  });
}

describe("a hostile app's volume on plain directories", { skip: notRoot ?? false }, () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(os.tmpdir(), "town-hostile-"));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });
  hostileVolume(
    () => base,
    () => DirectoryDriver.open(join(base, "storage")),
  );
});

describe("a hostile app's volume on btrfs", { skip: notRoot ?? skipBtrfs ?? false }, () => {
  let loop: LoopBtrfs;
  before(async () => {
    loop = await mountLoopBtrfs();
  });
  after(async () => {
    await loop.close();
  });
  hostileVolume(
    () => loop.mountPoint,
    () => BtrfsDriver.open(join(loop.mountPoint, "storage")),
  );
});
