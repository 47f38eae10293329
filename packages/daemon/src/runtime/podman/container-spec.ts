/**
 * Turns a compiled plan into the libpod `SpecGenerator` JSON that
 * `POST /libpod/containers/create` takes. Pure: no I/O, no clock, no
 * randomness; the same input always gives the same spec and spec hash.
 *
 * The spec carries the labels the reconciler finds its containers by
 * (`town.repo`, `town.name`, `town.instance`) and `town.spec-hash`, the
 * sha256 of the canonical JSON of the spec without that label: a container
 * whose label differs from a freshly built spec's hash is out of date.
 */
import { createHash } from "node:crypto";
import { isAbsolute, posix } from "node:path";
import { isIP } from "node:net";
import {
  DNS_LABEL,
  findControlCharacter,
  TownError,
  type CompiledPackage,
  type CompiledPort,
  type Exposure,
} from "@townos/format";

export const LABEL_REPO = "town.repo";
export const LABEL_NAME = "town.name";
export const LABEL_INSTANCE = "town.instance";
export const LABEL_SPEC_HASH = "town.spec-hash";
const RESERVED_LABELS: readonly string[] = [
  LABEL_REPO,
  LABEL_NAME,
  LABEL_INSTANCE,
  LABEL_SPEC_HASH,
];

/** An rlimit by its short name, as `podman run --ulimit` takes it. */
export interface Ulimit {
  /** `nofile`, `nproc`, …: libpod prepends `RLIMIT_` itself (so `RLIMIT_NOFILE` fails). */
  name: string;
  soft: number;
  hard: number;
}

/** The subset of libpod's SpecGenerator this driver fills in (libpod's field names). */
export interface SpecGenerator {
  name: string;
  hostname: string;
  image: string;
  /** Absent: the image's entrypoint. */
  entrypoint?: string[];
  /** Absent: the image's command (unless an entrypoint is given, as in Docker). */
  command?: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  portmappings: PortMapping[];
  mounts: BindMount[];
  netns: { nsmode: "bridge" };
  networks: Record<string, { aliases?: string[] }>;
  /** Always `unless-stopped` from containerSpec; the other values are libpod's. */
  restart_policy: "no" | "on-failure" | "always" | "unless-stopped";
  privileged: false;
  /** Absent: the host's defaults (containers.conf `default_ulimits`). */
  r_limits?: { type: string; soft: number; hard: number }[];
}

export interface PortMapping {
  /** An IP address, or "" for all of them (what 0.0.0.0 becomes). */
  host_ip: string;
  host_port: number;
  container_port: number;
  protocol: "tcp";
}

export interface BindMount {
  destination: string;
  source: string;
  type: "bind";
  options: ["rbind"];
}

export interface ContainerSpecInput {
  /** A compiled plan with `runtime: "container"`. */
  plan: CompiledPackage;
  /** The app's private network; its containers find each other there by name and alias. */
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
   * Replaces the host's default ulimits for this container, all of them: when
   * given, list every limit the host needs (libpod then ignores
   * containers.conf's `default_ulimits`).
   */
  ulimits?: readonly Ulimit[];
}

const MAX_LABEL_BYTES = 4096;
/** What libpod accepts as a container or network name. */
export const PODMAN_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,252}$/;

/**
 * Builds the create spec for one container of a plan (the app or one of its
 * dependencies: call it once per container). Ports without a host port (the
 * `http` port the ingress serves) are not published. Throws TownError
 * `invalid_argument` for input the caller should have checked: a VM plan, a
 * volume without a host path, a bad address, alias, label or ulimit.
 */
export function containerSpec(input: ContainerSpecInput): SpecGenerator {
  const { plan } = input;
  const fail = (message: string): never => {
    throw new TownError("invalid_argument", `container spec for ${plan.hostname}: ${message}`);
  };
  if (plan.runtime !== "container" || plan.image === null) fail("the plan is not a container");
  if (!PODMAN_NAME.test(input.network)) fail(`"${input.network}" is not a network name`);
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

  const spec: SpecGenerator = {
    name: plan.hostname,
    // Libpod defaults the host name to the short container id, not the name.
    hostname: plan.hostname,
    image: plan.image ?? "",
    env: { ...plan.environment },
    labels,
    portmappings: portMappings(plan.ports, input.hostAddress, fail),
    mounts: bindMounts(plan, input.volumePaths, fail),
    netns: { nsmode: "bridge" },
    networks: { [input.network]: input.alias === undefined ? {} : { aliases: [input.alias] } },
    restart_policy: "unless-stopped",
    privileged: false,
  };
  if (plan.entrypoint !== null) spec.entrypoint = [...plan.entrypoint];
  if (plan.command !== null) spec.command = [...plan.command];
  if (input.ulimits !== undefined) spec.r_limits = rlimits(input.ulimits, fail);
  spec.labels[LABEL_SPEC_HASH] = specHash(spec);
  return spec;
}

/** sha256 (hex) of the canonical JSON of a spec, its own `town.spec-hash` label left out. */
export function specHash(spec: SpecGenerator): string {
  const labels = Object.fromEntries(
    Object.entries(spec.labels).filter(([key]) => key !== LABEL_SPEC_HASH),
  );
  return createHash("sha256")
    .update(canonicalJson({ ...spec, labels }))
    .digest("hex");
}

/**
 * JSON with object keys sorted (by UTF-16 code units) at every level and no
 * whitespace, so that equal values always serialize to equal text. Array
 * order is kept: it is meaningful (arguments, mounts). Undefined members are
 * left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, member: unknown) => {
    if (member === null || typeof member !== "object" || Array.isArray(member)) return member;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(member).sort()) {
      sorted[key] = (member as Record<string, unknown>)[key];
    }
    return sorted;
  });
}

function portMappings(
  ports: readonly CompiledPort[],
  hostAddress: ContainerSpecInput["hostAddress"],
  fail: (message: string) => never,
): PortMapping[] {
  const mappings: PortMapping[] = [];
  for (const port of ports) {
    if (port.host === null) continue;
    const address =
      typeof hostAddress === "function" ? hostAddress(port) : hostAddress[port.exposure];
    if (isIP(address) === 0)
      fail(`"${address}" is not an IP address to publish port ${port.host} on`);
    mappings.push({
      // Libpod takes "" for every address; netavark (Podman 4.3) turns a literal
      // 0.0.0.0 into a rule for that one address, which no connection ever matches.
      host_ip: address === "0.0.0.0" ? "" : address,
      host_port: port.host,
      container_port: port.container,
      protocol: "tcp",
    });
  }
  return mappings.sort((a, b) => a.host_port - b.host_port || compareText(a.host_ip, b.host_ip));
}

/** Bind mounts in path order: a parent is mounted before the volumes nested in it. */
function bindMounts(
  plan: CompiledPackage,
  volumePaths: Readonly<Record<string, string>>,
  fail: (message: string) => never,
): BindMount[] {
  const mounts = plan.volumes.map((volume): BindMount => {
    const source = Object.hasOwn(volumePaths, volume.name) ? volumePaths[volume.name] : undefined;
    if (source === undefined) return fail(`volume ${volume.name} has no host path`);
    if (
      !isAbsolute(source) ||
      posix.normalize(source) !== source ||
      findControlCharacter(source) !== undefined
    ) {
      fail(`"${source}" (volume ${volume.name}) is not a normalized absolute path`);
    }
    return { destination: volume.mountpoint, source, type: "bind", options: ["rbind"] };
  });
  return mounts.sort((a, b) => comparePaths(a.destination, b.destination));
}

function rlimits(
  ulimits: readonly Ulimit[],
  fail: (message: string) => never,
): NonNullable<SpecGenerator["r_limits"]> {
  const seen = new Set<string>();
  const limits = ulimits.map(({ name, soft, hard }) => {
    if (!/^[a-z]+$/.test(name)) fail(`"${name}" is not an rlimit name such as nofile`);
    if (seen.has(name)) fail(`ulimit ${name} is given twice`);
    seen.add(name);
    if (!Number.isSafeInteger(soft) || !Number.isSafeInteger(hard) || soft < 0 || soft > hard)
      fail(`ulimit ${name} needs 0 ≤ soft ≤ hard`);
    return { type: name, soft, hard };
  });
  return limits.sort((a, b) => compareText(a.type, b.type));
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
