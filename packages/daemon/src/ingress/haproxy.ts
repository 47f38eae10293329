/**
 * Keeps HAProxy, the HTTPS data plane, running the desired ingress with the
 * certificates Caddy keeps. HAProxy runs in master-worker mode: the master
 * (root: it binds 80/443 and re-reads the config) forks workers that drop to
 * the `haproxy` user; SIGUSR2 reloads it seamlessly (the listening sockets
 * pass to the new worker, which answers while the old one finishes its
 * requests). The process itself (adopt the pid file's, start, restart with
 * backoff) is a ManagedProcess.
 *
 * A reload HAProxy refuses (a port it cannot bind, a file it cannot read)
 * leaves the old worker serving; the files are put back as they were, so
 * that a restart runs what ran before, and the refusal is kept in the
 * status. Certificates are copied from Caddy's storage when a config is
 * applied and on every check after (renewals, ACME certificates that arrive
 * later); a change reloads.
 */
import { constants } from "node:fs";
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TownError } from "@townos/format";
import { systemClock, type Clock } from "../clock.js";
import { Mutex } from "../system/mutex.js";
import { Periodic } from "../system/periodic.js";
import { shownState } from "../system/supervisor-state.js";
import { ManagedProcess, type ProcessFailure } from "../system/supervisor.js";
import { readCertificates, type HostCertificate } from "./certificates.js";
import type { CompiledIngress } from "./config.js";
import {
  ADMIN_SOCKET_FILE,
  CRT_LIST_FILE,
  HAPROXY_CONFIG_FILE,
  type HaproxyFiles,
} from "./haproxy-config.js";
import { openNoFollow, writeFileAnew } from "./run-as.js";

export const DEFAULT_HAPROXY_USER = "haproxy";
const CERTS_DIR = "certs";
/** How long an apply waits for Caddy's first certificates of new local names. */
const CERTIFICATE_WAIT_MS = 10_000;
const RELOAD_TIMEOUT_MS = 15_000;
const STABLE_AFTER_MS = 30_000;

export interface HaproxyStatus {
  state: "starting" | "running" | "adopted" | "restarting" | "failed" | "stopped";
  pid: number | null;
  desiredHash: string | null;
  appliedHash: string | null;
  /** Names HAProxy has a certificate for (the others' handshakes are refused). */
  certificates: number;
  restarts: number;
  lastError: { code: string; message: string; at: number } | null;
}

export interface HaproxySupervisorOptions {
  /** HAProxy's own directory (its config names its files there). */
  dir: string;
  /** Caddy's storage, where the certificates are read. */
  certificateStorage: string;
  haproxyPath?: string;
  pollIntervalMs?: number;
  /** How often the certificates are compared with Caddy's. */
  certificateCheckMs?: number;
  startTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  clock?: Clock;
  log?: { info(message: string): void; warn(message: string): void };
}

export class HaproxySupervisor {
  readonly dir: string;
  private readonly configFile: string;
  private readonly logFile: string;
  private readonly process: ManagedProcess;
  private readonly clock: Clock;
  private readonly log: NonNullable<HaproxySupervisorOptions["log"]>;
  private readonly mutex = new Mutex();

  private desired: CompiledIngress | undefined;
  /** The files and certificates HAProxy runs (or was started with). */
  private applied:
    { hash: string; files: HaproxyFiles; certificates: Map<string, string> } | undefined;
  /** A desired config HAProxy refused is not tried again until it changes. */
  private refusedHash: string | undefined;
  private lastError: HaproxyStatus["lastError"] = null;
  private readonly watch: Periodic;
  private watching = false;

  constructor(private readonly options: HaproxySupervisorOptions) {
    this.dir = options.dir;
    this.configFile = join(this.dir, HAPROXY_CONFIG_FILE);
    this.logFile = join(this.dir, "haproxy.log");
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? { info: () => undefined, warn: () => undefined };
    this.watch = new Periodic(options.certificateCheckMs ?? 10_000, this.mutex, () =>
      this.checkCertificates(),
    );
    const haproxyPath = options.haproxyPath ?? "haproxy";
    this.process = new ManagedProcess({
      name: "haproxy",
      unit: "haproxy",
      pidFile: join(this.dir, "haproxy.pid"),
      programWritesPidFile: true,
      log: { path: this.logFile, mode: 0o600 },
      launch: async () => {
        // The files on disk are the last accepted ones: a restart runs them.
        await stat(this.configFile).catch(() => {
          throw new TownError("unavailable", "haproxy: no config has been written yet");
        });
        return {
          argv: [
            haproxyPath,
            "-W",
            "-S",
            `${join(this.dir, "master.sock")},mode,600`,
            "-f",
            this.configFile,
            "-p",
            join(this.dir, "haproxy.pid"),
          ],
          cwd: this.dir,
          env: { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
        };
      },
      isOurs: (argv) =>
        argv.some((part) => part.endsWith("haproxy")) && argv.includes(this.configFile),
      ready: () => this.workerAnswers(),
      readyPollMs: 100,
      startTimeoutMs: options.startTimeoutMs ?? 15_000,
      pollMs: options.pollIntervalMs ?? 2_000,
      restart: {
        initialDelayMs: options.backoffInitialMs ?? 500,
        maxDelayMs: options.backoffMaxMs ?? 30_000,
        stableAfterMs: STABLE_AFTER_MS,
        failedAfter: 3,
      },
      describe: (failure) => describe(failure, haproxyPath),
      onStarted: (pid, origin) => {
        this.log.info(
          `ingress: ${origin === "started" ? "started" : "adopted"} HAProxy (pid ${pid})`,
        );
      },
      onFailure: (failure, message) => {
        if (failure.kind !== "died") this.recordError(new TownError("unavailable", message));
        else this.log.warn(`ingress: HAProxy is down; restarting`);
      },
      clock: this.clock,
    });
  }

  /** Adopts a running HAProxy, or starts one when a config was written before; keeps watching. */
  async start(): Promise<HaproxyStatus> {
    if (!this.watching) {
      this.watching = true;
      await mkdir(join(this.dir, CERTS_DIR), { recursive: true, mode: 0o700 });
      await this.mutex.run(async () => {
        if (await this.process.adopt()) await this.readApplied();
        else if (await exists(this.configFile)) {
          await this.readApplied();
          await this.process.start();
        }
      });
      this.watch.start();
    }
    return this.status();
  }

  /**
   * Writes the desired files with the certificates Caddy has (waiting a
   * little for the local names' first ones) and reloads HAProxy, or starts
   * it. Idempotent. A refusal throws HAProxy's message; the old config keeps serving.
   */
  apply(compiled: CompiledIngress): Promise<"unchanged" | "loaded"> {
    return this.mutex.run(async () => {
      if (this.desired?.hash !== compiled.hash) this.refusedHash = undefined;
      this.desired = compiled;
      const certificates = await this.waitForCertificates(compiled);
      return this.converge(compiled, certificates);
    });
  }

  status(): HaproxyStatus {
    const status = this.process.status();
    return {
      state: shownState(this.watching, status),
      pid: status.pid,
      desiredHash: this.desired?.hash ?? null,
      appliedHash: this.applied?.hash ?? null,
      certificates: this.applied?.certificates.size ?? 0,
      restarts: status.restarts,
      lastError: this.lastError,
    };
  }

  /** Stops watching; HAProxy keeps serving (what the daemon does when it exits). */
  close(): void {
    this.watching = false;
    this.watch.stop();
    this.process.detach();
  }

  /** Tests only: stops watching and stops HAProxy, waiting until it is gone. */
  async stop(): Promise<void> {
    this.close();
    await this.mutex.idle();
    await this.process.stop();
  }

  /** A renewed or late certificate in Caddy's storage reloads HAProxy with it. */
  private async checkCertificates(): Promise<void> {
    const desired = this.desired;
    if (desired === undefined || desired.hash === this.refusedHash) return;
    const certificates = await readCertificates(
      this.options.certificateStorage,
      hostsOf(desired),
      this.clock(),
    );
    await this.converge(desired, certificates).catch(() => undefined);
  }

  private async converge(
    compiled: CompiledIngress,
    found: Map<string, HostCertificate>,
  ): Promise<"unchanged" | "loaded"> {
    const certificates = new Map([...found].map(([host, certificate]) => [host, certificate.pem]));
    const state = this.process.status().state;
    const running = state === "running";
    if (
      running &&
      this.applied &&
      sameEntries(
        new Map(Object.entries(this.applied.files)),
        new Map(Object.entries(compiled.haproxy)),
      ) &&
      sameEntries(this.applied.certificates, certificates)
    ) {
      // HAProxy runs it: an earlier refusal is history.
      this.applied.hash = compiled.hash;
      this.refusedHash = undefined;
      this.lastError = null;
      return "unchanged";
    }
    const previous = this.applied;
    await this.writeFiles(compiled.haproxy, certificates);
    try {
      if (running) await this.reload();
      else if (state === "stopped") await this.startWithFiles();
      // Otherwise a (re)start is due: it runs the files just written.
    } catch (error) {
      const failure = error instanceof TownError ? error : new TownError("io", String(error));
      if (previous) await this.writeFiles(previous.files, previous.certificates);
      if (failure.code !== "unavailable") this.refusedHash = compiled.hash;
      this.recordError(failure);
      throw failure;
    }
    this.applied = { hash: compiled.hash, files: compiled.haproxy, certificates };
    this.refusedHash = undefined;
    this.lastError = null;
    this.log.info(
      `ingress: HAProxy runs config ${compiled.hash.slice(0, 12)} with ${certificates.size} certificates`,
    );
    return "loaded";
  }

  /** The local names' certificates, waited for (Caddy issues them right after its load). */
  private async waitForCertificates(
    compiled: CompiledIngress,
  ): Promise<Map<string, HostCertificate>> {
    const hosts = hostsOf(compiled);
    const deadline = Date.now() + CERTIFICATE_WAIT_MS;
    for (;;) {
      const found = await readCertificates(this.options.certificateStorage, hosts, this.clock());
      if (compiled.localHosts.every((host) => found.has(host)) || Date.now() >= deadline)
        return found;
      await sleep(100);
    }
  }

  private async startWithFiles(): Promise<void> {
    const status = await this.process.start();
    if (status.state !== "running")
      throw new TownError("unavailable", status.lastError?.message ?? "haproxy: it did not start");
  }

  /**
   * SIGUSR2 to the master, then its verdict from the log: `Loading success.`
   * or `Loading failure!` after the alerts that say why.
   */
  private async reload(): Promise<void> {
    const offset = (await stat(this.logFile).catch(() => ({ size: 0 }))).size;
    this.process.signal("SIGUSR2");
    const deadline = Date.now() + RELOAD_TIMEOUT_MS;
    while (Date.now() < deadline) {
      await sleep(50);
      const written = await readFrom(this.logFile, offset);
      if (/Loading success\./.test(written)) return;
      if (/Loading failure!/.test(written)) {
        const alerts = written
          .split("\n")
          .filter((line) => line.includes("[ALERT]"))
          .map((line) => line.replace(/^\[ALERT\]\s+\(\d+\)\s+:\s+/, ""));
        throw new TownError(
          "invalid_argument",
          `haproxy: reload refused: ${alerts.join(" | ") || "see haproxy.log"}`,
        );
      }
    }
    throw new TownError("unavailable", `haproxy: no reload verdict within ${RELOAD_TIMEOUT_MS} ms`);
  }

  /** The config, its lists and the certificates: each file made anew and renamed into place. */
  private async writeFiles(files: HaproxyFiles, certificates: Map<string, string>): Promise<void> {
    const certsDir = join(this.dir, CERTS_DIR);
    await mkdir(certsDir, { recursive: true, mode: 0o700 });
    const wanted = new Set([...certificates.keys()].map((host) => `${host}.pem`));
    for (const [host, pem] of certificates)
      await writeFileAnew(join(certsDir, `${host}.pem`), pem, 0o600);
    for (const name of await readdir(certsDir))
      if (!wanted.has(name)) await rm(join(certsDir, name), { force: true });
    const list = [...certificates.keys()]
      .sort()
      .map((host) => `${join(certsDir, `${host}.pem`)}\n`)
      .join("");
    await writeFileAnew(join(this.dir, CRT_LIST_FILE), list, 0o600);
    for (const [name, content] of Object.entries(files))
      await writeFileAnew(join(this.dir, name), content, 0o600);
  }

  /** After adoption or a daemon restart: what runs is what the files on disk say. */
  private async readApplied(): Promise<void> {
    if (this.applied) return;
    const text = await readFile(this.configFile, "utf8").catch(() => undefined);
    if (text === undefined) return;
    const certsDir = join(this.dir, CERTS_DIR);
    const certificates = new Map<string, string>();
    for (const name of await readdir(certsDir).catch(() => [] as string[]))
      if (name.endsWith(".pem"))
        certificates.set(name.slice(0, -4), await readFile(join(certsDir, name), "utf8"));
    const files: Record<string, string> = {};
    for (const name of await readdir(this.dir))
      if (name === HAPROXY_CONFIG_FILE || name.endsWith(".map") || name.endsWith(".lst"))
        files[name] = await readFile(join(this.dir, name), "utf8");
    // The hash is not on disk: the next apply compares the files and reloads only when they differ.
    this.applied = { hash: "", files, certificates };
  }

  private async workerAnswers(): Promise<boolean> {
    const answer = await askSocket(join(this.dir, ADMIN_SOCKET_FILE), "show info").catch(() => "");
    return /^Name: HAProxy$/m.test(answer);
  }

  private recordError(error: TownError): void {
    this.lastError = { code: error.code, message: error.message, at: this.clock() };
    this.log.warn(`ingress: ${error.message}`);
  }
}

function hostsOf(compiled: CompiledIngress): string[] {
  return [...compiled.localHosts, ...compiled.publicHosts];
}

function sameEntries(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([key, value]) => b.get(key) === value);
}

function describe(failure: ProcessFailure, program: string): string {
  const tail = (log: string[]): string => log.slice(-3).join(" | ") || "(no log)";
  switch (failure.kind) {
    case "launch":
      return `haproxy: ${failure.error.message}`;
    case "exited-early": {
      const { signal, code } = failure.exit;
      return `haproxy: ${program} exited with ${signal ?? `code ${String(code)}`} before answering: ${tail(failure.log)}`;
    }
    case "timeout":
      return `haproxy: no answer within ${failure.ms} ms: ${tail(failure.log)}`;
    case "died":
      return `haproxy: HAProxy is down: ${tail(failure.log)}`;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** What the log gained after `offset` (bounded: a reload writes a few lines). */
async function readFrom(path: string, offset: number): Promise<string> {
  const file = await openNoFollow(path, constants.O_RDONLY).catch(() => undefined);
  if (file === undefined) return "";
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await file.read(buffer, 0, buffer.length, offset);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await file.close();
  }
}

/** One command on HAProxy's CLI socket; its whole answer (it closes after one command). */
function askSocket(path: string, command: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let answer = "";
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error("no answer")));
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("utf8");
      if (answer.length > 1024 * 1024) socket.destroy(new Error("answer too long"));
    });
    socket.once("error", reject);
    socket.once("close", () => {
      resolve(answer);
    });
    socket.write(`${command}\n`);
  });
}
