/**
 * Volumes through the API and the CLI of a real daemon whose storage is a
 * btrfs loop file it makes itself: user volumes, uploads (tar.gz, zip,
 * hostile, oversize), downloads compared with what went in, quotas,
 * snapshots, access and audit. Podman is pointed at a program that does not
 * exist, so apps are unavailable while volumes work: storage does not wait
 * for the container runtime.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import { ApiError, TownClient } from "@townos/client";
import { runTownCaptured, type TownRun } from "../../../cli/test/run-town.js";
import { buildTar, buildZip } from "../../test/storage/archives.js";
import { btrfsUnavailable } from "../../test/storage/loop-btrfs.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { unpackArchive } from "../storage/archive.js";
import { mountedAt, storageLocations, unmount } from "../storage/setup.js";
import { testDaemonConfig } from "../../test/daemon.js";

const MiB = 1024 * 1024;
const ADMIN_PASSWORD = "admin-secret-7f1c22";
const USER_PASSWORD = "user-secret-0b9e4d";
const skip = await btrfsUnavailable();
if (skip) console.log(`# volume integration tests skipped: ${skip}`);

describe("volumes through a real daemon on btrfs", { skip: skip ?? false }, () => {
  let scratch: string;
  let dataDir: string;
  let daemon: RunningDaemon;
  let admin: TownClient;

  async function town(...argv: string[]): Promise<TownRun> {
    return runTownCaptured(argv, {
      cwd: scratch,
      env: { TOWN_SERVER: daemon.url, XDG_CONFIG_HOME: join(scratch, "config") },
    });
  }

  /** What an API call failed with. */
  async function problemOf(call: Promise<unknown>): Promise<{ status: number; code: string }> {
    try {
      await call;
    } catch (error) {
      assert.ok(error instanceof ApiError, String(error));
      return { status: error.problem.status, code: error.problem.code };
    }
    assert.fail("the call succeeded");
  }

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-volumes-it-"));
    dataDir = join(scratch, "data");
    daemon = await startDaemon(
      testDaemonConfig(scratch, {
        apps: {
          storageLoopBytes: 512 * MiB,
          podman: {
            socketPath: join(scratch, "podman.sock"),
            podmanPath: join(scratch, "no-podman-here"),
          },
        },
      }),
    );
    await daemon.booted;
    admin = new TownClient({ baseUrl: daemon.url });
    admin.token = (
      await admin.setup({
        username: "alice",
        password: ADMIN_PASSWORD,
        setupCode: daemon.setupCode,
      })
    ).token;
    // Storage is set up in the background once the API is ready.
    for (let tries = 0; ; tries++) {
      try {
        await admin.storage();
        break;
      } catch (error) {
        if (!(error instanceof ApiError && error.problem.code === "unavailable") || tries > 300)
          throw error;
        await sleep(100);
      }
    }
    const login = await town("login", "--username", "alice", "--password", ADMIN_PASSWORD);
    assert.equal(login.code, 0, login.stderr);
  });

  after(async () => {
    await daemon.stop();
    const { root } = storageLocations(dataDir);
    if (await mountedAt(root)) await unmount(root);
    await rm(scratch, { recursive: true, force: true });
  });

  it("says the volumes are on a btrfs loop file with quotas enforced", async () => {
    const storage = await admin.storage();
    assert.equal(storage.mode, "btrfs-loop");
    assert.equal(storage.capabilities.quotas, true);
    assert.match(storage.notes.join("\n"), /Quotas are enforced/);
  });

  it("makes a user volume, takes archives in and gives the same files back", async () => {
    const create = await town("volume", "create", "photos", "--quota", "64mb");
    assert.equal(create.code, 0, create.stderr);
    assert.match(create.stdout, /created user\.photos \(quota 64\.0 MiB\)/);
    await assert.rejects(admin.createVolume({ name: "pkg.default.x.y" }), /reserved/);

    const files: Record<string, Buffer> = {
      "album/one.jpg": Buffer.alloc(300_000, 7),
      "album/two.jpg": Buffer.from("two"),
    };
    const tarGz = gzipSync(
      buildTar([
        { path: "album", type: "Directory" },
        ...Object.entries(files).map(([path, body]) => ({ path, body })),
      ]),
    );
    // Streamed from a Node Readable, in small chunks.
    const chunks = Array.from({ length: Math.ceil(tarGz.length / 4096) }, (_, i) =>
      tarGz.subarray(i * 4096, (i + 1) * 4096),
    );
    const fromTar = await admin.uploadVolumeArchive("user.photos", Readable.from(chunks));
    assert.equal(fromTar.format, "tar.gz");
    assert.equal(fromTar.refusedCount, 0);
    assert.equal(fromTar.bytes, 300_003);

    await writeFile(
      join(scratch, "notes.zip"),
      buildZip([{ name: "notes/a.txt", data: "a", deflate: true }]),
    );
    const zip = await town("volume", "upload", "user.photos", "notes.zip");
    assert.equal(zip.code, 0, zip.stderr);
    assert.match(zip.stdout, /unpacked 1 entries .* into user\.photos/);

    const download = await town("volume", "download", "user.photos");
    assert.equal(download.code, 0, download.stderr);
    const back = join(scratch, "back");
    await mkdir(back);
    await unpackArchive(
      Readable.from([await readFile(join(scratch, "user.photos.tar.gz"))]),
      "tar.gz",
      back,
      { stagingRoot: scratch, maxBytes: 10 * MiB },
    );
    assert.deepEqual((await readdir(back)).sort(), ["album", "notes"]);
    for (const [path, body] of Object.entries(files)) {
      assert.deepEqual(await readFile(join(back, path)), body);
    }
    assert.equal(await readFile(join(back, "notes/a.txt"), "utf8"), "a");

    const xz = await town(
      "volume",
      "download",
      "user.photos",
      "part.tar.xz",
      "--format",
      "tar.xz",
      "--path",
      "notes",
    );
    assert.equal(xz.code, 0, xz.stderr);
    const part = join(scratch, "part");
    await mkdir(part);
    await unpackArchive(
      Readable.from([await readFile(join(scratch, "part.tar.xz"))]),
      "tar.xz",
      part,
      { stagingRoot: scratch, maxBytes: MiB },
    );
    assert.deepEqual(await readdir(part), ["notes"]);
    assert.deepEqual(
      await problemOf(admin.downloadVolumeArchive("user.photos", { paths: ["../../etc"] })),
      { status: 400, code: "invalid_argument" },
    );

    const usage = (await admin.volume("user.photos")).usedBytes;
    assert.ok(usage > 0, `usage ${usage}`);
  });

  it("changes a quota and lists snapshots", async () => {
    const quota = await town("volume", "quota", "user.photos", "128mb");
    assert.equal(quota.code, 0, quota.stderr);
    assert.equal((await admin.volume("user.photos")).quota, 128 * MiB);

    const snapshot = await town("volume", "snapshot", "user.photos", "first");
    assert.equal(snapshot.code, 0, snapshot.stderr);
    const listed = await town("volume", "snapshots", "user.photos");
    assert.match(listed.stdout, /^first\s+\d{4}-/m);
    const ls = await town("volume", "ls");
    assert.match(ls.stdout, /^user\.photos\s+user\s+-\s+\S+ \S+\s+128\.0 MiB\s+1$/m);

    // Changed by an upload, then restored: the content is the snapshot's again.
    await admin.uploadVolumeArchive(
      "user.photos",
      new Blob([gzipSync(buildTar([{ path: "later.txt", body: Buffer.from("later") }]))]),
    );
    const restore = await town("volume", "restore", "user.photos", "first");
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /restored user\.photos to snapshot first \(taken \d{4}-/);
    const download = await town("volume", "download", "user.photos", "restored.tar.gz");
    assert.equal(download.code, 0, download.stderr);
    const restored = join(scratch, "restored");
    await mkdir(restored);
    await unpackArchive(
      Readable.from([await readFile(join(scratch, "restored.tar.gz"))]),
      "tar.gz",
      restored,
      { stagingRoot: scratch, maxBytes: 10 * MiB },
    );
    assert.deepEqual((await readdir(restored)).sort(), ["album", "notes"]);
    assert.equal(await readFile(join(restored, "album/two.jpg"), "utf8"), "two");
    const again = await admin.restoreVolumeSnapshot("user.photos", "first");
    assert.equal(again.snapshot.name, "first");
    assert.equal(again.heldApp, null);
    assert.equal((await admin.volume("user.photos")).quota, 128 * MiB);
    assert.deepEqual(await problemOf(admin.restoreVolumeSnapshot("user.photos", "nope")), {
      status: 404,
      code: "not_found",
    });
    assert.deepEqual(await problemOf(admin.restoreVolumeSnapshot("user.photos", "../x")), {
      status: 400,
      code: "invalid_argument",
    });
    await admin.removeVolumeSnapshot("user.photos", "first");
    assert.deepEqual(await admin.volumeSnapshots("user.photos"), []);
  });

  it("refuses hostile entries, lists them and writes nothing outside the volume", async () => {
    await admin.createVolume({ name: "hostile" });
    const outside = join(scratch, "outside.txt");
    await writeFile(
      join(scratch, "hostile.tar"),
      buildTar([
        { path: "ok.txt", body: "fine" },
        { path: "../../../../escape.txt", body: "out" },
        { path: outside, body: "absolute" },
        { path: "link", type: "SymbolicLink", linkpath: "/etc" },
        { path: "link/passwd", body: "through the link" },
        { path: "dev", type: "CharacterDevice" },
      ]),
    );
    const run = await town("volume", "upload", "user.hostile", "hostile.tar");
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /refused 5 entries/);
    for (const path of ["../../../../escape.txt", outside, "link", "link/passwd", "dev"]) {
      assert.ok(run.stderr.includes(`  ${path}: `), `${path} listed in:\n${run.stderr}`);
    }
    await assert.rejects(stat(outside), { code: "ENOENT" });
    await assert.rejects(stat(join(dataDir, "escape.txt")), { code: "ENOENT" });
    await assert.rejects(stat(join(dataDir, "storage", "escape.txt")), { code: "ENOENT" });
    assert.notEqual(await readFile("/etc/passwd", "utf8"), "through the link");
    const volume = join(storageLocations(dataDir).root, "volumes", "user.hostile");
    assert.deepEqual(await readdir(volume), ["ok.txt"]);
  });

  it("answers 413 to an upload over uploads.max_size, declared or streamed", async () => {
    await admin.setSetting("uploads.max_size", "1mb");
    try {
      await admin.createVolume({ name: "big" });
      const big = buildTar([{ path: "big.bin", body: Buffer.alloc(2 * MiB, 1) }]);
      assert.deepEqual(await problemOf(admin.uploadVolumeArchive("user.big", new Blob([big]))), {
        status: 413,
        code: "payload_too_large",
      });
      const chunks = Array.from({ length: 32 }, (_, i) => big.subarray(i * 65536, (i + 1) * 65536));
      assert.deepEqual(
        await problemOf(admin.uploadVolumeArchive("user.big", Readable.from(chunks))),
        {
          status: 413,
          code: "payload_too_large",
        },
      );
      assert.deepEqual(await admin.volume("user.big").then((v) => v.usedBytes < MiB), true);
      // The daemon still answers on fresh connections.
      assert.equal((await admin.status()).state, "ready");
    } finally {
      await admin.setSetting("uploads.max_size", "10gb");
    }
  });

  it("answers 413 to an upload past what is left of the quota, staged outside the volume", async () => {
    await admin.createVolume({ name: "small", quota: "2mb" });
    const first = buildTar([{ path: "one.bin", body: Buffer.alloc(MiB, 1) }]);
    assert.equal((await admin.uploadVolumeArchive("user.small", new Blob([first]))).entries, 1);
    const second = buildTar([{ path: "two.bin", body: Buffer.alloc(1.5 * MiB, 2) }]);
    assert.deepEqual(await problemOf(admin.uploadVolumeArchive("user.small", new Blob([second]))), {
      status: 413,
      code: "payload_too_large",
    });
    const { root } = storageLocations(dataDir);
    assert.deepEqual(await readdir(join(root, "volumes", "user.small")), ["one.bin"]);
    assert.deepEqual(await readdir(join(root, "tmp")), [], "no staging left behind");
  });

  it("lets users read but only administrators change, and audits every change", async () => {
    await admin.createAccount({ username: "bob", password: USER_PASSWORD });
    const bob = new TownClient({ baseUrl: daemon.url });
    bob.token = (await bob.login({ username: "bob", password: USER_PASSWORD })).token;
    assert.ok((await bob.volumes()).items.some((v) => v.name === "user.photos"));
    assert.deepEqual(await problemOf(bob.createVolume({ name: "mine" })), {
      status: 403,
      code: "forbidden",
    });
    assert.deepEqual(await problemOf(bob.uploadVolumeArchive("user.photos", new Blob(["x"]))), {
      status: 403,
      code: "forbidden",
    });
    assert.deepEqual(await problemOf(bob.downloadVolumeArchive("user.photos")), {
      status: 403,
      code: "forbidden",
    });

    const rm = await town("volume", "rm", "user.hostile");
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(await problemOf(admin.volume("user.hostile")), {
      status: 404,
      code: "not_found",
    });
    const audit = await admin.audit({ limit: 500 });
    const actions = audit.items.map((e) => `${e.action} ${e.target} ${e.outcome}`);
    for (const expected of [
      "volume.create user.photos success",
      "volume.upload user.photos success",
      "volume.quota user.photos success",
      "volume.snapshot user.photos success",
      "volume.snapshot.remove user.photos@first success",
      "volume.restore user.photos@first success",
      "volume.upload user.big payload_too_large",
      "volume.remove user.hostile success",
    ]) {
      assert.ok(actions.includes(expected), `${expected} in:\n${actions.join("\n")}`);
    }
  });
});
