/**
 * Monitoring figures.
 *
 * Part 1, exporting per-app metrics (needs root and Podman): 50 apps, each a
 * small busybox container labelled as an app's, and the daemon's registry
 * with AppMetrics over the real Podman. Prometheus scrapes every 15 s and the
 * stats cache lasts 5 s, so every scrape is a full round of Podman calls:
 * simulated here as back-to-back scrapes with the cache expired. Printed: the
 * time one scrape takes, the daemon's CPU time per scrape (and what that is
 * at one scrape per 15 s), its heap and RSS growth across the rounds, and
 * the Podman service's CPU time per scrape.
 * Run: npm run bench (node --expose-gc, so heap growth is what stays, not garbage).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Metrics } from "../src/api/metrics.js";
import { LABEL_APP, LABEL_BOX } from "../src/apps/labels.js";
import { AppMetrics, DEFAULT_STATS_TTL_MS } from "../src/monitoring/app-metrics.js";
import { Podman } from "../src/runtime/podman/client.js";
import { PodmanRuntime } from "../src/runtime/podman/runtime.js";
import { sampleProc } from "../src/runtime/qemu/stats.js";
import { podmanMissing, preparePodmanHost } from "../test/runtime/podman-host.js";
import { median, sleepingApp } from "./support.js";

const APPS = 50;
const ROUNDS = 20;
const SCRAPE_INTERVAL_S = 15;
/** Containers made or removed at once: two cores, and Podman serializes much of it anyway. */
const BATCH = 5;

async function appMetricsBench(): Promise<void> {
  if (podmanMissing) {
    console.log(`per-app metrics bench skipped: ${podmanMissing}`);
    return;
  }
  await preparePodmanHost();
  const scratch = await mkdtemp(join(tmpdir(), "town-monitoring-bench-"));
  const run = Date.now().toString(36);
  const box = join(scratch, "box");
  const podman = new Podman({ socketPath: join(scratch, "podman.sock") });
  const service = await podman.ensureService();
  const runtime = new PodmanRuntime(podman);
  const names = Array.from({ length: APPS }, (_, i) => `town-mb${run}--app${i}`);
  let metrics: AppMetrics | undefined;
  try {
    const made = performance.now();
    await inBatches(names, async (name, i) => {
      await runtime.ensure(
        sleepingApp(name, { [LABEL_BOX]: box, [LABEL_APP]: `mb${run}/app${i}` }),
      );
      await runtime.start(name);
    });
    console.log(
      `per-app metrics: ${APPS} busybox apps made and started in ${((performance.now() - made) / 1000).toFixed(1)} s`,
    );

    const daemonMetrics = new Metrics();
    let now = 0;
    metrics = new AppMetrics({
      registry: daemonMetrics.registry,
      runtime,
      box,
      clock: () => now,
    });
    const scrape = async (): Promise<string> => {
      now += DEFAULT_STATS_TTL_MS; // every scrape a full round, as at a 15 s interval
      return daemonMetrics.text();
    };
    // Warm-up: modules, sockets and the registry's first collection are not the steady state.
    const sample = await scrape();
    await scrape();

    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const rssBefore = process.memoryUsage().rss;
    const podmanBefore = await serviceCpuMs(service.pid);
    const cpuBefore = process.cpuUsage();
    const times: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const start = performance.now();
      await scrape();
      times.push(performance.now() - start);
    }
    const cpu = process.cpuUsage(cpuBefore);
    const podmanAfter = await serviceCpuMs(service.pid);
    gc?.();
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    const rssGrowth = process.memoryUsage().rss - rssBefore;

    const cpuPerScrapeMs = (cpu.user + cpu.system) / 1000 / ROUNDS;
    const cached: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const start = performance.now();
      await daemonMetrics.text(); // within the TTL: no Podman call
      cached.push(performance.now() - start);
    }

    const series = sample.split("\n").filter((line) => /^town_(app|volume)_/.test(line)).length;
    console.log(
      `per-app metrics: one scrape of ${APPS} apps (a full round of Podman calls): median ${median(times).toFixed(0)} ms, p95 ${percentile(times, 0.95).toFixed(0)} ms over ${ROUNDS}`,
    );
    console.log(
      `per-app metrics: one scrape within the cache's TTL: median ${median(cached).toFixed(1)} ms`,
    );
    console.log(
      `per-app metrics: daemon CPU per scrape ${cpuPerScrapeMs.toFixed(1)} ms (user+system), ${((cpuPerScrapeMs / (SCRAPE_INTERVAL_S * 1000)) * 100).toFixed(2)} % of one core at one scrape per ${SCRAPE_INTERVAL_S} s`,
    );
    if (podmanBefore !== undefined && podmanAfter !== undefined) {
      console.log(
        `per-app metrics: Podman service CPU per scrape ${((podmanAfter - podmanBefore) / ROUNDS).toFixed(0)} ms (${(((podmanAfter - podmanBefore) / ROUNDS / (SCRAPE_INTERVAL_S * 1000)) * 100).toFixed(2)} % of one core at one scrape per ${SCRAPE_INTERVAL_S} s)`,
      );
    }
    console.log(
      `per-app metrics: daemon heap growth over ${ROUNDS} scrapes ${mb(heapGrowth)} MB${gc ? "" : " (without --expose-gc: includes garbage)"}, RSS growth ${mb(rssGrowth)} MB, RSS ${mb(process.memoryUsage().rss)} MB`,
    );
    console.log(
      `per-app metrics: ${series} town_app_*/town_volume_* series, ${(Buffer.byteLength(sample) / 1024).toFixed(0)} KiB of scrape text in all`,
    );
  } finally {
    metrics?.close();
    await inBatches(names, (name) => runtime.remove(name, { timeoutSeconds: 0 }));
    podman.close();
    if (service.pid !== null) process.kill(service.pid);
    await rm(scratch, { recursive: true, force: true });
  }
}

/** `work` over every item, `BATCH` at a time. */
async function inBatches<T>(
  items: readonly T[],
  work: (item: T, index: number) => Promise<unknown>,
): Promise<void> {
  for (let start = 0; start < items.length; start += BATCH) {
    await Promise.all(items.slice(start, start + BATCH).map((item, i) => work(item, start + i)));
  }
}

/** CPU time the Podman service has used (its own process), ms; undefined when it is not ours. */
async function serviceCpuMs(pid: number | null): Promise<number | undefined> {
  return pid === null ? undefined : (await sampleProc(pid)).cpuMs;
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * fraction) - 1)] ?? 0;
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

await appMetricsBench();
