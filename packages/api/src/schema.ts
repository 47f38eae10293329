import {
  Type,
  type SchemaOptions,
  type Static,
  type TSchema,
  type TUnsafe,
} from "@sinclair/typebox";

// Builders for the shapes TypeBox spells as `anyOf`: a `type` array or an
// `enum` keeps the schemas as they were written by hand, which Fastify's
// serializer compiles to plain code instead of trying each branch at runtime.

/** One of a few strings: `{ type: "string", enum: [...] }`. */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: SchemaOptions = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: "string", enum: [...values] });
}

/** `schema`, or null: `{ ...schema, type: [schema.type, "null"] }`. */
export function Nullable<T extends TSchema & { type: string }>(
  schema: T,
): TUnsafe<Static<T> | null> {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, "null"] });
}

/** A value of any of these JSON types, e.g. a quota that is bytes, a size with a unit, or null. */
export function OneOfTypes<T>(
  types: readonly ("string" | "integer" | "number" | "boolean" | "null")[],
  options: SchemaOptions = {},
): TUnsafe<T> {
  return Type.Unsafe<T>({ ...options, type: [...types] });
}

/** An object of any keys whose values follow `value` (`true`: anything), as `additionalProperties`. */
export function Dictionary<T extends TSchema | true>(
  value: T,
  options: SchemaOptions = {},
): TUnsafe<Record<string, T extends TSchema ? Static<T> : unknown>> {
  return Type.Unsafe({ ...options, type: "object", additionalProperties: value });
}
