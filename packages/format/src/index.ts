export * from "./errors.js";
export * from "./definition/types.js";
export { parseDefinition } from "./definition/parse.js";
export * from "./compile/types.js";
export { compilePackage } from "./compile/compile.js";
export { planSecrets } from "./compile/plan.js";
export { VM_DISK, VM_DISK_VOLUME } from "./compile/runtime.js";
export * from "./image.js";
export * from "./markers.js";
export * from "./names.js";
export * from "./oauth.js";
export * from "./questions.js";
export * from "./repository.js";
export * from "./units.js";
export * from "./version.js";
export { MAX_PACKAGE_FILE_BYTES } from "./yaml-source.js";
export { renderFileTemplate, type TownTemplateInput } from "./template-data.js";
export {
  findControlCharacter,
  DNS_LABEL,
  PACKAGE_NAME,
  isDomainName,
  isGitUrl,
  parseId,
  SHA256,
  type QuiesceMode,
} from "./rules.js";
