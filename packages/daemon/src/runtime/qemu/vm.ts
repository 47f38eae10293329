/**
 * One VM as the daemon runs it: its QEMU process (a ManagedProcess: started
 * detached so the VM outlives the daemon, adopted by the next daemon through
 * the pid file and its command line, restarted with backoff when it dies
 * unasked), the one QMP connection everything shares, and the console
 * recorder. Its record (state.ts) is what outlives the daemon.
 *
 * The runtime (runtime.ts) serializes start, stop and remove per VM; the
 * supervisor's own callbacks (a death, a restart) update the record under
 * this VM's mutex.
 */
import { constants as osConstants } from "node:os";
import { TownError } from "@townos/format";
import type { Clock } from "../../clock.js";
import { printable } from "../../storage/names.js";
import { Mutex } from "../../system/mutex.js";
import { commandLine, readPidFile } from "../../system/proc.js";
import type { ProcessExit, RestartPolicy } from "../../system/supervisor-state.js";
import { describeExit, ManagedProcess, type ProcessFailure } from "../../system/supervisor.js";
import type { Workload } from "../workload.js";
import { ConsoleLog, ConsoleRecorder } from "./console.js";
import { diskBase, readDisk } from "./disk.js";
import {
  CONSOLE_DEVICE,
  environmentFile,
  escape,
  qemuArgs,
  type Accelerator,
} from "./qemu-args.js";
import { writeFileAtomic } from "../../system/small-files.js";
import { QmpClient } from "./qmp.js";
import { readRecord, vmPaths, writeRecord, type VmPaths, type VmRecord } from "./state.js";

/** The VM image store as far as this runtime needs it. */
export interface VmImages {
  /** The base image's file (a qcow2) for an image name; it need not exist. */
  path(name: string): string;
}

export interface QemuRuntimeLog {
  info(message: string): void;
  warn(message: string): void;
}

/** What every VM shares with the runtime. */
export interface VmContext {
  stateDir: string;
  qemuBinary: string;
  images: VmImages;
  accelerator: () => Promise<Accelerator>;
  log: QemuRuntimeLog;
  clock: Clock;
  restart: Partial<RestartPolicy> | undefined;
  /** How often an adopted QEMU is checked for life. */
  pollMs: number;
  emit: (action: string, record: VmRecord, exitCode?: number) => void;
}

interface StartFailure {
  failure: ProcessFailure;
  message: string;
}

const QMP_TIMEOUT_MS = 2_000;
const KILL_TIMEOUT_MS = 3_000;
const START_TIMEOUT_MS = 20_000;

export class Vm {
  readonly paths: VmPaths;
  readonly console: ConsoleLog;
  private readonly process: ManagedProcess;
  private readonly mutex = new Mutex();
  private qmp: Promise<QmpClient> | undefined;
  private recorder: ConsoleRecorder | undefined;
  /** True while `start` runs: a start then is ours, not a restart of the supervisor's. */
  private starting = false;
  private lastFailure: StartFailure | undefined;

  /**
   * @param restartPolicy the record's, until a launch reads a newer one: a
   * death is judged by it at once
   */
  constructor(
    private readonly context: VmContext,
    readonly name: string,
    private restartPolicy: Workload["restart"],
  ) {
    this.paths = vmPaths(context.stateDir, name);
    this.console = new ConsoleLog(this.paths.dir);
    this.process = new ManagedProcess({
      name: `vm ${name}`,
      unit: `vm-${name}`,
      pidFile: this.paths.pidFile,
      log: { path: this.paths.qemuLog, truncate: true, mode: 0o600 },
      launch: () => this.launch(),
      // This VM's QEMU names this VM's QMP socket: a recycled pid never passes.
      isOurs: (argv) => this.isOurs(argv),
      ready: () => this.ready(),
      readyPollMs: 100,
      startTimeoutMs: START_TIMEOUT_MS,
      pollMs: context.pollMs,
      ...(context.restart === undefined ? {} : { restart: context.restart }),
      describe: (failure) => `vm ${name}: ${printable(describeFailure(failure), 500)}`,
      onStarted: (pid, origin) => {
        this.started(origin);
      },
      onFailure: (failure, message) => {
        void this.failed(failure, message);
      },
      clock: context.clock,
    });
  }

  record(): Promise<VmRecord | undefined> {
    return readRecord(this.paths.record);
  }

  /** Read, changed and written under this VM's mutex; nothing when the record is gone. */
  update(change: (record: VmRecord) => void): Promise<VmRecord | undefined> {
    return this.mutex.run(async () => {
      const record = await this.record();
      if (record === undefined) return undefined;
      change(record);
      await writeRecord(this.paths, record).catch(() => undefined);
      return record;
    });
  }

  /** QEMU's pid when this VM's QEMU runs (its pid file, checked against its command line). */
  async pid(): Promise<number | undefined> {
    const pid = await readPidFile(this.paths.pidFile);
    if (pid === undefined) return undefined;
    const argv = await commandLine(pid);
    return argv !== undefined && this.isOurs(argv) ? pid : undefined;
  }

  /** This VM's QEMU names this VM's QMP socket: a recycled pid never passes. */
  private isOurs(argv: readonly string[]): boolean {
    const qmp = `unix:${escape(this.paths.qmpSocket)},server=on,wait=off`;
    return /qemu-system-/.test(argv[0] ?? "") && argv.includes(qmp);
  }

  /** Watches a QEMU a previous daemon started; nothing when none runs or it is watched. */
  async adopt(): Promise<void> {
    await this.process.adopt();
  }

  /** Starts (or adopts) QEMU. @returns false when it ran already @throws the start's failure */
  async start(): Promise<boolean> {
    if ((await this.pid()) !== undefined) {
      // Watched (again): adopted when another daemon started it, or after `detach`.
      await this.process.start();
      return false;
    }
    this.starting = true;
    this.lastFailure = undefined;
    let status;
    try {
      await this.update((record) => {
        record.wanted = "running";
      });
      status = await this.process.start();
    } finally {
      this.starting = false;
    }
    if (status.state !== "running") {
      // Set by the failure callback meanwhile (TypeScript cannot see that).
      const failed = this.lastFailure as StartFailure | undefined;
      await this.process.stop(KILL_TIMEOUT_MS);
      const message = failed?.message ?? `vm ${this.name} did not start`;
      await this.update((record) => {
        record.wanted = "stopped";
        record.error = message;
      });
      if (failed?.failure.kind === "launch" && failed.failure.error instanceof TownError)
        throw failed.failure.error;
      throw new TownError("unavailable", message);
    }
    const record = await this.update((r) => {
      r.startedAt = this.context.clock();
      r.finishedAt = null;
      r.exitCode = 0;
      r.error = "";
    });
    if (record) this.context.emit("start", record);
    return true;
  }

  /**
   * ACPI power-down through QMP, `timeoutSeconds` for the guest to go, then
   * QEMU is killed. @returns false when it was not running
   */
  async stop(timeoutSeconds: number): Promise<boolean> {
    const pid = await this.pid();
    // Not watched any more: its exit from here on is asked for.
    this.process.detach();
    await this.update((record) => {
      record.wanted = "stopped";
    });
    if (pid === undefined) {
      await this.process.stop(KILL_TIMEOUT_MS);
      return false;
    }
    // Asked again while QMP does not answer yet (a QEMU that is just starting).
    let asked: true | Error = new Error("no time given");
    const deadline = Date.now() + timeoutSeconds * 1000;
    while (Date.now() < deadline && (await commandLine(pid)) !== undefined) {
      if (asked !== true) {
        asked = await this.qmpClient()
          .then((client) => client.execute("system_powerdown", undefined, QMP_TIMEOUT_MS))
          .then(
            () => true as const,
            (error: unknown) => error as Error,
          );
      }
      // The guest's last words come just before it goes, with QEMU's ring buffer.
      await this.recorder?.drain();
      await sleep(50);
    }
    const powered = (await commandLine(pid)) === undefined;
    if (asked !== true && !powered)
      this.context.log.warn(
        `vm ${this.name}: no power-down through QMP (${asked.message}); killing it`,
      );
    await this.stopRecorder(!powered);
    await this.process.stop(KILL_TIMEOUT_MS);
    this.closeQmp();
    const exitCode = powered ? 0 : 128 + osConstants.signals.SIGKILL;
    const record = await this.update((r) => {
      r.finishedAt = this.context.clock();
      r.exitCode = exitCode;
    });
    if (record) {
      this.context.emit("died", record, exitCode);
      this.context.emit("stop", record);
    }
    return true;
  }

  /** Leaves QEMU running unwatched (the daemon exits): the console is drained first. */
  async detach(): Promise<void> {
    this.process.detach();
    await this.stopRecorder(true);
    this.closeQmp();
  }

  /** The QMP connection, made on first use; `unavailable` when QEMU does not answer. */
  qmpClient(): Promise<QmpClient> {
    this.qmp ??= QmpClient.connect(this.paths.qmpSocket, { timeoutMs: QMP_TIMEOUT_MS }).then(
      (client) => {
        client.once("close", () => {
          if (this.qmp === connected) this.qmp = undefined;
        });
        return client;
      },
    );
    const connected = this.qmp;
    connected.catch(() => {
      if (this.qmp === connected) this.qmp = undefined;
    });
    return connected;
  }

  /** QMP's run state, or null when QEMU does not run or answer. */
  async qmpStatus(): Promise<string | null> {
    if ((await this.pid()) === undefined) return null;
    try {
      const answer = await (
        await this.qmpClient()
      ).execute("query-status", undefined, QMP_TIMEOUT_MS);
      const status = (answer as { status?: unknown } | null)?.status;
      return typeof status === "string" ? status : null;
    } catch {
      return null;
    }
  }

  /** Before every start, the supervisor's own restarts included: the argv, from the record as it is now. */
  private async launch(): Promise<{ argv: [string, ...string[]] }> {
    const record = await this.record();
    if (record === undefined) throw new TownError("not_found", `vm ${this.name} is gone`);
    const { workload } = record;
    const disk = workload.machine?.disk ?? "";
    const accelerator = await this.context.accelerator();
    const { backingFile } = await readDisk(disk, `vm ${this.name}: its disk`);
    const baseImage = diskBase(backingFile, this.context.images, workload.image);
    await readDisk(baseImage, `vm ${this.name}: its base image`);
    const args = qemuArgs({ workload, accelerator, baseImage, paths: this.paths });
    this.restartPolicy = workload.restart;
    await writeFileAtomic(this.paths.environmentFile, environmentFile(workload.env));
    await this.update((r) => {
      r.accelerator = accelerator;
    });
    return { argv: [this.context.qemuBinary, ...args] };
  }

  /**
   * Ready once QMP answers `query-status`, over the shared connection: QEMU
   * serves one QMP client at a time, and an inspect may have connected first.
   */
  private async ready(): Promise<boolean> {
    await (await this.qmpClient()).execute("query-status", undefined, QMP_TIMEOUT_MS);
    return true;
  }

  private started(origin: "started" | "adopted"): void {
    this.recorder ??= new ConsoleRecorder({
      log: this.console,
      read: (maxBytes) => this.readConsole(maxBytes),
      clock: this.context.clock,
    });
    this.recorder.start();
    if (origin === "adopted" || this.starting) return;
    // The supervisor started it again after a death.
    void this.update((record) => {
      record.restartCount += 1;
      record.startedAt = this.context.clock();
      record.finishedAt = null;
      record.error = "";
    }).then((record) => {
      if (record) this.context.emit("start", record);
    });
  }

  private async failed(failure: ProcessFailure, message: string): Promise<void> {
    if (this.starting) {
      this.lastFailure = { failure, message };
      return;
    }
    // Judged before anything is awaited: the supervisor's restart is already scheduled.
    const restarts = failure.kind !== "died" || restartsAfter(this.restartPolicy, failure.exit);
    if (!restarts) this.process.detach();
    this.context.log.warn(message);
    if (failure.kind !== "died") {
      await this.update((record) => {
        record.error = message;
      });
      return;
    }
    await this.stopRecorder(false);
    this.closeQmp();
    const exitCode = exitCodeOf(failure.exit);
    const record = await this.update((r) => {
      r.finishedAt = failure.exit.at;
      r.exitCode = exitCode;
      r.error = message;
      if (!restarts) r.wanted = "stopped";
    });
    if (record === undefined) return;
    this.context.emit("died", record, exitCode);
  }

  private async readConsole(maxBytes: number): Promise<Buffer> {
    const client = await this.qmpClient();
    const data = await client.execute(
      "ringbuf-read",
      { device: CONSOLE_DEVICE, size: maxBytes, format: "base64" },
      QMP_TIMEOUT_MS,
    );
    return typeof data === "string" ? Buffer.from(data, "base64") : Buffer.alloc(0);
  }

  private async stopRecorder(lastDrain: boolean): Promise<void> {
    const recorder = this.recorder;
    this.recorder = undefined;
    await recorder?.stop({ lastDrain });
  }

  private closeQmp(): void {
    const qmp = this.qmp;
    this.qmp = undefined;
    void qmp?.then(
      (client) => {
        client.close();
      },
      () => undefined,
    );
  }
}

/** Whether the workload's restart policy restarts it after this death. */
function restartsAfter(policy: Workload["restart"], exit: ProcessExit): boolean {
  switch (policy) {
    case "no":
      return false;
    case "on-failure":
      // A guest that powered itself off cleanly (QEMU exits 0) stays off.
      return exit.code !== 0;
    case "always":
    case "unless-stopped":
      return true;
  }
}

function exitCodeOf(exit: ProcessExit): number {
  if (exit.code !== null) return exit.code;
  const signal = exit.signal === null ? undefined : osConstants.signals[exit.signal];
  // An adopted QEMU that vanished left no status to read.
  return signal === undefined ? -1 : 128 + signal;
}

function describeFailure(failure: ProcessFailure): string {
  switch (failure.kind) {
    case "launch":
      return `could not be started: ${failure.error.message}`;
    case "exited-early":
      return `QEMU ${describeExit(failure.exit)} before QMP answered: ${failure.log.slice(-3).join(" | ")}`;
    case "timeout":
      return `QMP did not answer within ${failure.ms} ms: ${failure.log.slice(-3).join(" | ")}`;
    case "died":
      return `QEMU ${describeExit(failure.exit)}: ${failure.log.slice(-2).join(" | ")}`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
