/**
 * Podman as a WorkloadRuntime, NetworkRuntime and ImageStore: a workload is
 * a container made from `containerSpec(workload)`, its fingerprint that
 * spec's `town.spec-hash` label.
 */
import { TownError } from "@townos/format";
import type {
  EnsureOutcome,
  EventOptions,
  ExecOptions,
  ExecResult,
  HealthState,
  ImageStore,
  LogLine,
  LogOptions,
  NetworkInfo,
  NetworkRuntime,
  NetworkSpec,
  PullOptions,
  Workload,
  WorkloadEvent,
  WorkloadInfo,
  WorkloadRuntime,
  WorkloadStats,
  WorkloadSummary,
} from "../workload.js";
import { LABEL_SPEC_HASH } from "../workload.js";
import type { Podman } from "./client.js";
import { containerSpec } from "./container-spec.js";

export class PodmanRuntime implements WorkloadRuntime, NetworkRuntime, ImageStore {
  constructor(private readonly podman: Podman) {}

  fingerprint(workload: Workload): string {
    return containerSpec(workload).labels[LABEL_SPEC_HASH] ?? "";
  }

  async ensure(workload: Workload): Promise<EnsureOutcome> {
    const spec = containerSpec(workload);
    // Absent is the common case (the controller removes what is out of date first): one call then.
    try {
      await this.podman.createContainer(spec);
      return "created";
    } catch (error) {
      if (!(error instanceof TownError && error.code === "conflict")) throw error;
    }
    const existing = await this.podman.inspectContainer(workload.name);
    if (existing?.labels[LABEL_SPEC_HASH] === spec.labels[LABEL_SPEC_HASH]) return "unchanged";
    if (existing) await this.podman.removeContainer(workload.name);
    await this.podman.createContainer(spec);
    return existing ? "replaced" : "created";
  }

  start(name: string): Promise<boolean> {
    return this.podman.startContainer(name);
  }

  stop(name: string, options?: { timeoutSeconds?: number }): Promise<boolean> {
    return this.podman.stopContainer(name, options);
  }

  remove(name: string, options?: { timeoutSeconds?: number }): Promise<boolean> {
    return this.podman.removeContainer(name, options);
  }

  list(labels?: Readonly<Record<string, string>>): Promise<WorkloadSummary[]> {
    return this.podman.listContainers(labels);
  }

  inspect(name: string): Promise<WorkloadInfo | undefined> {
    return this.podman.inspectContainer(name);
  }

  runHealthcheck(name: string): Promise<HealthState> {
    return this.podman.runHealthcheck(name);
  }

  logs(name: string, options?: LogOptions): Promise<AsyncGenerator<LogLine>> {
    return this.podman.logs(name, options);
  }

  async events(options: EventOptions = {}): Promise<AsyncGenerator<WorkloadEvent>> {
    return this.podman.events({ ...options, types: ["container"] });
  }

  exec(name: string, command: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return this.podman.exec(name, command, options);
  }

  stats(name: string): Promise<WorkloadStats> {
    return this.podman.stats(name);
  }

  copyFrom(name: string, directory: string, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    return this.podman.copyFromContainer(name, directory, signal);
  }

  ensureNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    return this.podman.createNetwork(spec);
  }

  inspectNetwork(name: string): Promise<NetworkInfo | undefined> {
    return this.podman.inspectNetwork(name);
  }

  listNetworks(labels?: Readonly<Record<string, string>>): Promise<NetworkInfo[]> {
    return this.podman.listNetworks(labels);
  }

  removeNetwork(name: string): Promise<boolean> {
    return this.podman.removeNetwork(name);
  }

  imageExists(reference: string): Promise<boolean> {
    return this.podman.imageExists(reference);
  }

  async pullImage(reference: string, options?: PullOptions): Promise<void> {
    await this.podman.pullImage(reference, options);
  }
}
