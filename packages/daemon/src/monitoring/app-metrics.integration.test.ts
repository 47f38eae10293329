/**
 * Per-app metrics from the real Podman: a busybox container labelled as an
 * app's shows CPU time and memory and its app up; stopped, the app is down.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { podmanForSuite, podmanMissing, TEST_IMAGE } from "../../test/runtime/podman-host.js";
import { LABEL_APP, LABEL_BOX } from "../apps/labels.js";
import { PodmanRuntime } from "../runtime/podman/runtime.js";
import { AppMetrics } from "./app-metrics.js";

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const box = `/tmp/town-metrics-it-${run}`;
const repo = "metrics-it";
const app = `a${run}`;
const name = `town-${repo}--${app}`;

/** The value of the one series of `metric` in a scrape, or undefined without one. */
function value(text: string, metric: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${metric}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("AppMetrics against Podman", { skip: podmanMissing, timeout: 120_000 }, () => {
  const suite = podmanForSuite("town-app-metrics-", { [LABEL_BOX]: box });

  void it("shows a running app's CPU and memory and up, and a stopped one down", async () => {
    const runtime = new PodmanRuntime(suite.podman);
    const registry = new Registry();
    let now = 0;
    const metrics = new AppMetrics({ registry, runtime, box, clock: () => now });
    try {
      await runtime.ensure({
        kind: "container",
        name,
        hostname: name,
        image: TEST_IMAGE,
        // Some work first, so the CPU counter is clearly above zero.
        command: ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 600"],
        env: {},
        labels: { [LABEL_BOX]: box, [LABEL_APP]: `${repo}/${app}` },
        mounts: [],
        ports: [],
        network: null,
        restart: "no",
      });
      await runtime.start(name);

      const up = await registry.metrics();
      const labels = `{repo="${repo}",app="${app}"`;
      assert.ok(up.includes(`town_app_up${labels}} 1`), up);
      assert.ok((value(up, "town_app_cpu_seconds_total") ?? 0) > 0, up);
      assert.ok((value(up, "town_app_memory_bytes") ?? 0) > 0, up);
      assert.equal(value(up, "town_app_restarts_total"), 0);
      assert.ok(up.includes(`town_app_memory_bytes${labels},container="${name}"}`), up);

      await runtime.stop(name, { timeoutSeconds: 0 });
      now += 5_000;
      const down = await registry.metrics();
      assert.ok(down.includes(`town_app_up${labels}} 0`), down);
      assert.equal(value(down, "town_app_memory_bytes"), undefined);
    } finally {
      metrics.close();
      await runtime.remove(name, { timeoutSeconds: 0 });
    }
  });
});
