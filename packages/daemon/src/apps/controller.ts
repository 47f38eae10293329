/**
 * The app controller: makes one app's containers, network and volumes match
 * its desired state (an install record, or a pending removal), with the
 * smallest change. It reads what really exists on every pass and never
 * trusts a cache, so it converges after a crash, a hand-made change or a
 * restart. A pass over an unchanged system makes no mutating call.
 */
import { planSecrets, TownError, type CompiledPackage } from "@townos/format";
import type { Clock } from "../clock.js";
import { redactError } from "../redact.js";
import { packageWorkload } from "../runtime/package-workload.js";
import {
  LABEL_SPEC_HASH,
  type HostRuntime,
  type WorkloadKind,
  type WorkloadSummary,
} from "../runtime/workload.js";
import type { CreateVolumeOptions, Owner } from "../storage/driver.js";
import { packageVolumeName, parseVolumeName, uninstalledVolumeName } from "../storage/names.js";
import type { TemplateFile, TemplateOutcome, TemplateVolume } from "../storage/seed.js";
import type { InstallRecord, RemovalRecord } from "../store/installs.js";
import { HOST_ADDRESS } from "./host-address.js";
import { appLabels } from "./labels.js";
import {
  appNetworkName,
  flattenPlan,
  legacyNetworkName,
  legacyVolumeName,
  nodeVolumeName,
  planNetworkName,
} from "./names.js";
import { portExposure, publishedPlan } from "./planner.js";
import { Steps, type ReconcileProgress } from "./steps.js";

/** The network carries the labels of this app of this box: only then is it the app's to use or remove. */
function ownsNetwork(network: { labels?: Record<string, string> }, labels: Record<string, string>) {
  return Object.entries(labels).every(([key, value]) => network.labels?.[key] === value);
}

/** What the controller reads of a listing of workloads. */
export type WorkloadList = Pick<
  WorkloadSummary,
  "name" | "state" | "exitedAt" | "labels" | "kind"
>[];

/** The volume storage as the reconciler uses it; every StorageDriver satisfies it (see driver.ts). */
export interface AppStorage {
  readonly capabilities: { quotas: boolean };
  path(name: string): string;
  exists(name: string): Promise<boolean>;
  create(name: string, options?: CreateVolumeOptions): Promise<unknown>;
  remove(name: string): Promise<boolean>;
  rename(from: string, to: string): Promise<void>;
  attributes(name: string): Promise<{ quota: number | null; owner: Owner } | undefined>;
  setQuota(name: string, bytes: number | null): Promise<void>;
  setOwner(name: string, owner: Owner): Promise<void>;
}

/** Writes template files only where nothing is (`writeTemplates`). */
export type TemplateWriter = (
  files: readonly TemplateFile[],
  volumes: Readonly<Record<string, TemplateVolume>>,
) => Promise<TemplateOutcome[]>;

/** Fills empty volumes; each answers false (and changes nothing) when the volume is not empty. */
export interface VolumeSeeder {
  fromGit(
    dir: string,
    source: { url: string; branch: string | null },
    owner: Owner | undefined,
  ): Promise<boolean>;
  /** `labels` go on the short-lived container the directory is read from. */
  fromImage(
    dir: string,
    source: { image: string; directory: string },
    owner: Owner | undefined,
    labels: Readonly<Record<string, string>>,
  ): Promise<boolean>;
}

/** The VM image store as the controller uses it (runtime/qemu/images.ts behind it). */
export interface VmImageSource {
  /** Whether the store holds the image a plan names (an http(s) URL or a store name). */
  has(reference: string): Promise<boolean>;
  /** Downloads, checks and converts it unless held; a store name it lacks is `not_found`. */
  fetch(
    reference: string,
    options: { sha256: string | null; onProgress: (line: string) => void },
  ): Promise<void>;
}

/** Where the desired state comes from. */
export interface AppDesiredState {
  get(repo: string, name: string): InstallRecord | undefined;
  removal(repo: string, name: string): RemovalRecord | undefined;
  /** Called once a removal is fully carried out. */
  finishRemoval(repo: string, name: string): void;
  /** The post_update commands of that plan ran. */
  finishPostUpdate(repo: string, name: string, planHash: string): void;
  /** A volume was moved aside: remember its version for a later reinstall. */
  recordUninstalledVolume(volume: string, version: string): void;
  /** An uninstalled volume was taken back. */
  forgetUninstalledVolume(volume: string): void;
  /** The install made this volume itself: undoing a failed install may delete it. */
  recordCreatedVolume(repo: string, name: string, volume: string): void;
}

export interface AppReconcilerOptions {
  runtime: HostRuntime;
  storage: AppStorage;
  writeTemplates: TemplateWriter;
  seeder: VolumeSeeder;
  desired: AppDesiredState;
  clock: Clock;
  /** This install's id (`LABEL_BOX`). */
  box: string;
  /** Apps held stopped for a while (an upload into their volume), whatever their desired state. */
  held?: (repo: string, name: string) => boolean;
  /** Base images of VMs; absent on a box that cannot run them (no QEMU). */
  vmImages?: VmImageSource;
  /** Registries (`host:port`) pulled from over plain HTTP. */
  insecureRegistries?: () => readonly string[];
  /** How long a volume's quota and owner are trusted before being read again. Default 10 minutes. */
  volumeCheckMs?: number;
}

export interface ReconcileReport {
  /** Every mutating call made, in order (`create container gitea`): empty when nothing changed. */
  mutations: string[];
  /** A container was left to settle before being started: look again after this long. */
  requeueAfterMs?: number;
}

const VOLUME_CHECK_MS = 10 * 60_000;

/**
 * How long a container that just stopped is left alone before being started
 * again. Whoever stopped it may be removing it (`podman rm -f` by hand):
 * Podman 4.3 lets a start slip in between the kill and the removal, and then
 * removes the record of a running container, whose orphaned process keeps
 * serving the old version on the app's port (a later start fails with
 * "address already in use"). A crashed container is Podman's to restart
 * (restart policy), so only hand stops and removals wait.
 */
export const SETTLE_MS = 5_000;

export class AppReconciler {
  /** Per volume: the quota and owner last seen equal to the plan, and when. */
  private readonly checkedVolumes = new Map<string, { key: string; at: number }>();
  /** Containers this reconciler stopped and has not started since: they need not settle. */
  private readonly stoppedHere = new Set<string>();

  constructor(private readonly options: AppReconcilerOptions) {}

  /** Stops one of an app's containers now (a restart): the next pass starts it without letting it settle. */
  async stop(name: string): Promise<void> {
    this.stoppedHere.add(name);
    await this.options.runtime.stop(name);
  }

  /**
   * Converges one app. Errors are TownErrors naming the app and the step
   * (`install gitea: create volume data: …`), keeping the cause's code so
   * the queue knows whether retrying can help.
   */
  async reconcile(
    repo: string,
    name: string,
    onProgress?: (progress: ReconcileProgress) => void,
    known?: WorkloadList,
  ): Promise<ReconcileReport> {
    const install = this.options.desired.get(repo, name);
    const removal = install ? undefined : this.options.desired.removal(repo, name);
    // Steps and errors name git URLs and post_update commands, which may carry the plan's secrets.
    const plan = install?.plan ?? removal?.plan;
    const secrets = plan ? planSecrets(plan) : [];
    const steps = new Steps(install ? `install ${name}` : `uninstall ${name}`, onProgress, secrets);
    // A fresh listing of the app's containers, unless the caller has one (a resync lists all apps at once).
    const containers = (labels: Record<string, string>): Promise<WorkloadList> =>
      known
        ? Promise.resolve(known)
        : steps.look("list containers", () => this.options.runtime.list(labels));
    let settling: number | undefined;
    try {
      if (install) {
        settling = await this.apply(install, steps, containers);
      } else {
        await this.remove(repo, name, removal, steps, containers);
      }
    } catch (error) {
      throw redactError(error, secrets);
    }
    return settling === undefined
      ? { mutations: steps.mutations }
      : { mutations: steps.mutations, requeueAfterMs: settling };
  }

  /** Converges an installed app; returns how long to wait when a stopped container must settle first. */
  private async apply(
    install: InstallRecord,
    steps: Steps,
    containers: (labels: Record<string, string>) => Promise<WorkloadList>,
  ): Promise<number | undefined> {
    const { runtime, storage } = this.options;
    const plan = install.plan;
    if (!plan) {
      throw new TownError(
        "invalid_argument",
        `install ${install.name}: the install has no compiled plan; install it again`,
      );
    }
    const appLabel = appLabels(this.options.box, install.repo, install.name);
    const network = planNetworkName(plan);
    const nodes = flattenPlan(plan).map(({ plan: node, alias }) => {
      const published = publishedPlan(install, node);
      return {
        node,
        workload: packageWorkload({
          plan: published,
          network,
          ...(alias === undefined ? {} : { alias }),
          volumePaths: Object.fromEntries(
            node.volumes.map((volume) => [
              volume.name,
              storage.path(nodeVolumeName(node, volume.name)),
            ]),
          ),
          hostAddress: (port) => HOST_ADDRESS[portExposure(install, node, port)],
          labels: appLabel,
        }),
      };
    });
    const fingerprints = new Map(
      nodes.map(({ workload }) => [workload.name, runtime.fingerprint(workload)]),
    );

    const existing = await containers(appLabel);
    const current = new Map<string, string>();
    let settling: number | undefined;
    for (const container of existing) {
      const wanted = fingerprints.get(container.name);
      if (wanted !== undefined && container.labels[LABEL_SPEC_HASH] === wanted) {
        current.set(container.name, container.state);
        const wait = this.stoppedHere.has(container.name)
          ? 0
          : settleWait(container, this.options.clock());
        if (wait > 0) settling = Math.max(settling ?? 0, wait);
        continue;
      }
      // Out of date or no longer part of the app.
      await steps.act(`remove ${noun(container)} ${container.name}`, () =>
        runtime.remove(container.name),
      );
      this.stoppedHere.delete(container.name);
    }
    // Running containers of this app prove its network exists: skip that call then.
    if (current.size < nodes.length) {
      const seen = await steps.look("inspect network", () => runtime.inspectNetwork(network));
      if (seen && !ownsNetwork(seen, appLabel)) {
        throw new TownError(
          "conflict",
          `install ${install.name}: the network ${network} belongs to another app`,
        );
      }
      if (!seen) {
        await steps.act(`create network ${network}`, () =>
          runtime.ensureNetwork({ name: network, labels: appLabel }),
        );
      }
      // An upgrade from a plan made before names were injective leaves the old network unused.
      await this.removeNetwork(
        legacyNetworkName(install.repo, install.name),
        network,
        appLabel,
        steps,
      );
    }

    for (const { node, workload } of nodes) {
      const { volumes, reattached } = await this.volumes(install, node, steps);
      if (!current.has(workload.name)) {
        // Volumes taken back from an uninstall hold the app's data: never seeded again.
        const seedable = Object.fromEntries(
          Object.entries(volumes).filter(([name]) => !reattached.has(name)),
        );
        await this.seed(node, seedable, appLabel, steps);
        await (workload.kind === "vm"
          ? this.ensureVmImage(node, steps)
          : this.ensureImage(workload.image, steps));
      }
      if (node.files.length > 0) {
        const outcomes = await steps.look(`write templates of ${node.instance}`, () =>
          this.options.writeTemplates(node.files, volumes),
        );
        for (const outcome of outcomes.filter((o) => o.written)) {
          steps.record(`write template ${outcome.volume}:${outcome.path}`);
        }
      }
    }

    const running = install.running && !(this.options.held?.(install.repo, install.name) ?? false);
    // Nothing starts while one of the app's containers settles: dependencies start first.
    if (running && settling !== undefined) return settling;
    // Dependencies first on start; the app first on stop (reverse order).
    for (const { workload } of nodes) {
      const { name } = workload;
      if (!current.has(name)) {
        await steps.act(`create ${noun(workload)} ${name}`, () => runtime.ensure(workload));
        current.set(name, "created");
      }
      if (running && current.get(name) !== "running") {
        await steps.act(`start ${noun(workload)} ${name}`, () => runtime.start(name));
        this.stoppedHere.delete(name);
      }
    }
    for (const { workload } of [...nodes].reverse()) {
      if (!running && current.get(workload.name) === "running") {
        await steps.act(`stop ${noun(workload)} ${workload.name}`, () => this.stop(workload.name));
      }
    }
    const main = nodes[nodes.length - 1]?.workload.name;
    if (running && main !== undefined && install.postUpdateFor === plan.hash) {
      for (const command of plan.postUpdate) {
        const result = await steps.act(`run post_update "${command}"`, () =>
          runtime.exec(main, ["/bin/sh", "-c", command]),
        );
        if (result.exitCode !== 0) {
          const output = (result.stderr || result.stdout).trim().slice(-500);
          throw new TownError(
            "io",
            `install ${install.name}: post_update "${command}" exited with ${result.exitCode}${output ? `: ${output}` : ""}`,
          );
        }
      }
      this.options.desired.finishPostUpdate(install.repo, install.name, plan.hash);
    }
    return undefined;
  }

  /**
   * Makes the node's volumes exist with the plan's quota and owner; returns
   * them for templates and seeding, and which were taken back in this pass.
   */
  private async volumes(
    install: InstallRecord,
    node: CompiledPackage,
    steps: Steps,
  ): Promise<{ volumes: Record<string, TemplateVolume>; reattached: Set<string> }> {
    const { storage } = this.options;
    const out: Record<string, TemplateVolume> = {};
    const reattached = new Set<string>();
    for (const volume of node.volumes) {
      const volumeName = nodeVolumeName(node, volume.name);
      // A uid without a gid gets the same number as its group, as `chown uid:` would.
      const owner =
        volume.uid !== null ? { uid: volume.uid, gid: volume.gid ?? volume.uid } : undefined;
      out[volume.name] = { dir: storage.path(volumeName), ...(owner ? { owner } : {}) };
      if (!(await steps.look(`inspect volume ${volume.name}`, () => storage.exists(volumeName)))) {
        const reuse = await this.reusable(install, volumeName, legacyVolumeName(node, volume.name));
        if (reuse) {
          await steps.act(`reattach volume ${volumeName} from ${reuse}`, () =>
            storage.rename(reuse, volumeName),
          );
          this.options.desired.forgetUninstalledVolume(reuse);
          reattached.add(volume.name);
        } else {
          await steps.act(`create volume ${volumeName}`, () =>
            storage.create(volumeName, { quota: volume.quota, ...(owner ? { owner } : {}) }),
          );
          this.options.desired.recordCreatedVolume(install.repo, install.name, volumeName);
          this.checkedVolumes.set(volumeName, {
            key: volumeKey(volume.quota, owner),
            at: this.options.clock(),
          });
          continue;
        }
      }
      await this.checkVolume(volumeName, volume.quota, owner, steps);
    }
    return { volumes: out, reattached };
  }

  /**
   * A volume the install asked to take over for this package volume, when it
   * is still there: an uninstalled copy, or its own volume under the name
   * it had before names were injective (`legacy`).
   */
  private async reusable(
    install: InstallRecord,
    volumeName: string,
    legacy: string,
  ): Promise<string | undefined> {
    for (const candidate of install.reused) {
      const parsed = parseVolumeName(candidate);
      const target =
        parsed?.kind === "uninstalled"
          ? packageVolumeName(parsed.repo, parsed.instance, parsed.volume)
          : candidate === legacy && parsed?.kind === "package"
            ? volumeName
            : undefined;
      if (target !== volumeName) continue;
      if (await this.options.storage.exists(candidate)) return candidate;
    }
    return undefined;
  }

  /** Applies a quota or owner that differs from the plan (changed by hand, or by an upgrade). */
  private async checkVolume(
    volumeName: string,
    quota: number | null,
    owner: Owner | undefined,
    steps: Steps,
  ): Promise<void> {
    const { storage, clock } = this.options;
    const key = volumeKey(quota, owner);
    const checked = this.checkedVolumes.get(volumeName);
    const maxAge = this.options.volumeCheckMs ?? VOLUME_CHECK_MS;
    if (checked?.key === key && clock() - checked.at < maxAge) return;
    const seen = await steps.look(`inspect volume ${volumeName}`, () =>
      storage.attributes(volumeName),
    );
    if (!seen) return;
    if (storage.capabilities.quotas && seen.quota !== quota) {
      await steps.act(`set quota of ${volumeName}`, () => storage.setQuota(volumeName, quota));
    }
    if (owner && (seen.owner.uid !== owner.uid || seen.owner.gid !== owner.gid)) {
      await steps.act(`set owner of ${volumeName}`, () => storage.setOwner(volumeName, owner));
    }
    this.checkedVolumes.set(volumeName, { key, at: clock() });
  }

  /** Fills the node's empty volumes from images and git, before its container first starts. */
  private async seed(
    node: CompiledPackage,
    volumes: Readonly<Record<string, TemplateVolume>>,
    labels: Readonly<Record<string, string>>,
    steps: Steps,
  ): Promise<void> {
    const { seeder } = this.options;
    const sources: {
      volume: string;
      what: string;
      run: (v: TemplateVolume) => Promise<boolean>;
    }[] = [
      ...node.archives.map((archive) => ({
        volume: archive.volume,
        what: `${archive.image}:${archive.directory}`,
        run: (v: TemplateVolume) => seeder.fromImage(v.dir, archive, v.owner, labels),
      })),
      ...node.gitSources.map((git) => ({
        volume: git.volume,
        what: git.url,
        run: (v: TemplateVolume) => seeder.fromGit(v.dir, git, v.owner),
      })),
      ...node.volumes.flatMap((volume) =>
        volume.git === null
          ? []
          : [
              {
                volume: volume.name,
                what: volume.git,
                run: (v: TemplateVolume) =>
                  seeder.fromGit(v.dir, { url: volume.git ?? "", branch: null }, v.owner),
              },
            ],
      ),
    ];
    for (const source of sources) {
      const volume = volumes[source.volume];
      if (!volume) continue;
      const step = `seed volume ${source.volume} from ${source.what}`;
      steps.announce(step);
      if (await steps.look(step, () => source.run(volume))) steps.record(step);
    }
  }

  /** Pulls the image unless it is here already. */
  private async ensureImage(image: string, steps: Steps): Promise<void> {
    const { runtime } = this.options;
    if (await steps.look(`inspect image ${image}`, () => runtime.imageExists(image))) return;
    await steps.act(`pull image ${image}`, () =>
      runtime.pullImage(image, {
        onProgress: (line) => {
          steps.detail(`pull image ${image}`, line);
        },
        ...(isInsecure(image, this.options.insecureRegistries?.() ?? [])
          ? { tlsVerify: false }
          : {}),
      }),
    );
  }

  /** Gets the base image of a VM unless the store has it, its progress shown as the step's detail. */
  private async ensureVmImage(node: CompiledPackage, steps: Steps): Promise<void> {
    const { vmImages } = this.options;
    if (node.vm === null) return;
    const { image, sha256 } = node.vm;
    if (!vmImages) {
      throw new TownError(
        "unavailable",
        `${node.instance} is a virtual machine, and this box cannot run them (QEMU is not set up)`,
      );
    }
    if (await steps.look(`inspect VM image ${image}`, () => vmImages.has(image))) return;
    const step = `download VM image ${image}`;
    await steps.act(step, () =>
      vmImages.fetch(image, {
        sha256,
        onProgress: (line) => {
          steps.detail(step, line);
        },
      }),
    );
  }

  private async remove(
    repo: string,
    name: string,
    removal: RemovalRecord | undefined,
    steps: Steps,
    containers: (labels: Record<string, string>) => Promise<WorkloadList>,
  ): Promise<void> {
    const { runtime, storage } = this.options;
    const appLabel = appLabels(this.options.box, repo, name);
    const existing = await containers(appLabel);
    // The app first, its dependencies last (the reverse of their start order).
    for (const container of [...existing].reverse()) {
      await steps.act(`remove ${noun(container)} ${container.name}`, () =>
        runtime.remove(container.name),
      );
      this.stoppedHere.delete(container.name);
    }
    // Both names: the app may have been installed before names were injective.
    for (const network of [appNetworkName(repo, name), legacyNetworkName(repo, name)]) {
      await this.removeNetwork(network, undefined, appLabel, steps);
    }
    // Without a pending removal the volumes are not ours to touch: only leftovers were cleaned.
    if (!removal) return;
    const at = new Date(this.options.clock());
    for (const { plan: node } of removal.plan ? flattenPlan(removal.plan) : []) {
      for (const volume of node.volumes) {
        const volumeName = nodeVolumeName(node, volume.name);
        if (
          !(await steps.look(`inspect volume ${volume.name}`, () => storage.exists(volumeName)))
        ) {
          continue;
        }
        const reused = removal.keep.some((kept) => {
          const parsed = parseVolumeName(kept);
          return (
            parsed?.kind === "uninstalled" &&
            packageVolumeName(parsed.repo, parsed.instance, parsed.volume) === volumeName
          );
        });
        // An undo touches only what the failed install made (and moves back what it took over).
        if (removal.onlyVolumes && !reused && !removal.onlyVolumes.includes(volumeName)) continue;
        if (removal.purge && !reused) {
          await steps.act(`delete volume ${volumeName}`, () => storage.remove(volumeName));
        } else {
          const aside = uninstalledVolumeName(volumeName, at);
          this.options.desired.recordUninstalledVolume(aside, removal.version);
          await steps.act(`move volume ${volumeName} to ${aside}`, () =>
            storage.rename(volumeName, aside),
          );
        }
        this.checkedVolumes.delete(volumeName);
      }
    }
    this.options.desired.finishRemoval(repo, name);
  }

  /** Removes the app's network of that name (unless it is `keep`); another app's is left alone. */
  private async removeNetwork(
    network: string,
    keep: string | undefined,
    labels: Record<string, string>,
    steps: Steps,
  ): Promise<void> {
    const { runtime } = this.options;
    if (network === keep) return;
    const seen = await steps.look(`inspect network ${network}`, () =>
      runtime.inspectNetwork(network),
    );
    if (seen && ownsNetwork(seen, labels)) {
      await steps.act(`remove network ${network}`, () => runtime.removeNetwork(network));
    }
  }
}

/** Whether the image's registry (the first part of a normalized reference) is one reached over plain HTTP. */
export function isInsecure(image: string, insecure: readonly string[]): boolean {
  return insecure.includes(image.slice(0, image.indexOf("/")).toLowerCase());
}

/** How steps name a workload: `container` or `vm`. */
function noun(workload: { kind?: WorkloadKind }): string {
  return workload.kind === "vm" ? "vm" : "container";
}

function volumeKey(quota: number | null, owner: Owner | undefined): string {
  return `${quota ?? "none"}:${owner ? `${owner.uid}:${owner.gid}` : "any"}`;
}

/** How long `container` must still be left alone before it may be started (see SETTLE_MS). */
function settleWait(container: WorkloadList[number], now: number): number {
  // Someone is stopping or removing it right now.
  if (container.state === "stopping" || container.state === "removing") return SETTLE_MS;
  if (container.state !== "exited" && container.state !== "stopped") return 0;
  const exitedAt = container.exitedAt?.getTime();
  return exitedAt === undefined ? 0 : Math.max(0, exitedAt + SETTLE_MS - now);
}
