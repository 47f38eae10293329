/**
 * Logs and health of installed apps, as the API serves them. Answers
 * `unavailable` until a container runtime is attached (like Apps).
 */
import type { LogEvent, LogPage } from "@townos/api";
import { TownError } from "@townos/format";
import type { Clock } from "../clock.js";
import type { InstallRecord } from "../store/installs.js";
import {
  containersHealth,
  HealthMonitor,
  type ContainerHealth,
  type HealthRuntime,
} from "./health.js";
import {
  appContainers,
  DEFAULT_LOG_LIMITS,
  followLogs,
  readLogPage,
  type AppContainer,
  type LogQuery,
  type LogRuntime,
} from "./logs.js";

export interface AppHealth {
  repo: string;
  name: string;
  enabled: boolean;
  /** Whether it should be running now (false once somebody stopped it). */
  running: boolean;
  /** One per container of the app, dependencies first. */
  containers: ContainerHealth[];
}

export interface AppMonitorOptions {
  installs: { get(repo: string, name: string): InstallRecord | undefined; list(): InstallRecord[] };
  clock: Clock;
}

export type MonitorRuntime = LogRuntime & HealthRuntime;

export class AppMonitor {
  private attached: { runtime: MonitorRuntime; health: HealthMonitor } | undefined;
  private unavailableReason = "the container runtime is starting";

  constructor(private readonly options: AppMonitorOptions) {}

  /** Says why logs and health cannot be read (Podman missing, say). */
  setUnavailable(reason: string): void {
    this.unavailableReason = reason;
  }

  /** Starts the health monitor on this runtime; logs and health answer from now on. */
  attach(runtime: MonitorRuntime, health: { concurrency?: number; scanMs?: number } = {}): void {
    const monitor = new HealthMonitor({
      runtime,
      installs: this.options.installs,
      clock: this.options.clock,
      ...health,
    });
    monitor.start();
    this.attached = { runtime, health: monitor };
  }

  async stop(): Promise<void> {
    await this.attached?.health.stop();
  }

  /** A page of the app's logs (or one instance's), newest last. @throws `not_found`, `unavailable`, `invalid_argument` */
  async logs(
    repo: string,
    name: string,
    query: LogQuery & { instance?: string },
  ): Promise<LogPage> {
    const { runtime } = this.runtime();
    const { containers } = this.app(repo, name, query.instance);
    return readLogPage(runtime, containers, query, this.options.clock(), DEFAULT_LOG_LIMITS);
  }

  /**
   * Checks the app and returns its live log events (see `followLogs`): the
   * checks fail here, before anything is streamed.
   * @throws `not_found`, `unavailable`
   */
  follow(
    repo: string,
    name: string,
    options: { instance?: string; search?: string; tail: number; signal: AbortSignal },
  ): AsyncGenerator<LogEvent> {
    const { runtime } = this.runtime();
    const { containers } = this.app(repo, name, options.instance);
    return followLogs(runtime, containers, {
      tail: options.tail,
      ...(options.search === undefined ? {} : { search: options.search }),
      signal: options.signal,
      now: this.options.clock,
    });
  }

  /** State, exit code, restarts and healthcheck of each container. @throws `not_found`, `unavailable` */
  async health(repo: string, name: string): Promise<AppHealth> {
    const { runtime, health } = this.runtime();
    const { install, containers } = this.app(repo, name);
    return {
      repo,
      name,
      enabled: install.enabled,
      running: install.running,
      containers: await containersHealth(runtime, containers, {
        shouldRun: install.running,
        monitor: health,
        now: this.options.clock(),
      }),
    };
  }

  private app(
    repo: string,
    name: string,
    instance?: string,
  ): { install: InstallRecord; containers: AppContainer[] } {
    const install = this.options.installs.get(repo, name);
    if (!install) throw new TownError("not_found", `${repo}/${name} is not installed`);
    return { install, containers: appContainers(install.plan, instance) };
  }

  private runtime(): NonNullable<AppMonitor["attached"]> {
    if (!this.attached) {
      throw new TownError("unavailable", `apps cannot run: ${this.unavailableReason}`, {
        retryAfter: 5,
      });
    }
    return this.attached;
  }
}
