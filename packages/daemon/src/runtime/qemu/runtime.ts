/**
 * QEMU as a WorkloadRuntime for workloads of kind `vm`: each VM is a
 * `qemu-system-x86_64` process the daemon supervises (vm.ts) over a state
 * directory of its own (state.ts), made from `qemuArgs(workload)`.
 *
 * - A VM keeps running while the daemon is down: the next daemon adopts it
 *   when it first looks at it (any call naming it, `list`, or `resume`).
 * - `ensure` makes the VM's own disk (a qcow2 overlay over the base image)
 *   when it is absent; `remove` deletes the state directory and never the
 *   disk, which lives in the app's volume.
 * - Logs are the serial console (console.ts); health is QEMU alive, QMP
 *   `running` and the first forwarded port answering (health.ts).
 * - A VM has no exec and no filesystem to copy from: both are refused
 *   (`invalid_argument`).
 */
import { EventEmitter } from "node:events";
import { mkdir, rm } from "node:fs/promises";
import { TownError } from "@townos/format";
import { workloadFingerprint } from "../fingerprint.js";
import { systemClock, type Clock } from "../../clock.js";
import { KeyedLock } from "../../system/mutex.js";
import type { RestartPolicy } from "../../system/supervisor-state.js";
import {
  LABEL_SPEC_HASH,
  type EnsureOutcome,
  type EventOptions,
  type ExecResult,
  type HealthState,
  type LogLine,
  type LogOptions,
  type Workload,
  type WorkloadEvent,
  type WorkloadInfo,
  type WorkloadRuntime,
  type WorkloadStats,
  type WorkloadSummary,
} from "../workload.js";
import { acceleratorProbe } from "./accel.js";
import { diskExists, readDisk } from "./disk.js";
import { nextHealth, probeGuestPort, vmHealthcheck, type ProbeOutcome } from "./health.js";
import { createOverlay } from "./qemu-img.js";
import { qemuArgs, type Accelerator } from "./qemu-args.js";
import {
  checkStateDir,
  newVmId,
  readRecord,
  vmDirs,
  vmPaths,
  writeRecord,
  type VmRecord,
} from "./state.js";
import { blockBytes, procStats } from "./stats.js";
import { Vm, type QemuRuntimeLog, type VmContext, type VmImages } from "./vm.js";

export type { QemuRuntimeLog, VmImages } from "./vm.js";

export interface QemuRuntimeOptions {
  /** The runtime's own directory (e.g. `<dataDir>/vms`); short enough for unix sockets below it. */
  stateDir: string;
  /** The VM image store: the base image file of an image name. */
  images: VmImages;
  /** Default: probed once (accel.ts), `TOWN_VM_ACCEL` first. */
  accelerator?: () => Promise<Accelerator>;
  /** Default `qemu-system-x86_64` on PATH. */
  qemuBinary?: string;
  log: QemuRuntimeLog;
  clock?: Clock;
  /** The supervisor's restart backoff (tests make it short). */
  restart?: Partial<RestartPolicy>;
  /** How often an adopted QEMU is checked for life; default 1 s. */
  pollMs?: number;
}

const DEFAULT_STOP_SECONDS = 10;
const MAX_EVENT_HISTORY = 1000;

export class QemuRuntime implements WorkloadRuntime {
  private readonly context: VmContext;
  private readonly vms = new Map<string, Vm>();
  private readonly locks = new KeyedLock();
  private readonly events$ = new EventEmitter<{ event: [WorkloadEvent] }>();
  private readonly history: WorkloadEvent[] = [];
  /** Health by VM id, as this daemon probed it. */
  private readonly health = new Map<string, HealthState>();
  /** Set by `detach`: the daemon is going, a late call adopts nothing. */
  private detached = false;

  constructor(private readonly options: QemuRuntimeOptions) {
    checkStateDir(options.stateDir);
    this.events$.setMaxListeners(0);
    this.context = {
      stateDir: options.stateDir,
      qemuBinary: options.qemuBinary ?? "qemu-system-x86_64",
      images: options.images,
      accelerator: options.accelerator ?? acceleratorProbe(),
      log: options.log,
      clock: options.clock ?? systemClock,
      restart: options.restart,
      pollMs: options.pollMs ?? 1_000,
      emit: (action, record, exitCode) => {
        this.emit(action, record, exitCode);
      },
    };
  }

  fingerprint(workload: Workload): string {
    return workloadFingerprint(workload);
  }

  async ensure(workload: Workload): Promise<EnsureOutcome> {
    this.validate(workload);
    const fingerprint = this.fingerprint(workload);
    return this.locks.run([workload.name], async () => {
      const vm = await this.vm(workload.name);
      const existing = await vm.record();
      if (existing?.fingerprint === fingerprint) return "unchanged";
      const disk = workload.machine?.disk ?? "";
      const what = `vm ${workload.name}: its disk`;
      if (!(await diskExists(disk, what))) {
        const base = this.options.images.path(workload.image);
        await readDisk(base, `vm ${workload.name}: the base image ${workload.image}`);
        await createOverlay(base, disk);
      }
      if (existing) {
        await vm.stop(DEFAULT_STOP_SECONDS);
        // A new workload has a log of its own, as a recreated container has.
        await rm(vm.paths.dir, { recursive: true, force: true });
        this.emit("remove", existing);
      }
      await mkdir(vm.paths.dir, { recursive: true, mode: 0o700 });
      const record: VmRecord = {
        id: newVmId(),
        name: workload.name,
        created: this.context.clock(),
        fingerprint,
        workload: { ...workload, labels: { ...workload.labels, [LABEL_SPEC_HASH]: fingerprint } },
        wanted: "stopped",
        accelerator: null,
        startedAt: null,
        finishedAt: null,
        exitCode: 0,
        restartCount: 0,
        error: "",
      };
      await writeRecord(vm.paths, record);
      this.vms.set(workload.name, new Vm(this.context, workload.name, workload.restart));
      this.emit("create", record);
      return existing ? "replaced" : "created";
    });
  }

  async start(name: string): Promise<boolean> {
    return this.locks.run([name], async () => {
      const { vm } = await this.need(name, "start");
      return vm.start();
    });
  }

  async stop(name: string, options: { timeoutSeconds?: number } = {}): Promise<boolean> {
    return this.locks.run([name], async () => {
      const found = await this.find(name);
      if (found === undefined) return false;
      return found.vm.stop(options.timeoutSeconds ?? DEFAULT_STOP_SECONDS);
    });
  }

  async remove(name: string, options: { timeoutSeconds?: number } = {}): Promise<boolean> {
    return this.locks.run([name], async () => {
      const found = await this.find(name);
      if (found === undefined) return false;
      const { vm, record } = found;
      await vm.stop(options.timeoutSeconds ?? DEFAULT_STOP_SECONDS);
      // The state directory only: the disk lives in the app's volume.
      await rm(vm.paths.dir, { recursive: true, force: true });
      this.vms.delete(record.name);
      this.health.delete(record.id);
      this.emit("remove", record);
      return true;
    });
  }

  async list(labels: Readonly<Record<string, string>> = {}): Promise<WorkloadSummary[]> {
    const summaries: WorkloadSummary[] = [];
    for (const dir of await vmDirs(this.options.stateDir)) {
      const record = await readRecord(`${dir}/vm.json`).catch(() => undefined);
      if (record === undefined || !hasLabels(record.workload.labels, labels)) continue;
      const vm = await this.vm(record.name);
      const pid = await vm.pid();
      summaries.push({
        id: record.id,
        name: record.name,
        image: record.workload.image,
        imageId: record.workload.image,
        state: stateOf(record, pid),
        created: new Date(record.created),
        exitCode: record.exitCode,
        exitedAt: record.finishedAt === null ? null : new Date(record.finishedAt),
        labels: { ...record.workload.labels },
      });
    }
    return summaries;
  }

  async inspect(name: string): Promise<WorkloadInfo | undefined> {
    const found = await this.find(name);
    if (found === undefined) return undefined;
    const { vm, record } = found;
    const pid = await vm.pid();
    const machine = record.workload.machine;
    const disk = await readDisk(machine?.disk ?? "", `vm ${record.name}: its disk`).catch(
      () => undefined,
    );
    const status = stateOf(record, pid);
    return {
      id: record.id,
      name: record.name,
      image: record.workload.image,
      imageId: record.workload.image,
      created: new Date(record.created),
      labels: { ...record.workload.labels },
      state: {
        status,
        running: pid !== undefined,
        exitCode: record.exitCode,
        pid: pid ?? 0,
        startedAt: record.startedAt === null ? null : new Date(record.startedAt),
        finishedAt: record.finishedAt === null ? null : new Date(record.finishedAt),
        oomKilled: false,
        error: record.error,
      },
      restartCount: record.restartCount,
      restartPolicy: record.workload.restart,
      healthcheck: vmHealthcheck(record.workload.ports),
      health: this.health.get(record.id) ?? { status: "starting", failingStreak: 0, log: [] },
      // User-mode networking: the guest is reached through its forwarded ports only.
      addresses: {},
      machine: {
        accelerator: record.accelerator ?? (await this.context.accelerator()),
        // What QEMU was given: whole MiB.
        memoryBytes: Math.ceil((machine?.memoryBytes ?? 0) / 2 ** 20) * 2 ** 20,
        cpus: machine?.cpus ?? 0,
        diskVirtualBytes: disk?.header.virtualBytes ?? 0,
        diskAllocatedBytes: disk?.allocatedBytes ?? 0,
        qmpStatus: pid === undefined ? null : await vm.qmpStatus(),
      },
    };
  }

  async runHealthcheck(name: string): Promise<HealthState> {
    const { vm, record } = await this.need(name, "healthcheck of");
    const pid = await vm.pid();
    if (pid === undefined) throw new TownError("conflict", `vm ${record.name} is not running`);
    const start = this.context.clock();
    const status = await vm.qmpStatus();
    let outcome: ProbeOutcome;
    const port = record.workload.ports[0];
    if (status !== "running") {
      outcome = { ok: false, output: `QMP status: ${status ?? "no answer"}` };
    } else if (port === undefined) {
      outcome = { ok: true, output: "QMP status: running" };
    } else {
      const usernet = async (): Promise<string> => {
        const answer = await (
          await vm.qmpClient()
        ).execute("human-monitor-command", {
          "command-line": "info usernet",
        });
        return typeof answer === "string" ? answer : "";
      };
      outcome = await probeGuestPort(port, usernet, vmHealthcheck([]).timeoutMs - 1_000);
    }
    const health = nextHealth(this.health.get(record.id), outcome, {
      start,
      end: this.context.clock(),
      startedAt: record.startedAt ?? start,
    });
    this.health.set(record.id, health);
    return health;
  }

  async logs(name: string, options: LogOptions = {}): Promise<AsyncGenerator<LogLine>> {
    const { vm } = await this.need(name, "logs of");
    // A follow ends once the VM stops.
    return vm.console.read(options, async () => (await vm.pid()) !== undefined);
  }

  events(options: EventOptions = {}): Promise<AsyncGenerator<WorkloadEvent>> {
    const queue: WorkloadEvent[] = [];
    let wake: (() => void) | undefined;
    const matches = (event: WorkloadEvent): boolean =>
      hasLabels(event.attributes, options.labels ?? {}) &&
      (options.actions === undefined ||
        options.actions.length === 0 ||
        options.actions.includes(event.action));
    const since = options.since?.getTime();
    if (since !== undefined)
      queue.push(...this.history.filter((e) => e.time.getTime() >= since && matches(e)));
    const listener = (event: WorkloadEvent): void => {
      if (!matches(event)) return;
      queue.push(event);
      wake?.();
    };
    this.events$.on("event", listener);
    const emitter = this.events$;
    const { signal } = options;
    const until = options.until?.getTime();
    const clock = this.context.clock;
    const stream = (async function* () {
      try {
        while (signal?.aborted !== true) {
          const event = queue.shift();
          if (event !== undefined) {
            if (until !== undefined && event.time.getTime() > until) return;
            yield event;
            continue;
          }
          if (until !== undefined && clock() > until) return;
          await new Promise<void>((resolve) => {
            const done = (): void => {
              clearTimeout(timer);
              signal?.removeEventListener("abort", done);
              wake = undefined;
              resolve();
            };
            wake = done;
            const timer = setTimeout(
              done,
              until === undefined ? 60_000 : Math.max(0, until - clock()),
            );
            signal?.addEventListener("abort", done);
          });
        }
      } finally {
        emitter.off("event", listener);
      }
    })();
    return Promise.resolve(stream);
  }

  async exec(name: string, _command: readonly string[]): Promise<ExecResult> {
    const { record } = await this.need(name, "exec in");
    throw new TownError(
      "invalid_argument",
      `vm ${record.name} is a virtual machine: it has no exec (reach it through its ports or console)`,
    );
  }

  async stats(name: string): Promise<WorkloadStats> {
    const { vm, record } = await this.need(name, "stats of");
    const pid = await vm.pid();
    if (pid === undefined) throw new TownError("conflict", `vm ${record.name} is not running`);
    const answer = await (await vm.qmpClient()).execute("query-blockstats").catch(() => []);
    return procStats(pid, blockBytes(answer));
  }

  async copyFrom(name: string, _directory: string): Promise<NodeJS.ReadableStream> {
    const { record } = await this.need(name, "copy out of");
    throw new TownError(
      "invalid_argument",
      `vm ${record.name} is a virtual machine: its volumes are not seeded from an image`,
    );
  }

  /** Adopts every VM whose QEMU runs (a previous daemon's): they are supervised from now on. */
  async resume(): Promise<void> {
    await this.list();
  }

  /** Stops watching every VM but leaves them running (the daemon exits); consoles are drained first. */
  async detach(): Promise<void> {
    this.detached = true;
    await Promise.all([...this.vms.values()].map((vm) => vm.detach()));
    this.vms.clear();
  }

  /** Throws invalid_argument for a workload QEMU cannot run (qemuArgs checks every value). */
  private validate(workload: Workload): void {
    const paths = vmPaths(this.options.stateDir, workload.name);
    const disk = workload.machine?.disk ?? "";
    if (disk.startsWith(`${this.options.stateDir}/`))
      throw new TownError(
        "invalid_argument",
        `vm ${workload.name}: its disk may not be in the runtime's own directory`,
      );
    qemuArgs({
      workload,
      accelerator: "tcg",
      baseImage: this.options.images.path(workload.image),
      paths,
    });
  }

  /** The VM object of a name (made and adopted on first use). */
  private async vm(name: string): Promise<Vm> {
    let vm = this.vms.get(name);
    if (vm === undefined) {
      const record = await readRecord(vmPaths(this.options.stateDir, name).record);
      vm = new Vm(this.context, name, record?.workload.restart ?? "no");
      this.vms.set(name, vm);
      if (record?.wanted === "running" && !this.detached) await vm.adopt();
    }
    return vm;
  }

  /** By name or id; undefined when absent. */
  private async find(nameOrId: string): Promise<{ vm: Vm; record: VmRecord } | undefined> {
    let record = await readRecord(vmPaths(this.options.stateDir, nameOrId).record);
    if (record?.name !== nameOrId) record = undefined;
    if (record === undefined && /^[0-9a-f]{32}$/.test(nameOrId)) {
      for (const dir of await vmDirs(this.options.stateDir)) {
        const candidate = await readRecord(`${dir}/vm.json`).catch(() => undefined);
        if (candidate?.id === nameOrId) record = candidate;
      }
    }
    if (record === undefined) return undefined;
    return { vm: await this.vm(record.name), record };
  }

  private async need(nameOrId: string, what: string): Promise<{ vm: Vm; record: VmRecord }> {
    const found = await this.find(nameOrId);
    if (found === undefined)
      throw new TownError("not_found", `qemu: ${what} vm ${nameOrId}: no such VM`);
    return found;
  }

  private emit(action: string, record: VmRecord, exitCode?: number): void {
    const event: WorkloadEvent = {
      action,
      id: record.id,
      name: record.name,
      time: new Date(this.context.clock()),
      attributes: { ...record.workload.labels, name: record.name, image: record.workload.image },
      exitCode: exitCode ?? null,
    };
    this.history.push(event);
    if (this.history.length > MAX_EVENT_HISTORY) this.history.shift();
    this.events$.emit("event", event);
  }
}

/** `running`, `created` (never started) or `stopped`. */
function stateOf(record: VmRecord, pid: number | undefined): string {
  if (pid !== undefined) return "running";
  return record.startedAt === null ? "created" : "stopped";
}

function hasLabels(
  present: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(wanted).every(([key, value]) => present[key] === value);
}
