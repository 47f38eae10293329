/**
 * Turns a neutral `Workload` into the libpod `SpecGenerator` JSON that
 * `POST /libpod/containers/create` takes. Pure: no I/O, no clock, no
 * randomness; the same workload always gives the same spec and spec hash.
 *
 * The spec carries `town.spec-hash`, the sha256 of the canonical JSON of the
 * spec without that label: a container whose label differs from a freshly
 * built spec's hash is out of date (the fingerprint `ensure` compares).
 */
import { createHash } from "node:crypto";
import { TownError } from "@townos/format";
import { canonicalJson } from "../../canonical-json.js";
import { LABEL_SPEC_HASH, type Workload } from "../workload.js";

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
  /** Absent: the image's working directory. */
  work_dir?: string;
  labels: Record<string, string>;
  portmappings: PortMapping[];
  mounts: BindMount[];
  /** `host`: the host's network namespace (`Workload.hostNetwork`), with no networks. */
  netns: { nsmode: "bridge" | "host" };
  networks: Record<string, { aliases?: string[] }>;
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
  options: ["rbind"] | ["rbind", "ro"];
}

/** The create spec of a workload, its `town.spec-hash` label included. */
export function containerSpec(workload: Workload): SpecGenerator {
  const { network } = workload;
  const hostNetwork = workload.hostNetwork === true;
  if (hostNetwork && (network !== null || workload.ports.length > 0)) {
    throw new TownError(
      "invalid_argument",
      `container ${workload.name}: on the host's network it can join no other and publish no ports`,
    );
  }
  const spec: SpecGenerator = {
    name: workload.name,
    // Libpod defaults the host name to the short container id, not the name.
    hostname: workload.hostname,
    image: workload.image,
    env: { ...workload.env },
    labels: { ...workload.labels },
    portmappings: portMappings(workload),
    mounts: workload.mounts.map(({ source, target, readOnly }) => ({
      destination: target,
      source,
      type: "bind",
      options: readOnly === true ? ["rbind", "ro"] : ["rbind"],
    })),
    netns: { nsmode: hostNetwork ? "host" : "bridge" },
    networks:
      network === null
        ? {}
        : { [network.name]: network.aliases.length === 0 ? {} : { aliases: [...network.aliases] } },
    restart_policy: workload.restart,
    privileged: false,
  };
  if (workload.entrypoint !== undefined) spec.entrypoint = [...workload.entrypoint];
  if (workload.command !== undefined) spec.command = [...workload.command];
  if (workload.workingDir !== undefined) spec.work_dir = workload.workingDir;
  const ulimits = workload.resources?.ulimits;
  if (ulimits !== undefined) {
    spec.r_limits = ulimits
      .map(({ name, soft, hard }) => ({ type: name, soft, hard }))
      .sort((a, b) => compareText(a.type, b.type));
  }
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

function portMappings(workload: Workload): PortMapping[] {
  return workload.ports
    .map((port): PortMapping => ({
      // Libpod takes "" for every address; netavark (Podman 4.3) turns a literal
      // 0.0.0.0 into a rule for that one address, which no connection ever matches.
      host_ip: port.hostAddress === "0.0.0.0" ? "" : port.hostAddress,
      host_port: port.hostPort,
      container_port: port.port,
      protocol: port.protocol,
    }))
    .sort((a, b) => a.host_port - b.host_port || compareText(a.host_ip, b.host_ip));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
