/**
 * Prometheus' config from the scrape targets (pure). The text is JSON, which
 * is valid YAML and needs no YAML writer: indented, with every list and key
 * sorted, so the same targets in any order give the same text and hash, and
 * the daemon reloads Prometheus only when something really changed.
 *
 * Each target is a static_config of its own, so it keeps its own labels; a
 * path other than the job's `/metrics` is the target's `__metrics_path__`
 * label (which Prometheus takes over the job's `metrics_path`). Everything
 * is validated here: the config is written to a file Prometheus parses, and
 * app targets come from package definitions.
 */
import { createHash } from "node:crypto";
import { isIPv6 } from "node:net";
import { TownError, type Issue } from "@townos/format";
import type { PrometheusInputs, ScrapeJob, ScrapeTarget } from "./types.js";

export interface CompiledPrometheus {
  text: string;
  /** sha256 of `text`, hex. */
  hash: string;
}

export const SCRAPE_JOBS: readonly ScrapeJob[] = ["app", "ingress", "node", "town"];
export const MIN_SCRAPE_INTERVAL_SECONDS = 5;
export const MAX_SCRAPE_INTERVAL_SECONDS = 3600;
export const MAX_TARGETS = 5000;
const MAX_LABELS = 32;
const MAX_VALUE_LENGTH = 1024;
const MAX_PATH_LENGTH = 1024;
const DEFAULT_PATH = "/metrics";
/** Prometheus' own labels of a target: set here, never by a target's labels. */
const RESERVED_LABELS = new Set(["job", "instance"]);

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const CONTROL = /\p{Cc}/u;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const DNS_LABEL = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

export function compilePrometheusConfig(inputs: PrometheusInputs): CompiledPrometheus {
  const issues = validate(inputs);
  if (issues.length > 0) {
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
    throw new TownError(
      "invalid_argument",
      `prometheus: the scrape config is invalid: ${issues[0]?.message ?? ""}${more}`,
      { issues },
    );
  }
  const interval = inputs.scrapeIntervalSeconds;
  const config = {
    global: {
      scrape_interval: `${interval}s`,
      // Below the interval, so that one slow target's scrapes do not overlap.
      scrape_timeout: `${Math.min(10, interval - 1)}s`,
      evaluation_interval: `${interval}s`,
    },
    scrape_configs: SCRAPE_JOBS.flatMap((job) => {
      const configs = staticConfigs(inputs.targets.filter((target) => target.job === job));
      return configs.length === 0
        ? []
        : [{ job_name: job, metrics_path: DEFAULT_PATH, static_configs: configs }];
    }),
  };
  const text = `${JSON.stringify(config, null, 2)}\n`;
  return { text, hash: createHash("sha256").update(text).digest("hex") };
}

interface StaticConfig {
  targets: [string];
  labels: Record<string, string>;
}

/** One per target (duplicates dropped), sorted by their text. */
function staticConfigs(targets: readonly ScrapeTarget[]): StaticConfig[] {
  const byKey = new Map<string, StaticConfig>();
  for (const target of targets) {
    const labels: Record<string, string> = {};
    if (target.path !== DEFAULT_PATH) labels["__metrics_path__"] = target.path;
    for (const name of Object.keys(target.labels).sort()) labels[name] = target.labels[name] ?? "";
    const config: StaticConfig = { targets: [target.address], labels };
    byKey.set(JSON.stringify(config), config);
  }
  return [...byKey.keys()].sort().map((key) => byKey.get(key) as StaticConfig);
}

function validate(inputs: PrometheusInputs): Issue[] {
  const issues: Issue[] = [];
  const interval = inputs.scrapeIntervalSeconds;
  if (
    !Number.isInteger(interval) ||
    interval < MIN_SCRAPE_INTERVAL_SECONDS ||
    interval > MAX_SCRAPE_INTERVAL_SECONDS
  )
    issues.push({
      field: "scrapeIntervalSeconds",
      message: `the scrape interval must be whole seconds from ${MIN_SCRAPE_INTERVAL_SECONDS} to ${MAX_SCRAPE_INTERVAL_SECONDS}, not ${String(interval)}`,
    });
  if (inputs.targets.length > MAX_TARGETS) {
    issues.push({
      field: "targets",
      message: `${inputs.targets.length} scrape targets are more than the ${MAX_TARGETS} allowed`,
    });
    return issues;
  }
  inputs.targets.forEach((target, index) => {
    issues.push(...validateTarget(target, `targets[${index}]`));
  });
  return issues;
}

function validateTarget(target: ScrapeTarget, field: string): Issue[] {
  const issues: Issue[] = [];
  const add = (suffix: string, message: string): void => {
    issues.push({ field: `${field}.${suffix}`, message });
  };
  if (!SCRAPE_JOBS.includes(target.job))
    add("job", `unknown scrape job ${JSON.stringify(target.job)}`);
  if (!isHostPort(target.address))
    add("address", `${JSON.stringify(target.address)} is not HOST:PORT`);
  const path = target.path;
  if (
    typeof path !== "string" ||
    !path.startsWith("/") ||
    path.length > MAX_PATH_LENGTH ||
    CONTROL.test(path) ||
    /[\s?#]/.test(path)
  )
    add(
      "path",
      `${JSON.stringify(path)} is not an absolute URL path (no spaces, query or fragment)`,
    );
  const names = Object.keys(target.labels);
  if (names.length > MAX_LABELS) add("labels", `more than ${MAX_LABELS} labels`);
  for (const name of names.slice(0, MAX_LABELS)) {
    if (!LABEL_NAME.test(name) || name.startsWith("__") || RESERVED_LABELS.has(name))
      add(
        `labels.${name}`,
        `${JSON.stringify(name)} is not a label name a target may set ([a-zA-Z_][a-zA-Z0-9_]*, not __…, job or instance)`,
      );
    const value = target.labels[name];
    if (typeof value !== "string" || value.length > MAX_VALUE_LENGTH || CONTROL.test(value))
      add(
        `labels.${name}`,
        `the value of ${JSON.stringify(name)} must be text of at most ${MAX_VALUE_LENGTH} characters without control characters`,
      );
  }
  return issues;
}

/** `HOST:PORT`: an IPv4 address, a bracketed IPv6 address or a DNS name, and a port 1-65535. */
export function isHostPort(address: unknown): boolean {
  if (typeof address !== "string") return false;
  const match = /^(.+):([1-9]\d{0,4})$/.exec(address);
  if (match === null) return false;
  const [, host = "", port = ""] = match;
  if (Number(port) > 65535) return false;
  if (host.startsWith("[") && host.endsWith("]")) return isIPv6(host.slice(1, -1));
  if (/^[\d.]+$/.test(host)) return IPV4.test(host);
  return host.length <= 253 && host.split(".").every((label) => DNS_LABEL.test(label));
}
