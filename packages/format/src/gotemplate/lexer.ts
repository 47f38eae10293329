/**
 * The template lexer, a port of text/template/parse/lex.go. Go runs it as a
 * goroutine feeding a channel; here the parser pulls items on demand, which
 * keeps Go's error ordering (a lexical error surfaces only when the parser
 * reaches it). Positions are UTF-16 offsets into the source.
 */

import { quote } from "./quote.js";
import { isDigit, isLetter, isPrint, runeCount, runes } from "./utf8.js";

export type ItemType =
  | "error"
  | "bool"
  | "char"
  | "charConstant"
  | "complex"
  | "assign"
  | "declare"
  | "EOF"
  | "field"
  | "identifier"
  | "leftDelim"
  | "leftParen"
  | "number"
  | "pipe"
  | "rawString"
  | "rightDelim"
  | "rightParen"
  | "space"
  | "string"
  | "text"
  | "variable"
  // Keywords.
  | "block"
  | "break"
  | "continue"
  | "dot"
  | "define"
  | "else"
  | "end"
  | "if"
  | "nil"
  | "range"
  | "template"
  | "with";

export interface Item {
  readonly typ: ItemType;
  readonly pos: number;
  readonly val: string;
  readonly line: number;
}

const keywords: ReadonlyMap<string, ItemType> = new Map<string, ItemType>([
  [".", "dot"],
  ["block", "block"],
  ["break", "break"],
  ["continue", "continue"],
  ["define", "define"],
  ["else", "else"],
  ["end", "end"],
  ["if", "if"],
  ["range", "range"],
  ["nil", "nil"],
  ["template", "template"],
  ["with", "with"],
]);

function isKeyword(t: ItemType): boolean {
  return [...keywords.values()].includes(t);
}

/** item.String() as Go prints tokens in "unexpected …" errors. */
export function itemString(i: Item): string {
  if (i.typ === "EOF") return "EOF";
  if (i.typ === "error") return i.val;
  if (isKeyword(i.typ)) return `<${i.val}>`;
  if (runeCount(i.val) > 10)
    return quote(String.fromCodePoint(...runes(i.val).slice(0, 10))) + "...";
  return quote(i.val);
}

const LEFT_DELIM = "{{";
const RIGHT_DELIM = "}}";
const LEFT_COMMENT = "/*";
const RIGHT_COMMENT = "*/";
const EOF = -1;
/** A trim marker plus the space before or after it. */
const TRIM_MARKER_LEN = 2;

function isSpace(r: number): boolean {
  return r === 0x20 || r === 0x09 || r === 0x0d || r === 0x0a;
}

function isAlphaNumeric(r: number): boolean {
  return r === 0x5f || isLetter(r) || isDigit(r);
}

function hasLeftTrimMarker(s: string, at: number): boolean {
  return s[at] === "-" && isSpace(s.charCodeAt(at + 1));
}

function hasRightTrimMarker(s: string, at: number): boolean {
  return isSpace(s.charCodeAt(at)) && s[at + 1] === "-";
}

/** Go's %#U: "U+0041 'A'". */
function formatRuneU(r: number): string {
  const hex = "U+" + r.toString(16).toUpperCase().padStart(4, "0");
  return isPrint(r) ? `${hex} '${String.fromCodePoint(r)}'` : hex;
}

type StateFn = (l: Lexer) => StateFn | null;

export class Lexer {
  // Scanner state, shared with the state functions below.
  pos = 0;
  start = 0;
  parenDepth = 0;
  line = 1;
  private atEOF = false;
  private startLine = 1;
  private readonly items: Item[] = [];
  private state: StateFn | null = lexText;
  /** Width of the last rune read, for backup(). */
  private lastWidth = 0;

  constructor(readonly input: string) {}

  /** Returns the next item; after EOF or an error it keeps returning EOF. */
  nextItem(): Item {
    while (this.items.length === 0) {
      if (this.state === null) return { typ: "EOF", pos: this.pos, val: "", line: this.line };
      this.state = this.state(this);
    }
    const item = this.items.shift();
    if (item === undefined) throw new Error("unreachable: empty item queue");
    return item;
  }

  next(): number {
    if (this.pos >= this.input.length) {
      this.atEOF = true;
      this.lastWidth = 0;
      return EOF;
    }
    const r = this.input.codePointAt(this.pos) ?? 0;
    this.lastWidth = r > 0xffff ? 2 : 1;
    this.pos += this.lastWidth;
    if (r === 0x0a) this.line++;
    return r;
  }

  peek(): number {
    const r = this.next();
    this.backup();
    return r;
  }

  /** Steps back over the last rune read (only one rune of backup, as in Go's usage). */
  backup(): void {
    if (!this.atEOF && this.pos > 0) {
      this.pos -= this.lastWidth;
      if (this.input.charCodeAt(this.pos) === 0x0a) this.line--;
    }
  }

  emit(typ: ItemType): void {
    this.items.push({
      typ,
      pos: this.start,
      val: this.input.slice(this.start, this.pos),
      line: this.startLine,
    });
    this.start = this.pos;
    this.startLine = this.line;
  }

  ignore(): void {
    this.line += countNewlines(this.input, this.start, this.pos);
    this.start = this.pos;
    this.startLine = this.line;
  }

  accept(valid: string): boolean {
    const r = this.next();
    if (r !== EOF && valid.includes(String.fromCodePoint(r))) return true;
    this.backup();
    return false;
  }

  acceptRun(valid: string): void {
    while (this.accept(valid));
  }

  errorf(message: string): null {
    this.items.push({ typ: "error", pos: this.start, val: message, line: this.startLine });
    return null;
  }

  atRightDelim(): { delim: boolean; trimSpaces: boolean } {
    if (
      hasRightTrimMarker(this.input, this.pos) &&
      this.input.startsWith(RIGHT_DELIM, this.pos + TRIM_MARKER_LEN)
    ) {
      return { delim: true, trimSpaces: true };
    }
    if (this.input.startsWith(RIGHT_DELIM, this.pos)) return { delim: true, trimSpaces: false };
    return { delim: false, trimSpaces: false };
  }

  atTerminator(): boolean {
    const r = this.peek();
    if (isSpace(r)) return true;
    switch (r) {
      case EOF:
      case 0x2e: // .
      case 0x2c: // ,
      case 0x7c: // |
      case 0x3a: // :
      case 0x29: // )
      case 0x28: // (
        return true;
    }
    return this.input.startsWith(RIGHT_DELIM, this.pos);
  }
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (s.charCodeAt(i) === 0x0a) n++;
  return n;
}

function lexText(l: Lexer): StateFn | null {
  const input = l.input;
  const x = input.indexOf(LEFT_DELIM, l.pos);
  if (x >= 0) {
    l.pos = x;
    let trimLength = 0;
    if (hasLeftTrimMarker(input, x + LEFT_DELIM.length)) {
      const text = input.slice(l.start, x);
      trimLength = text.length - text.replace(/[ \t\r\n]+$/, "").length;
    }
    l.pos = x - trimLength;
    if (l.pos > l.start) {
      l.line += countNewlines(input, l.start, l.pos);
      l.emit("text");
    }
    l.pos = x;
    l.ignore();
    return lexLeftDelim;
  }
  l.pos = input.length;
  if (l.pos > l.start) {
    l.line += countNewlines(input, l.start, l.pos);
    l.emit("text");
  }
  l.emit("EOF");
  return null;
}

function leftTrimLength(s: string, at: number): number {
  let i = at;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i - at;
}

function lexLeftDelim(l: Lexer): StateFn | null {
  l.pos += LEFT_DELIM.length;
  const trimSpace = hasLeftTrimMarker(l.input, l.pos);
  const afterMarker = trimSpace ? TRIM_MARKER_LEN : 0;
  if (l.input.startsWith(LEFT_COMMENT, l.pos + afterMarker)) {
    l.pos += afterMarker;
    l.ignore();
    return lexComment;
  }
  l.emit("leftDelim");
  l.pos += afterMarker;
  l.ignore();
  l.parenDepth = 0;
  return lexInsideAction;
}

function lexComment(l: Lexer): StateFn | null {
  l.pos += LEFT_COMMENT.length;
  const i = l.input.indexOf(RIGHT_COMMENT, l.pos);
  if (i < 0) return l.errorf("unclosed comment");
  l.pos = i + RIGHT_COMMENT.length;
  const { delim, trimSpaces } = l.atRightDelim();
  if (!delim) return l.errorf("comment ends before closing delimiter");
  if (trimSpaces) l.pos += TRIM_MARKER_LEN;
  l.pos += RIGHT_DELIM.length;
  if (trimSpaces) l.pos += leftTrimLength(l.input, l.pos);
  l.ignore();
  return lexText;
}

function lexRightDelim(l: Lexer): StateFn | null {
  const trimSpace = hasRightTrimMarker(l.input, l.pos);
  if (trimSpace) {
    l.pos += TRIM_MARKER_LEN;
    l.ignore();
  }
  l.pos += RIGHT_DELIM.length;
  l.emit("rightDelim");
  if (trimSpace) {
    l.pos += leftTrimLength(l.input, l.pos);
    l.ignore();
  }
  return lexText;
}

function lexInsideAction(l: Lexer): StateFn | null {
  const { delim } = l.atRightDelim();
  if (delim) {
    if (l.parenDepth === 0) return lexRightDelim;
    return l.errorf("unclosed left paren");
  }
  const r = l.next();
  if (r === EOF) return l.errorf("unclosed action");
  if (isSpace(r)) {
    l.backup(); // Put the space back in case we have " -}}".
    return lexSpace;
  }
  switch (r) {
    case 0x3d: // =
      l.emit("assign");
      return lexInsideAction;
    case 0x3a: // :
      if (l.next() !== 0x3d) return l.errorf("expected :=");
      l.emit("declare");
      return lexInsideAction;
    case 0x7c: // |
      l.emit("pipe");
      return lexInsideAction;
    case 0x22: // "
      return lexQuote;
    case 0x60: // `
      return lexRawQuote;
    case 0x24: // $
      return lexVariable;
    case 0x27: // '
      return lexChar;
    case 0x28: // (
      l.emit("leftParen");
      l.parenDepth++;
      return lexInsideAction;
    case 0x29: // )
      l.emit("rightParen");
      l.parenDepth--;
      if (l.parenDepth < 0) return l.errorf(`unexpected right paren ${formatRuneU(r)}`);
      return lexInsideAction;
  }
  if (r === 0x2e) {
    // Special look-ahead for ".field" so we don't break backup().
    const c = l.input.charCodeAt(l.pos);
    if (l.pos < l.input.length && (c < 0x30 || c > 0x39)) return lexField;
  }
  if (r === 0x2e || r === 0x2b || r === 0x2d || (r >= 0x30 && r <= 0x39)) {
    l.backup();
    return lexNumber;
  }
  if (isAlphaNumeric(r)) {
    l.backup();
    return lexIdentifier;
  }
  if (r < 0x80 && isPrint(r)) {
    l.emit("char");
    return lexInsideAction;
  }
  return l.errorf(`unrecognized character in action: ${formatRuneU(r)}`);
}

function lexSpace(l: Lexer): StateFn | null {
  let numSpaces = 0;
  while (isSpace(l.peek())) {
    l.next();
    numSpaces++;
  }
  // A trim-marked right delimiter starts with a space: leave it to lexRightDelim.
  if (
    hasRightTrimMarker(l.input, l.pos - 1) &&
    l.input.startsWith(RIGHT_DELIM, l.pos - 1 + TRIM_MARKER_LEN)
  ) {
    l.backup(); // Before the space.
    if (numSpaces === 1) return lexRightDelim;
  }
  l.emit("space");
  return lexInsideAction;
}

function lexIdentifier(l: Lexer): StateFn | null {
  for (;;) {
    const r = l.next();
    if (isAlphaNumeric(r)) continue;
    l.backup();
    const word = l.input.slice(l.start, l.pos);
    if (!l.atTerminator()) return l.errorf(`bad character ${formatRuneU(r)}`);
    const key = keywords.get(word);
    if (key !== undefined) l.emit(key);
    else if (word === "true" || word === "false") l.emit("bool");
    else l.emit("identifier");
    return lexInsideAction;
  }
}

function lexField(l: Lexer): StateFn | null {
  return lexFieldOrVariable(l, "field");
}

function lexVariable(l: Lexer): StateFn | null {
  if (l.atTerminator()) {
    l.emit("variable");
    return lexInsideAction;
  }
  return lexFieldOrVariable(l, "variable");
}

function lexFieldOrVariable(l: Lexer, typ: "field" | "variable"): StateFn | null {
  if (l.atTerminator()) {
    l.emit(typ === "variable" ? "variable" : "dot");
    return lexInsideAction;
  }
  let r: number;
  for (;;) {
    r = l.next();
    if (!isAlphaNumeric(r)) {
      l.backup();
      break;
    }
  }
  if (!l.atTerminator()) return l.errorf(`bad character ${formatRuneU(r)}`);
  l.emit(typ);
  return lexInsideAction;
}

function lexChar(l: Lexer): StateFn | null {
  for (;;) {
    let r = l.next();
    if (r === 0x5c) {
      r = l.next();
      if (r !== EOF && r !== 0x0a) continue;
      return l.errorf("unterminated character constant");
    }
    if (r === EOF || r === 0x0a) return l.errorf("unterminated character constant");
    if (r === 0x27) break;
  }
  l.emit("charConstant");
  return lexInsideAction;
}

function lexNumber(l: Lexer): StateFn | null {
  const bad = (): null => l.errorf(`bad number syntax: ${quote(l.input.slice(l.start, l.pos))}`);
  if (!scanNumber(l)) return bad();
  const sign = l.peek();
  if (sign === 0x2b || sign === 0x2d) {
    // Complex: 1+2i. No spaces, must end in 'i'.
    if (!scanNumber(l) || l.input[l.pos - 1] !== "i") return bad();
    l.emit("complex");
  } else {
    l.emit("number");
  }
  return lexInsideAction;
}

function scanNumber(l: Lexer): boolean {
  l.accept("+-");
  let digits = "0123456789_";
  if (l.accept("0")) {
    // A leading 0 does not mean octal in floats.
    if (l.accept("xX")) digits = "0123456789abcdefABCDEF_";
    else if (l.accept("oO")) digits = "01234567_";
    else if (l.accept("bB")) digits = "01_";
  }
  l.acceptRun(digits);
  if (l.accept(".")) l.acceptRun(digits);
  if (digits.length === 11 && l.accept("eE")) {
    l.accept("+-");
    l.acceptRun("0123456789_");
  }
  if (digits.length === 23 && l.accept("pP")) {
    l.accept("+-");
    l.acceptRun("0123456789_");
  }
  l.accept("i");
  if (isAlphaNumeric(l.peek())) {
    l.next();
    return false;
  }
  return true;
}

function lexQuote(l: Lexer): StateFn | null {
  for (;;) {
    let r = l.next();
    if (r === 0x5c) {
      r = l.next();
      if (r !== EOF && r !== 0x0a) continue;
      return l.errorf("unterminated quoted string");
    }
    if (r === EOF || r === 0x0a) return l.errorf("unterminated quoted string");
    if (r === 0x22) break;
  }
  l.emit("string");
  return lexInsideAction;
}

function lexRawQuote(l: Lexer): StateFn | null {
  for (;;) {
    const r = l.next();
    if (r === EOF) return l.errorf("unterminated raw quoted string");
    if (r === 0x60) break;
  }
  l.emit("rawString");
  return lexInsideAction;
}
