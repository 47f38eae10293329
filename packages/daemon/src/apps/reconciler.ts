/**
 * The app reconciler: makes one app's containers, network and volumes match
 * its desired state (an install record, or a pending removal), with the
 * smallest change. It reads what really exists on every pass and never
 * trusts a cache, so it converges after a crash, a hand-made change or a
 * restart. A pass over an unchanged system makes no mutating call.
 */
import { isTownError, TownError, type CompiledPackage } from "@townos/format";
import type { Clock } from "../clock.js";
import {
  containerSpec,
  LABEL_SPEC_HASH,
  PODMAN_NAME,
  type SpecGenerator,
} from "../runtime/container-spec.js";
import type { NetworkSpec } from "../runtime/podman.js";
import type { CreateVolumeOptions } from "../storage/driver.js";
import { packageVolumeName, uninstalledVolumeName } from "../storage/names.js";
import type { TemplateFile, TemplateOutcome, TemplateVolume } from "../storage/seed.js";
import type { InstallRecord, RemovalRecord } from "../store/installs.js";

/** Label on every container and network of an app (dependencies included): `<repo>/<name>`. */
export const LABEL_APP = "town.app";
const KEY_PREFIX = "app/";

/** The work-queue key of an app. */
export function appKey(repo: string, name: string): string {
  return `${KEY_PREFIX}${repo}/${name}`;
}

/** Reads an app key back; undefined for keys of other kinds. */
export function parseAppKey(key: string): { repo: string; name: string } | undefined {
  if (!key.startsWith(KEY_PREFIX)) return undefined;
  const [repo, name, ...rest] = key.slice(KEY_PREFIX.length).split("/");
  if (!repo || !name || rest.length > 0) return undefined;
  return { repo, name };
}

/** The app's private network: its containers find each other there by name and alias. */
export function appNetworkName(repo: string, name: string): string {
  return `town-${repo}-${name}`;
}

/**
 * Checks that every name the reconciler derives from a plan (network,
 * volumes) is valid, so a bad repository or instance name is refused before
 * the install is recorded. @throws TownError `invalid_argument`
 */
export function checkAppNames(plan: CompiledPackage): void {
  const network = appNetworkName(plan.repo, plan.name);
  if (!PODMAN_NAME.test(network)) {
    throw new TownError("invalid_argument", `"${network}" cannot name the app's network`);
  }
  for (const { plan: node } of flattenPlan(plan)) {
    for (const volume of node.volumes) packageVolumeName(node.repo, node.instance, volume.name);
  }
}

/** The plan and its dependencies, dependencies first (deepest first), each with its alias. */
export function flattenPlan(plan: CompiledPackage): { plan: CompiledPackage; alias?: string }[] {
  const out: { plan: CompiledPackage; alias?: string }[] = [];
  const visit = (node: CompiledPackage, alias: string | undefined): void => {
    for (const dependency of node.dependencies) visit(dependency, dependency.key);
    out.push(alias === undefined ? { plan: node } : { plan: node, alias });
  };
  visit(plan, undefined);
  return out;
}

/** The container runtime as the reconciler uses it; the Podman driver satisfies it. */
export interface AppRuntime {
  /** All containers (running or not) carrying all the labels. Cheap. */
  listContainers(
    labels: Readonly<Record<string, string>>,
  ): Promise<{ name: string; state: string; labels: Record<string, string> }[]>;
  /** Creates (does not start); `conflict` when the name is taken. */
  createContainer(spec: SpecGenerator): Promise<string>;
  /** Idempotent: false when it ran already. */
  startContainer(name: string): Promise<boolean>;
  /** Idempotent: false when it was not running or absent. */
  stopContainer(name: string): Promise<boolean>;
  /** Stops and removes; false when absent. */
  removeContainer(name: string): Promise<boolean>;
  /** Undefined when absent. */
  inspectNetwork(name: string): Promise<object | undefined>;
  /** Idempotent: an existing network of that name is kept. */
  createNetwork(spec: NetworkSpec): Promise<object>;
  /** False when absent; fails while containers use it. */
  removeNetwork(name: string): Promise<boolean>;
}

/** The volume storage as the reconciler uses it; every StorageDriver satisfies it (see driver.ts). */
export interface AppStorage {
  path(name: string): string;
  exists(name: string): Promise<boolean>;
  create(name: string, options?: CreateVolumeOptions): Promise<unknown>;
  remove(name: string): Promise<boolean>;
  rename(from: string, to: string): Promise<void>;
}

/** Writes template files only where nothing is (`writeTemplates`). */
export type TemplateWriter = (
  files: readonly TemplateFile[],
  volumes: Readonly<Record<string, TemplateVolume>>,
) => Promise<TemplateOutcome[]>;

/** Where the desired state comes from. */
export interface AppDesiredState {
  get(repo: string, name: string): InstallRecord | undefined;
  removal(repo: string, name: string): RemovalRecord | undefined;
  /** Called once a removal is fully carried out. */
  finishRemoval(repo: string, name: string): void;
}

export interface AppReconcilerOptions {
  runtime: AppRuntime;
  storage: AppStorage;
  writeTemplates: TemplateWriter;
  desired: AppDesiredState;
  clock: Clock;
}

export interface ReconcileReport {
  /** Every mutating call made, in order (`create container gitea`): empty when nothing changed. */
  mutations: string[];
}

/** Host address published ports bind to; both exposures listen everywhere until routing exists. */
const HOST_ADDRESS = { external: "0.0.0.0", internal: "0.0.0.0" } as const;

export class AppReconciler {
  constructor(private readonly options: AppReconcilerOptions) {}

  /**
   * Converges one app. Errors are TownErrors naming the app and the step
   * (`install gitea: create volume data: …`), keeping the cause's code so
   * the queue knows whether retrying can help.
   */
  async reconcile(repo: string, name: string): Promise<ReconcileReport> {
    const install = this.options.desired.get(repo, name);
    const mutations: string[] = [];
    if (install) {
      await this.apply(install, mutations);
    } else {
      await this.remove(repo, name, this.options.desired.removal(repo, name), mutations);
    }
    return { mutations };
  }

  private async apply(install: InstallRecord, mutations: string[]): Promise<void> {
    const { runtime, storage } = this.options;
    const step = stepper(`install ${install.name}`);
    const plan = install.plan;
    if (!plan) {
      throw new TownError(
        "invalid_argument",
        `install ${install.name}: the install has no compiled plan; install it again`,
      );
    }
    const appLabel = { [LABEL_APP]: `${install.repo}/${install.name}` };
    const network = appNetworkName(install.repo, install.name);
    if (!(await step("inspect network", () => runtime.inspectNetwork(network)))) {
      await step(`create network ${network}`, () =>
        runtime.createNetwork({ name: network, labels: appLabel }),
      );
      mutations.push(`create network ${network}`);
    }

    const desired = new Map<string, SpecGenerator>();
    for (const { plan: node, alias } of flattenPlan(plan)) {
      const volumePaths: Record<string, string> = {};
      const templateVolumes: Record<string, TemplateVolume> = {};
      for (const volume of node.volumes) {
        const volumeName = await step(`volume ${volume.name}`, () =>
          Promise.resolve(packageVolumeName(node.repo, node.instance, volume.name)),
        );
        // A uid without a gid gets the same number as its group, as `chown uid:` would.
        const owner =
          volume.uid !== null ? { uid: volume.uid, gid: volume.gid ?? volume.uid } : undefined;
        if (!(await step(`inspect volume ${volume.name}`, () => storage.exists(volumeName)))) {
          await step(`create volume ${volume.name}`, () =>
            storage.create(volumeName, { quota: volume.quota, ...(owner ? { owner } : {}) }),
          );
          mutations.push(`create volume ${volumeName}`);
        }
        // Quota and owner are applied on creation only: changing them on a live volume is a later step.
        const path = storage.path(volumeName);
        volumePaths[volume.name] = path;
        templateVolumes[volume.name] = { dir: path, ...(owner ? { owner } : {}) };
      }
      if (node.files.length > 0) {
        const outcomes = await step(`write templates of ${node.instance}`, () =>
          this.options.writeTemplates(node.files, templateVolumes),
        );
        for (const outcome of outcomes.filter((o) => o.written)) {
          mutations.push(`write template ${outcome.volume}:${outcome.path}`);
        }
      }
      const spec = await step(`container spec ${node.hostname}`, () =>
        Promise.resolve(
          containerSpec({
            plan: node,
            network,
            ...(alias === undefined ? {} : { alias }),
            volumePaths,
            hostAddress: HOST_ADDRESS,
            labels: appLabel,
          }),
        ),
      );
      desired.set(spec.name, spec);
    }

    const existing = await step("list containers", () => runtime.listContainers(appLabel));
    const states = new Map<string, string>();
    for (const container of existing) {
      const spec = desired.get(container.name);
      if (spec && container.labels[LABEL_SPEC_HASH] === spec.labels[LABEL_SPEC_HASH]) {
        states.set(container.name, container.state);
        continue;
      }
      // Out of date or no longer part of the app.
      await step(`remove container ${container.name}`, () =>
        runtime.removeContainer(container.name),
      );
      mutations.push(`remove container ${container.name}`);
    }
    // Map order is dependency order: dependencies are created and started first.
    for (const [containerName, spec] of desired) {
      if (!states.has(containerName)) {
        await step(`create container ${containerName}`, () => runtime.createContainer(spec));
        mutations.push(`create container ${containerName}`);
        states.set(containerName, "created");
      }
      const running = states.get(containerName) === "running";
      if (install.enabled && !running) {
        await step(`start container ${containerName}`, () => runtime.startContainer(containerName));
        mutations.push(`start container ${containerName}`);
      } else if (!install.enabled && running) {
        await step(`stop container ${containerName}`, () => runtime.stopContainer(containerName));
        mutations.push(`stop container ${containerName}`);
      }
    }
  }

  private async remove(
    repo: string,
    name: string,
    removal: RemovalRecord | undefined,
    mutations: string[],
  ): Promise<void> {
    const { runtime, storage } = this.options;
    const step = stepper(`uninstall ${name}`);
    const appLabel = { [LABEL_APP]: `${repo}/${name}` };
    const existing = await step("list containers", () => runtime.listContainers(appLabel));
    for (const container of existing) {
      await step(`remove container ${container.name}`, () =>
        runtime.removeContainer(container.name),
      );
      mutations.push(`remove container ${container.name}`);
    }
    const network = appNetworkName(repo, name);
    if (await step("inspect network", () => runtime.inspectNetwork(network))) {
      await step(`remove network ${network}`, () => runtime.removeNetwork(network));
      mutations.push(`remove network ${network}`);
    }
    // Without a pending removal the volumes are not ours to touch: only leftovers were cleaned.
    if (!removal) return;
    const at = new Date(this.options.clock());
    for (const { plan: node } of removal.plan ? flattenPlan(removal.plan) : []) {
      for (const volume of node.volumes) {
        const volumeName = await step(`volume ${volume.name}`, () =>
          Promise.resolve(packageVolumeName(node.repo, node.instance, volume.name)),
        );
        if (!(await step(`inspect volume ${volume.name}`, () => storage.exists(volumeName)))) {
          continue;
        }
        if (removal.purge) {
          await step(`delete volume ${volume.name}`, () => storage.remove(volumeName));
          mutations.push(`delete volume ${volumeName}`);
        } else {
          const aside = uninstalledVolumeName(volumeName, at);
          await step(`move volume ${volume.name} aside`, () => storage.rename(volumeName, aside));
          mutations.push(`move volume ${volumeName} to ${aside}`);
        }
      }
    }
    this.options.desired.finishRemoval(repo, name);
  }
}

/** Runs one step, adding `<what>: <step>: ` to any error while keeping its code. */
function stepper(what: string): <T>(step: string, run: () => Promise<T>) => Promise<T> {
  return async (step, run) => {
    try {
      return await run();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new TownError(
        isTownError(error) ? error.code : "internal",
        `${what}: ${step}: ${message}`,
        {
          cause: error,
          ...(isTownError(error) ? { issues: error.issues } : {}),
        },
      );
    }
  };
}
