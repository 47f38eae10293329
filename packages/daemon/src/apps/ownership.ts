/**
 * Which app owns which object. Names are injective, but installs made
 * before they were (and hand-made or hostile plans) can still meet: a plan
 * naming a network, container, volume or DNS name that another install or
 * pending removal names is refused before anything is made, so one app can
 * never take over, and then delete, another's.
 */
import { nameScope, TownError, type CompiledPackage } from "@townos/format";
import type { InstallState } from "../store/installs.js";
import { flattenPlan, nodeVolumeName, planNetworkName } from "./names.js";

/** Every object a plan names, as `<kind> <name>`. */
export function planObjects(plan: CompiledPackage): string[] {
  const objects = [`network ${planNetworkName(plan)}`];
  for (const { plan: node } of flattenPlan(plan)) {
    objects.push(`container ${node.hostname}`, `DNS name ${node.instance}.${nameScope(node)}`);
    for (const volume of node.volumes) objects.push(`volume ${nodeVolumeName(node, volume.name)}`);
  }
  return objects;
}

/**
 * Refuses `plan` (of the app `repo/name`) when it names an object of
 * another app. @throws TownError `conflict` naming the object and its owner
 */
export function checkOwnership(
  repo: string,
  name: string,
  plan: CompiledPackage,
  others: InstallState,
): void {
  const owners = new Map<string, string>();
  for (const other of [...others.installs, ...others.removals]) {
    if (!other.plan) continue;
    for (const object of planObjects(other.plan)) owners.set(object, `${other.repo}/${other.name}`);
  }
  for (const object of planObjects(plan)) {
    const owner = owners.get(object);
    if (owner !== undefined) {
      throw new TownError(
        "conflict",
        `${repo}/${name} would use the ${object}, which belongs to ${owner}; nothing was changed`,
      );
    }
  }
}
