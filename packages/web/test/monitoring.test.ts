import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MonitoringStatus } from "@townos/client";
import { CHART_QUERIES, TIME_RANGES, type TimeRange } from "@townos/api/monitoring-queries";
import { formatBytes } from "../src/messages.js";
import {
  chartData,
  chartNote,
  durationText,
  formatValue,
  hasPoints,
  rangeQuery,
  refreshMs,
  seriesName,
} from "../src/monitoring.js";

const process = {
  state: "running",
  pid: 1,
  address: "127.0.0.1:9090",
  restarts: 0,
  lastError: null,
};
const STATUS: MonitoringStatus = {
  state: "on",
  reason: null,
  prometheus: process,
  nodeExporter: { ...process, address: "127.0.0.1:9100" },
  retentionSeconds: 30 * 86_400,
  scrapeIntervalSeconds: 15,
  targets: [],
  grafana: { enabled: false, state: "off", url: null, error: null },
};

const range = (id: string): TimeRange => {
  const found = TIME_RANGES.find((r) => r.id === id);
  assert.ok(found);
  return found;
};
const chart = (id: string) => {
  const found = CHART_QUERIES.find((c) => c.id === id);
  assert.ok(found);
  return found;
};

describe("a chart's range query", () => {
  it("asks for the range back from now, ending now, its rate window filled in", () => {
    const now = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const q = rangeQuery(chart("app-cpu"), range("24h"), 15, now);
    assert.equal(q.step, 360);
    assert.equal(q.end, Math.floor(now / 1000));
    // Whole steps back from now: the last point is the newest figure.
    assert.equal((q.end - q.start) % q.step, 0);
    assert.equal(q.end - q.start, 86_400);
    assert.equal(q.query, "sum by (repo, app) (rate(town_app_cpu_seconds_total[720s]))");
    // An hour: a point a scrape, a window of four scrapes.
    const hour = rangeQuery(chart("box-network-in"), range("1h"), 15, now);
    assert.equal(hour.step, 15);
    assert.match(hour.query, /\[60s\]/);
    assert.doesNotMatch(rangeQuery(chart("app-memory"), range("1h"), 15, now).query, /\$window/);
  });

  it("refreshes every 30 s up to 6 hours, and not beyond", () => {
    assert.equal(refreshMs(range("1h")), 30_000);
    assert.equal(refreshMs(range("6h")), 30_000);
    assert.equal(refreshMs(range("24h")), undefined);
    assert.equal(refreshMs(range("30d")), undefined);
  });
});

describe("a range result as uPlot's columns", () => {
  it("names lines by their labels", () => {
    assert.equal(seriesName({ repo: "main", app: "wiki" }, "CPU"), "main/wiki");
    assert.equal(
      seriesName({ repo: "main", app: "wiki", volume: "data", __name__: "x" }, "Fill"),
      "main/wiki data",
    );
    assert.equal(seriesName({ mountpoint: "/srv" }, "Disk"), "/srv");
    assert.equal(seriesName({}, "CPU in use"), "CPU in use");
    assert.equal(seriesName({ job: "node", instance: "127.0.0.1:9100" }, "Memory"), "Memory");
    assert.equal(
      seriesName({ job: "node", device: "eth0", fstype: "ext4" }, "x"),
      "device=eth0, fstype=ext4",
    );
  });

  it("aligns every series on the union of the timestamps, gaps as null, sorted by name", () => {
    const data = chartData(
      {
        resultType: "matrix",
        series: [
          {
            metric: { repo: "main", app: "wiki" },
            values: [
              [100, "1"],
              [130, "3"],
            ],
          },
          {
            metric: { repo: "main", app: "chat" },
            values: [
              [115, "0.5"],
              [130, "NaN"],
              [145, "+Inf"],
            ],
          },
        ],
      },
      "CPU by app",
      [100, 145],
    );
    assert.deepEqual(data.names, ["main/chat", "main/wiki"]);
    assert.deepEqual(data.span, [100, 145]);
    assert.deepEqual(data.columns, [
      [100, 115, 130, 145],
      [null, 0.5, null, null],
      [1, null, 3, null],
    ]);
    assert.equal(hasPoints(data), true);
  });

  it("has nothing to draw without series, or with only gaps", () => {
    const none = chartData({ resultType: "matrix", series: [] }, "x", [0, 1]);
    assert.deepEqual(none.columns, [[]]);
    assert.equal(hasPoints(none), false);
    const gaps = chartData(
      { resultType: "matrix", series: [{ metric: {}, values: [[1, "NaN"]] }] },
      "x",
      [0, 1],
    );
    assert.equal(hasPoints(gaps), false);
  });
});

describe("values and notes", () => {
  it("formats each unit", () => {
    assert.equal(formatValue(0.425, "ratio"), "43 %");
    assert.equal(formatValue(0.05, "ratio"), "5 %");
    assert.equal(formatValue(0.0042, "ratio"), "0.4 %");
    assert.equal(formatValue(1536, "bytes"), formatBytes(1536));
    assert.equal(formatValue(2048, "bytes/s"), `${formatBytes(2048)}/s`);
    assert.equal(formatValue(0.25, "cores"), "0.25 cores");
    assert.equal(durationText(30 * 86_400), "30 days");
    assert.equal(durationText(15), "15 s");
    assert.equal(durationText(7200), "2 h");
  });

  it("says why a chart is empty: Prometheus down, the query's error, or no data yet", () => {
    const empty = chartData({ resultType: "matrix", series: [] }, "x", [0, 1]);
    const full = chartData(
      { resultType: "matrix", series: [{ metric: {}, values: [[1, "2"]] }] },
      "x",
      [0, 1],
    );
    assert.equal(chartNote(STATUS, full, undefined), null);
    assert.equal(chartNote(STATUS, undefined, undefined), null);
    assert.deepEqual(chartNote(STATUS, empty, undefined), { kind: "empty", text: "No data yet." });
    assert.deepEqual(
      chartNote(STATUS, full, {
        type: "about:blank",
        title: "Bad request",
        status: 400,
        detail: "parse error at char 5",
        code: "invalid",
      }),
      { kind: "error", text: "This chart could not be loaded: parse error at char 5" },
    );
    assert.deepEqual(
      chartNote({ ...STATUS, state: "failed", reason: "exit status 1" }, empty, undefined),
      {
        kind: "down",
        text: "Prometheus is down: exit status 1",
      },
    );
    assert.deepEqual(chartNote({ ...STATUS, state: "failed" }, full, undefined), {
      kind: "down",
      text: "Prometheus is down.",
    });
    assert.equal(chartNote({ ...STATUS, state: "starting" }, undefined, undefined)?.kind, "down");
    assert.equal(
      chartNote(
        { ...STATUS, state: "starting", reason: "connection refused" },
        undefined,
        undefined,
      )?.text,
      "Prometheus is not answering yet: connection refused",
    );
    assert.equal(
      chartNote({ ...STATUS, state: "off" }, undefined, undefined)?.text,
      "Monitoring is off on this box.",
    );
  });
});
