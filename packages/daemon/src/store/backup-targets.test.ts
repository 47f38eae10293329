import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BackupTargets } from "./backup-targets.js";
import { openDatabase } from "./database.js";
import { expectTownError } from "../../../format/test/support.js";

describe("backup targets store", () => {
  it("adds, lists, records status and removes targets; a taken name is a conflict", async () => {
    let now = 1_700_000_000_000;
    const targets = new BackupTargets(openDatabase(":memory:"), () => now);
    const usb = targets.add({
      name: "usb",
      kind: "btrfs",
      location: "/mnt/usb",
      password: null,
      env: {},
    });
    assert.deepEqual(usb, {
      name: "usb",
      kind: "btrfs",
      location: "/mnt/usb",
      password: null,
      env: {},
      status: null,
      createdAt: now,
    });
    now += 1000;
    targets.add({
      name: "offsite",
      kind: "restic",
      location: "s3:https://s3.example/bucket",
      password: "correct horse",
      env: { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret" },
    });
    await expectTownError(
      Promise.resolve().then(() =>
        targets.add({ name: "usb", kind: "path", location: "/x", password: null, env: {} }),
      ),
      "conflict",
      /exists already/,
    );
    assert.deepEqual(
      targets.list().map((target) => target.name),
      ["offsite", "usb"],
    );
    const offsite = targets.get("offsite");
    assert.equal(offsite?.password, "correct horse");
    assert.deepEqual(offsite.env, { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret" });

    now += 1000;
    assert.equal(targets.recordStatus("usb", false, "the disk is gone"), true);
    assert.deepEqual(targets.get("usb")?.status, { ok: false, error: "the disk is gone", at: now });
    now += 1000;
    assert.equal(targets.recordStatus("usb", true, "ignored when ok"), true);
    assert.deepEqual(targets.get("usb")?.status, { ok: true, error: null, at: now });
    assert.equal(targets.recordStatus("absent", true, null), false);

    assert.equal(targets.remove("usb"), true);
    assert.equal(targets.remove("usb"), false);
    assert.equal(targets.get("usb"), undefined);
    assert.throws(() => targets.require("usb"), /no backup target "usb"/);
  });
});
