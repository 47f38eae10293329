/**
 * Keeps exactly one Caddy running with the desired ingress config: adopts a
 * Caddy already answering on the admin address, or starts one detached (its
 * own process group, so it keeps serving while the daemon exits or
 * restarts), watches it through the admin API and restarts it with backoff
 * when it dies, then loads the desired config again.
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
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { TownError } from "@townos/format";
import { systemClock, type Clock } from "../clock.js";
import { CaddyAdmin, CaddyDriver } from "./caddy.js";
import { bootstrapConfig, type CompiledIngress } from "./config.js";
import {
  CADDY_DIR,
  DEFAULT_CADDY_USER,
  dropPrivileges,
  lookupUser,
  NO_FOLLOW,
  openNoFollow,
  prepareOwnDirectory,
  prepareSharedDirectory,
  processUid,
  type RunAs,
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
const LOG_TAIL_BYTES = 2048;

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
  private readonly startTimeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly clock: Clock;
  private readonly log: IngressLog;

  private state: IngressState = "stopped";
  private pid: number | null = null;
  private desired: CompiledIngress | undefined;
  /** A desired config Caddy refused is not sent again until it changes or Caddy restarts. */
  private refusedHash: string | undefined;
  private lastError: IngressStatus["lastError"] = null;
  private restarts = 0;
  private failedStarts = 0;
  private lastSpawnFailed = false;
  private startedAt = 0;
  private missedPolls = 0;
  private nextStartAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private watching = false;
  /** Every step that talks to Caddy runs in this chain, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: SupervisorOptions) {
    this.paths = ingressPaths(options.dataDir);
    this.admin = new CaddyAdmin(options.adminAddress ?? this.paths.adminAddress, 3_000);
    this.caddyAdminAddress = options.adminAddress ?? this.paths.caddyAdminAddress;
    this.driver = new CaddyDriver(this.admin, this.paths.storageDir);
    this.caddyPath = options.caddyPath ?? "caddy";
    this.userName = options.user ?? DEFAULT_CADDY_USER;
    this.pollIntervalMs = options.pollIntervalMs ?? 2_000;
    this.startTimeoutMs = options.startTimeoutMs ?? 15_000;
    this.backoffInitialMs = options.backoffInitialMs ?? 500;
    this.backoffMaxMs = options.backoffMaxMs ?? 30_000;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? { info: () => undefined, warn: () => undefined };
  }

  /**
   * Adopts or starts Caddy, applies the desired config if one is set, and
   * keeps watching. Never throws for Caddy's own failures: they show in
   * `status()` while the watch keeps retrying.
   */
  async start(): Promise<IngressStatus> {
    if (!this.watching) {
      this.watching = true;
      this.state = "starting";
      await mkdir(this.paths.dir, { recursive: true, mode: 0o700 });
      await this.serialized(() => this.tick());
      this.schedule();
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
    return this.serialized(async () => {
      if (this.desired?.hash !== compiled.hash) this.refusedHash = undefined;
      this.desired = compiled;
      if (this.state !== "running" && this.state !== "adopted") return "pending";
      return this.load(compiled);
    });
  }

  status(): IngressStatus {
    const desiredHash = this.desired?.hash ?? null;
    const appliedHash = this.driver.appliedHash ?? null;
    return {
      state: this.state,
      pid: this.pid,
      user: this.pid === null ? null : this.userOf(this.pid),
      adminAddress: this.admin.address,
      httpsPort: this.desired?.httpsPort ?? null,
      httpPort: this.desired?.httpPort ?? null,
      configCurrent: desiredHash !== null && desiredHash === appliedHash,
      desiredHash,
      appliedHash,
      restarts: this.restarts,
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
    this.state = "stopped";
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Tests only: stops watching and stops Caddy, waiting until its process is gone. */
  async stop(): Promise<void> {
    this.close();
    await this.queue;
    await this.stopCaddy(this.pid ?? (await this.readPidFile()));
  }

  /** Asks Caddy to exit, kills it when it has not within 5 s, and waits until it is gone. */
  private async stopCaddy(pid: number | null): Promise<void> {
    try {
      await this.admin.stop();
    } catch {
      // Not answering: the signal below ends it.
    }
    if (pid !== null) {
      const deadline = Date.now() + 5_000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(50);
      if (isAlive(pid)) killGroup(pid, "SIGKILL");
    }
    this.pid = null;
  }

  private serialized<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(step, step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private schedule(): void {
    if (!this.watching) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.serialized(() => this.tick()).finally(() => {
        this.schedule();
      });
    }, this.pollIntervalMs);
    // The daemon's server keeps the process alive; the watch alone must not.
    this.timer.unref();
  }

  /** One level-based pass: is Caddy up, does it run the desired config? */
  private async tick(): Promise<void> {
    if (!this.watching) return;
    let answering = true;
    try {
      await this.driver.observe();
    } catch {
      answering = false;
    }
    if (answering) {
      this.missedPolls = 0;
      if (this.state !== "running" && this.state !== "adopted") {
        // Up without a start of ours (at boot, or started by someone else meanwhile): adopted.
        this.state = "adopted";
        if (this.runAs === undefined) this.runAs = await this.prepareUser().catch(() => undefined);
        this.lastError = null;
        this.pid = await this.readPidFile();
        this.log.info(`ingress: adopted the running Caddy (pid ${String(this.pid)})`);
        if (this.runsAsRootNeedlessly()) {
          await this.replaceRootCaddy();
          return;
        }
      }
      await this.converge();
      return;
    }
    if (this.pid !== null && isAlive(this.pid) && this.state !== "starting") {
      this.missedPolls += 1;
      if (this.missedPolls < HUNG_AFTER_POLLS) return;
      this.log.warn(`ingress: Caddy (pid ${this.pid}) stopped answering; killing it`);
      killGroup(this.pid, "SIGKILL");
    }
    await this.restart();
  }

  private async converge(): Promise<void> {
    const desired = this.desired;
    if (!desired || desired.hash === this.driver.appliedHash || desired.hash === this.refusedHash)
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
        this.log.info(`ingress: Caddy loaded config ${compiled.hash.slice(0, 12)}`);
      }
      return result;
    } catch (error) {
      const failure = error instanceof TownError ? error : new TownError("io", String(error));
      if (failure.code !== "unavailable") this.refusedHash = compiled.hash;
      this.recordError(failure);
      throw failure;
    }
  }

  /** Starts a new Caddy once the backoff allows, and waits until it answers. */
  private async restart(): Promise<void> {
    const now = this.clock();
    if (this.state !== "starting" && this.state !== "restarting" && this.state !== "failed") {
      // It was up and is gone: a crash.
      this.restarts += 1;
      if (now - this.startedAt < STABLE_AFTER_MS) this.failedStarts += 1;
      else this.failedStarts = 0;
      this.nextStartAt = now + this.backoff();
      this.state = this.failedStarts >= FAILED_AFTER_ATTEMPTS ? "failed" : "restarting";
      this.log.warn(`ingress: Caddy is down; restarting (restart ${this.restarts})`);
    }
    if (now < this.nextStartAt) return;
    this.driver.appliedHash = undefined;
    this.refusedHash = undefined;
    try {
      await this.spawnCaddy();
      this.lastSpawnFailed = false;
      this.startedAt = this.clock();
      this.state = "running";
      this.lastError = null;
      await this.driver.observe();
      await this.converge();
    } catch (error) {
      this.lastSpawnFailed = true;
      this.failedStarts += 1;
      this.nextStartAt = this.clock() + this.backoff();
      this.state = this.failedStarts >= FAILED_AFTER_ATTEMPTS ? "failed" : "restarting";
      this.recordError(
        error instanceof TownError ? error : new TownError("io", String(error), { cause: error }),
      );
    }
  }

  private backoff(): number {
    return Math.min(
      this.backoffMaxMs,
      this.backoffInitialMs * 2 ** Math.max(0, this.failedStarts - 1),
    );
  }

  /** An adopted Caddy of an earlier version, running as root while this daemon could drop it. */
  private runsAsRootNeedlessly(): boolean {
    if (this.pid === null || process.getuid?.() !== 0) return false;
    return processUid(this.pid) === 0;
  }

  /** Stops the root Caddy (its config is kept) and starts it again as the unprivileged user. */
  private async replaceRootCaddy(): Promise<void> {
    this.log.warn(
      `ingress: the adopted Caddy (pid ${String(this.pid)}) runs as root; restarting it unprivileged`,
    );
    await this.stopCaddy(this.pid);
    this.state = "starting";
    this.nextStartAt = 0;
    await this.restart();
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

  private async spawnCaddy(): Promise<void> {
    const { dir, configFile, logFile, pidFile } = this.paths;
    this.runAs = await this.prepareUser();
    const runAs = this.runAs;
    // Nothing answers: an old socket or pid file (perhaps root's) is stale, and Caddy must make its own.
    await rm(join(dir, "admin.sock"), { force: true });
    await rm(pidFile, { force: true });
    // After a failed start, the admin endpoint alone: it starts, and /load says what is wrong.
    // So too after a Caddy of an earlier version, whose config named its files otherwise.
    const last = this.driver.lastAccepted as { admin?: { listen?: unknown } } | undefined;
    const config =
      this.lastSpawnFailed || last?.admin?.listen !== this.caddyAdminAddress
        ? bootstrapConfig(this.caddyAdminAddress, this.paths.caddyStorageDir)
        : last;
    await this.writeConfigFile(config);
    // Opened and closed synchronously: an await between the spawn and the
    // listeners below could let a quick exit go by unheard.
    const logFd = openSync(
      logFile,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NO_FOLLOW,
      0o600,
    );
    // Caddy names its files through its working directory (see run-as.ts).
    const inDir = (path: string): string => `${CADDY_DIR}/${basename(path)}`;
    const caddyArgs = [
      this.caddyPath,
      "run",
      "--config",
      inDir(configFile),
      "--pidfile",
      inDir(pidFile),
    ];
    const [program = "", ...args] =
      runAs === null ? caddyArgs : ["setpriv", ...dropPrivileges(runAs), ...caddyArgs];
    let child: ChildProcess;
    try {
      if (!fstatSync(logFd).isFile()) throw new TownError("io", `caddy: ${logFile} is not a file`);
      child = spawn(program, args, {
        // Its own process group: signals to the daemon's group do not reach it.
        detached: true,
        stdio: ["ignore", logFd, logFd],
        cwd: dir,
        env: {
          PATH: process.env["PATH"] ?? "/usr/bin:/bin",
          HOME: inDir(this.paths.xdgDataDir),
          XDG_DATA_HOME: inDir(this.paths.xdgDataDir),
          XDG_CONFIG_HOME: inDir(this.paths.xdgConfigDir),
        },
      });
    } finally {
      closeSync(logFd);
    }
    child.unref();
    let exited: string | undefined;
    child.once("error", (error) => {
      exited = error.message;
    });
    child.once("exit", (code, signal) => {
      exited = `exited with ${signal ?? `code ${String(code)}`}`;
      // Look at once instead of at the next poll.
      if (this.watching && this.state !== "starting") {
        clearTimeout(this.timer);
        this.timer = undefined;
        void this.serialized(() => this.tick()).finally(() => {
          this.schedule();
        });
      }
    });
    this.pid = child.pid ?? null;
    this.log.info(`ingress: started Caddy (pid ${String(this.pid)})`);
    const deadline = this.clock() + this.startTimeoutMs;
    for (;;) {
      if (exited !== undefined) {
        throw new TownError(
          "unavailable",
          `caddy: ${this.caddyPath} ${exited} before answering: ${await this.logTail()}`,
        );
      }
      try {
        await this.admin.config();
        return;
      } catch {
        // Not listening yet.
      }
      if (this.clock() > deadline) {
        if (this.pid !== null) killGroup(this.pid, "SIGKILL");
        throw new TownError(
          "unavailable",
          `caddy: no answer on ${this.admin.address} within ${this.startTimeoutMs} ms: ${await this.logTail()}`,
        );
      }
      await sleep(100);
    }
  }

  /** Root's file, readable by Caddy's group; made anew (O_EXCL) so that no planted link is followed. */
  private async writeConfigFile(config: unknown): Promise<void> {
    const temporary = `${this.paths.configFile}.tmp`;
    await rm(temporary, { force: true });
    const file = await openNoFollow(
      temporary,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
      0o640,
    );
    try {
      if (this.runAs) await file.chown(0, this.runAs.gid);
      await file.writeFile(JSON.stringify(config));
    } finally {
      await file.close();
    }
    await rename(temporary, this.paths.configFile);
  }

  /** The pid Caddy wrote, if that process is still a Caddy. */
  private async readPidFile(): Promise<number | null> {
    try {
      const file = await openNoFollow(this.paths.pidFile, constants.O_RDONLY);
      const buffer = Buffer.alloc(32);
      const { bytesRead } = await file
        .read(buffer, 0, buffer.length, 0)
        .finally(() => file.close());
      const pid = Number(buffer.subarray(0, bytesRead).toString("utf8").trim());
      if (!Number.isInteger(pid) || pid <= 0) return null;
      const command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      return command.split("\0").some((part) => part.endsWith("caddy")) ? pid : null;
    } catch {
      return null;
    }
  }

  private async logTail(): Promise<string> {
    try {
      const file = await openNoFollow(this.paths.logFile, constants.O_RDONLY);
      try {
        const { size } = await file.stat();
        const start = Math.max(0, size - LOG_TAIL_BYTES);
        const buffer = Buffer.alloc(size - start);
        await file.read(buffer, 0, buffer.length, start);
        const lines = buffer.toString("utf8").trim().split("\n");
        return lines.slice(-3).join(" | ");
      } finally {
        await file.close();
      }
    } catch {
      return "(no log)";
    }
  }

  private recordError(error: TownError): void {
    this.lastError = { code: error.code, message: error.message, at: this.clock() };
    this.log.warn(`ingress: ${error.message}`);
  }
}

/** Alive and not a zombie (an adopted Caddy's zombie may never be reaped in a container). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/s.test(stat);
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
