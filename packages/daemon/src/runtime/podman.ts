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
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import type http from "node:http";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TownError } from "@townos/format";
import { PODMAN_NAME, type SpecGenerator } from "./container-spec.js";
import { Decoder, goTime, type JsonObject } from "./decode.js";
import { DEFAULT_SOCKET_PATH, LibpodClient, type LibpodRequest } from "./libpod-client.js";
import { demultiplex, readLines, type StreamName } from "./streams.js";

export { DEFAULT_SOCKET_PATH } from "./libpod-client.js";

export interface PodmanOptions {
  /** Default `/run/podman/podman.sock`. */
  socketPath?: string;
  /** The podman program `ensureService` starts; default `podman` from PATH. */
  podmanPath?: string;
  /** How long `ensureService` waits for a service it started to answer; default 15 s. */
  serviceStartTimeoutMs?: number;
  /** File the output of a service `ensureService` starts is appended to; default: discarded. */
  serviceLogPath?: string;
}

export interface ServiceState {
  /** True when this call started the service (it was not answering). */
  started: boolean;
  /** Process id of the service this call started, else null. */
  pid: number | null;
}

export interface PodmanVersion {
  version: string;
  apiVersion: string;
  /** `runc`, `crun`…: from the components list, null when libpod does not say. */
  ociRuntime: string | null;
}

export interface ImageInfo {
  id: string;
  digest: string;
  names: string[];
  created: Date | null;
  size: number;
  entrypoint: string[];
  command: string[];
  env: string[];
  labels: Record<string, string>;
}

export interface PullOptions {
  /** Called with each progress line (`Copying blob …`), in order. */
  onProgress?: (line: string) => void;
  /** False for a registry reached over plain HTTP (one on the home network). Default true. */
  tlsVerify?: boolean;
  /** Default 10 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PullResult {
  id: string;
  images: string[];
}

export interface NetworkSpec {
  name: string;
  labels?: Readonly<Record<string, string>>;
  /** Internal networks have no route out; default false. */
  internal?: boolean;
  /** Containers resolve each other's names and aliases; default true. */
  dnsEnabled?: boolean;
}

export interface NetworkInfo {
  id: string;
  name: string;
  driver: string;
  internal: boolean;
  dnsEnabled: boolean;
  labels: Record<string, string>;
  subnets: { subnet: string; gateway: string }[];
}

export interface HealthState {
  /** `starting`, `healthy` or `unhealthy`. */
  status: string;
  failingStreak: number;
  log: { start: Date | null; end: Date | null; exitCode: number; output: string }[];
}

/** A container's healthcheck as configured (from its image or its spec); durations in ms. */
export interface HealthcheckConfig {
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  retries: number;
}

export interface ContainerInfo {
  id: string;
  name: string;
  /** The reference the container was created from. */
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
  /** `no`, `always`, `unless-stopped`, `on-failure` (libpod's "" reads as `no`). */
  restartPolicy: string;
  /** Null for a container without a healthcheck. */
  healthcheck: HealthcheckConfig | null;
  /** Null for a container without a healthcheck. */
  health: HealthState | null;
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  imageId: string;
  state: string;
  created: Date | null;
  exitCode: number;
  labels: Record<string, string>;
}

export interface StopOptions {
  /** Seconds between SIGTERM (or the image's stop signal) and SIGKILL; default 10. */
  timeoutSeconds?: number;
}

export interface LogOptions {
  /** Keep the stream open for new output until the container stops or `signal` aborts. */
  follow?: boolean;
  since?: Date;
  until?: Date;
  /** Parse libpod's timestamps into `LogLine.time` (whole seconds on Podman 4.3). */
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
  /** Only events of objects carrying all these labels. */
  labels?: Readonly<Record<string, string>>;
  /** `container`, `image`, `network`, …; default all. */
  types?: readonly string[];
  /** `start`, `died`, `remove`, …; default all. */
  actions?: readonly string[];
  /** Replay past events from this moment on first. */
  since?: Date;
  /** End the stream at this moment. */
  until?: Date;
  signal?: AbortSignal;
}

export interface PodmanEvent {
  type: string;
  /** `create`, `init`, `start`, `died`, `cleanup`, `remove`, `exec`, `health_status`, … */
  action: string;
  id: string;
  /** The object's name (container, image), when libpod gives it. */
  name: string | null;
  time: Date;
  /** The object's labels, `name`, `image`, `containerExitCode`… */
  attributes: Record<string, string>;
  /** For `died` and `exec_died`: the exit code. */
  exitCode: number | null;
}

export interface ExecOptions {
  env?: Readonly<Record<string, string>>;
  workdir?: string;
  user?: string;
  /** For the whole command; default 5 minutes. A timed-out command keeps running. */
  timeoutMs?: number;
  /** Kept per stream; the rest is read and dropped (`truncated`). Default 1 MiB. */
  maxOutputBytes?: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export interface ContainerStats {
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  netInputBytes: number;
  netOutputBytes: number;
  blockInputBytes: number;
  blockOutputBytes: number;
  pids: number;
}

const PING_TIMEOUT_MS = 2_000;
const PULL_TIMEOUT_MS = 10 * 60_000;
const EXEC_TIMEOUT_MS = 5 * 60_000;
const WAIT_TIMEOUT_MS = 10 * 60_000;
const MAX_LINE_BYTES = 1024 * 1024;
const MAX_OUTPUT_BYTES = 1024 * 1024;
/** Podman's default stop timeout; the request may take that long and then some. */
const STOP_TIMEOUT_SECONDS = 10;
const STOP_MARGIN_MS = 30_000;
const MAX_REFERENCE_LENGTH = 512;
const IMAGE_REFERENCE = /^[a-zA-Z0-9][a-zA-Z0-9._:/@-]*$/;

export class Podman {
  private readonly client: LibpodClient;
  private starting: Promise<ServiceState> | undefined;

  constructor(private readonly options: PodmanOptions = {}) {
    this.client = new LibpodClient(options.socketPath ?? DEFAULT_SOCKET_PATH);
  }

  get socketPath(): string {
    return this.client.socketPath;
  }

  /** Closes idle connections (open streams end when their signal aborts). */
  close(): void {
    this.client.close();
  }

  // --- service ------------------------------------------------------------

  /** True when a service answers `_ping` on the socket within 2 s. */
  async ping(): Promise<boolean> {
    try {
      const { body } = await this.client.request({
        method: "GET",
        path: "/_ping",
        context: "ping",
        timeoutMs: PING_TIMEOUT_MS,
        maxBytes: 1024,
      });
      return body === "OK";
    } catch (error) {
      if (error instanceof TownError && error.code === "unavailable") return false;
      throw error;
    }
  }

  /**
   * Makes sure a service answers on the socket: when none does, starts
   * `podman system service --time=0` in its own session (so that it and the
   * containers it supervises outlive this process) and waits for `_ping`.
   * Concurrent calls share one start.
   */
  ensureService(): Promise<ServiceState> {
    this.starting ??= this.startService().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startService(): Promise<ServiceState> {
    if (await this.ping()) return { started: false, pid: null };
    const socket = this.socketPath;
    await mkdir(dirname(socket), { recursive: true });
    const log = this.options.serviceLogPath ? openSync(this.options.serviceLogPath, "a") : "ignore";
    let exited: string | undefined;
    const child = spawn(
      this.options.podmanPath ?? "podman",
      ["system", "service", "--time=0", `unix://${socket}`],
      { detached: true, stdio: ["ignore", log, log] },
    );
    if (typeof log === "number") closeSync(log);
    child.once("error", (error) => {
      exited = error.message;
    });
    child.once("exit", (code, signal) => {
      exited = `it exited (${signal ?? `code ${String(code)}`})`;
    });
    const deadline = Date.now() + (this.options.serviceStartTimeoutMs ?? 15_000);
    while (Date.now() < deadline && exited === undefined) {
      if (await this.ping()) {
        child.unref();
        child.removeAllListeners();
        return { started: true, pid: child.pid ?? null };
      }
      await sleep(50);
    }
    if (exited === undefined) child.kill();
    throw new TownError(
      "unavailable",
      `podman: start service on ${socket}: ${exited ?? "it did not answer in time"}`,
    );
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

  // --- images -------------------------------------------------------------

  async imageExists(reference: string): Promise<boolean> {
    const context = `check image ${reference}`;
    const { status } = await this.client.request({
      method: "GET",
      path: `/images/${imagePath(reference, context)}/exists`,
      context,
      accept: [404],
    });
    return status !== 404;
  }

  /** Undefined when the image is not in local storage. */
  async inspectImage(reference: string): Promise<ImageInfo | undefined> {
    const context = `inspect image ${reference}`;
    const { status, body } = await this.client.request({
      method: "GET",
      path: `/images/${imagePath(reference, context)}/json`,
      context,
      accept: [404],
    });
    if (status === 404) return undefined;
    const d = new Decoder(context);
    const root = d.object(body, "image");
    const config = d.optionalObject(root, "Config") ?? {};
    return {
      id: d.string(root, "Id"),
      digest: d.string(root, "Digest"),
      names: d.strings(root, "RepoTags"),
      created: goTime(d.string(root, "Created")),
      size: d.number(root, "Size"),
      entrypoint: d.strings(config, "Entrypoint"),
      command: d.strings(config, "Cmd"),
      env: d.strings(config, "Env"),
      labels: d.stringMap(config, "Labels"),
    };
  }

  /**
   * Pulls an image, reporting progress line by line. Libpod answers 200 at
   * once and reports a failure inside the stream; a registry out of reach
   * fails with `unavailable`, an unknown image with `not_found`.
   */
  async pullImage(reference: string, options: PullOptions = {}): Promise<PullResult> {
    const context = `pull image ${reference}`;
    const controller = new AbortController();
    const timeoutMs = options.timeoutMs ?? PULL_TIMEOUT_MS;
    const timer = setTimeout(() => {
      controller.abort();
    }, timeoutMs);
    const signal = options.signal
      ? AbortSignal.any([options.signal, controller.signal])
      : controller.signal;
    const d = new Decoder(context);
    try {
      const response = await this.client.stream({
        method: "POST",
        path: "/images/pull",
        query: {
          reference: checkReference(reference, context),
          ...(options.tlsVerify === false ? { tlsVerify: false } : {}),
        },
        context,
        timeoutMs,
        signal,
      });
      for await (const line of readLines(response, MAX_LINE_BYTES)) {
        if (line.trim() === "") continue;
        const report = d.object(parseJson(line, d), "progress report");
        const error = d.string(report, "error");
        if (error !== "") throw pullError(context, error);
        const stream = d.string(report, "stream").trim();
        if (stream !== "") options.onProgress?.(stream);
        const id = d.string(report, "id");
        if (id !== "") return { id, images: d.strings(report, "images") };
      }
      throw new TownError("io", `podman: ${context}: the progress stream ended without a result`);
    } catch (error) {
      if (controller.signal.aborted) {
        throw new TownError("unavailable", `podman: ${context}: not done within ${timeoutMs} ms`);
      }
      throw inContext(error, context);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  // --- networks -----------------------------------------------------------

  /**
   * Creates a bridge network with DNS (unless disabled). Idempotent: when a
   * network of that name exists, it is returned as it is, even if its
   * settings differ (compare them to decide whether to recreate it).
   */
  async createNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    const context = `create network ${spec.name}`;
    checkName(spec.name, context);
    const existing = await this.inspectNetwork(spec.name);
    if (existing) return existing;
    try {
      const { body } = await this.client.request({
        method: "POST",
        path: "/networks/create",
        body: {
          name: spec.name,
          driver: "bridge",
          labels: { ...spec.labels },
          internal: spec.internal ?? false,
          dns_enabled: spec.dnsEnabled ?? true,
        },
        context,
      });
      return networkInfo(body, new Decoder(context));
    } catch (error) {
      // Lost a race with another creator: theirs is as good as ours.
      const raced = error instanceof TownError && error.code === "conflict";
      const network = raced ? await this.inspectNetwork(spec.name) : undefined;
      if (network) return network;
      throw error;
    }
  }

  async inspectNetwork(name: string): Promise<NetworkInfo | undefined> {
    const context = `inspect network ${name}`;
    const { status, body } = await this.client.request({
      method: "GET",
      path: `/networks/${namePath(name, context)}/json`,
      context,
      accept: [404],
    });
    return status === 404 ? undefined : networkInfo(body, new Decoder(context));
  }

  /** Networks carrying all the given labels. */
  async listNetworks(labels: Readonly<Record<string, string>> = {}): Promise<NetworkInfo[]> {
    const context = "list networks";
    const { body } = await this.client.request({
      method: "GET",
      path: "/networks/json",
      query: { filters: labelFilters(labels) },
      context,
    });
    const d = new Decoder(context);
    return d
      .array(body, "networks")
      .map((item) => networkInfo(item, d))
      .filter((network) => hasLabels(network.labels, labels));
  }

  /** True when it removed the network, false when there was none. Fails while containers use it. */
  async removeNetwork(name: string): Promise<boolean> {
    const context = `remove network ${name}`;
    const { status } = await this.client.request({
      method: "DELETE",
      path: `/networks/${namePath(name, context)}`,
      context,
      accept: [404],
    });
    return status !== 404;
  }

  // --- containers ---------------------------------------------------------

  /** Creates (does not start) a container; returns its id. `conflict` when the name is taken. */
  async createContainer(spec: SpecGenerator): Promise<string> {
    const context = `create container ${spec.name}`;
    checkName(spec.name, context);
    const { body } = await this.client.request({
      method: "POST",
      path: "/containers/create",
      body: spec,
      context,
    });
    const d = new Decoder(context);
    return d.string(d.object(body, "answer"), "Id");
  }

  /** True when this call started it, false when it was running already. */
  async startContainer(name: string): Promise<boolean> {
    const context = `start container ${name}`;
    const { status } = await this.client.request({
      method: "POST",
      path: `/containers/${namePath(name, context)}/start`,
      context,
    });
    return status !== 304;
  }

  /**
   * Stops a container: its stop signal, then SIGKILL after the timeout.
   * True when this call stopped it; false when it was not running or absent.
   */
  async stopContainer(name: string, options: StopOptions = {}): Promise<boolean> {
    const context = `stop container ${name}`;
    const timeout = stopTimeout(options, context);
    const { status } = await this.client.request({
      method: "POST",
      path: `/containers/${namePath(name, context)}/stop`,
      query: { timeout },
      context,
      timeoutMs: timeout * 1000 + STOP_MARGIN_MS,
      accept: [404],
    });
    return status < 300;
  }

  /**
   * Sends a signal (default SIGKILL) without waiting for the container to
   * end (see `waitContainer`). True when sent; false when the container was
   * not running or absent.
   */
  async killContainer(name: string, signal = "SIGKILL"): Promise<boolean> {
    const context = `kill container ${name}`;
    if (!/^(SIG)?[A-Z0-9+-]{1,16}$/.test(signal)) {
      throw new TownError("invalid_argument", `podman: ${context}: "${signal}" is not a signal`);
    }
    try {
      const { status } = await this.client.request({
        method: "POST",
        path: `/containers/${namePath(name, context)}/kill`,
        query: { signal },
        context,
        accept: [404],
      });
      return status < 300;
    } catch (error) {
      // Libpod refuses to signal a container that is not running: already done.
      if (error instanceof TownError && error.code === "conflict") return false;
      throw error;
    }
  }

  /**
   * Removes a container, stopping it first if it runs, and its anonymous
   * volumes (never bind-mounted data). True when removed, false when absent.
   */
  async removeContainer(name: string, options: StopOptions = {}): Promise<boolean> {
    const context = `remove container ${name}`;
    const timeout = stopTimeout(options, context);
    const { status } = await this.client.request({
      method: "DELETE",
      path: `/containers/${namePath(name, context)}`,
      query: { force: true, v: true, timeout },
      context,
      timeoutMs: timeout * 1000 + STOP_MARGIN_MS,
      accept: [404],
    });
    return status !== 404;
  }

  /** Undefined when there is no such container. */
  async inspectContainer(name: string): Promise<ContainerInfo | undefined> {
    const context = `inspect container ${name}`;
    const { status, body } = await this.client.request({
      method: "GET",
      path: `/containers/${namePath(name, context)}/json`,
      context,
      accept: [404],
    });
    if (status === 404) return undefined;
    const d = new Decoder(context);
    const root = d.object(body, "container");
    const config = d.optionalObject(root, "Config") ?? {};
    const state = d.optionalObject(root, "State") ?? {};
    const health = d.optionalObject(state, "Health");
    const check = d.optionalObject(config, "Healthcheck");
    const test = check ? d.strings(check, "Test") : [];
    const restart = d.optionalObject(d.optionalObject(root, "HostConfig") ?? {}, "RestartPolicy");
    return {
      id: d.string(root, "Id"),
      name: d.string(root, "Name"),
      image: d.string(root, "ImageName"),
      imageId: d.string(root, "Image"),
      created: goTime(d.string(root, "Created")),
      labels: d.stringMap(config, "Labels"),
      state: {
        status: d.string(state, "Status"),
        running: d.boolean(state, "Running"),
        exitCode: d.number(state, "ExitCode"),
        pid: d.number(state, "Pid"),
        startedAt: goTime(d.string(state, "StartedAt")),
        finishedAt: goTime(d.string(state, "FinishedAt")),
        oomKilled: d.boolean(state, "OOMKilled"),
        error: d.string(state, "Error"),
      },
      restartCount: d.number(root, "RestartCount"),
      restartPolicy: (restart && d.string(restart, "Name")) || "no",
      // `NONE` is how an image's healthcheck is switched off.
      healthcheck:
        check && test.length > 0 && test[0] !== "NONE"
          ? {
              test,
              // Go durations in nanoseconds; zero means Podman's default.
              intervalMs: d.number(check, "Interval") / 1e6 || 30_000,
              timeoutMs: d.number(check, "Timeout") / 1e6 || 30_000,
              startPeriodMs: d.number(check, "StartPeriod") / 1e6,
              retries: d.number(check, "Retries") || 3,
            }
          : null,
      health: health && d.string(health, "Status") !== "" ? healthState(health, d) : null,
    };
  }

  /** All containers (running or not) carrying all the given labels. */
  async listContainers(labels: Readonly<Record<string, string>> = {}): Promise<ContainerSummary[]> {
    const context = "list containers";
    const { body } = await this.client.request({
      method: "GET",
      path: "/containers/json",
      query: { all: true, filters: labelFilters(labels) },
      context,
    });
    const d = new Decoder(context);
    return d
      .array(body, "containers")
      .map((item) => {
        const c = d.object(item, "container");
        return {
          id: d.string(c, "Id"),
          name: d.strings(c, "Names")[0] ?? "",
          image: d.string(c, "Image"),
          imageId: d.string(c, "ImageID"),
          state: d.string(c, "State"),
          created: goTime(d.string(c, "Created")),
          exitCode: d.number(c, "ExitCode"),
          labels: d.stringMap(c, "Labels"),
        };
      })
      .filter((container) => hasLabels(container.labels, labels));
  }

  /** Waits until the container is no longer running and returns its exit code. */
  async waitContainer(
    name: string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<number> {
    const context = `wait for container ${name}`;
    const request: LibpodRequest = {
      method: "POST",
      path: `/containers/${namePath(name, context)}/wait`,
      query: { condition: ["stopped", "exited"] },
      context,
      timeoutMs: options.timeoutMs ?? WAIT_TIMEOUT_MS,
    };
    if (options.signal) request.signal = options.signal;
    const { body } = await this.client.request(request);
    if (typeof body !== "number") return new Decoder(context).fail("the exit code is not a number");
    return body;
  }

  /**
   * Streams the contents of a directory inside a container (created or
   * running) as an uncompressed tar whose entries are relative to that
   * directory: how `archives` copy a directory out of an image. The caller
   * consumes or destroys the stream; aborting `signal` ends it.
   */
  async copyFromContainer(
    name: string,
    directory: string,
    signal?: AbortSignal,
  ): Promise<NodeJS.ReadableStream> {
    const context = `copy ${directory} out of container ${name}`;
    if (!directory.startsWith("/") || directory.includes("\0")) {
      throw new TownError("invalid_argument", `podman: ${context}: not an absolute path`);
    }
    // "<dir>/." names the directory's contents, so entries carry no leading directory.
    const request: LibpodRequest = {
      method: "GET",
      path: `/containers/${namePath(name, context)}/archive`,
      query: { path: `${directory.replace(/\/+$/, "")}/.` },
      context,
    };
    if (signal) request.signal = signal;
    return this.client.stream(request);
  }

  /**
   * Opens a container's log stream. Resolves once libpod has answered (so a
   * missing container fails here), then yields lines as they come: all of
   * them and the end, or with `follow` until the container stops or
   * `options.signal` aborts, which ends the iteration quietly.
   */
  async logs(name: string, options: LogOptions = {}): Promise<AsyncGenerator<LogLine>> {
    const context = `logs of container ${name}`;
    const request: LibpodRequest = {
      method: "GET",
      path: `/containers/${namePath(name, context)}/logs`,
      query: {
        follow: options.follow ?? false,
        stdout: options.stdout ?? true,
        stderr: options.stderr ?? true,
        timestamps: options.timestamps ?? false,
        since: unixSeconds(options.since),
        until: unixSeconds(options.until),
        tail: options.tail,
      },
      context,
    };
    if (options.signal) request.signal = options.signal;
    const response = await this.client.stream(request);
    return logLines(response, options, context);
  }

  /**
   * Opens libpod's event stream (resolving once it is connected, so nothing
   * that happens afterwards is missed) and yields events until `until`
   * passes or `signal` aborts, which ends the iteration quietly.
   */
  async events(options: EventOptions = {}): Promise<AsyncGenerator<PodmanEvent>> {
    const context = "events";
    const filters: Record<string, string[]> = {};
    const labels = Object.entries(options.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    if (labels.length > 0) filters["label"] = labels;
    if (options.types?.length) filters["type"] = [...options.types];
    if (options.actions?.length) filters["event"] = [...options.actions];
    const request: LibpodRequest = {
      method: "GET",
      path: "/events",
      query: {
        stream: true,
        filters: JSON.stringify(filters),
        since: unixSeconds(options.since),
        until: unixSeconds(options.until),
      },
      context,
    };
    if (options.signal) request.signal = options.signal;
    const response = await this.client.stream(request);
    return eventStream(response, options.labels ?? {}, options.signal, context);
  }

  /**
   * Runs a command in a running container (for `post_update` commands) and
   * returns its exit code and output. `conflict` when the container does
   * not run.
   */
  async exec(
    name: string,
    command: readonly string[],
    options: ExecOptions = {},
  ): Promise<ExecResult> {
    const context = `exec in container ${name}`;
    if (command.length === 0)
      throw new TownError("invalid_argument", `podman: ${context}: no command`);
    const timeoutMs = options.timeoutMs ?? EXEC_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const body: Record<string, unknown> = {
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      Cmd: [...command],
      Env: Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`),
    };
    if (options.workdir !== undefined) body["WorkingDir"] = options.workdir;
    if (options.user !== undefined) body["User"] = options.user;
    const d = new Decoder(context);
    const created = await this.client.request({
      method: "POST",
      path: `/containers/${namePath(name, context)}/exec`,
      body,
      context,
    });
    const id = d.string(d.object(created.body, "answer"), "Id");
    const output = await this.execOutput(
      id,
      context,
      timeoutMs,
      options.maxOutputBytes ?? MAX_OUTPUT_BYTES,
    );
    // The stream ends as the process does; libpod records the exit code a moment later.
    for (;;) {
      const { body: inspected } = await this.client.request({
        method: "GET",
        path: `/exec/${encodeURIComponent(id)}/json`,
        context,
      });
      const session = d.object(inspected, "exec session");
      if (!d.boolean(session, "Running"))
        return { ...output, exitCode: d.number(session, "ExitCode") };
      if (Date.now() > deadline) {
        throw new TownError("unavailable", `podman: ${context}: not done within ${timeoutMs} ms`);
      }
      await sleep(20);
    }
  }

  private async execOutput(
    id: string,
    context: string,
    timeoutMs: number,
    maxBytes: number,
  ): Promise<Omit<ExecResult, "exitCode">> {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort();
    }, timeoutMs);
    const kept: Record<"stdout" | "stderr", Buffer[]> = { stdout: [], stderr: [] };
    const sizes = { stdout: 0, stderr: 0 };
    let truncated = false;
    try {
      const response = await this.client.stream({
        method: "POST",
        path: `/exec/${encodeURIComponent(id)}/start`,
        body: { Detach: false, Tty: false },
        context,
        timeoutMs,
        signal: controller.signal,
      });
      for await (const frame of demultiplex(response, MAX_LINE_BYTES)) {
        if (frame.stream === "stdin") continue;
        const room = maxBytes - sizes[frame.stream];
        if (frame.data.length > room) truncated = true;
        if (room > 0) kept[frame.stream].push(frame.data.subarray(0, room));
        sizes[frame.stream] += Math.min(room, frame.data.length);
      }
    } catch (error) {
      if (controller.signal.aborted) {
        throw new TownError("unavailable", `podman: ${context}: not done within ${timeoutMs} ms`);
      }
      throw inContext(error, context);
    } finally {
      clearTimeout(timer);
    }
    return {
      stdout: Buffer.concat(kept.stdout).toString("utf8"),
      stderr: Buffer.concat(kept.stderr).toString("utf8"),
      truncated,
    };
  }

  /**
   * Runs the container's healthcheck now and returns the result. Podman
   * schedules healthchecks with systemd timers; without systemd nothing
   * runs them, so the reconciler calls this on its own schedule.
   */
  async runHealthcheck(name: string): Promise<HealthState> {
    const context = `healthcheck of container ${name}`;
    const { body } = await this.client.request({
      method: "GET",
      path: `/containers/${namePath(name, context)}/healthcheck`,
      context,
    });
    const d = new Decoder(context);
    return healthState(d.object(body, "health"), d);
  }

  /** A one-off resource sample of a running container. */
  async stats(name: string): Promise<ContainerStats> {
    const context = `stats of container ${name}`;
    const { body } = await this.client.request({
      method: "GET",
      path: "/containers/stats",
      query: { containers: [checkName(name, context)], stream: false },
      context,
    });
    const d = new Decoder(context);
    const root = d.object(body, "stats");
    const error = root["Error"];
    if (error !== undefined && error !== null) {
      throw new TownError("io", `podman: ${context}: ${JSON.stringify(error)}`);
    }
    const sample = d.array(root["Stats"], "Stats")[0];
    if (sample === undefined) throw new TownError("not_found", `podman: ${context}: no sample`);
    const s = d.object(sample, "sample");
    return {
      cpuPercent: d.number(s, "CPU"),
      memoryBytes: d.number(s, "MemUsage"),
      memoryLimitBytes: d.number(s, "MemLimit"),
      netInputBytes: d.number(s, "NetInput"),
      netOutputBytes: d.number(s, "NetOutput"),
      blockInputBytes: d.number(s, "BlockInput"),
      blockOutputBytes: d.number(s, "BlockOutput"),
      pids: d.number(s, "PIDs"),
    };
  }
}

async function* logLines(
  response: http.IncomingMessage,
  options: LogOptions,
  context: string,
): AsyncGenerator<LogLine> {
  try {
    for await (const frame of demultiplex(response, MAX_LINE_BYTES)) {
      if (frame.stream === "stdin") continue;
      const stream: Exclude<StreamName, "stdin"> = frame.stream;
      const text = frame.data.toString("utf8");
      for (const line of text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n")) {
        // Lines already read stay unreported once the caller has stopped.
        if (options.signal?.aborted) return;
        if (!options.timestamps) {
          yield { stream, time: null, text: line };
          continue;
        }
        const space = line.indexOf(" ");
        const time = space === -1 ? null : goTime(line.slice(0, space));
        yield { stream, time, text: time === null ? line : line.slice(space + 1) };
      }
    }
  } catch (error) {
    if (options.signal?.aborted) return;
    throw inContext(error, context);
  } finally {
    response.destroy();
  }
}

async function* eventStream(
  response: http.IncomingMessage,
  labels: Readonly<Record<string, string>>,
  signal: AbortSignal | undefined,
  context: string,
): AsyncGenerator<PodmanEvent> {
  const d = new Decoder(context);
  try {
    for await (const line of readLines(response, MAX_LINE_BYTES)) {
      if (signal?.aborted) return;
      if (line.trim() === "") continue;
      const event = d.object(parseJson(line, d), "event");
      const actor = d.optionalObject(event, "Actor") ?? {};
      const attributes = d.stringMap(actor, "Attributes");
      if (!hasLabels(attributes, labels)) continue;
      const action = d.string(event, "Action") || d.string(event, "status");
      const exitCode = attributes["containerExitCode"];
      const nanos = d.number(event, "timeNano");
      yield {
        type: d.string(event, "Type"),
        action,
        id: d.string(actor, "ID") || d.string(event, "id"),
        name: attributes["name"] ?? null,
        // timeNano exceeds 2^53: fine to the microsecond, which is enough here.
        time: new Date(nanos > 0 ? nanos / 1e6 : d.number(event, "time") * 1000),
        attributes,
        exitCode: action.endsWith("died") && exitCode !== undefined ? Number(exitCode) : null,
      };
    }
  } catch (error) {
    if (signal?.aborted) return;
    throw inContext(error, context);
  } finally {
    response.destroy();
  }
}

function networkInfo(value: unknown, d: Decoder): NetworkInfo {
  const n = d.object(value, "network");
  return {
    id: d.string(n, "id"),
    name: d.string(n, "name"),
    driver: d.string(n, "driver"),
    internal: d.boolean(n, "internal"),
    dnsEnabled: d.boolean(n, "dns_enabled"),
    labels: d.stringMap(n, "labels"),
    subnets: d.array(n["subnets"], "subnets").map((item) => {
      const subnet = d.object(item, "subnet");
      return { subnet: d.string(subnet, "subnet"), gateway: d.string(subnet, "gateway") };
    }),
  };
}

function healthState(health: JsonObject, d: Decoder): HealthState {
  return {
    status: d.string(health, "Status"),
    failingStreak: d.number(health, "FailingStreak"),
    log: d.array(health["Log"], "Log").map((item) => {
      const entry = d.object(item, "health log entry");
      return {
        start: goTime(d.string(entry, "Start")),
        end: goTime(d.string(entry, "End")),
        exitCode: d.number(entry, "ExitCode"),
        output: d.string(entry, "Output"),
      };
    }),
  };
}

/** Names go into URL paths: only what libpod itself accepts as a name or id. */
function checkName(name: string, context: string): string {
  if (!PODMAN_NAME.test(name)) {
    throw new TownError("invalid_argument", `podman: ${context}: "${name}" is not a valid name`);
  }
  return name;
}

function namePath(name: string, context: string): string {
  return encodeURIComponent(checkName(name, context));
}

function checkReference(reference: string, context: string): string {
  if (reference.length > MAX_REFERENCE_LENGTH || !IMAGE_REFERENCE.test(reference)) {
    throw new TownError(
      "invalid_argument",
      `podman: ${context}: "${reference}" is not an image reference`,
    );
  }
  return reference;
}

function imagePath(reference: string, context: string): string {
  return encodeURIComponent(checkReference(reference, context));
}

function stopTimeout(options: StopOptions, context: string): number {
  const timeout = options.timeoutSeconds ?? STOP_TIMEOUT_SECONDS;
  if (!Number.isInteger(timeout) || timeout < 0 || timeout > 3600) {
    throw new TownError(
      "invalid_argument",
      `podman: ${context}: the timeout must be 0-3600 seconds`,
    );
  }
  return timeout;
}

/**
 * Libpod ORs several label filters for events (and ANDs them for lists), so
 * every answer is checked here as well: all labels must match.
 */
function hasLabels(
  present: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(wanted).every(([key, value]) => present[key] === value);
}

function labelFilters(labels: Readonly<Record<string, string>>): string {
  const list = Object.entries(labels).map(([key, value]) => `${key}=${value}`);
  return JSON.stringify(list.length === 0 ? {} : { label: list });
}

function unixSeconds(date: Date | undefined): string | undefined {
  return date === undefined ? undefined : (date.getTime() / 1000).toFixed(3);
}

function parseJson(line: string, d: Decoder): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return d.fail("a line is not JSON");
  }
}

/** Registry failures, told apart by libpod's message (the only place it says). */
function pullError(context: string, message: string): TownError {
  if (
    /no such host|connection refused|i\/o timeout|network is unreachable|TLS handshake|dial tcp/.test(
      message,
    )
  ) {
    return new TownError(
      "unavailable",
      `podman: ${context}: the registry cannot be reached: ${message}`,
    );
  }
  if (/manifest unknown|name unknown|not found|does not exist/i.test(message)) {
    return new TownError(
      "not_found",
      `podman: ${context}: the registry has no such image: ${message}`,
    );
  }
  if (/unauthorized|authentication required|denied/i.test(message)) {
    return new TownError(
      "forbidden",
      `podman: ${context}: the registry refused access: ${message}`,
    );
  }
  return new TownError("io", `podman: ${context}: ${message}`);
}

/** Adds the call's context to a stream parser's error (transport errors have it already). */
function inContext(error: unknown, context: string): TownError {
  if (error instanceof TownError) {
    return error.message.startsWith("podman: ") ? error : error.withContext(`podman: ${context}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TownError("unavailable", `podman: ${context}: ${message}`, { cause: error });
}
