/**
 * The optional Grafana backend, pure: its provisioning files (the box's
 * Prometheus as the one datasource, dashboards made from the same PromQL the
 * built-in charts use) and the container that runs it. How and when the
 * daemon runs it (the `monitoring.grafana` setting) is the caller's.
 *
 * YAML files are written as JSON (which is YAML), with a fixed key order:
 * the same options always give the same bytes, so a caller can compare
 * before it rewrites them.
 */
import { isAbsolute, posix } from "node:path";
import { CHART_QUERIES, withWindow, type ChartQuery, type ChartUnit } from "@townos/api";
import { findControlCharacter, TownError } from "@townos/format";
import { LABEL_BOX } from "../apps/labels.js";
import { WORKLOAD_NAME, type Workload } from "../runtime/workload.js";

/** Grafana OSS (Docker Hub's `grafana/grafana-oss` stops at 12.4; `grafana/grafana` is the same image). */
export const GRAFANA_IMAGE = "docker.io/grafana/grafana:12.2.0";
/** The user Grafana's image runs as: its data directory must be writable by it. */
export const GRAFANA_UID = 472;
/**
 * Label on the box's own containers (not apps): `grafana`. Not `town.app`,
 * whose containers the app controller removes when no app of that name is
 * installed.
 */
export const LABEL_SYSTEM = "town.system";
export const GRAFANA_DATASOURCE_UID = "town-prometheus";

const PROVISIONING = "/etc/grafana/provisioning";
const DASHBOARDS = `${PROVISIONING}/dashboards/json`;
const DATA = "/var/lib/grafana";
const PASSWORD = "/run/secrets/town-grafana-admin-password";

const UNITS: Readonly<Record<ChartUnit, string>> = {
  ratio: "percentunit",
  bytes: "bytes",
  "bytes/s": "Bps",
  cores: "short",
};

/** One line per series, named as the built-in charts name them. */
const LEGENDS: Readonly<Record<ChartQuery["scope"], string>> = {
  box: "__auto",
  apps: "{{repo}}/{{app}}",
  volumes: "{{repo}}/{{app}} {{volume}}",
};

const DATASOURCE = { type: "prometheus", uid: GRAFANA_DATASOURCE_UID };

/** Relative path → content of every provisioning file, for `/etc/grafana/provisioning`. */
export function grafanaProvisioning(options: {
  prometheusUrl: string;
  scrapeIntervalSeconds: number;
}): Map<string, string> {
  const url = httpUrl(options.prometheusUrl, "the Prometheus URL");
  const interval = options.scrapeIntervalSeconds;
  if (!Number.isInteger(interval) || interval < 1)
    throw new TownError("invalid_argument", `grafana: ${interval} is not a scrape interval`);
  const datasources = {
    apiVersion: 1,
    datasources: [
      {
        name: "Prometheus",
        uid: GRAFANA_DATASOURCE_UID,
        type: "prometheus",
        access: "proxy",
        url,
        isDefault: true,
        editable: false,
        // What `$__rate_interval` is made from: it must know the scrape interval.
        jsonData: { timeInterval: `${interval}s`, httpMethod: "POST" },
      },
    ],
  };
  const providers = {
    apiVersion: 1,
    providers: [
      {
        name: "town",
        orgId: 1,
        folder: "Town OS",
        type: "file",
        // The daemon owns them: they are made again from its queries.
        disableDeletion: true,
        editable: false,
        allowUiUpdates: false,
        updateIntervalSeconds: 60,
        options: { path: DASHBOARDS, foldersFromFilesStructure: false },
      },
    ],
  };
  return new Map([
    ["datasources/town.yml", text(datasources)],
    ["dashboards/town.yml", text(providers)],
    ["dashboards/json/box.json", text(dashboard("town-box", "Town OS: the box", ["box"]))],
    [
      "dashboards/json/apps.json",
      text(dashboard("town-apps", "Town OS: apps and volumes", ["apps", "volumes"])),
    ],
  ]);
}

/** The Grafana container: the host's network (Prometheus is on its loopback), listening on loopback. */
export function grafanaWorkload(options: {
  box: string;
  image: string;
  provisioningDir: string;
  dataDir: string;
  port: number;
  rootUrl: string;
  adminPasswordFile: string;
}): Workload {
  const name = `town-grafana-${options.box}`;
  if (!WORKLOAD_NAME.test(name) || name.includes("--"))
    throw new TownError("invalid_argument", `grafana: "${options.box}" is not a box id`);
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
    throw new TownError("invalid_argument", `grafana: ${options.port} is not a port`);
  const rootUrl = httpUrl(options.rootUrl, "the root URL");
  for (const path of [options.provisioningDir, options.dataDir, options.adminPasswordFile]) {
    if (!isAbsolute(path) || posix.normalize(path) !== path || findControlCharacter(path))
      throw new TownError(
        "invalid_argument",
        `grafana: "${path}" is not a normalized absolute path`,
      );
  }
  return {
    kind: "container",
    name,
    hostname: name,
    image: options.image,
    env: {
      GF_SERVER_HTTP_ADDR: "127.0.0.1",
      GF_SERVER_HTTP_PORT: String(options.port),
      GF_SERVER_ROOT_URL: rootUrl,
      // Behind a path (`https://town.home/grafana/`) Grafana must serve from it too.
      GF_SERVER_SERVE_FROM_SUB_PATH: String(new URL(rootUrl).pathname !== "/"),
      GF_PATHS_PROVISIONING: PROVISIONING,
      GF_PATHS_DATA: DATA,
      GF_SECURITY_ADMIN_USER: "admin",
      GF_SECURITY_ADMIN_PASSWORD__FILE: PASSWORD,
      GF_SECURITY_DISABLE_GRAVATAR: "true",
      GF_AUTH_ANONYMOUS_ENABLED: "false",
      GF_USERS_ALLOW_SIGN_UP: "false",
      // Nothing calls home: no usage reports, update checks, news or plugin downloads.
      GF_ANALYTICS_REPORTING_ENABLED: "false",
      GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
      GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES: "false",
      GF_NEWS_NEWS_FEED_ENABLED: "false",
      GF_PLUGINS_PREINSTALL_DISABLED: "true",
    },
    labels: { [LABEL_BOX]: options.box, [LABEL_SYSTEM]: "grafana" },
    mounts: [
      { source: options.provisioningDir, target: PROVISIONING, readOnly: true },
      { source: options.dataDir, target: DATA },
      { source: options.adminPasswordFile, target: PASSWORD, readOnly: true },
    ],
    ports: [],
    network: null,
    hostNetwork: true,
    restart: "unless-stopped",
  };
}

/** A dashboard of the charts of some scopes, two a row, in CHART_QUERIES' order. */
function dashboard(uid: string, title: string, scopes: readonly ChartQuery["scope"][]): object {
  const charts = CHART_QUERIES.filter((chart) => scopes.includes(chart.scope));
  return {
    uid,
    title,
    tags: ["town"],
    editable: false,
    schemaVersion: 39,
    version: 1,
    timezone: "browser",
    refresh: "1m",
    time: { from: "now-6h", to: "now" },
    panels: charts.map((chart, index) => panel(chart, index)),
  };
}

function panel(chart: ChartQuery, index: number): object {
  return {
    id: index + 1,
    type: "timeseries",
    title: chart.title,
    datasource: DATASOURCE,
    gridPos: { h: 8, w: 12, x: (index % 2) * 12, y: Math.floor(index / 2) * 8 },
    fieldConfig: {
      defaults: { unit: UNITS[chart.unit], min: 0, ...(chart.unit === "ratio" ? { max: 1 } : {}) },
      overrides: [],
    },
    options: {
      legend: { displayMode: "list", placement: "bottom", showLegend: true },
      tooltip: { mode: "multi", sort: "desc" },
    },
    targets: [
      {
        refId: "A",
        datasource: DATASOURCE,
        expr: withWindow(chart.expr, "$__rate_interval"),
        legendFormat: LEGENDS[chart.scope],
        range: true,
      },
    ],
  };
}

function text(value: object): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** An http(s) URL without credentials, as Grafana is given it. */
function httpUrl(text: string, what: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== "http:" && url.protocol !== "https:") ||
    url.username !== "" ||
    url.password !== "" ||
    /\s/.test(text)
  )
    throw new TownError("invalid_argument", `grafana: ${what} "${text}" is not an http(s) URL`);
  return text;
}
