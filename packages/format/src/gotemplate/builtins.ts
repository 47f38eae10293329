/**
 * The predefined template functions of text/template (funcs.go), over the
 * runtime value model. `and` and `or` short-circuit, so the executor
 * evaluates them itself; everything else is called with evaluated arguments.
 */

import { formatValue, sprint, sprintf, sprintln, type FmtArg } from "./fmt.js";
import { compareStrings, isPrint, utf8Bytes, utf8Decode, utf8Length } from "./utf8.js";
import {
  comparableType,
  INVALID,
  indirectInterface,
  sameType,
  typeOf,
  typeString,
  valueTypeString,
  zeroValue,
  type ConcreteValue,
  type Value,
} from "./value.js";

/**
 * How an argument is passed, which decides how it is evaluated and checked:
 * `value` is Go's reflect.Value (anything, even invalid), `any` is interface{}
 * (nil for invalid), `string` must be a string.
 */
export type ParamKind = "value" | "any" | "string";

export interface Signature {
  readonly fixed: readonly ParamKind[];
  readonly variadic: ParamKind | null;
}

const sig = (fixed: readonly ParamKind[], variadic: ParamKind | null = null): Signature => ({
  fixed,
  variadic,
});

export type BuiltinName =
  | "and"
  | "call"
  | "html"
  | "index"
  | "slice"
  | "js"
  | "len"
  | "not"
  | "or"
  | "print"
  | "printf"
  | "println"
  | "urlquery"
  | "eq"
  | "ge"
  | "gt"
  | "le"
  | "lt"
  | "ne";

/** Go 1.19's builtins() with their parameter lists. */
export const signatures: ReadonlyMap<BuiltinName, Signature> = new Map<BuiltinName, Signature>([
  ["and", sig(["value"], "value")],
  ["call", sig(["value"], "value")],
  ["html", sig([], "any")],
  ["index", sig(["value"], "value")],
  ["slice", sig(["value"], "value")],
  ["js", sig([], "any")],
  ["len", sig(["value"])],
  ["not", sig(["value"])],
  ["or", sig(["value"], "value")],
  ["print", sig([], "any")],
  ["printf", sig(["string"], "any")],
  ["println", sig([], "any")],
  ["urlquery", sig([], "any")],
  ["eq", sig(["value"], "value")],
  ["ge", sig(["value", "value"])],
  ["gt", sig(["value", "value"])],
  ["le", sig(["value", "value"])],
  ["lt", sig(["value", "value"])],
  ["ne", sig(["value", "value"])],
]);

export function isBuiltin(name: string): name is BuiltinName {
  return signatures.has(name as BuiltinName);
}

/** An error returned by a builtin; the executor reports "error calling NAME: message". */
export class BuiltinError extends Error {}

/** Go's isTrue; `ok` is always true in this model (no funcs or channels). */
export function truth(v: Value): boolean {
  const x = indirectInterface(v);
  switch (x.k) {
    case "invalid":
      return false;
    case "bool":
      return x.v;
    case "int":
      return x.v !== 0n;
    case "uint8":
    case "float64":
      return x.v !== 0;
    case "complex128":
      return x.re !== 0 || x.im !== 0;
    case "string":
      return x.v.length > 0;
    case "slice":
      return x.v !== null && x.v.len > 0;
    case "map":
      return x.v !== null && x.v.size > 0;
    case "interface":
      return x.v !== null;
    case "struct":
      return true;
  }
}

/** Follows interfaces to the concrete value; isNil when one is nil (Go's indirect). */
export function indirect(v: Value): { value: Value; isNil: boolean } {
  if (v.k === "interface" && v.v === null) return { value: v, isNil: true };
  return { value: indirectInterface(v), isNil: false };
}

/** An `any` argument as fmt sees it. */
export function toFmtArg(v: Value): FmtArg {
  const x = indirectInterface(v);
  return x.k === "invalid" || x.k === "interface" ? null : x;
}

function indexArg(index: Value, cap: number): number {
  let x: bigint;
  switch (index.k) {
    case "int":
      x = index.v;
      break;
    case "uint8":
      x = BigInt(index.v);
      break;
    case "invalid":
      throw new BuiltinError("cannot index slice/array with nil");
    default:
      throw new BuiltinError(`cannot index slice/array with type ${valueTypeString(index)}`);
  }
  if (x < 0n || x > BigInt(cap)) throw new BuiltinError(`index out of range: ${x}`);
  return Number(x);
}

function index(item0: Value, indexes: readonly Value[]): Value {
  let item = indirectInterface(item0);
  if (item.k === "invalid") throw new BuiltinError("index of untyped nil");
  for (const ix of indexes) {
    const index = indirectInterface(ix);
    const r = indirect(item);
    if (r.isNil) throw new BuiltinError("index of nil pointer");
    item = r.value;
    switch (item.k) {
      case "slice": {
        const len = item.v?.len ?? 0;
        const x = indexArg(index, len);
        // reflect panics on x == len; safeCall turns the panic into this error.
        if (x >= len || item.v === null)
          throw new BuiltinError("reflect: slice index out of range");
        item = item.v.arr[item.v.off + x] ?? INVALID;
        break;
      }
      case "string": {
        const bytes = utf8Bytes(item.v);
        const x = indexArg(index, bytes.length);
        if (x >= bytes.length) throw new BuiltinError("reflect: string index out of range");
        item = { k: "uint8", v: bytes[x] ?? 0 };
        break;
      }
      case "map": {
        const key = prepareKey(index);
        item = item.v?.get(key) ?? zeroValue(item.t.elem);
        break;
      }
      default:
        throw new BuiltinError(`can't index item of type ${typeName(item)}`);
    }
  }
  return item;
}

function typeName(v: Value): string {
  return v.k === "invalid" ? "<nil>" : valueTypeString(v);
}

/** Go's prepareArg for a map[string]T key. */
function prepareKey(index: Value): string {
  if (index.k === "invalid") throw new BuiltinError("value is nil; should be of type string");
  if (index.k === "string") return index.v;
  throw new BuiltinError(`value has type ${valueTypeString(index)}; should be string`);
}

function slice(item0: Value, indexes: readonly Value[]): Value {
  const item = indirectInterface(item0);
  if (item.k === "invalid") throw new BuiltinError("slice of untyped nil");
  if (indexes.length > 3) throw new BuiltinError(`too many slice indexes: ${indexes.length}`);
  if (item.k === "string") {
    if (indexes.length === 3) throw new BuiltinError("cannot 3-index slice a string");
    const bytes = utf8Bytes(item.v);
    const [i, j] = sliceBounds(indexes, bytes.length, bytes.length);
    return { k: "string", v: utf8Decode(bytes.subarray(i, j)) };
  }
  if (item.k !== "slice") {
    throw new BuiltinError(`can't slice item of type ${valueTypeString(item)}`);
  }
  const data = item.v;
  const [i, j, k] = sliceBounds(indexes, data?.len ?? 0, data?.cap ?? 0);
  if (data === null) return item; // Only [0:0] (or [0:0:0]) of a nil slice gets here.
  const cap = indexes.length === 3 ? k - i : data.cap - i;
  return { k: "slice", t: item.t, v: { arr: data.arr, off: data.off + i, len: j - i, cap } };
}

/** Checks slice indexes in Go's order; missing ones default to 0 and len. */
function sliceBounds(
  indexes: readonly Value[],
  len: number,
  cap: number,
): [number, number, number] {
  const idx = [0, len, 0];
  indexes.forEach((ix, n) => {
    idx[n] = indexArg(ix, cap);
  });
  const [i = 0, j = 0, k = 0] = idx;
  if (i > j) throw new BuiltinError(`invalid slice index: ${i} > ${j}`);
  if (indexes.length === 3 && j > k) throw new BuiltinError(`invalid slice index: ${j} > ${k}`);
  return [i, j, k];
}

function length(item0: Value): Value {
  const { value: item, isNil } = indirect(item0);
  if (isNil) throw new BuiltinError("len of nil pointer");
  switch (item.k) {
    case "invalid":
      // reflect panics calling Type() on the zero Value; safeCall reports the panic.
      throw new BuiltinError("reflect: call of reflect.Value.Type on zero Value");
    case "string":
      return { k: "int", v: BigInt(utf8Length(item.v)) };
    case "slice":
      return { k: "int", v: BigInt(item.v?.len ?? 0) };
    case "map":
      return { k: "int", v: BigInt(item.v?.size ?? 0) };
    default:
      throw new BuiltinError(`len of type ${valueTypeString(item)}`);
  }
}

function call(fn0: Value): Value {
  const fn = indirectInterface(fn0);
  if (fn.k === "invalid") throw new BuiltinError("call of nil");
  // The value model has no functions.
  throw new BuiltinError(`non-function of type ${valueTypeString(fn)}`);
}

// Comparison.

type BasicKind = "bool" | "complex" | "int" | "float" | "string" | "uint" | "invalid";

function basicKind(v: Value): BasicKind {
  switch (v.k) {
    case "bool":
      return "bool";
    case "int":
      return "int";
    case "uint8":
      return "uint";
    case "float64":
      return "float";
    case "complex128":
      return "complex";
    case "string":
      return "string";
    default:
      return "invalid";
  }
}

const errBadComparisonType = "invalid type for comparison";
const errBadComparison = "incompatible types for comparison";
const errNoComparison = "missing argument for comparison";

function isNilValue(v: Value): boolean {
  switch (v.k) {
    case "invalid":
      return true;
    case "interface":
    case "slice":
    case "map":
      return v.v === null;
    default:
      return false;
  }
}

/** reflect.Kind equality as eq's canCompare sees it. */
function canCompare(a: Value, b: Value): boolean {
  return a.k === b.k || a.k === "invalid" || b.k === "invalid";
}

/** Go's == on two interface values holding a and b (panics on uncomparable types). */
function goEqual(a: ConcreteValue, b: ConcreteValue): boolean {
  const ta = typeOf(a);
  if (!sameType(ta, typeOf(b))) return false;
  if (!comparableType(ta)) {
    throw new BuiltinError(`runtime error: comparing uncomparable type ${typeString(ta)}`);
  }
  switch (a.k) {
    case "complex128":
      return b.k === "complex128" && a.re === b.re && a.im === b.im;
    case "struct":
      return b.k === "struct" && a.v.every((f, i) => fieldEqual(f, b.v[i] ?? INVALID));
    case "slice":
    case "map":
      return false; // Not comparable; rejected above.
    default:
      return b.k === a.k && (b as { v: unknown }).v === a.v;
  }
}

/** Compares struct fields; interface fields compare their dynamic values. */
function fieldEqual(f: Value, g: Value): boolean {
  const x = indirectInterface(f);
  const y = indirectInterface(g);
  if (!concrete(x) || !concrete(y)) return x.k === y.k;
  return goEqual(x, y);
}

function intOf(v: Value): bigint {
  return v.k === "int" ? v.v : v.k === "uint8" ? BigInt(v.v) : 0n;
}

function eq(arg1In: Value, args: readonly Value[]): boolean {
  const arg1 = indirectInterface(arg1In);
  if (args.length === 0) throw new BuiltinError(errNoComparison);
  const k1 = basicKind(arg1);
  for (const argIn of args) {
    const arg = indirectInterface(argIn);
    const k2 = basicKind(arg);
    let result = false;
    if (k1 !== k2) {
      if ((k1 === "int" && k2 === "uint") || (k1 === "uint" && k2 === "int")) {
        result = intOf(arg1) === intOf(arg);
      } else if (arg1.k !== "invalid" && arg.k !== "invalid") {
        throw new BuiltinError(errBadComparison);
      }
    } else if (k1 !== "invalid") {
      result = basicEqual(arg1, arg);
    } else {
      if (!canCompare(arg1, arg)) {
        throw new BuiltinError(
          `non-comparable types ${formatValue(arg1, "s")}: ${typeName(arg1)}, ${typeName(arg)}: ${formatValue(arg, "v")}`,
        );
      }
      if (isNilValue(arg1) || isNilValue(arg)) {
        result = isNilValue(arg) === isNilValue(arg1);
      } else if (concrete(arg1) && concrete(arg)) {
        if (!comparableType(typeOf(arg))) {
          throw new BuiltinError(`non-comparable type ${formatValue(arg, "s")}: ${typeName(arg)}`);
        }
        result = goEqual(arg1, arg);
      }
    }
    if (result) return true;
  }
  return false;
}

function concrete(v: Value): v is ConcreteValue {
  return v.k !== "invalid" && v.k !== "interface";
}

function basicEqual(a: Value, b: Value): boolean {
  switch (a.k) {
    case "bool":
    case "float64":
    case "string":
      return b.k === a.k && b.v === a.v;
    case "int":
    case "uint8":
      return intOf(a) === intOf(b);
    case "complex128":
      return b.k === "complex128" && a.re === b.re && a.im === b.im;
    default:
      return false;
  }
}

function lt(arg1In: Value, arg2In: Value): boolean {
  const arg1 = indirectInterface(arg1In);
  const k1 = basicKind(arg1);
  if (k1 === "invalid") throw new BuiltinError(errBadComparisonType);
  const arg2 = indirectInterface(arg2In);
  const k2 = basicKind(arg2);
  if (k2 === "invalid") throw new BuiltinError(errBadComparisonType);
  if (k1 !== k2) {
    if ((k1 === "int" && k2 === "uint") || (k1 === "uint" && k2 === "int")) {
      return intOf(arg1) < intOf(arg2);
    }
    throw new BuiltinError(errBadComparison);
  }
  if (arg1.k === "float64" && arg2.k === "float64") return arg1.v < arg2.v;
  if (arg1.k === "string" && arg2.k === "string") return compareStrings(arg1.v, arg2.v) < 0;
  if ((arg1.k === "int" || arg1.k === "uint8") && (arg2.k === "int" || arg2.k === "uint8")) {
    return intOf(arg1) < intOf(arg2);
  }
  throw new BuiltinError(errBadComparisonType); // bool and complex
}

function le(a: Value, b: Value): boolean {
  return lt(a, b) || eq(a, [b]);
}

// Escapers.

function htmlEscape(s: string): string {
  return s.replace(/["'&<>\0]/g, (c) => {
    switch (c) {
      case '"':
        return "&#34;";
      case "'":
        return "&#39;";
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      default:
        return "\uFFFD";
    }
  });
}

const jsEscapes: Readonly<Record<string, string>> = {
  "\\": "\\\\",
  "'": "\\'",
  '"': '\\"',
  "<": "\\u003C",
  ">": "\\u003E",
  "&": "\\u0026",
  "=": "\\u003D",
};

function jsEscape(s: string): string {
  return s.replace(/[\\'"<>&=\p{Cc}\u{80}-\u{10ffff}]/gu, (ch) => {
    const known = jsEscapes[ch];
    if (known !== undefined) return known;
    const r = ch.codePointAt(0) ?? 0;
    if (r === 0x7f) return ch; // DEL is ASCII, which Go leaves alone.
    if (r < 0x20) return "\\u00" + r.toString(16).toUpperCase().padStart(2, "0");
    if (isPrint(r)) return ch;
    return "\\u" + r.toString(16).toUpperCase().padStart(4, "0");
  });
}

/** url.QueryEscape. */
function queryEscape(s: string): string {
  return s.replace(/[^A-Za-z0-9\-_.~]/gu, (c) => {
    if (c === " ") return "+";
    return Array.from(
      utf8Bytes(c),
      (b) => "%" + b.toString(16).toUpperCase().padStart(2, "0"),
    ).join("");
  });
}

/** funcs.go evalArgs: one string is used as is; otherwise fmt.Sprint of printable values. */
function evalArgs(args: readonly Value[], limit: number): string {
  const [first] = args;
  if (args.length === 1 && first !== undefined && first.k === "string") return first.v;
  const printable = args.map((a): FmtArg => {
    const x = toFmtArg(a);
    return x === null ? { k: "string", v: "<no value>" } : x;
  });
  return sprint(printable, limit);
}

function stringResult(s: string): Value {
  return { k: "string", v: s };
}

/**
 * Calls builtin `name` (not and/or) with arguments already evaluated and checked
 * against its signature. `limit` caps the length of text it may produce.
 */
export function callBuiltin(
  name: Exclude<BuiltinName, "and" | "or">,
  args: readonly Value[],
  limit: number,
): Value {
  const [a = INVALID, b = INVALID] = args;
  const rest = args.slice(1);
  switch (name) {
    case "call":
      return call(a);
    case "html":
      return stringResult(htmlEscape(evalArgs(args, limit)));
    case "js":
      return stringResult(jsEscape(evalArgs(args, limit)));
    case "urlquery":
      return stringResult(queryEscape(evalArgs(args, limit)));
    case "index":
      return index(a, rest);
    case "slice":
      return slice(a, rest);
    case "len":
      return length(a);
    case "not":
      return { k: "bool", v: !truth(a) };
    case "print":
      return stringResult(sprint(args.map(toFmtArg), limit));
    case "println":
      return stringResult(sprintln(args.map(toFmtArg), limit));
    case "printf":
      return stringResult(sprintf(a.k === "string" ? a.v : "", rest.map(toFmtArg), limit));
    case "eq":
      return { k: "bool", v: eq(a, rest) };
    case "ne":
      return { k: "bool", v: !eq(a, [b]) };
    case "lt":
      return { k: "bool", v: lt(a, b) };
    case "le":
      return { k: "bool", v: le(a, b) };
    case "gt":
      return { k: "bool", v: !le(a, b) };
    case "ge":
      return { k: "bool", v: !lt(a, b) };
  }
}
