/**
 * The parts of Go's unicode and unicode/utf8 packages that text/template and
 * fmt rely on, reimplemented over JavaScript strings.
 *
 * Go strings are byte sequences; here they are JS strings that we treat as
 * UTF-8 when byte semantics matter (lengths, indexing, %x). Lone surrogates
 * count as U+FFFD, which is what encoding them as UTF-8 produces.
 */

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is content, not a byte order mark.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

export const MAX_RUNE = 0x10ffff;
export const RUNE_ERROR = 0xfffd;

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
export function validRune(r: number): boolean {
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
