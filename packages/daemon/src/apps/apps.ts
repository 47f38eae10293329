/**
 * Installed apps: the install and uninstall requests (which only write
 * desired state and enqueue the app's key), the views the API shows, and
 * the loop that keeps the reconciler fed (boot, periodic resync, Podman
 * events).
 */
import { randomInt } from "node:crypto";
import { statfs } from "node:fs/promises";
import {
  AUTO_PORT_MAX,
  AUTO_PORT_MIN,
  compilePackage,
  cryptoRandom,
  isTownError,
  nameScope,
  packageDnsName,
  savedAnswersAsGiven,
  TownError,
  type CompiledPackage,
  type Issue,
  type PackageSource,
  type SystemInfo,
} from "@townos/format";
import type { Catalog } from "../catalog/catalog.js";
import { previewInstall } from "../catalog/preview.js";
import { WorkQueue } from "../reconcile/queue.js";
import { checkDomainClaims } from "./domains.js";
import { listeningPorts } from "../net/host-ports.js";
import type { Podman } from "../runtime/podman/client.js";
import { packageVolumeName, parseVolumeName } from "../storage/names.js";
import { legacyVolumeName, nodeVolumeName } from "./names.js";
import { checkOwnership } from "./ownership.js";
import {
  EXPOSURE_LEVELS,
  type ExposureLevel,
  type InstallRecord,
  type Installs,
} from "../store/installs.js";
import type { NetworkInputs } from "../net/network.js";
import { appNotes, type AppNote } from "./notes.js";
import {
  appKey,
  appLabels,
  AppReconciler,
  checkAppNames,
  flattenPlan,
  LABEL_APP,
  LABEL_BOX,
  parseAppKey,
  portExposure,
  type AppRuntime,
  type ReconcileProgress,
} from "./reconciler.js";

export interface InstallRequest {
  repo: string;
  name: string;
  /** Absent: the latest valid version in that repository. */
  version?: string;
  answers: Record<string, string>;
  /** Take back volumes an earlier uninstall kept (default true): the newest of each. */
  reuseVolumes?: boolean;
  /** Take back only volumes kept from this version (implies reuseVolumes). */
  importFromVersion?: string;
}

/** What an install would do, with the answers given; nothing is changed. */
export interface AppInstallPreview {
  repo: string;
  name: string;
  version: string;
  runtime: "container" | "vm";
  images: string[];
  /** One per volume of the app and its dependencies. */
  volumes: {
    instance: string;
    name: string;
    volume: string;
    mountpoint: string;
    quota: number | null;
    /** `create`: new and empty; `reuse`: taken back from an uninstall (`from`). */
    action: "create" | "reuse";
    from: string | null;
  }[];
  ports: { name: string | null; host: number | null; container: number; exposure: string }[];
  disk: {
    /** Quotas of the volumes to create, added up: the most they can take. */
    quotaBytes: number;
    /** Volumes to create that have no quota: their growth is bounded only by the disk. */
    unboundedVolumes: number;
    freeBytes: number | null;
    quotasEnforced: boolean;
    fits: boolean;
  };
  /** Questions that still need an answer (or a better one). */
  questionsToAnswer: string[];
  /** What is wrong with each of those answers, as an install would say it. */
  answerProblems: Issue[];
  problems: Issue[];
}

/** What an upgrade changes: a newer version, or the same one re-read. */
export interface UpgradeRequest {
  repo: string;
  name: string;
  /** Absent: the latest valid version. */
  version?: string;
  /** Changed answers; the others are kept. */
  answers?: Record<string, string>;
}

/** One line of an install's (or any change's) progress, as the API streams it. */
export interface AppProgress extends ReconcileProgress {
  at: number;
}

export interface AppView {
  repo: string;
  name: string;
  version: string;
  enabled: boolean;
  /** Should run now (false once stopped); `held` while an upload into its volume goes on. */
  running: boolean;
  held: boolean;
  /** An upgrade's post_update commands have not run yet. */
  postUpdatePending: boolean;
  installedAt: number;
  /** Published host ports, with who can reach them (the ingress's loopback ports left out). */
  ports: {
    instance: string;
    name: string | null;
    host: number;
    container: number;
    exposure: ExposureLevel;
  }[];
  /** Where people open the app: its HTTPS name (and public domains) through the ingress. */
  urls: string[];
  /** The app's names are in the box's DNS. */
  dnsPublished: boolean;
  volumes: { instance: string; name: string; mountpoint: string; quota: number | null }[];
  notes: AppNote[];
  /** One per container of the app (dependencies first); `missing` when it does not exist. */
  containers: { name: string; state: string }[];
  lastError: string | null;
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
}

/** What the apps need once a container runtime is there. */
export interface AppsRuntime {
  runtime: AppRuntime;
  reconciler: AppReconciler;
  /** Where volumes live: for previews (free space) and reinstalls (kept volumes). */
  storage: {
    readonly root: string;
    readonly capabilities: { quotas: boolean };
    list(): Promise<{ name: string }[]>;
  };
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
    | {
        runtime: AppRuntime;
        storage: AppsRuntime["storage"];
        queue: WorkQueue;
        stop: () => void;
        done: Map<string, Waiter[]>;
      }
    | undefined;
  /** Why apps cannot run, while no runtime is attached. */
  private unavailableReason = "the container runtime is starting";
  /** Per key: the number of the latest request; waiters wait for a reconcile that started after theirs. */
  private readonly requested = new Map<string, number>();
  /** Per key: how many holds keep the app stopped. */
  private readonly holds = new Map<string, number>();
  /** Podman events seen: a listing taken before the latest one may be out of date. */
  private events = 0;
  private snapshot:
    { events: number; pending: Set<string>; byKey: Map<string, ContainerList> } | undefined;
  private readonly networkListeners: (() => void)[] = [];
  /** The installs' generation networking was last told about. */
  private networkGeneration = -1;
  /** Per key: who follows the progress of its reconciles. */
  private readonly followers = new Map<string, Set<(progress: AppProgress) => void>>();

  constructor(private readonly options: AppsOptions) {}

  /** This install's id, on every container it makes (`LABEL_BOX`). */
  get box(): string {
    return this.options.box;
  }

  /** Says why apps cannot run (Podman missing, say); app calls answer `unavailable` with it. */
  setUnavailable(reason: string): void {
    this.unavailableReason = reason;
  }

  /** Starts reconciling: every app now, every `resyncMs`, and on Podman events. */
  attach(options: AppsRuntime): void {
    const done = new Map<string, Waiter[]>();
    const started = new Map<string, number>();
    const settle = (key: string, outcome: Outcome): void => {
      const seen = started.get(key) ?? 0;
      const waiting = done.get(key) ?? [];
      done.set(
        key,
        waiting.filter((waiter) => {
          if (waiter.generation > seen) return true;
          waiter.resolve(outcome);
          return false;
        }),
      );
    };
    const queue = new WorkQueue({
      reconcile: async (key) => {
        started.set(key, this.requested.get(key) ?? 0);
        const app = parseAppKey(key);
        if (!app) return undefined;
        await options.reconciler.reconcile(
          app.repo,
          app.name,
          (progress) => {
            this.tell(key, { ...progress, at: Date.now() });
          },
          this.takeSnapshot(key),
        );
        return undefined;
      },
      onSuccess: (key) => {
        if (this.options.installs.generation !== this.networkGeneration) {
          this.networkGeneration = this.options.installs.generation;
          this.networkChanged();
        }
        const app = parseAppKey(key);
        if (app && this.options.installs.get(app.repo, app.name)) {
          this.options.installs.recordOutcome(app.repo, app.name, null);
        }
        settle(key, { error: undefined, terminal: false });
      },
      onError: (key, error, failure) => {
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
        settle(key, { error, terminal: failure.terminal });
      },
    });
    const abort = new AbortController();
    const resync = setInterval(() => {
      void this.resync();
    }, options.resyncMs ?? 60_000);
    resync.unref();
    this.attached = {
      runtime: options.runtime,
      storage: options.storage,
      queue,
      done,
      stop: () => {
        abort.abort();
        clearInterval(resync);
      },
    };
    if (options.events) void this.watchEvents(options.events, abort.signal);
    void this.resync();
  }

  /** Stops taking work and waits for running reconciles. */
  async stop(): Promise<void> {
    const attached = this.attached;
    if (!attached) return;
    attached.stop();
    await attached.queue.stop();
  }

  /** Enqueues every installed app, every pending removal, and the apps of leftover containers. */
  async resync(): Promise<void> {
    const { installs } = this.options;
    const keys = new Set([
      ...installs.list().map((install) => appKey(install.repo, install.name)),
      ...installs.removals().map((removal) => appKey(removal.repo, removal.name)),
    ]);
    const runtime = this.attached?.runtime;
    if (runtime) {
      try {
        // One listing for every app: each pass then starts from it instead of asking again.
        const events = this.events;
        const byKey = new Map<string, ContainerList>();
        for (const container of await runtime.listContainers({ [LABEL_BOX]: this.options.box })) {
          const app = splitApp(container.labels[LABEL_APP]);
          if (!app) continue;
          const key = appKey(app.repo, app.name);
          // Containers of apps nobody installed (a crash between steps, a hand-made copy) go too.
          keys.add(key);
          byKey.set(key, [...(byKey.get(key) ?? []), container]);
        }
        if (events === this.events) this.snapshot = { events, pending: new Set(keys), byKey };
      } catch (error) {
        this.options.log?.("listing containers failed", { error: errorText(error) });
      }
    }
    for (const key of keys) this.attached?.queue.enqueue(key);
  }

  /**
   * The app's containers from the last resync's listing, once, while no
   * Podman event has come in since (an event means the listing may be old).
   */
  private takeSnapshot(key: string): ContainerList | undefined {
    const snapshot = this.snapshot;
    if (!snapshot || snapshot.events !== this.events || !snapshot.pending.delete(key)) {
      return undefined;
    }
    return snapshot.byKey.get(key) ?? [];
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

  /** Calls `listener` with each progress line of the app's reconciles until the returned function is called. */
  follow(repo: string, name: string, listener: (progress: AppProgress) => void): () => void {
    const key = appKey(repo, name);
    const set = this.followers.get(key) ?? new Set();
    set.add(listener);
    this.followers.set(key, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.followers.delete(key);
    };
  }

  private tell(key: string, progress: AppProgress): void {
    for (const listener of this.followers.get(key) ?? []) listener(progress);
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
    const { source, plan, ingressPorts } = await this.compile(request);
    const reused = reusedVolumes(plan, await attached.storage.list(), request, (volume) =>
      installs.uninstalledVolumeVersion(volume),
    );
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
    const outcome = await this.request(attached, request.repo, request.name, waitMs);
    if (outcome?.terminal && installs.get(request.repo, request.name)) {
      // Undo: volumes this install made go, volumes it took back are moved aside again.
      installs.remove(
        request.repo,
        request.name,
        true,
        reused.map((volume) => volume.from),
        true,
      );
      await this.request(attached, request.repo, request.name, waitMs);
      throw outcome.error;
    }
    return { app: await this.view(request.repo, request.name), settled: outcome !== undefined };
  }

  /** What `install` would do with these answers: volumes made or taken back, ports, disk. Changes nothing. */
  async preview(request: InstallRequest): Promise<AppInstallPreview> {
    const attached = this.runtime();
    const { installs } = this.options;
    const freeBytes = await freeSpace(attached.storage.root);
    const quotasEnforced = attached.storage.capabilities.quotas;
    let compiled: { source: PackageSource; plan: CompiledPackage };
    try {
      compiled = await this.compile(request);
    } catch (error) {
      if (!isTownError(error) || error.issues.length === 0) throw error;
      const source = this.source(request);
      const fallback = previewInstall(
        source,
        this.options.catalog.index(),
        this.options.tld(),
        this.options.system(),
      );
      return {
        repo: request.repo,
        name: request.name,
        version: source.version,
        runtime: fallback.runtime,
        images: fallback.image === null ? [] : [fallback.image],
        volumes: [],
        ports: [],
        disk: { quotaBytes: 0, unboundedVolumes: 0, freeBytes, quotasEnforced, fits: true },
        questionsToAnswer: [
          ...new Set(error.issues.flatMap((issue) => (issue.question ? [issue.question] : []))),
        ],
        answerProblems: error.issues.filter((issue) => issue.question !== undefined),
        problems: error.issues.filter((issue) => issue.question === undefined),
      };
    }
    const { source, plan } = compiled;
    const reused = reusedVolumes(plan, await attached.storage.list(), request, (volume) =>
      installs.uninstalledVolumeVersion(volume),
    );
    const nodes = flattenPlan(plan).map(({ plan: node }) => node);
    const volumes = nodes.flatMap((node) =>
      node.volumes.map((volume) => {
        const storageName = nodeVolumeName(node, volume.name);
        const from = reused.find((r) => r.volume === storageName)?.from ?? null;
        return {
          instance: node.instance,
          name: volume.name,
          volume: storageName,
          mountpoint: volume.mountpoint,
          quota: volume.quota,
          action: from === null ? ("create" as const) : ("reuse" as const),
          from,
        };
      }),
    );
    const created = volumes.filter((volume) => volume.action === "create");
    const quotaBytes = created.reduce((sum, volume) => sum + (volume.quota ?? 0), 0);
    return {
      repo: request.repo,
      name: request.name,
      version: source.version,
      runtime: plan.runtime,
      images: [...new Set(nodes.flatMap((node) => (node.image === null ? [] : [node.image])))],
      volumes,
      ports: nodes.flatMap((node) => node.ports),
      disk: {
        quotaBytes,
        unboundedVolumes: created.filter((volume) => volume.quota === null).length,
        freeBytes,
        quotasEnforced,
        fits: freeBytes === null || quotaBytes <= freeBytes,
      },
      questionsToAnswer: [],
      answerProblems: [],
      problems: [],
    };
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
    const attached = this.runtime();
    const { installs, catalog } = this.options;
    const install = installs.get(request.repo, request.name);
    if (!install)
      throw new TownError("not_found", `${request.repo}/${request.name} is not installed`);
    const target = this.source(request);
    const answers = {
      ...savedAnswersAsGiven(target.definition.questions, install.answers),
      ...request.answers,
    };
    const { source, plan, ingressPorts } = await this.compile(
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
    const outcome = await this.request(attached, request.repo, request.name, waitMs);
    return { app: await this.view(request.repo, request.name), settled: outcome !== undefined };
  }

  private source(request: Pick<InstallRequest, "repo" | "name" | "version">): PackageSource {
    const source = this.options.catalog.index().find({
      repo: request.repo,
      name: request.name,
      ...(request.version === undefined ? {} : { version: request.version }),
    });
    if (!source) {
      this.options.catalog.checkLoaded(request.repo);
      throw new TownError(
        "not_found",
        `there is no valid ${request.repo}/${request.name}${request.version ? `@${request.version}` : ""}`,
      );
    }
    return source;
  }

  /**
   * Compiles a request against the ports in use on the box (those of
   * `replacing` count as free: they are its own), and picks the loopback
   * port each `http` port is published on for the ingress (kept from
   * `replacing` where it had one).
   */
  private async compile(
    request: Pick<InstallRequest, "repo" | "name" | "version" | "answers">,
    replacing?: InstallRecord,
  ): Promise<{
    source: PackageSource;
    plan: CompiledPackage;
    ingressPorts: Record<string, number>;
  }> {
    const { installs, catalog } = this.options;
    const source = this.source(request);
    const index = catalog.index();
    const holders = new Map<number, string>();
    for (const port of await (this.options.hostPorts ?? listeningPorts)()) {
      holders.set(port, "a program on this host");
    }
    const own = new Set(replacing ? [...portHolders([replacing]).keys()] : []);
    for (const port of own) holders.delete(port);
    for (const [port, holder] of portHolders(installs.list())) {
      if (!own.has(port)) holders.set(port, holder);
    }
    const plan = compilePackage(source, request.answers, {
      tld: this.options.tld(),
      system: this.options.system(),
      random: cryptoRandom,
      takenPorts: holders.keys(),
      portHolders: holders,
      resolveDependency: (dependency) => index.find(dependency),
    });
    if (plan.runtime !== "container") {
      throw new TownError(
        "invalid_package",
        `${request.repo}/${request.name} is a virtual machine; VMs are not supported yet`,
      );
    }
    checkAppNames(plan);
    checkDomainClaims(request.repo, request.name, plan, this.options.tld(), installs.list());
    const taken = new Set([...holders.keys(), ...portHolders([{ plan, ingressPorts: {} }]).keys()]);
    const ingressPorts: Record<string, number> = {};
    for (const { plan: node } of flattenPlan(plan)) {
      if (!node.ingress) continue;
      const kept = replacing?.ingressPorts[node.instance];
      const port = kept !== undefined && !taken.has(kept) ? kept : freePort(taken);
      ingressPorts[node.instance] = port;
      taken.add(port);
    }
    return { source, plan, ingressPorts };
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
    return (await this.request(attached, repo, name, waitMs)) !== undefined;
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
    const attached = this.runtime();
    const { installs } = this.options;
    const found =
      change === "start" || change === "stop"
        ? installs.setRunning(repo, name, change === "start")
        : installs.setEnabled(repo, name, change === "enable");
    if (!found && !installs.get(repo, name)) {
      throw new TownError("not_found", `${repo}/${name} is not installed`);
    }
    const outcome = await this.request(attached, repo, name, waitMs);
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
    for (const { plan } of [...nodes].reverse())
      await attached.runtime.stopContainer(plan.hostname);
    const outcome = await this.request(attached, repo, name, waitMs);
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
    const attached = this.runtime();
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
    const outcome = await this.request(attached, repo, name, waitMs);
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
  networkInputs(dashboardPort: number): NetworkInputs {
    // Names come from the TLD setting now, so changing it moves every name, route and certificate.
    const tld = this.options.tld();
    return {
      tld,
      dashboardPort,
      apps: this.options.installs.list().flatMap((install) => {
        const plan = install.plan;
        if (!plan) return [];
        const ingressPort = install.ingressPorts[plan.instance];
        return [
          {
            repo: install.repo,
            name: install.name,
            names: install.dnsPublished
              ? flattenPlan(plan).map(({ plan: node }) =>
                  packageDnsName(node.instance, nameScope(node), tld),
                )
              : [],
            ingress:
              plan.ingress && ingressPort !== undefined
                ? { host: packageDnsName(plan.instance, nameScope(plan), tld), port: ingressPort }
                : null,
            domains: plan.domains,
            // A disabled app keeps nothing open to the internet.
            ports: install.enabled
              ? publishedPorts(install).map((port) => ({
                  host: port.host,
                  protocol: "tcp" as const,
                  exposure: port.exposure,
                  instance: port.instance,
                }))
              : [],
          },
        ];
      }),
    };
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
    return (this.holds.get(appKey(repo, name)) ?? 0) > 0;
  }

  /**
   * Stops the installed app that owns a package volume, and keeps it stopped
   * until the returned release is called (which starts it again if it
   * should run). For anything else (user volumes, no such app) a no-op.
   */
  async holdVolume(volumeName: string): Promise<() => Promise<void>> {
    const parsed = parseVolumeName(volumeName);
    const attached = this.attached;
    const owner =
      parsed?.kind === "package" && attached
        ? this.options.installs
            .list()
            .find((install) =>
              install.plan
                ? flattenPlan(install.plan).some(
                    ({ plan }) =>
                      nameScope(plan) === parsed.repo && plan.instance === parsed.instance,
                  )
                : false,
            )
        : undefined;
    if (!owner || !attached) return () => Promise.resolve();
    const key = appKey(owner.repo, owner.name);
    this.holds.set(key, (this.holds.get(key) ?? 0) + 1);
    await this.request(attached, owner.repo, owner.name, INSTALL_WAIT_MS);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      const left = (this.holds.get(key) ?? 1) - 1;
      if (left > 0) this.holds.set(key, left);
      else this.holds.delete(key);
      await this.request(attached, owner.repo, owner.name, INSTALL_WAIT_MS);
    };
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
  private async request(
    attached: NonNullable<Apps["attached"]>,
    repo: string,
    name: string,
    waitMs: number,
  ): Promise<Outcome | undefined> {
    const key = appKey(repo, name);
    const generation = (this.requested.get(key) ?? 0) + 1;
    this.requested.set(key, generation);
    let timer: NodeJS.Timeout | undefined;
    const finished = new Promise<Outcome | undefined>((resolve) => {
      const waiters = attached.done.get(key) ?? [];
      waiters.push({ generation, resolve });
      attached.done.set(key, waiters);
      timer = setTimeout(() => {
        resolve(undefined);
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
    for (const container of await runtime.listContainers({ [LABEL_BOX]: this.options.box })) {
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
    const existing = await runtime.listContainers(appLabels(this.options.box, repo, name));
    return this.viewOf(install, new Map(existing.map((c) => [c.name, c.state])));
  }

  private viewOf(install: InstallRecord, states: ReadonlyMap<string, string>): AppView {
    const nodes = install.plan ? flattenPlan(install.plan) : [];
    return {
      repo: install.repo,
      name: install.name,
      version: install.version,
      enabled: install.enabled,
      running: install.running,
      held: this.isHeld(install.repo, install.name),
      postUpdatePending: install.postUpdateFor !== null,
      installedAt: install.installedAt,
      ports: publishedPorts(install),
      urls: appUrls(install, this.options.tld()),
      dnsPublished: install.dnsPublished,
      volumes: nodes.flatMap(({ plan }) =>
        plan.volumes.map((volume) => ({
          instance: plan.instance,
          name: volume.name,
          mountpoint: volume.mountpoint,
          quota: volume.quota,
        })),
      ),
      notes: appNotes(install.plan),
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
          if (event.attributes[LABEL_BOX] !== this.options.box) continue;
          this.events += 1;
          const app = splitApp(event.attributes[LABEL_APP]);
          if (app) this.enqueue(app.repo, app.name);
        }
      } catch {
        // The service restarted or went away: the periodic resync covers the gap.
      }
      await delay(EVENT_RETRY_MS, signal);
    }
  }
}

type ContainerList = Awaited<ReturnType<AppRuntime["listContainers"]>>;

/** How a reconcile a request waited for ended. */
interface Outcome {
  error: unknown;
  terminal: boolean;
}

interface Waiter {
  generation: number;
  resolve: (outcome: Outcome) => void;
}

/** `<repo>/<name>` from an app label; undefined for anything else. */
function splitApp(label: string | undefined): { repo: string; name: string } | undefined {
  const slash = label?.indexOf("/") ?? -1;
  if (label === undefined || slash <= 0 || slash === label.length - 1) return undefined;
  return { repo: label.slice(0, slash), name: label.slice(slash + 1) };
}

/**
 * The uninstalled volumes an install takes back: for each package volume of
 * the plan that does not exist, the newest uninstalled copy (of the asked
 * version, if one is asked for). None when reuse is turned off.
 */
export function reusedVolumes(
  plan: CompiledPackage,
  existing: readonly { name: string }[],
  request: Pick<InstallRequest, "reuseVolumes" | "importFromVersion">,
  versionOf: (volume: string) => string | undefined,
): { volume: string; from: string }[] {
  if (request.reuseVolumes === false && request.importFromVersion === undefined) return [];
  const names = new Set(existing.map((volume) => volume.name));
  const out: { volume: string; from: string }[] = [];
  for (const { plan: node } of flattenPlan(plan)) {
    for (const volume of node.volumes) {
      const target = nodeVolumeName(node, volume.name);
      if (names.has(target)) continue;
      let newest: { name: string; at: number } | undefined;
      for (const name of names) {
        const parsed = parseVolumeName(name);
        if (parsed?.kind !== "uninstalled") continue;
        if (packageVolumeName(parsed.repo, parsed.instance, parsed.volume) !== target) continue;
        if (
          request.importFromVersion !== undefined &&
          versionOf(name) !== request.importFromVersion
        ) {
          continue;
        }
        const at = parsed.uninstalledAt.getTime();
        if (!newest || at > newest.at) newest = { name, at };
      }
      if (newest) out.push({ volume: target, from: newest.name });
    }
  }
  return out;
}

/**
 * The volumes an upgrade takes over from the plan it replaces: those the
 * old plan had under a name made before names were injective, which the
 * reconciler renames to the new plan's names.
 */
export function movedVolumes(from: CompiledPackage, to: CompiledPackage): string[] {
  const had = new Set(
    flattenPlan(from).flatMap(({ plan: node }) =>
      node.volumes.map((volume) => nodeVolumeName(node, volume.name)),
    ),
  );
  return flattenPlan(to).flatMap(({ plan: node }) =>
    node.volumes.flatMap((volume) => {
      const legacy = legacyVolumeName(node, volume.name);
      return had.has(legacy) && legacy !== nodeVolumeName(node, volume.name) ? [legacy] : [];
    }),
  );
}

/** Bytes free for an unprivileged writer on the file system of `path`; null when it cannot be read. */
async function freeSpace(path: string): Promise<number | null> {
  try {
    const stats = await statfs(path);
    return stats.bavail * stats.bsize;
  } catch {
    return null;
  }
}

/** Host ports the installed apps publish (the ingress's loopback ports too), each with its app. */
export function portHolders(
  installs: readonly Pick<InstallRecord, "plan" | "ingressPorts">[],
): Map<number, string> {
  const holders = new Map<number, string>();
  for (const install of installs) {
    if (!install.plan) continue;
    const holder = `${install.plan.repo}/${install.plan.name}`;
    for (const { plan } of flattenPlan(install.plan)) {
      for (const port of plan.ports) if (port.host !== null) holders.set(port.host, holder);
    }
    for (const port of Object.values(install.ingressPorts)) holders.set(port, holder);
  }
  return holders;
}

/** The app's published host ports with their exposure; the ingress's loopback ports are not listed. */
function publishedPorts(install: InstallRecord): AppView["ports"] {
  if (!install.plan) return [];
  return flattenPlan(install.plan).flatMap(({ plan: node }) =>
    node.ports.flatMap((port) =>
      port.host === null
        ? []
        : [
            {
              instance: node.instance,
              name: port.name,
              host: port.host,
              container: port.container,
              exposure: portExposure(install, node, port),
            },
          ],
    ),
  );
}

/** The app's HTTPS name and its public domains, when it serves `http`. */
function appUrls(install: InstallRecord, tld: string): string[] {
  const plan = install.plan;
  if (!plan?.ingress) return [];
  return [packageDnsName(plan.instance, nameScope(plan), tld), ...plan.domains].map(
    (host) => `https://${host}/`,
  );
}

/** A random port in the auto range that is not taken. */
function freePort(taken: ReadonlySet<number>): number {
  const span = AUTO_PORT_MAX - AUTO_PORT_MIN + 1;
  const start = randomInt(span);
  for (let i = 0; i < span; i++) {
    const port = AUTO_PORT_MIN + ((start + i) % span);
    if (!taken.has(port)) return port;
  }
  throw new TownError("unavailable", "every port from 10000 to 60000 is taken");
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
