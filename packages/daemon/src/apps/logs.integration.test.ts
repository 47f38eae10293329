/**
 * App logs and health against the real Podman: a service of its own on a
 * temporary socket, busybox containers that print lines, crash and carry a
 * healthcheck. Every container is named `town-logtest-…` and removed after.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { LogEvent } from "@townos/api";
import { podmanForSuite, podmanMissing, TEST_IMAGE } from "../../test/runtime/podman-host.js";
import type { SpecGenerator } from "../runtime/podman/container-spec.js";
import { PodmanRuntime } from "../runtime/podman/runtime.js";
import type { InstallRecord } from "../store/installs.js";
import { containersHealth, HealthMonitor, type HealthRuntime } from "./health.js";
import { followLogs, readLogPage, type AppContainer } from "./logs.js";
import { LABEL_APP } from "./labels.js";
import { until } from "../../test/daemon.js";

if (podmanMissing) console.log(`# skipping the logs integration test: ${podmanMissing}`);

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const APP = `logtest/${run}`;
const nameOf = (part: string): string => `town-logtest-${run}-${part}`;

function spec(part: string, script: string, extra: Record<string, unknown> = {}): SpecGenerator {
  return {
    name: nameOf(part),
    hostname: nameOf(part),
    image: TEST_IMAGE,
    command: ["sh", "-c", script],
    env: {},
    // Not the app label: a Town OS daemon running on this host would remove such strays.
    labels: { "town.test-run": run },
    portmappings: [],
    mounts: [],
    netns: { nsmode: "bridge" },
    networks: {},
    restart_policy: "no",
    privileged: false,
    ...extra,
  };
}

describe("app logs and health with real Podman", { skip: podmanMissing, timeout: 120_000 }, () => {
  const { podman } = podmanForSuite("town-logtest-", { "town.test-run": run });
  const runtime = new PodmanRuntime(podman);

  it("pages merged history, newest last, and searches it", async () => {
    const printers: AppContainer[] = [
      { name: nameOf("db"), instance: "db", index: 0 },
      { name: nameOf("web"), instance: "web", index: 1 },
    ];
    await podman.createContainer(
      spec(
        "db",
        "for i in $(seq 1 30); do echo db line $i; done; echo db failed >&2; exec sleep 600",
      ),
    );
    await podman.createContainer(
      spec(
        "web",
        "for i in $(seq 1 30); do echo Web Line $i; done; echo web warned >&2; exec sleep 600",
      ),
    );
    for (const c of printers) await podman.startContainer(c.name);
    await until(
      "both to print everything",
      10_000,
      () => readLogPage(runtime, printers, { limit: 100, search: "warned" }, Date.now()),
      (page) => page.items.length === 1,
    );
    await until(
      "db too",
      10_000,
      () => readLogPage(runtime, printers, { limit: 100, search: "failed" }, Date.now()),
      (page) => page.items.length === 1,
    );

    const newest = await readLogPage(runtime, printers, { limit: 5 }, Date.now());
    assert.equal(newest.items.length, 5);
    assert.equal(newest.partial, false);
    assert.ok(newest.before, "older lines exist");
    const all = [...newest.items];
    let before: string | null = newest.before;
    while (before !== null) {
      const page = await readLogPage(runtime, printers, { limit: 7, before }, Date.now());
      assert.ok(page.items.length > 0 || page.before === null, "no empty page in the middle");
      all.unshift(...page.items);
      before = page.before;
    }
    assert.equal(all.length, 62, "every line exactly once");
    for (const [instance, prefix] of [
      ["db", "db line"],
      ["web", "Web Line"],
    ] as const) {
      const own = all.filter((l) => l.instance === instance && l.stream === "stdout");
      assert.deepEqual(
        own.map((l) => l.text),
        Array.from({ length: 30 }, (_, i) => `${prefix} ${i + 1}`),
        `${instance} keeps its order`,
      );
      assert.ok(own.every((l) => l.container === nameOf(instance)));
    }
    assert.deepEqual(
      all
        .filter((l) => l.stream === "stderr")
        .map((l) => l.text)
        .sort(),
      ["db failed", "web warned"],
    );
    const times = all.map((l) => l.time);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      "merged by time",
    );

    const found = await readLogPage(runtime, printers, { limit: 50, search: "LINE 2" }, Date.now());
    assert.deepEqual(
      found.items.map((l) => l.text).sort(),
      [
        "Web Line 2",
        ...Array.from({ length: 10 }, (_, i) => `Web Line 2${i}`),
        "db line 2",
        ...Array.from({ length: 10 }, (_, i) => `db line 2${i}`),
      ].sort(),
    );
    const dbOnly = await readLogPage(
      runtime,
      [printers[0] as AppContainer],
      { limit: 3, search: "web" },
      Date.now(),
    );
    assert.deepEqual(dbOnly.items, []);
  });

  it("follows new lines, through a restart and a recreation of the container", async () => {
    const ticker = spec(
      "ticker",
      'echo "started $(date +%s%N)"; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done',
    );
    const containers: AppContainer[] = [{ name: ticker.name, instance: "ticker", index: 0 }];
    await podman.createContainer(ticker);
    await podman.startContainer(ticker.name);
    await sleep(700);

    const stop = new AbortController();
    const timeout = setTimeout(() => {
      stop.abort();
    }, 60_000);
    const events: LogEvent[] = [];
    const texts = (): string[] => events.flatMap((e) => (e.type === "line" ? [e.text] : []));
    const starts = (): number => texts().filter((t) => t.startsWith("started ")).length;
    let phase = 0;
    for await (const event of followLogs(runtime, containers, {
      tail: 2,
      signal: stop.signal,
      pollMs: 200,
      now: Date.now,
    })) {
      events.push(event);
      const ticks = texts().filter((t) => t.startsWith("tick")).length;
      if (phase === 0 && ticks >= 5) {
        phase = 1;
        void podman
          .stopContainer(ticker.name, { timeoutSeconds: 0 })
          .then(() => podman.startContainer(ticker.name));
      } else if (phase === 1 && starts() === 1 && ticks >= 8) {
        phase = 2;
        void podman
          .removeContainer(ticker.name, { timeoutSeconds: 0 })
          .then(() => podman.createContainer(ticker))
          .then(() => podman.startContainer(ticker.name));
      } else if (phase === 2 && starts() === 2 && texts().at(-1) === "tick 2") {
        stop.abort();
      }
    }
    clearTimeout(timeout);
    assert.equal(
      phase,
      2,
      `reached the recreation; saw ${events.map((e) => (e.type === "line" ? e.text : e.state)).join(" | ")}`,
    );
    const lines = texts();
    assert.match(lines[0] ?? "", /^tick \d+$/, "history first: the last two lines");
    assert.equal(starts(), 2, "the restart and the recreated container each print `started` once");
    // No line twice: every run counts up from 1 without a repeat.
    let previous = 0;
    for (const line of lines) {
      if (line.startsWith("started")) {
        previous = 0;
        continue;
      }
      const n = Number(line.slice(5));
      assert.ok(previous === 0 || n === previous + 1, `tick ${n} after tick ${previous}`);
      previous = n;
    }
    const states = events.flatMap((e) => (e.type === "container" ? [e.state] : []));
    assert.ok(states.includes("detached"), states.join(","));
    assert.ok(states.filter((s) => s === "attached").length >= 3, states.join(","));
  });

  it("runs an image's healthcheck: healthy, then unhealthy once its file is gone", async () => {
    const checked = spec("checked", "touch /tmp/ok; exec sleep 600", {
      healthconfig: {
        Test: ["CMD-SHELL", "test -e /tmp/ok || { echo no ok file; exit 1; }"],
        Interval: 1e9,
        Timeout: 5e9,
        Retries: 2,
      },
    });
    await podman.createContainer(checked);
    await podman.startContainer(checked.name);
    const info = await podman.inspectContainer(checked.name);
    assert.deepEqual(info?.healthcheck, {
      test: ["CMD-SHELL", "test -e /tmp/ok || { echo no ok file; exit 1; }"],
      intervalMs: 1000,
      timeoutMs: 5000,
      startPeriodMs: 0,
      retries: 2,
    });
    const installs = { list: () => [{ repo: "logtest", name: run } as InstallRecord] };
    // The real Podman, with this run's containers listed as the app's (see `spec`).
    const listed: HealthRuntime = {
      list: async () =>
        (await runtime.list({ "town.test-run": run })).map((c) => ({
          ...c,
          labels: { ...c.labels, [LABEL_APP]: APP },
        })),
      inspect: (name) => runtime.inspect(name),
      runHealthcheck: (name) => runtime.runHealthcheck(name),
    };
    const monitor = new HealthMonitor({ runtime: listed, installs, clock: Date.now, scanMs: 200 });
    monitor.start();
    const containers: AppContainer[] = [{ name: checked.name, instance: "checked", index: 0 }];
    const health = () =>
      containersHealth(runtime, containers, { shouldRun: true, monitor, now: Date.now() }).then(
        ([c]) => c,
      );
    try {
      const healthy = await until("healthy", 20_000, health, (c) => c?.health.status === "healthy");
      assert.equal(healthy?.state, "running");
      assert.equal(healthy.health.lastExitCode, 0);
      assert.ok(healthy.health.nextCheckAt, "the next probe is scheduled");
      await podman.exec(checked.name, ["rm", "/tmp/ok"]);
      const unhealthy = await until(
        "unhealthy",
        20_000,
        health,
        (c) => c?.health.status === "unhealthy",
      );
      assert.ok(unhealthy);
      assert.ok(unhealthy.health.failingStreak >= 2, "after the retries");
      assert.equal(unhealthy.health.lastExitCode, 1);
      assert.match(unhealthy.health.lastOutput ?? "", /no ok file/);
      // Podman recorded it too: a daemon started later reads the same.
      assert.equal((await podman.inspectContainer(checked.name))?.health?.status, "unhealthy");
    } finally {
      await monitor.stop();
    }
  });

  it("reports exit codes and restart counts", async () => {
    const crashing = spec("crashing", "echo crashing; exit 3", {
      restart_policy: "on-failure",
      restart_tries: 2,
    });
    await podman.createContainer(crashing);
    await podman.startContainer(crashing.name);
    const containers: AppContainer[] = [
      { name: crashing.name, instance: "crashing", index: 0 },
      { name: nameOf("never-made"), instance: "ghost", index: 1 },
    ];
    const [crashed, ghost] = await until(
      "the retries to end",
      20_000,
      async () => {
        const c = await podman.inspectContainer(crashing.name);
        return c && !c.state.running && c.restartCount === 2
          ? containersHealth(runtime, containers, {
              shouldRun: true,
              monitor: undefined,
              now: Date.now() + 60_000,
            })
          : [];
      },
      (list) => list.length === 2,
    );
    assert.equal(crashed?.state, "exited");
    assert.equal(crashed.exitCode, 3);
    assert.equal(crashed.restartCount, 2);
    assert.equal(crashed.health.status, "none");
    assert.ok(crashed.finishedAt !== null && crashed.startedAt !== null);
    assert.equal(ghost?.state, "missing");
    const page = await readLogPage(runtime, containers, { limit: 10 }, Date.now());
    assert.deepEqual(
      page.items.map((l) => l.text),
      ["crashing", "crashing", "crashing"],
      "one line per run, kept across restarts",
    );
  });
});
