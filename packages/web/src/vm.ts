import type { VmFacts, VmImageDownload } from "@townos/client";
import { formatBytes, t } from "./messages.js";

/** A VM's facts as the app page's card lists them: a label and its text, in order. */
export function vmFactRows(vm: VmFacts): [label: string, value: string][] {
  const rows: [string, string][] = [
    [
      t("app.vm.accelerator"),
      vm.accelerator === null ? t("app.vm.notRunning") : t(`app.vm.${vm.accelerator}`),
    ],
    [t("app.vm.memory"), formatBytes(vm.memoryBytes)],
    [t("app.vm.cpus"), String(vm.cpus)],
  ];
  if (vm.diskVirtualBytes !== null) {
    const size = formatBytes(vm.diskVirtualBytes);
    rows.push([
      t("app.vm.disk"),
      vm.diskAllocatedBytes === null
        ? size
        : t("app.vm.diskSize", { size, used: formatBytes(vm.diskAllocatedBytes) }),
    ]);
  }
  if (vm.qmpStatus !== null) rows.push([t("app.vm.state"), vm.qmpStatus]);
  if (vm.ports.length > 0) {
    rows.push([
      t("app.vm.ports"),
      vm.ports
        .map((p) =>
          t("app.vm.port", { address: p.hostAddress, host: p.hostPort, guest: p.guestPort }),
        )
        .join(", "),
    ]);
  }
  rows.push([t("app.vm.image"), vm.image]);
  return rows;
}

/** What a running download is doing, in words. */
export function downloadText(download: VmImageDownload): string {
  if (download.phase === "check") return t("vmImages.checking");
  if (download.phase === "convert") return t("vmImages.converting");
  const received = formatBytes(download.receivedBytes);
  const total = download.totalBytes;
  if (total === null || total === 0) return t("vmImages.downloadingUnknown", { received });
  return t("vmImages.downloading", {
    received,
    total: formatBytes(total),
    percent: Math.min(100, Math.floor((download.receivedBytes / total) * 100)),
  });
}
