/** Containers: create, start, stop, kill, remove, inspect, list, wait, copy out, healthcheck. */
import { TownError } from "@townos/format";
import type { SpecGenerator } from "./container-spec.js";
import { Decoder, goTime, unixTime, type JsonObject } from "./decode.js";
import type { LibpodClient, LibpodRequest } from "./libpod-client.js";
import { checkName, hasLabels, labelFilters, namePath } from "./params.js";
import type { HealthState, WorkloadInfo, WorkloadSummary } from "../workload.js";

export interface StopOptions {
  /** Seconds between SIGTERM (or the image's stop signal) and SIGKILL; default 10. */
  timeoutSeconds?: number;
}

const WAIT_TIMEOUT_MS = 10 * 60_000;
/** Podman's default stop timeout; the request may take that long and then some. */
const STOP_TIMEOUT_SECONDS = 10;
const STOP_MARGIN_MS = 30_000;

/** Creates (does not start) a container; returns its id. `conflict` when the name is taken. */
export async function createContainer(client: LibpodClient, spec: SpecGenerator): Promise<string> {
  const context = `create container ${spec.name}`;
  checkName(spec.name, context);
  const { body } = await client.request({
    method: "POST",
    path: "/containers/create",
    body: spec,
    context,
  });
  const d = new Decoder(context);
  return d.string(d.object(body, "answer"), "Id");
}

/** True when this call started it, false when it was running already. */
export async function startContainer(client: LibpodClient, name: string): Promise<boolean> {
  const context = `start container ${name}`;
  const { status } = await client.request({
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
export async function stopContainer(
  client: LibpodClient,
  name: string,
  options: StopOptions = {},
): Promise<boolean> {
  const context = `stop container ${name}`;
  const timeout = stopTimeout(options, context);
  const { status } = await client.request({
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
export async function killContainer(
  client: LibpodClient,
  name: string,
  signal = "SIGKILL",
): Promise<boolean> {
  const context = `kill container ${name}`;
  if (!/^(SIG)?[A-Z0-9+-]{1,16}$/.test(signal)) {
    throw new TownError("invalid_argument", `podman: ${context}: "${signal}" is not a signal`);
  }
  try {
    const { status } = await client.request({
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
export async function removeContainer(
  client: LibpodClient,
  name: string,
  options: StopOptions = {},
): Promise<boolean> {
  const context = `remove container ${name}`;
  const timeout = stopTimeout(options, context);
  const { status } = await client.request({
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
export async function inspectContainer(
  client: LibpodClient,
  name: string,
): Promise<WorkloadInfo | undefined> {
  const context = `inspect container ${name}`;
  const { status, body } = await client.request({
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
    addresses: networkAddresses(d, d.optionalObject(root, "NetworkSettings")),
  };
}

/** `NetworkSettings.Networks[name].IPAddress`, for the networks that gave one (none when stopped). */
function networkAddresses(d: Decoder, settings: JsonObject | undefined): Record<string, string> {
  const networks = settings && d.optionalObject(settings, "Networks");
  const entries = Object.entries(networks ?? {}).map(([name, value]): [string, string] => [
    name,
    d.string(d.object(value, `network ${name}`), "IPAddress"),
  ]);
  return Object.fromEntries(entries.filter(([, address]) => address !== ""));
}

/** All containers (running or not) carrying all the given labels. */
export async function listContainers(
  client: LibpodClient,
  labels: Readonly<Record<string, string>> = {},
): Promise<WorkloadSummary[]> {
  const context = "list containers";
  const { body } = await client.request({
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
        exitedAt: unixTime(d.number(c, "ExitedAt")),
        labels: d.stringMap(c, "Labels"),
      };
    })
    .filter((container) => hasLabels(container.labels, labels));
}

/** Waits until the container is no longer running and returns its exit code. */
export async function waitContainer(
  client: LibpodClient,
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
  const { body } = await client.request(request);
  if (typeof body !== "number") return new Decoder(context).fail("the exit code is not a number");
  return body;
}

/**
 * Streams the contents of a directory inside a container (created or
 * running) as an uncompressed tar whose entries are relative to that
 * directory: how `archives` copy a directory out of an image. The caller
 * consumes or destroys the stream; aborting `signal` ends it.
 */
export async function copyFromContainer(
  client: LibpodClient,
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
  return client.stream(request);
}

/**
 * Runs the container's healthcheck now and returns the result. Podman
 * schedules healthchecks with systemd timers; without systemd nothing
 * runs them, so the reconciler calls this on its own schedule.
 */
export async function runHealthcheck(client: LibpodClient, name: string): Promise<HealthState> {
  const context = `healthcheck of container ${name}`;
  const { body } = await client.request({
    method: "GET",
    path: `/containers/${namePath(name, context)}/healthcheck`,
    context,
  });
  const d = new Decoder(context);
  return healthState(d.object(body, "health"), d);
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
