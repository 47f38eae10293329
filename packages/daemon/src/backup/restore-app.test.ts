/**
 * Which part of a backup is an app's: its own backup, or its apps' entry
 * and volumes in a whole-box one (the other apps' and people's volumes left
 * out), with its repository's URL from the box's.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileExample } from "../../test/runtime/examples.js";
import { appManifestOf } from "./restore-app.js";
import { planVolumes } from "./restore-points.js";
import { MANIFEST_FORMAT, type BackupManifest } from "./types.js";

const guestbook = compileExample("guestbook", "1.0");
const hello = compileExample("hello", "1.0");
const owner = { uid: 0, gid: 0 };

function boxed(plan: typeof guestbook) {
  return {
    repo: "default",
    name: plan.name,
    version: "1.0",
    definitionHash: "abc",
    answers: plan.answers,
    plan,
    running: true,
    exposures: {},
  };
}

const box: BackupManifest = {
  format: MANIFEST_FORMAT,
  id: "20261204T030000Z-schedule",
  box: "0a1b2c",
  subject: "box",
  app: null,
  desired: {
    apps: [boxed(guestbook), boxed(hello)],
    repositories: [{ name: "default", url: "https://git.example/town.git", credentials: false }],
    settings: {},
  },
  volumes: [...planVolumes(guestbook), ...planVolumes(hello), "user.photos"].map((name) => ({
    name,
    quota: null,
    owner,
  })),
  createdAt: 1,
};

describe("an app's part of a backup", () => {
  it("takes one app's entry and volumes out of a whole-box backup", () => {
    const part = appManifestOf(box, "default/guestbook");
    assert.ok(part);
    assert.equal(part.subject, "default/guestbook");
    assert.equal(part.id, box.id);
    assert.deepEqual(
      part.volumes.map((volume) => volume.name),
      planVolumes(guestbook),
    );
    assert.equal(part.app.repoUrl, "https://git.example/town.git");
    assert.deepEqual(part.app.answers, guestbook.answers);
    assert.equal(appManifestOf(box, "default/nope"), undefined);
  });

  it("is an app's own backup only for that app", () => {
    const [first] = planVolumes(hello);
    assert.ok(first);
    const own: BackupManifest = {
      format: MANIFEST_FORMAT,
      id: box.id,
      box: box.box,
      subject: "default/hello",
      app: { ...boxed(hello), repoUrl: null },
      volumes: [{ name: first, quota: null, owner }],
      createdAt: 1,
    };
    assert.equal(appManifestOf(own, "default/hello")?.app.name, "hello");
    assert.equal(appManifestOf(own, "default/guestbook"), undefined);
  });

  it("refuses a box entry whose plan cannot be read, rather than restoring it without data", () => {
    const broken = structuredClone(box);
    const [first] = broken.desired?.apps ?? [];
    assert.ok(first);
    first.plan = { dependencies: 7 } as never;
    assert.throws(() => appManifestOf(broken, "default/guestbook"), /plan of default\/guestbook/);
  });
});
