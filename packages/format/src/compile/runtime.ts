/** The runtime fields of a plan: a VM's image, memory and CPUs. */

import type { PackageDefinition } from "../definition/types.js";
import { isGitUrl } from "../rules.js";
import { parseByteSize } from "../units.js";
import type { FieldCompiler } from "./fields.js";
import type { CompiledPackage } from "./types.js";

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
  return { image, memory: memory ?? 0, cpus: Number(cpusText) || 0 };
}
