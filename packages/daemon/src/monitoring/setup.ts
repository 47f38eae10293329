/**
 * Monitoring as the daemon runs it: Prometheus and Node Exporter under
 * `<dataDir>/monitoring`, their scrape configuration kept equal to the box
 * (its own programs, the apps' metrics endpoints) on every change of the
 * installs or the settings and every minute (container addresses change
 * when apps restart).
 */
import { join } from "node:path";
import type { Settings } from "../store/settings.js";
import { GrafanaRunner, type GrafanaRunnerOptions } from "./grafana-runner.js";
import { PrometheusClient } from "./prometheus-client.js";
import { MonitoringProcesses, type MonitoringLog } from "./prometheus.js";
import { Monitoring } from "./service.js";
import { scrapeTargets } from "./targets.js";
import type { MonitoringConfig } from "./types.js";

/** How often the targets are looked at again without a change. */
const RESYNC_MS = 60_000;

export interface MonitoringWiring {
  dataDir: string;
  /** The daemon's API port: Prometheus scrapes its `/metrics` on loopback. */
  apiPort: number;
  settings: Settings;
  /** Caddy's metrics address, `127.0.0.1:PORT`, or null without the ingress. */
  ingressMetrics: () => string | null;
  /** Starts, adoptions and reloads (info); failures (warn). */
  log: MonitoringLog & { warn: (message: string, fields?: Record<string, unknown>) => void };
}

export function createMonitoring(
  config: MonitoringConfig | false | undefined,
  wiring: MonitoringWiring,
): Monitoring {
  if (config === undefined || config === false)
    return new Monitoring({ off: "monitoring is off in this daemon's configuration" });
  const { settings } = wiring;
  const programs = new MonitoringProcesses({
    dir: join(wiring.dataDir, "monitoring"),
    prometheusPort: config.prometheusPort,
    nodeExporterPort: config.nodeExporterPort,
    log: wiring.log,
  });
  return new Monitoring({
    programs,
    prometheus: new PrometheusClient(programs.prometheusUrl),
    retentionSeconds: () => settings.number("monitoring.retention"),
    scrapeIntervalSeconds: () => settings.number("monitoring.scrape_interval"),
    targets: (apps) =>
      scrapeTargets({
        nodeExporter: programs.nodeExporterAddress,
        daemon: `127.0.0.1:${wiring.apiPort}`,
        ingress: wiring.ingressMetrics(),
        apps,
      }),
    appsOpenToUsers: () => settings.flag("apps.logs_for_users"),
    grafanaEnabled: () => settings.flag("monitoring.grafana"),
    log: (message, fields) => {
      wiring.log.warn(message, fields);
    },
  });
}

/** Grafana as the daemon runs it once the container runtime is there; undefined when monitoring is off. */
export function grafanaRunner(
  config: MonitoringConfig | false | undefined,
  options: Omit<GrafanaRunnerOptions, "prometheusUrl" | "dir"> & { dataDir: string },
): GrafanaRunner | undefined {
  if (config === undefined || config === false) return undefined;
  const { dataDir, ...rest } = options;
  return new GrafanaRunner({
    ...rest,
    dir: join(dataDir, "monitoring", "grafana"),
    prometheusUrl: `http://127.0.0.1:${config.prometheusPort}`,
  });
}

/**
 * Starts monitoring and keeps its configuration current: `changed` is
 * called by the daemon when installs change. Returns a stop function.
 */
export function runMonitoring(
  monitoring: Monitoring,
  settings: Settings,
): { changed: () => void; stop: () => void } {
  let stopped = false;
  const changed = (): void => {
    if (!stopped) void monitoring.update();
  };
  void monitoring.start();
  settings.onChange((key) => {
    if (key.startsWith("monitoring.")) changed();
  });
  const timer = setInterval(changed, RESYNC_MS);
  timer.unref();
  return {
    changed,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
