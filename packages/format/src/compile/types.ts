/** What compile takes (a package, options) and what it makes (a plan). */

import type { PackageDefinition } from "../definition/types.js";
import type { RandomSource } from "../questions.js";
import type { QuiesceMode } from "../rules.js";

/** One package version, ready to compile. */
export interface PackageSource {
  repo: string;
  name: string;
  version: string;
  definition: PackageDefinition;
}

export interface DependencyRequest {
  repo: string;
  name: string;
  /** Absent: the latest version in that repository. */
  version?: string;
}

export interface SystemInfo {
  hostname: string;
  /** What `@LOCAL_EXTERNAL_HOST@` and `.System.ExternalIP` give: the box as seen from outside. */
  externalIP: string;
  /** What `@LOCAL_INTERNAL_HOST@` and `.System.InternalIP` give: the box on the LAN. */
  internalIP: string;
}

export interface CompileOptions {
  tld: string;
  system: SystemInfo;
  /** Host ports used by installed packages and the system. */
  takenPorts?: Iterable<number>;
  /** Who holds some of the taken ports (`default/gitea`, `a program on the host`), named in errors. */
  portHolders?: ReadonlyMap<number, string>;
  random?: RandomSource;
  /** Finds a dependency's definition; undefined when there is none. */
  resolveDependency?: (request: DependencyRequest) => PackageSource | undefined;
}

export type Exposure = "external" | "internal";

export interface CompiledPort {
  /** Role name (`http`, `sql`) or null for a plain number mapping. */
  name: string | null;
  /** Null for the `http` port served by the ingress instead. */
  host: number | null;
  container: number;
  exposure: Exposure;
}

export interface CompiledVolume {
  name: string;
  mountpoint: string;
  quota: number | null;
  uid: number | null;
  gid: number | null;
  archive: string | null;
  git: string | null;
}

export interface CompiledPackage {
  name: string;
  version: string;
  repo: string;
  /**
   * The repository the names (DNS, container, volumes) are made under: the
   * installed app's, for its dependencies too. Read it with `nameScope`
   * (plans stored before it existed lack it).
   */
  scope: string;
  /** Install-instance name: the package name, or `<parent>--<key>` for a dependency. */
  instance: string;
  dnsName: string;
  /** Container name and host name on the app's private network. */
  hostname: string;
  description: string;
  supplies: string[];
  runtime: "container" | "vm";
  image: string | null;
  /** `sha256`: the image's checksum (lower-case hex) when the package gives one. */
  vm: { image: string; memory: number; cpus: number; sha256: string | null } | null;
  entrypoint: string[] | null;
  command: string[] | null;
  environment: Record<string, string>;
  ports: CompiledPort[];
  ingress: { host: string; port: number } | null;
  domains: string[];
  volumes: CompiledVolume[];
  archives: { image: string; directory: string; volume: string }[];
  gitSources: { url: string; branch: string | null; volume: string }[];
  files: { volume: string; path: string; content: string }[];
  notes: { label: string; value: string; type: string }[];
  postUpdate: string[];
  answers: Record<string, string>;
  /** Names of the answers that are secrets (`secret` and `oauth` questions), sorted. */
  secrets: string[];
  dependencies: CompiledDependency[];
  /**
   * This project's `metrics` extension: the container port and URL path its
   * Prometheus metrics are served at, null when the package declares none.
   * Absent in plans stored before it existed.
   */
  metrics: { port: number; path: string } | null;
  /**
   * This project's `backup` extension: how the app is quiesced before a
   * snapshot of its volumes. `stop`: its containers are stopped (given
   * `timeoutSeconds` before they are killed) and started again after;
   * `command`: `command` runs in its container first, for at most
   * `timeoutSeconds` (`command` is empty for `stop`). Null when the package
   * declares none: the snapshot is crash-consistent. Absent in plans stored
   * before it existed: read it as `plan.backup ?? null`.
   */
  backup?: { quiesce: QuiesceMode; command: string[]; timeoutSeconds: number } | null;
  /** sha256 of everything above: a changed hash means a changed plan. */
  hash: string;
}

export interface CompiledDependency extends CompiledPackage {
  key: string;
}
