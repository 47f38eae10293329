/**
 * Keeps Prometheus and Node Exporter running, like Caddy (ingress/supervisor.ts):
 * each is a ManagedProcess (system/supervisor.ts) that adopts the process its
 * pid file names when that is really ours, else starts one detached, restarts
 * it with backoff when it dies, and leaves it running when the daemon exits.
 * Both listen on loopback only; the daemon proxies the queries it allows.
 *
 * A root daemon runs both as Debian's `prometheus` user without capabilities
 * (see ingress/run-as.ts). The monitoring directory stays the daemon's (pid
 * and log files, 0700); Prometheus gets `prometheus/` below it as its working
 * directory (root's, group prometheus, 01770: it reads its config there) and
 * names its config and its TSDB (`data/`, its own) through /proc/self/cwd,
 * because the parents are closed to its user.
 *
 * The config is written and Prometheus told to reload (`POST /-/reload`) only
 * when its hash changed; retention is a flag, so changing it restarts Prometheus.
 */
import { constants } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { MonitoringProcess } from "@townos/api";
import { TownError } from "@townos/format";
import { systemClock, type Clock } from "../clock.js";
import {
  CADDY_DIR as WORKING_DIR,
  dropPrivileges,
  lookupUser,
  openNoFollow,
  prepareOwnDirectory,
  prepareSharedDirectory,
  type RunAs,
} from "../ingress/run-as.js";
import { Mutex } from "../system/mutex.js";
import { shownState } from "../system/supervisor-state.js";
import { ManagedProcess, type Launch } from "../system/supervisor.js";
import { compilePrometheusConfig, type CompiledPrometheus } from "./prometheus-config.js";
import { PrometheusClient } from "./prometheus-client.js";
import type { PrometheusInputs } from "./types.js";

export const DEFAULT_MONITORING_USER = "prometheus";
/** Until `apply` says otherwise (the setting's default). */
const DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600;
const DEFAULT_SCRAPE_INTERVAL_SECONDS = 15;
const CONFIG_NAME = "prometheus.yml";
const RETENTION_FLAG = "--storage.tsdb.retention.time=";
/** Replaying a large TSDB's write-ahead log can take a while. */
const PROMETHEUS_START_TIMEOUT_MS = 120_000;
const NODE_EXPORTER_START_TIMEOUT_MS = 15_000;
const RESTART = {
  initialDelayMs: 1_000,
  maxDelayMs: 60_000,
  stableAfterMs: 60_000,
  failedAfter: 3,
};
/**
 * Node Exporter's default collectors, less the text-file one (nothing writes
 * such files here) and systemd's (not the box's init); container veths come
 * and go with the apps, whose traffic the daemon's own metrics count.
 */
const NODE_EXPORTER_FLAGS = [
  "--no-collector.textfile",
  "--no-collector.systemd",
  "--collector.netdev.device-exclude=^(lo|veth.*)$",
  "--collector.netclass.ignored-devices=^(lo|veth.*)$",
];

export interface MonitoringLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface MonitoringProcessesOptions {
  /** `<dataDir>/monitoring`. */
  dir: string;
  prometheusPort: number;
  nodeExporterPort: number;
  /** Who both run as when the daemon is root; default `prometheus`. */
  user?: string;
  prometheusPath?: string;
  nodeExporterPath?: string;
  log?: MonitoringLog;
  clock?: Clock;
}

export class MonitoringProcesses {
  /** `http://127.0.0.1:<port>`. */
  readonly prometheusUrl: string;
  /** `127.0.0.1:<port>`. */
  readonly nodeExporterAddress: string;
  private readonly prometheusAddress: string;
  private readonly dir: string;
  private readonly workDir: string;
  private readonly userName: string;
  private readonly prometheusPath: string;
  private readonly nodeExporterPath: string;
  private readonly log: MonitoringLog;
  private readonly client: PrometheusClient;
  private readonly prometheus: ManagedProcess;
  private readonly nodeExporter: ManagedProcess;
  /** apply, converge and stop, one at a time. */
  private readonly mutex = new Mutex();
  /** Writes of the config file (apply's and a start's), one at a time. */
  private readonly fileMutex = new Mutex();

  private watching = false;
  /** Who both run as; null: as the daemon (not root); undefined: not known (yet). */
  private runAs: RunAs | null | undefined;
  private desired: CompiledPrometheus | undefined;
  private retentionSeconds = DEFAULT_RETENTION_SECONDS;
  /** The config the last start began with, and the one the running Prometheus is known to run. */
  private launchedHash: string | undefined;
  private loadedHash: string | undefined;
  private reloadError: string | null = null;

  constructor(options: MonitoringProcessesOptions) {
    this.dir = options.dir;
    this.workDir = join(options.dir, "prometheus");
    this.userName = options.user ?? DEFAULT_MONITORING_USER;
    this.prometheusPath = options.prometheusPath ?? "prometheus";
    this.nodeExporterPath = options.nodeExporterPath ?? "prometheus-node-exporter";
    this.log = options.log ?? { info: () => undefined, warn: () => undefined };
    this.prometheusAddress = `127.0.0.1:${options.prometheusPort}`;
    this.prometheusUrl = `http://${this.prometheusAddress}`;
    this.nodeExporterAddress = `127.0.0.1:${options.nodeExporterPort}`;
    this.client = new PrometheusClient(this.prometheusUrl, { timeoutMs: 2_000 });
    const clock = options.clock ?? systemClock;
    const prometheusListen = `--web.listen-address=${this.prometheusAddress}`;
    const nodeExporterListen = `--web.listen-address=${this.nodeExporterAddress}`;
    const log = this.log;
    this.prometheus = new ManagedProcess({
      name: "prometheus",
      unit: "prometheus",
      pidFile: join(this.dir, "prometheus.pid"),
      log: { path: join(this.dir, "prometheus.log"), truncate: true },
      launch: () => this.launchPrometheus(prometheusListen),
      isOurs: (argv) =>
        (argv[0] ?? "").endsWith("prometheus") &&
        argv.includes(prometheusListen) &&
        argv.includes(`--config.file=${WORKING_DIR}/${CONFIG_NAME}`),
      ready: () => this.client.ready(),
      readyPollMs: 200,
      startTimeoutMs: PROMETHEUS_START_TIMEOUT_MS,
      restart: RESTART,
      onStarted: (pid, origin) => {
        // A started one runs the config it started with; an adopted one perhaps not.
        this.loadedHash = origin === "started" ? this.launchedHash : undefined;
        this.reloadError = null;
        log.info(`monitoring: ${origin} Prometheus (pid ${pid})`);
        // An `apply` while it was starting found it down: brought up to date now.
        void this.convergeLogged();
      },
      onFailure: (_failure, message) => {
        log.warn(`monitoring: ${message}`);
      },
      clock,
    });
    this.nodeExporter = new ManagedProcess({
      name: "node exporter",
      unit: "node-exporter",
      pidFile: join(this.dir, "node-exporter.pid"),
      log: { path: join(this.dir, "node-exporter.log"), truncate: true },
      launch: () => this.launchNodeExporter(nodeExporterListen),
      isOurs: (argv) =>
        /node[-_]exporter$/.test(argv[0] ?? "") && argv.includes(nodeExporterListen),
      ready: () => answers(`http://${this.nodeExporterAddress}/metrics`),
      readyPollMs: 200,
      startTimeoutMs: NODE_EXPORTER_START_TIMEOUT_MS,
      restart: RESTART,
      onStarted: (pid, origin) => {
        log.info(`monitoring: ${origin} Node Exporter (pid ${pid})`);
      },
      onFailure: (_failure, message) => {
        log.warn(`monitoring: ${message}`);
      },
      clock,
    });
  }

  /**
   * Adopts or starts both and keeps watching them; brings an adopted
   * Prometheus to what `apply` asked for. Never throws for the programs' own
   * failures: `status()` says, while restarts are retried.
   */
  async start(): Promise<void> {
    if (this.watching) return;
    this.watching = true;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Known before an adopted Prometheus's config is rewritten; a failure shows at its next start.
    this.runAs = await this.prepare().catch(() => undefined);
    await Promise.all([this.prometheus.start(), this.nodeExporter.start()]);
    await this.convergeLogged();
  }

  /**
   * What Prometheus should scrape and keep. The config is written and
   * reloaded when its hash changed (a failed reload shows in the status and
   * is tried again by the next call); a new retention restarts Prometheus.
   * Before `start`, or while Prometheus is down, its next start takes both.
   * @throws TownError invalid_argument for targets or settings that cannot be.
   */
  async apply(inputs: PrometheusInputs, retentionSeconds: number): Promise<void> {
    if (!Number.isSafeInteger(retentionSeconds) || retentionSeconds <= 0)
      throw new TownError(
        "invalid_argument",
        `prometheus: retention must be whole seconds, not ${String(retentionSeconds)}`,
      );
    const compiled = compilePrometheusConfig(inputs);
    await this.mutex.run(async () => {
      this.desired = compiled;
      this.retentionSeconds = retentionSeconds;
      await this.converge();
    });
  }

  status(): { prometheus: MonitoringProcess; nodeExporter: MonitoringProcess } {
    return {
      prometheus: this.processStatus(this.prometheus, this.prometheusAddress, this.reloadError),
      nodeExporter: this.processStatus(this.nodeExporter, this.nodeExporterAddress, null),
    };
  }

  /** Stops watching; both keep running, for the next daemon to adopt. */
  close(): void {
    this.watching = false;
    this.prometheus.detach();
    this.nodeExporter.detach();
  }

  /** Tests only: stops watching and stops both, waiting until they are gone. */
  async stopForTests(): Promise<void> {
    this.close();
    await this.mutex.idle();
    await Promise.all([this.prometheus.stop(), this.nodeExporter.stop()]);
  }

  private processStatus(
    process: ManagedProcess,
    address: string,
    ownError: string | null,
  ): MonitoringProcess {
    const status = process.status();
    const { pid, restarts, lastError } = status;
    return {
      state: shownState(this.watching, status),
      pid,
      address,
      restarts,
      lastError: lastError?.message ?? ownError,
    };
  }

  /** `converge` without a caller to throw to: a failure (to write the config) is logged. */
  private async convergeLogged(): Promise<void> {
    try {
      await this.mutex.run(() => this.converge());
    } catch (error) {
      this.log.warn(`monitoring: ${String(error)}`);
    }
  }

  /** A running Prometheus runs the desired retention and config (under `mutex`). */
  private async converge(): Promise<void> {
    const desired = this.desired;
    if (!this.watching || desired === undefined) return;
    if (this.prometheus.status().state !== "running") return;
    const retention = this.prometheus
      .argv()
      ?.find((arg) => arg.startsWith(RETENTION_FLAG))
      ?.slice(RETENTION_FLAG.length);
    if (retention !== `${this.retentionSeconds}s`) {
      this.log.info(
        `monitoring: restarting Prometheus to keep metrics ${this.retentionSeconds} s (was ${retention ?? "unknown"})`,
      );
      // Its start writes the desired config too.
      await this.prometheus.restart();
      return;
    }
    if (desired.hash === this.loadedHash) return;
    await this.writeConfig(desired.text);
    await this.reload(desired.hash);
  }

  private async reload(hash: string): Promise<void> {
    let problem: string;
    try {
      const response = await fetch(`${this.prometheusUrl}/-/reload`, {
        method: "POST",
        signal: AbortSignal.timeout(30_000),
      });
      const text = (await response.text()).slice(0, 1000).trim();
      if (response.ok) {
        this.loadedHash = hash;
        this.reloadError = null;
        this.log.info(`monitoring: Prometheus loaded config ${hash.slice(0, 12)}`);
        return;
      }
      problem = `HTTP ${response.status}: ${text}`;
    } catch (error) {
      problem = String(error);
    }
    this.reloadError = `prometheus: reloading the config failed: ${problem}`;
    this.log.warn(`monitoring: ${this.reloadError}`);
  }

  /** Who both run as, with Prometheus' directories ready for that user. */
  private async prepare(): Promise<RunAs | null> {
    const dataDir = join(this.workDir, "data");
    if (process.getuid?.() !== 0) {
      for (const dir of [this.workDir, dataDir]) await mkdir(dir, { recursive: true, mode: 0o700 });
      return null;
    }
    const user = await lookupUser(this.userName, "prometheus");
    await prepareSharedDirectory(this.workDir, user, "prometheus");
    await prepareOwnDirectory(dataDir, user, "prometheus");
    return user;
  }

  /** Before every start: the user, the config it starts with, and its command line. */
  private async launchPrometheus(listen: string): Promise<Launch> {
    this.runAs = await this.prepare();
    const compiled =
      this.desired ??
      compilePrometheusConfig({
        scrapeIntervalSeconds: DEFAULT_SCRAPE_INTERVAL_SECONDS,
        targets: [],
      });
    await this.writeConfig(compiled.text);
    this.launchedHash = compiled.hash;
    const args = [
      this.prometheusPath,
      `--config.file=${WORKING_DIR}/${CONFIG_NAME}`,
      `--storage.tsdb.path=${WORKING_DIR}/data`,
      `${RETENTION_FLAG}${this.retentionSeconds}s`,
      listen,
      // For POST /-/reload.
      "--web.enable-lifecycle",
    ] as const;
    return {
      argv: this.runAs === null ? args : ["setpriv", ...dropPrivileges(this.runAs, []), ...args],
      cwd: this.workDir,
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
    };
  }

  private async launchNodeExporter(listen: string): Promise<Launch> {
    const runAs = process.getuid?.() === 0 ? await lookupUser(this.userName, "prometheus") : null;
    const args = [this.nodeExporterPath, listen, ...NODE_EXPORTER_FLAGS] as const;
    return {
      argv: runAs === null ? args : ["setpriv", ...dropPrivileges(runAs, []), ...args],
      // Nothing of the daemon's: it reads /proc and /sys.
      cwd: "/",
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
    };
  }

  /** Root's file, readable by Prometheus' group; made anew (O_EXCL) so that no planted link is followed. */
  private writeConfig(text: string): Promise<void> {
    return this.fileMutex.run(async () => {
      const path = join(this.workDir, CONFIG_NAME);
      const temporary = `${path}.tmp`;
      await rm(temporary, { force: true });
      const file = await openNoFollow(
        temporary,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
        this.runAs ? 0o640 : 0o600,
      );
      try {
        if (this.runAs) await file.chown(0, this.runAs.gid);
        await file.writeFile(text);
      } finally {
        await file.close();
      }
      await rename(temporary, path);
    });
  }
}

/** Does `url` answer 200 within 2 s? (Its body is not read.) */
async function answers(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.body?.cancel();
  return response.status === 200;
}
