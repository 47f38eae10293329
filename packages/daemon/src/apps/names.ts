/**
 * The names of an app's objects in Podman and storage: its private network
 * and its volumes, made from its plan (and the plan's nodes) here and
 * nowhere else (container and DNS names come with the plan, from
 * @townos/format's names).
 *
 * Plans stored before names were injective (no `scope`) keep the names
 * their objects were made with, so existing installs keep running
 * untouched; an upgrade compiles a new plan and moves them over.
 */
import { nameScope, type CompiledPackage } from "@townos/format";
import { packageVolumeName } from "../storage/names.js";

/** The app's private network: `town-<repo>--<name>` (injective, as container names are). */
export function appNetworkName(repo: string, name: string): string {
  return `town-${repo}--${name}`;
}

/** The network of apps installed before names were injective: `a-b`/`c` met `a`/`b-c` there. */
export function legacyNetworkName(repo: string, name: string): string {
  return `town-${repo}-${name}`;
}

/** The network an install's (root) plan runs on. */
export function planNetworkName(plan: CompiledPackage): string {
  return isLegacyPlan(plan)
    ? legacyNetworkName(plan.repo, plan.name)
    : appNetworkName(plan.repo, plan.name);
}

/** Where a node's volume lives: `pkg.<scope>.<instance>.<volume>`. @throws TownError `invalid_argument` */
export function nodeVolumeName(node: CompiledPackage, volume: string): string {
  return packageVolumeName(nameScope(node), node.instance, volume);
}

/**
 * The name the node's volume had before names were injective: under the
 * node's own repository, dependency instances joined by one `-`
 * (`pkg.<repo>.<app>-<key>.<volume>`).
 */
export function legacyVolumeName(node: CompiledPackage, volume: string): string {
  return packageVolumeName(node.repo, node.instance.replaceAll("--", "-"), volume);
}

/** The plan and its dependencies, dependencies first (deepest first), each with its alias. */
export function flattenPlan(plan: CompiledPackage): { plan: CompiledPackage; alias?: string }[] {
  const out: { plan: CompiledPackage; alias?: string }[] = [];
  const visit = (node: CompiledPackage, alias: string | undefined): void => {
    for (const dependency of node.dependencies) visit(dependency, dependency.key);
    out.push(alias === undefined ? { plan: node } : { plan: node, alias });
  };
  visit(plan, undefined);
  return out;
}

function isLegacyPlan(plan: CompiledPackage): boolean {
  return (plan as { scope?: string }).scope === undefined;
}
