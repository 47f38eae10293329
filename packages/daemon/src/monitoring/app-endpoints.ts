/**
 * The metrics endpoints of installed apps: each package node that declares
 * the `metrics` extension, at its container's address on the app's network
 * (Prometheus runs on the host, which reaches Podman's bridge networks).
 */
import { flattenPlan, planNetworkName } from "../apps/names.js";
import type { WorkloadInfo } from "../runtime/workload.js";
import type { InstallRecord } from "../store/installs.js";
import type { AppEndpoint } from "./targets.js";

export async function appEndpoints(
  installs: readonly InstallRecord[],
  inspect: (name: string) => Promise<WorkloadInfo | undefined>,
): Promise<AppEndpoint[]> {
  const endpoints: AppEndpoint[] = [];
  for (const install of installs) {
    if (install.plan === null) continue;
    const network = planNetworkName(install.plan);
    for (const { plan: node } of flattenPlan(install.plan)) {
      // Plans stored before the extension existed lack the field.
      const metrics = (node.metrics as typeof node.metrics | undefined) ?? null;
      if (metrics === null || node.runtime !== "container") continue;
      const info = await inspect(node.hostname).catch(() => undefined);
      endpoints.push({
        repo: install.repo,
        app: install.name,
        instance: node.instance,
        address: info?.state.running === true ? (info.addresses[network] ?? null) : null,
        port: metrics.port,
        path: metrics.path,
      });
    }
  }
  return endpoints;
}
