import type { AppInstallPreview, AppView } from "@townos/client";
import { formatBytes } from "./text.js";

// An app and an install preview as `town app` prints them.

export function appLines(view: AppView): string[] {
  const state = [
    view.enabled ? "" : "disabled",
    view.running ? "" : "stopped",
    view.held ? "held for a volume upload" : "",
    view.postUpdatePending ? "post_update pending" : "",
  ].filter((part) => part !== "");
  const lines = [
    `${view.repo}/${view.name} ${view.version}${state.length > 0 ? ` (${state.join(", ")})` : ""}`,
  ];
  for (const url of view.urls) lines.push(`  ${url}`);
  for (const p of view.ports) {
    const role = p.name === null ? "" : ` ${p.name}`;
    lines.push(`  port${role} ${p.host} → ${p.container} (${p.exposure})`);
  }
  for (const v of view.volumes) lines.push(`  volume ${v.instance}/${v.name} at ${v.mountpoint}`);
  for (const n of view.notes) {
    const hidden = n.secret && n.value === "";
    lines.push(`  ${n.label}: ${hidden ? "(secret: only administrators see it)" : n.value}`);
  }
  for (const c of view.containers) lines.push(`  container ${c.name}: ${c.state}`);
  if (view.lastError) lines.push(`  last error: ${view.lastError}`);
  return lines;
}

export function previewLines(preview: AppInstallPreview): string[] {
  const lines = [`${preview.repo}/${preview.name} ${preview.version} (${preview.runtime})`];
  for (const image of preview.images) lines.push(`  image ${image}`);
  for (const v of preview.volumes) {
    const size = v.quota === null ? "no quota" : formatBytes(v.quota);
    lines.push(
      `  volume ${v.instance}/${v.name} at ${v.mountpoint}, ${size}: ${v.action === "reuse" ? `taken back from ${v.from ?? "?"}` : "new"}`,
    );
  }
  for (const p of preview.ports) {
    lines.push(
      `  port ${p.name ?? ""} ${String(p.host ?? "ingress")} → ${String(p.container)} (${p.exposure})`,
    );
  }
  const { disk } = preview;
  const free = disk.freeBytes === null ? "unknown" : formatBytes(disk.freeBytes);
  lines.push(
    `  disk: up to ${formatBytes(disk.quotaBytes)} in quotas${disk.unboundedVolumes > 0 ? ` and ${disk.unboundedVolumes} volume(s) without one` : ""}; ${free} free${disk.quotasEnforced ? "" : " (quotas are not enforced on this storage)"}${disk.fits ? "" : " — NOT ENOUGH SPACE"}`,
  );
  if (preview.questionsToAnswer.length > 0) {
    lines.push(`  needs answers: ${preview.questionsToAnswer.join(", ")}`);
  }
  for (const problem of preview.problems) {
    lines.push(`  problem: ${problem.field ? `${problem.field}: ` : ""}${problem.message}`);
  }
  return lines;
}
