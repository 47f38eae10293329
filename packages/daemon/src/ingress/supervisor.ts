/**
 * Keeps exactly one Caddy running with the desired ingress config. The
 * process (adopt the one the pid file names, or start one detached, restart
 * it with backoff when it dies) is a ManagedProcess (system/supervisor.ts);
 * this watches it through the admin API, kills it when it stops answering,
 * and loads the desired config into every Caddy that comes up.
 *
 * Caddy is started with the last config it accepted (or only its admin
 * endpoint), never with one it has not accepted yet: the desired config
 * always goes through `POST /load`, so a refusal comes back as Caddy's message
 * instead of a process that will not start.
 *
 * A root daemon never runs Caddy as root (see run-as.ts): it starts it as the
 * `caddy` user, and replaces an adopted Caddy that runs as root (one started
 * by an earlier version) with one that does not.
 */
import { mkdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { TownError } from "@townos/format";
import { systemClock, type Clock } from "../clock.js";
import { Mutex } from "../system/mutex.js";
import { Periodic } from "../system/periodic.js";
import { shownState } from "../system/supervisor-state.js";
import { ManagedProcess, type Launch, type ProcessFailure } from "../system/supervisor.js";
import { CaddyAdmin, CaddyDriver } from "./caddy.js";
import { bootstrapConfig, type CompiledIngress } from "./config.js";
import {
  CADDY_DIR,
  DEFAULT_CADDY_USER,
  dropPrivileges,
  lookupUser,
  prepareOwnDirectory,
  prepareSharedDirectory,
  prepareSitesDirectory,
  processUid,
  type RunAs,
  writeFileAnew,
} from "./run-as.js";

/** Where the ingress keeps its files, below its own data directory. */
export interface IngressPaths {
  dir: string;
  /** Caddy's storage: the local CA and all certificates. */
  storageDir: string;
  /** The config `caddy run` starts with. */
  configFile: string;
  logFile: string;
  pidFile: string;
  /** The default admin endpoint: a socket only root (and Caddy's user) can reach. */
  adminAddress: string;
  /** Caddy's own HOME and XDG directories. */
  xdgDataDir: string;
  xdgConfigDir: string;
  /** The admin endpoint and storage as Caddy names them, in the configs it runs (see run-as.ts). */
  caddyAdminAddress: string;
  caddyStorageDir: string;
  /** Static sites (pages): written by the daemon only, read by Caddy. */
  sitesDir: string;
  /** `sitesDir` as Caddy names it. */
  caddySitesDir: string;
}

export function ingressPaths(dir: string): IngressPaths {
  return {
    dir,
    storageDir: join(dir, "storage"),
    configFile: join(dir, "caddy.json"),
    logFile: join(dir, "caddy.log"),
    pidFile: join(dir, "caddy.pid"),
    adminAddress: `unix/${join(dir, "admin.sock")}`,
    xdgDataDir: join(dir, "xdg-data"),
    xdgConfigDir: join(dir, "xdg-config"),
    caddyAdminAddress: `unix/${CADDY_DIR}/admin.sock`,
    caddyStorageDir: `${CADDY_DIR}/storage`,
    sitesDir: join(dir, "sites"),
    caddySitesDir: `${CADDY_DIR}/sites`,
  };
}

export type IngressState = "starting" | "running" | "adopted" | "restarting" | "failed" | "stopped";

export interface IngressStatus {
  /**
   * `running`: started by this supervisor; `adopted`: found running;
   * `restarting`: down, a start is due; `failed`: several starts in a row
   * failed (still retrying, slower); `stopped`: not watched any more.
   */
  state: IngressState;
  pid: number | null;
  /** The user the watched Caddy runs as (`root` only when the daemon itself is not root… or an old one is still adopted). */
  user: string | null;
  adminAddress: string;
  httpsPort: number | null;
  httpPort: number | null;
  /** Caddy runs the desired config (false while none is set). */
  configCurrent: boolean;
  desiredHash: string | null;
  appliedHash: string | null;
  /** Restarts after a crash since this supervisor started. */
  restarts: number;
  lastError: { code: string; message: string; at: number } | null;
}

export interface IngressLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface SupervisorOptions {
  /** The ingress data directory (see `ingressPaths`). */
  dataDir: string;
  /** Defaults to the unix socket in `dataDir`; must match the compiled configs. */
  adminAddress?: string;
  caddyPath?: string;
  /** The user Caddy runs as when the daemon is root; default `caddy`. */
  user?: string;
  pollIntervalMs?: number;
  /** How long a started Caddy may take to answer. */
  startTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  clock?: Clock;
  log?: IngressLog;
}

/** A Caddy that ran shorter than this before dying counts towards `failed`. */
const STABLE_AFTER_MS = 30_000;
const FAILED_AFTER_ATTEMPTS = 3;
/** A live process that misses this many polls in a row is killed and restarted. */
const HUNG_AFTER_POLLS = 3;

export class CaddySupervisor {
  readonly paths: IngressPaths;
  readonly driver: CaddyDriver;
  private readonly admin: CaddyAdmin;
  /** The admin address in the configs Caddy runs: how Caddy names the socket the daemon calls. */
  readonly caddyAdminAddress: string;
  private readonly caddyPath: string;
  private readonly userName: string;
  /** Who Caddy runs as; null: as the daemon (which is not root). Known after the first start. */
  private runAs: RunAs | null | undefined;
  private readonly pollIntervalMs: number;
  private readonly clock: Clock;
  private readonly log: IngressLog;
  private readonly process: ManagedProcess;

  private desired: CompiledIngress | undefined;
  /** A desired config Caddy refused is not sent again until it changes or Caddy restarts. */
  private refusedHash: string | undefined;
  private lastError: IngressStatus["lastError"] = null;
  private lastSpawnFailed = false;
  private missedPolls = 0;
  private watching = false;
  /** Every step that talks to Caddy runs one at a time. */
  private readonly mutex = new Mutex();
  private readonly watch: Periodic;

  constructor(options: SupervisorOptions) {
    this.paths = ingressPaths(options.dataDir);
    this.admin = new CaddyAdmin(options.adminAddress ?? this.paths.adminAddress, 3_000);
    this.caddyAdminAddress = options.adminAddress ?? this.paths.caddyAdminAddress;
    this.driver = new CaddyDriver(this.admin, this.paths.storageDir);
    this.caddyPath = options.caddyPath ?? "caddy";
    this.userName = options.user ?? DEFAULT_CADDY_USER;
    this.pollIntervalMs = options.pollIntervalMs ?? 2_000;
    this.watch = new Periodic(this.pollIntervalMs, this.mutex, () => this.tick());
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? { info: () => undefined, warn: () => undefined };
    this.process = new ManagedProcess({
      name: "caddy",
      unit: "caddy",
      pidFile: this.paths.pidFile,
      // `--pidfile`: Caddy writes it once it runs.
      programWritesPidFile: true,
      log: { path: this.paths.logFile, mode: 0o600 },
      launch: () => this.launch(),
      isOurs: (argv) => argv.some((part) => part.endsWith("caddy")),
      ready: async () => {
        await this.admin.config();
        return true;
      },
      readyPollMs: 100,
      startTimeoutMs: options.startTimeoutMs ?? 15_000,
      pollMs: this.pollIntervalMs,
      restart: {
        initialDelayMs: options.backoffInitialMs ?? 500,
        maxDelayMs: options.backoffMaxMs ?? 30_000,
        stableAfterMs: STABLE_AFTER_MS,
        failedAfter: FAILED_AFTER_ATTEMPTS,
      },
      describe: (failure) => this.describe(failure),
      onStarted: (pid, origin) => {
        this.started(pid, origin);
      },
      onFailure: (failure, message) => {
        this.failed(failure, message);
      },
      clock: this.clock,
    });
  }

  /**
   * Adopts or starts Caddy, applies the desired config if one is set, and
   * keeps watching. Never throws for Caddy's own failures: they show in
   * `status()` while the watch keeps retrying.
   */
  async start(): Promise<IngressStatus> {
    if (!this.watching) {
      this.watching = true;
      await mkdir(this.paths.dir, { recursive: true, mode: 0o700 });
      await prepareSitesDirectory(this.paths.sitesDir);
      await this.mutex.run(async () => {
        const { origin } = await this.process.start();
        if (origin === "adopted") await this.adopted();
      });
      // The config load each start queued.
      await this.mutex.idle();
      this.watch.start();
    }
    return this.status();
  }

  /**
   * Sets the desired config and loads it now when Caddy is up (later, when
   * it comes up, otherwise). Resolves `unchanged` when Caddy runs it already;
   * throws Caddy's refusal as a TownError (the previous config keeps serving).
   */
  async apply(compiled: CompiledIngress): Promise<"unchanged" | "loaded" | "pending"> {
    const admin = (compiled.config["admin"] as { listen?: unknown } | undefined)?.listen;
    if (admin !== this.caddyAdminAddress)
      throw new TownError(
        "invalid_argument",
        `ingress: the config's admin address ${String(admin)} is not the supervisor's ${this.caddyAdminAddress}`,
      );
    return this.mutex.run(async () => {
      if (this.desired?.caddyHash !== compiled.caddyHash) this.refusedHash = undefined;
      this.desired = compiled;
      if (this.process.status().state !== "running") return "pending";
      return this.load(compiled);
    });
  }

  status(): IngressStatus {
    const desiredHash = this.desired?.caddyHash ?? null;
    const appliedHash = this.driver.appliedHash ?? null;
    const status = this.process.status();
    const { pid, restarts } = status;
    return {
      state: shownState(this.watching, status),
      pid,
      user: pid === null ? null : this.userOf(pid),
      adminAddress: this.admin.address,
      httpsPort: this.desired?.httpsPort ?? null,
      httpPort: this.desired?.httpPort ?? null,
      configCurrent: desiredHash !== null && desiredHash === appliedHash,
      desiredHash,
      appliedHash,
      restarts,
      lastError: this.lastError,
    };
  }

  /** The local CA's root certificate (PEM), for `/tls/ca.crt`. */
  rootCertificate(): Promise<string> {
    return this.driver.rootCertificate();
  }

  /** Stops watching; Caddy keeps running (what the daemon does when it exits). */
  close(): void {
    this.watching = false;
    this.watch.stop();
    this.process.detach();
  }

  /** Tests only: stops watching and stops Caddy, waiting until its process is gone. */
  async stop(): Promise<void> {
    this.close();
    await this.mutex.idle();
    try {
      await this.admin.stop();
    } catch {
      // Not answering: the signal ends it.
    }
    await this.process.stop();
  }

  /** One level-based pass: does Caddy answer, does it run the desired config? */
  private async tick(): Promise<void> {
    if (!this.watching || this.process.status().state !== "running") return;
    try {
      await this.driver.observe();
    } catch {
      this.missedPolls += 1;
      if (this.missedPolls >= HUNG_AFTER_POLLS) {
        this.log.warn(
          `ingress: Caddy (pid ${String(this.process.status().pid)}) stopped answering; killing it`,
        );
        this.missedPolls = 0;
        // Its exit restarts it.
        this.process.signal("SIGKILL");
      }
      return;
    }
    this.missedPolls = 0;
    await this.converge();
  }

  /** A Caddy came up (started, restarted or adopted): it runs what it was started with. */
  private started(pid: number, origin: "started" | "adopted"): void {
    this.lastSpawnFailed = false;
    this.lastError = null;
    this.missedPolls = 0;
    if (origin === "started") this.log.info(`ingress: started Caddy (pid ${pid})`);
    else this.log.info(`ingress: adopted the running Caddy (pid ${pid})`);
    void this.mutex.run(async () => {
      await this.driver.observe().catch(() => undefined);
      await this.converge();
    });
  }

  /** An adopted Caddy: who it runs as, and replaced when it is an earlier version's root one. */
  private async adopted(): Promise<void> {
    if (this.runAs === undefined) this.runAs = await this.prepareUser().catch(() => undefined);
    const { pid } = this.process.status();
    if (pid === null || process.getuid?.() !== 0 || processUid(pid) !== 0) return;
    this.log.warn(
      `ingress: the adopted Caddy (pid ${String(pid)}) runs as root; restarting it unprivileged`,
    );
    await this.process.restart();
  }

  private failed(failure: ProcessFailure, message: string): void {
    if (failure.kind === "died") {
      this.log.warn(
        `ingress: Caddy is down; restarting (restart ${this.process.status().restarts + 1})`,
      );
      return;
    }
    this.lastSpawnFailed = true;
    const code =
      failure.kind !== "launch" || isSpawnError(failure.error)
        ? "unavailable"
        : failure.error instanceof TownError
          ? failure.error.code
          : "io";
    this.recordError(new TownError(code, message));
  }

  private describe(failure: ProcessFailure): string {
    const tail = (log: string[]): string => log.slice(-3).join(" | ") || "(no log)";
    switch (failure.kind) {
      case "launch":
        return isSpawnError(failure.error)
          ? `caddy: ${this.caddyPath} ${failure.error.message} before answering`
          : failure.error instanceof TownError
            ? failure.error.message
            : String(failure.error);
      case "exited-early": {
        const { signal, code } = failure.exit;
        return `caddy: ${this.caddyPath} exited with ${signal ?? `code ${String(code)}`} before answering: ${tail(failure.log)}`;
      }
      case "timeout":
        return `caddy: no answer on ${this.admin.address} within ${failure.ms} ms: ${tail(failure.log)}`;
      case "died":
        return `caddy: Caddy is down: ${tail(failure.log)}`;
    }
  }

  private async converge(): Promise<void> {
    const desired = this.desired;
    if (
      !desired ||
      desired.caddyHash === this.driver.appliedHash ||
      desired.caddyHash === this.refusedHash
    )
      return;
    try {
      await this.load(desired);
    } catch {
      // Kept in lastError and status; the daemon sees it there.
    }
  }

  private async load(compiled: CompiledIngress): Promise<"unchanged" | "loaded"> {
    try {
      const result = await this.driver.apply(compiled);
      // Caddy runs the desired config: an earlier refusal is history.
      this.refusedHash = undefined;
      this.lastError = null;
      if (result === "loaded") {
        await this.writeConfigFile(compiled.config);
        this.log.info(`ingress: Caddy loaded config ${compiled.caddyHash.slice(0, 12)}`);
      }
      return result;
    } catch (error) {
      const failure = error instanceof TownError ? error : new TownError("io", String(error));
      if (failure.code !== "unavailable") this.refusedHash = compiled.caddyHash;
      this.recordError(failure);
      throw failure;
    }
  }

  /** Who Caddy runs as, with its directories ready for that user. */
  private async prepareUser(): Promise<RunAs | null> {
    if (process.getuid?.() !== 0) return null;
    const user = await lookupUser(this.userName);
    const { dir, storageDir, xdgDataDir, xdgConfigDir } = this.paths;
    await prepareSharedDirectory(dir, user);
    for (const own of [storageDir, xdgDataDir, xdgConfigDir]) await prepareOwnDirectory(own, user);
    return user;
  }

  private userOf(pid: number): string | null {
    const uid = processUid(pid);
    if (uid === null) return null;
    if (this.runAs && uid === this.runAs.uid) return this.runAs.name;
    return uid === 0 ? "root" : String(uid);
  }

  /** Before every start: the user, the config Caddy starts with, and its command line. */
  private async launch(): Promise<Launch> {
    const { dir, configFile, pidFile } = this.paths;
    this.runAs = await this.prepareUser();
    const runAs = this.runAs;
    // A new Caddy has loaded nothing yet, and may take a config refused before.
    this.driver.appliedHash = undefined;
    this.refusedHash = undefined;
    // Nothing answers: an old socket (perhaps root's) is stale, and Caddy must make its own.
    await rm(join(dir, "admin.sock"), { force: true });
    // After a failed start, the admin endpoint alone: it starts, and /load says what is wrong.
    // So too after a Caddy of an earlier version, whose config named its files otherwise.
    const last = this.driver.lastAccepted as { admin?: { listen?: unknown } } | undefined;
    const config =
      this.lastSpawnFailed || last?.admin?.listen !== this.caddyAdminAddress
        ? bootstrapConfig(this.caddyAdminAddress, this.paths.caddyStorageDir)
        : last;
    await this.writeConfigFile(config);
    // Caddy names its files through its working directory (see run-as.ts).
    const inDir = (path: string): string => `${CADDY_DIR}/${basename(path)}`;
    const caddyArgs = [
      this.caddyPath,
      "run",
      "--config",
      inDir(configFile),
      "--pidfile",
      inDir(pidFile),
    ] as const;
    return {
      argv: runAs === null ? caddyArgs : ["setpriv", ...dropPrivileges(runAs), ...caddyArgs],
      cwd: dir,
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        HOME: inDir(this.paths.xdgDataDir),
        XDG_DATA_HOME: inDir(this.paths.xdgDataDir),
        XDG_CONFIG_HOME: inDir(this.paths.xdgConfigDir),
      },
    };
  }

  /** Root's file, readable by Caddy's group. */
  private async writeConfigFile(config: unknown): Promise<void> {
    await writeFileAnew(this.paths.configFile, JSON.stringify(config), 0o640, this.runAs?.gid);
  }

  private recordError(error: TownError): void {
    this.lastError = { code: error.code, message: error.message, at: this.clock() };
    this.log.warn(`ingress: ${error.message}`);
  }
}

/** Node's own failure to run the program (ENOENT, EACCES), as opposed to one of ours before it. */
function isSpawnError(error: Error): boolean {
  return (error as NodeJS.ErrnoException).syscall?.startsWith("spawn") === true;
}
