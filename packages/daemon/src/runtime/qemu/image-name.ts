/**
 * The VM image store's name for what a package's `vm.image` says: an
 * http(s) URL gets a name made from its last path segment (image and
 * compression extensions dropped, anything outside the name alphabet
 * replaced) and 8 hex digits of the URL's SHA-256, so two URLs never share a
 * name; anything else already is a store name. Pure: the app controller and
 * the store derive the same name without asking each other.
 */
import { createHash } from "node:crypto";

/** Names in the store: file names that are safe everywhere (no `/`, no leading dot). */
export const VM_IMAGE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/;

const EXTENSIONS = /(\.(qcow2|img|raw|vmdk|vdi|vhdx|vhd|iso))?(\.(xz|gz|bz2|zst))?$/i;
const STEM_BYTES = 64;

export function isImageUrl(reference: string): boolean {
  return /^https?:\/\//i.test(reference);
}

export function vmImageName(reference: string): string {
  if (!isImageUrl(reference)) return reference;
  const hash = createHash("sha256").update(reference).digest("hex").slice(0, 8);
  let segment = "";
  try {
    segment = decodeURIComponent(new URL(reference).pathname.split("/").pop() ?? "");
  } catch {
    // A malformed escape: the hash alone names it.
  }
  const stem = segment
    .replace(EXTENSIONS, "")
    .replace(/[^a-zA-Z0-9._-]+/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/^[^a-zA-Z0-9]+/, "")
    .slice(0, STEM_BYTES)
    .replace(/[.-]+$/, "");
  return stem === "" ? `image-${hash}` : `${stem}-${hash}`;
}
