/**
 * The subset of Go's fmt package that text/template needs: Sprint, Sprintf
 * and Sprintln over runtime values, with Go's verbs, flags, widths,
 * precisions, argument indexes and %!verb(type=value) error notation.
 * This file is print.go (the verb for each kind of value, Sprintf's format
 * parsing); fmt-format.ts is format.go (padding, numbers and strings).
 *
 * Not supported: %p (our values have no addresses; it prints as a bad verb),
 * Formatter/Stringer/error methods (the value model has no methods).
 */

import { ldigits, RawFormatter, udigits } from "./fmt-format.js";
import { quoteRune } from "./quote.js";
import { runeToString, MAX_RUNE } from "./utf8.js";
import {
  sliceElems,
  sortedKeys,
  typeOf,
  typeString,
  valueTypeString,
  type ConcreteValue,
  type Value,
} from "./value.js";

/** An argument of a Go `...any` parameter: a dynamic value, or null for nil. */
export type FmtArg = ConcreteValue | null;

const TWO64 = 1n << 64n;

/** fmt's tooLarge: widths and precisions are capped at a million. */
function tooLarge(x: number): boolean {
  return x > 1e6 || x < -1e6;
}

class Printer extends RawFormatter {
  private arg: FmtArg = null;
  private value: Value | null = null;
  private reordered = false;
  private goodArgNum = true;

  // Verb handlers (pp methods).

  private badVerb(verb: string): void {
    this.write("%!" + verb + "(");
    if (this.arg !== null) {
      this.write(typeString(typeOf(this.arg)) + "=");
      this.printArg(this.arg, "v");
    } else if (this.value !== null && this.value.k !== "invalid") {
      this.write(valueTypeString(this.value) + "=");
      this.printValue(this.value, "v", 0);
    } else {
      this.write("<nil>");
    }
    this.write(")");
  }

  private fmtBool(v: boolean, verb: string): void {
    if (verb === "t" || verb === "v") this.pad(v ? "true" : "false");
    else this.badVerb(verb);
  }

  /** pp.fmtInteger; `v` is the Go value (negative only when signed). */
  private fmtInteger(v: bigint, signed: boolean, verb: string): void {
    switch (verb) {
      case "v":
        if (this.sharpV && !signed) {
          const sharp = this.sharp;
          this.sharp = true;
          this.formatInteger(v, 16, verb, ldigits);
          this.sharp = sharp;
        } else {
          this.formatInteger(v, 10, verb, ldigits);
        }
        return;
      case "d":
        this.formatInteger(v, 10, verb, ldigits);
        return;
      case "b":
        this.formatInteger(v, 2, verb, ldigits);
        return;
      case "o":
      case "O":
        this.formatInteger(v, 8, verb, ldigits);
        return;
      case "x":
        this.formatInteger(v, 16, verb, ldigits);
        return;
      case "X":
        this.formatInteger(v, 16, verb, udigits);
        return;
      case "c":
        this.pad(runeToString(asRune(v)));
        return;
      case "q":
        this.pad(quoteRune(asRune(v), this.plus));
        return;
      case "U":
        this.fmtUnicode(v < 0n ? v + TWO64 : v);
        return;
      default:
        this.badVerb(verb);
        return;
    }
  }

  private fmtFloat(v: number, verb: string): void {
    switch (verb) {
      case "v":
        this.formatFloat(v, "g", -1);
        return;
      case "b":
      case "g":
      case "G":
      case "x":
      case "X":
        this.formatFloat(v, verb, -1);
        return;
      case "f":
      case "e":
      case "E":
        this.formatFloat(v, verb, 6);
        return;
      case "F":
        this.formatFloat(v, "f", 6);
        return;
      default:
        this.badVerb(verb);
        return;
    }
  }

  private fmtComplex(re: number, im: number, verb: string): void {
    if (!"vbgGxXfFeE".includes(verb)) {
      this.badVerb(verb);
      return;
    }
    const oldPlus = this.plus;
    this.write("(");
    this.fmtFloat(re, verb);
    this.plus = true;
    this.fmtFloat(im, verb);
    this.write("i)");
    this.plus = oldPlus;
  }

  private fmtString(v: string, verb: string): void {
    switch (verb) {
      case "v":
        if (this.sharpV) this.fmtQ(v);
        else this.pad(this.truncate(v));
        return;
      case "s":
        this.pad(this.truncate(v));
        return;
      case "x":
        this.fmtSx(v, ldigits);
        return;
      case "X":
        this.fmtSx(v, udigits);
        return;
      case "q":
        this.fmtQ(v);
        return;
      default:
        this.badVerb(verb);
        return;
    }
  }

  printArg(arg: FmtArg, verb: string): void {
    this.arg = arg;
    this.value = null;
    if (arg === null) {
      if (verb === "T" || verb === "v") this.pad("<nil>");
      else this.badVerb(verb);
      return;
    }
    if (verb === "T") {
      this.pad(this.truncate(typeString(typeOf(arg))));
      return;
    }
    // No value has an address (%p) or an error to wrap (%w).
    if (verb === "p" || verb === "w") {
      this.badVerb(verb);
      return;
    }
    this.printValue(arg, verb, 0);
  }

  printValue(value: Value, verb: string, depth: number): void {
    this.arg = null;
    this.value = value;
    switch (value.k) {
      case "invalid":
        if (depth === 0) this.write("<invalid reflect.Value>");
        else if (verb === "v") this.write("<nil>");
        else this.badVerb(verb);
        return;
      case "bool":
        this.fmtBool(value.v, verb);
        return;
      case "int":
        this.fmtInteger(value.v, true, verb);
        return;
      case "uint8":
        this.fmtInteger(BigInt(value.v), false, verb);
        return;
      case "float64":
        this.fmtFloat(value.v, verb);
        return;
      case "complex128":
        this.fmtComplex(value.re, value.im, verb);
        return;
      case "string":
        this.fmtString(value.v, verb);
        return;
      case "map": {
        if (this.sharpV) {
          this.write(typeString(value.t));
          if (value.v === null) {
            this.write("(nil)");
            return;
          }
          this.write("{");
        } else {
          this.write("map[");
        }
        const m = value.v ?? new Map<string, Value>();
        sortedKeys(m).forEach((key, i) => {
          if (i > 0) this.write(this.sharpV ? ", " : " ");
          this.printValue({ k: "string", v: key }, verb, depth + 1);
          this.write(":");
          this.printValue(m.get(key) ?? { k: "invalid" }, verb, depth + 1);
        });
        this.write(this.sharpV ? "}" : "]");
        return;
      }
      case "struct": {
        if (this.sharpV) this.write(value.t.name);
        this.write("{");
        value.t.fields.forEach((field, i) => {
          if (i > 0) this.write(this.sharpV ? ", " : " ");
          if (this.plusV || this.sharpV) this.write(field.name + ":");
          const f = value.v[i] ?? { k: "invalid" };
          this.printValue(f.k === "interface" && f.v !== null ? f.v : f, verb, depth + 1);
        });
        this.write("}");
        return;
      }
      case "interface":
        if (value.v === null) this.write(this.sharpV ? "interface {}(nil)" : "<nil>");
        else this.printValue(value.v, verb, depth + 1);
        return;
      case "slice": {
        const elems = value.v === null ? [] : sliceElems(value.v);
        if (this.sharpV) {
          this.write(typeString(value.t));
          if (value.v === null) {
            this.write("(nil)");
            return;
          }
          this.write("{");
        } else {
          this.write("[");
        }
        elems.forEach((e, i) => {
          if (i > 0) this.write(this.sharpV ? ", " : " ");
          this.printValue(e, verb, depth + 1);
        });
        this.write(this.sharpV ? "}" : "]");
        return;
      }
    }
  }

  // Sprintf.

  /** fmt's parsenum: [num, isnum, newi]. */
  private parseNum(s: string, start: number, end: number): [number, boolean, number] {
    if (start >= end) return [0, false, end];
    let num = 0;
    let isnum = false;
    let i = start;
    for (; i < end && isAsciiDigit(s.charCodeAt(i)); i++) {
      if (tooLarge(num)) return [0, false, end];
      num = num * 10 + (s.charCodeAt(i) - 0x30);
      isnum = true;
    }
    return [num, isnum, i];
  }

  /** fmt's intFromArg: [num, isInt, newArgNum]. */
  private intFromArg(a: readonly FmtArg[], argNum: number): [number, boolean, number] {
    if (argNum >= a.length) return [0, false, argNum];
    const arg = a[argNum] ?? null;
    let num = 0;
    let isInt = false;
    if (arg !== null && arg.k === "int") {
      num = Number(arg.v);
      isInt = true;
    } else if (arg !== null && arg.k === "uint8") {
      num = arg.v;
      isInt = true;
    }
    if (tooLarge(num)) {
      num = 0;
      isInt = false;
    }
    return [num, isInt, argNum + 1];
  }

  /** fmt's argNumber: [newArgNum, newi, found]. */
  private argNumber(
    argNum: number,
    format: string,
    i: number,
    numArgs: number,
  ): [number, number, boolean] {
    if (format.length <= i || format[i] !== "[") return [argNum, i, false];
    this.reordered = true;
    // parseArgNumber
    const rest = format.slice(i);
    let index = 0;
    let wid = 1;
    let ok = false;
    if (rest.length >= 3) {
      for (let j = 1; j < rest.length; j++) {
        if (rest[j] === "]") {
          const [width, isnum, newi] = this.parseNum(rest, 1, j);
          if (!isnum || newi !== j) {
            wid = j + 1;
          } else {
            index = width - 1;
            wid = j + 1;
            ok = true;
          }
          break;
        }
      }
    }
    if (ok && index >= 0 && index < numArgs) return [index, i + wid, true];
    this.goodArgNum = false;
    return [argNum, i + wid, ok];
  }

  doPrintf(format: string, a: readonly FmtArg[]): void {
    const end = format.length;
    let argNum = 0;
    let afterIndex = false;
    formatLoop: for (let i = 0; i < end;) {
      this.goodArgNum = true;
      const lasti = i;
      while (i < end && format[i] !== "%") i++;
      if (i > lasti) this.write(format.slice(lasti, i));
      if (i >= end) break;
      i++; // skip %
      this.clearFlags();
      simpleFormat: for (; i < end; i++) {
        const c = format[i] ?? "";
        switch (c) {
          case "#":
            this.sharp = true;
            break;
          case "0":
            this.zero = !this.minus;
            break;
          case "+":
            this.plus = true;
            break;
          case "-":
            this.minus = true;
            this.zero = false;
            break;
          case " ":
            this.space = true;
            break;
          default:
            // Fast path for a simple lower-case verb with no width or precision.
            if (c >= "a" && c <= "z" && argNum < a.length) {
              if (c === "v") {
                this.sharpV = this.sharp;
                this.sharp = false;
                this.plusV = this.plus;
                this.plus = false;
              }
              this.printArg(a[argNum] ?? null, c);
              argNum++;
              i++;
              continue formatLoop;
            }
            break simpleFormat;
        }
      }

      [argNum, i, afterIndex] = this.argNumber(argNum, format, i, a.length);

      if (i < end && format[i] === "*") {
        i++;
        [this.wid, this.widPresent, argNum] = this.intFromArg(a, argNum);
        if (!this.widPresent) this.write("%!(BADWIDTH)");
        if (this.wid < 0) {
          this.wid = -this.wid;
          this.minus = true;
          this.zero = false;
        }
        afterIndex = false;
      } else {
        [this.wid, this.widPresent, i] = this.parseNum(format, i, end);
        if (afterIndex && this.widPresent) this.goodArgNum = false;
      }

      if (i + 1 < end && format[i] === ".") {
        i++;
        if (afterIndex) this.goodArgNum = false;
        [argNum, i, afterIndex] = this.argNumber(argNum, format, i, a.length);
        if (i < end && format[i] === "*") {
          i++;
          [this.prec, this.precPresent, argNum] = this.intFromArg(a, argNum);
          if (this.prec < 0) {
            this.prec = 0;
            this.precPresent = false;
          }
          if (!this.precPresent) this.write("%!(BADPREC)");
          afterIndex = false;
        } else {
          [this.prec, this.precPresent, i] = this.parseNum(format, i, end);
          if (!this.precPresent) {
            this.prec = 0;
            this.precPresent = true;
          }
        }
      }

      if (!afterIndex) [argNum, i, afterIndex] = this.argNumber(argNum, format, i, a.length);

      if (i >= end) {
        this.write("%!(NOVERB)");
        break;
      }

      const verb = String.fromCodePoint(format.codePointAt(i) ?? 0);
      i += verb.length;

      if (verb === "%") {
        this.write("%");
      } else if (!this.goodArgNum) {
        this.write("%!" + verb + "(BADINDEX)");
      } else if (argNum >= a.length) {
        this.write("%!" + verb + "(MISSING)");
      } else {
        if (verb === "v") {
          this.sharpV = this.sharp;
          this.sharp = false;
          this.plusV = this.plus;
          this.plus = false;
        }
        this.printArg(a[argNum] ?? null, verb);
        argNum++;
      }
    }

    if (!this.reordered && argNum < a.length) {
      this.clearFlags();
      this.write("%!(EXTRA ");
      a.slice(argNum).forEach((arg, i) => {
        if (i > 0) this.write(", ");
        if (arg === null) {
          this.write("<nil>");
        } else {
          this.write(typeString(typeOf(arg)) + "=");
          this.printArg(arg, "v");
        }
      });
      this.write(")");
    }
  }

  doPrint(a: readonly FmtArg[]): void {
    let prevString = false;
    a.forEach((arg, argNum) => {
      const isString = arg !== null && arg.k === "string";
      if (argNum > 0 && !isString && !prevString) this.write(" ");
      this.printArg(arg, "v");
      prevString = isString;
    });
  }

  doPrintln(a: readonly FmtArg[]): void {
    a.forEach((arg, argNum) => {
      if (argNum > 0) this.write(" ");
      this.printArg(arg, "v");
    });
    this.write("\n");
  }
}

function isAsciiDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Go's rune(uint64(v)) as fmtC/fmtQc see it: out-of-range becomes U+FFFD. */
function asRune(v: bigint): number {
  const u = v < 0n ? v + TWO64 : v;
  return u > BigInt(MAX_RUNE) ? 0xfffd : Number(u);
}

const DEFAULT_LIMIT = 1 << 30;

export function sprint(args: readonly FmtArg[], limit = DEFAULT_LIMIT): string {
  const p = new Printer(limit);
  p.doPrint(args);
  return p.result();
}

export function sprintln(args: readonly FmtArg[], limit = DEFAULT_LIMIT): string {
  const p = new Printer(limit);
  p.doPrintln(args);
  return p.result();
}

export function sprintf(format: string, args: readonly FmtArg[], limit = DEFAULT_LIMIT): string {
  const p = new Printer(limit);
  p.doPrintf(format, args);
  return p.result();
}

/** Formats a reflect.Value the way fmt does when one is passed as an argument (%v, %s). */
export function formatValue(value: Value, verb: "v" | "s", limit = DEFAULT_LIMIT): string {
  const p = new Printer(limit);
  p.printValue(value, verb, 0);
  return p.result();
}
