/**
 * The subset of Go's fmt package that text/template needs: Sprint, Sprintf
 * and Sprintln over runtime values, with Go's verbs, flags, widths,
 * precisions, argument indexes and %!verb(type=value) error notation.
 *
 * Not supported: %p (our values have no addresses; it prints as a bad verb),
 * Formatter/Stringer/error methods (the value model has no methods).
 */

import {
  canBackquote,
  formatFloat,
  isPrint,
  MAX_RUNE,
  quote,
  quoteRune,
  runeCount,
  runeToString,
  utf8Bytes,
  type FloatFormat,
} from "./strconv.js";
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

/** Thrown when formatting would produce more text than allowed. */
export class FormatLimitError extends Error {
  constructor(readonly limit: number) {
    super(`formatted text exceeds ${limit} characters`);
  }
}

const ldigits = "0123456789abcdefx";
const udigits = "0123456789ABCDEFX";
const TWO64 = 1n << 64n;

/** fmt's tooLarge: widths and precisions are capped at a million. */
function tooLarge(x: number): boolean {
  return x > 1e6 || x < -1e6;
}

class Printer {
  /** Output pieces, joined at the end: joining yields a flat string, not a rope. */
  private readonly parts: string[] = [];
  private length = 0;
  private arg: FmtArg = null;
  private value: Value | null = null;
  private reordered = false;
  private goodArgNum = true;

  // The fmt struct's flags.
  private wid = 0;
  private prec = 0;
  private widPresent = false;
  private precPresent = false;
  private minus = false;
  private plus = false;
  private sharp = false;
  private space = false;
  private zero = false;
  private plusV = false;
  private sharpV = false;

  constructor(private readonly limit: number) {}

  result(): string {
    return this.parts.join("");
  }

  private write(s: string): void {
    this.length += s.length;
    if (this.length > this.limit) throw new FormatLimitError(this.limit);
    this.parts.push(s);
  }

  private clearFlags(): void {
    this.wid = 0;
    this.prec = 0;
    this.widPresent = false;
    this.precPresent = false;
    this.minus = false;
    this.plus = false;
    this.sharp = false;
    this.space = false;
    this.zero = false;
    this.plusV = false;
    this.sharpV = false;
  }

  private writePadding(n: number): void {
    if (n <= 0) return;
    if (this.length + n > this.limit) throw new FormatLimitError(this.limit);
    this.write((this.zero ? "0" : " ").repeat(n));
  }

  /** Pads to the width, counted in runes. */
  private pad(s: string): void {
    if (!this.widPresent || this.wid === 0) {
      this.write(s);
      return;
    }
    const width = this.wid - runeCount(s);
    if (!this.minus) {
      this.writePadding(width);
      this.write(s);
    } else {
      this.write(s);
      this.writePadding(width);
    }
  }

  private truncate(s: string): string {
    if (!this.precPresent) return s;
    let n = this.prec;
    let i = 0;
    for (const ch of s) {
      n--;
      if (n < 0) return s.slice(0, i);
      i += ch.length;
    }
    return s;
  }

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

  /** fmt.fmtInteger. */
  private formatInteger(v: bigint, base: number, verb: string, digits: string): void {
    const negative = v < 0n;
    const u = negative ? -v : v;
    let prec = 0;
    if (this.precPresent) {
      prec = this.prec;
      if (prec === 0 && u === 0n) {
        const oldZero = this.zero;
        this.zero = false;
        this.writePadding(this.wid);
        this.zero = oldZero;
        return;
      }
    } else if (this.zero && this.widPresent) {
      prec = this.wid;
      if (negative || this.plus || this.space) prec--;
    }
    let s = u.toString(base);
    if (digits === udigits) s = s.toUpperCase();
    if (s.length < prec) s = "0".repeat(prec - s.length) + s;
    if (this.sharp) {
      if (base === 2) s = "0b" + s;
      else if (base === 8 && s[0] !== "0") s = "0" + s;
      else if (base === 16) s = "0" + digits.charAt(16) + s;
    }
    if (verb === "O") s = "0o" + s;
    if (negative) s = "-" + s;
    else if (this.plus) s = "+" + s;
    else if (this.space) s = " " + s;
    const oldZero = this.zero;
    this.zero = false;
    this.pad(s);
    this.zero = oldZero;
  }

  private fmtUnicode(u: bigint): void {
    let prec = 4;
    if (this.precPresent && this.prec > 4) prec = this.prec;
    let s = "U+" + u.toString(16).toUpperCase().padStart(prec, "0");
    if (this.sharp && u <= BigInt(MAX_RUNE) && isPrint(Number(u))) {
      s += " '" + String.fromCodePoint(Number(u)) + "'";
    }
    const oldZero = this.zero;
    this.zero = false;
    this.pad(s);
    this.zero = oldZero;
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

  /** fmt.fmtFloat. */
  private formatFloat(v: number, verb: FloatFormat, precIn: number): void {
    const prec = this.precPresent ? this.prec : precIn;
    let num = formatFloat(v, verb, prec);
    if (num[0] !== "-" && num[0] !== "+") num = "+" + num;
    if (this.space && num[0] === "+" && !this.plus) num = " " + num.slice(1);
    if (num[1] === "I" || num[1] === "N") {
      const oldZero = this.zero;
      this.zero = false;
      if (num[1] === "N" && !this.space && !this.plus) num = num.slice(1);
      this.pad(num);
      this.zero = oldZero;
      return;
    }
    if (this.sharp && verb !== "b") {
      let digits = 0;
      if (verb === "g" || verb === "G" || verb === "x") digits = prec === -1 ? 6 : prec;
      let tail = "";
      let hasDecimalPoint = false;
      let sawNonzeroDigit = false;
      for (let i = 1; i < num.length; i++) {
        const c = num[i];
        if (c === ".") {
          hasDecimalPoint = true;
        } else if (
          c === "p" ||
          c === "P" ||
          ((c === "e" || c === "E") && verb !== "x" && verb !== "X")
        ) {
          tail = num.slice(i);
          num = num.slice(0, i);
        } else {
          if (c !== "0") sawNonzeroDigit = true;
          if (sawNonzeroDigit) digits--;
        }
      }
      if (!hasDecimalPoint) {
        if (num.length === 2 && num[1] === "0") digits--;
        num += ".";
      }
      if (digits > 0) num += "0".repeat(digits);
      num += tail;
    }
    if (this.plus || num[0] !== "+") {
      if (this.zero && this.widPresent && this.wid > num.length) {
        this.write(num[0] ?? "");
        this.writePadding(this.wid - num.length);
        this.write(num.slice(1));
        return;
      }
      this.pad(num);
      return;
    }
    this.pad(num.slice(1));
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

  private fmtSx(s: string, digits: string): void {
    const bytes = utf8Bytes(s);
    let length = bytes.length;
    if (this.precPresent && this.prec < length) length = this.prec;
    let width = 2 * length;
    if (width > 0) {
      if (this.space) {
        if (this.sharp) width *= 2;
        width += length - 1;
      } else if (this.sharp) {
        width += 2;
      }
    } else {
      if (this.widPresent) this.writePadding(this.wid);
      return;
    }
    if (this.widPresent && this.wid > width && !this.minus) this.writePadding(this.wid - width);
    let hex = Buffer.from(bytes.buffer, bytes.byteOffset, length).toString("hex");
    if (digits === udigits) hex = hex.toUpperCase();
    const prefix = this.sharp ? "0" + digits.charAt(16) : "";
    // With the space flag every byte is separate (and prefixed with #).
    this.write(
      this.space ? (hex.match(/../g) ?? []).map((b) => prefix + b).join(" ") : prefix + hex,
    );
    if (this.widPresent && this.wid > width && this.minus) this.writePadding(this.wid - width);
  }

  private fmtQ(s0: string): void {
    const s = this.truncate(s0);
    if (this.sharp && canBackquote(s)) this.pad("`" + s + "`");
    else this.pad(quote(s, this.plus));
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
