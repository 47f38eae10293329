/**
 * Typed reads of libpod's JSON answers. Libpod leaves out zero values
 * (Go's `omitempty`), so a missing field reads as its zero value; a field
 * of the wrong type is an unexpected answer and fails with TownError `io`.
 */
import { TownError } from "@townos/format";

export type JsonObject = Readonly<Record<string, unknown>>;

export class Decoder {
  /** `context` is what the call did, as in its other errors: `inspect container x`. */
  constructor(private readonly context: string) {}

  fail(what: string): never {
    throw new TownError("io", `podman: ${this.context}: unexpected answer (${what})`);
  }

  object(value: unknown, what: string): JsonObject {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return this.fail(`${what} is not an object`);
    }
    return value as JsonObject;
  }

  /** An object member that may be absent or null. */
  optionalObject(parent: JsonObject, key: string): JsonObject | undefined {
    const value = parent[key];
    return value === undefined || value === null ? undefined : this.object(value, key);
  }

  array(value: unknown, what: string): readonly unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) return this.fail(`${what} is not a list`);
    return value;
  }

  string(parent: JsonObject, key: string): string {
    const value = parent[key];
    if (value === undefined || value === null) return "";
    if (typeof value !== "string") return this.fail(`${key} is not text`);
    return value;
  }

  number(parent: JsonObject, key: string): number {
    const value = parent[key];
    if (value === undefined || value === null) return 0;
    if (typeof value !== "number") return this.fail(`${key} is not a number`);
    return value;
  }

  boolean(parent: JsonObject, key: string): boolean {
    const value = parent[key];
    if (value === undefined || value === null) return false;
    if (typeof value !== "boolean") return this.fail(`${key} is not true or false`);
    return value;
  }

  strings(parent: JsonObject, key: string): string[] {
    return this.array(parent[key], key).map((item) =>
      typeof item === "string" ? item : this.fail(`${key} holds a non-text item`),
    );
  }

  /** A string-to-string map (labels, attributes); absent or null reads as empty. */
  stringMap(parent: JsonObject, key: string): Record<string, string> {
    const value = parent[key];
    if (value === undefined || value === null) return {};
    const map: Record<string, string> = {};
    for (const [name, item] of Object.entries(this.object(value, key))) {
      if (typeof item !== "string") return this.fail(`${key}.${name} is not text`);
      map[name] = item;
    }
    return map;
  }
}

/** Podman's Unix seconds; Go's zero time (far before 1970) means never. */
export function unixTime(seconds: number): Date | null {
  return seconds > 0 ? new Date(seconds * 1000) : null;
}

/** Go's zero time (`0001-01-01T00:00:00Z`) and unparsable text read as null. */
export function goTime(text: string): Date | null {
  if (text === "" || text.startsWith("0001-01-01")) return null;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}
