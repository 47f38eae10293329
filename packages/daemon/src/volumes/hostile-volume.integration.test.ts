/**
 * A hostile app's volume through a real daemon over HTTP, on plain
 * directories (the storage mode of findings 3 and 13 of issue 10): what the
 * app planted in its volume and what a killed daemon left behind are dealt
 * with at the next start without following anything, and uploads, downloads,
 * snapshots and usage never reach outside the volume, even while the app
 * swaps a directory for a link. A decoy "host" directory must come out of it
 * exactly as it went in.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { TownClient } from "@townos/client";
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
import { testDaemonConfig, until } from "../../test/daemon.js";
import { startDaemon, type DaemonConfig, type RunningDaemon } from "../daemon.js";
import { storageLocations } from "../storage/setup.js";

const MiB = 1024 * 1024;
const PASSWORD = "admin-secret-3c9a51";
const VOLUME = "user.box";
/** How long the app swaps a directory for a link while the API is used. */
const RACE_MS = 3000;
const notRoot = process.getuid?.() === 0 ? undefined : "needs root";

describe("a hostile app's volume through a real daemon", { skip: notRoot ?? false }, () => {
  let scratch: string;
  let config: DaemonConfig;
  let daemon: RunningDaemon;
  let admin: TownClient;
  let volume: string;
  let outside: string;
  let host: string[];

  async function start(): Promise<void> {
    daemon = await startDaemon(config);
    await daemon.booted;
    admin = new TownClient({ baseUrl: daemon.url });
    admin.token = daemon.setupCode
      ? (await admin.setup({ username: "alice", password: PASSWORD, setupCode: daemon.setupCode }))
          .token
      : (await admin.login({ username: "alice", password: PASSWORD })).token;
    await until(
      "storage",
      30_000,
      () => admin.storage(),
      () => true,
    );
  }

  async function download(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await admin.downloadVolumeArchive(VOLUME)) {
      chunks.push(Buffer.from(chunk));
    }
    return gunzipSync(Buffer.concat(chunks));
  }

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-hostile-it-"));
    config = testDaemonConfig(scratch, {
      apps: {
        podman: {
          socketPath: join(scratch, "podman.sock"),
          podmanPath: join(scratch, "no-podman-here"),
        },
      },
    });
    outside = join(scratch, "host");
    await makeOutside(outside);
    host = await describeTree(outside);
    await start();
  });

  after(async () => {
    await daemon.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("recovers a killed daemon's staging at start and sweeps what counted against the volume", async () => {
    assert.equal((await admin.storage()).mode, "directory");
    await admin.createVolume({ name: "box" });
    const { root } = storageLocations(config.dataDir);
    volume = await realpath(join(root, "volumes", VOLUME));
    await plantHostileContent(volume, outside, 4 * MiB);
    const usedBefore = (await admin.volume(VOLUME)).usedBytes;
    assert.ok(usedBefore >= 4 * MiB, `the leftover staging counts: ${usedBefore}`);

    await daemon.stop();
    // What a daemon killed mid-upload leaves in tmp/: a tree staged complete, and a half-made one.
    const ready = join(root, "tmp", "ready-00000000000000aa");
    await mkdir(join(ready, "tree"), { recursive: true });
    await writeFile(join(ready, "tree", "restored.txt"), "finished at start");
    await writeFile(join(ready, "target"), volume);
    await mkdir(join(root, "tmp", "stage-00000000000000bb", "tree"), { recursive: true });
    await writeFile(join(root, "tmp", "stage-00000000000000bb", "tree", "half"), "half");
    await start();

    const usedAfter = (await admin.volume(VOLUME)).usedBytes;
    assert.ok(usedBefore - usedAfter >= 4 * MiB, `usage ${usedBefore} → ${usedAfter}`);
    const names = (await readdir(volume)).sort();
    assert.deepEqual(names, ["data.txt", "deep", "etc", "restored.txt", "sub"]);
    for (const planted of Object.values(PLANTED)) assert.ok(!names.includes(planted), planted);
    assert.equal(await readFile(join(volume, "restored.txt"), "utf8"), "finished at start");
    assert.deepEqual(await readdir(join(root, "tmp")), []);
    assert.deepEqual(await describeTree(outside), host, "the host directory is untouched");
  });

  it("uploads, downloads, snapshots and measures inside the volume while the app swaps a directory for a link", async () => {
    const swapper = swapForLink(join(volume, "sub"), outside);
    const rounds = { usage: 0, snapshot: 0, download: 0, upload: 0 };
    const leaks: string[] = [];
    try {
      const end = Date.now() + RACE_MS;
      while (Date.now() < end) {
        await admin.volume(VOLUME);
        rounds.usage++;
        await admin.snapshotVolume(VOLUME, `race-${++rounds.snapshot}`);
        if ((await download()).includes(SECRET)) leaks.push(`download ${rounds.download}`);
        rounds.download++;
        const upload = buildTar([{ path: `up-${++rounds.upload}/file.txt`, body: "up" }]);
        const result = await admin.uploadVolumeArchive(VOLUME, new Blob([upload]));
        assert.equal(result.entries, 1);
      }
    } finally {
      await swapper.stop();
    }
    console.log(`# raced the swapping over HTTP: ${JSON.stringify(rounds)}`);
    assert.deepEqual(leaks, [], "no download holds the host's secret");
    const snapshots = join(storageLocations(config.dataDir).root, "snapshots", VOLUME);
    for (const name of await readdir(snapshots)) {
      assert.equal(await holdsSecret(join(snapshots, name)), false, `snapshot ${name}`);
    }
    assert.equal(await readFile(join(volume, "up-1", "file.txt"), "utf8"), "up");
    assert.deepEqual(await describeTree(outside), host, "the host directory is untouched");
  });
});
