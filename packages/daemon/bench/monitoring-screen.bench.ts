/**
 * The monitoring screen's data transfer for a 24 h range: the bytes of the
 * API answers the dashboard fetches (the status, then one range query per
 * chart, exactly as the screen builds them: `chartStep` gives 240 points a
 * series), with 10 installed apps exporting their figures. Needs root, Podman,
 * Prometheus and Node Exporter.
 *
 * A fresh Prometheus holds minutes, not a day: a 24 h query would return
 * only the last few points. The size of an answer depends on its series
 * and points, not on the time they span, so the same queries are asked
 * over the last 4 minutes with the step that gives the same 240 points
 * (the rate windows as for the real range). Printed: bytes per chart and in
 * all, and gzip's size of the same (what a compressing proxy would send).
 * Run: node --conditions=source --import tsx packages/daemon/bench/monitoring-screen.bench.ts
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import { CHART_POINTS, CHART_QUERIES, chartStep, rateWindow, withWindow } from "@townos/api";
import { startDaemon } from "../src/daemon.js";
import { testDaemonConfig } from "../test/daemon.js";
import { prometheusMissing } from "../test/monitoring.js";
import { scratchDir } from "../test/net.js";
import {
  freePort,
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../test/runtime/podman-host.js";
import { createRepo, startGitServer } from "../test/git-server.js";
import { benchAdmin } from "./support.js";

const APPS = 10;
/** An app that only sleeps: its container's figures are what the per-app charts draw. */
const SLEEPER = `
image: ${TEST_IMAGE}
description: Sleeps
entrypoint: ["/bin/sleep"]
command: ["3600"]
`;
const SCRAPE_S = 5;
const DAY_S = 24 * 3600;
const WINDOW_S = 240;

const missing = podmanMissing || prometheusMissing();
if (missing) {
  console.log(`monitoring screen bench skipped: ${missing}`);
  process.exit(0);
}

await preparePodmanHost();
const scratch = await scratchDir("town-monitoring-screen-");
const test = await startTestPodman(scratch);
const daemon = await startDaemon(
  testDaemonConfig(scratch, {
    logLevel: "warn",
    checkResponses: false,
    apps: { podman: { socketPath: test.podman.socketPath } },
    monitoring: { prometheusPort: await freePort(), nodeExporterPort: await freePort() },
  }),
);
const apps = Array.from({ length: APPS }, (_, i) => `app${i}`);
const git = await startGitServer({ root: join(scratch, "git") });
try {
  await createRepo(
    join(scratch, "git"),
    "screen.git",
    Object.fromEntries(apps.map((name) => [`packages/${name}/1.0.yaml`, SLEEPER])),
  );
  const client = await benchAdmin(daemon, { name: "screen", url: git.url("screen.git") });
  await client.setSetting("monitoring.scrape_interval", SCRAPE_S);
  for (const name of apps) await client.installApp({ repo: "screen", name, answers: {} });
  // Enough scrapes for the whole window to hold points and rates.
  const started = performance.now();
  for (;;) {
    const up = await client
      .monitoringQuery({ query: `count(town_app_up{repo="screen"})` })
      .catch(() => undefined);
    const seconds = (performance.now() - started) / 1000;
    if (Number(up?.series[0]?.values[0]?.[1] ?? 0) >= APPS && seconds > WINDOW_S + 4 * SCRAPE_S)
      break;
    await sleep(2000);
  }

  const step = chartStep(DAY_S, 15);
  // The real range's window (12 min) would reach before the data: a window of as many scrapes here.
  const window = rateWindow(WINDOW_S / CHART_POINTS, SCRAPE_S);
  const end = Math.floor(Date.now() / 1000);
  const bodies: { id: string; text: string; series: number }[] = [];
  const fetchJson = async (path: string): Promise<string> => {
    const response = await fetch(`${daemon.url}/api/v1${path}`, {
      headers: { authorization: `Bearer ${client.token ?? ""}` },
    });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return response.text();
  };
  const status = await fetchJson("/monitoring/status");
  bodies.push({ id: "status", text: status, series: 0 });
  for (const chart of CHART_QUERIES) {
    const query = new URLSearchParams({
      query: withWindow(chart.expr, window),
      start: String(end - WINDOW_S),
      end: String(end),
      step: String(WINDOW_S / CHART_POINTS),
    });
    const body = await fetchJson(`/monitoring/query_range?${query.toString()}`);
    const series = (JSON.parse(body) as { series: unknown[] }).series.length;
    bodies.push({ id: chart.id, text: body, series });
  }
  const sizes = bodies.map((body) => ({
    ...body,
    bytes: Buffer.byteLength(body.text),
    gzip: gzipSync(body.text).length,
  }));
  const sum = (key: "bytes" | "gzip") => sizes.reduce((total, size) => total + size[key], 0);
  console.log(
    `monitoring screen, 24 h range (step ${step} s, ${CHART_POINTS} points a series, ${APPS} apps): ${sizes.length} requests, ${kib(sum("bytes"))} (gzip ${kib(sum("gzip"))})`,
  );
  for (const size of sizes)
    console.log(
      `  ${size.id.padEnd(16)} ${kib(size.bytes).padStart(10)} (gzip ${kib(size.gzip)})  ${size.series} series`,
    );
} finally {
  const monitoring = daemon.boot.services?.monitoring;
  await daemon.stop();
  await monitoring?.stopForTests();
  await git.close();
  await removeAppLeftovers(
    test.podman,
    apps.map((name) => `screen/${name}`),
  );
  stopTestPodman(test);
  await rm(scratch, { recursive: true, force: true });
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}
