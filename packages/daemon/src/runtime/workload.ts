/**
 * The neutral workload runtime: what the app controller, health, logs and
 * seeding ask of whatever runs workloads. Podman runs containers
 * (runtime/podman/runtime.ts), QEMU virtual machines (runtime/qemu/), and
 * runtime/router.ts puts them behind one interface by the workload's kind.
 * Nothing here names a runtime's own spec format: each
 * implementation compiles a `Workload` into its own (Podman's SpecGenerator,
 * say) with a pure function.
 *
 * Contract, for every implementation (checked by test/runtime/workload-contract.ts
 * against the in-memory fake and against Podman):
 * - A workload is known by its name, unique within the runtime.
 * - "Absent" is an answer, not an error: `inspect` gives undefined, `list`
 *   leaves it out, and `stop` and `remove` of an absent workload succeed
 *   (false). Calls that need the workload (start, exec, logs, stats,
 *   copyFrom) fail with TownError `not_found` when it is absent.
 * - Every state-changing call is idempotent and says whether it changed
 *   anything: `ensure` of an equal spec, `start` of a running workload and
 *   `stop` of a stopped one change nothing.
 * - A workload's spec is never changed in place: `ensure` of a spec whose
 *   fingerprint differs replaces the workload (its data lives in mounted
 *   volumes, which are not the runtime's).
 * - Failures are TownErrors: `not_found`, `conflict` (the workload is in the
 *   wrong state, e.g. exec in a stopped one), `invalid_argument` (a spec or
 *   name the runtime cannot take), `unavailable` (no runtime, a timeout).
 * - Streams (logs with follow, events) end when the caller aborts their signal.
 */

export type WorkloadKind = "container" | "vm";

/** What names a workload or a network in every runtime (libpod's rule, the strictest). */
export const WORKLOAD_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,252}$/;

/** Label a runtime keeps a workload's fingerprint in (its spec hash); callers may not set it. */
export const LABEL_SPEC_HASH = "town.spec-hash";

/** An rlimit by its short name (`nofile`, `nproc`…). */
export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/** A host directory seen inside the workload. */
export interface Mount {
  /** Normalized absolute host path. */
  source: string;
  /** Absolute path inside the workload. */
  target: string;
  /** The volume's name: a VM's guest mounts the share by this 9p tag (containers ignore it). */
  name?: string;
  /** Containers only: the workload cannot write to it. Absent: writable. */
  readOnly?: boolean;
}

/** What only a virtual machine has. */
export interface MachineSpec {
  memoryBytes: number;
  cpus: number;
  /**
   * Normalized absolute path of the VM's own copy-on-write disk (a qcow2
   * file in its package volume) over the base image `Workload.image` names;
   * made by `ensure` when absent, kept by `remove`.
   */
  disk: string;
}

/** What a VM's `inspect` adds: how it runs and its disk. */
export interface MachineInfo {
  /** `kvm` when hardware virtualization really works on the host, else `tcg` (emulation). */
  accelerator: "kvm" | "tcg";
  memoryBytes: number;
  cpus: number;
  /** The disk as the guest sees it. */
  diskVirtualBytes: number;
  /** What the VM's own disk file takes on the host (its changes over the base image). */
  diskAllocatedBytes: number;
  /** QEMU's run state from QMP (`running`, `paused`, `shutdown`…), or null when not running. */
  qmpStatus: string | null;
}

/** A workload port published on the host. */
export interface PublishedPort {
  /** An IP address; `0.0.0.0` for every address. */
  hostAddress: string;
  hostPort: number;
  port: number;
  protocol: "tcp";
}

/** What to run: the spec `ensure` makes true. */
export interface Workload {
  kind: WorkloadKind;
  name: string;
  hostname: string;
  /** A container image reference, or for a VM the name of its base image in the VM image store. */
  image: string;
  /** Absent: the image's entrypoint. */
  entrypoint?: readonly string[];
  /** Absent: the image's command (unless an entrypoint is given). */
  command?: readonly string[];
  env: Readonly<Record<string, string>>;
  /** Absent: the image's working directory. */
  workingDir?: string;
  labels: Readonly<Record<string, string>>;
  /** In the order they are mounted: a parent before what is nested in it. */
  mounts: readonly Mount[];
  ports: readonly PublishedPort[];
  /** The network it joins, with extra names it is found by there; null for none. */
  network: { name: string; aliases: readonly string[] } | null;
  /**
   * Containers only: share the host's network (what it listens on, it listens
   * on the host; it reaches the host's loopback). Takes no `network` and no
   * `ports`. Absent: a network of its own.
   */
  hostNetwork?: boolean;
  /** What the runtime does when the workload ends by itself. */
  restart: "no" | "on-failure" | "always" | "unless-stopped";
  /**
   * Limits the runtime applies; absent ones are the host's defaults.
   * (Health checks come from the image: the package format has no field for them yet.)
   */
  resources?: { ulimits?: readonly Ulimit[] };
  /** Present exactly when `kind` is `vm`. */
  machine?: MachineSpec;
}

/** One line of a listing; cheap to get for every workload at once. */
export interface WorkloadSummary {
  id: string;
  name: string;
  /** Absent from a runtime of one kind; the router (router.ts) says which runtime holds it. */
  kind?: WorkloadKind;
  image: string;
  imageId: string;
  /** `created`, `running`, `paused`, `stopped`, `exited`… as the runtime says. */
  state: string;
  created: Date | null;
  exitCode: number;
  /** When it last exited; null when it never has, absent when the runtime does not say. */
  exitedAt?: Date | null;
  labels: Record<string, string>;
}

export interface HealthState {
  /** `starting`, `healthy` or `unhealthy`. */
  status: string;
  failingStreak: number;
  log: { start: Date | null; end: Date | null; exitCode: number; output: string }[];
}

/** A workload's health check as configured (from its image or its spec); durations in ms. */
export interface HealthcheckConfig {
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  retries: number;
}

/** Everything known about one workload. */
export interface WorkloadInfo {
  id: string;
  name: string;
  /** The image reference it was made from. */
  image: string;
  imageId: string;
  created: Date | null;
  labels: Record<string, string>;
  state: {
    /** `created`, `running`, `paused`, `stopped`, `exited`… */
    status: string;
    running: boolean;
    exitCode: number;
    pid: number;
    startedAt: Date | null;
    finishedAt: Date | null;
    oomKilled: boolean;
    /** Why the last start failed, or "". */
    error: string;
  };
  restartCount: number;
  /** `no`, `always`, `unless-stopped`, `on-failure`. */
  restartPolicy: string;
  /** Null without a health check. */
  healthcheck: HealthcheckConfig | null;
  /** Null without a health check. */
  health: HealthState | null;
  /**
   * Network name → the workload's IPv4 address on it: how the box reaches a
   * container's own ports (a package's metrics) without publishing them.
   * Empty while not running, and always for a VM (its ports are forwarded).
   */
  addresses: Record<string, string>;
  /** Present exactly for a VM. */
  machine?: MachineInfo;
}

export interface LogOptions {
  /** Keep the stream open for new output until the workload stops or `signal` aborts. */
  follow?: boolean;
  since?: Date;
  until?: Date;
  /** Fill in `LogLine.time` (whole seconds on Podman 4.3). */
  timestamps?: boolean;
  /** Only the last lines. */
  tail?: number;
  stdout?: boolean;
  stderr?: boolean;
  signal?: AbortSignal;
}

export interface LogLine {
  stream: "stdout" | "stderr";
  /** Null unless `timestamps` was asked for. */
  time: Date | null;
  /** One line without its newline. */
  text: string;
}

export interface EventOptions {
  /** Only events of workloads carrying all these labels. */
  labels?: Readonly<Record<string, string>>;
  /** `start`, `died`, `remove`, …; default all. */
  actions?: readonly string[];
  /** Replay past events from this moment on first. */
  since?: Date;
  /** End the stream at this moment. */
  until?: Date;
  signal?: AbortSignal;
}

/** Something that happened to a workload. */
export interface WorkloadEvent {
  /** `create`, `start`, `died`, `remove`, `health_status`, … */
  action: string;
  id: string;
  name: string | null;
  time: Date;
  /** The workload's labels and the event's details. */
  attributes: Record<string, string>;
  /** For `died`: the exit code. */
  exitCode: number | null;
}

export interface ExecOptions {
  env?: Readonly<Record<string, string>>;
  workdir?: string;
  user?: string;
  /** For the whole command; default 5 minutes. A timed-out command keeps running. */
  timeoutMs?: number;
  /** Kept per stream; the rest is dropped (`truncated`). Default 1 MiB. */
  maxOutputBytes?: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export interface WorkloadStats {
  cpuPercent: number;
  /** CPU time used since the workload started (user + system), seconds: a counter. */
  cpuSeconds: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  netInputBytes: number;
  netOutputBytes: number;
  blockInputBytes: number;
  blockOutputBytes: number;
  pids: number;
}

/** What `ensure` did. */
export type EnsureOutcome = "created" | "replaced" | "unchanged";

export interface WorkloadRuntime {
  /** Pure: the fingerprint `ensure` compares; equal specs give equal fingerprints. */
  fingerprint(workload: Workload): string;
  /**
   * Makes the workload exist as specified, without starting it: created
   * when absent, replaced (removed and created, so stopped) when its
   * fingerprint differs, left alone when equal.
   */
  ensure(workload: Workload): Promise<EnsureOutcome>;
  /** True when this call started it, false when it was running already. */
  start(name: string): Promise<boolean>;
  /** Stops it (SIGTERM, SIGKILL after `timeoutSeconds`, default 10). False when not running or absent. */
  stop(name: string, options?: { timeoutSeconds?: number }): Promise<boolean>;
  /** Stops and removes it (never its mounted data). False when absent. */
  remove(name: string, options?: { timeoutSeconds?: number }): Promise<boolean>;
  /** All workloads, running or not, carrying all the labels. */
  list(labels?: Readonly<Record<string, string>>): Promise<WorkloadSummary[]>;
  /** Undefined when absent. */
  inspect(name: string): Promise<WorkloadInfo | undefined>;
  /** Runs the health check now (nothing schedules them without systemd). */
  runHealthcheck(name: string): Promise<HealthState>;
  /** Resolves once the stream is open (so an absent workload fails here), then yields lines. */
  logs(name: string, options?: LogOptions): Promise<AsyncGenerator<LogLine>>;
  /** Resolves once connected (nothing after that is missed), then yields events. */
  events(options?: EventOptions): Promise<AsyncGenerator<WorkloadEvent>>;
  /** Runs a command in a running workload. `conflict` when it does not run. */
  exec(name: string, command: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** A one-off resource sample of a running workload. */
  stats(name: string): Promise<WorkloadStats>;
  /**
   * A directory of a created (or running) workload's filesystem as an
   * uncompressed tar whose entries are relative to it: how a volume is seeded
   * from an image. The caller consumes or destroys the stream.
   */
  copyFrom(name: string, directory: string, signal?: AbortSignal): Promise<NodeJS.ReadableStream>;
}

export interface NetworkSpec {
  name: string;
  labels?: Readonly<Record<string, string>>;
}

export interface NetworkInfo {
  name: string;
  labels: Record<string, string>;
}

/**
 * The networks workloads join. Same contract: `inspect` of an absent
 * network is undefined, `remove` of one is false.
 */
export interface NetworkRuntime {
  /** Idempotent: an existing network of that name is returned as it is. */
  ensureNetwork(spec: NetworkSpec): Promise<NetworkInfo>;
  inspectNetwork(name: string): Promise<NetworkInfo | undefined>;
  listNetworks(labels?: Readonly<Record<string, string>>): Promise<NetworkInfo[]>;
  /** False when absent; `conflict` while workloads use it. */
  removeNetwork(name: string): Promise<boolean>;
}

export interface PullOptions {
  /** Called with each progress line, in order. */
  onProgress?: (line: string) => void;
  /** False for a registry reached over plain HTTP. Default true. */
  tlsVerify?: boolean;
  signal?: AbortSignal;
}

/** The images workloads are made from. */
export interface ImageStore {
  imageExists(reference: string): Promise<boolean>;
  /** `not_found` when the registry has no such image, `unavailable` when it cannot be reached. */
  pullImage(reference: string, options?: PullOptions): Promise<void>;
}

/** A host's whole runtime: its workloads and the networks and images they use (Podman is all three). */
export type HostRuntime = WorkloadRuntime & NetworkRuntime & ImageStore;
