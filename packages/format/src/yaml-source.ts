import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import type { Node as YamlNode } from "yaml";
import type { Issue, SourceLocation } from "./errors.js";

/** Package files are small; anything bigger is hostile or a mistake. */
export const MAX_PACKAGE_FILE_BYTES = 1024 * 1024;

/** Bounds alias expansion (a "billion laughs" document) while walking nodes. */
const MAX_NODE_VISITS = 200_000;

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
  private visits = 0;

  constructor(text: string) {
    if (Buffer.byteLength(text, "utf8") > MAX_PACKAGE_FILE_BYTES) {
      this.issues.push({
        message: `file is larger than ${MAX_PACKAGE_FILE_BYTES} bytes`,
        location: { line: 1, col: 1 },
      });
      return;
    }
    const document = parseDocument(text, {
      lineCounter: this.lineCounter,
      prettyErrors: false,
      uniqueKeys: true,
    });
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
    if (document.errors.length === 0) this.document = document;
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
    if (node && isAlias(node) && this.document) {
      return node.resolve(this.document);
    }
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
