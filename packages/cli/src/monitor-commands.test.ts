import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MonitoringStatus } from "@townos/client";
import { runTownCaptured } from "../test/run-town.js";
import {
  alertsText,
  durationText,
  parseTime,
  processText,
  resultTable,
  statusLines,
} from "./monitor-views.js";

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

const STATUS: MonitoringStatus = {
  state: "on",
  reason: null,
  prometheus: {
    state: "running",
    pid: 4100,
    address: "127.0.0.1:9090",
    restarts: 1,
    lastError: null,
  },
  nodeExporter: {
    state: "adopted",
    pid: 4101,
    address: "127.0.0.1:9100",
    restarts: 0,
    lastError: null,
  },
  retentionSeconds: 30 * 86_400,
  scrapeIntervalSeconds: 15,
  targets: [
    {
      job: "node",
      instance: "127.0.0.1:9100",
      labels: {},
      health: "up",
      lastError: null,
      lastScrape: T0,
      lastScrapeDurationMs: 12.5,
    },
    {
      job: "app",
      instance: "10.88.0.7:8080",
      labels: { repo: "main", app: "wiki" },
      health: "down",
      lastError: 'Get "http://10.88.0.7:8080/metrics":\n connection refused',
      lastScrape: T0 + 15_000,
      lastScrapeDurationMs: 1,
    },
  ],
  grafana: { enabled: false, state: "off", url: null, error: null },
};

describe("monitoring as town monitor prints it", () => {
  it("writes durations in their largest whole unit", () => {
    assert.equal(durationText(30 * 86_400), "30d");
    assert.equal(durationText(7200), "2h");
    assert.equal(durationText(300), "5m");
    assert.equal(durationText(15), "15s");
    assert.equal(durationText(90), "90s");
  });

  it("sums up a supervised process", () => {
    assert.equal(
      processText({ ...STATUS.prometheus, state: "restarting", pid: null, lastError: "exit 2" }),
      "restarting, 127.0.0.1:9090, 1 restart, last error: exit 2",
    );
  });

  it("shows the services, settings and each target with its health and error", () => {
    assert.deepEqual(statusLines(STATUS), [
      "monitoring: on",
      "  prometheus: running, pid 4100, 127.0.0.1:9090, 1 restart",
      "  node exporter: adopted, pid 4101, 127.0.0.1:9100, 0 restarts",
      "  retention 30d, scrape interval 15s",
      "  grafana: off (setting monitoring.grafana)",
      "",
      [
        "JOB   INSTANCE        APP        HEALTH  LAST SCRAPE           LAST ERROR",
        "node  127.0.0.1:9100  -          up      2026-01-02T03:04:05Z  -",
        'app   10.88.0.7:8080  main/wiki  down    2026-01-02T03:04:20Z  Get "http://10.88.0.7:8080/metrics": connection refused',
      ].join("\n"),
    ]);
  });

  it("says why monitoring is not on, and what Grafana is doing", () => {
    const lines = statusLines({
      ...STATUS,
      state: "failed",
      reason: "prometheus: exit status 1",
      targets: [],
      grafana: {
        enabled: true,
        state: "failed",
        url: "https://grafana.town.home/",
        error: "image not found",
      },
    });
    assert.equal(lines[0], "monitoring: failed (prometheus: exit status 1)");
    assert.equal(lines[4], "  grafana: failed, https://grafana.town.home/, image not found");
    assert.equal(lines.at(-1), "no scrape targets");
  });

  it("tabulates a vector: the name, each label, the value", () => {
    assert.equal(
      resultTable({
        resultType: "vector",
        series: [
          {
            metric: { __name__: "town_app_memory_bytes", repo: "main", app: "wiki" },
            values: [[T0 / 1000, "1048576"]],
          },
          { metric: { __name__: "town_app_memory_bytes", repo: "main" }, values: [] },
        ],
      }),
      [
        "NAME                   APP   REPO  VALUE",
        "town_app_memory_bytes  wiki  main  1048576",
        "town_app_memory_bytes  -     main  -",
      ].join("\n"),
    );
  });

  it("tabulates a scalar, a range vector point by point, and nothing", () => {
    assert.equal(
      resultTable({ resultType: "scalar", series: [{ metric: {}, values: [[1, "2"]] }] }),
      "VALUE\n2",
    );
    assert.equal(
      resultTable({
        resultType: "matrix",
        series: [
          {
            metric: { job: "node" },
            values: [
              [T0 / 1000, "1"],
              [T0 / 1000 + 15, "0"],
            ],
          },
        ],
      }),
      [
        "JOB   TIME                  VALUE",
        "node  2026-01-02T03:04:05Z  1",
        "node  2026-01-02T03:04:20Z  0",
      ].join("\n"),
    );
    assert.equal(resultTable({ resultType: "vector", series: [] }), "no series");
  });

  it("lists alerts, says when there are none, and when nobody could look", () => {
    assert.equal(
      alertsText({
        available: true,
        items: [
          { kind: "disk", severity: "critical", subject: "/", message: "/ is 95 % full" },
          { kind: "target", severity: "warning", subject: "app main/wiki", message: "down" },
        ],
      }),
      [
        "SEVERITY  KIND    SUBJECT        MESSAGE",
        "critical  disk    /              / is 95 % full",
        "warning   target  app main/wiki  down",
      ].join("\n"),
    );
    assert.equal(alertsText({ available: true, items: [] }), "no alerts");
    assert.match(alertsText({ available: false, items: [] }), /^alerts unavailable/);
  });

  it("reads --time as seconds or an RFC 3339 date", () => {
    assert.equal(parseTime("1767323045"), 1767323045);
    assert.equal(parseTime("1767323045.5"), 1767323045.5);
    assert.equal(parseTime("2026-01-02T03:04:05Z"), T0 / 1000);
    assert.equal(parseTime("2026-01-02T04:04:05+01:00"), T0 / 1000);
    for (const bad of ["yesterday", "-1h", "2026-13-45T00:00:00Z", "1e9", ""]) {
      assert.throws(() => parseTime(bad), /--time is seconds since the epoch/);
    }
  });

  it("refuses a bad --time and a missing expression before asking the daemon", async () => {
    // Nothing listens on port 9: a request would fail differently.
    const town = (...argv: string[]) =>
      runTownCaptured(["--server", "http://127.0.0.1:9", ...argv], {
        cwd: "/",
        env: { TOWN_TOKEN: "t" },
      });
    const time = await town("monitor", "query", "up", "--time", "soon");
    assert.equal(time.code, 2);
    assert.match(time.stderr, /^town: --time is seconds since the epoch/);
    const missing = await town("monitor", "query");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /missing required argument 'promql'/);
  });
});
