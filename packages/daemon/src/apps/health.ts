/**
 * Container health: what each container of an app is doing (state, exit
 * code, restarts) and the result of its image's healthcheck.
 *
 * Podman schedules healthchecks with systemd timers; without systemd (as on
 * these boxes) nothing runs them, so the HealthMonitor does: every running
 * container of an installed app whose image defines a healthcheck is probed
 * on that healthcheck's interval. Podman itself applies the start period and
 * retries (the failing streak it keeps turns the status `unhealthy`); the
 * monitor enforces the timeout, which Podman only notes afterwards.
 */
import type { Clock } from "../clock.js";
import type { WorkloadInfo, WorkloadRuntime } from "../runtime/workload.js";
import type { InstallRecord } from "../store/installs.js";
import type { AppContainer } from "./logs.js";
import { LABEL_APP } from "./labels.js";

/** What health reads from the runtime: listings, inspection, and running a healthcheck (whose result inspect then shows). */
export type HealthRuntime = Pick<WorkloadRuntime, "list" | "inspect" | "runHealthcheck">;

export type HealthStatus = "healthy" | "unhealthy" | "starting" | "none";

/** The latest probe of one container, as the monitor saw it. */
export interface ProbeResult {
  containerId: string;
  status: Exclude<HealthStatus, "none">;
  failingStreak: number;
  /** The probe's output (bounded), or why it could not run. */
  output: string;
  exitCode: number | null;
  /** When the probe ended, ms since the epoch. */
  at: number;
}

export interface HealthMonitorOptions {
  runtime: HealthRuntime;
  installs: { list(): InstallRecord[] };
  clock: Clock;
  /** Probes running at once; default 2. */
  concurrency?: number;
  /** How often running containers are looked for; default 5 s. */
  scanMs?: number;
  /** Characters kept of a probe's output; default 4096. */
  maxOutputLength?: number;
  /** Time given to Podman on top of a healthcheck's own timeout before the probe counts as failed; default 5 s. */
  timeoutMarginMs?: number;
}

interface Scheduled {
  name: string;
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  due: number;
  running: boolean;
}

const TICK_MS = 500;

export class HealthMonitor {
  /** By container id: a recreated container starts afresh. */
  private readonly scheduled = new Map<string, Scheduled>();
  private readonly results = new Map<string, ProbeResult>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private nextScan = 0;
  private scanning: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: HealthMonitorOptions) {}

  /** Starts probing in the background. */
  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      void this.tick().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, TICK_MS);
        this.timer.unref();
      });
    };
    tick();
  }

  /** Stops probing and waits for probes under way (each bounded by its timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.scanning;
    await Promise.all(this.inFlight);
  }

  /** The latest probe the monitor made of this container, if any. */
  latest(containerId: string): ProbeResult | undefined {
    return this.results.get(containerId);
  }

  /** When the next probe of this container is due, if it is scheduled. */
  nextProbe(containerId: string): number | undefined {
    return this.scheduled.get(containerId)?.due;
  }

  /** Scans when due and starts due probes; the timer calls it, tests call it directly. */
  async tick(): Promise<void> {
    if (this.options.clock() >= this.nextScan) {
      this.scanning = this.scan().catch(() => {
        // Podman unreachable: the next scan tries again; probes already scheduled go on.
      });
      await this.scanning;
      this.scanning = undefined;
      this.nextScan = this.options.clock() + (this.options.scanMs ?? 5_000);
    }
    this.startDueProbes();
  }

  /** Waits for the probes started so far: for tests. */
  async settled(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Finds the running containers of installed apps with a healthcheck; forgets the others. */
  private async scan(): Promise<void> {
    const { runtime, installs, clock } = this.options;
    const installed = new Set(installs.list().map((i) => `${i.repo}/${i.name}`));
    const running = (await runtime.list({})).filter((c) => {
      const app = c.labels[LABEL_APP];
      return c.state === "running" && app !== undefined && installed.has(app);
    });
    const ids = new Set(running.map((c) => c.id));
    for (const id of this.scheduled.keys()) if (!ids.has(id)) this.scheduled.delete(id);
    for (const id of this.results.keys()) if (!ids.has(id)) this.results.delete(id);
    for (const container of running) {
      if (this.scheduled.has(container.id)) continue;
      const info = await runtime.inspect(container.id);
      const check = info?.healthcheck;
      if (!info || !check) {
        // Remembered without a schedule, so it is not inspected again on every scan.
        this.scheduled.set(container.id, {
          name: container.name,
          intervalMs: Infinity,
          timeoutMs: 0,
          retries: 0,
          due: Infinity,
          running: false,
        });
        continue;
      }
      const started = info.state.startedAt?.getTime() ?? clock();
      this.scheduled.set(container.id, {
        name: container.name,
        intervalMs: check.intervalMs,
        timeoutMs: check.timeoutMs,
        retries: check.retries,
        // As Docker does: the first probe one interval after the start.
        due: started + check.intervalMs,
        running: false,
      });
    }
  }

  private startDueProbes(): void {
    const concurrency = this.options.concurrency ?? 2;
    const now = this.options.clock();
    const due = [...this.scheduled.entries()]
      .filter(([, s]) => !s.running && s.due <= now)
      .sort(([, a], [, b]) => a.due - b.due);
    for (const [id, scheduled] of due) {
      if (this.inFlight.size >= concurrency) return;
      scheduled.running = true;
      const probe = this.probe(id, scheduled).finally(() => {
        scheduled.running = false;
        scheduled.due = this.options.clock() + scheduled.intervalMs;
        this.inFlight.delete(probe);
      });
      this.inFlight.add(probe);
    }
  }

  private async probe(id: string, scheduled: Scheduled): Promise<void> {
    const { runtime, clock } = this.options;
    const max = this.options.maxOutputLength ?? 4096;
    const limit = scheduled.timeoutMs + (this.options.timeoutMarginMs ?? 5_000);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => {
        resolve("timeout");
      }, limit);
    });
    const previous = this.results.get(id);
    try {
      // The run's own answer has neither the streak nor the output: Podman's record has both.
      const outcome = await Promise.race([
        runtime.runHealthcheck(id).then(() => runtime.inspect(id)),
        timedOut,
      ]);
      if (outcome === "timeout") {
        // Podman would record this only once the command ends, if ever: count it here.
        const streak = (previous?.failingStreak ?? 0) + 1;
        this.results.set(id, {
          containerId: id,
          status: streak >= scheduled.retries ? "unhealthy" : (previous?.status ?? "starting"),
          failingStreak: streak,
          output: `the healthcheck did not finish within ${limit} ms`,
          exitCode: null,
          at: clock(),
        });
        return;
      }
      const health = outcome?.health;
      if (!health) throw new Error("the container is gone");
      const last = health.log.at(-1);
      this.results.set(id, {
        containerId: id,
        status: healthStatus(health.status),
        failingStreak: health.failingStreak,
        output: (last?.output ?? "").slice(0, max),
        exitCode: last?.exitCode ?? null,
        at: clock(),
      });
    } catch (error) {
      // Stopped or removed between the scan and the probe: the next scan sorts it out.
      this.results.set(id, {
        containerId: id,
        status: previous?.status ?? "starting",
        failingStreak: previous?.failingStreak ?? 0,
        output:
          `the healthcheck could not run: ${error instanceof Error ? error.message : String(error)}`.slice(
            0,
            max,
          ),
        exitCode: null,
        at: clock(),
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

function healthStatus(status: string): ProbeResult["status"] {
  return status === "healthy" || status === "unhealthy" ? status : "starting";
}

export type ContainerState = "running" | "paused" | "restarting" | "exited" | "created" | "missing";

export interface ContainerHealth {
  container: string;
  instance: string;
  state: ContainerState;
  /** Exit code of the last run; null while it never ended or runs. */
  exitCode: number | null;
  restartCount: number;
  /** Ms since the epoch, or null. */
  startedAt: number | null;
  finishedAt: number | null;
  oomKilled: boolean;
  /** Why the last start failed, or null. */
  error: string | null;
  health: {
    status: HealthStatus;
    failingStreak: number;
    /** Output of the last probe (bounded), or null when none ran. */
    lastOutput: string | null;
    lastExitCode: number | null;
    lastCheckAt: number | null;
    nextCheckAt: number | null;
  };
}

/** A stopped container whose policy restarts it counts as restarting for this long after it ended. */
const RESTART_GRACE_MS = 10_000;
const MAX_OUTPUT_LENGTH = 4096;

/**
 * The health of each of an app's containers, from one inspect each plus
 * the monitor's latest probes. `shouldRun`: whether the app should be
 * running (the stopped containers of a stopped app are never "restarting").
 */
export async function containersHealth(
  runtime: Pick<HealthRuntime, "inspect">,
  containers: readonly AppContainer[],
  options: { shouldRun: boolean; monitor: HealthMonitor | undefined; now: number },
): Promise<ContainerHealth[]> {
  return Promise.all(
    containers.map(async (container) => {
      const info = await runtime.inspect(container.name);
      return info
        ? describe(container, info, options)
        : {
            container: container.name,
            instance: container.instance,
            state: "missing" as const,
            exitCode: null,
            restartCount: 0,
            startedAt: null,
            finishedAt: null,
            oomKilled: false,
            error: null,
            health: noProbe("none"),
          };
    }),
  );
}

function describe(
  container: AppContainer,
  info: WorkloadInfo,
  options: { shouldRun: boolean; monitor: HealthMonitor | undefined; now: number },
): ContainerHealth {
  const { state } = info;
  const finished = state.finishedAt?.getTime() ?? null;
  const ended = !state.running && finished !== null && state.status !== "created";
  return {
    container: container.name,
    instance: container.instance,
    state: containerState(info, options.shouldRun, options.now),
    exitCode: ended ? state.exitCode : null,
    restartCount: info.restartCount,
    startedAt: state.startedAt?.getTime() ?? null,
    finishedAt: finished,
    oomKilled: state.oomKilled,
    error: state.error === "" ? null : state.error,
    health: probeView(info, options.monitor),
  };
}

function containerState(info: WorkloadInfo, shouldRun: boolean, now: number): ContainerState {
  const { status, exitCode, finishedAt } = info.state;
  if (info.state.running) return status === "paused" ? "paused" : "running";
  if (status === "created" || status === "configured" || status === "initialized") {
    return "created";
  }
  // Libpod has no restarting state (it restarts at once): a fresh exit its policy will restart.
  const policy = info.restartPolicy;
  const restarts =
    policy === "always" ||
    policy === "unless-stopped" ||
    (policy === "on-failure" && exitCode !== 0);
  const recent = finishedAt !== null && now - finishedAt.getTime() < RESTART_GRACE_MS;
  return shouldRun && restarts && recent ? "restarting" : "exited";
}

function probeView(
  info: WorkloadInfo,
  monitor: HealthMonitor | undefined,
): ContainerHealth["health"] {
  if (!info.healthcheck) return noProbe("none");
  const next = monitor?.nextProbe(info.id);
  const nextCheckAt = next !== undefined && Number.isFinite(next) ? next : null;
  const probe = monitor?.latest(info.id);
  if (probe) {
    return {
      status: probe.status,
      failingStreak: probe.failingStreak,
      lastOutput: probe.output,
      lastExitCode: probe.exitCode,
      lastCheckAt: probe.at,
      nextCheckAt,
    };
  }
  // Not probed by this daemon yet: what Podman recorded (from before a restart of the daemon, say).
  const last = info.health?.log.at(-1);
  return {
    status: healthStatus(info.health?.status ?? "starting"),
    failingStreak: info.health?.failingStreak ?? 0,
    lastOutput: last ? last.output.slice(0, MAX_OUTPUT_LENGTH) : null,
    lastExitCode: last ? last.exitCode : null,
    lastCheckAt: last?.end?.getTime() ?? null,
    nextCheckAt,
  };
}

function noProbe(status: HealthStatus): ContainerHealth["health"] {
  return {
    status,
    failingStreak: 0,
    lastOutput: null,
    lastExitCode: null,
    lastCheckAt: null,
    nextCheckAt: null,
  };
}
