/**
 * Ports: the network section compiled to container and host ports, and the
 * host ports claimed across one compile (the whole dependency tree).
 */

import type { PackageDefinition } from "../definition/types.js";
import { portInUse } from "../questions.js";
import type { FieldCompiler } from "./fields.js";
import type { CompiledPackage, CompiledPort } from "./types.js";

export function compilePorts(
  field: FieldCompiler,
  network: PackageDefinition["network"],
  dnsName: string,
): { ports: CompiledPort[]; ingress: CompiledPackage["ingress"] } {
  const ports: CompiledPort[] = [];
  let ingress: CompiledPackage["ingress"] = null;
  for (const exposure of ["external", "internal"] as const) {
    for (const entry of network[exposure]) {
      const name = `network.${exposure}.${entry.key}`;
      const key = field.text(name, field.stage1(entry.key)).trim();
      const container = portNumber(field, name, entry.value);
      if (/^[0-9]+$/.test(key)) {
        ports.push({ name: null, host: portNumber(field, name, key), container, exposure });
      } else if (exposure === "internal" && key === "http") {
        ingress = { host: dnsName, port: container };
        ports.push({ name: key, host: null, container, exposure });
      } else {
        ports.push({ name: key, host: container, container, exposure });
      }
    }
  }
  ports.sort((a, b) => (a.host ?? 0) - (b.host ?? 0) || a.container - b.container);
  return { ports, ingress };
}

/** A port number (1-65535) once substituted; 0 after reporting one that is not. */
export function portNumber(field: FieldCompiler, name: string, written: string): number {
  const text = field.text(name, field.stage1(written)).trim();
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    field.report(name, `"${text}" is not a port number (1-65535)`);
    return 0;
  }
  return port;
}

/** Host ports taken on the box, and by the packages compiled so far. */
export class PortClaims {
  /** Shared with compileAnswers, which claims the ports it answers. */
  readonly taken: Set<number>;

  constructor(
    taken: Iterable<number> | undefined,
    private readonly holders: ReadonlyMap<number, string> | undefined,
  ) {
    this.taken = new Set(taken ?? []);
  }

  /**
   * Host ports must be unique across the whole tree and free on the box.
   * Ports from this package's own port answers were claimed when answered.
   */
  claim(
    ports: CompiledPort[],
    answeredPorts: ReadonlySet<number>,
    report: (message: string) => void,
  ): void {
    const seen = new Set<number>();
    for (const port of ports) {
      if (port.host === null) continue;
      if (seen.has(port.host)) report(`host port ${port.host} is published twice`);
      else if (this.taken.has(port.host) && !answeredPorts.has(port.host)) {
        report(`host ${portInUse(port.host, this.holders)}`);
      }
      seen.add(port.host);
    }
    for (const host of seen) this.taken.add(host);
  }
}
