/**
 * The apps service: install, upgrade, uninstall and the other changes an
 * API request asks for. Each validates, writes desired state and enqueues
 * the app's key, then waits (a while) for its reconcile to answer with the
 * result. Also keeps the controller fed (boot, periodic resync, Podman
 * events) and tells networking when what it serves may have changed.
 */
import {
  savedAnswersAsGiven,
  TownError,
  type CompiledPackage,
  type SystemInfo,
} from "@townos/format";
import type { Catalog } from "../catalog/catalog.js";
import type { NetworkInputs } from "../net/network.js";
import { periodic, type Manager, type Outcome } from "../reconcile/manager.js";
import { EXPOSURE_LEVELS, type ExposureLevel, type Installs } from "../store/installs.js";
import type { HostRuntime, WorkloadRuntime } from "../runtime/workload.js";
import type { AppReconciler } from "./controller.js";
import { VolumeHolds } from "./holds.js";
import { APPS, appKey, parseAppKey } from "./labels.js";
import { flattenPlan } from "./names.js";
import { checkOwnership } from "./ownership.js";
import {
  AppPlanner,
  movedVolumes,
  publishedPorts,
  reusedVolumes,
  type AppInstallPreview,
  type InstallRequest,
  type VolumeListing,
} from "./planner.js";
import { ProgressFollowers, type AppProgress } from "./progress.js";
import { AppViews, type AppView } from "./views.js";
import { ContainerWatch } from "./watch.js";

/** What an upgrade changes: a newer version, or the same one re-read. */
export interface UpgradeRequest {
  repo: string;
  name: string;
  /** Absent: the latest valid version. */
  version?: string;
  /** Changed answers; the others are kept. */
  answers?: Record<string, string>;
}

export interface AppsOptions {
  installs: Installs;
  catalog: Catalog;
  tld: () => string;
  system: () => SystemInfo;
  /** This install's id: only containers carrying it are looked at (`LABEL_BOX`). */
  box: string;
  /** Ports something on the host listens on; default: read from /proc. */
  hostPorts?: () => Promise<Set<number>>;
  /** Told about reconcile failures (they are also recorded on the app). */
  log?: (message: string, fields: Record<string, unknown>) => void;
  /** Runs the app controller (kind `apps`) once a runtime is attached. */
  manager: Manager;
}

/**
 * Told before a change that could lose an app's data, so that a restore
 * point keeps what was there; a hook that fails stops the change.
 */
export interface AppChangeHooks {
  /** Before an upgrade (or a rollback) replaces the install: the app as it is. */
  beforeUpgrade(repo: string, name: string): Promise<unknown>;
  /** Before an install takes back volumes an uninstall kept (`from` → `volume`). */
  beforeReinstall(
    repo: string,
    name: string,
    volumes: readonly { volume: string; from: string }[],
  ): Promise<unknown>;
}

/** What an install becomes on a rollback: a version with its answers, as it was. */
export interface RevertTarget {
  version: string;
  answers: Record<string, string>;
  definitionHash: string;
  /** The plan it had: used when the catalog no longer has that version. */
  plan: CompiledPackage | null;
}

/** What the apps need once a container runtime is there. */
export interface AppsRuntime {
  runtime: HostRuntime;
  reconciler: AppReconciler;
  /** Where volumes live: for previews (free space) and reinstalls (kept volumes). */
  storage: VolumeListing;
  /** The runtime's event stream, to notice workloads changed by hand; absent in tests. */
  events?: WorkloadRuntime["events"];
  /** How often every app is looked at even without a change. Default 60 s. */
  resyncMs?: number;
}

/** How long an install request waits for its first reconcile before answering 202. */
export const INSTALL_WAIT_MS = 60_000;

export class Apps {
  private attached: Pick<AppsRuntime, "runtime" | "storage" | "reconciler"> | undefined;
  /** Why apps cannot run, while no runtime is attached. */
  private unavailableReason = "the container runtime is starting";
  private readonly networkListeners: (() => void)[] = [];
  /** The installs' generation networking was last told about. */
  private networkGeneration = -1;
  private readonly planner: AppPlanner;
  private readonly views: AppViews;
  private readonly holds: VolumeHolds;
  private readonly progress = new ProgressFollowers();
  private readonly watch: ContainerWatch;
  private hooks: AppChangeHooks | undefined;

  constructor(private readonly options: AppsOptions) {
    this.planner = new AppPlanner(options);
    this.holds = new VolumeHolds(options.installs);
    this.views = new AppViews({
      installs: options.installs,
      tld: options.tld,
      box: options.box,
      held: (repo, name) => this.holds.isHeld(repo, name),
    });
    this.watch = new ContainerWatch({
      box: options.box,
      ...(options.log ? { log: options.log } : {}),
    });
  }

  /** This install's id, on every container it makes (`LABEL_BOX`). */
  get box(): string {
    return this.options.box;
  }

  /** Restore points before upgrades and reinstalls over old data. */
  setChangeHooks(hooks: AppChangeHooks): void {
    this.hooks = hooks;
  }

  /** Says why apps cannot run (Podman missing, say); app calls answer `unavailable` with it. */
  setUnavailable(reason: string): void {
    this.unavailableReason = reason;
  }

  /** Starts the app controller: every app now, every `resyncMs`, and on Podman events. */
  attach(options: AppsRuntime): void {
    const { manager } = this.options;
    manager.register(APPS, {
      reconcile: async (id) => {
        const key = `${APPS}/${id}`;
        const app = parseAppKey(key);
        if (!app) return undefined;
        const { requeueAfterMs } = await options.reconciler.reconcile(
          app.repo,
          app.name,
          (progress) => {
            this.progress.tell(key, { ...progress, at: Date.now() });
          },
          this.watch.take(key),
        );
        return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
      },
      onSuccess: (id) => {
        if (this.options.installs.generation !== this.networkGeneration) {
          this.networkGeneration = this.options.installs.generation;
          this.networkChanged();
        }
        const app = parseAppKey(`${APPS}/${id}`);
        if (app && this.options.installs.get(app.repo, app.name)) {
          this.options.installs.recordOutcome(app.repo, app.name, null);
        }
      },
      onError: (id, error, failure) => {
        const key = `${APPS}/${id}`;
        const app = parseAppKey(key);
        const { installs } = this.options;
        this.options.log?.("app reconcile failed", {
          app: key,
          error: errorText(error),
          attempt: failure.attempt,
          retryInMs: failure.retryInMs,
        });
        // Errors of apps that are neither installed nor being removed (leftovers) have nowhere to show.
        if (app && (installs.get(app.repo, app.name) || installs.removal(app.repo, app.name))) {
          installs.recordOutcome(app.repo, app.name, errorText(error));
        }
      },
    });
    this.attached = {
      runtime: options.runtime,
      storage: options.storage,
      reconciler: options.reconciler,
    };
    manager.watch(
      APPS,
      periodic(options.resyncMs ?? 60_000, () => {
        void this.resync();
      }),
    );
    const events = options.events;
    if (events) {
      manager.watch(APPS, (enqueue, signal) => {
        void this.watch.watch(events, signal, enqueue);
      });
    }
    void this.resync();
  }

  /** Stops taking work and waits for running reconciles. */
  async stop(): Promise<void> {
    if (!this.attached) return;
    await this.options.manager.stop(APPS);
  }

  /** Enqueues every installed app, every pending removal, and the apps of leftover containers. */
  async resync(): Promise<void> {
    const { installs } = this.options;
    const keys = new Set([
      ...installs.list().map((install) => appKey(install.repo, install.name)),
      ...installs.removals().map((removal) => appKey(removal.repo, removal.name)),
    ]);
    const runtime = this.attached?.runtime;
    // One listing for every app: each pass then starts from it instead of asking again.
    if (runtime) await this.watch.resync(runtime, keys);
    if (this.attached) for (const key of keys) this.options.manager.enqueue(key);
  }

  /** Resolves when nothing is queued or running: for tests. */
  async idle(): Promise<void> {
    if (this.attached) await this.options.manager.idle(APPS);
  }

  private runtime(): NonNullable<Apps["attached"]> {
    if (!this.attached) {
      throw new TownError("unavailable", `apps cannot run: ${this.unavailableReason}`, {
        retryAfter: 5,
      });
    }
    return this.attached;
  }

  /** Calls `listener` with each progress line of the app's reconciles until the returned function is called. */
  follow(repo: string, name: string, listener: (progress: AppProgress) => void): () => void {
    return this.progress.follow(repo, name, listener);
  }

  /**
   * Compiles the package with the answers (every problem reported at once,
   * before anything is created), records the install and waits up to
   * `waitMs` for its first reconcile. `settled` is false when it took longer.
   * A first reconcile that fails for good (an image that exists nowhere,
   * say) removes everything it made and throws its error, which names the
   * step; one that may succeed later leaves the app installed, converging,
   * with the error shown.
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
    const { source, plan, ingressPorts } = await this.planner.compile(request);
    const reused = reusedVolumes(plan, await attached.storage.list(), request, (volume) =>
      installs.uninstalledVolumeVersion(volume),
    );
    if (reused.length > 0) await this.hooks?.beforeReinstall(request.repo, request.name, reused);
    // Checked again with the write, in one transaction: a concurrent install may have come first.
    installs.create(
      {
        repo: request.repo,
        name: request.name,
        version: source.version,
        definitionHash: catalog.definitionHash(request.repo, request.name, source.version),
        answers: plan.answers,
        enabled: true,
        plan,
        reused: reused.map((volume) => volume.from),
        ingressPorts,
      },
      (others) => {
        checkOwnership(request.repo, request.name, plan, others);
      },
    );
    const outcome = await this.request(request.repo, request.name, waitMs);
    if (outcome?.terminal && installs.get(request.repo, request.name)) {
      // Undo: volumes this install made go, volumes it took back are moved aside again.
      installs.remove(
        request.repo,
        request.name,
        true,
        reused.map((volume) => volume.from),
        true,
      );
      await this.request(request.repo, request.name, waitMs);
      throw outcome.error;
    }
    return { app: await this.view(request.repo, request.name), settled: outcome !== undefined };
  }

  /** What `install` would do with these answers: volumes made or taken back, ports, disk. Changes nothing. */
  async preview(request: InstallRequest): Promise<AppInstallPreview> {
    const attached = this.runtime();
    return this.planner.preview(request, attached.storage);
  }

  /**
   * Moves an installed app to another version (default: the latest) or
   * re-reads a changed definition of its version, keeping its volumes and
   * answers (changed answers given override them). Containers whose spec
   * changed are recreated; the package's `post_update` commands then run.
   * @throws `not_found`, `invalid_answers`, `conflict` (nothing would change)
   */
  async upgrade(
    request: UpgradeRequest,
    waitMs = INSTALL_WAIT_MS,
  ): Promise<{ app: AppView; settled: boolean }> {
    this.runtime();
    const { installs, catalog } = this.options;
    const install = installs.get(request.repo, request.name);
    if (!install)
      throw new TownError("not_found", `${request.repo}/${request.name} is not installed`);
    const target = this.planner.source(request);
    const answers = {
      ...savedAnswersAsGiven(target.definition.questions, install.answers),
      ...request.answers,
    };
    const { source, plan, ingressPorts } = await this.planner.compile(
      {
        repo: request.repo,
        name: request.name,
        ...(request.version === undefined ? {} : { version: request.version }),
        answers,
      },
      install,
    );
    const definitionHash = catalog.definitionHash(request.repo, request.name, source.version);
    if (plan.hash === install.plan?.hash && definitionHash === install.definitionHash) {
      throw new TownError(
        "conflict",
        `${request.repo}/${request.name} is at ${install.version} already, with the same definition and answers`,
      );
    }
    await this.hooks?.beforeUpgrade(request.repo, request.name);
    // One transaction with its checks: an uninstall or another upgrade meanwhile wins.
    installs.replace(
      {
        repo: request.repo,
        name: request.name,
        version: source.version,
        definitionHash,
        answers: plan.answers,
        enabled: install.enabled,
        plan,
        postUpdateFor: plan.postUpdate.length > 0 ? plan.hash : null,
        reused: install.plan ? movedVolumes(install.plan, plan) : [],
        exposures: install.exposures,
        ingressPorts,
        dnsPublished: install.dnsPublished,
      },
      install,
      (others) => {
        checkOwnership(request.repo, request.name, plan, others);
      },
    );
    const outcome = await this.request(request.repo, request.name, waitMs);
    return { app: await this.view(request.repo, request.name), settled: outcome !== undefined };
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
    this.runtime();
    if (!this.options.installs.remove(repo, name, purge)) {
      throw new TownError("not_found", `${repo}/${name} is not installed`);
    }
    return (await this.request(repo, name, waitMs)) !== undefined;
  }

  /**
   * Starts or stops an app and its dependencies (dependencies first on
   * start, last on stop), or enables/disables it (disabled apps stay stopped
   * when the box starts). Waits like `install`. @throws `not_found`
   */
  async setState(
    repo: string,
    name: string,
    change: "start" | "stop" | "enable" | "disable",
    waitMs = INSTALL_WAIT_MS,
  ): Promise<{ app: AppView; settled: boolean }> {
    this.runtime();
    const { installs } = this.options;
    const found =
      change === "start" || change === "stop"
        ? installs.setRunning(repo, name, change === "start")
        : installs.setEnabled(repo, name, change === "enable");
    if (!found && !installs.get(repo, name)) {
      throw new TownError("not_found", `${repo}/${name} is not installed`);
    }
    const outcome = await this.request(repo, name, waitMs);
    return { app: await this.view(repo, name), settled: outcome !== undefined };
  }

  /** Stops the app's containers (the app first) and starts them again (dependencies first). */
  async restart(
    repo: string,
    name: string,
    waitMs = INSTALL_WAIT_MS,
  ): Promise<{ app: AppView; settled: boolean }> {
    const attached = this.runtime();
    const install = this.options.installs.get(repo, name);
    if (!install?.plan) throw new TownError("not_found", `${repo}/${name} is not installed`);
    const nodes = flattenPlan(install.plan);
    for (const { plan } of [...nodes].reverse()) await attached.reconciler.stop(plan.hostname);
    const outcome = await this.request(repo, name, waitMs);
    return { app: await this.view(repo, name), settled: outcome !== undefined };
  }

  /**
   * Sets who can reach one of the app's published host ports; the container
   * is published anew and the router mapping follows. Waits like `install`.
   * @throws `not_found` (app or port), `invalid_argument` (level)
   */
  async expose(
    repo: string,
    name: string,
    hostPort: number,
    level: ExposureLevel,
    waitMs = INSTALL_WAIT_MS,
  ): Promise<{ app: AppView; settled: boolean }> {
    this.runtime();
    const install = this.options.installs.get(repo, name);
    if (!install) throw new TownError("not_found", `${repo}/${name} is not installed`);
    if (!EXPOSURE_LEVELS.includes(level)) {
      throw new TownError(
        "invalid_argument",
        `exposure must be one of ${EXPOSURE_LEVELS.join(", ")}`,
      );
    }
    if (!publishedPorts(install).some((port) => port.host === hostPort)) {
      throw new TownError("not_found", `${repo}/${name} publishes no host port ${hostPort}`);
    }
    this.options.installs.setExposure(repo, name, hostPort, level);
    const outcome = await this.request(repo, name, waitMs);
    this.networkChanged();
    return { app: await this.view(repo, name), settled: outcome !== undefined };
  }

  /** Publishes or hides the app's names in the box's DNS. @throws `not_found` */
  async publishNames(repo: string, name: string, published: boolean): Promise<AppView> {
    if (!this.options.installs.setDnsPublished(repo, name, published)) {
      if (!this.options.installs.get(repo, name)) {
        throw new TownError("not_found", `${repo}/${name} is not installed`);
      }
    }
    this.networkChanged();
    return this.view(repo, name);
  }

  /** What networking serves for the installed apps: names, ingress routes, ports and exposures. */
  networkInputs(dashboardPort: number): Omit<NetworkInputs, "pages"> {
    return this.planner.networkInputs(dashboardPort);
  }

  /** Calls `listener` whenever what `networkInputs` returns may have changed. */
  onNetworkChange(listener: () => void): void {
    this.networkListeners.push(listener);
  }

  private networkChanged(): void {
    for (const listener of this.networkListeners) listener();
  }

  /** True while a hold keeps the app stopped. */
  isHeld(repo: string, name: string): boolean {
    return this.holds.isHeld(repo, name);
  }

  /**
   * Stops the installed app that owns a package volume, and keeps it stopped
   * until the returned release is called (which starts it again if it
   * should run). For anything else (user volumes, no such app) a no-op.
   */
  holdVolume(volumeName: string): Promise<() => Promise<void>> {
    const attached = this.attached;
    return this.holds.hold(
      volumeName,
      attached && ((repo, name) => this.request(repo, name, INSTALL_WAIT_MS)),
    );
  }

  /**
   * Keeps the app stopped until the returned release is called (which
   * starts it again if it should run); `stop` stops it in its own way first.
   * @throws `not_found`, `unavailable`
   */
  holdApp(repo: string, name: string, stop?: () => Promise<void>): Promise<() => Promise<void>> {
    this.runtime();
    if (!this.options.installs.get(repo, name)) {
      throw new TownError("not_found", `${repo}/${name} is not installed`);
    }
    return this.holds.holdApp(repo, name, (r, n) => this.request(r, n, INSTALL_WAIT_MS), stop);
  }

  /** The apps' workloads, to quiesce one for a snapshot. @throws `unavailable` */
  workloads(): Pick<WorkloadRuntime, "exec" | "stop"> {
    return this.runtime().runtime;
  }

  /**
   * Makes the install what it was at `target` (version, answers), compiled
   * anew when the catalog still has that version, else with the plan it had
   * then; volumes are left as they are (the caller restored them). Waits
   * like `install`. Taking no restore point itself, it is what a rollback uses.
   * @throws `not_found`, `conflict` (changed meanwhile)
   */
  async revert(
    repo: string,
    name: string,
    target: RevertTarget,
    waitMs = INSTALL_WAIT_MS,
  ): Promise<{ app: AppView; settled: boolean }> {
    this.runtime();
    const { installs, catalog } = this.options;
    const install = installs.get(repo, name);
    if (!install) throw new TownError("not_found", `${repo}/${name} is not installed`);
    const inCatalog = catalog.index().find({ repo, name, version: target.version });
    const compiled = inCatalog
      ? await this.planner.compile(
          { repo, name, version: target.version, answers: target.answers },
          install,
        )
      : undefined;
    const plan = compiled?.plan ?? target.plan;
    if (!plan) {
      throw new TownError(
        "not_found",
        `${repo}/${name}@${target.version} is neither in the catalog nor recorded with its plan`,
      );
    }
    installs.replace(
      {
        repo,
        name,
        version: target.version,
        definitionHash: compiled
          ? catalog.definitionHash(repo, name, target.version)
          : target.definitionHash,
        answers: plan.answers,
        enabled: install.enabled,
        plan,
        postUpdateFor: null,
        reused: install.plan ? movedVolumes(install.plan, plan) : [],
        exposures: install.exposures,
        ingressPorts: compiled?.ingressPorts ?? install.ingressPorts,
        dnsPublished: install.dnsPublished,
      },
      install,
      (others) => {
        checkOwnership(repo, name, plan, others);
      },
    );
    const outcome = await this.request(repo, name, waitMs);
    return { app: await this.view(repo, name), settled: outcome !== undefined };
  }

  /** The answers to offer when the package is installed again: the last ones given. */
  lastAnswers(
    repo: string,
    name: string,
  ): { version: string; answers: Record<string, string> } | undefined {
    const last = this.options.installs.lastAnswers(repo, name);
    const questions =
      last &&
      this.options.catalog.index().find({ repo, name, version: last.version })?.definition
        .questions;
    return last && questions
      ? { ...last, answers: savedAnswersAsGiven(questions, last.answers) }
      : last;
  }

  /** Enqueues and waits for a reconcile that started after this call; undefined when none finished in time. */
  private request(repo: string, name: string, waitMs: number): Promise<Outcome | undefined> {
    return this.options.manager.requestAndWait(appKey(repo, name), waitMs);
  }

  /** Every app with the live state of its containers (one runtime call). @throws `unavailable` */
  async list(): Promise<AppView[]> {
    const { runtime } = this.runtime();
    return this.views.list(runtime);
  }

  /** The app with the live state of its containers. @throws `not_found`, `unavailable` */
  async view(repo: string, name: string): Promise<AppView> {
    const install = this.options.installs.get(repo, name);
    if (!install) throw new TownError("not_found", `${repo}/${name} is not installed`);
    const { runtime } = this.runtime();
    return this.views.view(runtime, install);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
