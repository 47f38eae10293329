/**
 * The Podman driver: typed calls to libpod's REST API (v4) over its unix
 * socket. It applies plans and reports what is there; deciding what to do
 * is the reconciler's job.
 *
 * Contracts shared by every method:
 * - Failures are TownErrors with context, `podman: <what> <name>: <libpod's
 *   message>`: `not_found` (absent where presence was required), `conflict`
 *   (a name in use, a container in the wrong state), `unavailable` (no
 *   service, a timeout, a registry out of reach), `payload_too_large` (an
 *   answer above its bound), `io` (anything else libpod refused).
 * - "Absent" is an answer, not an error, wherever that is what the caller
 *   asks about: `inspect*` return undefined, and stop, kill and remove of an
 *   absent container succeed, so every state-changing call is idempotent.
 * - Every call has a time limit and reads a bounded number of bytes;
 *   streams (logs, events) end when the caller aborts their signal.
 * - Containers are never created with a TTY: their logs and exec output are
 *   multiplexed stdout/stderr frames.
 */
import { Decoder } from "./decode.js";
import type { SpecGenerator } from "./container-spec.js";
import * as containers from "./containers.js";
import * as events from "./events.js";
import * as exec from "./exec.js";
import * as images from "./images.js";
import { DEFAULT_SOCKET_PATH, LibpodClient } from "./libpod-client.js";
import * as logs from "./logs.js";
import * as networks from "./networks.js";
import { PodmanService, type ServiceOptions, type ServiceState } from "./service.js";
import * as stats from "./stats.js";
import type {
  ExecOptions,
  ExecResult,
  HealthState,
  LogLine,
  LogOptions,
  WorkloadInfo,
  WorkloadStats,
  WorkloadSummary,
} from "../workload.js";

export interface PodmanOptions extends ServiceOptions {
  /** Default `/run/podman/podman.sock`. */
  socketPath?: string;
}

export interface PodmanVersion {
  version: string;
  apiVersion: string;
  /** `runc`, `crun`…: from the components list, null when libpod does not say. */
  ociRuntime: string | null;
}

/** One object over the resource modules, for callers that hold a single Podman. */
export class Podman {
  private readonly client: LibpodClient;
  private readonly service: PodmanService;

  constructor(options: PodmanOptions = {}) {
    this.client = new LibpodClient(options.socketPath ?? DEFAULT_SOCKET_PATH);
    this.service = new PodmanService(this.client, options);
  }

  get socketPath(): string {
    return this.client.socketPath;
  }

  /** Closes idle connections (open streams end when their signal aborts). */
  close(): void {
    this.client.close();
  }

  ping(): Promise<boolean> {
    return this.service.ping();
  }

  ensureService(): Promise<ServiceState> {
    return this.service.ensure();
  }

  async version(): Promise<PodmanVersion> {
    const context = "version";
    const { body } = await this.client.request({ method: "GET", path: "/version", context });
    const d = new Decoder(context);
    const root = d.object(body, "version");
    let ociRuntime: string | null = null;
    for (const item of d.array(root["Components"], "Components")) {
      const match = /^OCI Runtime \((.+)\)$/.exec(d.string(d.object(item, "component"), "Name"));
      if (match?.[1] !== undefined) ociRuntime = match[1];
    }
    return {
      version: d.string(root, "Version"),
      apiVersion: d.string(root, "ApiVersion"),
      ociRuntime,
    };
  }

  imageExists(reference: string): Promise<boolean> {
    return images.imageExists(this.client, reference);
  }

  inspectImage(reference: string): Promise<images.ImageInfo | undefined> {
    return images.inspectImage(this.client, reference);
  }

  pullImage(reference: string, options?: images.PullOptions): Promise<images.PullResult> {
    return images.pullImage(this.client, reference, options);
  }

  createNetwork(spec: networks.NetworkSpec): Promise<networks.NetworkInfo> {
    return networks.createNetwork(this.client, spec);
  }

  inspectNetwork(name: string): Promise<networks.NetworkInfo | undefined> {
    return networks.inspectNetwork(this.client, name);
  }

  listNetworks(labels?: Readonly<Record<string, string>>): Promise<networks.NetworkInfo[]> {
    return networks.listNetworks(this.client, labels);
  }

  removeNetwork(name: string): Promise<boolean> {
    return networks.removeNetwork(this.client, name);
  }

  createContainer(spec: SpecGenerator): Promise<string> {
    return containers.createContainer(this.client, spec);
  }

  startContainer(name: string): Promise<boolean> {
    return containers.startContainer(this.client, name);
  }

  stopContainer(name: string, options?: containers.StopOptions): Promise<boolean> {
    return containers.stopContainer(this.client, name, options);
  }

  killContainer(name: string, signal?: string): Promise<boolean> {
    return containers.killContainer(this.client, name, signal);
  }

  removeContainer(name: string, options?: containers.StopOptions): Promise<boolean> {
    return containers.removeContainer(this.client, name, options);
  }

  inspectContainer(name: string): Promise<WorkloadInfo | undefined> {
    return containers.inspectContainer(this.client, name);
  }

  listContainers(labels?: Readonly<Record<string, string>>): Promise<WorkloadSummary[]> {
    return containers.listContainers(this.client, labels);
  }

  waitContainer(
    name: string,
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<number> {
    return containers.waitContainer(this.client, name, options);
  }

  copyFromContainer(
    name: string,
    directory: string,
    signal?: AbortSignal,
  ): Promise<NodeJS.ReadableStream> {
    return containers.copyFromContainer(this.client, name, directory, signal);
  }

  runHealthcheck(name: string): Promise<HealthState> {
    return containers.runHealthcheck(this.client, name);
  }

  logs(name: string, options?: LogOptions): Promise<AsyncGenerator<LogLine>> {
    return logs.logs(this.client, name, options);
  }

  events(options?: events.EventOptions): Promise<AsyncGenerator<events.PodmanEvent>> {
    return events.events(this.client, options);
  }

  exec(name: string, command: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return exec.exec(this.client, name, command, options);
  }

  stats(name: string): Promise<WorkloadStats> {
    return stats.stats(this.client, name);
  }
}
