import { Type, type Static } from "@sinclair/typebox";
import { Dictionary, Nullable, StringEnum } from "./schema.js";

/** A program the daemon supervises for monitoring (Prometheus, Node Exporter). */
export const MonitoringProcessSchema = Type.Object({
  /** `starting`, `running`, `adopted`, `restarting`, `failed`, `stopped`, or `off` when not wanted. */
  state: Type.String(),
  pid: Nullable(Type.Integer()),
  /** Where it listens, `127.0.0.1:PORT`. */
  address: Type.String(),
  restarts: Type.Integer(),
  lastError: Nullable(Type.String()),
});
export type MonitoringProcess = Static<typeof MonitoringProcessSchema>;

/** One scrape target as Prometheus last saw it. */
export const MonitoringTargetSchema = Type.Object({
  /** `node`, `town`, `ingress`, or `app` (a package's metrics endpoint). */
  job: Type.String(),
  /** `HOST:PORT` scraped. */
  instance: Type.String(),
  /** Labels the target carries (`repo`, `app` for an app's). */
  labels: Dictionary(Type.String()),
  health: StringEnum(["up", "down", "unknown"]),
  /** Why the last scrape failed; null when it worked. */
  lastError: Nullable(Type.String()),
  /** ms since the epoch; null before the first. */
  lastScrape: Nullable(Type.Integer()),
  lastScrapeDurationMs: Nullable(Type.Number()),
});
export type MonitoringTarget = Static<typeof MonitoringTargetSchema>;

export const MonitoringStatusSchema = Type.Object({
  /** `on`: Prometheus answers; `starting`; `failed` (see `reason`); `off`: not configured or not installed. */
  state: StringEnum(["on", "starting", "failed", "off"]),
  reason: Nullable(Type.String()),
  prometheus: MonitoringProcessSchema,
  nodeExporter: MonitoringProcessSchema,
  /** Seconds of metrics kept, and between scrapes (the settings in force). */
  retentionSeconds: Type.Integer(),
  scrapeIntervalSeconds: Type.Integer(),
  targets: Type.Array(MonitoringTargetSchema),
  /** The optional Grafana (setting `monitoring.grafana`). */
  grafana: Type.Object({
    enabled: Type.Boolean(),
    /** `off`, `starting`, `running`, `failed`. */
    state: Type.String(),
    /** `https://grafana.<tld>/` once it runs. */
    url: Nullable(Type.String()),
    error: Nullable(Type.String()),
  }),
});
export type MonitoringStatus = Static<typeof MonitoringStatusSchema>;

const PromQl = Type.String({ minLength: 1, maxLength: 4096 });

export const MonitoringQuerySchema = Type.Object(
  {
    query: PromQl,
    /** Seconds since the epoch; default now. */
    time: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);
export type MonitoringQuery = Static<typeof MonitoringQuerySchema>;

/** Range queries: at most `MAX_RANGE_POINTS` points per series, as Prometheus itself allows. */
export const MAX_RANGE_POINTS = 11_000;

export const MonitoringRangeQuerySchema = Type.Object(
  {
    query: PromQl,
    /** Seconds since the epoch. */
    start: Type.Number(),
    end: Type.Number(),
    /** Seconds between points. */
    step: Type.Number({ exclusiveMinimum: 0 }),
  },
  { additionalProperties: false },
);
export type MonitoringRangeQuery = Static<typeof MonitoringRangeQuerySchema>;

/** One series of a result: its labels and its points, `[seconds, "value"]` as Prometheus gives them. */
export const MonitoringSeriesSchema = Type.Object({
  metric: Dictionary(Type.String()),
  values: Type.Array(Type.Tuple([Type.Number(), Type.String()])),
});
export type MonitoringSeries = Static<typeof MonitoringSeriesSchema>;

export const MonitoringResultSchema = Type.Object({
  /** Prometheus' result type; an instant vector's series hold one point each, a scalar is one series without labels. */
  resultType: StringEnum(["vector", "matrix", "scalar", "string"]),
  series: Type.Array(MonitoringSeriesSchema),
});
export type MonitoringResult = Static<typeof MonitoringResultSchema>;

export const MONITORING_ALERT_KINDS = ["disk", "volume", "restarts", "target", "memory"] as const;

/** Something on the box that wants a look, computed from the metrics. */
export const MonitoringAlertSchema = Type.Object({
  kind: StringEnum(MONITORING_ALERT_KINDS),
  severity: StringEnum(["warning", "critical"]),
  /** What it is about: a mount point, a volume, `repo/app`, a target, `memory`. */
  subject: Type.String(),
  message: Type.String(),
});
export type MonitoringAlert = Static<typeof MonitoringAlertSchema>;

export const MonitoringAlertsSchema = Type.Object({
  items: Type.Array(MonitoringAlertSchema),
  /** False when Prometheus could not be asked (the list is then empty, not "all well"). */
  available: Type.Boolean(),
});
export type MonitoringAlerts = Static<typeof MonitoringAlertsSchema>;
