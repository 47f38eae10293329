import { IMAGE_REFERENCE } from "./rules.js";

/**
 * Full image reference as Podman pulls it: `nginx` →
 * `docker.io/library/nginx:latest`, `user/app` → `docker.io/user/app:latest`.
 * A first path part with `.` or `:`, or `localhost`, is a registry and kept;
 * a tag is looked for after the last `/`; digests are kept as they are.
 * Returns undefined for a reference that is not allowed.
 */
export function normalizeImage(reference: string): string | undefined {
  if (!IMAGE_REFERENCE.test(reference) || reference.length > 512) return undefined;
  // The '@' the character rule admits is for digests and markers, never a start.
  if (reference.startsWith("@") || reference.split("/").some((part) => part === ""))
    return undefined;
  const slash = reference.indexOf("/");
  const first = slash === -1 ? "" : reference.slice(0, slash);
  const hasRegistry = first.includes(".") || first.includes(":") || first === "localhost";
  let name = reference;
  if (!hasRegistry)
    name = slash === -1 ? `docker.io/library/${reference}` : `docker.io/${reference}`;
  if (name.includes("@")) return name;
  const lastPart = name.slice(name.lastIndexOf("/") + 1);
  return lastPart.includes(":") ? name : `${name}:latest`;
}
