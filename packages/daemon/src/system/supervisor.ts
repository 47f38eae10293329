/**
 * One managed process: the daemon's helpers (Caddy, dnsmasq, Podman's
 * service) are each one of these. It
 * - adopts the process its pid file names when that is alive and really
 *   ours (its /proc command line says so: a recycled pid is never adopted,
 *   signalled or killed), else starts one;
 * - starts it detached (its own process group, output to a log file rather
 *   than a pipe) so that it keeps serving while the daemon exits or
 *   restarts, and waits until the owner's readiness probe says it serves;
 *   when the daemon is a systemd service and the owner names a unit, it is
 *   started as that systemd unit instead (systemd-unit.ts);
 * - restarts it with backoff when it exits without being asked to (a child
 *   of ours reports its exit; an adopted one is polled);
 * - stops it: a signal, a timeout, then SIGKILL.
 * What the process is (its argv, files, readiness, how its failures read)
 * comes from the owner; the status bookkeeping is supervisor-state.ts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, fstatSync, openSync, writeSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { TownError } from "@townos/format";
import { systemClock, type Clock } from "../clock.js";
import { Mutex } from "./mutex.js";
import { runsUnderSystemd, startUnit, unitName, type Launch } from "./systemd-unit.js";
import { commandLine, NO_FOLLOW, readLogTail, readPidFile, signalProcess } from "./proc.js";
import {
  initialStatus,
  transition,
  type ProcessEvent,
  type ProcessExit,
  type ProcessStatus,
  type RestartPolicy,
} from "./supervisor-state.js";

export type { Launch };

/** Why a start or a running process failed, for the owner to put in words (`describe`). */
export type ProcessFailure =
  /** Preparing or spawning failed: no process ran (a missing program, an unwritable log). */
  | { kind: "launch"; error: Error; restart: boolean }
  | { kind: "exited-early"; exit: ProcessExit; log: string[] }
  | { kind: "timeout"; ms: number; log: string[] }
  | { kind: "died"; exit: ProcessExit; origin: "started" | "adopted"; log: string[] };

export interface ManagedProcessOptions {
  /** Names the process in messages. */
  name: string;
  /** Absent: nothing to adopt (the owner finds a running one its own way, e.g. Podman's socket). */
  pidFile?: string;
  /** True when the program writes `pidFile` itself; else the supervisor writes it after spawning. */
  programWritesPidFile?: boolean;
  /** Where stdout and stderr go (appended; truncated at each start with `truncate`). */
  log?: { path: string; truncate?: boolean; mode?: number; stdout?: boolean };
  launch: () => Launch | Promise<Launch>;
  /**
   * Run as the systemd unit `town-<unit>.service` when the daemon is a
   * systemd service (else spawned as everywhere).
   */
  unit?: string;
  /** Whether a live process's command line is this program (with our files): may it be adopted or signalled? */
  isOurs: (argv: readonly string[]) => boolean;
  /** Does the started process serve yet? Exceptions count as no. */
  ready: (pid: number) => Promise<boolean>;
  readyPollMs?: number;
  /** How long a start may take to become ready; then it is killed. Default 15 s. */
  startTimeoutMs?: number;
  /** How often an adopted process (not our child: no exit event) is checked. Default 1 s. */
  pollMs?: number;
  restart?: Partial<RestartPolicy>;
  /** The message a failure leaves in the status; default names the process and what happened. */
  describe?: (failure: ProcessFailure) => string;
  /** Called after each start and adoption (also the restarts the supervisor makes on its own). */
  onStarted?: (pid: number, origin: "started" | "adopted") => void;
  /** Called after each failure, with its message. */
  onFailure?: (failure: ProcessFailure, message: string) => void;
  clock?: Clock;
}

const DEFAULT_POLICY: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  stableAfterMs: 30_000,
  failedAfter: 3,
};
const LOG_TAIL_LINES = 20;
const LOG_TAIL_BYTES = 4096;
const STOP_TIMEOUT_MS = 5_000;

interface Current {
  pid: number;
  argv: readonly string[];
  origin: "started" | "adopted";
  /** Present when we spawned it: its exit event comes from here (else it is polled). */
  child?: ChildProcess;
}

export class ManagedProcess {
  private readonly options: ManagedProcessOptions;
  private readonly policy: RestartPolicy;
  private readonly clock: Clock;
  private readonly mutex = new Mutex();
  private state: ProcessStatus = initialStatus;
  private current: Current | undefined;
  /** While false, exits are expected (stop, detach) and not restarted. */
  private watching = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** The systemd unit it runs as, when it does. */
  private readonly unit: string | undefined;

  constructor(options: ManagedProcessOptions) {
    this.options = options;
    this.policy = { ...DEFAULT_POLICY, ...options.restart };
    this.clock = options.clock ?? systemClock;
    this.unit =
      options.unit !== undefined && runsUnderSystemd() ? unitName(options.unit) : undefined;
  }

  status(): ProcessStatus {
    return this.state;
  }

  /** The running process's command line as it was started or found; undefined when none runs. */
  argv(): readonly string[] | undefined {
    return this.current?.argv;
  }

  /**
   * Adopts the process the pid file names when it is ours, else starts one,
   * and watches it. Never throws for the process's own failures: they are in
   * `status()` while a restart is scheduled.
   */
  start(): Promise<ProcessStatus> {
    return this.mutex.run(async () => {
      this.watching = true;
      const current = this.current;
      if (current === undefined) {
        if (!(await this.adoptLocked())) {
          this.apply({ type: "starting" });
          await this.spawnLocked(false);
        }
      } else if (current.child === undefined) {
        // Watched again after `detach`: a process that is not our child is polled anew.
        this.pollExit(current);
      }
      return this.state;
    });
  }

  /**
   * Adopts the process the pid file names when it is ours and none runs
   * here yet, and watches it; starts nothing.
   * @returns true when it adopted one now.
   */
  adopt(): Promise<boolean> {
    return this.mutex.run(async () => {
      if (this.current !== undefined) return false;
      const adopted = await this.adoptLocked();
      if (adopted) this.watching = true;
      return adopted;
    });
  }

  /** Stops the process (the one running, or the pid file's when it is ours) and watching it. */
  stop(timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    this.unwatch();
    return this.mutex.run(() => this.stopLocked(timeoutMs));
  }

  /** Stops the running process and starts it anew (a new argv from `launch`). */
  restart(): Promise<ProcessStatus> {
    return this.mutex.run(async () => {
      await this.stopLocked(STOP_TIMEOUT_MS);
      this.watching = true;
      this.apply({ type: "starting" });
      await this.spawnLocked(false);
      return this.state;
    });
  }

  /**
   * Stops watching but leaves the process running: it keeps serving while
   * the daemon restarts. The status keeps showing it as last seen.
   */
  detach(): void {
    this.unwatch();
  }

  /** Sends `signal` to the running process; a SIGKILL's exit then restarts it as any exit does. */
  signal(signal: NodeJS.Signals): void {
    if (this.current !== undefined) signalProcess(this.current.pid, signal);
  }

  /** The last lines of the log file. */
  logTail(maxLines = LOG_TAIL_LINES): Promise<string[]> {
    if (this.options.log === undefined) return Promise.resolve([]);
    return readLogTail(this.options.log.path, maxLines, LOG_TAIL_BYTES);
  }

  private apply(event: ProcessEvent): number | undefined {
    const { status, retryInMs } = transition(this.state, event, this.policy);
    this.state = status;
    return retryInMs;
  }

  private async adoptLocked(): Promise<boolean> {
    const pid = await this.readPid();
    if (pid === undefined) return false;
    const argv = await commandLine(pid);
    if (argv === undefined || !this.options.isOurs(argv)) return false;
    const current: Current = { pid, argv, origin: "adopted" };
    this.current = current;
    this.pollExit(current);
    this.started(current);
    return true;
  }

  /** Starts the process and waits until it is ready; a failure is recorded and a restart scheduled. */
  private async spawnLocked(restart: boolean): Promise<void> {
    if (this.unit !== undefined) {
      await this.startUnitLocked(this.unit, restart);
      return;
    }
    let child: ChildProcess;
    let argv: readonly string[];
    try {
      const launch = await this.prepareLaunch();
      argv = launch.argv;
      child = this.spawnDetached(launch);
    } catch (error) {
      this.launchFailed(error, restart);
      return;
    }
    // Listened to at once: a quick exit must not go by unheard.
    let early: ProcessExit | Error | undefined;
    child.once("error", (error) => (early ??= error));
    child.once("exit", (code, signal) => (early ??= { code, signal, at: this.clock() }));
    const pid = child.pid;
    if (pid === undefined) {
      // Node reports why (ENOENT…) in the "error" event, after this tick.
      await new Promise((resolve) => setImmediate(resolve));
      const error = early instanceof Error ? early : new Error("spawn failed");
      this.failed({ kind: "launch", error, restart });
      return;
    }
    await this.recordPid(pid);
    const failure = await this.untilReady(pid, () => early, restart);
    if (failure !== undefined) {
      this.failed(failure);
      return;
    }
    const current: Current = { pid, argv, origin: "started", child };
    this.current = current;
    child.removeAllListeners("exit");
    child.once("exit", (code, signal) => {
      this.exited(current, { code, signal, at: this.clock() });
    });
    this.started(current);
  }

  /** As spawnLocked, as a systemd unit: not our child, so its end is seen by polling. */
  private async startUnitLocked(unit: string, restart: boolean): Promise<void> {
    let pid: number;
    let argv: readonly string[];
    try {
      const launch = await this.prepareLaunch();
      argv = launch.argv;
      const log = this.options.log;
      // systemd opens the log as root: it is made here first, never through a link.
      if (log !== undefined) closeSync(openLog(log, this.options.name));
      pid = await startUnit(
        unit,
        launch,
        log === undefined
          ? undefined
          : { path: log.path, ...(log.stdout === undefined ? {} : { stdout: log.stdout }) },
      );
    } catch (error) {
      this.launchFailed(error, restart);
      return;
    }
    await this.recordPid(pid);
    const gone = async (): Promise<ProcessExit | undefined> =>
      (await commandLine(pid)) === undefined
        ? { code: null, signal: null, at: this.clock() }
        : undefined;
    const failure = await this.untilReady(pid, gone, restart);
    if (failure !== undefined) {
      this.failed(failure);
      return;
    }
    const current: Current = { pid, argv, origin: "started" };
    this.current = current;
    this.pollExit(current);
    this.started(current);
  }

  /** The owner's launch, with the last pid file gone: a new one names the new process. */
  private async prepareLaunch(): Promise<Launch> {
    const launch = await this.options.launch();
    if (this.options.pidFile !== undefined) await rm(this.options.pidFile, { force: true });
    return launch;
  }

  private launchFailed(error: unknown, restart: boolean): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    this.failed({ kind: "launch", error: cause, restart });
  }

  /** Writes the pid file, unless the program writes its own. */
  private async recordPid(pid: number): Promise<void> {
    if (this.options.pidFile !== undefined && this.options.programWritesPidFile !== true)
      await writePidFile(this.options.pidFile, pid);
  }

  private started(current: Current): void {
    this.apply({ type: "started", pid: current.pid, origin: current.origin, at: this.clock() });
    this.options.onStarted?.(current.pid, current.origin);
  }

  /** Polls the readiness probe; the failure when the process exits first or takes too long. */
  private async untilReady(
    pid: number,
    early: () => ProcessExit | Error | undefined | Promise<ProcessExit | undefined>,
    restart: boolean,
  ): Promise<ProcessFailure | undefined> {
    const ms = this.options.startTimeoutMs ?? 15_000;
    const deadline = this.clock() + ms;
    for (;;) {
      const exit = await early();
      if (exit instanceof Error) return { kind: "launch", error: exit, restart };
      if (exit !== undefined) return { kind: "exited-early", exit, log: await this.logTail() };
      if (await this.options.ready(pid).catch(() => false)) return undefined;
      if (this.clock() > deadline) {
        signalProcess(pid, "SIGKILL");
        return { kind: "timeout", ms, log: await this.logTail() };
      }
      await sleep(this.options.readyPollMs ?? 50);
    }
  }

  private spawnDetached(launch: Launch): ChildProcess {
    const [program, ...args] = launch.argv;
    const log = this.options.log;
    // Opened and closed synchronously around the spawn; the child keeps its copy.
    const fd = log === undefined ? undefined : openLog(log, this.options.name);
    try {
      const out = fd ?? "ignore";
      const child = spawn(program, args, {
        // Its own process group: signals to the daemon's group do not reach it.
        detached: true,
        stdio: ["ignore", log?.stdout === false ? "ignore" : out, out],
        ...(launch.cwd === undefined ? {} : { cwd: launch.cwd }),
        ...(launch.env === undefined ? {} : { env: launch.env }),
      });
      child.unref();
      return child;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** A process that is not our child (adopted, or a unit's): poll whether it still lives (and is still ours). */
  private pollExit(current: Current): void {
    clearInterval(this.pollTimer);
    this.pollTimer = setInterval(() => {
      void commandLine(current.pid).then((argv) => {
        if (argv !== undefined && this.options.isOurs(argv)) return;
        this.exited(current, { code: null, signal: null, at: this.clock() });
      });
    }, this.options.pollMs ?? 1_000);
    this.pollTimer.unref();
  }

  /** The process is gone without being asked to: record it and schedule a restart. */
  private exited(current: Current, exit: ProcessExit): void {
    if (this.current !== current) return;
    this.current = undefined;
    clearInterval(this.pollTimer);
    if (!this.watching) {
      this.apply({ type: "stopped" });
      return;
    }
    void this.mutex.run(async () => {
      const failure: ProcessFailure = {
        kind: "died",
        exit,
        origin: current.origin,
        log: await this.logTail(),
      };
      const message = this.describe(failure);
      this.schedule(this.apply({ type: "exited", exit, message }));
      this.options.onFailure?.(failure, message);
    });
  }

  private failed(failure: ProcessFailure): void {
    const message = this.describe(failure);
    const retryInMs = this.apply({ type: "start-failed", message, at: this.clock() });
    if (this.watching) this.schedule(retryInMs);
    this.options.onFailure?.(failure, message);
  }

  private schedule(retryInMs: number | undefined): void {
    if (retryInMs === undefined || !this.watching || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.mutex.run(async () => {
        if (!this.watching || this.current !== undefined) return;
        this.apply({ type: "restarting" });
        await this.spawnLocked(true);
      });
    }, retryInMs);
    // The daemon's server keeps the process alive; a pending restart alone must not.
    this.retryTimer.unref();
  }

  private unwatch(): void {
    this.watching = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearInterval(this.pollTimer);
  }

  /** Signals the process, waits until it is gone (SIGKILL after the timeout), removes the pid file. */
  private async stopLocked(timeoutMs: number): Promise<void> {
    let pid = this.current?.pid;
    this.current?.child?.removeAllListeners("exit");
    this.current = undefined;
    clearInterval(this.pollTimer);
    if (pid === undefined) {
      // Not watched here (another supervisor's, or an earlier daemon's): the pid file's, when ours.
      const named = await this.readPid();
      const argv = named === undefined ? undefined : await commandLine(named);
      if (argv !== undefined && this.options.isOurs(argv)) pid = named;
    }
    if (pid !== undefined) await terminate(pid, timeoutMs);
    if (this.options.pidFile !== undefined) await rm(this.options.pidFile, { force: true });
    this.apply({ type: "stopped" });
  }

  private readPid(): Promise<number | undefined> {
    const { pidFile } = this.options;
    return pidFile === undefined ? Promise.resolve(undefined) : readPidFile(pidFile);
  }

  private describe(failure: ProcessFailure): string {
    return this.options.describe?.(failure) ?? `${this.options.name} ${describeFailure(failure)}`;
  }
}

/** The log file, made (mode as given) or truncated as asked, else appended to; never through a link. */
function openLog(log: NonNullable<ManagedProcessOptions["log"]>, name: string): number {
  const fd = openSync(
    log.path,
    constants.O_WRONLY |
      constants.O_CREAT |
      (log.truncate === true ? constants.O_TRUNC : constants.O_APPEND) |
      NO_FOLLOW,
    log.mode ?? 0o600,
  );
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new TownError("io", `${name}: ${log.path} is not a file`);
  }
  return fd;
}

/** Written anew (O_EXCL, links not followed) and renamed into place. */
async function writePidFile(path: string, pid: number): Promise<void> {
  const temporary = `${path}.tmp`;
  await rm(temporary, { force: true });
  const fd = openSync(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW,
    0o644,
  );
  try {
    writeSync(fd, `${pid}\n`);
  } finally {
    closeSync(fd);
  }
  await rename(temporary, path);
}

/** SIGTERM, then SIGKILL when it is still there after `timeoutMs`; resolves once it is gone. */
async function terminate(pid: number, timeoutMs: number): Promise<void> {
  if (!signalProcess(pid, "SIGTERM")) return;
  const deadline = Date.now() + timeoutMs;
  while ((await commandLine(pid)) !== undefined) {
    if (Date.now() > deadline) {
      signalProcess(pid, "SIGKILL");
      const killedBy = Date.now() + 1_000;
      while ((await commandLine(pid)) !== undefined && Date.now() < killedBy) await sleep(20);
      return;
    }
    await sleep(20);
  }
}

/** How an exit reads: `exited with code 1`, `killed by SIGKILL`, or `vanished` (adopted). */
export function describeExit(exit: ProcessExit): string {
  if (exit.signal !== null) return `killed by ${exit.signal}`;
  return exit.code === null ? "vanished" : `exited with code ${exit.code}`;
}

function describeFailure(failure: ProcessFailure): string {
  switch (failure.kind) {
    case "launch":
      return `could not be ${failure.restart ? "restarted" : "started"}: ${failure.error.message}`;
    case "exited-early":
      return `${describeExit(failure.exit)} before it was ready: ${failure.log.slice(-3).join(" | ")}`;
    case "timeout":
      return `not ready within ${failure.ms} ms: ${failure.log.slice(-3).join(" | ")}`;
    case "died":
      return `${failure.origin === "adopted" ? "(adopted) " : ""}${describeExit(failure.exit)}`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
