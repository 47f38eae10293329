/**
 * Turns one container or VM of a compiled plan into the neutral `Workload`
 * the runtime runs. Pure: no I/O, no clock, no randomness; the same input always
 * gives the same workload (and so the same fingerprint in every runtime).
 *
 * The workload carries the labels the controller finds its workloads by
 * (`town.repo`, `town.name`, `town.instance`); the runtime adds its
 * fingerprint (`town.spec-hash`).
 */
import { isAbsolute, join, posix } from "node:path";
import { isIP } from "node:net";
import {
  DNS_LABEL,
  findControlCharacter,
  TownError,
  VM_DISK_VOLUME,
  type CompiledPackage,
  type CompiledPort,
  type Exposure,
} from "@townos/format";
import {
  LABEL_SPEC_HASH,
  WORKLOAD_NAME,
  type Mount,
  type PublishedPort,
  type Ulimit,
  type Workload,
} from "./workload.js";
import { vmImageName } from "./qemu/image-name.js";

export const LABEL_REPO = "town.repo";
export const LABEL_NAME = "town.name";
export const LABEL_INSTANCE = "town.instance";
const RESERVED_LABELS: readonly string[] = [
  LABEL_REPO,
  LABEL_NAME,
  LABEL_INSTANCE,
  LABEL_SPEC_HASH,
];
const MAX_LABEL_BYTES = 4096;
/** A VM's own disk: this file in its `vm-disk` volume. */
export const VM_DISK_FILE = "disk.qcow2";

export interface PackageWorkloadInput {
  /** A compiled plan. */
  plan: CompiledPackage;
  /** The app's private network; its workloads find each other there by name and alias. */
  network: string;
  /** Extra DNS name on the network: the dependency key for a dependency, absent for the app. */
  alias?: string;
  /** Host directory of each of the plan's volumes, by volume name (absolute paths). */
  volumePaths: Readonly<Record<string, string>>;
  /** Host address a published port binds to, e.g. `127.0.0.1` for ports kept on the box. */
  hostAddress: Readonly<Record<Exposure, string>> | ((port: CompiledPort) => string);
  /** Labels added to the reserved `town.*` ones (which they may not override). */
  labels?: Readonly<Record<string, string>>;
  /**
   * Replaces the host's default ulimits for this workload, all of them: when
   * given, list every limit the host needs.
   */
  ulimits?: readonly Ulimit[];
}

/**
 * Builds the workload for one container or VM of a plan (the app or one of
 * its dependencies: call it once per node). Ports without a host port (the
 * `http` port the ingress serves) are not published. Throws TownError
 * `invalid_argument` for input the caller should have checked: a plan
 * without its image, a volume without a host path, a bad address, alias,
 * label or ulimit.
 *
 * A VM joins no container network (QEMU's user-mode networking forwards its
 * published ports); its image is the VM image store's name for `vm.image`,
 * its disk a file in its `vm-disk` volume, and its other volumes are shared
 * with the guest under their names.
 */
export function packageWorkload(input: PackageWorkloadInput): Workload {
  const { plan } = input;
  const fail = (message: string): never => {
    throw new TownError("invalid_argument", `container spec for ${plan.hostname}: ${message}`);
  };
  if (plan.runtime === "vm" ? plan.vm === null : plan.image === null) fail("the plan has no image");
  if (!WORKLOAD_NAME.test(input.network)) fail(`"${input.network}" is not a network name`);
  if (input.alias !== undefined && !DNS_LABEL.test(input.alias))
    fail(`"${input.alias}" is not a DNS label`);

  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(input.labels ?? {})) {
    if (RESERVED_LABELS.includes(key)) fail(`label ${key} is set by Town OS`);
    if (findControlCharacter(key + value) !== undefined || key === "" || key.includes("="))
      fail(`label "${key}" has a bad name or value`);
    if (Buffer.byteLength(key + value) > MAX_LABEL_BYTES) fail(`label ${key} is too long`);
    labels[key] = value;
  }
  labels[LABEL_REPO] = plan.repo;
  labels[LABEL_NAME] = plan.name;
  labels[LABEL_INSTANCE] = plan.instance;

  if (plan.vm !== null) {
    const volumeMounts = mounts(plan, input.volumePaths, fail);
    const disk = volumeMounts.find((mount) => mount.name === VM_DISK_VOLUME);
    if (disk === undefined) return fail(`the VM has no ${VM_DISK_VOLUME} volume`);
    return {
      kind: "vm",
      name: plan.hostname,
      hostname: plan.hostname,
      image: vmImageName(plan.vm.image),
      env: { ...plan.environment },
      labels,
      mounts: volumeMounts.filter((mount) => mount !== disk),
      ports: publishedPorts(plan.ports, input.hostAddress, fail),
      network: null,
      restart: "unless-stopped",
      machine: {
        memoryBytes: plan.vm.memory,
        cpus: plan.vm.cpus,
        disk: join(disk.source, VM_DISK_FILE),
      },
    };
  }
  const workload: Workload = {
    kind: "container",
    name: plan.hostname,
    hostname: plan.hostname,
    image: plan.image ?? "",
    env: { ...plan.environment },
    labels,
    mounts: mounts(plan, input.volumePaths, fail).map(({ source, target }) => ({ source, target })),
    ports: publishedPorts(plan.ports, input.hostAddress, fail),
    network: { name: input.network, aliases: input.alias === undefined ? [] : [input.alias] },
    restart: "unless-stopped",
  };
  if (plan.entrypoint !== null) workload.entrypoint = [...plan.entrypoint];
  if (plan.command !== null) workload.command = [...plan.command];
  if (input.ulimits !== undefined) workload.resources = { ulimits: ulimits(input.ulimits, fail) };
  return workload;
}

function publishedPorts(
  ports: readonly CompiledPort[],
  hostAddress: PackageWorkloadInput["hostAddress"],
  fail: (message: string) => never,
): PublishedPort[] {
  const published: PublishedPort[] = [];
  for (const port of ports) {
    if (port.host === null) continue;
    const address =
      typeof hostAddress === "function" ? hostAddress(port) : hostAddress[port.exposure];
    if (isIP(address) === 0)
      fail(`"${address}" is not an IP address to publish port ${port.host} on`);
    published.push({
      hostAddress: address,
      hostPort: port.host,
      port: port.container,
      protocol: "tcp",
    });
  }
  return published;
}

function mounts(
  plan: CompiledPackage,
  volumePaths: Readonly<Record<string, string>>,
  fail: (message: string) => never,
): Mount[] {
  const list = plan.volumes.map((volume): Mount => {
    const source = Object.hasOwn(volumePaths, volume.name) ? volumePaths[volume.name] : undefined;
    if (source === undefined) return fail(`volume ${volume.name} has no host path`);
    if (
      !isAbsolute(source) ||
      posix.normalize(source) !== source ||
      findControlCharacter(source) !== undefined
    ) {
      fail(`"${source}" (volume ${volume.name}) is not a normalized absolute path`);
    }
    return { source, target: volume.mountpoint, name: volume.name };
  });
  return list.sort((a, b) => comparePaths(a.target, b.target));
}

function ulimits(list: readonly Ulimit[], fail: (message: string) => never): Ulimit[] {
  const seen = new Set<string>();
  return list.map(({ name, soft, hard }) => {
    if (!/^[a-z]+$/.test(name)) fail(`"${name}" is not an rlimit name such as nofile`);
    if (seen.has(name)) fail(`ulimit ${name} is given twice`);
    seen.add(name);
    if (!Number.isSafeInteger(soft) || !Number.isSafeInteger(hard) || soft < 0 || soft > hard)
      fail(`ulimit ${name} needs 0 ≤ soft ≤ hard`);
    return { name, soft, hard };
  });
}

/** Compares paths segment by segment, so `/a` < `/a/b` < `/a-b` holds however they sort as text. */
function comparePaths(a: string, b: string): number {
  const left = a.split("/");
  const right = b.split("/");
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const order = compareText(left[i] ?? "", right[i] ?? "");
    if (order !== 0) return order;
  }
  return left.length - right.length;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
