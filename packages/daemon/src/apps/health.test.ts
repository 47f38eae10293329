import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeRuntime } from "../../test/runtime/fake-runtime.js";
import type { HealthState, WorkloadInfo } from "../runtime/workload.js";
import type { InstallRecord } from "../store/installs.js";
import { containersHealth, HealthMonitor } from "./health.js";
import { LABEL_APP } from "./labels.js";

const T0 = Date.UTC(2026, 0, 1);

function info(name: string, change: Partial<WorkloadInfo> = {}): WorkloadInfo {
  return {
    id: `id-${name}`,
    name,
    image: "img",
    imageId: "img",
    created: new Date(T0),
    labels: {},
    state: {
      status: "running",
      running: true,
      exitCode: 0,
      pid: 10,
      startedAt: new Date(T0),
      finishedAt: null,
      oomKilled: false,
      error: "",
    },
    restartCount: 0,
    restartPolicy: "unless-stopped",
    healthcheck: {
      test: ["CMD-SHELL", "true"],
      intervalMs: 10_000,
      timeoutMs: 2_000,
      startPeriodMs: 0,
      retries: 3,
    },
    health: null,
    addresses: {},
    ...change,
  };
}

/** The shared fake, its healthchecks passing unless a test says otherwise. */
function fakeHealth(): FakeRuntime {
  const runtime = new FakeRuntime();
  runtime.healthAnswer = () =>
    Promise.resolve({
      status: "healthy",
      failingStreak: 0,
      log: [{ start: null, end: null, exitCode: 0, output: "ok\n" }],
    });
  return runtime;
}

/** Puts a workload of `app` in place whose inspection answers `container`. */
function add(runtime: FakeRuntime, app: string, container: WorkloadInfo): void {
  const workload = runtime.add(
    {
      kind: "container",
      name: container.name,
      hostname: container.name,
      image: container.image,
      env: {},
      labels: { [LABEL_APP]: app },
      mounts: [],
      ports: [],
      network: null,
      restart: "unless-stopped",
    },
    container.state.status,
    container.id,
  );
  workload.exitCode = container.state.exitCode;
  workload.info = container;
}

const installed = (...apps: string[]): { list(): InstallRecord[] } => ({
  list: () =>
    apps.map((app) => {
      const [repo = "", name = ""] = app.split("/");
      return { repo, name } as InstallRecord;
    }),
});

describe("health monitor", () => {
  it("probes running containers of installed apps on their healthcheck's interval", async () => {
    const now = { ms: T0 };
    const runtime = fakeHealth();
    add(runtime, "default/web", info("web"));
    add(runtime, "default/web", info("nocheck", { healthcheck: null }));
    add(
      runtime,
      "default/web",
      info("stopped", { state: { ...info("x").state, status: "exited", running: false } }),
    );
    add(runtime, "default/gone", info("orphan"));
    const monitor = new HealthMonitor({
      runtime,
      installs: installed("default/web"),
      clock: () => now.ms,
    });
    await monitor.tick();
    assert.deepEqual(runtime.probes, [], "the first probe waits one interval after the start");
    now.ms = T0 + 10_000;
    await monitor.tick();
    await monitor.settled();
    assert.deepEqual(runtime.probes, ["id-web"]);
    assert.deepEqual(monitor.latest("id-web"), {
      containerId: "id-web",
      status: "healthy",
      failingStreak: 0,
      output: "ok\n",
      exitCode: 0,
      at: T0 + 10_000,
    });
    now.ms = T0 + 15_000;
    await monitor.tick();
    assert.equal(runtime.probes.length, 1, "not yet due again");
    now.ms = T0 + 20_000;
    await monitor.tick();
    await monitor.settled();
    assert.deepEqual(runtime.probes, ["id-web", "id-web"]);
    await monitor.stop();
  });

  it("runs a bounded number of probes at once", async () => {
    const now = { ms: T0 + 60_000 };
    const runtime = fakeHealth();
    for (let i = 0; i < 5; i++) add(runtime, "default/web", info(`c${i}`));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    runtime.healthAnswer = async () => {
      await gate;
      return { status: "healthy", failingStreak: 0, log: [] };
    };
    const monitor = new HealthMonitor({
      runtime,
      installs: installed("default/web"),
      clock: () => now.ms,
      concurrency: 2,
    });
    await monitor.tick();
    await monitor.tick();
    assert.equal(runtime.probes.length, 2);
    release();
    await monitor.settled();
    await monitor.tick();
    await monitor.settled();
    assert.equal(runtime.probes.length, 4);
    assert.equal(runtime.maxProbing, 2);
    await monitor.stop();
  });

  it("counts a probe that outlives its timeout as failed, unhealthy after the retries", async () => {
    const now = { ms: T0 + 60_000 };
    const runtime = fakeHealth();
    add(
      runtime,
      "default/web",
      info("slow", {
        healthcheck: {
          test: ["CMD", "sleep", "9"],
          intervalMs: 1,
          timeoutMs: 0,
          startPeriodMs: 0,
          retries: 2,
        },
      }),
    );
    runtime.healthAnswer = () => new Promise<HealthState>(() => undefined);
    const monitor = new HealthMonitor({
      runtime,
      installs: installed("default/web"),
      clock: () => now.ms,
      timeoutMarginMs: 20,
    });
    const statuses: string[] = [];
    for (let i = 0; i < 2; i++) {
      await monitor.tick();
      await monitor.settled();
      now.ms += 10;
      statuses.push(
        `${monitor.latest("id-slow")?.status}/${monitor.latest("id-slow")?.failingStreak}`,
      );
    }
    assert.deepEqual(statuses, ["starting/1", "unhealthy/2"]);
    assert.match(monitor.latest("id-slow")?.output ?? "", /did not finish within 20 ms/);
    await monitor.stop();
  });
});

describe("container health", () => {
  const containers = [
    { name: "db", instance: "db", index: 0 },
    { name: "web", instance: "web", index: 1 },
    { name: "worker", instance: "worker", index: 2 },
  ];

  it("reports state, exit code, restarts, and Podman's healthcheck record", async () => {
    const runtime = fakeHealth();
    add(
      runtime,
      "default/web",
      info("db", {
        restartCount: 4,
        health: {
          status: "unhealthy",
          failingStreak: 3,
          log: [
            { start: new Date(T0), end: new Date(T0 + 5), exitCode: 1, output: "x".repeat(10_000) },
          ],
        },
      }),
    );
    add(
      runtime,
      "default/web",
      info("web", {
        healthcheck: null,
        state: {
          ...info("x").state,
          status: "exited",
          running: false,
          exitCode: 137,
          finishedAt: new Date(T0 + 1000),
          oomKilled: true,
        },
      }),
    );
    const [db, web, worker] = await containersHealth(runtime, containers, {
      shouldRun: true,
      monitor: undefined,
      now: T0 + 60_000,
    });
    assert.equal(db?.state, "running");
    assert.equal(db.exitCode, null);
    assert.equal(db.restartCount, 4);
    assert.equal(db.health.status, "unhealthy");
    assert.equal(db.health.failingStreak, 3);
    assert.equal(db.health.lastExitCode, 1);
    assert.equal(db.health.lastOutput?.length, 4096, "bounded");
    assert.equal(web?.state, "exited", "ended a minute ago: not restarting");
    assert.equal(web.exitCode, 137);
    assert.equal(web.oomKilled, true);
    assert.equal(web.health.status, "none");
    assert.equal(worker?.state, "missing");
  });

  it("calls a fresh exit that the policy restarts `restarting`, unless the app is stopped", async () => {
    const runtime = fakeHealth();
    const exited = {
      ...info("x").state,
      status: "exited",
      running: false,
      exitCode: 1,
      finishedAt: new Date(T0),
    };
    add(runtime, "default/web", info("db", { state: exited, restartPolicy: "on-failure" }));
    add(
      runtime,
      "default/web",
      info("web", { state: { ...exited, exitCode: 0 }, restartPolicy: "on-failure" }),
    );
    add(
      runtime,
      "default/web",
      info("worker", { state: { ...exited, status: "created", finishedAt: null } }),
    );
    const states = async (shouldRun: boolean): Promise<string[]> =>
      (
        await containersHealth(runtime, containers, {
          shouldRun,
          monitor: undefined,
          now: T0 + 2000,
        })
      ).map((c) => c.state);
    assert.deepEqual(await states(true), ["restarting", "exited", "created"]);
    assert.deepEqual(await states(false), ["exited", "exited", "created"]);
  });
});
