/**
 * Checked reading of package fields: every string is bounded and free of
 * control characters, and unknown keys are warned about. Each section reader
 * (runtime.ts, network.ts, …) goes through one FieldReader, which records
 * problems on the YamlSource instead of throwing.
 */

import type { Node as YamlNode } from "yaml";
import type { SourceLocation } from "../errors.js";
import type { OAuthReader } from "../oauth.js";
import { findControlCharacter, MAX_VALUE_LENGTH } from "../rules.js";
import type { YamlSource } from "../yaml-source.js";

export type Field = YamlNode | null | undefined;

export class FieldReader implements OAuthReader {
  constructor(readonly source: YamlSource) {}

  at(field: string): { location?: SourceLocation } {
    const location = this.source.locations.get(field);
    return location ? { location } : {};
  }

  /** A string with the checks every package string gets: bounded, no control characters. */
  text(
    node: Field,
    field: string,
    options: { multiline?: boolean; max?: number } = {},
  ): string | undefined {
    const value = this.source.string(node, field);
    if (value === undefined) return undefined;
    const max = options.max ?? MAX_VALUE_LENGTH;
    if (value.length > max) {
      this.source.error(field, node, `is longer than ${max} characters`);
      return undefined;
    }
    const checked = options.multiline ? value.replace(/[\n\r]/g, "") : value;
    const control = findControlCharacter(checked);
    if (control) {
      this.source.error(field, node, `contains a control character (${control})`);
      return undefined;
    }
    return value;
  }

  required(node: Field, field: string): string {
    const before = this.source.issues.length;
    const value = this.text(node, field);
    if (value === undefined && this.source.issues.length === before) {
      const [parent, name] = splitField(field);
      this.source.keyError(parent, `${name} is required`);
    } else if (value === "") {
      this.source.error(field, node, "must not be empty");
    }
    return value ?? "";
  }

  stringMap(node: Field, field: string): Map<string, string> {
    const result = new Map<string, string>();
    for (const [key, value] of this.source.map(node, field)) {
      result.set(key, this.text(value, `${field}.${key}`) ?? "");
    }
    return result;
  }

  fieldsOf(node: Field, field: string, known: readonly string[]): Map<string, YamlNode | null> {
    const entries = new Map(this.source.map(node, field));
    for (const [key, value] of entries) {
      if (!known.includes(key))
        this.source.warn(`${field}.${key}`, value, `unknown field "${key}" is ignored`);
    }
    return entries;
  }

  commandList(node: Field, field: string): string[] {
    return this.source
      .list(node, field)
      .map((item, index) => this.text(item, `${field}.${index}`) ?? "");
  }
}

/** `volumes.data.mountpoint` → [`volumes.data`, `mountpoint`]. */
function splitField(field: string): [string, string] {
  const dot = field.lastIndexOf(".");
  return dot === -1 ? ["", field] : [field.slice(0, dot), field.slice(dot + 1)];
}
