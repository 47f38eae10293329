/**
 * Go's fmt/format.go: the raw formatter under Sprintf. It holds the flags,
 * width and precision of one verb and writes padded integers, floats and
 * strings into a bounded buffer; fmt.ts (print.go) picks what to write per
 * verb and argument.
 */

import { formatFloat, type FloatFormat } from "./format-float.js";
import { canBackquote, quote } from "./quote.js";
import { isPrint, MAX_RUNE, runeCount, utf8Bytes } from "./utf8.js";

/** Thrown when formatting would produce more text than allowed. */
export class FormatLimitError extends Error {
  constructor(readonly limit: number) {
    super(`formatted text exceeds ${limit} characters`);
  }
}

export const ldigits = "0123456789abcdefx";
export const udigits = "0123456789ABCDEFX";

/** Go's fmt struct: a bounded output buffer and the flags of the verb being formatted. */
export class RawFormatter {
  /** Output pieces, joined at the end: joining yields a flat string, not a rope. */
  private readonly parts: string[] = [];
  private length = 0;

  // The fmt struct's flags.
  protected wid = 0;
  protected prec = 0;
  protected widPresent = false;
  protected precPresent = false;
  protected minus = false;
  protected plus = false;
  protected sharp = false;
  protected space = false;
  protected zero = false;
  protected plusV = false;
  protected sharpV = false;

  constructor(private readonly limit: number) {}

  result(): string {
    return this.parts.join("");
  }

  protected write(s: string): void {
    this.length += s.length;
    if (this.length > this.limit) throw new FormatLimitError(this.limit);
    this.parts.push(s);
  }

  protected clearFlags(): void {
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

  protected writePadding(n: number): void {
    if (n <= 0) return;
    if (this.length + n > this.limit) throw new FormatLimitError(this.limit);
    this.write((this.zero ? "0" : " ").repeat(n));
  }

  /** Pads to the width, counted in runes. */
  protected pad(s: string): void {
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

  protected truncate(s: string): string {
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

  /** fmt.fmtInteger. */
  protected formatInteger(v: bigint, base: number, verb: string, digits: string): void {
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

  protected fmtUnicode(u: bigint): void {
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

  /** fmt.fmtFloat. */
  protected formatFloat(v: number, verb: FloatFormat, precIn: number): void {
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

  protected fmtSx(s: string, digits: string): void {
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

  protected fmtQ(s0: string): void {
    const s = this.truncate(s0);
    if (this.sharp && canBackquote(s)) this.pad("`" + s + "`");
    else this.pad(quote(s, this.plus));
  }
}
