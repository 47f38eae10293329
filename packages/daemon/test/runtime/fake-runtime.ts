/**
 * The one in-memory runtime for tests: workloads, networks and images as
 * the WorkloadRuntime contract describes them (runtime/workload-contract
 * checks it against this fake and against Podman). It counts every mutating
 * call (`calls`), keeps a log per workload (times to the millisecond, read
 * back in whole seconds as Podman 4.3 does) whose follow streams wait for new
 * lines, and counts the log streams open so tests can assert none leaks.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { TownError } from "@townos/format";
import { workloadFingerprint } from "../../src/runtime/fingerprint.js";
import {
  LABEL_SPEC_HASH,
  type EnsureOutcome,
  type EventOptions,
  type ExecResult,
  type HealthcheckConfig,
  type HealthState,
  type HostRuntime,
  type LogLine,
  type LogOptions,
  type NetworkInfo,
  type NetworkSpec,
  type PullOptions,
  type Workload,
  type WorkloadEvent,
  type WorkloadInfo,
  type WorkloadStats,
  type WorkloadSummary,
} from "../../src/runtime/workload.js";

interface FakeLine {
  stream: "stdout" | "stderr";
  time: number;
  text: string;
}

/** A workload as the fake keeps it; tests may read and change it. */
export interface FakeWorkload {
  id: string;
  /** `created`, `running`, `exited` (or whatever a test sets). */
  state: string;
  /** The workload as ensured, its fingerprint in `labels[LABEL_SPEC_HASH]`. */
  spec: Workload & { labels: Record<string, string> };
  created: number;
  startedAt: number | null;
  exitCode: number;
  exitedAt: number | null;
  healthcheck: HealthcheckConfig | null;
  health: HealthState | null;
  /** What inspect answers over what the fake derives, when a test scripts it. */
  info: Partial<WorkloadInfo>;
  lines: FakeLine[];
  wake: Set<() => void>;
}

/** A running fake's address on its network: the same for the same name, so tests can expect it. */
export function fakeAddress(name: string): string {
  const [a = 0, b = 0] = createHash("sha256").update(name).digest();
  return `10.89.${a}.${(b % 254) + 1}`;
}

/** The fake answers asynchronously, as the real drivers do. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const EMPTY_TAR = Buffer.alloc(1024);

export class FakeRuntime implements HostRuntime {
  readonly containers = new Map<string, FakeWorkload>();
  readonly networks = new Map<string, NetworkInfo>();
  /** Every mutating call, in order: `create x`, `start x`, `pull image`, `create network n`… */
  readonly calls: string[] = [];
  readonly images = new Set<string>(["localhost/town/busybox:latest"]);
  /** What `copyFrom` answers for workloads of an image (an uncompressed tar); default empty. */
  readonly archives = new Map<string, Buffer>();
  /** `ensure` of this name fails with `io`. */
  failCreate: string | undefined;
  /** Exit code of every exec. */
  execExitCode = 0;
  /** Healthchecks run, by the name or id asked for. */
  readonly probes: string[] = [];
  /** Most healthchecks running at once so far. */
  maxProbing = 0;
  /** What healthchecks answer; default: the workload's recorded health, `conflict` without one. */
  healthAnswer: ((name: string) => Promise<HealthState>) | undefined;
  private probing = 0;
  /** What `stats` of a running workload answers; default: all zero but one process. */
  statsAnswer: ((name: string) => Promise<WorkloadStats>) | undefined;
  /** `stats` calls so far. */
  statsCalls = 0;
  /** `list` calls so far. */
  listings = 0;
  /** Log streams open right now. */
  open = 0;
  /** Every logs() call, for tests that care how the history was read. */
  readonly logCalls: { name: string; options: LogOptions }[] = [];
  private ids = 0;
  private readonly listeners = new Set<(event: WorkloadEvent) => void>();

  constructor(private readonly clock: () => number = Date.now) {}

  fingerprint(workload: Workload): string {
    return workloadFingerprint(workload);
  }

  async ensure(workload: Workload): Promise<EnsureOutcome> {
    await tick();
    const fingerprint = this.fingerprint(workload);
    const existing = this.containers.get(workload.name);
    if (existing?.spec.labels[LABEL_SPEC_HASH] === fingerprint) return "unchanged";
    if (existing) await this.remove(workload.name);
    this.calls.push(`create ${workload.name}`);
    if (this.failCreate === workload.name) throw new TownError("io", "disk on fire");
    this.add({ ...workload, labels: { ...workload.labels, [LABEL_SPEC_HASH]: fingerprint } });
    this.emit(workload.name, "create");
    return existing ? "replaced" : "created";
  }

  /** Puts a workload in place as it is, as if made by hand (no call counted). */
  add(spec: FakeWorkload["spec"], state = "created", id?: string): FakeWorkload {
    this.ids += 1;
    const workload: FakeWorkload = {
      id: id ?? `id${this.ids}`,
      state,
      spec,
      created: this.clock(),
      startedAt: state === "running" ? this.clock() : null,
      exitCode: 0,
      exitedAt: null,
      healthcheck: null,
      health: null,
      info: {},
      lines: [],
      wake: new Set(),
    };
    this.containers.set(spec.name, workload);
    return workload;
  }

  /**
   * By hand, at once (no call counted): (re)creates a running workload with
   * a new id and an empty log, ending the one of that name first.
   */
  run(name: string): FakeWorkload {
    const old = this.containers.get(name);
    if (old) this.halt(name);
    return this.add(
      {
        kind: "container",
        name,
        hostname: name,
        image: "localhost/test:latest",
        env: {},
        labels: {},
        mounts: [],
        ports: [],
        network: null,
        restart: "no",
      },
      "running",
    );
  }

  /** By hand, at once: the workload exits (its follow streams end). */
  halt(name: string): void {
    const workload = this.containers.get(name);
    if (workload?.state === "running") this.end(workload, 0);
  }

  /** By hand, at once: the workload runs again, its log kept. */
  resume(name: string): void {
    const workload = this.containers.get(name);
    if (!workload) throw new Error(`no workload ${name}`);
    workload.state = "running";
    workload.startedAt = this.clock();
  }

  async start(name: string): Promise<boolean> {
    await tick();
    this.calls.push(`start ${name}`);
    const workload = this.need(name, "start");
    if (workload.state === "running") return false;
    workload.state = "running";
    workload.startedAt = this.clock();
    this.emit(name, "start");
    return true;
  }

  async stop(name: string): Promise<boolean> {
    await tick();
    this.calls.push(`stop ${name}`);
    const workload = this.containers.get(name);
    if (workload?.state !== "running") return false;
    this.end(workload, 0);
    return true;
  }

  async remove(name: string): Promise<boolean> {
    await tick();
    this.calls.push(`remove ${name}`);
    const workload = this.containers.get(name);
    if (!workload) return false;
    if (workload.state === "running") this.end(workload, 137);
    this.containers.delete(name);
    this.emit(name, "remove", workload);
    return true;
  }

  async list(labels: Readonly<Record<string, string>> = {}): Promise<WorkloadSummary[]> {
    await tick();
    this.listings += 1;
    return [...this.containers.values()]
      .filter(({ spec }) => hasLabels(spec.labels, labels))
      .map((w) => ({
        id: w.id,
        name: w.spec.name,
        image: w.spec.image,
        imageId: `image-of-${w.spec.image}`,
        state: w.state,
        created: new Date(w.created),
        exitCode: w.exitCode,
        exitedAt: w.exitedAt === null ? null : new Date(w.exitedAt),
        labels: { ...w.spec.labels },
      }));
  }

  async inspect(name: string): Promise<WorkloadInfo | undefined> {
    await tick();
    const w = this.containers.get(name) ?? this.byId(name);
    if (!w) return undefined;
    const running = w.state === "running";
    return {
      id: w.id,
      name: w.spec.name,
      image: w.spec.image,
      imageId: `image-of-${w.spec.image}`,
      created: new Date(w.created),
      labels: { ...w.spec.labels },
      state: {
        status: w.state,
        running,
        exitCode: w.exitCode,
        pid: running ? 1 : 0,
        startedAt: w.startedAt === null ? null : new Date(w.startedAt),
        finishedAt: null,
        oomKilled: false,
        error: "",
      },
      restartCount: 0,
      restartPolicy: w.spec.restart,
      healthcheck: w.healthcheck,
      health: w.health,
      addresses:
        running && w.spec.network ? { [w.spec.network.name]: fakeAddress(w.spec.name) } : {},
      ...w.info,
    };
  }

  async runHealthcheck(name: string): Promise<HealthState> {
    // Counted as called, before answering: a probe is running from then on.
    this.probes.push(name);
    this.probing += 1;
    this.maxProbing = Math.max(this.maxProbing, this.probing);
    try {
      await tick();
      const workload = this.need(name, "healthcheck");
      const health = this.healthAnswer ? await this.healthAnswer(name) : workload.health;
      if (!health) throw new TownError("conflict", `${name} has no defined healthcheck`);
      // Recorded where inspect reads it, as Podman does.
      workload.health = health;
      if (workload.info.health !== undefined) workload.info = { ...workload.info, health };
      return health;
    } finally {
      this.probing -= 1;
    }
  }

  /** Appends a line to a workload's log, waking its follow streams. */
  write(name: string, text: string, stream: "stdout" | "stderr" = "stdout", time?: number): void {
    const workload = this.containers.get(name);
    if (!workload) throw new Error(`no workload ${name}`);
    workload.lines.push({ stream, time: time ?? this.clock(), text });
    wake(workload);
  }

  logs(name: string, options: LogOptions = {}): Promise<AsyncGenerator<LogLine>> {
    this.logCalls.push({ name, options });
    const workload = this.containers.get(name);
    if (!workload) {
      return Promise.reject(
        new TownError("not_found", `fake: logs of container ${name}: no such container`),
      );
    }
    return Promise.resolve(this.stream(workload, options));
  }

  async events(options: EventOptions = {}): Promise<AsyncGenerator<WorkloadEvent>> {
    await tick();
    const queue: WorkloadEvent[] = [];
    let notify: (() => void) | undefined;
    const listener = (event: WorkloadEvent): void => {
      if (!hasLabels(event.attributes, options.labels ?? {})) return;
      if (options.actions?.length && !options.actions.includes(event.action)) return;
      queue.push(event);
      notify?.();
    };
    this.listeners.add(listener);
    const listeners = this.listeners;
    const { signal } = options;
    return (async function* () {
      try {
        while (!signal?.aborted) {
          const event = queue.shift();
          if (event) {
            yield event;
            continue;
          }
          await new Promise<void>((resolve) => {
            notify = resolve;
            signal?.addEventListener("abort", () => {
              resolve();
            });
          });
        }
      } finally {
        listeners.delete(listener);
      }
    })();
  }

  async exec(name: string, command: readonly string[]): Promise<ExecResult> {
    await tick();
    this.calls.push(`exec ${name} ${command.join(" ")}`);
    if (this.need(name, "exec in").state !== "running") {
      throw new TownError("conflict", `fake: exec in container ${name}: it is not running`);
    }
    return { exitCode: this.execExitCode, stdout: "", stderr: "oops", truncated: false };
  }

  async stats(name: string): Promise<WorkloadStats> {
    await tick();
    this.statsCalls += 1;
    if (this.need(name, "stats of").state !== "running") {
      throw new TownError("conflict", `fake: stats of container ${name}: it is not running`);
    }
    if (this.statsAnswer) return this.statsAnswer(name);
    return {
      cpuPercent: 0,
      cpuSeconds: 0,
      memoryBytes: 0,
      memoryLimitBytes: 0,
      netInputBytes: 0,
      netOutputBytes: 0,
      blockInputBytes: 0,
      blockOutputBytes: 0,
      pids: 1,
    };
  }

  async copyFrom(name: string): Promise<NodeJS.ReadableStream> {
    await tick();
    const workload = this.need(name, "copy out of");
    return Readable.from([this.archives.get(workload.spec.image) ?? EMPTY_TAR]);
  }

  async ensureNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    await tick();
    const existing = this.networks.get(spec.name);
    if (existing) return existing;
    this.calls.push(`create network ${spec.name}`);
    const network = { name: spec.name, labels: { ...spec.labels } };
    this.networks.set(spec.name, network);
    return network;
  }

  async inspectNetwork(name: string): Promise<NetworkInfo | undefined> {
    await tick();
    return this.networks.get(name);
  }

  async listNetworks(labels: Readonly<Record<string, string>> = {}): Promise<NetworkInfo[]> {
    await tick();
    return [...this.networks.values()].filter((network) => hasLabels(network.labels, labels));
  }

  async removeNetwork(name: string): Promise<boolean> {
    await tick();
    this.calls.push(`remove network ${name}`);
    if ([...this.containers.values()].some(({ spec }) => spec.network?.name === name)) {
      throw new TownError("conflict", `fake: remove network ${name}: workloads use it`);
    }
    return this.networks.delete(name);
  }

  async imageExists(reference: string): Promise<boolean> {
    await tick();
    return this.images.has(reference);
  }

  async pullImage(reference: string, options: PullOptions = {}): Promise<void> {
    await tick();
    this.calls.push(`pull ${reference}`);
    if (reference.includes("missing")) throw new TownError("not_found", "no such image");
    options.onProgress?.("Copying blob 1");
    this.images.add(reference);
  }

  private need(name: string, what: string): FakeWorkload {
    const workload = this.containers.get(name) ?? this.byId(name);
    if (!workload)
      throw new TownError("not_found", `fake: ${what} container ${name}: no such container`);
    return workload;
  }

  private byId(id: string): FakeWorkload | undefined {
    return [...this.containers.values()].find((w) => w.id === id);
  }

  private end(workload: FakeWorkload, exitCode: number): void {
    workload.state = "exited";
    workload.exitCode = exitCode;
    workload.exitedAt = this.clock();
    wake(workload);
    this.emit(workload.spec.name, "died", workload);
  }

  private emit(name: string, action: string, workload = this.containers.get(name)): void {
    if (!workload) return;
    const event: WorkloadEvent = {
      action,
      id: workload.id,
      name,
      time: new Date(this.clock()),
      attributes: { ...workload.spec.labels, name },
      exitCode: action === "died" ? workload.exitCode : null,
    };
    for (const listener of this.listeners) listener(event);
  }

  private async *stream(w: FakeWorkload, options: LogOptions): AsyncGenerator<LogLine> {
    const { signal } = options;
    const since = options.since?.getTime();
    const until = options.until?.getTime();
    this.open += 1;
    try {
      let next = 0;
      for (;;) {
        while (next < w.lines.length) {
          const line = w.lines[next++];
          if (!line) break;
          if (since !== undefined && line.time < since) continue;
          if (until !== undefined && line.time > until) continue;
          if (signal?.aborted) return;
          yield {
            stream: line.stream,
            time: options.timestamps ? new Date(Math.floor(line.time / 1000) * 1000) : null,
            text: line.text,
          };
        }
        if (!options.follow || w.state !== "running" || signal?.aborted) return;
        await new Promise<void>((resolve) => {
          w.wake.add(resolve);
          signal?.addEventListener("abort", () => {
            resolve();
          });
        });
      }
    } finally {
      this.open -= 1;
    }
  }
}

function hasLabels(
  present: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(wanted).every(([key, value]) => present[key] === value);
}

function wake(workload: FakeWorkload): void {
  for (const resolve of workload.wake) resolve();
  workload.wake.clear();
}
