/**
 * Public entry points: parse a template source, execute it on data.
 */

import { TownError } from "../errors.js";
import type { Tree } from "./ast.js";
import { execute, type ExecLimits } from "./exec.js";
import { parseTrees } from "./parser.js";
import { utf8Length } from "./utf8.js";
import { toValue } from "./value.js";

export interface ParseOptions {
  /** Largest accepted source, in UTF-8 bytes (default 256 KiB). */
  maxSourceBytes?: number;
  /** Deepest nesting of control structures and parentheses (default 100). */
  maxDepth?: number;
}

export type ExecuteOptions = Partial<ExecLimits>;

export const defaultExecLimits: Readonly<ExecLimits> = Object.freeze({
  maxOutputBytes: 4 * 1024 * 1024,
  maxSteps: 1_000_000,
  maxTemplateDepth: 100,
  maxNesting: 300,
});

const DEFAULT_MAX_SOURCE_BYTES = 256 * 1024;
const DEFAULT_MAX_DEPTH = 100;

/** A parsed template and the templates it {{define}}s. */
export class Template {
  /** @internal */
  constructor(
    readonly name: string,
    /** @internal */
    readonly trees: ReadonlyMap<string, Tree>,
  ) {}

  /** Names of all templates in the set, sorted. */
  get definedTemplates(): string[] {
    return [...this.trees.keys()].sort();
  }
}

/**
 * Parses `source` as a Go text/template named `name`.
 * Throws TownError "template_syntax" with Go's message ("template: NAME:LINE: …").
 */
export function parseTemplate(name: string, source: string, options: ParseOptions = {}): Template {
  const maxSourceBytes = options.maxSourceBytes ?? DEFAULT_MAX_SOURCE_BYTES;
  // Cheap check first: a UTF-16 unit is at least one UTF-8 byte.
  if (source.length > maxSourceBytes || utf8Length(source) > maxSourceBytes) {
    throw new TownError(
      "template_syntax",
      `template: ${name}: source is larger than the limit of ${maxSourceBytes} bytes`,
    );
  }
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const trees = guardStack("template_syntax", name, () => parseTrees(name, source, { maxDepth }));
  return new Template(name, trees);
}

/**
 * Executes `template` with `data` (see value.ts for how JavaScript values map
 * to Go values) and returns the output.
 * Throws TownError "template_exec" with Go's message
 * ("template: NAME:LINE:COL: executing "NAME" at <…>: …"), or "invalid_argument"
 * when `data` cannot be represented.
 */
export function executeTemplate(
  template: Template,
  data: unknown,
  options: ExecuteOptions = {},
): string {
  const main = template.trees.get(template.name);
  if (main === undefined) {
    throw new TownError("internal", `template ${template.name} has no main tree`);
  }
  const value = toValue(data);
  const limits = { ...defaultExecLimits, ...options };
  return guardStack("template_exec", template.name, () =>
    execute(template.trees, main, value, limits),
  );
}

/**
 * The depth limits keep recursion well inside the default stack; should a
 * caller already be deep in its own stack, report overflow as a template error.
 */
function guardStack<T>(code: "template_syntax" | "template_exec", name: string, body: () => T): T {
  try {
    return body();
  } catch (e) {
    if (e instanceof RangeError && /call stack/i.test(e.message)) {
      throw new TownError(code, `template: ${name}: nested too deeply (stack exhausted)`, {
        cause: e,
      });
    }
    throw e;
  }
}
