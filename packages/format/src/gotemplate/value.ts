/**
 * The Go value model: JavaScript values standing for Go values, and the
 * reflect-like runtime representation the executor works on.
 *
 * Input conventions (what callers pass as template data):
 *   - string → string, boolean → bool, null/undefined → nil
 *   - number → int when it is a safe integer, float64 otherwise; goFloat(n)
 *     forces float64 (Go distinguishes 1 from 1.0); bigint → int (must fit int64)
 *   - array → []interface {}, plain object or Map → map[string]interface {}
 *   - typed(type, value) gives a value a static Go type, so that, e.g., a
 *     missing key of a map[string]string indexes to "" and a struct reports
 *     "can't evaluate field X in type town.Package".
 *
 * Types are built with goTypes.*, sliceOf, mapOf and structType. Map keys are
 * always strings.
 */

import { TownError } from "../errors.js";
import { INT64_MAX, INT64_MIN } from "./parse-number.js";
import { compareStrings } from "./utf8.js";

export type BasicKind = "bool" | "int" | "uint8" | "float64" | "complex128" | "string";

export interface BasicType {
  readonly kind: BasicKind;
}

/** The empty interface, `interface {}`. */
export interface InterfaceType {
  readonly kind: "interface";
}

export interface SliceType {
  readonly kind: "slice";
  readonly elem: GoType;
}

export interface MapType {
  readonly kind: "map";
  readonly elem: GoType;
}

export interface StructField {
  readonly name: string;
  readonly type: GoType;
}

/** A named struct type; identity is by object, like Go's named types. */
export interface StructType {
  readonly kind: "struct";
  readonly name: string;
  readonly fields: readonly StructField[];
}

export type GoType = BasicType | InterfaceType | SliceType | MapType | StructType;

const basic = (kind: BasicKind): BasicType => Object.freeze({ kind });
const anyType: InterfaceType = Object.freeze({ kind: "interface" });

/** Predeclared types. uint8 and complex128 only arise inside templates (index of a string, 1i). */
export const goTypes = Object.freeze({
  bool: basic("bool"),
  int: basic("int"),
  float64: basic("float64"),
  string: basic("string"),
  any: anyType,
});

const uint8Type = basic("uint8");
const complex128Type = basic("complex128");

export function sliceOf(elem: GoType): SliceType {
  return Object.freeze({ kind: "slice", elem });
}

export function mapOf(elem: GoType): MapType {
  return Object.freeze({ kind: "map", elem });
}

const exportedName = /^\p{Lu}[\p{L}\p{Nd}_]*$/u;

/** Declares a named struct type; field order is the order of `fields`. */
export function structType(name: string, fields: Readonly<Record<string, GoType>>): StructType {
  const list = Object.entries(fields).map(([fieldName, type]) => {
    if (!exportedName.test(fieldName)) {
      throw new TownError("invalid_argument", `struct ${name}: field ${fieldName} is not exported`);
    }
    return Object.freeze({ name: fieldName, type });
  });
  return Object.freeze({ kind: "struct", name, fields: Object.freeze(list) });
}

export function typeString(t: GoType): string {
  switch (t.kind) {
    case "interface":
      return "interface {}";
    case "slice":
      return "[]" + typeString(t.elem);
    case "map":
      return "map[string]" + typeString(t.elem);
    case "struct":
      return t.name;
    default:
      return t.kind;
  }
}

export function sameType(a: GoType, b: GoType): boolean {
  if (a === b) return true;
  if (a.kind === "slice" && b.kind === "slice") return sameType(a.elem, b.elem);
  if (a.kind === "map" && b.kind === "map") return sameType(a.elem, b.elem);
  if (a.kind === "struct" || b.kind === "struct") return false;
  return a.kind === b.kind;
}

/** Go's Type.Comparable. */
export function comparableType(t: GoType): boolean {
  switch (t.kind) {
    case "slice":
    case "map":
      return false;
    case "struct":
      return t.fields.every((f) => comparableType(f.type));
    default:
      return true;
  }
}

// Runtime values, the analogue of reflect.Value.

export interface SliceData {
  readonly arr: readonly Value[];
  readonly off: number;
  readonly len: number;
  readonly cap: number;
}

/**
 * A runtime value, discriminated by its kind `k`. "invalid" is Go's zero
 * reflect.Value: what nil data, a missing map key or an unset pipeline yields;
 * it prints as <no value>.
 */
export type Value =
  | { readonly k: "invalid" }
  | { readonly k: "bool"; readonly v: boolean }
  | { readonly k: "int"; readonly v: bigint }
  | { readonly k: "uint8"; readonly v: number }
  | { readonly k: "float64"; readonly v: number }
  | { readonly k: "complex128"; readonly re: number; readonly im: number }
  | { readonly k: "string"; readonly v: string }
  /** A value of static type interface {}; `v` is the dynamic value or null for nil. */
  | { readonly k: "interface"; readonly v: ConcreteValue | null }
  | { readonly k: "slice"; readonly t: SliceType; readonly v: SliceData | null }
  | { readonly k: "map"; readonly t: MapType; readonly v: ReadonlyMap<string, Value> | null }
  | { readonly k: "struct"; readonly t: StructType; readonly v: readonly Value[] };

/** A valid value: anything but the zero reflect.Value. */
export type ValidValue = Exclude<Value, { k: "invalid" }>;

/** A value of a concrete (non-interface) type. */
export type ConcreteValue = Exclude<ValidValue, { k: "interface" }>;

export const INVALID: Value = Object.freeze({ k: "invalid" });

export function typeOf(v: ConcreteValue): GoType {
  switch (v.k) {
    case "bool":
      return goTypes.bool;
    case "int":
      return goTypes.int;
    case "uint8":
      return uint8Type;
    case "float64":
      return goTypes.float64;
    case "complex128":
      return complex128Type;
    case "string":
      return goTypes.string;
    default:
      return v.t;
  }
}

/** Static type of a valid value, as reflect.Value.Type() reports it. */
function valueType(v: ValidValue): GoType {
  return v.k === "interface" ? goTypes.any : typeOf(v);
}

export function valueTypeString(v: ValidValue): string {
  return typeString(valueType(v));
}

export function zeroValue(t: GoType): ValidValue {
  switch (t.kind) {
    case "bool":
      return { k: "bool", v: false };
    case "int":
      return { k: "int", v: 0n };
    case "uint8":
      return { k: "uint8", v: 0 };
    case "float64":
      return { k: "float64", v: 0 };
    case "complex128":
      return { k: "complex128", re: 0, im: 0 };
    case "string":
      return { k: "string", v: "" };
    case "interface":
      return { k: "interface", v: null };
    case "slice":
      return { k: "slice", t, v: null };
    case "map":
      return { k: "map", t, v: null };
    case "struct":
      return { k: "struct", t, v: t.fields.map((f) => zeroValue(f.type)) };
  }
}

/** reflect's indirectInterface: the dynamic value of an interface, or invalid for nil. */
export function indirectInterface(v: Value): Value {
  if (v.k !== "interface") return v;
  return v.v ?? INVALID;
}

export function sliceElems(s: SliceData): readonly Value[] {
  return s.arr.slice(s.off, s.off + s.len);
}

/** Map keys in Go's fmtsort order (byte-wise, i.e. code point order). */
export function sortedKeys(m: ReadonlyMap<string, Value>): string[] {
  return [...m.keys()].sort(compareStrings);
}

// Conversion of JavaScript input.

/** Marks a JavaScript number as float64 even when it is integral. */
export class GoFloat {
  constructor(readonly value: number) {}
}

export function goFloat(value: number): GoFloat {
  return new GoFloat(value);
}

/** A JavaScript value paired with the static Go type it stands for. */
export class Typed {
  constructor(
    readonly type: GoType,
    readonly value: unknown,
  ) {}
}

export function typed(type: GoType, value: unknown): Typed {
  return new Typed(type, value);
}

/** Data deeper than this is rejected; it also bounds recursion when printing values. */
const MAX_DATA_DEPTH = 100;

const anySlice = sliceOf(goTypes.any);
const anyMap = mapOf(goTypes.any);

class Converter {
  private readonly active = new Set<object>();
  /** Converted containers, so data that shares objects (a DAG) converts in linear time. */
  private readonly memo = new Map<object, Map<GoType, ValidValue>>();

  fail(path: string, message: string): never {
    throw new TownError("invalid_argument", `template data${path}: ${message}`);
  }

  describe(js: unknown): string {
    if (js === null) return "null";
    if (Array.isArray(js)) return "array";
    if (typeof js === "object" && !isPlainObject(js) && !(js instanceof Map)) {
      return js.constructor.name;
    }
    return typeof js;
  }

  /** Converts a container once per type, rejecting cycles and excessive depth. */
  container(
    obj: object,
    t: GoType,
    path: string,
    depth: number,
    body: () => ValidValue,
  ): ValidValue {
    const known = this.memo.get(obj)?.get(t);
    if (known !== undefined) return known;
    if (depth > MAX_DATA_DEPTH) this.fail(path, `nested deeper than ${MAX_DATA_DEPTH} levels`);
    if (this.active.has(obj)) this.fail(path, "cyclic value");
    this.active.add(obj);
    try {
      const v = body();
      const byType = this.memo.get(obj) ?? new Map<GoType, ValidValue>();
      byType.set(t, v);
      this.memo.set(obj, byType);
      return v;
    } finally {
      this.active.delete(obj);
    }
  }

  entries(js: unknown, path: string): [string, unknown][] {
    if (js instanceof Map) {
      return [...(js as Map<unknown, unknown>).entries()].map(([k, v]) => {
        if (typeof k !== "string") this.fail(path, "map keys must be strings");
        return [k, v];
      });
    }
    if (isPlainObject(js)) return Object.entries(js);
    return this.fail(path, `expected an object, got ${this.describe(js)}`);
  }

  /** Converts untyped JavaScript to its natural Go value (the dynamic type of an interface). */
  dynamic(js: unknown, path: string, depth: number): ConcreteValue | null {
    if (js === null || js === undefined) return null;
    if (js instanceof Typed) return dynamicOf(this.convert(js.type, js.value, path, depth));
    if (js instanceof GoFloat) return { k: "float64", v: js.value };
    switch (typeof js) {
      case "string":
        return { k: "string", v: js };
      case "boolean":
        return { k: "bool", v: js };
      case "number":
        return Number.isSafeInteger(js) ? { k: "int", v: BigInt(js) } : { k: "float64", v: js };
      case "bigint":
        return { k: "int", v: this.int64(js, path) };
    }
    if (Array.isArray(js)) {
      return dynamicOf(this.convert(anySlice, js, path, depth));
    }
    if (js instanceof Map || isPlainObject(js)) {
      return dynamicOf(this.convert(anyMap, js, path, depth));
    }
    return this.fail(path, `unsupported value of type ${this.describe(js)}`);
  }

  int64(n: bigint, path: string): bigint {
    if (n < INT64_MIN || n > INT64_MAX) this.fail(path, `${n} overflows int`);
    return n;
  }

  convert(t: GoType, jsIn: unknown, path: string, depth: number): ValidValue {
    let js = jsIn;
    if (js instanceof Typed && t.kind !== "interface") {
      if (!sameType(js.type, t)) {
        this.fail(path, `expected ${typeString(t)}, got typed ${typeString(js.type)}`);
      }
      js = js.value;
    }
    const wrong = (): never =>
      this.fail(path, `expected ${typeString(t)}, got ${this.describe(js)}`);
    switch (t.kind) {
      case "interface":
        return { k: "interface", v: this.dynamic(js, path, depth) };
      case "bool":
        return typeof js === "boolean" ? { k: "bool", v: js } : wrong();
      case "string":
        return typeof js === "string" ? { k: "string", v: js } : wrong();
      case "int":
        if (typeof js === "bigint") return { k: "int", v: this.int64(js, path) };
        if (typeof js === "number" && Number.isSafeInteger(js)) return { k: "int", v: BigInt(js) };
        return wrong();
      case "float64":
        if (js instanceof GoFloat) return { k: "float64", v: js.value };
        return typeof js === "number" ? { k: "float64", v: js } : wrong();
      case "uint8":
      case "complex128":
        return wrong();
      case "slice": {
        if (js === null || js === undefined) return { k: "slice", t, v: null };
        if (!Array.isArray(js)) return wrong();
        const arr: unknown[] = js;
        return this.container(arr, t, path, depth + 1, () => {
          const elems = arr.map((e, i) => this.convert(t.elem, e, `${path}[${i}]`, depth + 1));
          return { k: "slice", t, v: { arr: elems, off: 0, len: elems.length, cap: elems.length } };
        });
      }
      case "map": {
        if (js === null || js === undefined) return { k: "map", t, v: null };
        const obj = js;
        if (typeof obj !== "object") return wrong();
        return this.container(obj, t, path, depth + 1, () => {
          const m = new Map<string, Value>();
          for (const [k, e] of this.entries(obj, path)) {
            m.set(k, this.convert(t.elem, e, `${path}.${k}`, depth + 1));
          }
          return { k: "map", t, v: m };
        });
      }
      case "struct": {
        const obj = js;
        if (typeof obj !== "object" || obj === null) return wrong();
        return this.container(obj, t, path, depth + 1, () => {
          const given = new Map(this.entries(obj, path));
          for (const k of given.keys()) {
            if (!t.fields.some((f) => f.name === k)) this.fail(path, `${t.name} has no field ${k}`);
          }
          const fields = t.fields.map((f) => {
            const v = given.get(f.name);
            return v === undefined
              ? zeroValue(f.type)
              : this.convert(f.type, v, `${path}.${f.name}`, depth + 1);
          });
          return { k: "struct", t, v: fields };
        });
      }
    }
  }
}

/** What an interface{} holding `v` holds. */
function dynamicOf(v: ValidValue): ConcreteValue | null {
  return v.k === "interface" ? v.v : v;
}

function isPlainObject(js: unknown): js is Record<string, unknown> {
  if (typeof js !== "object" || js === null) return false;
  const proto: unknown = Object.getPrototypeOf(js);
  return proto === Object.prototype || proto === null;
}

/**
 * Converts template data to a runtime value, as reflect.ValueOf(data) would see it.
 * Throws TownError "invalid_argument" for values the model cannot represent.
 */
export function toValue(data: unknown): Value {
  return new Converter().dynamic(data, "", 0) ?? INVALID;
}
