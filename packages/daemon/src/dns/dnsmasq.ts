/**
 * Supervises the box's dnsmasq: writes the compiled configuration, starts
 * dnsmasq (or adopts the one a previous daemon left running), restarts it
 * when it dies, and takes record and upstream changes with SIGHUP.
 *
 * The main configuration file is named after its hash
 * (`dnsmasq-<hash>.conf`) and dnsmasq gets it on its command line, so a
 * running dnsmasq's `/proc/<pid>/cmdline` tells which configuration it runs:
 * adopting needs no guessing, and a daemon that died between writing a new
 * configuration and restarting still restarts dnsmasq next time.
 *
 * dnsmasq re-reads `addn-hosts` and `servers-file` on SIGHUP (and clears its
 * cache), which the integration test shows; the main file needs a restart.
 * dnsmasq drops root for `nobody` after binding, so the directory is made
 * world-readable (its parents must be traversable too).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdir, open, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { requireProgram } from "../storage/exec.js";
import { printable } from "../storage/names.js";
import {
  compileDnsConfig,
  upstreamsFromResolvConf,
  type CompiledDnsConfig,
  type DnsConfigInput,
  type DnsListen,
  type DnsUpstream,
} from "./config.js";

export interface DnsmasqSupervisorOptions {
  /** Owned by the supervisor: configuration, hosts, servers, pid and log files. */
  dir: string;
  /** The dnsmasq executable; found on PATH (and sbin) when absent. */
  program?: string;
  /** First delay before restarting a dead dnsmasq; doubles up to `maxRestartDelayMs`. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** How often an adopted dnsmasq (not our child: no exit event) is checked. */
  pollMs?: number;
}

export type DnsState = "stopped" | "starting" | "running" | "failed";

export interface DnsStatus {
  state: DnsState;
  /** Why dnsmasq is not running (its own last words when it said any). */
  error?: string;
  pid?: number;
  /** Distinct (name, address) pairs served. */
  records: number;
  /** `address#port`, sorted. */
  upstreams: string[];
  listen: { addresses: string[]; port: number } | undefined;
  /** Hash of the applied configuration. */
  hash?: string;
  /** Times dnsmasq was started again after dying. */
  restarts: number;
}

/** What `apply` did: nothing, SIGHUP, or a (re)start of the process. */
export type DnsApplyAction = "none" | "reloaded" | "restarted" | "started" | "adopted";

const START_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 5_000;
/** A dnsmasq that lived this long was healthy: the next death restarts it quickly again. */
const HEALTHY_AFTER_MS = 10_000;
const LOG_TAIL_BYTES = 4096;

interface Running {
  pid: number;
  confPath: string;
  /** Present when we spawned it: exit events come from here. */
  child?: ChildProcess;
  startedAt: number;
}

export class DnsmasqSupervisor {
  private readonly options: Required<Omit<DnsmasqSupervisorOptions, "program">> & {
    program: string | undefined;
  };
  private readonly hostsFile: string;
  private readonly serversFile: string;
  private readonly pidFile: string;
  private readonly logFile: string;
  private applied: CompiledDnsConfig | undefined;
  private input: DnsConfigInput | undefined;
  private running: Running | undefined;
  private state: DnsState = "stopped";
  private error: string | undefined;
  private restarts = 0;
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** While false, deaths are expected (stop, restart) and not restarted. */
  private supervising = false;
  /** apply, stop and crash restarts run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: DnsmasqSupervisorOptions) {
    this.options = {
      dir: options.dir,
      program: options.program,
      restartDelayMs: options.restartDelayMs ?? 500,
      maxRestartDelayMs: options.maxRestartDelayMs ?? 30_000,
      pollMs: options.pollMs ?? 1_000,
    };
    this.restartDelay = this.options.restartDelayMs;
    this.hostsFile = join(options.dir, "hosts");
    this.serversFile = join(options.dir, "servers");
    this.pidFile = join(options.dir, "dnsmasq.pid");
    this.logFile = join(options.dir, "dnsmasq.log");
  }

  /**
   * Makes dnsmasq serve `input`: idempotent, and a no-op when nothing changed
   * since the last call. Starts (or adopts) dnsmasq on first use.
   * @throws TownError `invalid_argument` for a bad configuration (nothing is
   * changed); failures to run dnsmasq are not thrown but kept in `status()`.
   */
  apply(input: DnsConfigInput): Promise<DnsApplyAction> {
    const compiled = compileDnsConfig(input, {
      hostsFile: this.hostsFile,
      serversFile: this.serversFile,
    });
    return this.serialized(() => this.applyCompiled(input, compiled));
  }

  status(): DnsStatus {
    const status: DnsStatus = {
      state: this.state,
      records: this.applied?.recordCount ?? 0,
      upstreams: this.applied?.upstreams ?? [],
      listen:
        this.input === undefined
          ? undefined
          : { addresses: [...this.input.listen.addresses], port: this.input.listen.port },
      restarts: this.restarts,
    };
    if (this.error !== undefined) status.error = this.error;
    if (this.running !== undefined) status.pid = this.running.pid;
    if (this.applied !== undefined) status.hash = this.applied.hash;
    return status;
  }

  /** Stops dnsmasq and supervising it (tests, uninstall). */
  stop(): Promise<void> {
    return this.serialized(async () => {
      this.unsupervise();
      await this.terminate();
      this.state = "stopped";
    });
  }

  /** Stops supervising but leaves dnsmasq serving: names keep resolving while the daemon restarts. */
  detach(): void {
    this.unsupervise();
    this.running?.child?.removeAllListeners("exit");
  }

  private async applyCompiled(
    input: DnsConfigInput,
    compiled: CompiledDnsConfig,
  ): Promise<DnsApplyAction> {
    if (this.applied?.hash === compiled.hash && this.running !== undefined) return "none";
    await mkdir(this.options.dir, { recursive: true });
    await chmod(this.options.dir, 0o755);
    const confPath = join(this.options.dir, `dnsmasq-${compiled.confHash}.conf`);
    const hostsChanged = await writeIfChanged(this.hostsFile, compiled.hosts);
    const serversChanged = await writeIfChanged(this.serversFile, compiled.servers);
    await writeIfChanged(confPath, compiled.conf);
    this.input = input;
    this.applied = compiled;
    this.supervising = true;

    let action: DnsApplyAction;
    this.running ??= await this.adoptable();
    if (this.running?.confPath === confPath) {
      const adopting = this.state !== "running";
      // An adopted dnsmasq may predate files a previous daemon wrote: reload it too.
      if (hostsChanged || serversChanged || adopting) signal(this.running.pid, "SIGHUP");
      action = adopting ? "adopted" : hostsChanged || serversChanged ? "reloaded" : "none";
      if (adopting) this.watchAdopted();
      this.state = "running";
      this.error = undefined;
    } else {
      action = this.running === undefined ? "started" : "restarted";
      await this.terminate();
      await this.start(confPath);
    }
    await this.removeOldConfigs(basename(confPath));
    return action;
  }

  /** A live dnsmasq named by our pid file and running our configuration file, if any. */
  private async adoptable(): Promise<Running | undefined> {
    const pid = await readPid(this.pidFile);
    if (pid === undefined) return undefined;
    const args = await commandLine(pid);
    if (args === undefined || basename(args[0] ?? "") !== "dnsmasq") return undefined;
    const conf = args.find((arg) => arg.startsWith("--conf-file="))?.slice("--conf-file=".length);
    if (conf === undefined || !conf.startsWith(`${this.options.dir}/dnsmasq-`)) return undefined;
    // Ours, but maybe with an old configuration: the caller restarts it then.
    return { pid, confPath: conf, startedAt: Date.now() };
  }

  private async start(confPath: string): Promise<void> {
    this.state = "starting";
    const program = this.options.program ?? (await requireProgram("dnsmasq", "dns"));
    await rm(this.pidFile, { force: true });
    const log = await open(this.logFile, "w", 0o644);
    let child: ChildProcess;
    try {
      // Detached, with its log in a file rather than a pipe: it outlives the daemon.
      child = spawn(
        program,
        ["--keep-in-foreground", `--conf-file=${confPath}`, `--pid-file=${this.pidFile}`],
        { detached: true, stdio: ["ignore", "ignore", log.fd] },
      );
    } finally {
      await log.close();
    }
    child.unref();
    const exited = new Promise<string>((resolve) => {
      child.once("error", (error) => {
        resolve(error.message);
      });
      child.once("exit", (code, signal) => {
        resolve(signal === null ? `exited with status ${code ?? "?"}` : `killed by ${signal}`);
      });
    });
    const pid = child.pid;
    const ready = pid === undefined ? undefined : await this.waitForPidFile(pid, exited);
    if (pid === undefined || ready !== true) {
      const why = ready ?? (await exited);
      this.fail(`dnsmasq ${why}${await this.lastWords()}`);
      return;
    }
    this.running = { pid, confPath, child, startedAt: Date.now() };
    this.state = "running";
    this.error = undefined;
    const running = this.running;
    child.once("exit", (code, killedBy) => {
      if (this.running !== running) return;
      this.running = undefined;
      void this.lastWords().then((words) => {
        const how =
          killedBy === null ? `exited with status ${code ?? "?"}` : `was killed by ${killedBy}`;
        this.died(`dnsmasq ${how}${words}`, running.startedAt);
      });
    });
  }

  /** dnsmasq writes its pid file once its sockets are bound: then it serves. */
  private async waitForPidFile(pid: number, exited: Promise<string>): Promise<true | string> {
    let gone: string | undefined;
    void exited.then((why) => (gone = why));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (gone !== undefined) return gone;
      if ((await readPid(this.pidFile)) === pid) return true;
      await delay(20);
    }
    process.kill(pid, "SIGKILL");
    return `did not start within ${START_TIMEOUT_MS} ms`;
  }

  /** An adopted dnsmasq is not our child: poll whether it still lives. */
  private watchAdopted(): void {
    clearInterval(this.pollTimer);
    const running = this.running;
    if (running === undefined || running.child !== undefined) return;
    this.pollTimer = setInterval(() => {
      void commandLine(running.pid).then((args) => {
        if (this.running !== running || args !== undefined) return;
        clearInterval(this.pollTimer);
        this.running = undefined;
        this.died("dnsmasq (adopted) is gone", running.startedAt);
      });
    }, this.options.pollMs);
    this.pollTimer.unref();
  }

  private died(error: string, startedAt: number): void {
    if (!this.supervising) return;
    if (Date.now() - startedAt >= HEALTHY_AFTER_MS) this.restartDelay = this.options.restartDelayMs;
    this.fail(error);
  }

  /** Records the failure and schedules a restart with backoff. */
  private fail(error: string): void {
    this.state = "failed";
    this.error = printable(error, 500);
    if (!this.supervising || this.restartTimer !== undefined) return;
    const wait = this.restartDelay;
    this.restartDelay = Math.min(this.restartDelay * 2, this.options.maxRestartDelayMs);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.serialized(async () => {
        if (!this.supervising || this.running !== undefined || this.applied === undefined) return;
        this.restarts++;
        await this.start(join(this.options.dir, `dnsmasq-${this.applied.confHash}.conf`));
      }).catch((error: unknown) => {
        // Nobody awaits a timer: a failed restart is kept in the status and tried again later.
        this.fail(
          `dnsmasq could not be restarted: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
    }, wait);
    this.restartTimer.unref();
  }

  private unsupervise(): void {
    this.supervising = false;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    clearInterval(this.pollTimer);
  }

  /** Stops the running dnsmasq, if any, and waits until it is gone. */
  private async terminate(): Promise<void> {
    const running = this.running;
    if (running === undefined) return;
    this.running = undefined;
    clearInterval(this.pollTimer);
    signal(running.pid, "SIGTERM");
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while ((await commandLine(running.pid)) !== undefined) {
      if (Date.now() > deadline) {
        signal(running.pid, "SIGKILL");
        break;
      }
      await delay(20);
    }
    await rm(this.pidFile, { force: true });
  }

  /** `: <dnsmasq's last log line>`, or nothing. */
  private async lastWords(): Promise<string> {
    try {
      const text = await readTail(this.logFile, LOG_TAIL_BYTES);
      const last = text
        .split("\n")
        .map((line) => line.replace(/^dnsmasq(\[\d+\])?: /, "").trim())
        .filter((line) => line !== "" && !line.startsWith("FAILED to start up"))
        .at(-1);
      return last === undefined ? "" : `: ${last}`;
    } catch {
      return "";
    }
  }

  private async removeOldConfigs(current: string): Promise<void> {
    for (const name of await readdir(this.options.dir)) {
      if (/^dnsmasq-[0-9a-f]+\.conf$/.test(name) && name !== current)
        await rm(join(this.options.dir, name), { force: true });
    }
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** The host's resolvers (its resolv.conf), less this DNS server itself: the default upstreams. */
export async function hostUpstreams(
  listen: DnsListen,
  resolvConf = "/etc/resolv.conf",
): Promise<DnsUpstream[]> {
  const text = await readFile(resolvConf, "utf8").catch(() => "");
  return upstreamsFromResolvConf(text.slice(0, 64 * 1024), listen);
}

/** Writes atomically when the content differs; true when it did. */
async function writeIfChanged(path: string, content: string): Promise<boolean> {
  const current = await readFile(path, "utf8").catch(() => undefined);
  if (current === content) return false;
  const temporary = `${path}.tmp`;
  await writeFile(temporary, content, { mode: 0o644 });
  await chmod(temporary, 0o644);
  await rename(temporary, path);
  return true;
}

async function readPid(path: string): Promise<number | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  const pid = Number(text?.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
}

/** A live process's arguments; undefined once it is gone (zombies count as gone). */
async function commandLine(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The state letter follows the parenthesised command name.
    if (/\)\s+[ZX]\s/.test(stat)) return undefined;
    const raw = await readFile(`/proc/${pid}/cmdline`, "utf8");
    const args = raw.split("\0").filter((arg) => arg !== "");
    return args.length === 0 ? undefined : args;
  } catch {
    return undefined;
  }
}

async function readTail(path: string, bytes: number): Promise<string> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    await file.read(buffer, 0, length, size - length);
    return buffer.toString("utf8");
  } finally {
    await file.close();
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    // Already gone is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
