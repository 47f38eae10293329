/**
 * The volumes service over a real directory driver in a temporary directory
 * (fast, no root): kinds and owning apps, user volumes and reserved names,
 * refusals, quotas, snapshots, uploads (limits, hostile entries, holding a
 * package volume's app) and downloads.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { TownError } from "@townos/format";
import { expectTownError } from "../../../format/test/support.js";
import { compileExample } from "../../test/runtime/examples.js";
import { buildTar, buildZip } from "../../test/storage/archives.js";
import { unpackArchive } from "../storage/archive.js";
import { DirectoryDriver } from "../storage/directory.js";
import type { CreateVolumeOptions } from "../storage/driver.js";
import { packageVolumeName, uninstalledVolumeName, userVolumeName } from "../storage/names.js";
import type { SettingKey } from "../store/settings.js";
import { volumeUsers, Volumes, type VolumeHolder } from "./volumes.js";

const MiB = 1024 * 1024;
const PKG = packageVolumeName("default", "guestbook", "www");

class FakeHolder implements VolumeHolder {
  readonly events: string[] = [];
  holdVolume(volumeName: string): Promise<() => Promise<void>> {
    this.events.push(`hold ${volumeName}`);
    return Promise.resolve(() => {
      this.events.push(`release ${volumeName}`);
      return Promise.resolve();
    });
  }
}

describe("Volumes", () => {
  let scratch: string;
  let driver: DirectoryDriver;
  let holder: FakeHolder;
  let settings: Map<SettingKey, number>;
  let users: Map<string, string>;
  let volumes: Volumes;
  let createOptions: (CreateVolumeOptions | undefined)[];

  beforeEach(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-volumes-"));
    driver = await DirectoryDriver.open(join(scratch, "storage"));
    createOptions = [];
    const create = driver.create.bind(driver);
    driver.create = (name, options) => {
      createOptions.push(options);
      return create(name, options);
    };
    holder = new FakeHolder();
    settings = new Map<SettingKey, number>([
      ["storage.default_quota", 7 * MiB],
      ["uploads.max_size", 4 * MiB],
      ["uploads.unpack_timeout", 60],
    ]);
    users = new Map([[PKG, "default/guestbook"]]);
    volumes = new Volumes({
      settings: { number: (key) => settings.get(key) ?? 0 },
      volumeUsers: () => users,
      holder,
    });
    volumes.attach({ driver, mode: "directory", reason: "Volumes are plain directories." });
  });

  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("answers unavailable with the reason until storage is attached", async () => {
    const waiting = new Volumes({
      settings: { number: () => 0 },
      volumeUsers: () => new Map(),
      holder,
    });
    waiting.setUnavailable("mkfs.btrfs is not installed");
    const error = await expectTownError(waiting.list(), "unavailable", /mkfs\.btrfs/);
    assert.equal(error.retryAfter, 5);
    await assert.rejects(waiting.info(), TownError);
    waiting.attach({ driver, mode: "directory", reason: "plain" });
    waiting.setUnavailable("ignored once attached");
    assert.deepEqual(await waiting.list(), []);
  });

  it("says plainly that directories do not enforce quotas, and how full the disk is", async () => {
    const info = await volumes.info();
    assert.equal(info.mode, "directory");
    assert.ok(info.disk && info.disk.freeBytes > 0 && info.disk.freeBytes <= info.disk.totalBytes);
    assert.equal(info.capabilities.quotas, false);
    assert.match(info.notes.join("\n"), /Quotas are NOT enforced/);
  });

  it("makes user volumes with the default quota, refusing reserved and taken names", async () => {
    const view = await volumes.create("photos");
    assert.equal(view.name, "user.photos");
    assert.equal(view.kind, "user");
    assert.equal(view.package, null);
    assert.equal(createOptions[0]?.quota, 7 * MiB);
    await volumes.create("music", "20mb");
    assert.equal(createOptions[1]?.quota, 20 * MiB);
    for (const reserved of ["pkg.default.x.y", "uninstalled.a", "snap.x", "user.x", "PKG.x"]) {
      await expectTownError(volumes.create(reserved), "invalid_argument", /reserved/);
    }
    await expectTownError(volumes.create("../etc"), "invalid_argument", /does not match/);
    await expectTownError(volumes.create("photos"), "conflict", /exists already/);
    await expectTownError(volumes.create("tiny", 1000), "invalid_argument", /at least 1 MiB/);
  });

  it("lists every volume with its kind, app, usage and snapshots", async () => {
    const aside = uninstalledVolumeName(
      packageVolumeName("default", "hello", "www"),
      new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    );
    await driver.create(PKG);
    await driver.create(aside);
    await volumes.create("photos");
    await volumes.snapshot("user.photos", "first");
    const list = await volumes.list();
    assert.deepEqual(
      list.map((v) => [v.name, v.kind, v.usedBy, v.snapshots]),
      [
        [PKG, "package", "default/guestbook", 0],
        [aside, "uninstalled", null, 0],
        ["user.photos", "user", null, 1],
      ],
    );
    assert.deepEqual(list[0]?.package, { repo: "default", instance: "guestbook", volume: "www" });
    assert.equal(list[1]?.uninstalledAt, Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.equal(typeof list[2]?.usedBytes, "number");
    assert.deepEqual(list[2]?.owner, { uid: process.getuid?.(), gid: process.getgid?.() });
  });

  it("removes user and uninstalled volumes, refusing package volumes of installed apps", async () => {
    const aside = uninstalledVolumeName(PKG, new Date());
    await driver.create(PKG);
    await driver.create(aside);
    await volumes.create("photos");
    await expectTownError(volumes.remove(PKG), "conflict", /installed app default\/guestbook/);
    assert.ok(await driver.exists(PKG));
    await volumes.remove("user.photos");
    await volumes.remove(aside);
    assert.deepEqual(
      (await driver.list()).map((v) => v.name),
      [PKG],
    );
    await expectTownError(volumes.remove("user.photos"), "not_found", /no volume/);
    await expectTownError(volumes.remove("../x"), "invalid_argument", /not a valid volume name/);
    // Once its app is gone, nothing holds it.
    users.clear();
    await volumes.remove(PKG);
    assert.equal(await driver.exists(PKG), false);
  });

  it("changes quotas given in bytes or with units", async () => {
    await volumes.create("photos");
    const quotas: (number | null)[] = [];
    driver.setQuota = (_name, bytes) => {
      quotas.push(bytes);
      return Promise.resolve();
    };
    await volumes.setQuota("user.photos", "1gb");
    await volumes.setQuota("user.photos", null);
    assert.deepEqual(quotas, [1024 * MiB, null]);
    await expectTownError(volumes.setQuota("user.photos", "lots"), "invalid_argument", /quota/);
    await expectTownError(volumes.setQuota("user.none", 2 * MiB), "not_found", /no volume/);
  });

  it("takes, lists and deletes snapshots", async () => {
    await volumes.create("photos");
    const snapshot = await volumes.snapshot("user.photos");
    assert.match(snapshot.name, /^\d{8}T\d{6}Z$/);
    await volumes.snapshot("user.photos", "before-upgrade");
    await expectTownError(volumes.snapshot("user.photos", "before-upgrade"), "conflict", /already/);
    await expectTownError(volumes.snapshot("user.photos", "../x"), "invalid_argument", /snapshot/);
    assert.deepEqual(
      (await volumes.snapshots("user.photos")).map((s) => s.name),
      [snapshot.name, "before-upgrade"].sort(),
    );
    await volumes.removeSnapshot("user.photos", "before-upgrade");
    await expectTownError(
      volumes.removeSnapshot("user.photos", "before-upgrade"),
      "not_found",
      /no snapshot/,
    );
    await expectTownError(volumes.snapshots("user.none"), "not_found", /no volume/);
  });

  it("unpacks an upload into a user volume, listing refused entries and holding nothing", async () => {
    await volumes.create("photos");
    const archive = gzipSync(
      buildTar([
        { path: "album/one.txt", body: "one" },
        { path: "../escape.txt", body: "out" },
        { path: "link", type: "SymbolicLink", linkpath: "/etc/passwd" },
      ]),
    );
    const result = await volumes.upload("user.photos", Readable.from([archive]));
    assert.equal(result.format, "tar.gz");
    assert.equal(result.refusedCount, 2);
    assert.deepEqual(result.refused.map((r) => r.path).sort(), ["../escape.txt", "link"]);
    const path = driver.path("user.photos");
    assert.equal(await readFile(join(path, "album/one.txt"), "utf8"), "one");
    assert.deepEqual(await readdir(scratch), ["storage"]);
    assert.deepEqual(holder.events, []);
  });

  it("stops a package volume's app during the unpack and starts it after, even on failure", async () => {
    await driver.create(PKG);
    const result = await volumes.upload(
      PKG,
      Readable.from([buildZip([{ name: "index.html", data: "hi" }])]),
    );
    assert.equal(result.heldApp, "default/guestbook");
    assert.deepEqual(holder.events, [`hold ${PKG}`, `release ${PKG}`]);
    await expectTownError(
      volumes.upload(PKG, Readable.from([Buffer.from("not an archive at all")])),
      "invalid_argument",
      /not a tar/,
    );
    assert.deepEqual(holder.events.slice(2), [`hold ${PKG}`, `release ${PKG}`]);
  });

  it("restores snapshots, stopping a package volume's app meanwhile and no other", async () => {
    const restore = driver.restoreSnapshot.bind(driver);
    driver.restoreSnapshot = (name, snapshot) => {
      holder.events.push(`restore ${name}@${snapshot}`);
      return restore(name, snapshot);
    };
    await volumes.create("photos");
    const path = driver.path("user.photos");
    await writeFile(join(path, "a.txt"), "a");
    await volumes.snapshot("user.photos", "first");
    await writeFile(join(path, "a.txt"), "changed");
    const result = await volumes.restore("user.photos", "first");
    assert.equal(result.volume, "user.photos");
    assert.equal(result.snapshot.name, "first");
    assert.equal(result.heldApp, null);
    assert.equal(await readFile(join(path, "a.txt"), "utf8"), "a");
    assert.deepEqual(holder.events, ["restore user.photos@first"]);

    await driver.create(PKG);
    await volumes.snapshot(PKG, "before");
    holder.events.length = 0;
    assert.equal((await volumes.restore(PKG, "before")).heldApp, "default/guestbook");
    assert.deepEqual(holder.events, [`hold ${PKG}`, `restore ${PKG}@before`, `release ${PKG}`]);
    holder.events.length = 0;
    await expectTownError(volumes.restore(PKG, "nope"), "not_found", /no snapshot named nope/);
    await expectTownError(volumes.restore("user.none", "first"), "not_found", /no volume/);
    await expectTownError(volumes.restore(PKG, "../x"), "invalid_argument", /snapshot/);
    assert.deepEqual(holder.events, [], "nothing held for a restore refused up front");
  });

  it("refuses uploads over uploads.max_size, declared or not, before holding anything", async () => {
    await driver.create(PKG);
    const input = Readable.from([Buffer.alloc(10)]);
    await expectTownError(
      volumes.upload(PKG, input, { declaredBytes: 4 * MiB + 1 }),
      "payload_too_large",
      /uploads\.max_size/,
    );
    assert.ok(input.destroyed);
    assert.deepEqual(holder.events, []);
    await volumes.create("big");
    const large = buildTar([{ path: "big.bin", body: Buffer.alloc(5 * MiB, 1) }]);
    await expectTownError(
      volumes.upload("user.big", Readable.from([large])),
      "payload_too_large",
      /larger than/,
    );
    assert.deepEqual(await readdir(driver.path("user.big")), []);
    await expectTownError(volumes.upload("user.none", Readable.from([])), "not_found", /no volume/);
  });

  it("streams a volume or chosen paths out as an archive", async () => {
    await volumes.create("photos");
    await volumes.upload(
      "user.photos",
      Readable.from([
        buildTar([
          { path: "a/one.txt", body: "one" },
          { path: "b/two.txt", body: "two" },
        ]),
      ]),
    );
    const { stream, filename } = await volumes.download("user.photos", {
      format: "tar.gz",
      paths: ["b"],
    });
    assert.equal(filename, "user.photos.tar.gz");
    await driver.create(userVolumeName("out"));
    await unpackArchive(stream, "tar.gz", driver.path("user.out"), {
      stagingRoot: driver.stagingRoot,
      maxBytes: MiB,
    });
    assert.deepEqual(await readdir(driver.path("user.out")), ["b"]);
    assert.equal(await readFile(join(driver.path("user.out"), "b/two.txt"), "utf8"), "two");
    await expectTownError(
      volumes.download("user.photos", { format: "tar.gz", paths: ["../etc"] }),
      "invalid_argument",
      /\.\./,
    );
    await expectTownError(
      volumes.download("user.none", { format: "tar.gz" }),
      "not_found",
      /no volume/,
    );
  });
});

describe("volumeUsers", () => {
  it("maps every package volume of an app and its dependencies to the app", () => {
    const plan = compileExample("guestbook", "1.0");
    const users = volumeUsers([
      { repo: "default", name: "guestbook", plan },
      { repo: "default", name: "old", plan: null },
    ]);
    assert.deepEqual(
      [...users].sort(),
      [
        [packageVolumeName("default", "guestbook", "www"), "default/guestbook"],
        [packageVolumeName("default", "guestbook", "www-uploads"), "default/guestbook"],
        [packageVolumeName("default", "guestbook--store", "data"), "default/guestbook"],
      ].sort(),
    );
  });
});
