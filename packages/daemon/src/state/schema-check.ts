import { TypeRegistry, type TSchema } from "@sinclair/typebox";
import { Value, ValueErrorType, type ValueError } from "@sinclair/typebox/value";

/*
 * The API's schemas spell a few shapes as plain JSON Schema (`Type.Unsafe`:
 * a `type` list, a string `enum`) so that Fastify compiles them to plain
 * code. TypeBox's `Value.Check` knows no `Unsafe` kind and throws on them,
 * so it is taught the few keywords those schemas use; any other keyword
 * throws, and a test walks the state files' schemas to keep it that way.
 */

const PLAIN_KEYWORDS = new Set([
  "type",
  "enum",
  "minLength",
  "maxLength",
  "pattern",
  "minimum",
  "maximum",
  "description",
  "title",
]);

type JsonType = "string" | "integer" | "number" | "boolean" | "null" | "object" | "array";

interface PlainSchema {
  type?: JsonType | JsonType[];
  enum?: unknown[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
}

/** The keywords of an `Unsafe` schema that `checkPlain` does not understand. */
export function unsupportedKeywords(schema: object): string[] {
  return Object.keys(schema).filter((keyword) => !PLAIN_KEYWORDS.has(keyword));
}

function hasType(type: JsonType, value: unknown): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "integer":
      return Number.isSafeInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    case "array":
      return Array.isArray(value);
  }
}

function checkPlain(schema: PlainSchema, value: unknown): boolean {
  const unsupported = unsupportedKeywords(schema);
  if (unsupported.length > 0) {
    throw new Error(`schema keyword ${unsupported.join(", ")} is not supported here`);
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((type) => hasType(type, value))) return false;
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) return false;
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) return false;
    if (schema.maxLength !== undefined && value.length > schema.maxLength) return false;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) return false;
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) return false;
    if (schema.maximum !== undefined && value > schema.maximum) return false;
  }
  return true;
}

if (!TypeRegistry.Has("Unsafe")) TypeRegistry.Set<PlainSchema>("Unsafe", checkPlain);

/** Errors past these are noise: the first ones say what to fix. */
const MAX_ERRORS = 10;

/** What a value of `schema` looks like, for a person: `a string or null`. */
function describe(schema: TSchema, alone = true): string {
  const plain = schema as PlainSchema & { anyOf?: TSchema[]; properties?: object };
  if (plain.enum !== undefined) return `one of ${plain.enum.map(String).join(", ")}`;
  if (plain.anyOf !== undefined)
    return plain.anyOf.map((each) => describe(each, false)).join(" or ");
  if (plain.properties !== undefined && plain.type === "object") {
    return `{${Object.keys(plain.properties).join(", ")}}`;
  }
  const types = plain.type === undefined ? [] : [plain.type].flat();
  const text = types.map((type) => ARTICLED[type]).join(" or ");
  // In a union the lengths only clutter: the type is what went wrong.
  return alone && plain.maxLength !== undefined
    ? `${text} (at most ${plain.maxLength} characters)`
    : text;
}

const ARTICLED: Record<JsonType, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "true or false",
  null: "null",
  object: "an object",
  array: "a list",
};

function expectsString(schema: TSchema): boolean {
  const plain = schema as { type?: unknown; anyOf?: TSchema[] };
  if (plain.anyOf !== undefined) return plain.anyOf.some(expectsString);
  return [plain.type].flat().includes("string");
}

/** `answers.admin` from the pointer `/answers/admin`; the file itself: "". */
function fieldOf(error: ValueError): string {
  return error.path
    .slice(1)
    .split("/")
    .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
    .join(".");
}

function messageOf(error: ValueError): string {
  const plainKind = error.type === ValueErrorType.Kind || error.type === ValueErrorType.Union;
  if (!plainKind) return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  const quoteHint =
    error.type === ValueErrorType.Union &&
    (Number.isFinite(error.value) || typeof error.value === "boolean") &&
    expectsString(error.schema)
      ? " (put it in quotes)"
      : "";
  return `expected ${describe(error.schema)}${quoteHint}`;
}

/** Why `value` is not a `schema`, as `field: message` lines; empty when it is one. */
export function schemaProblems(schema: TSchema, value: unknown): string[] {
  if (Value.Check(schema, value)) return [];
  const problems: string[] = [];
  // TypeBox says "required" then "expected object" of a missing field: the first says it.
  const fields = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const field = fieldOf(error);
    if (fields.has(field)) continue;
    fields.add(field);
    problems.push(field === "" ? messageOf(error) : `${field}: ${messageOf(error)}`);
    if (problems.length === MAX_ERRORS) break;
  }
  return problems;
}
