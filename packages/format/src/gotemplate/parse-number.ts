/**
 * Go's strconv number parsing (atoi.go, atof.go) for template literals:
 * ParseUint, ParseInt and ParseFloat with base prefixes and underscores, and
 * fmt's scanning of complex literals.
 */

import { quote } from "./quote.js";

/** Go's underscoreOK: underscores only between digits (or after a base prefix). */
function underscoreOK(text: string): boolean {
  let s = text;
  let saw = "^";
  let i = 0;
  if (s.startsWith("-") || s.startsWith("+")) s = s.slice(1);
  let isHex = false;
  if (s.length >= 2 && s[0] === "0" && "bBoOxX".includes(s[1] ?? "")) {
    i = 2;
    saw = "0";
    isHex = s[1] === "x" || s[1] === "X";
  }
  for (; i < s.length; i++) {
    const c = s[i] ?? "";
    if ((c >= "0" && c <= "9") || (isHex && /[a-fA-F]/.test(c))) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

const UINT64_MAX = (1n << 64n) - 1n;
export const INT64_MAX = (1n << 63n) - 1n;
export const INT64_MIN = -(1n << 63n);

/** strconv.ParseUint(s, 0, 64); null on syntax or range error. */
export function parseUint(s0: string): bigint | null {
  if (s0 === "") return null;
  let s = s0;
  let base = 10;
  if (s[0] === "0") {
    const p = (s[1] ?? "").toLowerCase();
    if (s.length >= 3 && (p === "b" || p === "o" || p === "x")) {
      base = p === "b" ? 2 : p === "o" ? 8 : 16;
      s = s.slice(2);
    } else {
      base = 8;
      s = s.slice(1);
    }
  }
  let n = 0n;
  let underscores = false;
  for (const c of s) {
    if (c === "_") {
      underscores = true;
      continue;
    }
    const d = "0123456789abcdefghijklmnopqrstuvwxyz".indexOf(c.toLowerCase());
    if (d < 0 || d >= base) return null;
    n = n * BigInt(base) + BigInt(d);
    if (n > UINT64_MAX) return null;
  }
  if (underscores && !underscoreOK(s0)) return null;
  return n;
}

/** strconv.ParseInt(s, 0, 64); null on syntax or range error. */
export function parseInt64(s: string): bigint | null {
  if (s === "") return null;
  const neg = s[0] === "-";
  const body = s[0] === "+" || s[0] === "-" ? s.slice(1) : s;
  const u = parseUint(body);
  if (u === null) return null;
  if (neg ? u > -INT64_MIN : u > INT64_MAX) return null;
  return neg ? -u : u;
}

/**
 * strconv.ParseFloat(s, 64) for decimal and hexadecimal literals (Go's readFloat
 * grammar). Returns null on syntax errors and on overflow (Go's ErrRange).
 */
export function parseFloat64(s: string): number | null {
  let i = 0;
  let neg = false;
  if (s[i] === "+") i++;
  else if (s[i] === "-") {
    neg = true;
    i++;
  }
  let isHex = false;
  if (i + 2 < s.length && s[i] === "0" && (s[i + 1] === "x" || s[i + 1] === "X")) {
    isHex = true;
    i += 2;
  }
  const mantStart = i;
  let sawDot = false;
  let sawDigits = false;
  let underscores = false;
  for (; i < s.length; i++) {
    const c = s[i] ?? "";
    if (c === "_") {
      underscores = true;
      continue;
    }
    if (c === ".") {
      if (sawDot) break;
      sawDot = true;
      continue;
    }
    if ((c >= "0" && c <= "9") || (isHex && /[a-fA-F]/.test(c))) {
      sawDigits = true;
      continue;
    }
    break;
  }
  if (!sawDigits) return null;
  const mantissa = s.slice(mantStart, i).replaceAll("_", "");
  let exp = 0;
  const expChar = isHex ? "p" : "e";
  if ((s[i] ?? "").toLowerCase() === expChar) {
    i++;
    let esign = 1;
    if (s[i] === "+") i++;
    else if (s[i] === "-") {
      esign = -1;
      i++;
    }
    const d = s[i];
    if (d === undefined || d < "0" || d > "9") return null;
    for (; i < s.length; i++) {
      const c = s[i] ?? "";
      if (c === "_") {
        underscores = true;
        continue;
      }
      if (c < "0" || c > "9") break;
      if (exp < 10000) exp = exp * 10 + (c.charCodeAt(0) - 0x30);
    }
    exp *= esign;
  } else if (isHex) {
    return null;
  }
  if (i !== s.length) return null;
  if (underscores && !underscoreOK(s)) return null;
  let value: number;
  if (isHex) {
    const dot = mantissa.indexOf(".");
    const digits = mantissa.replace(".", "");
    const fracDigits = dot < 0 ? 0 : mantissa.length - dot - 1;
    const m = digits === "" ? 0n : BigInt("0x" + digits);
    value = m === 0n ? 0 : scaleByPowerOfTwo(m, exp - 4 * fracDigits);
  } else {
    value = Number(`${mantissa}e${exp}`);
  }
  if (!Number.isFinite(value)) return null;
  return neg ? -value : value;
}

/** m·2^e rounded to a double. */
function scaleByPowerOfTwo(m: bigint, e: number): number {
  // Keep 64 significant bits so the final conversion rounds only once in the normal range.
  const bits = m.toString(2).length;
  let mant = m;
  let exp = e;
  if (bits > 64) {
    const drop = bits - 64;
    const sticky = mant & ((1n << BigInt(drop)) - 1n) ? 1n : 0n;
    mant = (mant >> BigInt(drop)) | sticky;
    exp += drop;
  }
  let v = Number(mant);
  while (exp > 0) {
    const step = Math.min(exp, 1000);
    v *= 2 ** step;
    exp -= step;
  }
  while (exp < 0) {
    const step = Math.min(-exp, 1000);
    v /= 2 ** step;
    exp += step;
  }
  return v;
}

/** Error text of Go's strconv.ParseFloat syntax errors. */
function parseFloatSyntaxError(s: string): string {
  return `strconv.ParseFloat: parsing ${quote(s)}: invalid syntax`;
}

/**
 * Parses a complex literal such as `1+2i` the way Go's fmt.Sscan does.
 * Returns the parts or an error message.
 */
export function parseComplex(text: string): { re: number; im: number } | string {
  let i = 0;
  const accept = (valid: string): boolean => {
    const c = text[i];
    if (c !== undefined && valid.includes(c)) {
      i++;
      return true;
    }
    return false;
  };
  const floatToken = (): string => {
    const start = i;
    if (accept("nN") && accept("aA") && accept("nN")) return text.slice(start, i);
    accept("+-");
    if (accept("iI") && accept("nN") && accept("fF")) return text.slice(start, i);
    let digits = "0123456789_";
    let exp = "eEpP";
    if (accept("0") && accept("xX")) {
      digits = "0123456789aAbBcCdDeEfF_";
      exp = "pP";
    }
    while (accept(digits));
    if (accept(".")) while (accept(digits));
    if (accept(exp)) {
      accept("+-");
      while (accept("0123456789_"));
    }
    return text.slice(start, i);
  };
  const complexError = "syntax error scanning complex number";
  const parens = accept("(");
  const real = floatToken();
  const signAt = i;
  if (!accept("+-")) return complexError;
  const imag = text.charAt(signAt) + floatToken();
  if (!accept("i")) return complexError;
  if (parens && !accept(")")) return complexError;
  const re = convertFloat(real);
  if (typeof re === "string") return re;
  const im = convertFloat(imag);
  if (typeof im === "string") return im;
  return { re, im };
}

/** fmt's convertFloat: decimal mantissas may carry a binary exponent (1.5p3). */
function convertFloat(str: string): number | string {
  const p = str.indexOf("p");
  if (p >= 0 && !/[xX]/.test(str)) {
    const f = parseFloat64(str.slice(0, p));
    if (f === null) return parseFloatSyntaxError(str);
    const m = parseInt64(str.slice(p + 1));
    if (m === null) return `strconv.Atoi: parsing ${quote(str)}: invalid syntax`;
    return f * 2 ** Number(m);
  }
  const f = parseFloat64(str);
  return f === null ? parseFloatSyntaxError(str) : f;
}
