/**
 * One HostRuntime over two: containers go to the host runtime (Podman, which
 * also holds the networks and container images), virtual machines to the VM
 * runtime (QEMU). `ensure` picks by the workload's kind; calls that name a
 * workload go to the runtime that has it (the VM runtime's listing is a
 * directory read, so asking it first is cheap); listings and event streams
 * are the union of both. The app controller, health and logs see one runtime
 * and never branch on the kind.
 */
import type {
  EnsureOutcome,
  EventOptions,
  ExecOptions,
  ExecResult,
  HealthState,
  HostRuntime,
  LogLine,
  LogOptions,
  NetworkInfo,
  NetworkSpec,
  PullOptions,
  Workload,
  WorkloadEvent,
  WorkloadInfo,
  WorkloadRuntime,
  WorkloadStats,
  WorkloadSummary,
} from "./workload.js";

export class WorkloadRouter implements HostRuntime {
  constructor(
    private readonly host: HostRuntime,
    private readonly vms: WorkloadRuntime,
  ) {}

  fingerprint(workload: Workload): string {
    return this.byKind(workload).fingerprint(workload);
  }

  ensure(workload: Workload): Promise<EnsureOutcome> {
    return this.byKind(workload).ensure(workload);
  }

  async start(name: string): Promise<boolean> {
    return (await this.holding(name)).start(name);
  }

  async stop(name: string, options?: { timeoutSeconds?: number }): Promise<boolean> {
    return (await this.holding(name)).stop(name, options);
  }

  async remove(name: string, options?: { timeoutSeconds?: number }): Promise<boolean> {
    return (await this.holding(name)).remove(name, options);
  }

  async list(labels?: Readonly<Record<string, string>>): Promise<WorkloadSummary[]> {
    const [containers, vms] = await Promise.all([this.host.list(labels), this.vms.list(labels)]);
    return [
      ...containers.map((summary): WorkloadSummary => ({ ...summary, kind: "container" })),
      ...vms.map((summary): WorkloadSummary => ({ ...summary, kind: "vm" })),
    ];
  }

  async inspect(name: string): Promise<WorkloadInfo | undefined> {
    return (await this.vms.inspect(name)) ?? this.host.inspect(name);
  }

  async runHealthcheck(name: string): Promise<HealthState> {
    return (await this.holding(name)).runHealthcheck(name);
  }

  async logs(name: string, options?: LogOptions): Promise<AsyncGenerator<LogLine>> {
    return (await this.holding(name)).logs(name, options);
  }

  async events(options: EventOptions = {}): Promise<AsyncGenerator<WorkloadEvent>> {
    const streams = await Promise.all([this.host.events(options), this.vms.events(options)]);
    return merge(streams);
  }

  async exec(name: string, command: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return (await this.holding(name)).exec(name, command, options);
  }

  async stats(name: string): Promise<WorkloadStats> {
    return (await this.holding(name)).stats(name);
  }

  async copyFrom(
    name: string,
    directory: string,
    signal?: AbortSignal,
  ): Promise<NodeJS.ReadableStream> {
    return (await this.holding(name)).copyFrom(name, directory, signal);
  }

  ensureNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    return this.host.ensureNetwork(spec);
  }

  inspectNetwork(name: string): Promise<NetworkInfo | undefined> {
    return this.host.inspectNetwork(name);
  }

  listNetworks(labels?: Readonly<Record<string, string>>): Promise<NetworkInfo[]> {
    return this.host.listNetworks(labels);
  }

  removeNetwork(name: string): Promise<boolean> {
    return this.host.removeNetwork(name);
  }

  /** Container images only: VM images have their own store (runtime/qemu/images.ts). */
  imageExists(reference: string): Promise<boolean> {
    return this.host.imageExists(reference);
  }

  pullImage(reference: string, options?: PullOptions): Promise<void> {
    return this.host.pullImage(reference, options);
  }

  private byKind(workload: Workload): WorkloadRuntime {
    return workload.kind === "vm" ? this.vms : this.host;
  }

  /** The VM runtime when it has the workload, else the host runtime (which answers for absent ones). */
  private async holding(name: string): Promise<WorkloadRuntime> {
    const vms = await this.vms.list();
    return vms.some((vm) => vm.name === name) ? this.vms : this.host;
  }
}

/** Items of every stream as they come; ends when all have ended (each ends on the callers' signal). */
async function* merge<T>(streams: readonly AsyncGenerator<T>[]): AsyncGenerator<T> {
  const pending = new Map<number, Promise<{ index: number; result: IteratorResult<T> }>>();
  const next = (index: number): void => {
    const stream = streams[index];
    if (stream)
      pending.set(
        index,
        stream.next().then((result) => ({ index, result })),
      );
  };
  streams.forEach((_, index) => {
    next(index);
  });
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done === true) {
        pending.delete(index);
        continue;
      }
      next(index);
      yield result.value;
    }
  } finally {
    // Not awaited: a stream with a read outstanding returns only once that read settles.
    for (const stream of streams) stream.return(undefined).catch(() => undefined);
  }
}
