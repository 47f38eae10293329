/**
 * Monitoring as the API sees it: the status of Prometheus, Node Exporter,
 * Grafana and every scrape target; PromQL passed to Prometheus (which is
 * never exposed itself) with the caller's view applied; the built-in
 * alerts. Keeps Prometheus' configuration equal to what the box asks to be
 * scraped: `update()` recomputes the targets and applies them when changed.
 */
import type {
  MonitoringAlert,
  MonitoringAlerts,
  MonitoringProcess,
  MonitoringQuery,
  MonitoringRangeQuery,
  MonitoringResult,
  MonitoringStatus,
  MonitoringTarget,
} from "@townos/api";
import { ALERT_QUERIES, MAX_RANGE_POINTS } from "@townos/api";
import { isTownError, TownError } from "@townos/format";
import { Mutex } from "../system/mutex.js";
import { alertsFrom, type AlertKind } from "./alerts.js";
import type { AppEndpoint } from "./targets.js";
import type { PrometheusInputs, ScrapeTarget } from "./types.js";

/** What the service needs of the supervised programs (`MonitoringProcesses`). */
export interface MonitoringPrograms {
  start(): Promise<void>;
  apply(inputs: PrometheusInputs, retentionSeconds: number): Promise<void>;
  status(): { prometheus: MonitoringProcess; nodeExporter: MonitoringProcess };
  /** Stops watching; the programs keep running for the next daemon to adopt. */
  close(): void;
  /** Tests: stops the programs too, and waits until they are gone. */
  stopForTests(): Promise<void>;
}

/** What the service needs of Prometheus' HTTP API (`PrometheusClient`). */
export interface PrometheusApi {
  query(expr: string, time?: number): Promise<MonitoringResult>;
  queryRange(expr: string, start: number, end: number, step: number): Promise<MonitoringResult>;
  targets(): Promise<MonitoringTarget[]>;
}

/** Who asks: administrators see every series; other accounts see app series only when apps' health is open to them. */
export interface Viewer {
  admin: boolean;
}

/** What the service needs of Grafana's runner (`GrafanaRunner`). */
export interface GrafanaControl {
  reconcile(enabled: boolean): Promise<void>;
  state(): GrafanaState;
}

export interface GrafanaState {
  enabled: boolean;
  state: string;
  url: string | null;
  error: string | null;
}

export interface MonitoringOptions {
  programs: MonitoringPrograms;
  prometheus: PrometheusApi;
  retentionSeconds: () => number;
  scrapeIntervalSeconds: () => number;
  /** The box's targets with the apps' endpoints given. */
  targets: (apps: readonly AppEndpoint[]) => ScrapeTarget[];
  /** Whether accounts that are not administrators see apps' series (`apps.logs_for_users`). */
  appsOpenToUsers: () => boolean;
  /** The setting `monitoring.grafana`. */
  grafanaEnabled: () => boolean;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

const OFF_PROCESS: MonitoringProcess = {
  state: "off",
  pid: null,
  address: "",
  restarts: 0,
  lastError: null,
};

export class Monitoring {
  private readonly applying = new Mutex();
  private started = false;
  private appEndpoints: () => Promise<AppEndpoint[]> = () => Promise.resolve([]);
  private grafana: GrafanaControl | undefined;
  private readonly grafanaListeners = new Set<() => void>();

  constructor(private readonly options: MonitoringOptions | { off: string }) {}

  /** Starts (or adopts) the programs and applies the first configuration. Never throws. */
  async start(): Promise<void> {
    const options = this.on();
    if (options === undefined || this.started) return;
    this.started = true;
    // What is wanted first: Prometheus then starts with it (its retention included), not restarted for it.
    await this.update();
    await options.programs.start();
  }

  /** Apps run: their metrics endpoints are scraped from now on. */
  attachApps(endpoints: () => Promise<AppEndpoint[]>): void {
    this.appEndpoints = endpoints;
    void this.update();
  }

  /** Grafana can run (it is a container): it follows the setting from now on. */
  attachGrafana(grafana: GrafanaControl): void {
    this.grafana = grafana;
    void this.update();
  }

  /** Calls `listener` whenever Grafana's state changes (the network serves it only while it runs). */
  onGrafanaChange(listener: () => void): void {
    this.grafanaListeners.add(listener);
  }

  /** Grafana's state now (the network serves it while it runs). */
  grafanaState(): GrafanaState {
    const enabled = this.on()?.grafanaEnabled() ?? false;
    return (
      this.grafana?.state() ?? {
        enabled,
        state: enabled ? "starting" : "off",
        url: null,
        error: enabled ? "waiting for the container runtime" : null,
      }
    );
  }

  /** Applies the targets and settings in force now, when they changed. Never throws; serialized. */
  update(): Promise<void> {
    const options = this.on();
    if (options === undefined || !this.started) return Promise.resolve();
    return this.applying.run(async () => {
      try {
        await options.programs.apply(
          {
            scrapeIntervalSeconds: options.scrapeIntervalSeconds(),
            targets: options.targets(await this.appEndpoints()),
          },
          options.retentionSeconds(),
        );
        const before = JSON.stringify(this.grafanaState());
        await this.grafana?.reconcile(options.grafanaEnabled());
        if (JSON.stringify(this.grafanaState()) !== before)
          for (const listener of this.grafanaListeners) listener();
      } catch (error) {
        options.log("monitoring: the scrape configuration could not be applied", {
          error: error instanceof Error ? error.message : String(error),
        });
      }
    });
  }

  /** Leaves Prometheus and Node Exporter running (the next daemon adopts them). */
  async close(): Promise<void> {
    await this.applying.idle();
    this.on()?.programs.close();
  }

  /** Tests only: `close()`, and stops the programs, waiting until they are gone. */
  async stopForTests(): Promise<void> {
    await this.close();
    await this.on()?.programs.stopForTests();
  }

  async status(viewer: Viewer): Promise<MonitoringStatus> {
    const options = this.on();
    if (options === undefined) {
      return {
        state: "off",
        reason: "off" in this.options ? this.options.off : null,
        prometheus: OFF_PROCESS,
        nodeExporter: OFF_PROCESS,
        retentionSeconds: 0,
        scrapeIntervalSeconds: 0,
        targets: [],
        grafana: { enabled: false, state: "off", url: null, error: null },
      };
    }
    const programs = options.programs.status();
    let targets: MonitoringTarget[] = [];
    let reason: string | null = null;
    try {
      targets = await options.prometheus.targets();
    } catch (error) {
      reason = isTownError(error) ? error.message : String(error);
    }
    const running = ["running", "adopted"].includes(programs.prometheus.state);
    return {
      state:
        reason === null && running
          ? "on"
          : programs.prometheus.state === "failed"
            ? "failed"
            : "starting",
      reason: reason ?? programs.prometheus.lastError,
      ...programs,
      retentionSeconds: options.retentionSeconds(),
      scrapeIntervalSeconds: options.scrapeIntervalSeconds(),
      targets: targets.filter((target) => this.sees(viewer, target.labels)),
      grafana: this.grafanaState(),
    };
  }

  async query(query: MonitoringQuery, viewer: Viewer): Promise<MonitoringResult> {
    const result = await this.prometheus().query(query.query, query.time);
    return this.visible(result, viewer);
  }

  async queryRange(query: MonitoringRangeQuery, viewer: Viewer): Promise<MonitoringResult> {
    const { start, end, step } = query;
    if (!Number.isFinite(start) || !Number.isFinite(end) || end < start)
      throw new TownError("invalid_argument", "query_range: end must not come before start");
    if ((end - start) / step > MAX_RANGE_POINTS)
      throw new TownError(
        "invalid_argument",
        `query_range: more than ${MAX_RANGE_POINTS} points per series; take a larger step`,
      );
    const result = await this.prometheus().queryRange(query.query, start, end, step);
    return this.visible(result, viewer);
  }

  /** Every built-in alert now; `available` false when Prometheus could not be asked. */
  async alerts(viewer: Viewer): Promise<MonitoringAlerts> {
    const options = this.on();
    if (options === undefined) return { items: [], available: false };
    try {
      const found: MonitoringAlert[] = [];
      for (const kind of Object.keys(ALERT_QUERIES) as AlertKind[]) {
        const result = this.visible(await options.prometheus.query(ALERT_QUERIES[kind]), viewer);
        found.push(...alertsFrom(kind, result));
      }
      return { items: found, available: true };
    } catch (error) {
      options.log("monitoring: alerts could not be read", {
        error: error instanceof Error ? error.message : String(error),
      });
      return { items: [], available: false };
    }
  }

  private prometheus(): PrometheusApi {
    const options = this.on();
    if (options === undefined)
      throw new TownError(
        "unavailable",
        "off" in this.options ? this.options.off : "monitoring is off",
      );
    return options.prometheus;
  }

  private on(): MonitoringOptions | undefined {
    return "off" in this.options ? undefined : this.options;
  }

  private visible(result: MonitoringResult, viewer: Viewer): MonitoringResult {
    return {
      ...result,
      series: result.series.filter((series) => this.sees(viewer, series.metric)),
    };
  }

  /** An app's series (labelled `repo` or `app`) are for administrators, and for everybody while apps' health is open to users. */
  private sees(viewer: Viewer, labels: Readonly<Record<string, string>>): boolean {
    if (viewer.admin) return true;
    const ofAnApp = labels["repo"] !== undefined || labels["app"] !== undefined;
    return !ofAnApp || (this.on()?.appsOpenToUsers() ?? false);
  }
}
