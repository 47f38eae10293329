/**
 * The template parser, a port of text/template/parse/parse.go, including its
 * three-token lookahead so that error messages and line numbers match Go's.
 * The one addition is a nesting limit so hostile input cannot exhaust the stack.
 * It is one file of over 600 lines on purpose: it follows parse.go function
 * by function, so that it can be checked against it.
 */

import { TownError } from "../errors.js";
import {
  nodeString,
  type ArgNode,
  type BranchNode,
  type CommandNode,
  type ListNode,
  type Node,
  type NumberNode,
  type PipeNode,
  type TemplateNode,
  type Tree,
  type VariableNode,
} from "./ast.js";
import { isBuiltin } from "./builtins.js";
import { itemString, Lexer, type Item, type ItemType } from "./lexer.js";
import { parseComplex, parseFloat64, parseInt64, parseUint } from "./parse-number.js";
import { quote, unquote, unquoteChar } from "./quote.js";

/** Nodes that end an item list; they never appear in a finished tree. */
interface EndNode {
  readonly type: "end";
  readonly pos: number;
}

interface ElseNode {
  readonly type: "else";
  readonly pos: number;
}

type ListItem = Node | EndNode | ElseNode;

function listItemString(n: ListItem): string {
  if (n.type === "end") return "{{end}}";
  if (n.type === "else") return "{{else}}";
  return nodeString(n);
}

/** State shared by the top-level tree and the {{define}}/{{block}} trees parsed with it. */
interface ParseContext {
  readonly lex: Lexer;
  readonly treeSet: Map<string, Tree>;
  readonly maxDepth: number;
  depth: number;
}

/** Go's zero item, what the token buffer holds before anything is read. */
const ZERO_ITEM: Item = { typ: "error", pos: 0, val: "", line: 0 };

/** Text that bytes.TrimSpace empties (Go's unicode.IsSpace characters only). */
const blank = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** parse.IsEmptyTree: only whitespace text. */
function isEmptyTree(list: ListNode): boolean {
  return list.nodes.every((n) => n.type === "text" && blank.test(n.text));
}

/** Parses the `text` of one template (Go's Tree while parsing). */
class TreeParser {
  readonly tree: Tree;
  private readonly token: Item[] = [ZERO_ITEM, ZERO_ITEM, ZERO_ITEM];
  private peekCount = 0;
  private vars: string[] = ["$"];
  private actionLine = 0;
  private rangeDepth = 0;

  constructor(
    private readonly ctx: ParseContext,
    name: string,
    parseName: string,
    text: string,
  ) {
    this.tree = { name, parseName, text, root: this.list(0) };
  }

  // Token stream with three-token lookahead.

  private next(): Item {
    if (this.peekCount > 0) this.peekCount--;
    else this.token[0] = this.ctx.lex.nextItem();
    return this.token[this.peekCount] ?? ZERO_ITEM;
  }

  private backup(): void {
    this.peekCount++;
  }

  private backup2(t1: Item): void {
    this.token[1] = t1;
    this.peekCount = 2;
  }

  private backup3(t2: Item, t1: Item): void {
    this.token[1] = t1;
    this.token[2] = t2;
    this.peekCount = 3;
  }

  private peek(): Item {
    if (this.peekCount > 0) return this.token[this.peekCount - 1] ?? ZERO_ITEM;
    this.peekCount = 1;
    this.token[0] = this.ctx.lex.nextItem();
    return this.token[0];
  }

  private nextNonSpace(): Item {
    for (;;) {
      const token = this.next();
      if (token.typ !== "space") return token;
    }
  }

  private peekNonSpace(): Item {
    const token = this.nextNonSpace();
    this.backup();
    return token;
  }

  // Errors.

  errorf(message: string): never {
    const line = this.token[0]?.line ?? 0;
    throw new TownError("template_syntax", `template: ${this.tree.parseName}:${line}: ${message}`);
  }

  private expect(expected: ItemType, context: string): Item {
    const token = this.nextNonSpace();
    if (token.typ !== expected) this.unexpected(token, context);
    return token;
  }

  private expectOneOf(a: ItemType, b: ItemType, context: string): Item {
    const token = this.nextNonSpace();
    if (token.typ !== a && token.typ !== b) this.unexpected(token, context);
    return token;
  }

  private unexpected(token: Item, context: string): never {
    if (token.typ === "error") {
      let extra = "";
      if (this.actionLine !== 0 && this.actionLine !== token.line) {
        extra = ` in action started at ${this.tree.parseName}:${this.actionLine}`;
        if (token.val.endsWith(" action")) extra = extra.slice(" in action".length);
      }
      this.errorf(itemString(token) + extra);
    }
    this.errorf(`unexpected ${itemString(token)} in ${context}`);
  }

  /** Runs `body` one nesting level deeper, enforcing the depth limit. */
  private nested<T>(body: () => T): T {
    if (this.ctx.depth >= this.ctx.maxDepth) {
      this.errorf(`exceeded maximum nesting depth (${this.ctx.maxDepth})`);
    }
    this.ctx.depth++;
    try {
      return body();
    } finally {
      this.ctx.depth--;
    }
  }

  // Node constructors.

  private list(pos: number): ListNode {
    return { type: "list", pos, nodes: [] };
  }

  private variable(pos: number, ident: string): VariableNode {
    return { type: "variable", pos, ident: ident.split(".") };
  }

  // Grammar.

  /** Adds the finished tree to the set (parse.Tree.add). */
  add(): void {
    const existing = this.ctx.treeSet.get(this.tree.name);
    if (existing === undefined || isEmptyTree(existing.root)) {
      this.ctx.treeSet.set(this.tree.name, this.tree);
      return;
    }
    if (!isEmptyTree(this.tree.root)) {
      this.errorf(`template: multiple definition of template ${quote(this.tree.name)}`);
    }
  }

  /** Top level: like itemList, but also handles {{define}}; runs to EOF. */
  parse(): void {
    this.tree.root = this.list(this.peek().pos);
    while (this.peek().typ !== "EOF") {
      if (this.peek().typ === "leftDelim") {
        const delim = this.next();
        if (this.nextNonSpace().typ === "define") {
          const def = new TreeParser(this.ctx, "definition", this.tree.parseName, this.tree.text);
          def.parseDefinition();
          continue;
        }
        this.backup2(delim);
      }
      const n = this.textOrAction();
      if (n.type === "end" || n.type === "else") this.errorf(`unexpected ${listItemString(n)}`);
      this.tree.root.nodes.push(n);
    }
  }

  private parseDefinition(): void {
    const context = "define clause";
    const name = this.expectOneOf("string", "rawString", context);
    const unquoted = unquote(name.val);
    if (unquoted === null) this.errorf("invalid syntax");
    this.tree.name = unquoted;
    this.expect("rightDelim", context);
    const [root, end] = this.itemList();
    if (end.type !== "end") this.errorf(`unexpected ${listItemString(end)} in ${context}`);
    this.tree.root = root;
    this.add();
  }

  private itemList(): [ListNode, EndNode | ElseNode] {
    const list = this.list(this.peekNonSpace().pos);
    while (this.peekNonSpace().typ !== "EOF") {
      const n = this.textOrAction();
      if (n.type === "end" || n.type === "else") return [list, n];
      list.nodes.push(n);
    }
    return this.errorf("unexpected EOF");
  }

  private textOrAction(): ListItem {
    const token = this.nextNonSpace();
    switch (token.typ) {
      case "text":
        return { type: "text", pos: token.pos, text: token.val };
      case "leftDelim":
        this.actionLine = token.line;
        try {
          return this.action();
        } finally {
          this.actionLine = 0;
        }
      default:
        return this.unexpected(token, "input");
    }
  }

  private action(): ListItem {
    const token = this.nextNonSpace();
    switch (token.typ) {
      case "block":
        return this.blockControl();
      case "break":
      case "continue":
        return this.branchControl(token);
      case "else":
        return this.elseControl();
      case "end":
        return { type: "end", pos: this.expect("rightDelim", "end").pos };
      case "if":
        return this.ifControl();
      case "range":
        return this.controlNode("range", false);
      case "template":
        return this.templateControl();
      case "with":
        return this.controlNode("with", false);
    }
    this.backup();
    const pos = this.peek().pos;
    // Variables declared here persist until the enclosing {{end}}.
    return { type: "action", pos, pipe: this.pipeline("command", "rightDelim") };
  }

  /** {{break}} and {{continue}}. */
  private branchControl(keyword: Item): ListItem {
    const context = `{{${keyword.val}}}`;
    const token = this.nextNonSpace();
    if (token.typ !== "rightDelim") this.unexpected(token, context);
    if (this.rangeDepth === 0) this.errorf(`${context} outside {{range}}`);
    return keyword.typ === "break"
      ? { type: "break", pos: keyword.pos }
      : { type: "continue", pos: keyword.pos };
  }

  private pipeline(context: string, end: ItemType): PipeNode {
    const first = this.peekNonSpace();
    const pipe: PipeNode = {
      type: "pipe",
      pos: first.pos,
      line: first.line,
      isAssign: false,
      decl: [],
      cmds: [],
    };
    this.declarations(pipe, context);
    for (;;) {
      const token = this.nextNonSpace();
      if (token.typ === end) {
        this.checkPipeline(pipe, context);
        return pipe;
      }
      switch (token.typ) {
        case "bool":
        case "charConstant":
        case "complex":
        case "dot":
        case "field":
        case "identifier":
        case "number":
        case "nil":
        case "rawString":
        case "string":
        case "variable":
        case "leftParen":
          this.backup();
          pipe.cmds.push(this.command());
          break;
        default:
          this.unexpected(token, context);
      }
    }
  }

  /** The optional `$x :=`, `$x =` or `$i, $e :=` prefix of a pipeline. */
  private declarations(pipe: PipeNode, context: string): void {
    for (;;) {
      const v = this.peekNonSpace();
      if (v.typ !== "variable") return;
      this.next();
      // Spaces are tokens, so "$x foo" needs three tokens of lookahead to tell
      // an argument from a declaration.
      const tokenAfterVariable = this.peek();
      const next = this.peekNonSpace();
      if (next.typ === "assign" || next.typ === "declare") {
        pipe.isAssign = next.typ === "assign";
        this.nextNonSpace();
        pipe.decl.push(this.variable(v.pos, v.val));
        this.vars.push(v.val);
        return;
      }
      if (next.typ === "char" && next.val === ",") {
        this.nextNonSpace();
        pipe.decl.push(this.variable(v.pos, v.val));
        this.vars.push(v.val);
        if (context === "range" && pipe.decl.length < 2) {
          const t = this.peekNonSpace().typ;
          if (t === "variable" || t === "rightDelim" || t === "rightParen") continue;
          this.errorf("range can only initialize variables");
        }
        this.errorf(`too many declarations in ${context}`);
      }
      if (tokenAfterVariable.typ === "space") this.backup3(v, tokenAfterVariable);
      else this.backup2(v);
      return;
    }
  }

  private checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`);
    pipe.cmds.slice(1).forEach((c, i) => {
      const t = c.args[0]?.type;
      if (t === "bool" || t === "dot" || t === "nil" || t === "number" || t === "string") {
        this.errorf(`non executable command in pipeline stage ${i + 2}`);
      }
    });
  }

  private parseControl(
    allowElseIf: boolean,
    context: "if" | "range" | "with",
  ): Omit<BranchNode, "type"> {
    return this.nested(() => {
      const mark = this.vars.length;
      const pipe = this.pipeline(context, "rightDelim");
      if (context === "range") this.rangeDepth++;
      const [list, end] = this.itemList();
      let next = end;
      if (context === "range") this.rangeDepth--;
      let elseList: ListNode | null = null;
      if (next.type === "else") {
        if (allowElseIf && this.peek().typ === "if") {
          // {{else if b}} is {{else}}{{if b}}…{{end}}{{end}} with the last {{end}} implied.
          this.next();
          elseList = this.list(next.pos);
          elseList.nodes.push(this.ifControl());
        } else {
          [elseList, next] = this.itemList();
          if (next.type !== "end") this.errorf(`expected end; found ${listItemString(next)}`);
        }
      }
      this.vars = this.vars.slice(0, mark);
      return { pos: pipe.pos, pipe, list, elseList };
    });
  }

  private ifControl(): BranchNode {
    return this.controlNode("if", true);
  }

  private controlNode(type: "if" | "range" | "with", allowElseIf: boolean): BranchNode {
    return { type, ...this.parseControl(allowElseIf, type) };
  }

  private elseControl(): ElseNode {
    const peek = this.peekNonSpace();
    // "{{else if …" is rewritten to "{{else}}{{if …"; leave the "if" pending.
    if (peek.typ === "if") return { type: "else", pos: peek.pos };
    return { type: "else", pos: this.expect("rightDelim", "else").pos };
  }

  private blockControl(): TemplateNode {
    const context = "block clause";
    const token = this.nextNonSpace();
    const name = this.parseTemplateName(token, context);
    const pipe = this.pipeline(context, "rightDelim");
    const block = new TreeParser(this.ctx, name, this.tree.parseName, this.tree.text);
    const [root, end] = this.nested(() => block.itemList());
    if (end.type !== "end") this.errorf(`unexpected ${listItemString(end)} in ${context}`);
    block.tree.root = root;
    block.add();
    return { type: "template", pos: token.pos, name, pipe };
  }

  private templateControl(): TemplateNode {
    const context = "template clause";
    const token = this.nextNonSpace();
    const name = this.parseTemplateName(token, context);
    let pipe: PipeNode | null = null;
    if (this.nextNonSpace().typ !== "rightDelim") {
      this.backup();
      pipe = this.pipeline(context, "rightDelim");
    }
    return { type: "template", pos: token.pos, name, pipe };
  }

  private parseTemplateName(token: Item, context: string): string {
    if (token.typ !== "string" && token.typ !== "rawString") this.unexpected(token, context);
    const s = unquote(token.val);
    if (s === null) this.errorf("invalid syntax");
    return s;
  }

  private command(): CommandNode {
    const cmd: CommandNode = {
      type: "command",
      pos: this.peekNonSpace().pos,
      args: [],
    };
    for (;;) {
      this.peekNonSpace(); // Skip leading spaces.
      const operand = this.operand();
      if (operand !== null) cmd.args.push(operand);
      const token = this.next();
      if (token.typ === "space") continue;
      if (token.typ === "rightDelim" || token.typ === "rightParen") this.backup();
      else if (token.typ !== "pipe") this.unexpected(token, "operand");
      break;
    }
    if (cmd.args.length === 0) this.errorf("empty command");
    return cmd;
  }

  private operand(): ArgNode | null {
    const node = this.term();
    if (node === null) return null;
    if (this.peek().typ !== "field") return node;
    const pos = this.peek().pos;
    const fields: string[] = [];
    while (this.peek().typ === "field") fields.push(this.next().val.slice(1));
    const chained = nodeString(node) + fields.map((f) => "." + f).join("");
    switch (node.type) {
      case "field":
        return { type: "field", pos, ident: chained.slice(1).split(".") };
      case "variable":
        return this.variable(pos, chained);
      case "bool":
      case "string":
      case "number":
      case "nil":
      case "dot":
        return this.errorf(`unexpected . after term ${quote(nodeString(node))}`);
      default:
        return { type: "chain", pos, node, fields };
    }
  }

  private term(): ArgNode | null {
    const token = this.nextNonSpace();
    const base = { pos: token.pos };
    switch (token.typ) {
      case "identifier":
        if (!isBuiltin(token.val)) this.errorf(`function ${quote(token.val)} not defined`);
        return { type: "identifier", ...base, ident: token.val };
      case "dot":
        return { type: "dot", ...base };
      case "nil":
        return { type: "nil", ...base };
      case "variable":
        return this.useVar(token.pos, token.val);
      case "field":
        return { type: "field", ...base, ident: token.val.slice(1).split(".") };
      case "bool":
        return { type: "bool", ...base, value: token.val === "true" };
      case "charConstant":
      case "complex":
      case "number": {
        const n = newNumber(token, base);
        return typeof n === "string" ? this.errorf(n) : n;
      }
      case "leftParen":
        return this.nested(() => this.pipeline("parenthesized pipeline", "rightParen"));
      case "string":
      case "rawString": {
        const s = unquote(token.val);
        if (s === null) this.errorf("invalid syntax");
        return { type: "string", ...base, quoted: token.val, text: s };
      }
    }
    this.backup();
    return null;
  }

  private useVar(pos: number, name: string): VariableNode {
    const v = this.variable(pos, name);
    const head = v.ident[0] ?? "";
    if (!this.vars.includes(head)) this.errorf(`undefined variable ${quote(head)}`);
    return v;
  }
}

/** Go's float64(int64(f)) == f on amd64: integral and within int64. */
function fitsInt64(f: number): boolean {
  return Number.isInteger(f) && f >= -(2 ** 63) && f < 2 ** 63;
}

function fitsUint64(f: number): boolean {
  return Number.isInteger(f) && f >= 0 && f < 2 ** 64;
}

/** parse.newNumber: the value under every type that represents it, or an error message. */
function newNumber(token: Item, base: Pick<NumberNode, "pos">): NumberNode | string {
  const text = token.val;
  const node = {
    type: "number" as const,
    ...base,
    text,
    isInt: false,
    isUint: false,
    isFloat: false,
    isComplex: false,
    int64: 0n,
    float64: 0,
    complex: { re: 0, im: 0 },
  };
  const complexNode = (re: number, im: number): NumberNode => {
    const isFloat = im === 0;
    return {
      ...node,
      isComplex: true,
      complex: { re, im },
      isFloat,
      float64: isFloat ? re : 0,
      isInt: isFloat && fitsInt64(re),
      int64: isFloat && fitsInt64(re) ? BigInt(re) : 0n,
      isUint: isFloat && fitsUint64(re),
    };
  };
  if (token.typ === "charConstant") {
    const c = unquoteChar(text, 1, text[0] ?? "'");
    if (c === null) return "invalid syntax";
    if (text.slice(1 + c.size) !== "'") return `malformed character constant: ${text}`;
    return {
      ...node,
      isInt: true,
      isUint: true,
      isFloat: true,
      int64: BigInt(c.value),
      float64: c.value,
    };
  }
  if (token.typ === "complex") {
    const c = parseComplex(text);
    return typeof c === "string" ? c : complexNode(c.re, c.im);
  }
  if (text.endsWith("i")) {
    const f = parseFloat64(text.slice(0, -1));
    if (f !== null) return complexNode(0, f);
  }
  const u = parseUint(text);
  const i = parseInt64(text);
  let result: NumberNode = { ...node, isUint: u !== null };
  if (i !== null) result = { ...result, isInt: true, int64: i, isUint: result.isUint || i === 0n };
  if (result.isInt) return { ...result, isFloat: true, float64: Number(result.int64) };
  if (u !== null) return { ...result, isFloat: true, float64: Number(u) };
  const f = parseFloat64(text);
  if (f !== null) {
    // Parsed as a float but looks like an integer: an integer too large for int.
    if (!/[.eEpP]/.test(text)) return `integer overflow: ${quote(text)}`;
    return {
      ...result,
      isFloat: true,
      float64: f,
      isInt: fitsInt64(f),
      int64: fitsInt64(f) ? BigInt(f) : 0n,
      isUint: fitsUint64(f),
    };
  }
  return `illegal number syntax: ${quote(text)}`;
}

export interface ParseLimits {
  /** Maximum nesting of control structures and parenthesized pipelines. */
  maxDepth: number;
}

/** Parses `text`; returns every template it defines, keyed by name. */
export function parseTrees(name: string, text: string, limits: ParseLimits): Map<string, Tree> {
  const ctx: ParseContext = {
    lex: new Lexer(text),
    treeSet: new Map(),
    maxDepth: limits.maxDepth,
    depth: 0,
  };
  const top = new TreeParser(ctx, name, name, text);
  top.parse();
  top.add();
  return ctx.treeSet;
}
