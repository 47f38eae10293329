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
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { requireProgram } from "../storage/exec.js";
import { printable } from "../storage/names.js";
import { Mutex } from "../system/mutex.js";
import { readPidFile } from "../system/proc.js";
import type { ProcessExit } from "../system/supervisor-state.js";
import { ManagedProcess, type Launch, type ProcessFailure } from "../system/supervisor.js";
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
/** A dnsmasq that lived this long was healthy: the next death restarts it quickly again. */
const HEALTHY_AFTER_MS = 10_000;

export class DnsmasqSupervisor {
  private readonly dir: string;
  private readonly hostsFile: string;
  private readonly serversFile: string;
  private readonly pidFile: string;
  private readonly process: ManagedProcess;
  /** The dnsmasq executable, found by the first `apply`. */
  private program: string | undefined;
  private applied: CompiledDnsConfig | undefined;
  private input: DnsConfigInput | undefined;
  /** apply and stop run one at a time. */
  private readonly mutex = new Mutex();

  constructor(options: DnsmasqSupervisorOptions) {
    this.dir = options.dir;
    this.program = options.program;
    this.hostsFile = join(options.dir, "hosts");
    this.serversFile = join(options.dir, "servers");
    this.pidFile = join(options.dir, "dnsmasq.pid");
    const pidFile = this.pidFile;
    this.process = new ManagedProcess({
      name: "dnsmasq",
      unit: "dnsmasq",
      pidFile,
      programWritesPidFile: true,
      // Its own log in a file rather than a pipe: it outlives the daemon.
      log: { path: join(options.dir, "dnsmasq.log"), truncate: true, mode: 0o644, stdout: false },
      launch: () => this.launch(),
      isOurs: (argv) => this.confOf(argv) !== undefined,
      // dnsmasq writes its pid file once its sockets are bound: then it serves.
      ready: async (pid) => (await readPidFile(pidFile)) === pid,
      readyPollMs: 20,
      startTimeoutMs: START_TIMEOUT_MS,
      pollMs: options.pollMs ?? 1_000,
      restart: {
        initialDelayMs: options.restartDelayMs ?? 500,
        maxDelayMs: options.maxRestartDelayMs ?? 30_000,
        stableAfterMs: HEALTHY_AFTER_MS,
        // Not running is `failed` here, from the first failure.
        failedAfter: 1,
      },
      describe: (failure) => printable(describeFailure(failure), 500),
    });
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
    return this.mutex.run(() => this.applyCompiled(input, compiled));
  }

  status(): DnsStatus {
    const { state, pid, restarts, lastError } = this.process.status();
    const status: DnsStatus = {
      state: state === "restarting" ? "failed" : state,
      records: this.applied?.recordCount ?? 0,
      upstreams: this.applied?.upstreams ?? [],
      listen:
        this.input === undefined
          ? undefined
          : { addresses: [...this.input.listen.addresses], port: this.input.listen.port },
      restarts,
    };
    if (lastError !== null) status.error = lastError.message;
    if (pid !== null) status.pid = pid;
    if (this.applied !== undefined) status.hash = this.applied.hash;
    return status;
  }

  /** Stops dnsmasq and supervising it (tests, uninstall). */
  stop(): Promise<void> {
    return this.mutex.run(() => this.process.stop());
  }

  /** Stops supervising but leaves dnsmasq serving: names keep resolving while the daemon restarts. */
  detach(): void {
    this.process.detach();
  }

  private async applyCompiled(
    input: DnsConfigInput,
    compiled: CompiledDnsConfig,
  ): Promise<DnsApplyAction> {
    if (this.applied?.hash === compiled.hash && this.process.status().state === "running")
      return "none";
    await mkdir(this.dir, { recursive: true });
    await chmod(this.dir, 0o755);
    const confPath = this.confPath(compiled);
    const hostsChanged = await writeIfChanged(this.hostsFile, compiled.hosts);
    const serversChanged = await writeIfChanged(this.serversFile, compiled.servers);
    await writeIfChanged(confPath, compiled.conf);
    this.input = input;
    this.applied = compiled;
    this.program ??= await requireProgram("dnsmasq", "dns");

    let action: DnsApplyAction;
    const adopted = await this.process.adopt();
    const running = this.process.argv();
    if (running !== undefined && this.confOf(running) === confPath) {
      // An adopted dnsmasq may predate files a previous daemon wrote: reload it too.
      if (hostsChanged || serversChanged || adopted) this.process.signal("SIGHUP");
      action = adopted ? "adopted" : hostsChanged || serversChanged ? "reloaded" : "none";
    } else if (running !== undefined) {
      // Ours, but with an old configuration.
      action = "restarted";
      await this.process.restart();
    } else {
      action = "started";
      await this.process.start();
    }
    await this.removeOldConfigs(basename(confPath));
    return action;
  }

  /** Before every start: dnsmasq with the applied configuration. */
  private launch(): Launch {
    if (this.applied === undefined || this.program === undefined)
      throw new Error("nothing to run yet");
    return {
      argv: [
        this.program,
        "--keep-in-foreground",
        `--conf-file=${this.confPath(this.applied)}`,
        `--pid-file=${this.pidFile}`,
      ],
    };
  }

  private confPath(compiled: CompiledDnsConfig): string {
    return join(this.dir, `dnsmasq-${compiled.confHash}.conf`);
  }

  /** The configuration file a dnsmasq of ours runs; undefined for any other process. */
  private confOf(argv: readonly string[]): string | undefined {
    if (basename(argv[0] ?? "") !== "dnsmasq") return undefined;
    const conf = argv.find((arg) => arg.startsWith("--conf-file="))?.slice("--conf-file=".length);
    return conf?.startsWith(`${this.dir}/dnsmasq-`) === true ? conf : undefined;
  }

  private async removeOldConfigs(current: string): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (/^dnsmasq-[0-9a-f]+\.conf$/.test(name) && name !== current)
        await rm(join(this.dir, name), { force: true });
    }
  }
}

function describeFailure(failure: ProcessFailure): string {
  switch (failure.kind) {
    case "launch":
      return failure.restart
        ? `dnsmasq could not be restarted: ${failure.error.message}`
        : `dnsmasq ${failure.error.message}`;
    case "exited-early":
      return `dnsmasq ${howItExited(failure.exit, "killed by")}${lastWords(failure.log)}`;
    case "timeout":
      return `dnsmasq did not start within ${failure.ms} ms${lastWords(failure.log)}`;
    case "died":
      return failure.origin === "adopted"
        ? "dnsmasq (adopted) is gone"
        : `dnsmasq ${howItExited(failure.exit, "was killed by")}${lastWords(failure.log)}`;
  }
}

function howItExited(exit: ProcessExit, killed: string): string {
  return exit.signal === null
    ? `exited with status ${exit.code ?? "?"}`
    : `${killed} ${exit.signal}`;
}

/** `: <dnsmasq's last log line>`, or nothing. */
function lastWords(log: string[]): string {
  const last = log
    .map((line) => line.replace(/^dnsmasq(\[\d+\])?: /, "").trim())
    .filter((line) => line !== "" && !line.startsWith("FAILED to start up"))
    .at(-1);
  return last === undefined ? "" : `: ${last}`;
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
