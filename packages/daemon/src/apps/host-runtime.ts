/**
 * The runtime apps run on, as the daemon puts it together: Podman for
 * containers and, when QEMU is installed (and VMs are not turned off), the
 * QEMU runtime for virtual machines behind the router, with the VM image
 * store as the controller's source of base images. Without QEMU a VM app
 * fails its install with `unavailable` saying why; containers run as before.
 */
import type { Clock } from "../clock.js";
import type { Podman } from "../runtime/podman/client.js";
import { PodmanRuntime } from "../runtime/podman/runtime.js";
import type { VmImageStore } from "../runtime/qemu/images.js";
import { QemuRuntime, type QemuRuntimeLog } from "../runtime/qemu/runtime.js";
import { WorkloadRouter } from "../runtime/router.js";
import type { HostRuntime } from "../runtime/workload.js";
import { findProgram } from "../storage/exec.js";
import type { VmImageSource } from "./controller.js";
import { vmImageSource } from "./vm-images.js";

export const QEMU_PROGRAM = "qemu-system-x86_64";

/** The daemon's configuration of virtual machines (`AppsConfig.vms`). */
export interface VmsConfig {
  /** Default: probed (KVM when a probe guest really runs under it, else TCG); `TOWN_VM_ACCEL` too. */
  accelerator?: "kvm" | "tcg";
  /**
   * Let packages name VM images on private and loopback addresses (a LAN
   * image server; tests). Off by default: a package could otherwise hand its
   * guest whatever a LAN address serves.
   */
  privateImageUrls?: boolean;
}

export interface AppRuntime {
  runtime: HostRuntime;
  /** Absent without VMs. */
  vmImages?: VmImageSource;
  /** Leaves the VMs running (they outlive the daemon, as containers do). */
  detach(): Promise<void>;
}

export async function appRuntime(options: {
  podman: Podman;
  vms: VmsConfig | false | undefined;
  /** The VMs' own state: pid files, QMP sockets, consoles. */
  stateDir: string;
  images: VmImageStore;
  log: QemuRuntimeLog;
  clock: Clock;
}): Promise<AppRuntime> {
  const host = new PodmanRuntime(options.podman);
  const qemu = options.vms === false ? undefined : await findProgram(QEMU_PROGRAM);
  if (options.vms === false || qemu === undefined) {
    if (options.vms !== false)
      options.log.warn(
        `${QEMU_PROGRAM} is not installed: apps that are virtual machines cannot run`,
      );
    return { runtime: host, detach: () => Promise.resolve() };
  }
  const { accelerator, privateImageUrls } = options.vms ?? {};
  const vms = new QemuRuntime({
    stateDir: options.stateDir,
    images: options.images,
    qemuBinary: qemu,
    log: options.log,
    clock: options.clock,
    ...(accelerator === undefined ? {} : { accelerator: () => Promise.resolve(accelerator) }),
  });
  // VMs a previous daemon started are adopted now, not at the first call naming them.
  await vms.resume();
  return {
    runtime: new WorkloadRouter(host, vms),
    vmImages: vmImageSource(options.images, { allowPrivateAddresses: privateImageUrls === true }),
    detach: () => vms.detach(),
  };
}
