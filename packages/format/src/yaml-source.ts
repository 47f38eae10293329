import {
  Composer,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  Parser,
  visit,
  YAMLParseError,
  CST,
  type Document,
} from "yaml";
import type { Node as YamlNode } from "yaml";
import type { Issue, SourceLocation } from "./errors.js";

/** Package files are small; anything bigger is hostile or a mistake. */
export const MAX_PACKAGE_FILE_BYTES = 1024 * 1024;

/** Bounds alias expansion (a "billion laughs" document) while walking nodes. */
const MAX_NODE_VISITS = 200_000;

/**
 * Aliases one file may hold: package files need few if any. The same number
 * as the yaml library's `maxAliasCount` default, which guards only `toJS`
 * (not used here: it loses source locations, and it too resolves each alias
 * by scanning the document).
 */
export const MAX_ALIASES = 100;

/**
 * How deeply collections may nest (the CST parser's stack). Real packages
 * nest a handful of levels; a deep file makes the library's recursive
 * composer slow and ends in a stack overflow.
 */
export const MAX_NESTING_DEPTH = 64;

/** Thrown from the token stream to stop reading a document over a bound. */
class Refused extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/**
 * A YAML document read for typed access: every getter records a problem with
 * its location instead of throwing, so one pass reports every error of a file.
 */
export class YamlSource {
  readonly issues: Issue[] = [];
  readonly warnings: Issue[] = [];
  /** Dotted field path → where it was written, for errors found later. */
  readonly locations = new Map<string, SourceLocation>();
  /** Dotted field path → where its key was written, for errors about names. */
  private readonly keyLocations = new Map<string, SourceLocation>();
  private readonly lineCounter = new LineCounter();
  private readonly document: Document.Parsed | undefined;
  /** Each alias node's target, found in one pass (the library's `resolve` rescans the document). */
  private readonly aliasTargets = new Map<YamlNode, YamlNode | undefined>();
  private visits = 0;

  constructor(private readonly text: string) {
    if (Buffer.byteLength(text, "utf8") > MAX_PACKAGE_FILE_BYTES) {
      this.issues.push({
        message: `file is larger than ${MAX_PACKAGE_FILE_BYTES} bytes`,
        location: { line: 1, col: 1 },
      });
      return;
    }
    let document: Document.Parsed;
    try {
      document = this.parse(text);
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      this.issues.push({ message: error.message, location: this.locate(error.offset) });
      return;
    }
    for (const error of document.errors) {
      this.issues.push({
        message: `YAML: ${error.message}`,
        location: this.locate(error.pos[0]),
      });
    }
    for (const warning of document.warnings) {
      this.warnings.push({
        message: `YAML: ${warning.message}`,
        location: this.locate(warning.pos[0]),
      });
    }
    if (document.errors.length === 0 && this.index(document)) this.document = document;
  }

  /**
   * `parseDocument` with the aliases counted and the CST parser's depth
   * checked at every token, so an alias bomb or a deeply nested file stops
   * at once instead of reaching the composer.
   */
  private parse(text: string): Document.Parsed {
    // Duplicate keys are found in `index`: the library's check is quadratic in a mapping's size.
    const composer = new Composer({ prettyErrors: false, uniqueKeys: false });
    let first: Document.Parsed | undefined;
    for (const document of composer.compose(this.tokens(text), true, text.length)) {
      if (first === undefined) first = document;
      else {
        first.errors.push(
          new YAMLParseError(
            document.range.slice(0, 2) as [number, number],
            "MULTIPLE_DOCS",
            "Source contains multiple documents",
          ),
        );
        break;
      }
    }
    if (first === undefined) throw new Error("yaml: compose yielded no document");
    return first;
  }

  private *tokens(text: string): Generator<CST.Token> {
    const parser = new Parser(this.lineCounter.addNewLine);
    this.lineCounter.addNewLine(0);
    let aliases = 0;
    for (const lexeme of new Lexer().lex(text)) {
      if (CST.tokenType(lexeme) === "alias" && ++aliases > MAX_ALIASES) {
        throw new Refused(`YAML: more than ${MAX_ALIASES} aliases (an alias bomb?)`, parser.offset);
      }
      yield* parser.next(lexeme);
      if (parser.stack.length > MAX_NESTING_DEPTH) {
        throw new Refused(
          `YAML: collections nest deeper than ${MAX_NESTING_DEPTH} levels`,
          parser.offset,
        );
      }
    }
    yield* parser.end();
  }

  /**
   * One pass over the document: finds each alias's anchor and checks that
   * no mapping repeats a key. False when the file is refused.
   */
  private index(document: Document.Parsed): boolean {
    const anchors = new Map<string, YamlNode>();
    visit(document, {
      Node: (_key, node) => {
        if (isAlias(node)) {
          // The anchor defined last before the alias, as the library's `resolve` finds it.
          this.aliasTargets.set(node, anchors.get(node.source));
        } else if (node.anchor) {
          anchors.set(node.anchor, node);
        }
        if (isMap(node)) this.checkUniqueKeys(node.items);
      },
    });
    return this.issues.length === 0;
  }

  private checkUniqueKeys(pairs: readonly { key: unknown }[]): void {
    const seen = new Set<unknown>();
    for (const { key } of pairs) {
      if (!isScalar(key)) continue;
      if (seen.has(key.value)) {
        this.issues.push({
          message: "YAML: Map keys must be unique",
          location: this.locationOf(key) ?? { line: 1, col: 1 },
        });
      }
      seen.add(key.value);
    }
  }

  get root(): YamlNode | null | undefined {
    return this.document?.contents;
  }

  private locate(offset: number): SourceLocation {
    const pos = this.lineCounter.linePos(offset);
    return { line: pos.line, col: pos.col };
  }

  locationOf(node: YamlNode | null | undefined): SourceLocation | undefined {
    return node?.range ? this.locate(node.range[0]) : undefined;
  }

  error(field: string, node: YamlNode | null | undefined, message: string): void {
    const location = this.locationOf(node) ?? this.locations.get(field);
    this.issues.push(location ? { field, message, location } : { field, message });
  }

  /** Like `error`, but placed at `needle` where the node's source text holds it verbatim. */
  errorWithin(
    field: string,
    node: YamlNode | null | undefined,
    needle: string,
    message: string,
  ): void {
    const [start, end] = node?.range ?? [];
    const at = start === undefined ? -1 : this.text.slice(start, end).indexOf(needle);
    if (start === undefined || at === -1) {
      this.error(field, node, message);
      return;
    }
    this.issues.push({ field, message, location: this.locate(start + at) });
  }

  /** A problem with the name of a mapping entry (or its missing fields), located at the key. */
  keyError(field: string, message: string): void {
    const location = this.keyLocations.get(field) ?? this.locations.get(field);
    this.issues.push(location ? { field, message, location } : { field, message });
  }

  warn(field: string, node: YamlNode | null | undefined, message: string): void {
    const location = this.locationOf(node);
    this.warnings.push(location ? { field, message, location } : { field, message });
  }

  /** Follows aliases, counting visits so that alias bombs stop with an error. */
  private resolve(node: YamlNode | null | undefined, field: string): YamlNode | null | undefined {
    this.visits += 1;
    if (this.visits > MAX_NODE_VISITS) {
      if (this.visits === MAX_NODE_VISITS + 1) {
        this.error(field, node, "document expands to too many nodes (YAML alias bomb?)");
      }
      return undefined;
    }
    if (node && isAlias(node)) return this.aliasTargets.get(node);
    return node;
  }

  private remember(field: string, node: YamlNode | null | undefined): void {
    const location = this.locationOf(node);
    if (location) this.locations.set(field, location);
  }

  /** True for a missing value, an empty scalar or an explicit null. */
  private isAbsent(node: YamlNode | null | undefined): boolean {
    return node == null || (isScalar(node) && node.value === null);
  }

  /**
   * Reads a string. A YAML number or boolean where a string is expected keeps
   * its source text (`default: 2222` → "2222", `version: 1.10` → "1.10"),
   * as a Go decoder into a string field does.
   */
  string(raw: YamlNode | null | undefined, field: string): string | undefined {
    const node = this.resolve(raw, field);
    if (this.isAbsent(node)) return undefined;
    this.remember(field, node);
    if (node && isScalar(node)) {
      if (typeof node.value === "string") return node.value;
      if (typeof node.value === "number" || typeof node.value === "boolean") {
        return node.source ?? String(node.value);
      }
    }
    this.error(field, node, "must be a string");
    return undefined;
  }

  /** Entries of a mapping in source order; keys are read as strings. */
  map(raw: YamlNode | null | undefined, field: string): [string, YamlNode | null][] {
    const node = this.resolve(raw, field);
    if (this.isAbsent(node)) return [];
    this.remember(field, node);
    if (!node || !isMap(node)) {
      this.error(field, node, "must be a mapping");
      return [];
    }
    const entries: [string, YamlNode | null][] = [];
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode | null;
      const key = this.string(keyNode, `${field}.<key>`);
      if (key === undefined) continue;
      const childField = field === "" ? key : `${field}.${key}`;
      const keyLocation = this.locationOf(keyNode);
      if (keyLocation) {
        this.keyLocations.set(childField, keyLocation);
        // The key's place stands for the field until the value's own place is read.
        if (!this.locations.has(childField)) this.locations.set(childField, keyLocation);
      }
      entries.push([key, pair.value as YamlNode | null]);
    }
    return entries;
  }

  /** Items of a sequence. */
  list(raw: YamlNode | null | undefined, field: string): (YamlNode | null)[] {
    const node = this.resolve(raw, field);
    if (this.isAbsent(node)) return [];
    this.remember(field, node);
    if (!node || !isSeq(node)) {
      this.error(field, node, "must be a list");
      return [];
    }
    return node.items.map((item, index) => {
      this.remember(`${field}.${index}`, item as YamlNode | null);
      return item as YamlNode | null;
    });
  }

  /** A list of strings; each item is read like `string`. */
  strings(raw: YamlNode | null | undefined, field: string): string[] {
    const result: string[] = [];
    this.list(raw, field).forEach((item, index) => {
      const value = this.string(item, `${field}.${index}`);
      if (value !== undefined) result.push(value);
    });
    return result;
  }

  isMapping(raw: YamlNode | null | undefined, field: string): boolean {
    const node = this.resolve(raw, field);
    return node != null && isMap(node);
  }

  /** Reads `true`/`false`; quoted strings of the same words are accepted too. */
  boolean(raw: YamlNode | null | undefined, field: string): boolean | undefined {
    const node = this.resolve(raw, field);
    if (this.isAbsent(node)) return undefined;
    this.remember(field, node);
    if (node && isScalar(node)) {
      if (typeof node.value === "boolean") return node.value;
      if (node.value === "true" || node.value === "false") return node.value === "true";
    }
    this.error(field, node, "must be true or false");
    return undefined;
  }
}
