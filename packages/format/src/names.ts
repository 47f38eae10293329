import { createHash } from "node:crypto";

/**
 * Every name derived from a package install is made here and nowhere else:
 * DNS names, instance names of dependencies, container and host names.
 *
 * The names are injective: two different installs (or two nodes of one)
 * never get the same name. Repository names, package names and dependency
 * keys never hold `--` and never start or end with `-` (see rules.ts), so
 * `--` can separate them: `<app>--<key>--<key>` splits back into its parts,
 * and the names of a dependency are made under the installed app's
 * repository (its scope), not the dependency's own, so that two apps from
 * different repositories depending on one package stay apart.
 */

/** `<instance>.<scope>.<tld>`: what `@PACKAGE_DNS@` and the ingress use. */
export function packageDnsName(instance: string, scope: string, tld: string): string {
  return `${instance}.${scope}.${tld}`;
}

/** Each parent gets its own copy of a dependency, named after the parent and key. */
export function dependencyInstanceName(parentInstance: string, key: string): string {
  return `${parentInstance}--${key}`;
}

/**
 * The repository a node's names are made under: `scope` (the installed
 * app's repository, for its dependencies too). Plans stored before `scope`
 * existed named everything under the node's own repository.
 */
export function nameScope(node: { readonly repo: string; readonly scope?: string }): string {
  return node.scope ?? node.repo;
}

/** Longest container name: one DNS label. */
const MAX_CONTAINER_NAME = 63;
/** Hex digits of the hash that ends a shortened name: 64 bits, too many to search for a match. */
const HASH_DIGITS = 16;

/**
 * Container name, which is also the host name on the app's private network
 * (`@dep_KEY_host@`): `town-<scope>--<instance>`. Kept to one DNS label:
 * longer names are cut and end in `---<hash>`; a whole name never holds
 * `---`, so a cut name cannot equal a whole one.
 */
export function containerName(scope: string, instance: string): string {
  const full = `town-${scope}--${instance}`;
  if (full.length <= MAX_CONTAINER_NAME) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, HASH_DIGITS);
  const kept = MAX_CONTAINER_NAME - HASH_DIGITS - 3;
  return `${full.slice(0, kept).replace(/-+$/, "")}---${hash}`;
}

/** `TOWNOS_DEP_<KEY>_…`: environment names admit no `-`. */
export function dependencyEnvPrefix(key: string): string {
  return `TOWNOS_DEP_${key.toUpperCase().replaceAll("-", "_")}_`;
}
