/**
 * The shapes the monitoring parts share: what Prometheus scrapes (made from
 * desired state by the daemon, compiled into Prometheus' config), and how
 * the daemon runs Prometheus and Node Exporter.
 */

/** Where Prometheus and Node Exporter listen (loopback only); a daemon without it runs no monitoring. */
export interface MonitoringConfig {
  /** Default 9090. */
  prometheusPort: number;
  /** Default 9100. */
  nodeExporterPort: number;
}

export const DEFAULT_MONITORING: MonitoringConfig = {
  prometheusPort: 9090,
  nodeExporterPort: 9100,
};

export type ScrapeJob = "node" | "town" | "ingress" | "app";

/** One place Prometheus scrapes. */
export interface ScrapeTarget {
  job: ScrapeJob;
  /** `HOST:PORT`: loopback for the box's own, an app container's address on its network for an app's. */
  address: string;
  /** Absolute URL path, default `/metrics`. */
  path: string;
  /** Extra labels on every series of the target: `repo`, `app` (and `instance_name`) for an app's. */
  labels: Readonly<Record<string, string>>;
}

/** Everything Prometheus' config is made from. */
export interface PrometheusInputs {
  scrapeIntervalSeconds: number;
  targets: readonly ScrapeTarget[];
}
