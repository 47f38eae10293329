import { createHash } from "node:crypto";

/**
 * Every name derived from a package install is made here and nowhere else:
 * DNS names, instance names of dependencies, container and host names.
 */

/** `<instance>.<repo>.<tld>`: what `@PACKAGE_DNS@` and the ingress use. */
export function packageDnsName(instance: string, repo: string, tld: string): string {
  return `${instance}.${repo}.${tld}`;
}

/** Each parent gets its own copy of a dependency, named after the parent and key. */
export function dependencyInstanceName(parentInstance: string, key: string): string {
  return `${parentInstance}-${key}`;
}

/**
 * Container name, which is also the host name on the app's private network
 * (`@dep_KEY_host@`). Kept to one DNS label of at most 63 characters: long
 * names are cut and end in a hash so that they stay unique.
 */
export function containerName(repo: string, instance: string): string {
  const full = `town-${repo}-${instance}`;
  if (full.length <= 63) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 8);
  return `${full.slice(0, 54).replace(/-+$/, "")}-${hash}`;
}

/** `TOWNOS_DEP_<KEY>_…`: environment names admit no `-`. */
export function dependencyEnvPrefix(key: string): string {
  return `TOWNOS_DEP_${key.toUpperCase().replaceAll("-", "_")}_`;
}
