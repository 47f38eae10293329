/**
 * What Prometheus scrapes, from desired state: the box's own programs on
 * loopback, and each installed package that declares a metrics endpoint,
 * at its container's address on the app's network. Pure.
 */
import type { ScrapeTarget } from "./types.js";

export interface AppEndpoint {
  repo: string;
  app: string;
  /** The package node's instance (the app itself, or `<app>-<dependency key>`). */
  instance: string;
  /** The container's address on the app's network; null while it has none (not running). */
  address: string | null;
  port: number;
  path: string;
}

export interface TargetInputs {
  /** `127.0.0.1:PORT` of each: Node Exporter, the daemon's API (`/metrics`), Caddy's metrics (null: none). */
  nodeExporter: string;
  daemon: string;
  ingress: string | null;
  apps: readonly AppEndpoint[];
}

export function scrapeTargets(inputs: TargetInputs): ScrapeTarget[] {
  const targets: ScrapeTarget[] = [
    { job: "node", address: inputs.nodeExporter, path: "/metrics", labels: {} },
    { job: "town", address: inputs.daemon, path: "/metrics", labels: {} },
  ];
  if (inputs.ingress !== null)
    targets.push({ job: "ingress", address: inputs.ingress, path: "/metrics", labels: {} });
  for (const app of inputs.apps) {
    if (app.address === null) continue;
    const host = app.address.includes(":") ? `[${app.address}]` : app.address;
    targets.push({
      job: "app",
      address: `${host}:${app.port}`,
      path: app.path,
      labels: { repo: app.repo, app: app.app, instance_name: app.instance },
    });
  }
  return targets;
}
