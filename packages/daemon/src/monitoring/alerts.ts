/**
 * The built-in alerts, made from the answers to `ALERT_QUERIES`: each series
 * an expression returns is one alert, worded for a person. Pure.
 */
import type { MonitoringAlert, MonitoringResult } from "@townos/api";
import { ALERT_QUERIES } from "@townos/api";

export type AlertKind = keyof typeof ALERT_QUERIES;

/** Above this filled fraction a disk or volume alert is critical rather than a warning. */
const CRITICAL_FILL = 0.97;

export function alertsFrom(kind: AlertKind, result: MonitoringResult): MonitoringAlert[] {
  return result.series.map(({ metric, values }) => {
    const value = Number(values.at(-1)?.[1] ?? NaN);
    const percent = `${Math.round(value * 100)} %`;
    switch (kind) {
      case "disk": {
        const subject = metric["mountpoint"] ?? metric["device"] ?? "a disk";
        return {
          kind,
          severity: value >= CRITICAL_FILL ? "critical" : "warning",
          subject,
          message: `The file system at ${subject} is ${percent} full`,
        };
      }
      case "volume": {
        const subject = metric["volume"] ?? "a volume";
        const owner = appOf(metric);
        return {
          kind,
          severity: value >= CRITICAL_FILL ? "critical" : "warning",
          subject,
          message: `Volume ${subject}${owner === undefined ? "" : ` of ${owner}`} is ${percent} of its quota`,
        };
      }
      case "restarts": {
        const subject = appOf(metric) ?? "an app";
        const container = metric["container"];
        return {
          kind,
          severity: "warning",
          subject,
          message: `${subject}${container === undefined ? "" : ` (${container})`} restarted ${Math.round(value)} times in 15 minutes`,
        };
      }
      case "target": {
        const job = metric["job"] ?? "a target";
        const subject = appOf(metric) ?? `${job} ${metric["instance"] ?? ""}`.trim();
        return {
          kind,
          severity: "warning",
          subject,
          message: `Metrics of ${subject} cannot be read: the target is down`,
        };
      }
      case "memory":
        return {
          kind,
          severity: value < 0.05 ? "critical" : "warning",
          subject: "memory",
          message: `Only ${percent} of the memory is available`,
        };
    }
  });
}

function appOf(metric: Readonly<Record<string, string>>): string | undefined {
  const repo = metric["repo"];
  const app = metric["app"];
  return repo === undefined || app === undefined ? undefined : `${repo}/${app}`;
}
