/** The package's templates rendered into the files its volumes start with. */

import type { PackageDefinition } from "../definition/types.js";
import { finishMarkers } from "../markers.js";
import { renderFileTemplate, type TownTemplateInput } from "../template-data.js";
import type { FieldCompiler } from "./fields.js";
import { compareText } from "./plan.js";
import type { CompiledPackage } from "./types.js";

/** Files sorted by volume and path; two templates may not write the same file. */
export function renderFiles(
  field: FieldCompiler,
  templates: PackageDefinition["templates"],
  volumeNames: ReadonlySet<string>,
  input: TownTemplateInput,
): CompiledPackage["files"] {
  const files = [...templates]
    .map(([name, template]) => {
      const templateField = `templates.${name}`;
      const volume = field.volumeRef(`${templateField}.volume`, template.volume, volumeNames);
      const path = field.path(`${templateField}.path`, template.path, "relative");
      let content = "";
      try {
        content = renderFileTemplate(name, finishMarkers(field.stage1(template.content)), input);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        field.report(`${templateField}.content`, message);
      }
      return { volume, path, content };
    })
    .sort((a, b) => compareText(`${a.volume}/${a.path}`, `${b.volume}/${b.path}`));
  const seenFiles = new Set<string>();
  for (const file of files) {
    const key = `${file.volume}/${file.path}`;
    if (seenFiles.has(key)) field.report("templates", `two templates write ${key}`);
    seenFiles.add(key);
  }
  return files;
}
