import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MonitoringProcess, MonitoringResult, MonitoringTarget } from "@townos/api";
import { ALERT_QUERIES } from "@townos/api";
import { isTownError, TownError } from "@townos/format";
import { alertsFrom } from "./alerts.js";
import { Monitoring, type PrometheusApi } from "./service.js";
import { scrapeTargets } from "./targets.js";
import type { PrometheusInputs } from "./types.js";

const running: MonitoringProcess = {
  state: "running",
  pid: 42,
  address: "127.0.0.1:9090",
  restarts: 0,
  lastError: null,
};

const appSeries = {
  metric: { repo: "default", app: "gitea" },
  values: [[1, "3"]] as [number, string][],
};
const boxSeries = { metric: { mountpoint: "/" }, values: [[1, "0.95"]] as [number, string][] };

/** Prometheus answering every query with the same series, and remembering what it was asked. */
function prometheus(series = [appSeries, boxSeries]): PrometheusApi & { asked: string[] } {
  const asked: string[] = [];
  const answer = (expr: string): Promise<MonitoringResult> => {
    asked.push(expr);
    return Promise.resolve({ resultType: "vector", series });
  };
  return {
    asked,
    query: answer,
    queryRange: answer,
    targets: (): Promise<MonitoringTarget[]> =>
      Promise.resolve([
        {
          job: "app",
          instance: "10.89.0.2:9000",
          labels: { repo: "default", app: "gitea" },
          health: "down",
          lastError: "connection refused",
          lastScrape: 1,
          lastScrapeDurationMs: 2,
        },
      ]),
  };
}

function monitoring(
  api: PrometheusApi,
  open = false,
  applied: PrometheusInputs[] = [],
): Monitoring {
  return new Monitoring({
    programs: {
      start: () => Promise.resolve(),
      apply: (inputs) => {
        applied.push(inputs);
        return Promise.resolve();
      },
      status: () => ({ prometheus: running, nodeExporter: running }),
      close: () => undefined,
      stopForTests: () => Promise.resolve(),
    },
    prometheus: api,
    retentionSeconds: () => 86_400,
    scrapeIntervalSeconds: () => 15,
    targets: (apps) =>
      scrapeTargets({
        nodeExporter: "127.0.0.1:9100",
        daemon: "127.0.0.1:5309",
        ingress: null,
        apps,
      }),
    appsOpenToUsers: () => open,
    grafanaEnabled: () => false,
    log: () => undefined,
  });
}

describe("the monitoring service", () => {
  it("shows apps' series and targets to administrators, and to users only when apps' health is open to them", async () => {
    const api = prometheus();
    const closed = monitoring(api);
    assert.deepEqual((await closed.query({ query: "x" }, { admin: true })).series, [
      appSeries,
      boxSeries,
    ]);
    assert.deepEqual((await closed.query({ query: "x" }, { admin: false })).series, [boxSeries]);
    assert.deepEqual((await closed.status({ admin: false })).targets, []);
    assert.equal((await closed.status({ admin: true })).targets[0]?.health, "down");
    const open = monitoring(api, true);
    assert.deepEqual((await open.query({ query: "x" }, { admin: false })).series, [
      appSeries,
      boxSeries,
    ]);
  });

  it("bounds range queries before asking Prometheus", async () => {
    const api = prometheus();
    const service = monitoring(api);
    const refused = (error: unknown) => isTownError(error) && error.code === "invalid_argument";
    await assert.rejects(
      () => service.queryRange({ query: "x", start: 10, end: 5, step: 1 }, { admin: true }),
      refused,
    );
    await assert.rejects(
      () =>
        service.queryRange({ query: "x", start: 0, end: 30 * 86_400, step: 1 }, { admin: true }),
      refused,
    );
    assert.deepEqual(api.asked, []);
    await service.queryRange({ query: "x", start: 0, end: 86_400, step: 360 }, { admin: true });
    assert.deepEqual(api.asked, ["x"]);
  });

  it("applies the box's targets, the apps' with their labels, and leaves out an app without an address", async () => {
    const applied: PrometheusInputs[] = [];
    const service = monitoring(prometheus(), false, applied);
    await service.start();
    service.attachApps(() =>
      Promise.resolve([
        {
          repo: "default",
          app: "gitea",
          instance: "gitea",
          address: "10.89.0.2",
          port: 9000,
          path: "/metrics",
        },
        {
          repo: "default",
          app: "off",
          instance: "off",
          address: null,
          port: 9000,
          path: "/metrics",
        },
      ]),
    );
    await service.update();
    assert.equal(applied.length, 3, "at start, when apps attach, and when asked");
    assert.deepEqual(applied.slice(2), [
      {
        scrapeIntervalSeconds: 15,
        targets: [
          { job: "node", address: "127.0.0.1:9100", path: "/metrics", labels: {} },
          { job: "town", address: "127.0.0.1:5309", path: "/metrics", labels: {} },
          {
            job: "app",
            address: "10.89.0.2:9000",
            path: "/metrics",
            labels: { repo: "default", app: "gitea", instance_name: "gitea" },
          },
        ],
      },
    ]);
  });

  it("words every alert, and says when Prometheus could not be asked", async () => {
    const service = monitoring(prometheus([boxSeries]));
    const alerts = await service.alerts({ admin: true });
    assert.equal(alerts.available, true);
    assert.equal(alerts.items.length, Object.keys(ALERT_QUERIES).length);
    assert.deepEqual(alertsFrom("disk", { resultType: "vector", series: [boxSeries] }), [
      {
        kind: "disk",
        severity: "warning",
        subject: "/",
        message: "The file system at / is 95 % full",
      },
    ]);
    assert.deepEqual(
      alertsFrom("restarts", {
        resultType: "vector",
        series: [
          {
            metric: { repo: "default", app: "gitea", container: "town-default--gitea" },
            values: [[1, "4"]],
          },
        ],
      })[0]?.message,
      "default/gitea (town-default--gitea) restarted 4 times in 15 minutes",
    );
    const down = monitoring({
      ...prometheus(),
      query: () => Promise.reject(new TownError("unavailable", "Prometheus does not answer")),
    });
    assert.deepEqual(await down.alerts({ admin: true }), { items: [], available: false });
  });

  it("answers unavailable when monitoring is off, and says so in the status", async () => {
    const off = new Monitoring({ off: "monitoring is off in this daemon's configuration" });
    await assert.rejects(
      () => off.query({ query: "up" }, { admin: true }),
      (error) => isTownError(error) && error.code === "unavailable",
    );
    const status = await off.status({ admin: true });
    assert.equal(status.state, "off");
    assert.equal(status.reason, "monitoring is off in this daemon's configuration");
  });
});
