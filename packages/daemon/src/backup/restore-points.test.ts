/**
 * Restore points over a real directory driver in a temporary directory
 * (fast, no root): every volume of the app and its dependency under one id,
 * quiescing by stop (with the package's timeout, app first) or by command
 * (its failure leaves nothing behind), ids unique within a second, sources
 * with the older snapshots a backup sends from, and removal.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { TownError, type CompiledPackage } from "@townos/format";
import { expectTownError } from "../../../format/test/support.js";
import { installOf } from "../../test/apps/fakes.js";
import { compileExample } from "../../test/runtime/examples.js";
import { flattenPlan } from "../apps/names.js";
import type { ExecResult } from "../runtime/workload.js";
import { DirectoryDriver } from "../storage/directory.js";
import { openDatabase } from "../store/database.js";
import { Installs } from "../store/installs.js";
import { RestorePoints } from "../store/restore-points.js";
import { planVolumes, quiesceOf, RestorePointService } from "./restore-points.js";

const NOW = Date.UTC(2026, 11, 3, 20, 0, 0);

function withBackup(
  plan: CompiledPackage,
  backup: NonNullable<CompiledPackage["backup"]>,
): CompiledPackage {
  return { ...plan, backup };
}

describe("RestorePointService", () => {
  let scratch: string;
  let driver: DirectoryDriver;
  let installs: Installs;
  let events: string[];
  let execResult: ExecResult | TownError;
  let now: number;

  function service(plan: CompiledPackage): RestorePointService {
    installs.create(installOf(plan), () => undefined);
    return new RestorePointService({
      installs,
      records: new RestorePoints(openDatabase(":memory:")),
      storage: () => driver,
      holdApp: async (repo, name, stop) => {
        events.push(`hold ${repo}/${name}`);
        await stop?.();
        return () => {
          events.push(`release ${repo}/${name}`);
          return Promise.resolve();
        };
      },
      workloads: () => ({
        exec: (workload, command, options) => {
          events.push(`exec ${workload} ${command.join(" ")} ${options?.timeoutMs ?? 0}`);
          return execResult instanceof TownError
            ? Promise.reject(execResult)
            : Promise.resolve(execResult);
        },
        stop: (workload, options) => {
          events.push(`stop ${workload} ${options?.timeoutSeconds ?? 0}`);
          return Promise.resolve(true);
        },
      }),
      desiredState: () => ({
        repositories: [{ name: "default", url: "https://git.example/town.git", credentials: true }],
        settings: { "dns.tld": "lan" },
      }),
      clock: () => now,
    });
  }

  async function makeVolumes(plan: CompiledPackage): Promise<string[]> {
    const names = planVolumes(plan);
    for (const name of names) {
      await driver.create(name);
      await writeFile(join(driver.path(name), "data.txt"), `${name} before\n`);
    }
    return names;
  }

  beforeEach(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-restore-points-"));
    driver = await DirectoryDriver.open(join(scratch, "storage"));
    installs = new Installs(openDatabase(":memory:"), () => NOW);
    events = [];
    execResult = { exitCode: 0, stdout: "", stderr: "", truncated: false };
    now = NOW;
  });

  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("snapshots every volume of the app and its dependency under one id, with the app's version and answers", async () => {
    const plan = compileExample("guestbook", "1.0");
    const points = service(plan);
    const volumes = await makeVolumes(plan);
    assert.ok(volumes.length >= 3, volumes.join(", "));
    const point = await points.take("default/guestbook", "upgrade");
    assert.equal(point.id, "20261203T200000Z-upgrade");
    assert.deepEqual(point.volumes, volumes);
    assert.equal(point.app?.version, "1.0");
    assert.deepEqual(point.app.answers, plan.answers);
    assert.equal(point.quiesce, "none");
    assert.deepEqual(events, []);
    for (const volume of volumes) {
      await writeFile(join(driver.path(volume), "data.txt"), "after\n");
      const [snapshot] = await driver.listSnapshots(volume);
      assert.equal(snapshot?.name, point.id);
      assert.equal(await readFile(join(snapshot.path, "data.txt"), "utf8"), `${volume} before\n`);
    }
    const view = await points.view(point);
    assert.deepEqual(
      view.volumes.map((entry) => entry.present),
      volumes.map(() => true),
    );
  });

  it("takes the whole box: every app's volumes, each app quiesced in turn, people's volumes and the desired state", async () => {
    const guestbook = withBackup(compileExample("guestbook", "1.0"), {
      quiesce: "stop",
      command: [],
      timeoutSeconds: 30,
    });
    const points = service(guestbook);
    const hello = compileExample("hello", "1.0");
    installs.create(installOf(hello), () => undefined);
    installs.setRunning("default", "hello", false);
    const volumes = [...(await makeVolumes(guestbook)), ...(await makeVolumes(hello))];
    await driver.create("user.photos");
    await driver.create("uninstalled.default.old.data.20260101T000000Z");

    const point = await points.take("box", "manual");
    assert.equal(point.subject, "box");
    assert.equal(point.app, null);
    assert.deepEqual([...point.volumes].sort(), [...volumes, "user.photos"].sort());
    assert.equal(point.quiesce, "stop");
    assert.deepEqual(events.slice(0, 2), [
      "hold default/guestbook",
      `stop ${guestbook.hostname} 30`,
    ]);
    assert.equal(events.at(-1), "release default/guestbook");
    assert.deepEqual(
      point.box?.apps.map((app) => [app.name, app.version, app.running]),
      [
        ["guestbook", "1.0", true],
        ["hello", "1.0", false],
      ],
    );
    assert.deepEqual(point.box.settings, { "dns.tld": "lan" });
    assert.equal(point.box.repositories[0]?.credentials, true);
    for (const volume of point.volumes) {
      assert.deepEqual(
        (await driver.listSnapshots(volume)).map((snapshot) => snapshot.name),
        [point.id],
      );
    }
    // Read back from the record as it was written.
    assert.deepEqual(points.get("box", point.id).box, point.box);
  });

  it("gives points taken in the same second distinct ids, also past snapshots made by hand", async () => {
    const plan = compileExample("guestbook", "1.0");
    const points = service(plan);
    const [first] = await makeVolumes(plan);
    assert.ok(first);
    await driver.snapshot(first, "20261203T200000Z-manual");
    const a = await points.take("default/guestbook", "manual");
    const b = await points.take("default/guestbook", "manual");
    assert.deepEqual([a.id, b.id], ["20261203T200000Z-manual-2", "20261203T200000Z-manual-3"]);
  });

  it("stops the app for a snapshot, the app before its dependency, each with its package's timeout", async () => {
    const base = compileExample("guestbook", "1.0");
    const plan: CompiledPackage = {
      ...withBackup(base, { quiesce: "stop", command: [], timeoutSeconds: 90 }),
      dependencies: base.dependencies.map((dependency) => ({
        ...dependency,
        backup: { quiesce: "stop", command: [], timeoutSeconds: 5 },
      })),
    };
    assert.equal(quiesceOf(plan), "stop");
    const points = service(plan);
    await makeVolumes(plan);
    const point = await points.take("default/guestbook", "manual");
    assert.equal(point.quiesce, "stop");
    const [dependency] = plan.dependencies;
    assert.ok(dependency);
    assert.deepEqual(events, [
      "hold default/guestbook",
      `stop ${plan.hostname} 90`,
      `stop ${dependency.hostname} 5`,
      "release default/guestbook",
    ]);
  });

  it("runs the quiesce command in its container; a failing one leaves no snapshot, a stopped container none is needed", async () => {
    const base = compileExample("guestbook", "1.0");
    const plan = withBackup(base, { quiesce: "command", command: ["sync"], timeoutSeconds: 3 });
    assert.equal(quiesceOf(plan), "command");
    const points = service(plan);
    const volumes = await makeVolumes(plan);
    await points.take("default/guestbook", "manual");
    assert.deepEqual(events, [`exec ${plan.hostname} sync 3000`]);

    execResult = { exitCode: 2, stdout: "", stderr: "disk busy\n", truncated: false };
    now += 1000;
    await expectTownError(points.take("default/guestbook", "manual"), "io", /exit 2\): disk busy/);
    for (const volume of volumes) assert.equal((await driver.listSnapshots(volume)).length, 1);
    assert.equal(points.list("default/guestbook").length, 1);

    execResult = new TownError("conflict", "the container does not run");
    const taken = await points.take("default/guestbook", "manual");
    assert.equal(taken.volumes.length, volumes.length);
  });

  it("records an app without volumes, storage or not", async () => {
    const plan = { ...compileExample("hello", "1.0"), volumes: [] };
    const points = new RestorePointService({
      installs,
      records: new RestorePoints(openDatabase(":memory:")),
      storage: () => {
        throw new TownError("unavailable", "storage is being set up");
      },
      holdApp: () => Promise.reject(new Error("not expected")),
      workloads: () => {
        throw new Error("not expected");
      },
      desiredState: () => ({ repositories: [], settings: {} }),
      clock: () => now,
    });
    assert.equal(flattenPlan(plan).length, 1);
    installs.create(installOf(plan), () => undefined);
    const point = await points.take("default/hello", "upgrade");
    assert.deepEqual(point.volumes, []);
    assert.equal(point.app?.version, "1.0");
  });

  it("lists the older snapshots a backup can send from, and removes a point with its snapshots", async () => {
    const plan = compileExample("guestbook", "1.0");
    const points = service(plan);
    const volumes = await makeVolumes(plan);
    const first = await points.take("default/guestbook", "schedule");
    now += 3_600_000;
    const second = await points.take("default/guestbook", "schedule");
    const sources = await points.sources(second);
    assert.deepEqual(
      sources.map((source) => [source.volume, source.snapshot, source.earlier.map((e) => e.name)]),
      volumes.map((volume) => [volume, second.id, [first.id]]),
    );
    await points.remove("default/guestbook", first.id);
    assert.deepEqual(
      points.list("default/guestbook").map((point) => point.id),
      [second.id],
    );
    for (const volume of volumes) {
      assert.deepEqual(
        (await driver.listSnapshots(volume)).map((snapshot) => snapshot.name),
        [second.id],
      );
    }
    await expectTownError(points.sources(first), "not_found", /is gone/);
  });

  it("refuses what is neither an installed app nor a volume", async () => {
    const points = service(compileExample("hello", "1.0"));
    await expectTownError(points.take("default/nope", "manual"), "not_found", /not installed/);
    await expectTownError(points.take("user.nope", "manual"), "not_found", /no volume/);
    await expectTownError(points.take("a/b/c", "manual"), "invalid_argument", /neither/);
    await expectTownError(points.take("..", "manual"), "invalid_argument", /volume name/);
  });
});
