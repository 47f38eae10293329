/**
 * The Podman API service: answers `_ping` on the socket, or is started as
 * `podman system service` detached from this process (a ManagedProcess, see
 * system/supervisor.ts), so that it and the containers it supervises outlive
 * the daemon. It is started when missing and then left to itself, not
 * watched: one answering on the socket may be the host's own.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { TownError } from "@townos/format";
import { ManagedProcess, type ProcessFailure } from "../../system/supervisor.js";
import type { LibpodClient } from "./libpod-client.js";

export interface ServiceOptions {
  /** The podman program `ensure` starts; default `podman` from PATH. */
  podmanPath?: string;
  /** How long `ensure` waits for a service it started to answer; default 15 s. */
  serviceStartTimeoutMs?: number;
  /** File the output of a service `ensure` starts is appended to; default: discarded. */
  serviceLogPath?: string;
}

export interface ServiceState {
  /** True when this call started the service (it was not answering). */
  started: boolean;
  /** Process id of the service this call started, else null. */
  pid: number | null;
}

const PING_TIMEOUT_MS = 2_000;

export class PodmanService {
  private starting: Promise<ServiceState> | undefined;

  constructor(
    private readonly client: LibpodClient,
    private readonly options: ServiceOptions = {},
  ) {}

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
  ensure(): Promise<ServiceState> {
    this.starting ??= this.start().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async start(): Promise<ServiceState> {
    if (await this.ping()) return { started: false, pid: null };
    const socket = this.client.socketPath;
    const logPath = this.options.serviceLogPath;
    const service = new ManagedProcess({
      name: "podman",
      ...(logPath === undefined ? {} : { log: { path: logPath, mode: 0o644 } }),
      launch: async () => {
        await mkdir(dirname(socket), { recursive: true });
        const program = this.options.podmanPath ?? "podman";
        return { argv: [program, "system", "service", "--time=0", `unix://${socket}`] };
      },
      isOurs: (argv) => argv.includes(`unix://${socket}`),
      ready: () => this.ping(),
      startTimeoutMs: this.options.serviceStartTimeoutMs ?? 15_000,
      describe: describeFailure,
    });
    const { state, pid, lastError } = await service.start();
    // Not watched: a failed start is not retried, and a started service is left running.
    service.detach();
    if (state !== "running" || pid === null)
      throw new TownError(
        "unavailable",
        `podman: start service on ${socket}: ${lastError?.message ?? "it did not start"}`,
      );
    return { started: true, pid };
  }
}

function describeFailure(failure: ProcessFailure): string {
  switch (failure.kind) {
    case "launch":
      return failure.error.message;
    case "exited-early":
    case "died":
      return `it exited (${failure.exit.signal ?? `code ${String(failure.exit.code)}`})`;
    case "timeout":
      return "it did not answer in time";
  }
}
