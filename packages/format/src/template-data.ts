import {
  executeTemplate,
  parseTemplate,
  townTemplateData,
  type TownTemplateInput,
} from "./gotemplate/index.js";

export type { TownTemplateInput };

/** Renders one package file template; throws TownError `template_syntax` or `template_exec`. */
export function renderFileTemplate(name: string, source: string, input: TownTemplateInput): string {
  return executeTemplate(parseTemplate(name, source), townTemplateData(input));
}
