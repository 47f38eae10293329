import type {
  MonitoringAlerts,
  MonitoringProcess,
  MonitoringResult,
  MonitoringStatus,
} from "@townos/client";
import { table, timeText, oneLine } from "./text.js";
import { UsageError } from "./usage.js";

// Monitoring as `town monitor` prints it.

/** 2592000 → "30d", 90 → "90s": the largest unit that divides it. */
export function durationText(seconds: number): string {
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
  ] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** "running, pid 12, 127.0.0.1:9090, 1 restart, last error: …". */
export function processText(process: MonitoringProcess): string {
  const parts = [process.state];
  if (process.pid !== null) parts.push(`pid ${process.pid}`);
  parts.push(process.address);
  parts.push(`${process.restarts} restart${process.restarts === 1 ? "" : "s"}`);
  if (process.lastError !== null) parts.push(`last error: ${oneLine(process.lastError)}`);
  return parts.join(", ");
}

/** `town monitor status`: the services, the settings in force, then each scrape target. */
export function statusLines(status: MonitoringStatus): string[] {
  const { grafana } = status;
  const lines = [
    `monitoring: ${status.state}${status.reason === null ? "" : ` (${oneLine(status.reason)})`}`,
    `  prometheus: ${processText(status.prometheus)}`,
    `  node exporter: ${processText(status.nodeExporter)}`,
    `  retention ${durationText(status.retentionSeconds)}, scrape interval ${durationText(status.scrapeIntervalSeconds)}`,
    `  grafana: ${
      grafana.enabled
        ? [grafana.state, grafana.url, grafana.error === null ? null : oneLine(grafana.error)]
            .filter((part) => part !== null)
            .join(", ")
        : "off (setting monitoring.grafana)"
    }`,
    "",
  ];
  if (status.targets.length === 0) {
    lines.push("no scrape targets");
    return lines;
  }
  lines.push(
    table(
      ["JOB", "INSTANCE", "APP", "HEALTH", "LAST SCRAPE", "LAST ERROR"],
      status.targets.map((target) => {
        const { repo, app } = target.labels;
        return [
          target.job,
          target.instance,
          repo !== undefined && app !== undefined ? `${repo}/${app}` : "-",
          target.health,
          target.lastScrape === null ? "never" : timeText(target.lastScrape),
          target.lastError === null ? "-" : oneLine(target.lastError),
        ];
      }),
    ),
  );
  return lines;
}

/**
 * `town monitor query`: a row a series, a column a label (the metric's name
 * first), then its value; a range vector's series get a row a point.
 */
export function resultTable(result: MonitoringResult): string {
  if (result.series.length === 0) return "no series";
  const names = [...new Set(result.series.flatMap((series) => Object.keys(series.metric)))]
    .filter((name) => name !== "__name__")
    .sort();
  const hasName = result.series.some((series) => series.metric["__name__"] !== undefined);
  const matrix = result.resultType === "matrix";
  const header = [
    ...(hasName ? ["NAME"] : []),
    ...names.map((name) => name.toUpperCase()),
    ...(matrix ? ["TIME"] : []),
    "VALUE",
  ];
  const rows = result.series.flatMap((series) => {
    const labels = [
      ...(hasName ? [series.metric["__name__"] ?? "-"] : []),
      ...names.map((name) => series.metric[name] ?? "-"),
    ];
    if (!matrix) return [[...labels, series.values[0]?.[1] ?? "-"]];
    return series.values.map(([time, value]) => [...labels, timeText(time * 1000), value]);
  });
  return table(header, rows);
}

/** `town monitor alerts`: severity, what it is about and why; nothing wrong is said so. */
export function alertsText(alerts: MonitoringAlerts): string {
  if (!alerts.available) return "alerts unavailable: Prometheus could not be asked";
  if (alerts.items.length === 0) return "no alerts";
  return table(
    ["SEVERITY", "KIND", "SUBJECT", "MESSAGE"],
    alerts.items.map((alert) => [
      alert.severity,
      alert.kind,
      alert.subject,
      oneLine(alert.message),
    ]),
  );
}

/** `--time`: seconds since the epoch, or an RFC 3339 date ("2026-01-02T03:04:05Z"). */
export function parseTime(text: string): number {
  if (/^[0-9]{1,12}(\.[0-9]{1,3})?$/.test(text)) return Number(text);
  const ms = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$/.test(text)
    ? Date.parse(text)
    : NaN;
  if (Number.isNaN(ms)) {
    throw new UsageError(
      `--time is seconds since the epoch or a date like 2026-01-02T03:04:05Z, not "${text}"`,
    );
  }
  return ms / 1000;
}
