/**
 * The VM image store as the app controller asks for it: whether a plan's
 * `vm.image` is held, and getting it with its progress as step details.
 * Images a package names may never come from private addresses (the
 * package would otherwise choose what of the LAN its guest gets to read);
 * `allowPrivateAddresses` is for boxes whose images are served on the LAN on
 * purpose (and tests serving them on loopback).
 */
import { formatByteSize } from "@townos/format";
import type { DownloadProgress } from "../runtime/qemu/download.js";
import { vmImageName } from "../runtime/qemu/image-name.js";
import type { VmImageStore } from "../runtime/qemu/images.js";
import type { VmImageSource } from "./controller.js";

/** Progress lines at most this often, so a fast download does not flood the install's progress. */
const PROGRESS_EVERY_MS = 500;

export function vmImageSource(
  store: Pick<VmImageStore, "get" | "ensure">,
  options: { allowPrivateAddresses?: boolean; now?: () => number } = {},
): VmImageSource {
  const now = options.now ?? Date.now;
  return {
    has: async (reference) => (await store.get(vmImageName(reference))) !== undefined,
    fetch: async (reference, { sha256, onProgress }) => {
      let last = -Infinity;
      await store.ensure(reference, {
        ...(sha256 === null ? {} : { sha256 }),
        ...(options.allowPrivateAddresses === true ? { allowPrivateAddresses: true } : {}),
        onProgress: (progress) => {
          const at = now();
          if (at - last < PROGRESS_EVERY_MS && progress.receivedBytes !== progress.totalBytes)
            return;
          last = at;
          onProgress(progressLine(progress));
        },
      });
    },
  };
}

/** `12 MiB of 40 MiB (30%)`, or `12 MiB` when the server did not say the size. */
export function progressLine({ receivedBytes, totalBytes }: DownloadProgress): string {
  if (totalBytes === null || totalBytes === 0) return formatByteSize(receivedBytes);
  const percent = Math.floor((receivedBytes / totalBytes) * 100);
  return `${formatByteSize(receivedBytes)} of ${formatByteSize(totalBytes)} (${percent}%)`;
}
