/** The runtime sections: `image` (a container) and `vm`. */

import { hasMarker, IMAGE_REFERENCE, SHA256 } from "../rules.js";
import { parseByteSize } from "../units.js";
import type { Field, FieldReader } from "./reader.js";
import type { PackageDefinition } from "./types.js";

export function readImage(r: FieldReader, node: Field): PackageDefinition["image"] {
  if (node == null) return undefined;
  let url: string | undefined;
  let type = "";
  if (r.source.isMapping(node, "image")) {
    const fields = r.fieldsOf(node, "image", ["url", "type"]);
    url = r.required(fields.get("url"), "image.url");
    type = r.text(fields.get("type"), "image.type") ?? "";
    if (type !== "" && type !== "oci") {
      r.source.error(
        "image.type",
        fields.get("type"),
        `unsupported image type "${type}" (use oci)`,
      );
    }
  } else {
    url = r.text(node, "image");
  }
  if (url === undefined || url === "") return undefined;
  checkImage(r, url, "image", node);
  return { url, type };
}

/** Image references may hold markers; those are checked once substituted, at compile. */
export function checkImage(r: FieldReader, reference: string, field: string, node: Field): void {
  if (!hasMarker(reference) && !IMAGE_REFERENCE.test(reference)) {
    r.source.error(field, node, `"${reference}" is not a valid image reference`);
  }
}

export function readVm(r: FieldReader, node: Field): PackageDefinition["vm"] {
  if (node == null) return undefined;
  const fields = r.fieldsOf(node, "vm", ["image", "memory", "cpus", "sha256"]);
  const image = r.required(fields.get("image"), "vm.image");
  const memory = r.text(fields.get("memory"), "vm.memory") ?? "1gb";
  const cpus = r.text(fields.get("cpus"), "vm.cpus") ?? "1";
  const sha256 = r.text(fields.get("sha256"), "vm.sha256");
  if (sha256 !== undefined && !hasMarker(sha256) && !SHA256.test(sha256)) {
    r.source.error("vm.sha256", fields.get("sha256"), `"${sha256}" is not a SHA-256 in hex`);
  }
  if (!hasMarker(memory) && parseByteSize(memory) === undefined) {
    r.source.error("vm.memory", fields.get("memory"), `"${memory}" is not a byte size`);
  }
  if (!hasMarker(cpus) && !/^[1-9][0-9]{0,2}$/.test(cpus)) {
    r.source.error("vm.cpus", fields.get("cpus"), `"${cpus}" is not a CPU count (1-999)`);
  }
  return sha256 === undefined ? { image, memory, cpus } : { image, memory, cpus, sha256 };
}
