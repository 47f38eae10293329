/**
 * A port of Go's text/template (Go 1.19 semantics) for rendering the file
 * templates of Town OS packages. See value.ts for how JavaScript values stand
 * for Go values.
 */

export {
  defaultExecLimits,
  executeTemplate,
  parseTemplate,
  Template,
  type ExecuteOptions,
  type ParseOptions,
} from "./template.js";
export type { ExecLimits } from "./exec.js";
export {
  goFloat,
  GoFloat,
  goTypes,
  mapOf,
  sliceOf,
  structType,
  typed,
  Typed,
  typeString,
  type GoType,
  type MapType,
  type SliceType,
  type StructType,
} from "./value.js";
export { townTemplateData, townTypes, type TownTemplateInput } from "./town.js";
