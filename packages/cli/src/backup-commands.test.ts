import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type {
  BackupOverview,
  BackupRunView,
  BackupView,
  RestoreBoxResult,
  RestorePointView,
  RollbackResult,
} from "@townos/client";
import { answerJson, fakeDaemon } from "../test/run-town.js";
import { UsageError } from "./usage.js";
import { readPasswordFile, targetRequest, type TargetFlags } from "./backup-commands.js";
import {
  agoText,
  backupTable,
  boxRestoreFailures,
  boxRestoreText,
  keepText,
  localTime,
  overviewText,
  parseEnv,
  parseKeep,
  parseSchedule,
  restorePointSize,
  restorePointTable,
  rollbackText,
} from "./backup-views.js";

const NOW = Date.UTC(2026, 11, 3, 22, 0, 0);
const HOUR = 3_600_000;

const DATA = { volume: "pkg.main.wiki.data", snapshot: "x", present: true, exclusiveBytes: 1024 };
const DB = { volume: "pkg.main.wiki.db", snapshot: "x", present: true, exclusiveBytes: 512 };

const POINT: RestorePointView = {
  id: "20261203T200000Z-upgrade",
  subject: "main/wiki",
  app: { repo: "main", name: "wiki" },
  reason: "upgrade",
  version: "1.2.0",
  answers: {},
  quiesce: "stop",
  createdAt: NOW - 2 * HOUR,
  volumes: [DATA, DB],
};

const BOX_BACKUP: BackupView = {
  id: "20261203T030000Z-schedule",
  target: "disk",
  subject: "box",
  app: null,
  createdAt: NOW - 19 * HOUR,
  volumes: ["pkg.main.wiki.data", "pkg.main.wiki.db", "user.ann.photos"],
  bytes: 8192,
  incremental: false,
};

/** A whole-box restore where one part of each kind went wrong. */
const BOX_RESULT: RestoreBoxResult = {
  backup: BOX_BACKUP,
  repositories: [
    { name: "main", url: "https://example.org/main.git", state: "present", error: null },
    { name: "extra", url: "https://example.org/extra.git", state: "added", error: null },
    {
      name: "private",
      url: "https://example.org/p.git",
      state: "failed",
      error: "401\nunauthorized",
    },
  ],
  settings: [
    { key: "net.hostname", ok: true, error: null },
    { key: "mail.relay", ok: false, error: "not a host" },
  ],
  volumes: [
    { volume: "user.ann.photos", state: "restored", error: null },
    { volume: "user.bob.music", state: "present", error: null },
    { volume: "user.cy.notes", state: "failed", error: "quota exceeded" },
  ],
  apps: [
    {
      app: "main/wiki",
      version: "1.2.0",
      state: "restored",
      kept: "20261203T215900Z-restore",
      error: null,
    },
    { app: "main/blog", version: "2.0.0", state: "restored", kept: null, error: null },
    { app: "extra/chat", version: "0.3.0", state: "failed", kept: null, error: "image not found" },
  ],
};

/** The same restore with every part done. */
const BOX_DONE: RestoreBoxResult = {
  ...BOX_RESULT,
  repositories: BOX_RESULT.repositories.filter((r) => r.state !== "failed"),
  settings: BOX_RESULT.settings.filter((s) => s.ok),
  volumes: [],
  apps: BOX_RESULT.apps.filter((a) => a.state !== "failed"),
};

function run(extra: Partial<BackupRunView>): BackupRunView {
  return {
    id: 7,
    subject: "main/wiki",
    target: "disk",
    trigger: "manual",
    state: "running",
    step: null,
    error: null,
    restorePoint: null,
    bytes: null,
    startedAt: NOW - 60_000,
    finishedAt: null,
    ...extra,
  };
}

describe("--keep", () => {
  it("parses the text form into the API's object and back", () => {
    const keep = parseKeep("hourly=24,daily=7, weekly=4");
    assert.deepEqual(keep, { hourly: 24, daily: 7, weekly: 4 });
    assert.equal(keepText(keep), "hourly=24,daily=7,weekly=4");
    assert.equal(keepText(parseKeep("last=3,monthly=12")), "monthly=12,last=3");
    assert.equal(keepText({}), "nothing");
  });

  it("refuses what the daemon's parsers refuse, as a usage error naming the flag", () => {
    assert.throws(
      () => parseKeep("yearly=2"),
      (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, /^--keep: invalid keep policy: .*yearly=2/);
        return true;
      },
    );
    assert.throws(() => parseKeep("daily=7,daily=3"), /given twice/);
    assert.throws(() => parseKeep("hourly=1001"), /^Error: --keep: /);
    assert.equal(parseSchedule(" 0  3 * * * "), "0 3 * * *");
    assert.throws(
      () => parseSchedule("0 3 * *"),
      /^Error: --schedule: invalid schedule: .*five fields/,
    );
  });
});

describe("town backup target add's flags", () => {
  const flags = (extra: Partial<TargetFlags>): TargetFlags => ({ env: [], ...extra });

  it("need exactly one kind, and keep restic's flags to restic", () => {
    assert.throws(() => targetRequest("t", flags({}), "/home/me"), /give where backups go/);
    assert.throws(
      () => targetRequest("t", flags({ path: "/a", restic: "/b" }), "/"),
      /not --path and --restic/,
    );
    assert.throws(
      () => targetRequest("t", flags({ path: "/a", passwordFile: "p" }), "/"),
      /are for --restic targets/,
    );
  });

  it("make local directories absolute but leave remote restic repositories alone", () => {
    assert.deepEqual(targetRequest("disk", flags({ btrfs: "backups" }), "/mnt/usb"), {
      name: "disk",
      kind: "btrfs",
      location: "/mnt/usb/backups",
    });
    assert.deepEqual(
      targetRequest(
        "cloud",
        flags({ restic: "s3:s3.example.org/bucket", env: ["AWS_ACCESS_KEY_ID=k=1"] }),
        "/x",
      ),
      {
        name: "cloud",
        kind: "restic",
        location: "s3:s3.example.org/bucket",
        env: { AWS_ACCESS_KEY_ID: "k=1" },
      },
    );
    assert.equal(targetRequest("r", flags({ restic: "repo" }), "/srv").location, "/srv/repo");
  });

  it("take --env as KEY=VALUE, or KEY with the value from the environment", () => {
    assert.deepEqual(parseEnv(["A=1", "B_2=", "SECRET"], { SECRET: "s3" }), {
      A: "1",
      B_2: "",
      SECRET: "s3",
    });
    assert.throws(() => parseEnv(["lower=1"], {}), /--env "lower…" is not KEY=VALUE or KEY/);
    assert.throws(() => parseEnv(["UNSET"], {}), /--env UNSET: it is not set here/);
  });

  it("read a password file without its newline, refusing one others can read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "town-backup-cli-"));
    try {
      const file = join(dir, "pw");
      await writeFile(file, "correct horse battery\n", { mode: 0o600 });
      assert.equal(await readPasswordFile(file), "correct horse battery");
      await chmod(file, 0o644);
      await assert.rejects(readPasswordFile(file), /can be read by other users/);
      await writeFile(join(dir, "empty"), "\n", { mode: 0o600 });
      await assert.rejects(readPasswordFile(join(dir, "empty")), /is empty/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("restore points and backups as town prints them", () => {
  it("says how long ago, or in how long", () => {
    assert.equal(agoText(NOW - 2 * HOUR - 59_000, NOW), "2 h ago");
    assert.equal(agoText(NOW - 90_000, NOW), "1 min ago");
    assert.equal(agoText(NOW - 3 * 24 * HOUR, NOW), "3 d ago");
    assert.equal(agoText(NOW + HOUR, NOW), "in 1 h");
    assert.equal(agoText(NOW - 1000, NOW), "just now");
  });

  it("lists restore points with local time, age, version and summed size", () => {
    const text = restorePointTable(
      [
        POINT,
        {
          ...POINT,
          id: "20261203T100000Z-manual",
          reason: "manual",
          createdAt: NOW - 12 * HOUR,
          volumes: [{ ...DATA, present: false, exclusiveBytes: null }],
        },
      ],
      NOW,
    );
    const lines = text.split("\n");
    assert.match(lines[0] ?? "", /^ID +WHEN +REASON +VERSION +VOLUMES +SIZE$/);
    assert.equal(
      lines[1]?.replace(/ +/g, " "),
      `20261203T200000Z-upgrade ${localTime(NOW - 2 * HOUR)} (2 h ago) upgrade 1.2.0 2 1.5 KiB`,
    );
    assert.match(lines[2] ?? "", /\(12 h ago\) +manual +1\.2\.0 +1 \(1 gone\) +–$/);
    assert.equal(restorePointTable([], NOW), "no restore points");
  });

  it("marks a size some volume could not tell", () => {
    const partial = {
      ...POINT,
      volumes: [DATA, { ...DB, exclusiveBytes: null }],
    };
    assert.equal(restorePointSize(partial), "1.0 KiB+");
  });

  it("says where a rollback went and what it kept", () => {
    const result: RollbackResult = {
      restoredFrom: POINT,
      kept: { ...POINT, id: "20261203T201500Z-rollback", reason: "rollback", version: "1.3.0" },
      version: "1.2.0",
    };
    assert.equal(
      rollbackText("main/wiki", result),
      "main/wiki is back at 1.2.0 from 20261203T200000Z-upgrade; what it replaced is kept as 20261203T201500Z-rollback",
    );
  });

  it("shows the overview: target status, policies with next and last run, failures, runs", () => {
    const overview: BackupOverview = {
      targets: [
        {
          name: "disk",
          kind: "btrfs",
          location: "/mnt/usb",
          status: { ok: false, error: "no such\ndirectory", at: NOW - HOUR },
          createdAt: NOW - 48 * HOUR,
        },
      ],
      policies: [
        {
          subject: "main/wiki",
          schedule: "0 * * * *",
          keep: { hourly: 24, daily: 7 },
          targets: ["disk"],
          nextRunAt: NOW + HOUR,
          lastRun: { at: NOW - HOUR, ok: false, error: "target gone" },
        },
      ],
      runs: [
        run({ step: "sending pkg.main.wiki.data (40 %)" }),
        run({ id: 6, state: "ok", bytes: 2048 }),
      ],
      failures: [{ subject: "main/wiki", target: "disk", error: "target gone", at: NOW - HOUR }],
    };
    const text = overviewText(overview, NOW);
    assert.match(
      text,
      /^TARGETS\nNAME.*\ndisk +btrfs +\/mnt\/usb +1 h ago +failed: no such directory$/m,
    );
    assert.match(
      text,
      /main\/wiki +0 \* \* \* \* +hourly=24,daily=7 +disk +.*\(in 1 h\) +1 h ago, failed: target gone$/m,
    );
    assert.match(text, /^FAILING\nmain\/wiki → disk \(1 h ago\): target gone$/m);
    assert.match(
      text,
      /^7 +main\/wiki +disk +manual +1 min ago +running: sending pkg.main.wiki.data \(40 %\)$/m,
    );
    assert.match(text, /^6 .* ok, 2\.0 KiB$/m);
  });

  it("lists a target's backups newest first", () => {
    const backup = {
      id: "a",
      target: "disk",
      subject: "main/wiki",
      app: { repo: "main", name: "wiki", version: "1.0.0" },
      createdAt: NOW - 48 * HOUR,
      volumes: ["pkg.main.wiki.data"],
      bytes: null,
      incremental: false,
    };
    const lines = backupTable(
      [backup, { ...backup, id: "b", createdAt: NOW - HOUR, bytes: 4096, incremental: true }],
      NOW,
    ).split("\n");
    assert.match(
      lines[1] ?? "",
      /^b +main\/wiki +1\.0\.0 .*\(1 h ago\) +1 +4\.0 KiB +incremental$/,
    );
    assert.match(lines[2] ?? "", /^a .* +– +full$/);
  });

  it("says a box backup is of the whole box, with how many volumes it holds", () => {
    const lines = backupTable([BOX_BACKUP], NOW).split("\n");
    assert.match(
      lines[1] ?? "",
      /^20261203T030000Z-schedule +box \(whole box\) +- +.*\(19 h ago\) +3 +8\.0 KiB +full$/,
    );
  });

  it("shows a whole-box restore part by part, failures with why, and counts them", () => {
    const text = boxRestoreText(BOX_RESULT, NOW);
    assert.match(
      text,
      /^the whole box from backup 20261203T030000Z-schedule, taken .* \(19 h ago\), on disk:\n/,
    );
    assert.match(text, /^REPOSITORIES\nNAME +URL +STATE\nmain +\S+ +present \(kept as it is\)$/m);
    assert.match(text, /^extra +https:\/\/example\.org\/extra\.git +added$/m);
    assert.match(text, /^private +\S+ +failed: 401 unauthorized$/m);
    assert.match(
      text,
      /^SETTINGS\nKEY +STATE\nnet\.hostname +set\nmail\.relay +failed: not a host$/m,
    );
    assert.match(text, /^user\.ann\.photos +restored$/m);
    assert.match(text, /^user\.bob\.music +present \(left as it is\)$/m);
    assert.match(text, /^user\.cy\.notes +failed: quota exceeded$/m);
    assert.match(
      text,
      /^main\/wiki +1\.2\.0 +restored; what it replaced is kept as 20261203T215900Z-restore$/m,
    );
    assert.match(text, /^main\/blog +2\.0\.0 +restored$/m);
    assert.match(text, /^extra\/chat +0\.3\.0 +failed: image not found$/m);
    assert.equal(boxRestoreFailures(BOX_RESULT), 4);
    assert.equal(boxRestoreFailures(BOX_DONE), 0);
    assert.match(boxRestoreText(BOX_DONE, NOW), /^VOLUMES\nnone$/m);
  });
});

describe("town app rollback and town backup run against a daemon", () => {
  let requests: string[] = [];
  let answers: Record<string, unknown[]> = {};
  const { town } = fakeDaemon("town-backup-cli-", ({ key, body }, response) => {
    requests.push(`${key} ${body}`.trim());
    const queue = answers[key] ?? [];
    const next = queue.length > 1 ? queue.shift() : queue[0];
    answerJson(response, next ?? null);
  });

  it("refuses to roll back without --yes when there is no terminal to ask on", async () => {
    requests = [];
    answers = { "GET /api/v1/apps/main/wiki/restore-points": [[POINT]] };
    const refused = await town("app", "rollback", "main/wiki");
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /^town: Roll main\/wiki back to 1\.2\.0 from 20261203T200000Z-upgrade \(its data now is kept as a restore point first\): confirm with --yes/,
    );
    assert.ok(!requests.some((line) => line.startsWith("POST")));
  });

  it("rolls back with --yes and says what it kept", async () => {
    requests = [];
    answers = {
      "POST /api/v1/apps/main/wiki/rollback": [
        { restoredFrom: POINT, kept: { ...POINT, id: "k", reason: "rollback" }, version: "1.2.0" },
      ],
    };
    const done = await town("app", "rollback", "main/wiki", "--to", POINT.id, "--yes");
    assert.deepEqual(requests, [`POST /api/v1/apps/main/wiki/rollback {"to":"${POINT.id}"}`]);
    assert.equal(
      done.stdout,
      `main/wiki is back at 1.2.0 from ${POINT.id}; what it replaced is kept as k\n`,
    );
    assert.equal(done.code, 0);
  });

  it("follows a run with --wait, showing its steps, and exits 1 when it failed", async () => {
    requests = [];
    const overview = (runs: BackupRunView[]): BackupOverview => ({
      targets: [],
      policies: [],
      runs,
      failures: [],
    });
    answers = {
      "POST /api/v1/backups/run": [[run({ step: "taking a restore point" })]],
      "GET /api/v1/backups": [
        overview([run({ step: "sending pkg.main.wiki.data (40 %)" })]),
        overview([run({ state: "failed", error: "target gone", finishedAt: NOW })]),
      ],
    };
    const waited = await town("backup", "run", "main/wiki", "--target", "disk", "--wait");
    assert.equal(requests[0], 'POST /api/v1/backups/run {"subject":"main/wiki","target":"disk"}');
    assert.equal(
      waited.stderr,
      "… main/wiki → disk: running: taking a restore point\n… main/wiki → disk: running: sending pkg.main.wiki.data (40 %)\n",
    );
    assert.match(waited.stdout, /^7 +main\/wiki +disk +manual .* failed: target gone$/m);
    assert.equal(waited.code, 1);
  });

  it("refuses to restore the whole box without --yes when there is no terminal to ask on", async () => {
    requests = [];
    answers = {};
    const refused = await town("backup", "restore", "box", "--from", "disk");
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /^town: Restore the whole box from its backup \(the newest\) on disk: add the repositories missing here, .*: confirm with --yes/,
    );
    assert.deepEqual(requests, []);
    const asNew = await town("backup", "restore", "box", "--from", "disk", "--as-new", "--yes");
    assert.equal(asNew.code, 2);
    assert.match(asNew.stderr, /--as-new is for an app, not the whole box/);
    assert.deepEqual(requests, []);
  });

  it("restores the whole box with --yes, printing each part, and exits 1 when a part failed", async () => {
    requests = [];
    answers = { "POST /api/v1/backups/restore-box": [BOX_RESULT] };
    const restored = await town(
      "backup",
      "restore",
      "box",
      "--from",
      "disk",
      "--at",
      BOX_BACKUP.id,
      "--yes",
    );
    assert.deepEqual(requests, [
      `POST /api/v1/backups/restore-box {"target":"disk","at":"${BOX_BACKUP.id}"}`,
    ]);
    assert.match(restored.stdout, /^private +\S+ +failed: 401 unauthorized$/m);
    assert.match(restored.stdout, /^extra\/chat +0\.3\.0 +failed: image not found$/m);
    assert.match(restored.stderr, /town: 4 part\(s\) of the restore failed/);
    assert.equal(restored.code, 1);
  });

  it("exits 0 when every part of the whole box came back, --json printing the result", async () => {
    requests = [];
    answers = { "POST /api/v1/backups/restore-box": [BOX_DONE] };
    const restored = await town("backup", "restore", "box", "--from", "disk", "--yes", "--json");
    assert.deepEqual(requests, ['POST /api/v1/backups/restore-box {"target":"disk"}']);
    assert.deepEqual(JSON.parse(restored.stdout), BOX_DONE);
    assert.doesNotMatch(restored.stderr, /failed/);
    assert.equal(restored.code, 0);
  });

  it("sets a policy from the text form of --keep", async () => {
    requests = [];
    answers = {
      "PUT /api/v1/backups/policies": [
        {
          subject: "main/wiki",
          schedule: "0 3 * * *",
          keep: { daily: 7 },
          targets: ["disk"],
          nextRunAt: null,
          lastRun: null,
        },
      ],
    };
    const set = await town(
      "backup",
      "policy",
      "set",
      "main/wiki",
      "--schedule",
      "0 3 * * *",
      "--keep",
      "daily=7",
      "--target",
      "disk",
    );
    assert.deepEqual(requests, [
      'PUT /api/v1/backups/policies {"subject":"main/wiki","schedule":"0 3 * * *","keep":{"daily":7},"targets":["disk"]}',
    ]);
    assert.equal(set.stdout, "main/wiki: 0 3 * * *, keeping daily=7, sent to disk\n");
  });
});
