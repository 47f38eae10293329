/**
 * The parts of Go's strconv, unicode and unicode/utf8 packages that
 * text/template and fmt rely on, reimplemented over JavaScript strings.
 *
 * Go strings are byte sequences; here they are JS strings that we treat as
 * UTF-8 when byte semantics matter (lengths, indexing, %x). Lone surrogates
 * count as U+FFFD, which is what encoding them as UTF-8 produces.
 */

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is content, not a byte order mark.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

export const MAX_RUNE = 0x10ffff;
const RUNE_ERROR = 0xfffd;

export function utf8Bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Decodes bytes; invalid sequences become U+FFFD (Go would keep the raw bytes). */
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** Code points of `s`, lone surrogates mapped to U+FFFD as UTF-8 encoding would. */
export function runes(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    const r = ch.codePointAt(0) ?? 0;
    out.push(r >= 0xd800 && r <= 0xdfff ? RUNE_ERROR : r);
  }
  return out;
}

export function runeCount(s: string): number {
  return s.length - (s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);
}

/** Go's utf8.ValidRune. */
function validRune(r: number): boolean {
  return (r >= 0 && r < 0xd800) || (r > 0xdfff && r <= MAX_RUNE);
}

export function runeToString(r: number): string {
  return String.fromCodePoint(validRune(r) ? r : RUNE_ERROR);
}

/** Compares strings by UTF-8 bytes, which is code point order (Go's `<` on strings). */
export function compareStrings(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = runeAt(a, i);
    const y = runeAt(b, j);
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  const restA = a.length - i;
  const restB = b.length - j;
  return restA === restB ? 0 : restA < restB ? -1 : 1;
}

function runeAt(s: string, i: number): number {
  const r = s.codePointAt(i) ?? 0;
  return r >= 0xd800 && r <= 0xdfff ? RUNE_ERROR : r;
}

const printableRe = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const letterRe = /^\p{L}$/u;
const digitRe = /^\p{Nd}$/u;

/** Go's unicode.IsPrint / strconv.IsPrint: graphic characters plus ASCII space. */
export function isPrint(r: number): boolean {
  if (r < 0x80) return r >= 0x20 && r < 0x7f;
  if (!validRune(r)) return false;
  return printableRe.test(String.fromCodePoint(r));
}

export function isLetter(r: number): boolean {
  if (r < 0x80) return (r >= 0x41 && r <= 0x5a) || (r >= 0x61 && r <= 0x7a);
  return validRune(r) && letterRe.test(String.fromCodePoint(r));
}

export function isDigit(r: number): boolean {
  if (r < 0x80) return r >= 0x30 && r <= 0x39;
  return validRune(r) && digitRe.test(String.fromCodePoint(r));
}

const lowerhex = "0123456789abcdef";

function hex(n: number, digits: number): string {
  return n.toString(16).padStart(digits, "0");
}

function escapeRune(r: number, quote: string, asciiOnly: boolean): string {
  if (r === quote.charCodeAt(0) || r === 0x5c) return "\\" + String.fromCharCode(r);
  if (asciiOnly) {
    if (r < 0x80 && isPrint(r)) return String.fromCharCode(r);
  } else if (isPrint(r)) {
    return String.fromCodePoint(r);
  }
  switch (r) {
    case 0x07:
      return "\\a";
    case 0x08:
      return "\\b";
    case 0x0c:
      return "\\f";
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x0b:
      return "\\v";
  }
  if (r < 0x20 || r === 0x7f) return "\\x" + hex(r, 2);
  const v = validRune(r) ? r : RUNE_ERROR;
  return v < 0x10000 ? "\\u" + hex(v, 4) : "\\U" + hex(v, 8);
}

/** strconv.Quote (or QuoteToASCII). */
export function quote(s: string, asciiOnly = false): string {
  // Printable ASCII other than " and \ passes through; the rest goes rune by rune.
  const escaped = s.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/gu, (ch) => {
    const r = ch.codePointAt(0) ?? 0;
    return escapeRune(validRune(r) ? r : RUNE_ERROR, '"', asciiOnly);
  });
  return '"' + escaped + '"';
}

/** strconv.QuoteRune (or QuoteRuneToASCII); invalid runes print as U+FFFD. */
export function quoteRune(r: number, asciiOnly = false): string {
  return "'" + escapeRune(validRune(r) ? r : RUNE_ERROR, "'", asciiOnly) + "'";
}

export function canBackquote(s: string): boolean {
  for (const r of runes(s)) {
    if (r === 0xfeff) return false;
    if (r >= 0x80) continue;
    if ((r < 0x20 && r !== 0x09) || r === 0x60 || r === 0x7f) return false;
  }
  return true;
}

function unhex(c: string | undefined): number {
  if (c === undefined) return -1;
  const i = "0123456789abcdef".indexOf(c.toLowerCase());
  return i;
}

/** One decoded unit of a quoted literal: a rune, or a raw byte from \x or octal escapes. */
interface Unquoted {
  value: number;
  /** True when `value` is a byte rather than a code point. */
  isByte: boolean;
  /** Length of the consumed source in UTF-16 units. */
  size: number;
}

/** strconv.UnquoteChar; null means Go's ErrSyntax. */
export function unquoteChar(s: string, at: number, quoteCh: string): Unquoted | null {
  const c = s[at];
  if (c === undefined) return null;
  if (c === quoteCh && (quoteCh === "'" || quoteCh === '"')) return null;
  if (c !== "\\") {
    const r = s.codePointAt(at) ?? 0;
    return { value: r, isByte: false, size: r > 0xffff ? 2 : 1 };
  }
  const e = s[at + 1];
  if (e === undefined) return null;
  const simple: Record<string, number> = {
    a: 7,
    b: 8,
    f: 12,
    n: 10,
    r: 13,
    t: 9,
    v: 11,
    "\\": 0x5c,
  };
  const known = simple[e];
  if (known !== undefined) return { value: known, isByte: false, size: 2 };
  if (e === "x" || e === "u" || e === "U") {
    const n = e === "x" ? 2 : e === "u" ? 4 : 8;
    let v = 0;
    for (let j = 0; j < n; j++) {
      const x = unhex(s[at + 2 + j]);
      if (x < 0) return null;
      v = v * 16 + x;
    }
    if (e === "x") return { value: v, isByte: true, size: 2 + n };
    if (!validRune(v)) return null;
    return { value: v, isByte: false, size: 2 + n };
  }
  if (e >= "0" && e <= "7") {
    let v = e.charCodeAt(0) - 0x30;
    for (let j = 0; j < 2; j++) {
      const d = s[at + 2 + j];
      if (d === undefined || d < "0" || d > "7") return null;
      v = v * 8 + (d.charCodeAt(0) - 0x30);
    }
    if (v > 255) return null;
    return { value: v, isByte: true, size: 4 };
  }
  if (e === "'" || e === '"') {
    if (e !== quoteCh) return null;
    return { value: e.charCodeAt(0), isByte: false, size: 2 };
  }
  return null;
}

/** strconv.Unquote for "…" and `…` literals; null means ErrSyntax. */
export function unquote(s: string): string | null {
  const q = s[0];
  if (s.length < 2 || s[s.length - 1] !== q) return null;
  const body = s.slice(1, -1);
  if (q === "`") {
    if (body.includes("`")) return null;
    return body.replaceAll("\r", "");
  }
  if (q !== '"') return null;
  const bytes: number[] = [];
  for (let i = 0; i < body.length;) {
    if (body[i] === "\n") return null;
    const u = unquoteChar(body, i, '"');
    if (u === null) return null;
    if (u.isByte || u.value < 0x80) bytes.push(u.value);
    else for (const b of utf8Bytes(String.fromCodePoint(u.value))) bytes.push(b);
    i += u.size;
  }
  return utf8Decode(Uint8Array.from(bytes));
}

// Numbers.

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

// Float formatting (strconv.FormatFloat with bitSize 64).

interface Decimal {
  /** Significant digits without leading or trailing zeros ("" for zero). */
  d: string;
  /** Position of the decimal point relative to the start of `d`. */
  dp: number;
}

interface FloatBits {
  neg: boolean;
  /** Biased exponent field. */
  exp: number;
  mant: bigint;
}

function floatBits(v: number): FloatBits {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const bits = view.getBigUint64(0);
  return {
    neg: bits >> 63n === 1n,
    exp: Number((bits >> 52n) & 0x7ffn),
    mant: bits & ((1n << 52n) - 1n),
  };
}

function trimZeros(d: string, dp: number): Decimal {
  const t = d.replace(/0+$/, "");
  return { d: t, dp: t === "" ? 0 : dp };
}

/** Exact decimal expansion of mant·2^exp. */
function exactDecimal(mant: bigint, exp: number): Decimal {
  if (mant === 0n) return { d: "", dp: 0 };
  if (exp >= 0) {
    const s = (mant << BigInt(exp)).toString();
    return trimZeros(s, s.length);
  }
  const s = (mant * 5n ** BigInt(-exp)).toString();
  return trimZeros(s, s.length + exp);
}

/** Rounds to nd digits, ties to even, like Go's decimal.Round on an exact value. */
function roundDecimal(x: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= x.d.length) return x;
  const next = x.d.charCodeAt(nd) - 0x30;
  let up: boolean;
  if (next === 5 && nd + 1 === x.d.length) {
    up = nd > 0 && (x.d.charCodeAt(nd - 1) - 0x30) % 2 === 1;
  } else {
    up = next >= 5;
  }
  if (!up) return trimZeros(x.d.slice(0, nd), x.dp);
  for (let i = nd - 1; i >= 0; i--) {
    const c = x.d.charCodeAt(i) - 0x30;
    if (c < 9) return trimZeros(x.d.slice(0, i) + String(c + 1), x.dp);
  }
  return { d: "1", dp: x.dp + 1 };
}

/** Shortest digits that round-trip; JS and Go agree on these. */
function shortestDecimal(v: number): Decimal {
  if (v === 0) return { d: "", dp: 0 };
  const [m = "", e = "0"] = Math.abs(v).toExponential().split("e");
  return trimZeros(m.replace(".", ""), Number(e) + 1);
}

function fmtE(neg: boolean, x: Decimal, prec: number, fmt: string): string {
  let out = neg ? "-" : "";
  out += x.d === "" ? "0" : x.d.charAt(0);
  if (prec > 0) {
    out += ".";
    const m = Math.min(x.d.length, prec + 1);
    out += x.d.slice(1, m);
    out += "0".repeat(Math.max(0, prec + 1 - Math.max(m, 1)));
  }
  let exp = x.d === "" ? 0 : x.dp - 1;
  out += fmt;
  if (exp < 0) {
    out += "-";
    exp = -exp;
  } else {
    out += "+";
  }
  return out + (exp < 10 ? "0" + String(exp) : String(exp));
}

function fmtF(neg: boolean, x: Decimal, prec: number): string {
  let out = neg ? "-" : "";
  if (x.dp > 0) {
    const m = Math.min(x.d.length, x.dp);
    out += x.d.slice(0, m) + "0".repeat(x.dp - m);
  } else {
    out += "0";
  }
  if (prec > 0) {
    out += ".";
    for (let i = 1; i <= prec; i++) {
      const j = x.dp + i - 1;
      out += j >= 0 && j < x.d.length ? x.d.charAt(j) : "0";
    }
  }
  return out;
}

function fmtB(neg: boolean, mant: bigint, exp: number): string {
  const e = exp - 52;
  return `${neg ? "-" : ""}${mant}p${e >= 0 ? "+" : ""}${e}`;
}

function fmtX(prec: number, fmt: "x" | "X", neg: boolean, mant0: bigint, exp0: number): string {
  let mant = mant0;
  let exp = mant === 0n ? 0 : exp0;
  const mask64 = (1n << 64n) - 1n;
  mant = (mant << 8n) & mask64;
  while (mant !== 0n && (mant & (1n << 60n)) === 0n) {
    mant = (mant << 1n) & mask64;
    exp--;
  }
  if (prec >= 0 && prec < 15) {
    const shift = BigInt(prec * 4);
    const extra = (mant << shift) & ((1n << 60n) - 1n);
    mant >>= 60n - shift;
    if ((extra | (mant & 1n)) > 1n << 59n) mant++;
    mant = (mant << (60n - shift)) & mask64;
    if ((mant & (1n << 61n)) !== 0n) {
      mant >>= 1n;
      exp++;
    }
  }
  const digits = fmt === "X" ? lowerhex.toUpperCase() : lowerhex;
  let out = `${neg ? "-" : ""}0${fmt}${String((mant >> 60n) & 1n)}`;
  mant = (mant << 4n) & mask64;
  const digit = (): string => digits[Number((mant >> 60n) & 15n)] ?? "0";
  if (prec < 0 && mant !== 0n) {
    out += ".";
    while (mant !== 0n) {
      out += digit();
      mant = (mant << 4n) & mask64;
    }
  } else if (prec > 0) {
    out += ".";
    for (let i = 0; i < prec; i++) {
      out += digit();
      mant = (mant << 4n) & mask64;
    }
  }
  out += fmt === "X" ? "P" : "p";
  out += exp < 0 ? "-" : "+";
  const a = Math.abs(exp);
  return out + (a < 10 ? "0" + String(a) : String(a));
}

export type FloatFormat = "b" | "e" | "E" | "f" | "g" | "G" | "x" | "X";

/** strconv.FormatFloat(v, fmt, prec, 64). */
export function formatFloat(v: number, fmt: FloatFormat, precIn: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  const bits = floatBits(v);
  let exp = bits.exp;
  let mant = bits.mant;
  if (exp === 0) exp++;
  else mant |= 1n << 52n;
  exp -= 1023;
  if (fmt === "b") return fmtB(bits.neg, mant, exp);
  if (fmt === "x" || fmt === "X") return fmtX(precIn, fmt, bits.neg, mant, exp);
  let prec = precIn;
  const shortest = prec < 0;
  let digs: Decimal;
  if (shortest) {
    digs = shortestDecimal(v);
    if (fmt === "e" || fmt === "E") prec = Math.max(digs.d.length - 1, 0);
    else if (fmt === "f") prec = Math.max(digs.d.length - digs.dp, 0);
    else prec = digs.d.length;
  } else {
    const exact = exactDecimal(mant, exp - 52);
    if (fmt === "e" || fmt === "E") digs = roundDecimal(exact, prec + 1);
    else if (fmt === "f") digs = roundDecimal(exact, exact.dp + prec);
    else {
      if (prec === 0) prec = 1;
      digs = roundDecimal(exact, prec);
    }
  }
  if (fmt === "e" || fmt === "E") return fmtE(bits.neg, digs, prec, fmt);
  if (fmt === "f") return fmtF(bits.neg, digs, prec);
  let eprec = prec;
  if (eprec > digs.d.length && digs.d.length >= digs.dp) eprec = digs.d.length;
  if (shortest) eprec = 6;
  const e = digs.dp - 1;
  if (e < -4 || e >= eprec) {
    if (prec > digs.d.length) prec = digs.d.length;
    return fmtE(bits.neg, digs, prec - 1, fmt === "g" ? "e" : "E");
  }
  if (prec > digs.dp) prec = digs.d.length;
  return fmtF(bits.neg, digs, Math.max(prec - digs.dp, 0));
}
