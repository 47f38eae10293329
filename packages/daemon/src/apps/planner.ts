/**
 * Planning an app: compiling a request against the box (ports in use,
 * names, domains), the volumes it takes back, the ports it publishes with
 * their exposure, what an install would do (the preview) and what
 * networking serves for the installed apps. Reads state; changes nothing.
 */
import { randomInt } from "node:crypto";
import { statfs } from "node:fs/promises";
import {
  AUTO_PORT_MAX,
  AUTO_PORT_MIN,
  freeAutoPort,
  compilePackage,
  cryptoRandom,
  isTownError,
  nameScope,
  packageDnsName,
  TownError,
  type CompiledPackage,
  type CompiledPort,
  type Issue,
  type PackageSource,
  type SystemInfo,
} from "@townos/format";
import type { Catalog } from "../catalog/catalog.js";
import { previewInstall } from "../catalog/preview.js";
import { listeningPorts } from "../net/host-ports.js";
import type { NetworkInputs } from "../net/network.js";
import { WORKLOAD_NAME } from "../runtime/workload.js";
import { packageVolumeName, parseVolumeName } from "../storage/names.js";
import {
  defaultExposure,
  type ExposureLevel,
  type InstallRecord,
  type Installs,
} from "../store/installs.js";
import { checkDomainClaims } from "./domains.js";
import { flattenPlan, legacyVolumeName, nodeVolumeName, planNetworkName } from "./names.js";

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

/** A published host port of an app, with who can reach it. */
export interface PublishedPort {
  instance: string;
  name: string | null;
  host: number;
  container: number;
  exposure: ExposureLevel;
}

/** Where volumes live, as a preview and a reinstall read it (free space, kept volumes). */
export interface VolumeListing {
  readonly root: string;
  readonly capabilities: { quotas: boolean };
  list(): Promise<{ name: string }[]>;
}

/** A compiled request: its source, plan, and the loopback port of each `http` port for the ingress. */
export interface CompiledRequest {
  source: PackageSource;
  plan: CompiledPackage;
  ingressPorts: Record<string, number>;
}

export interface PlannerOptions {
  installs: Installs;
  catalog: Catalog;
  tld: () => string;
  system: () => SystemInfo;
  /** Ports something on the host listens on; default: read from /proc. */
  hostPorts?: () => Promise<Set<number>>;
}

export class AppPlanner {
  constructor(private readonly options: PlannerOptions) {}

  /** What `install` would do with these answers: volumes made or taken back, ports, disk. Changes nothing. */
  async preview(request: InstallRequest, storage: VolumeListing): Promise<AppInstallPreview> {
    const { installs } = this.options;
    const freeBytes = await freeSpace(storage.root);
    const quotasEnforced = storage.capabilities.quotas;
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
    const reused = reusedVolumes(plan, await storage.list(), request, (volume) =>
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

  /** The package a request names. @throws `not_found` */
  source(request: Pick<InstallRequest, "repo" | "name" | "version">): PackageSource {
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
  async compile(
    request: Pick<InstallRequest, "repo" | "name" | "version" | "answers">,
    replacing?: InstallRecord,
  ): Promise<CompiledRequest> {
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

  /** What networking serves for the installed apps: names, ingress routes, ports and exposures. */
  networkInputs(dashboardPort: number): Omit<NetworkInputs, "pages"> {
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
}

/**
 * Checks that every name the reconciler derives from a plan (network,
 * volumes) is valid, so a bad repository or instance name is refused before
 * the install is recorded. @throws TownError `invalid_argument`
 */
export function checkAppNames(plan: CompiledPackage): void {
  const network = planNetworkName(plan);
  if (!WORKLOAD_NAME.test(network)) {
    throw new TownError("invalid_argument", `"${network}" cannot name the app's network`);
  }
  for (const { plan: node } of flattenPlan(plan)) {
    for (const volume of node.volumes) nodeVolumeName(node, volume.name);
  }
}

/** The node's plan with its `http` port published on the loopback port the ingress proxies to. */
export function publishedPlan(install: InstallRecord, node: CompiledPackage): CompiledPackage {
  const ingressPort = install.ingressPorts[node.instance];
  if (ingressPort === undefined) return node;
  return {
    ...node,
    ports: node.ports.map((port) =>
      port.host === null && port.name === "http" ? { ...port, host: ingressPort } : port,
    ),
  };
}

/** Who can reach a port: the ingress's own port is loopback only; others as set, or their default. */
export function portExposure(
  install: InstallRecord,
  node: CompiledPackage,
  port: CompiledPort,
): ExposureLevel {
  if (port.name === "http" && port.host === install.ingressPorts[node.instance]) return "local";
  return (
    (port.host === null ? undefined : install.exposures[String(port.host)]) ??
    defaultExposure(port.exposure)
  );
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
export function publishedPorts(install: InstallRecord): PublishedPort[] {
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
export function appUrls(install: InstallRecord, tld: string): string[] {
  const plan = install.plan;
  if (!plan?.ingress) return [];
  return [packageDnsName(plan.instance, nameScope(plan), tld), ...plan.domains].map(
    (host) => `https://${host}/`,
  );
}

/** A random port in the auto range that is not taken. */
function freePort(taken: ReadonlySet<number>): number {
  const port = freeAutoPort(taken, randomInt);
  if (port === undefined) {
    throw new TownError(
      "unavailable",
      `every port from ${AUTO_PORT_MIN} to ${AUTO_PORT_MAX} is taken`,
    );
  }
  return port;
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
