import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError, VM_DISK_VOLUME, type CompiledPackage } from "@townos/format";
import { asVm, compileExample } from "../../test/runtime/examples.js";
import { packageWorkload, VM_DISK_FILE } from "./package-workload.js";
import { vmImageName } from "./qemu/image-name.js";

const hello = compileExample("hello", "1.0");
const [www] = hello.volumes;
assert.ok(www);
const IMAGE_URL = "https://images.example.org/router-1.2.qcow2";

/** hello as its package would be if it ran as a VM: its volume, the VM's disk, an external port. */
const vmPlan: CompiledPackage = {
  ...asVm(hello, IMAGE_URL),
  vm: { image: IMAGE_URL, memory: 256 * 2 ** 20, cpus: 2, sha256: null },
  ports: [
    { name: null, host: 8022, container: 22, exposure: "external" },
    { name: "http", host: 41000, container: 80, exposure: "internal" },
  ],
};

const volumePaths = Object.fromEntries(
  vmPlan.volumes.map((volume) => [volume.name, `/var/lib/town/volumes/${volume.name}`]),
);

describe("packageWorkload for a VM", () => {
  it("runs the store's image with the plan's memory and CPUs, its disk a file in vm-disk", () => {
    const workload = packageWorkload({
      plan: vmPlan,
      network: "town-default--hello",
      volumePaths,
      hostAddress: { external: "0.0.0.0", internal: "127.0.0.1" },
    });
    assert.equal(workload.kind, "vm");
    assert.equal(workload.image, vmImageName(IMAGE_URL));
    assert.deepEqual(workload.machine, {
      memoryBytes: 256 * 2 ** 20,
      cpus: 2,
      disk: `/var/lib/town/volumes/${VM_DISK_VOLUME}/${VM_DISK_FILE}`,
    });
    // The disk is not shared with the guest; the package's own volume is, by its name.
    assert.deepEqual(workload.mounts, [
      {
        source: `/var/lib/town/volumes/${www.name}`,
        target: www.mountpoint,
        name: www.name,
      },
    ]);
    assert.deepEqual(workload.ports, [
      { hostAddress: "0.0.0.0", hostPort: 8022, port: 22, protocol: "tcp" },
      { hostAddress: "127.0.0.1", hostPort: 41000, port: 80, protocol: "tcp" },
    ]);
    assert.equal(
      workload.network,
      null,
      "QEMU forwards the ports; the VM joins no container network",
    );
    assert.equal(workload.labels["town.name"], "hello");
  });

  it("refuses a VM plan without its disk volume or its image", () => {
    for (const plan of [
      { ...vmPlan, volumes: hello.volumes },
      { ...vmPlan, vm: null },
    ]) {
      assert.throws(
        () =>
          packageWorkload({
            plan,
            network: "town-default--hello",
            volumePaths,
            hostAddress: { external: "0.0.0.0", internal: "127.0.0.1" },
          }),
        (error: unknown) => error instanceof TownError && error.code === "invalid_argument",
      );
    }
  });

  it("leaves container mounts without names, so container fingerprints stay as they were", () => {
    const workload = packageWorkload({
      plan: hello,
      network: "town-default--hello",
      volumePaths,
      hostAddress: { external: "0.0.0.0", internal: "127.0.0.1" },
    });
    assert.ok(workload.mounts.every((mount) => !("name" in mount)));
  });
});
