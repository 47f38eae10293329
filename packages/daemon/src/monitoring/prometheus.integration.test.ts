/**
 * Prometheus (Debian's 2.42) and Node Exporter (1.5) as the daemon runs them,
 * on free loopback ports in a scratch directory: both start (as the
 * `prometheus` user when the test runs as root), the generated config loads
 * and Node Exporter is scraped, a target on a closed port is reported down
 * with its error, a second supervisor adopts both, a killed Prometheus is
 * started again, a retention change restarts it, a pid file naming another
 * program is not adopted, and nothing is left running.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { MonitoringSeries } from "@townos/api";
import { processUid } from "../ingress/run-as.js";
import { commandLine } from "../system/proc.js";
import { eventually } from "../../test/net.js";
import { prometheusMissing } from "../../test/monitoring.js";
import { processesMentioning } from "../../test/processes.js";
import { freePort } from "../../test/runtime/podman-host.js";
import { PrometheusClient } from "./prometheus-client.js";
import { MonitoringProcesses } from "./prometheus.js";
import type { PrometheusInputs, ScrapeTarget } from "./types.js";

const missing = prometheusMissing();
const root = process.getuid?.() === 0;

/** Node Exporter's `up` series once Prometheus scraped it successfully. */
async function nodeUp(client: PrometheusClient): Promise<MonitoringSeries> {
  const [series] = (await client.query('up{job="node"} == 1')).series;
  assert.ok(series, "not scraped yet");
  return series;
}

describe(
  "MonitoringProcesses with the real Prometheus and Node Exporter",
  { skip: missing, timeout: 240_000 },
  () => {
    let dir = "";
    let prometheusPort = 0;
    let nodeExporterPort = 0;
    let client: PrometheusClient;
    const supervisors: MonitoringProcesses[] = [];
    const strangers: ChildProcess[] = [];
    const logged: string[] = [];

    function supervisor(): MonitoringProcesses {
      const made = new MonitoringProcesses({
        dir,
        prometheusPort,
        nodeExporterPort,
        log: {
          info: (message) => logged.push(message),
          warn: (message) => logged.push(message),
        },
      });
      supervisors.push(made);
      return made;
    }

    /** Live processes of this test: Prometheus runs in the scratch directory, Node Exporter names its port. */
    async function leftovers(): Promise<number[]> {
      return [
        ...(await processesMentioning(dir)),
        ...(await processesMentioning(`--web.listen-address=127.0.0.1:${nodeExporterPort}`)),
      ];
    }

    before(async () => {
      dir = join(await mkdtemp(join(tmpdir(), "town-prometheus-")), "monitoring");
      prometheusPort = await freePort();
      nodeExporterPort = await freePort();
      client = new PrometheusClient(`http://127.0.0.1:${prometheusPort}`, { timeoutMs: 5_000 });
    });

    after(async () => {
      for (const made of supervisors) await made.stopForTests().catch(() => undefined);
      for (const stranger of strangers) stranger.kill("SIGKILL");
      if (dir === "") return;
      for (const pid of await leftovers()) process.kill(pid, "SIGKILL");
      await rm(join(dir, ".."), { recursive: true, force: true });
    });

    let first: MonitoringProcesses;
    let downPort = 0;
    const inputs = (): PrometheusInputs => ({
      scrapeIntervalSeconds: 5,
      targets: [
        { job: "node", address: first.nodeExporterAddress, path: "/metrics", labels: {} },
        {
          job: "app",
          address: `127.0.0.1:${downPort}`,
          path: "/custom/metrics",
          labels: { repo: "default", app: "gone" },
        },
      ],
    });

    it("starts both on loopback, as the prometheus user when root", async () => {
      first = supervisor();
      assert.equal(first.prometheusUrl, `http://127.0.0.1:${prometheusPort}`);
      assert.equal(first.nodeExporterAddress, `127.0.0.1:${nodeExporterPort}`);
      await first.start();
      const { prometheus, nodeExporter } = first.status();
      assert.equal(prometheus.state, "running", String(prometheus.lastError));
      assert.equal(nodeExporter.state, "running", String(nodeExporter.lastError));
      assert.equal(prometheus.address, `127.0.0.1:${prometheusPort}`);
      assert.ok(prometheus.pid !== null && nodeExporter.pid !== null);
      const argv = (await commandLine(prometheus.pid)) ?? [];
      assert.ok(argv.includes(`--web.listen-address=127.0.0.1:${prometheusPort}`), argv.join(" "));
      assert.ok(argv.includes("--config.file=/proc/self/cwd/prometheus.yml"), argv.join(" "));
      if (root) {
        const uid = Number(execFileSync("id", ["-u", "prometheus"], { encoding: "utf8" }).trim());
        assert.equal(processUid(prometheus.pid), uid);
        assert.equal(processUid(nodeExporter.pid), uid);
        // The daemon's files stay closed to it; its TSDB is its own.
        assert.equal((await stat(dir)).mode & 0o777, 0o700);
        assert.equal((await stat(join(dir, "prometheus", "data"))).uid, uid);
      }
      assert.equal(await client.ready(), true);
    });

    it("loads the config: Node Exporter is scraped, a closed port is reported down", async () => {
      downPort = await freePort();
      await first.apply(inputs(), 3600);
      assert.match(
        await readFile(join(dir, "prometheus", "prometheus.yml"), "utf8"),
        /"job_name": "node"/,
      );
      const up = await eventually("node exporter scraped", () => nodeUp(client), 60_000);
      assert.equal(up.metric["instance"], first.nodeExporterAddress);
      // Node Exporter's own series, as the charts use them.
      const cpu = await client.query("count(node_cpu_seconds_total)");
      assert.ok(Number(cpu.series[0]?.values[0]?.[1]) > 0);
      const down = await eventually(
        "the closed port reported down",
        async () => {
          const target = (await client.targets()).find((item) => item.job === "app");
          assert.ok(target?.health === "down" && target.lastError !== null, JSON.stringify(target));
          return target;
        },
        60_000,
      );
      assert.equal(down.instance, `127.0.0.1:${downPort}`);
      assert.deepEqual(down.labels, { app: "gone", repo: "default" });
      assert.ok(down.lastScrape !== null);
      assert.equal(first.status().prometheus.lastError, null);
    });

    it("reloads a changed config only, and restarts Prometheus for a new retention", async () => {
      const before = first.status().prometheus.pid;
      const loads = (): number => logged.filter((line) => line.includes("loaded config")).length;
      const loaded = loads();
      await first.apply({ ...inputs(), targets: [...inputs().targets].reverse() }, 3600);
      assert.equal(loads(), loaded);
      const more: ScrapeTarget = {
        job: "town",
        address: `127.0.0.1:${downPort}`,
        path: "/metrics",
        labels: {},
      };
      await first.apply({ ...inputs(), targets: [...inputs().targets, more] }, 3600);
      assert.equal(loads(), loaded + 1);
      assert.equal(first.status().prometheus.pid, before);
      // Prometheus applies new targets within its own 5 s.
      await eventually("the new target listed", async () => {
        assert.ok((await client.targets()).some((target) => target.job === "town"));
      });
      await first.apply(inputs(), 7200);
      const { pid, state } = first.status().prometheus;
      assert.equal(state, "running");
      assert.notEqual(pid, before);
      assert.ok((await commandLine(pid ?? 0))?.includes("--storage.tsdb.retention.time=7200s"));
      assert.equal(await client.ready(), true);
    });

    it("leaves both running on close, for a second supervisor to adopt", async () => {
      const { prometheus, nodeExporter } = first.status();
      first.close();
      assert.equal(first.status().prometheus.state, "stopped");
      const second = supervisor();
      await second.start();
      await second.apply(inputs(), 7200);
      const adopted = second.status();
      assert.equal(adopted.prometheus.state, "adopted");
      assert.equal(adopted.nodeExporter.state, "adopted");
      assert.equal(adopted.prometheus.pid, prometheus.pid);
      assert.equal(adopted.nodeExporter.pid, nodeExporter.pid);
      assert.equal(await client.ready(), true);
    });

    it("starts a killed Prometheus again", async () => {
      const second = supervisors[1] as MonitoringProcesses;
      const killed = second.status().prometheus.pid ?? 0;
      process.kill(killed, "SIGKILL");
      await eventually("Prometheus restarted", () => {
        const { state, pid } = second.status().prometheus;
        assert.ok(state === "running" && pid !== killed, `${state} ${String(pid)}`);
        return Promise.resolve();
      });
      assert.ok(second.status().prometheus.restarts >= 1);
      assert.equal(await client.ready(), true);
      // The restarted one runs the desired config.
      await eventually("node exporter scraped after the restart", () => nodeUp(client), 60_000);
    });

    it("stops both, leaving nothing running", async () => {
      const second = supervisors[1] as MonitoringProcesses;
      await second.stopForTests();
      assert.deepEqual(await leftovers(), []);
      assert.equal(await client.ready(), false);
    });

    it("does not adopt a process that is not ours, nor stop it", async () => {
      const stranger = spawn("sleep", ["60"], { stdio: "ignore" });
      strangers.push(stranger);
      assert.ok(stranger.pid !== undefined);
      await writeFile(join(dir, "prometheus.pid"), `${stranger.pid}\n`);
      const third = supervisor();
      await third.start();
      const { prometheus } = third.status();
      assert.equal(prometheus.state, "running", String(prometheus.lastError));
      assert.notEqual(prometheus.pid, stranger.pid);
      await third.stopForTests();
      assert.ok((await commandLine(stranger.pid))?.[0] === "sleep", "the stranger lives on");
      assert.deepEqual(await leftovers(), []);
    });
  },
);
