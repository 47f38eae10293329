/**
 * Per-app figures the daemon exports at its /metrics (issue 15's series
 * names): whether each app runs, its containers' restarts, CPU time, memory,
 * network and block I/O, and its volumes' usage against their quota.
 *
 * Figures are read when /metrics is scraped, not on a timer, and kept for a
 * while (`statsTtlMs`, `volumeTtlMs`) so that several scrapes at once, or
 * Prometheus and a person's curl, cost one round of runtime calls: one
 * listing of this box's app workloads, then an inspect (restarts) and for
 * running ones a stats sample each, a few at a time. A workload that fails
 * its inspect or stats leaves out just its series; a runtime that cannot be
 * reached leaves out every app series (the daemon's own metrics still
 * answer), so a gap in the charts means "not known", never zero.
 *
 * Labels: `repo` and `app` (the install, as in the `town.app` label) on
 * every series, `container` (the workload's name) on per-container ones,
 * `volume` (the storage volume's full name, unique on the box) on volume
 * ones. Volumes of an app's dependencies (`pkg.<repo>.<app>--<key>.<volume>`)
 * count for the installed app. A volume without a quota has no
 * `town_volume_quota_bytes` series (the charts divide by `quota > 0`).
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { appFromLabel, LABEL_APP, LABEL_BOX } from "../apps/labels.js";
import type { Clock } from "../clock.js";
import type { HostRuntime, WorkloadStats, WorkloadSummary } from "../runtime/workload.js";
import type { StorageDriver } from "../storage/driver.js";
import { parseVolumeName } from "../storage/names.js";

export const DEFAULT_STATS_TTL_MS = 5_000;
export const DEFAULT_VOLUME_TTL_MS = 60_000;
/** Apps exported at most (sorted by `repo/app`): bounds the series a scrape returns. */
export const DEFAULT_MAX_APPS = 500;
/** Runtime calls in flight at once during a round: Podman serves them one by one anyway. */
const STATS_CONCURRENCY = 8;
/** Volume measurements at once: the directory driver walks trees, which is disk-bound. */
const VOLUME_CONCURRENCY = 2;

/** What the metrics need of storage. */
export type MetricsStorage = Pick<StorageDriver, "list" | "usage" | "attributes">;

export interface AppMetricsOptions {
  /** The daemon's registry (`Metrics.registry`). */
  registry: Registry;
  runtime: HostRuntime;
  /** Absent: no volume series. */
  storage?: MetricsStorage;
  /** This box's `town.box` label value. */
  box: string;
  clock?: Clock;
  statsTtlMs?: number;
  volumeTtlMs?: number;
  maxApps?: number;
}

interface AppRow {
  repo: string;
  app: string;
}

interface AppFigures extends AppRow {
  up: boolean;
}

interface ContainerFigures extends AppRow {
  container: string;
  /** Undefined when its inspect failed. */
  restarts: number | undefined;
  /** Undefined when it does not run or its sample failed. */
  stats: WorkloadStats | undefined;
}

interface AppsSample {
  apps: AppFigures[];
  containers: ContainerFigures[];
}

interface VolumeFigures extends AppRow {
  volume: string;
  usedBytes: number;
  quota: number | null;
}

type Row = AppRow & { container?: string; volume?: string };

interface SeriesSpec<T extends Row> {
  type: "counter" | "gauge";
  name: string;
  help: string;
  labelNames: readonly string[];
  rows: () => Promise<readonly T[]>;
  /** Undefined: no series for this row. */
  value: (row: T) => number | undefined;
}

const CONTAINER_LABELS = ["repo", "app", "container"] as const;
const VOLUME_LABELS = ["repo", "app", "volume"] as const;

/** Per-container series read from a stats sample. */
const STATS_SERIES: readonly {
  type: "counter" | "gauge";
  name: string;
  help: string;
  value: (stats: WorkloadStats) => number;
}[] = [
  {
    type: "counter",
    name: "town_app_cpu_seconds_total",
    help: "CPU time an app's container has used since it started, seconds",
    value: (s) => s.cpuSeconds,
  },
  {
    type: "gauge",
    name: "town_app_memory_bytes",
    help: "Memory an app's container uses, bytes",
    value: (s) => s.memoryBytes,
  },
  {
    type: "counter",
    name: "town_app_network_receive_bytes_total",
    help: "Bytes an app's container has received since it started",
    value: (s) => s.netInputBytes,
  },
  {
    type: "counter",
    name: "town_app_network_transmit_bytes_total",
    help: "Bytes an app's container has sent since it started",
    value: (s) => s.netOutputBytes,
  },
  {
    type: "counter",
    name: "town_app_block_read_bytes_total",
    help: "Bytes an app's container has read from block devices since it started",
    value: (s) => s.blockInputBytes,
  },
  {
    type: "counter",
    name: "town_app_block_write_bytes_total",
    help: "Bytes an app's container has written to block devices since it started",
    value: (s) => s.blockOutputBytes,
  },
];

/** Registers the per-app series with `registry`; `close` takes them out again. */
export class AppMetrics {
  private readonly registry: Registry;
  private readonly names: string[] = [];
  private readonly apps: Cached<AppsSample>;
  private readonly volumes: Cached<VolumeFigures[]>;
  private readonly maxApps: number;

  constructor(private readonly options: AppMetricsOptions) {
    this.registry = options.registry;
    this.maxApps = options.maxApps ?? DEFAULT_MAX_APPS;
    const clock = options.clock ?? Date.now;
    this.apps = new Cached(options.statsTtlMs ?? DEFAULT_STATS_TTL_MS, clock, () =>
      this.readApps(),
    );
    this.volumes = new Cached(options.volumeTtlMs ?? DEFAULT_VOLUME_TTL_MS, clock, () =>
      this.readVolumes(),
    );
    const containers = async (): Promise<ContainerFigures[]> => (await this.apps.get()).containers;
    this.register({
      type: "gauge",
      name: "town_app_up",
      help: "1 when every container of the app runs, else 0",
      labelNames: ["repo", "app"],
      rows: async () => (await this.apps.get()).apps,
      value: (row) => (row.up ? 1 : 0),
    });
    this.register({
      type: "counter",
      name: "town_app_restarts_total",
      help: "Times the runtime restarted an app's container",
      labelNames: CONTAINER_LABELS,
      rows: containers,
      value: (row) => row.restarts,
    });
    for (const series of STATS_SERIES) {
      this.register({
        ...series,
        labelNames: CONTAINER_LABELS,
        rows: containers,
        value: (row) => (row.stats ? series.value(row.stats) : undefined),
      });
    }
    if (options.storage) {
      const volumes = (): Promise<VolumeFigures[]> => this.volumes.get();
      this.register({
        type: "gauge",
        name: "town_volume_used_bytes",
        help: "Bytes an app's volume takes",
        labelNames: VOLUME_LABELS,
        rows: volumes,
        value: (row) => row.usedBytes,
      });
      this.register({
        type: "gauge",
        name: "town_volume_quota_bytes",
        help: "Quota of an app's volume, bytes (no series without a quota)",
        labelNames: VOLUME_LABELS,
        rows: volumes,
        value: (row) => row.quota ?? undefined,
      });
    }
  }

  /** Takes the series out of the registry. */
  close(): void {
    for (const name of this.names.splice(0)) this.registry.removeSingleMetric(name);
  }

  private register<T extends Row>(spec: SeriesSpec<T>): void {
    const fill = (rows: readonly T[], put: (labels: Record<string, string>, v: number) => void) => {
      for (const row of rows) {
        const value = spec.value(row);
        // Podman's figures are never negative; a nonsense one is left out rather than failing the scrape.
        if (value === undefined || !Number.isFinite(value) || value < 0) continue;
        const labels: Record<string, string> = { repo: row.repo, app: row.app };
        if (row.container !== undefined) labels["container"] = row.container;
        if (row.volume !== undefined) labels["volume"] = row.volume;
        put(labels, value);
      }
    };
    const common = {
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames,
      registers: [this.registry],
    };
    // Figures are the runtime's own totals, so each scrape replaces them (a counter has no `set`).
    if (spec.type === "counter") {
      new Counter({
        ...common,
        async collect() {
          const rows = await spec.rows();
          this.reset();
          fill(rows, (labels, value) => {
            this.inc(labels, value);
          });
        },
      });
    } else {
      new Gauge({
        ...common,
        async collect() {
          const rows = await spec.rows();
          this.reset();
          fill(rows, (labels, value) => {
            this.set(labels, value);
          });
        },
      });
    }
    this.names.push(spec.name);
  }

  private async readApps(): Promise<AppsSample> {
    const { runtime, box } = this.options;
    let listed: WorkloadSummary[];
    try {
      listed = await runtime.list({ [LABEL_BOX]: box });
    } catch {
      return { apps: [], containers: [] };
    }
    const byApp = new Map<string, AppRow & { workloads: WorkloadSummary[] }>();
    for (const workload of listed) {
      const owner = appFromLabel(workload.labels[LABEL_APP]);
      if (!owner) continue;
      const key = `${owner.repo}/${owner.name}`;
      const entry = byApp.get(key) ?? { repo: owner.repo, app: owner.name, workloads: [] };
      entry.workloads.push(workload);
      byApp.set(key, entry);
    }
    const apps = [...byApp.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(0, this.maxApps)
      .map(([, entry]) => entry);
    const work = apps.flatMap(({ repo, app, workloads }) =>
      workloads
        .map((workload) => ({ repo, app, workload }))
        .sort((a, b) => (a.workload.name < b.workload.name ? -1 : 1)),
    );
    const containers = await mapBounded(
      work,
      STATS_CONCURRENCY,
      async ({ repo, app, workload }) => {
        const [info, stats] = await Promise.all([
          runtime.inspect(workload.name).catch(() => undefined),
          workload.state === "running"
            ? runtime.stats(workload.name).catch(() => undefined)
            : undefined,
        ]);
        return { repo, app, container: workload.name, restarts: info?.restartCount, stats };
      },
    );
    return {
      apps: apps.map(({ repo, app, workloads }) => ({
        repo,
        app,
        up: workloads.every((workload) => workload.state === "running"),
      })),
      containers,
    };
  }

  private async readVolumes(): Promise<VolumeFigures[]> {
    const { storage } = this.options;
    if (!storage) return [];
    let listed: { name: string }[];
    try {
      listed = await storage.list();
    } catch {
      return [];
    }
    const owned = listed.flatMap(({ name }) => {
      const parsed = parseVolumeName(name);
      if (parsed?.kind !== "package") return [];
      // A dependency's instance is `<app>--<key>…` under the installed app's repository.
      const app = parsed.instance.split("--", 1)[0] ?? parsed.instance;
      return [{ repo: parsed.repo, app, volume: name }];
    });
    const kept = new Set(
      [...new Set(owned.map(({ repo, app }) => `${repo}/${app}`))].sort().slice(0, this.maxApps),
    );
    const measured = await mapBounded(
      owned.filter(({ repo, app }) => kept.has(`${repo}/${app}`)),
      VOLUME_CONCURRENCY,
      async (row): Promise<VolumeFigures | undefined> => {
        try {
          const [usage, attributes] = await Promise.all([
            storage.usage(row.volume),
            storage.attributes(row.volume),
          ]);
          return { ...row, usedBytes: usage.usedBytes, quota: attributes?.quota ?? null };
        } catch {
          return undefined; // removed meanwhile, or unreadable: no series this round
        }
      },
    );
    return measured.filter((row): row is VolumeFigures => row !== undefined);
  }
}

/** A value read at most once per `ttlMs`; reads asked for meanwhile share the one in flight. */
class Cached<T> {
  private entry: { at: number; value: Promise<T> } | undefined;

  constructor(
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly read: () => Promise<T>,
  ) {}

  get(): Promise<T> {
    const now = this.clock();
    if (this.entry && now - this.entry.at < this.ttlMs) return this.entry.value;
    const entry = { at: now, value: this.read() };
    this.entry = entry;
    // A failed read is not kept: the next scrape tries again.
    entry.value.catch(() => {
      if (this.entry === entry) this.entry = undefined;
    });
    return entry.value;
  }
}

/** `work` over every item, at most `limit` at once; results in the items' order. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
