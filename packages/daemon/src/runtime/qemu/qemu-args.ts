/**
 * Turns a `Workload` of kind `vm` into the argv of `qemu-system-x86_64`.
 * Pure: no I/O, no clock; the same input always gives the same argv.
 *
 * Everything reaching QEMU's option syntax is checked first: QEMU splits
 * option values at `,` (so commas in paths are doubled, its escape) and a
 * control character has no business in any of them. Block devices are given
 * as JSON (`-blockdev {…}`), so no path there needs escaping, and the VM's
 * overlay gets its backing node by name: QEMU never reads a backing-file
 * name from the overlay's header, which sits in a volume people can upload
 * into.
 */
import { isIPv4 } from "node:net";
import { posix } from "node:path";
import { findControlCharacter, TownError } from "@townos/format";
import { WORKLOAD_NAME, type Workload } from "../workload.js";

export type Accelerator = "kvm" | "tcg";

/** The files of one VM's state directory QEMU is told about. */
export interface QemuPaths {
  /** QMP's unix socket; its path must stay below 108 bytes. */
  qmpSocket: string;
  /** KEY=VALUE lines of `Workload.env`, handed to the guest through fw_cfg. */
  environmentFile: string;
}

export interface QemuArgsInput {
  workload: Workload;
  accelerator: Accelerator;
  /** The base image (qcow2) `workload.image` names in the VM image store. */
  baseImage: string;
  paths: QemuPaths;
}

/** fw_cfg file the guest reads its environment from (`/sys/firmware/qemu_fw_cfg/by_name/…`). */
export const FW_CFG_ENVIRONMENT = "opt/town/environment";
/** The serial console's ring buffer in QEMU (read over QMP); a power of two. */
export const CONSOLE_DEVICE = "console";
export const CONSOLE_RING_BYTES = 1024 * 1024;

const MIB = 1024 * 1024;
const MIN_MEMORY_BYTES = 16 * MIB;
const MAX_MEMORY_BYTES = 1024 * 1024 * MIB;
const MAX_CPUS = 255;
/** sockaddr_un's sun_path, NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;
/** QEMU's own limit on a 9p mount tag. */
const MAX_MOUNT_TAG_BYTES = 31;
const MOUNT_TAG = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ENV_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** No display, no default devices, no user config: every device is one we name. */
export const HEADLESS: readonly string[] = ["-nodefaults", "-no-user-config", "-display", "none"];

/** The machine and accelerator every VM (and the accelerator probe) gets. */
export function machineArgs(accelerator: Accelerator): string[] {
  return ["-machine", "q35", "-accel", accelerator, "-cpu", accelerator === "kvm" ? "host" : "max"];
}

/** The arguments after the program name. @throws TownError invalid_argument */
export function qemuArgs(input: QemuArgsInput): string[] {
  const { workload, accelerator, paths } = input;
  const fail = (message: string): never => {
    throw new TownError("invalid_argument", `vm ${workload.name}: ${message}`);
  };
  if (!WORKLOAD_NAME.test(workload.name)) fail("the name is not a workload name");
  const machine = workload.machine;
  if (workload.kind !== "vm" || machine === undefined) return fail("the workload is not a VM");
  if (workload.entrypoint !== undefined || workload.command !== undefined)
    fail("a VM has no entrypoint or command: its disk image decides what runs");
  const memoryMiB = memoryMebibytes(machine.memoryBytes, fail);
  if (!Number.isSafeInteger(machine.cpus) || machine.cpus < 1 || machine.cpus > MAX_CPUS)
    fail(`${machine.cpus} CPUs: 1 to ${MAX_CPUS} are possible`);
  const disk = hostPath(machine.disk, "the disk", fail);
  const base = hostPath(input.baseImage, "the base image", fail);
  const qmp = hostPath(paths.qmpSocket, "the QMP socket", fail);
  if (Buffer.byteLength(qmp) > MAX_SOCKET_PATH_BYTES)
    fail(`the QMP socket path ${qmp} is longer than a unix socket path may be`);
  const environment = hostPath(paths.environmentFile, "the environment file", fail);
  environmentFile(workload.env, fail);

  const args = [
    ...HEADLESS,
    "-name",
    workload.name,
    ...machineArgs(accelerator),
    "-m",
    String(memoryMiB),
    "-smp",
    String(machine.cpus),
    // A guest that breaks out of its device models may not spawn, escalate or use obsolete calls.
    "-sandbox",
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-msg",
    "timestamp=on",
    "-blockdev",
    blockdev({ driver: "file", filename: base, "node-name": "base-file", "read-only": true }),
    "-blockdev",
    blockdev({ driver: "qcow2", file: "base-file", "node-name": "base", "read-only": true }),
    "-blockdev",
    blockdev({ driver: "file", filename: disk, "node-name": "disk-file" }),
    "-blockdev",
    blockdev({ driver: "qcow2", file: "disk-file", backing: "base", "node-name": "disk" }),
    "-device",
    "virtio-blk-pci,drive=disk,bootindex=0",
    "-netdev",
    netdev(workload, fail),
    "-device",
    "virtio-net-pci,netdev=net0",
    // Guests wait for entropy at boot (key generation); the host's is cheap to share.
    "-device",
    "virtio-rng-pci",
    "-chardev",
    `ringbuf,id=${CONSOLE_DEVICE},size=${CONSOLE_RING_BYTES}`,
    "-serial",
    `chardev:${CONSOLE_DEVICE}`,
    "-qmp",
    `unix:${escape(qmp)},server=on,wait=off`,
    "-fw_cfg",
    `name=${FW_CFG_ENVIRONMENT},file=${escape(environment)}`,
  ];
  const tags = new Set<string>();
  workload.mounts.forEach((mount, index) => {
    const tag = mount.name ?? fail(`the mount of ${mount.source} has no name (its 9p tag)`);
    if (!MOUNT_TAG.test(tag) || Buffer.byteLength(tag) > MAX_MOUNT_TAG_BYTES)
      fail(`"${tag}" is not a 9p mount tag (letters, digits, _ . -, at most 31 bytes)`);
    if (tags.has(tag)) fail(`two mounts are named ${tag}`);
    tags.add(tag);
    const source = hostPath(mount.source, `the mount ${tag}`, fail);
    args.push(
      "-virtfs",
      `local,path=${escape(source)},mount_tag=${tag},security_model=mapped-xattr,id=fs${index}`,
    );
  });
  return args;
}

/**
 * The environment file's text: one KEY=VALUE line per variable, sorted.
 * @throws TownError invalid_argument for a name or value a line cannot carry
 */
export function environmentFile(
  env: Readonly<Record<string, string>>,
  fail: (message: string) => never = (message) => {
    throw new TownError("invalid_argument", message);
  },
): string {
  const lines: string[] = [];
  for (const name of Object.keys(env).sort()) {
    const value = env[name] ?? "";
    if (!ENV_NAME.test(name)) fail(`"${name}" is not an environment variable name`);
    if (findControlCharacter(value) !== undefined)
      fail(`the environment variable ${name} has a control character`);
    lines.push(`${name}=${value}\n`);
  }
  return lines.join("");
}

/** `-m` takes MiB: a size between two is rounded up. */
function memoryMebibytes(bytes: number, fail: (message: string) => never): number {
  if (!Number.isSafeInteger(bytes) || bytes < MIN_MEMORY_BYTES || bytes > MAX_MEMORY_BYTES)
    fail(`${bytes} bytes of memory: ${MIN_MEMORY_BYTES / MIB} MiB to 1 TiB are possible`);
  return Math.ceil(bytes / MIB);
}

function netdev(workload: Workload, fail: (message: string) => never): string {
  const forwards = [...workload.ports]
    .sort((a, b) => a.hostPort - b.hostPort || compareText(a.hostAddress, b.hostAddress))
    .map((port) => {
      // QEMU 7.2's user-mode network forwards from IPv4 addresses only.
      if (!isIPv4(port.hostAddress))
        fail(`"${port.hostAddress}" is not an IPv4 address to forward port ${port.hostPort} from`);
      for (const number of [port.hostPort, port.port])
        if (!Number.isSafeInteger(number) || number < 1 || number > 65535)
          fail(`${number} is not a port number`);
      // The guest is QEMU's first DHCP address, 10.0.2.15, which "-:port" means.
      return `,hostfwd=tcp:${port.hostAddress}:${port.hostPort}-:${port.port}`;
    });
  return `user,id=net0${forwards.join("")}`;
}

/** A normalized absolute path free of control characters. */
function hostPath(path: string, what: string, fail: (message: string) => never): string {
  if (findControlCharacter(path) !== undefined || path.includes("\t"))
    fail(`${what} has a control character in its path`);
  if (!path.startsWith("/") || posix.normalize(path) !== path || path.length > 4096)
    fail(`${what} (${path}) is not a normalized absolute path`);
  return path;
}

/** QEMU's option syntax splits values at commas; a doubled comma is a literal one. */
export function escape(value: string): string {
  return value.replaceAll(",", ",,");
}

function blockdev(options: Record<string, string | boolean>): string {
  return JSON.stringify(options);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
