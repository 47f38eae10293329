/**
 * An in-memory container runtime for log and health tests: containers with
 * a log each (times to the millisecond, reported in whole seconds as Podman
 * 4.3 does), follow streams that wait for new lines, and a count of the
 * streams open so tests can assert that none leaks.
 */
import { TownError } from "@townos/format";
import type { MonitorRuntime } from "../../src/apps/monitor.js";
import type {
  HealthState,
  LogLine,
  LogOptions,
  WorkloadInfo,
  WorkloadSummary,
} from "../../src/runtime/workload.js";

interface FakeLine {
  stream: "stdout" | "stderr";
  time: number;
  text: string;
}

interface FakeContainer {
  id: string;
  created: number;
  startedAt: number | null;
  running: boolean;
  lines: FakeLine[];
  wake: Set<() => void>;
}

export class FakeLogRuntime implements MonitorRuntime {
  private readonly containers = new Map<string, FakeContainer>();
  private ids = 0;
  /** Log streams open right now. */
  open = 0;
  /** Every logs() call, for tests that care how the history was read. */
  readonly calls: { name: string; options: LogOptions }[] = [];

  constructor(private readonly clock: () => number) {}

  /** Creates (or recreates, with a new id and an empty log) a running container. */
  create(name: string): void {
    this.stop(name);
    this.ids += 1;
    this.containers.set(name, {
      id: `id${this.ids}`,
      created: this.clock(),
      startedAt: this.clock(),
      running: true,
      lines: [],
      wake: new Set(),
    });
  }

  write(name: string, text: string, stream: "stdout" | "stderr" = "stdout", time?: number): void {
    const container = this.get(name);
    container.lines.push({ stream, time: time ?? this.clock(), text });
    this.wake(container);
  }

  stop(name: string): void {
    const container = this.containers.get(name);
    if (!container) return;
    container.running = false;
    this.wake(container);
  }

  start(name: string): void {
    const container = this.get(name);
    container.running = true;
    container.startedAt = this.clock();
  }

  remove(name: string): void {
    this.stop(name);
    this.containers.delete(name);
  }

  inspect(name: string): Promise<WorkloadInfo | undefined> {
    const c = this.containers.get(name);
    if (!c) return Promise.resolve(undefined);
    return Promise.resolve({
      id: c.id,
      name,
      image: "localhost/test:latest",
      imageId: "image",
      created: new Date(c.created),
      labels: {},
      state: {
        status: c.running ? "running" : "exited",
        running: c.running,
        exitCode: 0,
        pid: c.running ? 1 : 0,
        startedAt: c.startedAt === null ? null : new Date(c.startedAt),
        finishedAt: null,
        oomKilled: false,
        error: "",
      },
      restartCount: 0,
      restartPolicy: "no",
      healthcheck: null,
      health: null,
    });
  }

  /** Its containers have no healthcheck and no labels: the health monitor leaves them alone. */
  list(): Promise<WorkloadSummary[]> {
    return Promise.resolve([]);
  }

  runHealthcheck(name: string): Promise<HealthState> {
    return Promise.reject(new TownError("conflict", `${name} has no defined healthcheck`));
  }

  logs(name: string, options: LogOptions): Promise<AsyncGenerator<LogLine>> {
    this.calls.push({ name, options });
    const container = this.containers.get(name);
    if (!container) {
      return Promise.reject(
        new TownError("not_found", `podman: logs of container ${name}: no such container`),
      );
    }
    return Promise.resolve(this.stream(container, options));
  }

  private async *stream(c: FakeContainer, options: LogOptions): AsyncGenerator<LogLine> {
    const { signal } = options;
    const since = options.since?.getTime();
    const until = options.until?.getTime();
    this.open += 1;
    try {
      let next = 0;
      for (;;) {
        while (next < c.lines.length) {
          const line = c.lines[next++];
          if (!line) break;
          if (since !== undefined && line.time < since) continue;
          if (until !== undefined && line.time > until) continue;
          if (signal?.aborted) return;
          yield {
            stream: line.stream,
            time: options.timestamps ? new Date(Math.floor(line.time / 1000) * 1000) : null,
            text: line.text,
          };
        }
        if (!options.follow || !c.running || signal?.aborted) return;
        await new Promise<void>((resolve) => {
          c.wake.add(resolve);
          signal?.addEventListener("abort", () => {
            resolve();
          });
        });
      }
    } finally {
      this.open -= 1;
    }
  }

  private get(name: string): FakeContainer {
    const container = this.containers.get(name);
    if (!container) throw new Error(`no container ${name}`);
    return container;
  }

  private wake(container: FakeContainer): void {
    for (const resolve of container.wake) resolve();
    container.wake.clear();
  }
}
