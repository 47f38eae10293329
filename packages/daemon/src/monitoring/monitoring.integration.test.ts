/**
 * Monitoring end to end: the daemon runs the real Prometheus and Node
 * Exporter, an installed app's metrics endpoint (the `metrics` extension)
 * and its per-container figures appear with the app's labels, every PromQL
 * expression the dashboard and the alerts use runs on the real Prometheus,
 * a target that does not answer is reported down, and a killed Prometheus
 * is started again.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ALERT_QUERIES,
  CHART_QUERIES,
  rateWindow,
  withWindow,
  type MonitoringResult,
} from "@townos/api";
import type { TownClient } from "@townos/client";
import { setupAdmin, startPodmanDaemon, untilAppsAvailable } from "../../test/daemon.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import { prometheusMissing } from "../../test/monitoring.js";
import { eventually, scratchDir } from "../../test/net.js";
import {
  freePort,
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";

const missing = podmanMissing || prometheusMissing();
if (missing) console.log(`# skipping the monitoring integration test: ${missing}`);

const SCRAPE_SECONDS = 5;

/** A busybox web server answering `/metrics` with one counter of its own on `port`. */
const metricsPackage = (metricsPort: number) => `
image: ${TEST_IMAGE}
description: Serves Prometheus metrics
entrypoint: ["/bin/sh", "-c"]
command: ["mkdir -p /www && printf 'demo_widgets_total 7\\\\n' > /www/metrics && exec httpd -f -p 9000 -h /www"]
metrics:
  port: ${metricsPort}
  path: /metrics
`;

describe("monitoring", { skip: missing, timeout: 300_000 }, () => {
  const repo = `m${randomBytes(3).toString("hex")}`;
  let scratch = "";
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let admin: TownClient;

  const query = (expr: string): Promise<MonitoringResult> => admin.monitoringQuery({ query: expr });
  const seriesOf = async (expr: string) => {
    const result = await query(expr);
    assert.ok(result.series.length > 0, `${expr} has no series yet`);
    return result.series;
  };

  before(async () => {
    await preparePodmanHost();
    scratch = await scratchDir("town-monitoring-");
    ({ podman, service } = await startTestPodman(scratch));
    await createRepo(join(scratch, "git"), "apps.git", {
      "packages/stats/1.0.yaml": metricsPackage(9000),
      // Declares a port nothing listens on: its target is down.
      "packages/silent/1.0.yaml": metricsPackage(9999),
    });
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startPodmanDaemon(scratch, podman, {
      monitoring: { prometheusPort: await freePort(), nodeExporterPort: await freePort() },
    });
    admin = await setupAdmin(daemon);
    await admin.setSetting("monitoring.scrape_interval", SCRAPE_SECONDS);
    await admin.addRepository({ name: repo, url: server.url("apps.git") });
    await untilAppsAvailable(admin);
  });

  after(async () => {
    try {
      const monitoring = daemon?.boot.services?.monitoring;
      await daemon?.stop();
      await monitoring?.stopForTests();
      await server?.close();
      await removeAppLeftovers(podman, [`${repo}/stats`, `${repo}/silent`]);
    } finally {
      stopTestPodman({ podman, service });
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("scrapes an installed app's endpoint and exports its containers' figures, labelled with the app", async () => {
    await admin.installApp({ repo, name: "stats", answers: {} });
    const [widgets] = await eventually(
      "the app's own series",
      () => seriesOf("demo_widgets_total"),
      60_000,
    );
    assert.equal(widgets?.metric["repo"], repo);
    assert.equal(widgets.metric["app"], "stats");
    assert.equal(widgets.metric["job"], "app");
    assert.equal(widgets.values[0]?.[1], "7");

    const [up] = await eventually("town_app_up", () =>
      seriesOf(`town_app_up{repo="${repo}",app="stats"}`),
    );
    assert.equal(up?.values[0]?.[1], "1");
    const [memory] = await seriesOf(`town_app_memory_bytes{repo="${repo}",app="stats"}`);
    assert.ok(Number(memory?.values[0]?.[1]) > 0);
    assert.ok((memory?.metric["container"] ?? "").length > 0);
  });

  it("runs every expression of the charts and the alerts on the real Prometheus", async () => {
    const now = Date.now() / 1000;
    const step = 15;
    for (const chart of CHART_QUERIES) {
      const expr = withWindow(chart.expr, rateWindow(step, SCRAPE_SECONDS));
      await admin.monitoringQueryRange({ query: expr, start: now - 600, end: now, step });
    }
    for (const expr of Object.values(ALERT_QUERIES)) await query(expr);
    // The box's own figures are there once two scrapes made a rate.
    await eventually(
      "the box's CPU",
      async () => {
        const cpu = CHART_QUERIES.find((chart) => chart.id === "box-cpu");
        assert.ok(cpu);
        await seriesOf(withWindow(cpu.expr, rateWindow(step, SCRAPE_SECONDS)));
      },
      60_000,
    );
    await assert.rejects(() => query("sum(("), /parse error|bad_data|unexpected/i);
  });

  it("reports a target that does not answer as down, and alerts about it", async () => {
    await admin.installApp({ repo, name: "silent", answers: {} });
    const target = await eventually(
      "the silent app's target to be down",
      async () => {
        const found = (await admin.monitoringStatus()).targets.find(
          (candidate) => candidate.labels["app"] === "silent",
        );
        assert.equal(found?.health, "down");
        return found;
      },
      60_000,
    );
    assert.ok((target.lastError ?? "").length > 0);
    const alerts = await admin.monitoringAlerts();
    assert.equal(alerts.available, true);
    assert.ok(
      alerts.items.some((alert) => alert.kind === "target" && alert.subject === `${repo}/silent`),
      JSON.stringify(alerts.items),
    );
  });

  it("starts Prometheus again when it is killed", async () => {
    const before = (await admin.monitoringStatus()).prometheus;
    assert.ok(before.pid !== null);
    process.kill(before.pid, "SIGKILL");
    const after = await eventually(
      "Prometheus to run again",
      async () => {
        const status = await admin.monitoringStatus();
        assert.notEqual(status.prometheus.pid, before.pid);
        assert.equal(status.state, "on");
        return status;
      },
      60_000,
    );
    assert.ok(after.prometheus.restarts > before.restarts);
    await eventually("queries to work again", () => seriesOf("up"), 30_000);
  });
});
