import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MAX_VOLUME_NAME_BYTES } from "@townos/api";
import { TownError } from "@townos/format";
import {
  checkSnapshotName,
  checkVolumeName,
  MAX_INSTANCE_LENGTH,
  MAX_REPO_LENGTH,
  MAX_VOLUME_PART_LENGTH,
  packageVolumeName,
  parseVolumeName,
  printable,
  reattachedVolumeName,
  snapshotPath,
  timestamp,
  uninstalledVolumeName,
  userVolumeName,
  volumePath,
} from "./names.js";

function invalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TownError, String(error));
    assert.equal(error.code, "invalid_argument");
    assert.match(error.message, pattern);
    return true;
  });
}

describe("volume names", () => {
  it("composes package volumes and reads them back, dots allowed in the volume part", () => {
    const name = packageVolumeName("default", "nextcloud", "data.v2");
    assert.equal(name, "pkg.default.nextcloud.data.v2");
    assert.deepEqual(parseVolumeName(name), {
      kind: "package",
      repo: "default",
      instance: "nextcloud",
      volume: "data.v2",
    });
  });

  it("composes user volumes and refuses names that look like the system's", () => {
    assert.equal(userVolumeName("Photos_2024"), "user.Photos_2024");
    assert.deepEqual(parseVolumeName("user.Photos_2024"), { kind: "user", name: "Photos_2024" });
    for (const reserved of ["pkg.x", "PKG.x", "snap.daily", "uninstalled.a", "user.b"]) {
      invalid(() => userVolumeName(reserved), /reserved/);
    }
  });

  it("moves package volumes aside as uninstalled with a UTC timestamp, and back", () => {
    const at = new Date("2024-03-09T07:05:03.999Z");
    const aside = uninstalledVolumeName("pkg.default.gitea.repos", at);
    assert.equal(aside, "uninstalled.default.gitea.repos.20240309T070503Z");
    const parsed = parseVolumeName(aside);
    assert.ok(parsed?.kind === "uninstalled");
    assert.equal(parsed.uninstalledAt.toISOString(), "2024-03-09T07:05:03.000Z");
    assert.equal(reattachedVolumeName(aside), "pkg.default.gitea.repos");
    invalid(() => uninstalledVolumeName("user.photos", at), /not a package volume/);
    invalid(() => reattachedVolumeName("pkg.default.gitea.repos"), /not an uninstalled volume/);
    invalid(() => uninstalledVolumeName("pkg.a.b.c", new Date(Number.NaN)), /not a valid date/);
  });

  it("keeps a dotted volume part apart from the timestamp", () => {
    const aside = uninstalledVolumeName("pkg.r.i.a.b.c", new Date(Date.UTC(2030, 0, 2, 3, 4, 5)));
    const parsed = parseVolumeName(aside);
    assert.deepEqual(parsed && parsed.kind === "uninstalled" ? parsed.volume : undefined, "a.b.c");
  });

  it("refuses every bad part", () => {
    const cases: [string, string, string, RegExp][] = [
      ["Default", "app", "data", /repository name/],
      ["de.fault", "app", "data", /repository name/],
      ["-repo", "app", "data", /repository name/],
      ["repo", "app/x", "data", /instance name/],
      ["repo", "app", "", /must not be empty/],
      ["repo", "app", "../etc", /volume name/],
      ["repo", "app", "a..b", /'\.\.'/],
      ["repo", "app", "data\n", /volume name/],
      ["repo", "app", ".hidden", /volume name/],
      ["repo", "app", "x".repeat(MAX_VOLUME_PART_LENGTH + 1), /longer than/],
      ["r".repeat(MAX_REPO_LENGTH + 1), "app", "data", /longer than/],
      ["repo", "i".repeat(MAX_INSTANCE_LENGTH + 1), "data", /longer than/],
    ];
    for (const [repo, instance, volume, pattern] of cases) {
      invalid(() => packageVolumeName(repo, instance, volume), pattern);
    }
    invalid(() => userVolumeName("a/b"), /does not match/);
    invalid(() => userVolumeName("bell\u0007"), /\\u0007/);
  });

  it("fits the longest names in one file name", () => {
    const name = packageVolumeName(
      "r".repeat(MAX_REPO_LENGTH),
      "i".repeat(MAX_INSTANCE_LENGTH),
      "v".repeat(MAX_VOLUME_PART_LENGTH),
    );
    const aside = uninstalledVolumeName(name, new Date());
    assert.ok(Buffer.byteLength(aside) <= MAX_VOLUME_NAME_BYTES, `${aside.length} bytes`);
    assert.equal(parseVolumeName(aside)?.kind, "uninstalled");
  });

  it("parses only what it composes", () => {
    for (const name of [
      "",
      "pkg.",
      "pkg.repo",
      "pkg.repo.app",
      "pkg.repo.app.",
      "pkg.Repo.app.data",
      "user.",
      "user.a/b",
      "snap.x",
      "tmp",
      ".town-staging-1",
      "uninstalled.r.i.v",
      "uninstalled.r.i.v.20241301T000000Z",
      "uninstalled.r.i.v.20240230T000000Z",
      "uninstalled.r.i.v.2024-01-01",
      `user.${"x".repeat(300)}`,
    ]) {
      assert.equal(parseVolumeName(name), undefined, name);
    }
    invalid(() => checkVolumeName("tmp"), /not a valid volume name/);
  });

  it("formats timestamps to the second", () => {
    assert.equal(timestamp(new Date("1999-12-31T23:59:59.5Z")), "19991231T235959Z");
  });
});

describe("paths of volumes and snapshots", () => {
  it("derives them under the root and validates both names", () => {
    assert.equal(volumePath("/data/storage", "user.music"), "/data/storage/volumes/user.music");
    assert.equal(
      snapshotPath("/data/storage", "user.music", "before-upgrade-1.2"),
      "/data/storage/snapshots/user.music/before-upgrade-1.2",
    );
    invalid(() => volumePath("/data", "../etc"), /not a valid volume name/);
    invalid(() => snapshotPath("/data", "user.music", "../x"), /snapshot name/);
    invalid(() => {
      checkSnapshotName("");
    }, /must not be empty/);
    invalid(() => {
      checkSnapshotName("a".repeat(65));
    }, /longer than/);
  });
});

describe("printable", () => {
  it("escapes control characters and shortens", () => {
    assert.equal(printable("a\nb\u009b"), "a\\u000ab\\u009b");
    assert.equal(printable("x".repeat(10), 4), "xxxx…");
  });
});
