import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DownloadProgress } from "../runtime/qemu/download.js";
import { vmImageName } from "../runtime/qemu/image-name.js";
import type { AddOptions, VmImage } from "../runtime/qemu/images.js";
import { progressLine, vmImageSource } from "./vm-images.js";

const URL_ = "http://10.0.0.2/images/router.qcow2";
const MiB = 2 ** 20;

function fakeStore(steps: DownloadProgress[]) {
  const held = new Map<string, VmImage>();
  const asked: { reference: string; options: Omit<AddOptions, "name"> }[] = [];
  return {
    held,
    asked,
    get: (name: string) => Promise.resolve(held.get(name)),
    ensure: (reference: string, options: Omit<AddOptions, "name"> = {}) => {
      asked.push({ reference, options });
      for (const step of steps) options.onProgress?.(step);
      const image: VmImage = {
        name: vmImageName(reference),
        url: reference,
        sha256: "0".repeat(64),
        format: "qcow2",
        virtualSize: 40 * MiB,
        fileSize: 12 * MiB,
        addedAt: "2026-12-03T00:00:00.000Z",
      };
      held.set(image.name, image);
      return Promise.resolve(image);
    },
  };
}

describe("the VM image source of the app controller", () => {
  it("finds URLs under their store name, passes the checksum, and thins out progress", async () => {
    const store = fakeStore([
      { receivedBytes: 1 * MiB, totalBytes: 40 * MiB },
      { receivedBytes: 2 * MiB, totalBytes: 40 * MiB },
      { receivedBytes: 40 * MiB, totalBytes: 40 * MiB },
    ]);
    let clock = 0;
    const source = vmImageSource(store, { now: () => clock });
    assert.equal(await source.has(URL_), false);
    const lines: string[] = [];
    await source.fetch(URL_, { sha256: "ab".repeat(32), onProgress: (line) => lines.push(line) });
    assert.deepEqual(lines, ["1 MiB of 40 MiB (2%)", "40 MiB of 40 MiB (100%)"]);
    assert.equal(store.asked.at(0)?.options.sha256, "ab".repeat(32));
    assert.equal(
      store.asked.at(0)?.options.allowPrivateAddresses,
      undefined,
      "a package's URL may not reach private addresses unless the box allows it",
    );
    assert.equal(await source.has(URL_), true);
    clock = 10_000;

    const lan = vmImageSource(store, { allowPrivateAddresses: true });
    await lan.fetch(URL_, { sha256: null, onProgress: () => undefined });
    assert.equal(store.asked.at(1)?.options.allowPrivateAddresses, true);
    assert.equal(store.asked.at(1)?.options.sha256, undefined);
  });

  it("says how much came when the size is unknown", () => {
    assert.equal(progressLine({ receivedBytes: 5 * MiB, totalBytes: null }), "5 MiB");
    assert.equal(
      progressLine({ receivedBytes: 3 * 2 ** 30, totalBytes: 6 * 2 ** 30 }),
      "3 GiB of 6 GiB (50%)",
    );
  });
});
