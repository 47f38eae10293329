/**
 * Every PromQL expression the dashboard's charts and the daemon's alerts
 * use, in one place: the monitoring integration test runs each against the
 * real Prometheus, so a typo or a renamed series fails there, not on a
 * person's screen. `$window` stands for the rate window (`rateWindow`).
 */

export type ChartUnit = "ratio" | "bytes" | "bytes/s" | "cores";

export interface ChartQuery {
  id: string;
  title: string;
  unit: ChartUnit;
  /** Box charts draw one line per series; app charts one per `repo/app`. */
  scope: "box" | "apps" | "volumes";
  expr: string;
}

/** Node Exporter's file systems that hold data (not in-memory or container layers). */
const DATA_FS = `fstype!~"tmpfs|ramfs|overlay|squashfs|devtmpfs|nsfs|autofs"`;

export const CHART_QUERIES: readonly ChartQuery[] = [
  {
    id: "box-cpu",
    title: "CPU in use",
    unit: "ratio",
    scope: "box",
    expr: `1 - avg(rate(node_cpu_seconds_total{mode="idle"}[$window]))`,
  },
  {
    id: "box-memory",
    title: "Memory in use",
    unit: "bytes",
    scope: "box",
    expr: "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes",
  },
  {
    id: "box-disk",
    title: "Disk filled",
    unit: "ratio",
    scope: "box",
    expr: `1 - max by (mountpoint) (node_filesystem_avail_bytes{${DATA_FS}} / node_filesystem_size_bytes{${DATA_FS}})`,
  },
  {
    id: "box-network-in",
    title: "Network in",
    unit: "bytes/s",
    scope: "box",
    expr: `sum(rate(node_network_receive_bytes_total{device!="lo"}[$window]))`,
  },
  {
    id: "box-network-out",
    title: "Network out",
    unit: "bytes/s",
    scope: "box",
    expr: `sum(rate(node_network_transmit_bytes_total{device!="lo"}[$window]))`,
  },
  {
    id: "app-cpu",
    title: "CPU by app",
    unit: "cores",
    scope: "apps",
    expr: "sum by (repo, app) (rate(town_app_cpu_seconds_total[$window]))",
  },
  {
    id: "app-memory",
    title: "Memory by app",
    unit: "bytes",
    scope: "apps",
    expr: "sum by (repo, app) (town_app_memory_bytes)",
  },
  {
    id: "app-network",
    title: "Network by app (in and out)",
    unit: "bytes/s",
    scope: "apps",
    expr: "sum by (repo, app) (rate(town_app_network_receive_bytes_total[$window]) + rate(town_app_network_transmit_bytes_total[$window]))",
  },
  {
    id: "volume-fill",
    title: "Volumes filled",
    unit: "ratio",
    scope: "volumes",
    expr: "town_volume_used_bytes / (town_volume_quota_bytes > 0)",
  },
];

/** What raises each built-in alert: every series the expression returns is one alert. */
export const ALERT_QUERIES = {
  /** A file system above 90 % full (the value: the filled fraction). */
  disk: `1 - node_filesystem_avail_bytes{${DATA_FS}} / node_filesystem_size_bytes{${DATA_FS}} > 0.9`,
  /** A volume above 90 % of its quota. */
  volume: "town_volume_used_bytes / (town_volume_quota_bytes > 0) > 0.9",
  /** A container restarted three times or more in 15 minutes. */
  restarts: "increase(town_app_restarts_total[15m]) >= 3",
  /** A scrape target that did not answer. */
  target: "up == 0",
  /** Less than 10 % of memory available. */
  memory: "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.1",
} as const;

export interface TimeRange {
  id: string;
  label: string;
  seconds: number;
}

export const TIME_RANGES: readonly TimeRange[] = [
  { id: "1h", label: "1 hour", seconds: 3600 },
  { id: "6h", label: "6 hours", seconds: 6 * 3600 },
  { id: "24h", label: "24 hours", seconds: 24 * 3600 },
  { id: "7d", label: "7 days", seconds: 7 * 24 * 3600 },
  { id: "30d", label: "30 days", seconds: 30 * 24 * 3600 },
];

/** Points a chart asks for across its range: enough for a screen's width, few to send. */
export const CHART_POINTS = 240;

/** Seconds between a chart's points for a range (whole seconds, at least the scrape interval). */
export function chartStep(rangeSeconds: number, scrapeIntervalSeconds: number): number {
  return Math.max(scrapeIntervalSeconds, Math.ceil(rangeSeconds / CHART_POINTS));
}

/** A rate window that always spans several scrapes and the step between points (`30s`, `4m`…). */
export function rateWindow(stepSeconds: number, scrapeIntervalSeconds: number): string {
  return `${Math.max(4 * scrapeIntervalSeconds, 2 * stepSeconds)}s`;
}

/** The expression with its `$window` filled in. */
export function withWindow(expr: string, window: string): string {
  return expr.replaceAll("$window", window);
}
