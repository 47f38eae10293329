/**
 * A workload's fingerprint taken over the neutral `Workload` itself, for
 * runtimes with no spec format of their own to hash (QEMU keeps the
 * workload as it is; the test fake too). Key order never matters, and the
 * fingerprint label a listing carries back is left out.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../canonical-json.js";
import { LABEL_SPEC_HASH, type Workload } from "./workload.js";

export function workloadFingerprint(workload: Workload): string {
  const labels = Object.fromEntries(
    Object.entries(workload.labels).filter(([key]) => key !== LABEL_SPEC_HASH),
  );
  return createHash("sha256")
    .update(canonicalJson({ ...workload, labels }))
    .digest("hex");
}
