import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TownError } from "@townos/format";
import { Registry } from "prom-client";
import { FakeRuntime } from "../../test/runtime/fake-runtime.js";
import { LABEL_APP, LABEL_BOX } from "../apps/labels.js";
import type { WorkloadStats } from "../runtime/workload.js";
import { DirectoryDriver } from "../storage/directory.js";
import { AppMetrics, type MetricsStorage } from "./app-metrics.js";

const BOX = "/var/lib/town-test";

/** A running container of `app` ("repo/name") on `box`. */
function container(runtime: FakeRuntime, name: string, app: string, box = BOX): void {
  runtime.run(name).spec.labels = { [LABEL_BOX]: box, [LABEL_APP]: app };
}

/** Figures told apart by `n`, so a series shows which container it came from. */
function figures(n: number): WorkloadStats {
  return {
    cpuPercent: 1,
    cpuSeconds: n + 0.5,
    memoryBytes: n * 1000,
    memoryLimitBytes: 0,
    netInputBytes: n * 10,
    netOutputBytes: n * 20,
    blockInputBytes: n * 30,
    blockOutputBytes: n * 40,
    pids: 1,
  };
}

/** The lines of a scrape that name `metric` (its HELP and TYPE lines left out). */
function series(text: string, metric: string): string[] {
  return text.split("\n").filter((line) => line.startsWith(`${metric}{`));
}

describe("AppMetrics", () => {
  let scratch: string;
  let driver: DirectoryDriver;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-app-metrics-"));
    driver = await DirectoryDriver.open(join(scratch, "storage"));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  function setup(options: { storage?: MetricsStorage; maxApps?: number } = {}) {
    let now = 0;
    const runtime = new FakeRuntime();
    const registry = new Registry();
    const metrics = new AppMetrics({
      registry,
      runtime,
      box: BOX,
      clock: () => now,
      ...options,
    });
    return {
      runtime,
      registry,
      metrics,
      advance: (ms: number) => {
        now += ms;
      },
    };
  }

  void it("exports every container's figures and whether each app is up", async () => {
    const { runtime, registry, metrics } = setup();
    container(runtime, "town-acme--blog", "acme/blog");
    container(runtime, "town-acme--blog--db", "acme/blog");
    container(runtime, "town-zeta--shop", "zeta/shop");
    container(runtime, "town-zeta--shop--cache", "zeta/shop");
    runtime.halt("town-zeta--shop--cache");
    container(runtime, "town-other--app", "other/app", "/elsewhere"); // another box's
    runtime.run("no-app-label");
    const restarts = runtime.containers.get("town-acme--blog--db");
    if (restarts) restarts.info = { restartCount: 3 };
    const numbers: Record<string, number> = {
      "town-acme--blog": 1,
      "town-acme--blog--db": 2,
      "town-zeta--shop": 3,
    };
    runtime.statsAnswer = (name) => Promise.resolve(figures(numbers[name] ?? 99));

    const text = await registry.metrics();
    assert.equal(
      text,
      [
        "# HELP town_app_up 1 when every container of the app runs, else 0",
        "# TYPE town_app_up gauge",
        'town_app_up{repo="acme",app="blog"} 1',
        'town_app_up{repo="zeta",app="shop"} 0',
        "",
        "# HELP town_app_restarts_total Times the runtime restarted an app's container",
        "# TYPE town_app_restarts_total counter",
        'town_app_restarts_total{repo="acme",app="blog",container="town-acme--blog"} 0',
        'town_app_restarts_total{repo="acme",app="blog",container="town-acme--blog--db"} 3',
        'town_app_restarts_total{repo="zeta",app="shop",container="town-zeta--shop"} 0',
        'town_app_restarts_total{repo="zeta",app="shop",container="town-zeta--shop--cache"} 0',
        "",
        "# HELP town_app_cpu_seconds_total CPU time an app's container has used since it started, seconds",
        "# TYPE town_app_cpu_seconds_total counter",
        'town_app_cpu_seconds_total{repo="acme",app="blog",container="town-acme--blog"} 1.5',
        'town_app_cpu_seconds_total{repo="acme",app="blog",container="town-acme--blog--db"} 2.5',
        'town_app_cpu_seconds_total{repo="zeta",app="shop",container="town-zeta--shop"} 3.5',
        "",
        "# HELP town_app_memory_bytes Memory an app's container uses, bytes",
        "# TYPE town_app_memory_bytes gauge",
        'town_app_memory_bytes{repo="acme",app="blog",container="town-acme--blog"} 1000',
        'town_app_memory_bytes{repo="acme",app="blog",container="town-acme--blog--db"} 2000',
        'town_app_memory_bytes{repo="zeta",app="shop",container="town-zeta--shop"} 3000',
        "",
        "# HELP town_app_network_receive_bytes_total Bytes an app's container has received since it started",
        "# TYPE town_app_network_receive_bytes_total counter",
        'town_app_network_receive_bytes_total{repo="acme",app="blog",container="town-acme--blog"} 10',
        'town_app_network_receive_bytes_total{repo="acme",app="blog",container="town-acme--blog--db"} 20',
        'town_app_network_receive_bytes_total{repo="zeta",app="shop",container="town-zeta--shop"} 30',
        "",
        "# HELP town_app_network_transmit_bytes_total Bytes an app's container has sent since it started",
        "# TYPE town_app_network_transmit_bytes_total counter",
        'town_app_network_transmit_bytes_total{repo="acme",app="blog",container="town-acme--blog"} 20',
        'town_app_network_transmit_bytes_total{repo="acme",app="blog",container="town-acme--blog--db"} 40',
        'town_app_network_transmit_bytes_total{repo="zeta",app="shop",container="town-zeta--shop"} 60',
        "",
        "# HELP town_app_block_read_bytes_total Bytes an app's container has read from block devices since it started",
        "# TYPE town_app_block_read_bytes_total counter",
        'town_app_block_read_bytes_total{repo="acme",app="blog",container="town-acme--blog"} 30',
        'town_app_block_read_bytes_total{repo="acme",app="blog",container="town-acme--blog--db"} 60',
        'town_app_block_read_bytes_total{repo="zeta",app="shop",container="town-zeta--shop"} 90',
        "",
        "# HELP town_app_block_write_bytes_total Bytes an app's container has written to block devices since it started",
        "# TYPE town_app_block_write_bytes_total counter",
        'town_app_block_write_bytes_total{repo="acme",app="blog",container="town-acme--blog"} 40',
        'town_app_block_write_bytes_total{repo="acme",app="blog",container="town-acme--blog--db"} 80',
        'town_app_block_write_bytes_total{repo="zeta",app="shop",container="town-zeta--shop"} 120',
        "",
      ].join("\n"),
    );
    // Stats only of running containers: the stopped one is not asked.
    assert.equal(runtime.statsCalls, 3);

    metrics.close();
    assert.equal(await registry.metrics(), "\n");
  });

  void it("reads the runtime once per TTL however often it is scraped", async () => {
    const { runtime, registry, advance } = setup();
    container(runtime, "town-acme--blog", "acme/blog");
    await Promise.all([registry.metrics(), registry.metrics()]);
    advance(4_999);
    await registry.metrics();
    assert.equal(runtime.listings, 1);
    assert.equal(runtime.statsCalls, 1);
    advance(1);
    await registry.metrics();
    assert.equal(runtime.listings, 2);
    assert.equal(runtime.statsCalls, 2);
  });

  void it("leaves out a container whose sample fails, and every app when the runtime fails", async () => {
    const { runtime, registry, advance } = setup();
    container(runtime, "town-acme--blog", "acme/blog");
    container(runtime, "town-acme--broken", "acme/broken");
    runtime.statsAnswer = (name) =>
      name === "town-acme--broken"
        ? Promise.reject(new TownError("io", "podman: stats: no cgroup"))
        : Promise.resolve(figures(1));
    const text = await registry.metrics();
    assert.deepEqual(series(text, "town_app_memory_bytes"), [
      'town_app_memory_bytes{repo="acme",app="blog",container="town-acme--blog"} 1000',
    ]);
    // Running is running: a failed sample does not make the app down.
    assert.deepEqual(series(text, "town_app_up"), [
      'town_app_up{repo="acme",app="blog"} 1',
      'town_app_up{repo="acme",app="broken"} 1',
    ]);

    runtime.list = () => Promise.reject(new TownError("unavailable", "podman: no socket"));
    advance(5_000);
    const down = await registry.metrics();
    assert.deepEqual(series(down, "town_app_up"), []);
    assert.deepEqual(series(down, "town_app_memory_bytes"), []);
  });

  void it("exports at most maxApps apps", async () => {
    const { runtime, registry } = setup({ maxApps: 1 });
    container(runtime, "town-zeta--shop", "zeta/shop");
    container(runtime, "town-acme--blog", "acme/blog");
    assert.deepEqual(series(await registry.metrics(), "town_app_up"), [
      'town_app_up{repo="acme",app="blog"} 1',
    ]);
  });

  void it("exports package volumes' usage, and their quota when they have one", async () => {
    const names = ["pkg.acme.blog.data", "pkg.acme.blog--db.data", "pkg.zeta.shop.files"];
    for (const name of [...names, "user.notes"]) {
      const { volume } = await driver.create(name);
      await writeFile(join(volume.path, "file"), Buffer.alloc(10_000));
    }
    const used = await Promise.all(names.map(async (n) => (await driver.usage(n)).usedBytes));
    const storage: MetricsStorage = {
      list: () => driver.list(),
      usage: (name) => driver.usage(name),
      // The directory driver keeps no quotas: btrfs' answer for one volume.
      attributes: async (name) => {
        const attributes = await driver.attributes(name);
        return attributes && name === "pkg.acme.blog.data"
          ? { ...attributes, quota: 1_000_000 }
          : attributes;
      },
    };
    const { runtime, registry, advance } = setup({ storage });
    let listings = 0;
    storage.list = () => {
      listings += 1;
      return driver.list();
    };

    const text = await registry.metrics();
    assert.deepEqual(series(text, "town_volume_used_bytes"), [
      `town_volume_used_bytes{repo="acme",app="blog",volume="pkg.acme.blog--db.data"} ${used[1]}`,
      `town_volume_used_bytes{repo="acme",app="blog",volume="pkg.acme.blog.data"} ${used[0]}`,
      `town_volume_used_bytes{repo="zeta",app="shop",volume="pkg.zeta.shop.files"} ${used[2]}`,
    ]);
    assert.deepEqual(series(text, "town_volume_quota_bytes"), [
      'town_volume_quota_bytes{repo="acme",app="blog",volume="pkg.acme.blog.data"} 1000000',
    ]);
    assert.equal(runtime.listings, 1);

    // Volumes are measured once a minute, container figures every 5 s.
    advance(59_999);
    await registry.metrics();
    assert.equal(listings, 1);
    assert.equal(runtime.listings, 2);
    advance(1);
    await registry.metrics();
    assert.equal(listings, 2);
  });
});
