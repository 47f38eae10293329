import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BackupRunView, RestoreBoxResult, RestorePointView } from "@townos/client";
import {
  agoText,
  BOX,
  boxRestoreParts,
  EMPTY_TARGET_FORM,
  KEEP_PRESETS,
  keepPresetIndex,
  keepWords,
  policyBody,
  policyForm,
  restorePointSizeText,
  rollbackPoint,
  runStatus,
  subjectWords,
  targetBody,
} from "../src/backups.js";

const NOW = Date.UTC(2026, 11, 3, 22, 0, 0);
const HOUR = 3_600_000;

function point(id: string, reason: RestorePointView["reason"], hoursAgo: number): RestorePointView {
  return {
    id,
    subject: "main/wiki",
    app: { repo: "main", name: "wiki" },
    reason,
    version: "1.0.0",
    answers: {},
    quiesce: "none",
    createdAt: NOW - hoursAgo * HOUR,
    volumes: [{ volume: "pkg.main.wiki.data", snapshot: id, present: true, exclusiveBytes: null }],
  };
}

describe("the policy dialog", () => {
  it("offers hourly for a day, daily for a week, weekly for a month first", () => {
    assert.deepEqual(KEEP_PRESETS[0]?.keep, { hourly: 24, daily: 7, weekly: 4 });
    assert.equal(keepWords({ hourly: 24, daily: 7, weekly: 4 }), "24 hourly, 7 daily, 4 weekly");
    assert.equal(keepWords({ last: 0 }), "nothing");
  });

  it("makes the API's body from the typed counts, empty ones left out", () => {
    const form = policyForm(" main/wiki ", "0 * * * *", { hourly: 24, daily: 7 }, ["disk"]);
    assert.deepEqual(policyBody(form), {
      subject: "main/wiki",
      schedule: "0 * * * *",
      keep: { hourly: 24, daily: 7 },
      targets: ["disk"],
    });
    assert.equal(keepPresetIndex({ hourly: 24, daily: 7, weekly: 4 }), 0);
    assert.equal(keepPresetIndex({ hourly: 24 }), -1);
    assert.equal(keepPresetIndex(null), -1);
  });

  it("names the first thing to fix", () => {
    const form = policyForm("main/wiki", "0 * * * *", { daily: 7 }, []);
    assert.deepEqual(policyBody({ ...form, subject: " " }), { missing: "backups.missing.subject" });
    assert.deepEqual(policyBody({ ...form, schedule: "" }), {
      missing: "backups.missing.schedule",
    });
    assert.deepEqual(policyBody({ ...form, keep: { ...form.keep, daily: "seven" } }), {
      missing: "backups.missing.count",
    });
    assert.deepEqual(policyBody({ ...form, keep: { ...form.keep, daily: "1001" } }), {
      missing: "backups.missing.count",
    });
    assert.deepEqual(policyBody({ ...form, keep: { ...form.keep, daily: "0" } }), {
      missing: "backups.missing.keep",
    });
  });
});

describe("the add-target dialog", () => {
  it("sends a folder target without restic's fields", () => {
    assert.deepEqual(
      targetBody({ ...EMPTY_TARGET_FORM, name: "usb", location: " /mnt/usb ", password: "x" }),
      { name: "usb", kind: "path", location: "/mnt/usb" },
    );
  });

  it("lets the daemon make a restic password, or takes one of 8 characters or more", () => {
    const restic = {
      ...EMPTY_TARGET_FORM,
      name: "cloud",
      kind: "restic" as const,
      location: "s3:h/b",
    };
    assert.deepEqual(targetBody(restic), { name: "cloud", kind: "restic", location: "s3:h/b" });
    assert.deepEqual(targetBody({ ...restic, password: "short" }), {
      missing: "backups.missing.password",
    });
    assert.deepEqual(
      targetBody({ ...restic, password: "long enough", env: "AWS_ACCESS_KEY_ID=a=b\n\n" }),
      {
        name: "cloud",
        kind: "restic",
        location: "s3:h/b",
        password: "long enough",
        env: { AWS_ACCESS_KEY_ID: "a=b" },
      },
    );
    assert.deepEqual(targetBody({ ...restic, env: "lower=1" }), { missing: "backups.missing.env" });
  });

  it("refuses a name the API would", () => {
    for (const name of ["", "Disk", "-a", "a b"]) {
      assert.deepEqual(targetBody({ ...EMPTY_TARGET_FORM, name, location: "/x" }), {
        missing: "backups.missing.name",
      });
    }
    assert.deepEqual(targetBody({ ...EMPTY_TARGET_FORM, name: "a" }), {
      missing: "backups.missing.location",
    });
  });
});

describe("restore points and runs in words", () => {
  it("rolls back to the newest point taken before an upgrade", () => {
    const points = [
      point("old-upgrade", "upgrade", 30),
      point("manual", "manual", 1),
      point("new-upgrade", "upgrade", 5),
    ];
    assert.equal(rollbackPoint(points)?.id, "new-upgrade");
    assert.equal(rollbackPoint([point("m", "manual", 1)]), undefined);
  });

  it("sums what only the point holds, or says it cannot tell", () => {
    const p = point("p", "manual", 1);
    assert.equal(restorePointSizeText(p), "–");
    assert.equal(
      restorePointSizeText({
        ...p,
        volumes: [
          { ...p.volumes[0], volume: "a", snapshot: "p", present: true, exclusiveBytes: 1024 },
          { volume: "b", snapshot: "p", present: true, exclusiveBytes: 512 },
        ],
      }),
      "1.5 KB",
    );
  });

  it("says how long ago, or in how long", () => {
    assert.equal(agoText(NOW - 2 * HOUR, NOW), "2 h ago");
    assert.equal(agoText(NOW + 30 * 60_000, NOW), "in 30 min");
    assert.equal(agoText(NOW, NOW), "just now");
  });

  it("shows a run's step, size or failure", () => {
    const run: BackupRunView = {
      id: 1,
      subject: "main/wiki",
      target: "usb",
      trigger: "manual",
      state: "running",
      step: "sending pkg.main.wiki.data (40 %)",
      error: null,
      restorePoint: null,
      bytes: null,
      startedAt: NOW,
      finishedAt: null,
    };
    assert.deepEqual(runStatus(run), {
      badge: "starting",
      label: "running",
      detail: "sending pkg.main.wiki.data (40 %)",
    });
    assert.deepEqual(runStatus({ ...run, state: "ok", bytes: 2048 }), {
      badge: "running",
      label: "done",
      detail: "2 KB",
    });
    assert.equal(runStatus({ ...run, state: "failed", error: "gone" }).detail, "gone");
  });
});

describe("the whole box", () => {
  it("is named in words wherever a subject is shown, other subjects as they are", () => {
    assert.equal(subjectWords(BOX), "Whole box");
    assert.equal(subjectWords("main/wiki"), "main/wiki");
    assert.equal(subjectWords("user.ann.photos"), "user.ann.photos");
  });

  it("is a policy's subject the dialog can send", () => {
    const form = policyForm(BOX, "0 3 * * *", { daily: 7 }, ["usb"]);
    assert.deepEqual(policyBody(form), {
      subject: "box",
      schedule: "0 3 * * *",
      keep: { daily: 7 },
      targets: ["usb"],
    });
  });

  it("lists a restore part by part, failures marked with why", () => {
    const result: RestoreBoxResult = {
      backup: {
        id: "20261203T030000Z-schedule",
        target: "usb",
        subject: BOX,
        app: null,
        createdAt: NOW,
        volumes: ["user.ann.photos"],
        bytes: null,
        incremental: false,
      },
      repositories: [
        { name: "main", url: "https://example.org/main.git", state: "present", error: null },
        { name: "p", url: "https://example.org/p.git", state: "failed", error: "401" },
      ],
      settings: [{ key: "mail.relay", ok: false, error: null }],
      volumes: [
        { volume: "user.ann.photos", state: "restored", error: null },
        { volume: "user.bob.music", state: "present", error: null },
      ],
      apps: [
        { app: "main/wiki", version: "1.2.0", state: "restored", kept: "k", error: null },
        { app: "main/blog", version: "2.0.0", state: "restored", kept: null, error: null },
        { app: "extra/chat", version: "0.3.0", state: "failed", kept: null, error: "no image" },
      ],
    };
    assert.deepEqual(boxRestoreParts(result), [
      {
        part: "repository",
        name: "main (https://example.org/main.git)",
        failed: false,
        words: "already here, kept as it is",
      },
      { part: "repository", name: "p (https://example.org/p.git)", failed: true, words: "401" },
      { part: "setting", name: "mail.relay", failed: true, words: "unknown error" },
      { part: "volume", name: "user.ann.photos", failed: false, words: "restored" },
      {
        part: "volume",
        name: "user.bob.music",
        failed: false,
        words: "already here, left as it is",
      },
      {
        part: "app",
        name: "main/wiki",
        failed: false,
        words: "restored at 1.2.0; what it replaced is kept as k",
      },
      { part: "app", name: "main/blog", failed: false, words: "restored at 2.0.0" },
      { part: "app", name: "extra/chat", failed: true, words: "no image" },
    ]);
  });
});
