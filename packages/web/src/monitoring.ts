import type {
  MonitoringRangeQuery,
  MonitoringResult,
  MonitoringStatus,
  Problem,
} from "@townos/client";
import {
  chartStep,
  rateWindow,
  withWindow,
  type ChartQuery,
  type ChartUnit,
  type TimeRange,
} from "@townos/api/monitoring-queries";
import { formatBytes, t } from "./messages.js";

// The Monitoring screen's data: range queries for a chart, their results as
// uPlot's columns, values in words, and what to say when there is nothing to draw.

/** Charts of ranges up to this long follow the present; longer ones change too slowly to matter. */
const LIVE_RANGE_SECONDS = 6 * 3600;
export const REFRESH_MS = 30_000;

/** How often a range's charts are fetched again; undefined: not on their own. */
export function refreshMs(range: TimeRange): number | undefined {
  return range.seconds <= LIVE_RANGE_SECONDS ? REFRESH_MS : undefined;
}

/**
 * The range query for a chart: `range` back from `nowMs`, its end on a
 * multiple of the step (so refreshes ask for the same points and lines do
 * not jitter), the rate window spanning several scrapes and the step.
 */
export function rangeQuery(
  chart: ChartQuery,
  range: TimeRange,
  scrapeIntervalSeconds: number,
  nowMs: number,
): MonitoringRangeQuery {
  const step = chartStep(range.seconds, scrapeIntervalSeconds);
  // Ends now: an end rounded down to a long step (3 h at 30 days) would leave out the newest data.
  const end = Math.floor(nowMs / 1000);
  return {
    query: withWindow(chart.expr, rateWindow(step, scrapeIntervalSeconds)),
    start: end - range.seconds,
    end,
    step,
  };
}

/** Labels every series of the box carries (there is one box): no help in telling lines apart. */
const BOX_LABELS = new Set(["__name__", "job", "instance"]);

/** A line's name from its labels: `repo/app`, with the volume or mount point; else the chart's title. */
export function seriesName(metric: Record<string, string>, fallback: string): string {
  const { repo, app, volume, mountpoint } = metric;
  const parts: string[] = [];
  if (repo !== undefined && app !== undefined) parts.push(`${repo}/${app}`);
  if (volume !== undefined) parts.push(volume);
  if (mountpoint !== undefined) parts.push(mountpoint);
  if (parts.length > 0) return parts.join(" ");
  const rest = Object.entries(metric)
    .filter(([name]) => !BOX_LABELS.has(name))
    .map(([name, value]) => `${name}=${value}`)
    .sort();
  return rest.length > 0 ? rest.join(", ") : fallback;
}

/** uPlot's data: the timestamps (seconds), then one column a series, null where it has no point. */
export type Columns = [number[], ...(number | null)[][]];

export interface ChartData {
  names: string[];
  columns: Columns;
  /** The time the chart spans (seconds): the whole range asked for, however few points came. */
  span: [number, number];
}

/**
 * A range result as uPlot's aligned columns: every series on the union of
 * the timestamps, sorted by name so colours stay put between refreshes.
 * Prometheus' NaN and ±Inf (a division by zero) are gaps, not points.
 */
export function chartData(
  result: MonitoringResult,
  fallbackName: string,
  span: [number, number],
): ChartData {
  const series = result.series
    .map((s) => ({ name: seriesName(s.metric, fallbackName), values: s.values }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const times = [...new Set(series.flatMap((s) => s.values.map(([time]) => time)))].sort(
    (a, b) => a - b,
  );
  const index = new Map(times.map((time, i) => [time, i]));
  const columns = series.map((s) => {
    const column: (number | null)[] = times.map(() => null);
    for (const [time, text] of s.values) {
      const value = Number(text);
      column[index.get(time) ?? 0] = Number.isFinite(value) ? value : null;
    }
    return column;
  });
  return { names: series.map((s) => s.name), columns: [times, ...columns], span };
}

/** Whether a chart has at least one point to draw. */
export function hasPoints(data: ChartData): boolean {
  return data.columns.slice(1).some((column) => column.some((value) => value !== null));
}

/** A value in its unit: "42 %", "1.5 GB", "300 KB/s", "0.25 cores". */
export function formatValue(value: number, unit: ChartUnit): string {
  switch (unit) {
    case "ratio":
      return `${new Intl.NumberFormat(undefined, { maximumFractionDigits: value < 0.1 ? 1 : 0 }).format(value * 100)} %`;
    case "bytes":
      return formatBytes(value);
    case "bytes/s":
      return `${formatBytes(value)}/s`;
    case "cores":
      return t("monitoring.cores", {
        count: new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 }).format(value),
      });
  }
}

/** What a chart shows instead of lines: why there are none. */
export type ChartNote =
  | { kind: "down"; text: string }
  | { kind: "error"; text: string }
  | { kind: "empty"; text: string };

/**
 * Why a chart has nothing to draw, or null when it has: monitoring not
 * running says so (not an empty box), a failed query gives its reason, a
 * query without points says there is no data yet.
 */
export function chartNote(
  status: MonitoringStatus,
  data: ChartData | undefined,
  error: Problem | undefined,
): ChartNote | null {
  const down = monitoringDown(status);
  if (down !== null) return { kind: "down", text: down };
  if (error !== undefined) {
    const reason = error.detail === "" ? error.title : error.detail;
    return { kind: "error", text: t("monitoring.failed", { reason }) };
  }
  if (data !== undefined && !hasPoints(data))
    return { kind: "empty", text: t("monitoring.noData") };
  return null;
}

/** A sentence when Prometheus cannot answer ("Prometheus is down: …"); null when it runs. */
export function monitoringDown(status: MonitoringStatus): string | null {
  switch (status.state) {
    case "on":
      return null;
    case "starting":
      // Also while a crashed Prometheus is started again: its last error says why it went.
      return status.reason === null
        ? t("monitoring.starting")
        : t("monitoring.startingBecause", { reason: status.reason });
    case "off":
      return t("monitoring.off");
    case "failed":
      return status.reason === null
        ? t("monitoring.down")
        : t("monitoring.downBecause", { reason: status.reason });
  }
}

/** 2592000 → "30 days", 15 → "15 s": the largest unit that divides it. */
export function durationText(seconds: number): string {
  for (const [key, size] of [
    ["monitoring.days", 86_400],
    ["monitoring.hours", 3600],
    ["monitoring.minutes", 60],
  ] as const) {
    if (seconds >= size && seconds % size === 0) return t(key, { count: seconds / size });
  }
  return t("monitoring.seconds", { count: seconds });
}
