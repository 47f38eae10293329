import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MANIFEST_FORMAT, type BackupManifest } from "../types.js";
import { checkTargetLocation, redactLocation } from "./index.js";
import { checkPut, encodeStored, parseStored } from "./stored.js";

const manifest: BackupManifest = {
  format: MANIFEST_FORMAT,
  id: "20260101T000000Z-manual",
  box: "box",
  subject: "default/wiki",
  app: {
    repo: "default",
    name: "wiki",
    version: "1.0.0",
    definitionHash: "abc",
    answers: { admin: "alice" },
    plan: null,
    repoUrl: null,
  },
  volumes: [{ name: "pkg.default.wiki.data", quota: null, owner: { uid: 1000, gid: 1000 } }],
  createdAt: 1,
};

describe("backup target locations", () => {
  it("takes absolute normalised directories, and restic backends", () => {
    assert.equal(checkTargetLocation("btrfs", "/mnt/usb"), "/mnt/usb");
    assert.equal(checkTargetLocation("restic", "/srv/repo"), "/srv/repo");
    assert.equal(checkTargetLocation("restic", "sftp:me@host:/srv/repo"), "sftp:me@host:/srv/repo");
    assert.equal(
      checkTargetLocation("restic", "s3:https://s3.example/bucket"),
      "s3:https://s3.example/bucket",
    );
    for (const [kind, location] of [
      ["path", "relative/dir"],
      ["path", "/mnt/../etc"],
      ["path", "/mnt/usb/"],
      ["path", "/"],
      ["btrfs", ""],
      ["btrfs", "/mnt/usb\nx"],
      ["btrfs", `/${"a".repeat(5000)}`],
      ["path", "sftp:me@host:/srv"],
      ["restic", "rclone:remote:x"],
      ["restic", "ftp://host/x"],
    ] as const) {
      assert.throws(() => checkTargetLocation(kind, location), /backup target location/, location);
    }
  });

  it("never repeats a password in a URL", () => {
    assert.equal(
      redactLocation("rest:https://user:s3cret@host:8000/repo"),
      "rest:https://user:***@host:8000/repo",
    );
    assert.equal(redactLocation("/srv/repo"), "/srv/repo");
    assert.throws(
      () => checkTargetLocation("restic", "https://user:s3cret@host/repo"),
      (error: Error) => !error.message.includes("s3cret"),
    );
  });
});

describe("stored backups", () => {
  it("reads back what was written, and nothing malformed", () => {
    const stored = { manifest, bytes: 10, incremental: true };
    assert.deepEqual(parseStored(encodeStored(stored)), stored);
    const bad = (change: (copy: Record<string, unknown>) => void) => {
      const copy = structuredClone(stored) as unknown as Record<string, unknown>;
      change(copy);
      return parseStored(JSON.stringify(copy));
    };
    assert.equal(
      bad((copy) => (copy["bytes"] = -1)),
      undefined,
    );
    assert.equal(
      bad((copy) => (copy["incremental"] = "yes")),
      undefined,
    );
    const inManifest = (key: string, value: unknown) =>
      bad((copy) => ((copy["manifest"] as Record<string, unknown>)[key] = value));
    assert.equal(inManifest("id", "../escape"), undefined);
    assert.equal(inManifest("format", 2), undefined);
    assert.equal(
      inManifest("volumes", [{ name: "../../etc", quota: null, owner: { uid: 0, gid: 0 } }]),
      undefined,
    );
    assert.equal(inManifest("volumes", []), undefined);
    assert.equal(inManifest("app", { repo: "x" }), undefined);
    assert.equal(parseStored("not json"), undefined);
    assert.equal(parseStored(`"${"x".repeat(5 * 1024 * 1024)}"`), undefined);
  });

  it("reads back a whole box's desired state, which may come without volumes, and refuses a malformed one", () => {
    const desired: NonNullable<BackupManifest["desired"]> = {
      apps: [
        {
          ...{ repo: "default", name: "wiki", version: "1.0.0", definitionHash: "abc" },
          answers: {},
          plan: null,
          running: false,
          exposures: { "8080": "lan" },
        },
      ],
      repositories: [{ name: "default", url: "https://git.example/r.git", credentials: false }],
      settings: { "dns.tld": "lan", "uploads.max_size": 1024 },
    };
    const box = { ...manifest, subject: "box", app: null, desired, volumes: [] };
    const stored = { manifest: box, bytes: 0, incremental: false };
    assert.deepEqual(parseStored(encodeStored(stored)), stored);
    const withDesired = (change: (copy: Record<string, unknown>) => void) => {
      const copy = structuredClone(desired) as unknown as Record<string, unknown>;
      change(copy);
      return parseStored(encodeStored({ ...stored, manifest: { ...box, desired: copy as never } }));
    };
    const [app] = desired.apps;
    assert.ok(app);
    assert.equal(
      withDesired((copy) => (copy["apps"] = [{ ...app, exposures: { "80": "world" } }])),
      undefined,
    );
    assert.equal(
      withDesired((copy) => (copy["apps"] = [{ ...app, running: "yes" }])),
      undefined,
    );
    assert.equal(
      withDesired((copy) => (copy["repositories"] = [{ name: "default" }])),
      undefined,
    );
    assert.equal(
      withDesired((copy) => (copy["settings"] = { "dns.tld": { nested: true } })),
      undefined,
    );
    // Without its desired state, a backup with no volume is nothing.
    assert.equal(
      parseStored(encodeStored({ ...stored, manifest: { ...manifest, volumes: [] } })),
      undefined,
    );
  });

  it("checks that the sources are the manifest's volumes and snapshot", () => {
    const source = {
      volume: "pkg.default.wiki.data",
      snapshot: manifest.id,
      path: "/x",
      earlier: [],
    };
    checkPut("usb", manifest, [source]);
    assert.throws(() => {
      checkPut("usb", manifest, []);
    }, /not the manifest's volumes/);
    assert.throws(() => {
      checkPut("usb", manifest, [{ ...source, snapshot: "other" }]);
    }, /snapshot/);
    assert.throws(() => {
      checkPut("usb", manifest, [{ ...source, earlier: [{ name: "../x", path: "/y" }] }]);
    }, /snapshot name/);
  });
});
