/**
 * The Podman API service: answers `_ping` on the socket, or is started as
 * `podman system service` detached from this process, so that it and the
 * containers it supervises outlive the daemon.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TownError } from "@townos/format";
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
}
