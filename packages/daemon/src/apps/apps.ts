/**
 * Installed apps: the install and uninstall requests (which only write
 * desired state and enqueue the app's key), the views the API shows, and
 * the loop that keeps the reconciler fed (boot, periodic resync, Podman
 * events).
 */
import {
  compilePackage,
  cryptoRandom,
  isTownError,
  TownError,
  type CompiledPackage,
  type SystemInfo,
} from "@townos/format";
import type { Catalog } from "../catalog/catalog.js";
import { WorkQueue } from "../reconcile/queue.js";
import type { Podman } from "../runtime/podman.js";
import type { Installs, InstallRecord } from "../store/installs.js";
import {
  appKey,
  AppReconciler,
  checkAppNames,
  flattenPlan,
  LABEL_APP,
  parseAppKey,
  type AppRuntime,
} from "./reconciler.js";

export interface InstallRequest {
  repo: string;
  name: string;
  /** Absent: the latest valid version in that repository. */
  version?: string;
  answers: Record<string, string>;
}

export interface AppView {
  repo: string;
  name: string;
  version: string;
  enabled: boolean;
  installedAt: number;
  ports: { name: string | null; host: number | null; container: number; exposure: string }[];
  volumes: { instance: string; name: string; mountpoint: string; quota: number | null }[];
  notes: { label: string; value: string; type: string }[];
  /** One per container of the app (dependencies first); `missing` when it does not exist. */
  containers: { name: string; state: string }[];
  lastError: string | null;
}

export interface AppsOptions {
  installs: Installs;
  catalog: Catalog;
  tld: () => string;
  system: () => SystemInfo;
}

/** What the apps need once a container runtime is there. */
export interface AppsRuntime {
  runtime: AppRuntime;
  reconciler: AppReconciler;
  /** Podman's event stream, to notice containers changed by hand; absent in tests. */
  events?: Podman["events"];
  /** How often every app is looked at even without a change. Default 60 s. */
  resyncMs?: number;
}

/** How long an install request waits for its first reconcile before answering 202. */
export const INSTALL_WAIT_MS = 60_000;
const EVENT_RETRY_MS = 5_000;

export class Apps {
  private attached:
    | { runtime: AppRuntime; queue: WorkQueue; stop: () => void; done: Map<string, Waiter[]> }
    | undefined;
  /** Why apps cannot run, while no runtime is attached. */
  private unavailableReason = "the container runtime is starting";
  /** Per key: the number of the latest install or uninstall request; waiters wait for a reconcile that started after theirs. */
  private readonly requested = new Map<string, number>();

  constructor(private readonly options: AppsOptions) {}

  /** Says why apps cannot run (Podman missing, say); app calls answer `unavailable` with it. */
  setUnavailable(reason: string): void {
    this.unavailableReason = reason;
  }

  /** Starts reconciling: every app now, every `resyncMs`, and on Podman events. */
  attach(options: AppsRuntime): void {
    const done = new Map<string, Waiter[]>();
    const started = new Map<string, number>();
    const settle = (key: string): void => {
      const seen = started.get(key) ?? 0;
      const waiting = done.get(key) ?? [];
      done.set(
        key,
        waiting.filter((waiter) => {
          if (waiter.generation > seen) return true;
          waiter.resolve();
          return false;
        }),
      );
    };
    const queue = new WorkQueue({
      reconcile: async (key) => {
        started.set(key, this.requested.get(key) ?? 0);
        const app = parseAppKey(key);
        if (!app) return undefined;
        await options.reconciler.reconcile(app.repo, app.name);
        return undefined;
      },
      onSuccess: (key) => {
        const app = parseAppKey(key);
        if (app && this.options.installs.get(app.repo, app.name)) {
          this.options.installs.recordOutcome(app.repo, app.name, null);
        }
        settle(key);
      },
      onError: (key, error) => {
        const app = parseAppKey(key);
        const { installs } = this.options;
        // Errors of apps that are neither installed nor being removed (leftovers) have nowhere to show.
        if (app && (installs.get(app.repo, app.name) || installs.removal(app.repo, app.name))) {
          installs.recordOutcome(app.repo, app.name, errorText(error));
        }
        settle(key);
      },
    });
    const abort = new AbortController();
    const resync = setInterval(() => {
      this.enqueueAll();
    }, options.resyncMs ?? 60_000);
    resync.unref();
    this.attached = {
      runtime: options.runtime,
      queue,
      done,
      stop: () => {
        abort.abort();
        clearInterval(resync);
      },
    };
    if (options.events) void this.watchEvents(options.events, abort.signal);
    this.enqueueAll();
  }

  /** Stops taking work and waits for running reconciles. */
  async stop(): Promise<void> {
    const attached = this.attached;
    if (!attached) return;
    attached.stop();
    await attached.queue.stop();
  }

  /** Enqueues every installed app and every pending removal. */
  enqueueAll(): void {
    for (const install of this.options.installs.list()) this.enqueue(install.repo, install.name);
    for (const removal of this.options.installs.removals())
      this.enqueue(removal.repo, removal.name);
  }

  private enqueue(repo: string, name: string): void {
    this.attached?.queue.enqueue(appKey(repo, name));
  }

  /** Resolves when nothing is queued or running: for tests. */
  async idle(): Promise<void> {
    await this.attached?.queue.idle();
  }

  private runtime(): NonNullable<Apps["attached"]> {
    if (!this.attached) {
      throw new TownError("unavailable", `apps cannot run: ${this.unavailableReason}`, {
        retryAfter: 5,
      });
    }
    return this.attached;
  }

  /**
   * Compiles the package with the answers (every problem reported at once,
   * before anything is created), records the install and waits up to
   * `waitMs` for its first reconcile. `settled` is false when it took longer.
   * @throws `invalid_answers`, `invalid_package`, `not_found`, `conflict` (installed already)
   */
  async install(
    request: InstallRequest,
    waitMs = INSTALL_WAIT_MS,
  ): Promise<{ app: AppView; settled: boolean }> {
    const attached = this.runtime();
    const { installs, catalog } = this.options;
    if (installs.get(request.repo, request.name)) {
      throw new TownError("conflict", `${request.repo}/${request.name} is installed already`);
    }
    const index = catalog.index();
    const source = index.find({
      repo: request.repo,
      name: request.name,
      ...(request.version === undefined ? {} : { version: request.version }),
    });
    if (!source) {
      throw new TownError(
        "not_found",
        `there is no valid ${request.repo}/${request.name}${request.version ? `@${request.version}` : ""}`,
      );
    }
    const plan = compilePackage(source, request.answers, {
      tld: this.options.tld(),
      system: this.options.system(),
      random: cryptoRandom,
      takenPorts: takenPorts(installs.list()),
      resolveDependency: (dependency) => index.find(dependency),
    });
    if (plan.runtime !== "container") {
      throw new TownError(
        "invalid_package",
        `${request.repo}/${request.name} is a virtual machine; VMs are not supported yet`,
      );
    }
    checkAppNames(plan);
    installs.put({
      repo: request.repo,
      name: request.name,
      version: source.version,
      definitionHash: catalog.definitionHash(request.repo, request.name, source.version),
      answers: plan.answers,
      enabled: true,
      plan,
    });
    const settled = await this.request(attached, request.repo, request.name, waitMs);
    return { app: await this.view(request.repo, request.name), settled };
  }

  /**
   * Removes the install and records the removal (volumes moved aside, or
   * deleted with `purge`), then waits for it like `install`.
   * @throws `not_found` when the app is not installed
   */
  async uninstall(
    repo: string,
    name: string,
    purge: boolean,
    waitMs = INSTALL_WAIT_MS,
  ): Promise<boolean> {
    const attached = this.runtime();
    if (!this.options.installs.remove(repo, name, purge)) {
      throw new TownError("not_found", `${repo}/${name} is not installed`);
    }
    return this.request(attached, repo, name, waitMs);
  }

  /** Enqueues and waits for a reconcile that started after this call; true when one finished in time. */
  private async request(
    attached: NonNullable<Apps["attached"]>,
    repo: string,
    name: string,
    waitMs: number,
  ): Promise<boolean> {
    const key = appKey(repo, name);
    const generation = (this.requested.get(key) ?? 0) + 1;
    this.requested.set(key, generation);
    let timer: NodeJS.Timeout | undefined;
    const finished = new Promise<boolean>((resolve) => {
      const waiters = attached.done.get(key) ?? [];
      // An error is recorded on the app and shown in its view: the request itself went through.
      waiters.push({
        generation,
        resolve: () => {
          resolve(true);
        },
      });
      attached.done.set(key, waiters);
      timer = setTimeout(() => {
        resolve(false);
      }, waitMs);
      timer.unref();
    });
    attached.queue.enqueue(key);
    try {
      return await finished;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every app with the live state of its containers (one runtime call). @throws `unavailable` */
  async list(): Promise<AppView[]> {
    const { runtime } = this.runtime();
    const states = new Map<string, Map<string, string>>();
    for (const container of await runtime.listContainers({})) {
      const app = container.labels[LABEL_APP];
      if (app === undefined) continue;
      const byName = states.get(app) ?? new Map<string, string>();
      byName.set(container.name, container.state);
      states.set(app, byName);
    }
    return this.options.installs
      .list()
      .map((install) =>
        this.viewOf(install, states.get(`${install.repo}/${install.name}`) ?? new Map()),
      );
  }

  /** The app with the live state of its containers. @throws `not_found`, `unavailable` */
  async view(repo: string, name: string): Promise<AppView> {
    const install = this.options.installs.get(repo, name);
    if (!install) throw new TownError("not_found", `${repo}/${name} is not installed`);
    const { runtime } = this.runtime();
    const existing = await runtime.listContainers({ [LABEL_APP]: `${repo}/${name}` });
    return this.viewOf(install, new Map(existing.map((c) => [c.name, c.state])));
  }

  private viewOf(install: InstallRecord, states: ReadonlyMap<string, string>): AppView {
    const nodes = install.plan ? flattenPlan(install.plan) : [];
    return {
      repo: install.repo,
      name: install.name,
      version: install.version,
      enabled: install.enabled,
      installedAt: install.installedAt,
      ports: nodes.flatMap(({ plan }) => plan.ports),
      volumes: nodes.flatMap(({ plan }) =>
        plan.volumes.map((volume) => ({
          instance: plan.instance,
          name: volume.name,
          mountpoint: volume.mountpoint,
          quota: volume.quota,
        })),
      ),
      notes: install.plan?.notes ?? [],
      containers: nodes.map(({ plan }) => ({
        name: plan.hostname,
        state: states.get(plan.hostname) ?? "missing",
      })),
      lastError: this.options.installs.lastError(install.repo, install.name),
    };
  }

  /** Enqueues the app of every container event carrying the app label; reconnects after failures. */
  private async watchEvents(events: Podman["events"], signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        for await (const event of await events({ types: ["container"], signal })) {
          const app = event.attributes[LABEL_APP];
          const slash = app?.indexOf("/") ?? -1;
          if (app && slash > 0) this.enqueue(app.slice(0, slash), app.slice(slash + 1));
        }
      } catch {
        // The service restarted or went away: the periodic resync covers the gap.
      }
      await delay(EVENT_RETRY_MS, signal);
    }
  }
}

interface Waiter {
  generation: number;
  resolve: () => void;
}

/** Host ports the plans of installed apps publish: a new install must not pick them. */
export function takenPorts(installs: readonly InstallRecord[]): number[] {
  return installs.flatMap((install) =>
    install.plan
      ? flattenPlan(install.plan).flatMap(({ plan }: { plan: CompiledPackage }) =>
          plan.ports.flatMap((port) => (port.host === null ? [] : [port.host])),
        )
      : [],
  );
}

function errorText(error: unknown): string {
  if (isTownError(error) || error instanceof Error) return error.message;
  return String(error);
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(resolve, ms);
    timer.unref();
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
