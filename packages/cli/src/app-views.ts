import type { AppInstallPreview, AppView, VmFacts } from "@townos/client";
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
  if (view.vm) lines.push(`  ${vmLine(view.vm)}`);
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

/** "runtime: vm (tcg), memory 128.0 MiB, 1 CPU, disk 16.0 MiB (1.2 MiB used), QMP running, ports 127.0.0.1:8080 → 80, image tiny" */
export function vmLine(vm: VmFacts): string {
  const parts = [
    `runtime: vm (${vm.accelerator ?? "not running"})`,
    `memory ${formatBytes(vm.memoryBytes)}`,
    `${vm.cpus} CPU${vm.cpus === 1 ? "" : "s"}`,
  ];
  if (vm.diskVirtualBytes !== null) {
    const used =
      vm.diskAllocatedBytes === null ? "" : ` (${formatBytes(vm.diskAllocatedBytes)} used)`;
    parts.push(`disk ${formatBytes(vm.diskVirtualBytes)}${used}`);
  }
  if (vm.qmpStatus !== null) parts.push(`QMP ${vm.qmpStatus}`);
  if (vm.ports.length > 0) {
    parts.push(
      `ports ${vm.ports.map((p) => `${p.hostAddress}:${p.hostPort} → ${p.guestPort}`).join(", ")}`,
    );
  }
  parts.push(`image ${vm.image}`);
  return parts.join(", ");
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
