/**
 * The runtime fields of a plan: a VM's image, memory, CPUs and checksum, and
 * its disk volume; a container's metrics endpoint; how the app is quiesced
 * before a snapshot.
 */

import type { PackageDefinition } from "../definition/types.js";
import {
  DEFAULT_QUIESCE_TIMEOUT_SECONDS,
  isGitUrl,
  MAX_QUIESCE_ARG_LENGTH,
  metricsPathProblem,
  parseQuiesceTimeout,
  SHA256,
} from "../rules.js";
import { parseByteSize } from "../units.js";
import type { FieldCompiler } from "./fields.js";
import { portNumber } from "./ports.js";
import type { CompiledPackage, CompiledVolume } from "./types.js";

/**
 * The volume every VM's own disk lives in (a copy-on-write file over the
 * base image), so that uninstall and reinstall keep or drop it like any
 * other volume. A package may not declare a volume of that name.
 */
export const VM_DISK_VOLUME = "vm-disk";

/** That volume as every VM plan holds it: the guest's root (mountpoint `/`), no quota, no seed. */
export const VM_DISK: Readonly<CompiledVolume> = {
  name: VM_DISK_VOLUME,
  mountpoint: "/",
  quota: null,
  uid: null,
  gid: null,
  archive: null,
  git: null,
};

export function compileVm(
  field: FieldCompiler,
  vm: NonNullable<PackageDefinition["vm"]>,
): CompiledPackage["vm"] {
  const image = field.text("vm.image", field.stage1(vm.image));
  if (!isGitUrl(image) && !/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/.test(image)) {
    field.report("vm.image", `"${image}" is neither an http(s) URL nor a file name`);
  }
  const memoryText = field.text("vm.memory", field.stage1(vm.memory));
  const memory = parseByteSize(memoryText);
  if (memory === undefined || memory === 0)
    field.report("vm.memory", `"${memoryText}" is not a byte size`);
  const cpusText = field.text("vm.cpus", field.stage1(vm.cpus));
  if (!/^[1-9][0-9]{0,2}$/.test(cpusText))
    field.report("vm.cpus", `"${cpusText}" is not a CPU count`);
  let sha256: string | null = null;
  if (vm.sha256 !== undefined) {
    sha256 = field.text("vm.sha256", field.stage1(vm.sha256)).toLowerCase();
    if (!SHA256.test(sha256)) field.report("vm.sha256", `"${sha256}" is not a SHA-256 in hex`);
  }
  return { image, memory: memory ?? 0, cpus: Number(cpusText) || 0, sha256 };
}

/**
 * What a VM plan adds to the package's volumes: its disk volume (the guest's
 * root, hence the mountpoint `/`). Fields a container alone has meaning for
 * are refused rather than silently dropped.
 */
export function vmVolumes(
  field: FieldCompiler,
  definition: PackageDefinition,
  volumes: readonly CompiledVolume[],
): CompiledVolume[] {
  if (volumes.some((volume) => volume.name === VM_DISK_VOLUME)) {
    field.report(
      `volumes.${VM_DISK_VOLUME}`,
      `the volume name ${VM_DISK_VOLUME} is the VM's own disk; pick another name`,
    );
  }
  for (const [name, present] of [
    ["entrypoint", definition.entrypoint !== undefined],
    ["command", definition.command !== undefined],
    ["post_update", definition.postUpdate.length > 0],
  ] as const) {
    if (present) field.report(name, `${name} has no meaning for a virtual machine`);
  }
  return [...volumes, { ...VM_DISK }];
}

/** The `metrics` extension once substituted: a container port and an absolute URL path. */
export function compileMetrics(
  field: FieldCompiler,
  metrics: PackageDefinition["metrics"],
): CompiledPackage["metrics"] {
  if (metrics === undefined) return null;
  const port = portNumber(field, "metrics.port", metrics.port);
  const path = field.text("metrics.path", field.stage1(metrics.path));
  const problem = metricsPathProblem(path);
  if (problem) field.report("metrics.path", `"${path}" ${problem}`);
  return { port, path };
}

/**
 * The `backup` extension once substituted: the command's arguments checked
 * again (an answer may make one long or the program name empty), and the
 * timeout in seconds (default 60, also when it substitutes to blank).
 */
export function compileBackup(
  field: FieldCompiler,
  backup: PackageDefinition["backup"],
): NonNullable<CompiledPackage["backup"]> | null {
  if (backup === undefined) return null;
  const command = backup.command.map((arg, i) => {
    const name = `backup.command.${i}`;
    const value = field.text(name, field.stage1(arg));
    if (value.length > MAX_QUIESCE_ARG_LENGTH)
      field.report(name, `is longer than ${MAX_QUIESCE_ARG_LENGTH} characters after substitution`);
    return value;
  });
  if (command[0] === "") field.report("backup.command.0", "must not be empty after substitution");
  const timeoutSeconds =
    field.optional("backup.timeout", backup.timeout, parseQuiesceTimeout) ??
    DEFAULT_QUIESCE_TIMEOUT_SECONDS;
  return { quiesce: backup.quiesce, command, timeoutSeconds };
}
