/**
 * Go's strconv quoting (quote.go): Quote, QuoteRune, CanBackquote,
 * UnquoteChar and Unquote over JavaScript strings (see utf8.ts).
 */

import { isPrint, RUNE_ERROR, runes, utf8Bytes, utf8Decode, validRune } from "./utf8.js";

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
