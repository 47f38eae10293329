/**
 * Parse tree nodes (text/template/parse/node.go) and their String() forms,
 * which Go quotes in execution errors ("executing "t" at <.A.B>: …").
 */

import { quote } from "./quote.js";

/** A parsed template: Go's parse.Tree, minus parsing state. */
export interface Tree {
  /** Name of this template (a {{define}} name, set once its clause is read, or the top-level name). */
  name: string;
  /** Name of the top-level template being parsed, used in error locations. */
  readonly parseName: string;
  /** The full source text the tree was parsed from. */
  readonly text: string;
  root: ListNode;
}

/**
 * Go nodes also point to their tree; all trees of one parse share the source
 * text and top-level name, so the executor uses its current tree instead.
 */
interface Base {
  /** UTF-16 offset in the source. */
  readonly pos: number;
}

export interface ListNode extends Base {
  readonly type: "list";
  readonly nodes: Node[];
}

export interface TextNode extends Base {
  readonly type: "text";
  readonly text: string;
}

export interface PipeNode extends Base {
  readonly type: "pipe";
  readonly line: number;
  isAssign: boolean;
  readonly decl: VariableNode[];
  readonly cmds: CommandNode[];
}

export interface ActionNode extends Base {
  readonly type: "action";
  readonly pipe: PipeNode;
}

export interface CommandNode extends Base {
  readonly type: "command";
  readonly args: ArgNode[];
}

export interface IdentifierNode extends Base {
  readonly type: "identifier";
  readonly ident: string;
}

export interface VariableNode extends Base {
  readonly type: "variable";
  /** "$x" followed by field names. */
  readonly ident: readonly string[];
}

export interface DotNode extends Base {
  readonly type: "dot";
}

export interface NilNode extends Base {
  readonly type: "nil";
}

export interface FieldNode extends Base {
  readonly type: "field";
  readonly ident: readonly string[];
}

export interface ChainNode extends Base {
  readonly type: "chain";
  readonly node: ArgNode;
  readonly fields: string[];
}

export interface BoolNode extends Base {
  readonly type: "bool";
  readonly value: boolean;
}

/** A number constant, stored under every Go type that can represent it. */
export interface NumberNode extends Base {
  readonly type: "number";
  readonly text: string;
  readonly isInt: boolean;
  readonly isUint: boolean;
  readonly isFloat: boolean;
  readonly isComplex: boolean;
  readonly int64: bigint;
  readonly float64: number;
  readonly complex: { readonly re: number; readonly im: number };
}

export interface StringNode extends Base {
  readonly type: "string";
  /** The literal as written, with quotes. */
  readonly quoted: string;
  readonly text: string;
}

export interface BranchNode extends Base {
  readonly type: "if" | "range" | "with";
  readonly pipe: PipeNode;
  readonly list: ListNode;
  readonly elseList: ListNode | null;
}

export interface TemplateNode extends Base {
  readonly type: "template";
  readonly name: string;
  readonly pipe: PipeNode | null;
}

export interface BreakNode extends Base {
  readonly type: "break";
}

export interface ContinueNode extends Base {
  readonly type: "continue";
}

/** Operands: what may appear as a command argument. */
export type ArgNode =
  | IdentifierNode
  | VariableNode
  | DotNode
  | NilNode
  | FieldNode
  | ChainNode
  | BoolNode
  | NumberNode
  | StringNode
  | PipeNode;

export type Node =
  | ListNode
  | TextNode
  | ActionNode
  | CommandNode
  | ArgNode
  | BranchNode
  | TemplateNode
  | BreakNode
  | ContinueNode;

export function nodeString(n: Node): string {
  switch (n.type) {
    case "list":
      return n.nodes.map(nodeString).join("");
    case "text":
      return n.text;
    case "pipe": {
      const decl = n.decl.length > 0 ? n.decl.map(nodeString).join(", ") + " := " : "";
      return decl + n.cmds.map(nodeString).join(" | ");
    }
    case "action":
      return `{{${nodeString(n.pipe)}}}`;
    case "command":
      return n.args
        .map((a) => (a.type === "pipe" ? `(${nodeString(a)})` : nodeString(a)))
        .join(" ");
    case "identifier":
      return n.ident;
    case "variable":
      return n.ident.join(".");
    case "dot":
      return ".";
    case "nil":
      return "nil";
    case "field":
      return n.ident.map((id) => "." + id).join("");
    case "chain": {
      const head = n.node.type === "pipe" ? `(${nodeString(n.node)})` : nodeString(n.node);
      return head + n.fields.map((f) => "." + f).join("");
    }
    case "bool":
      return n.value ? "true" : "false";
    case "number":
      return n.text;
    case "string":
      return n.quoted;
    case "if":
    case "range":
    case "with": {
      const elsePart = n.elseList === null ? "" : `{{else}}${nodeString(n.elseList)}`;
      return `{{${n.type} ${nodeString(n.pipe)}}}${nodeString(n.list)}${elsePart}{{end}}`;
    }
    case "template":
      return `{{template ${quote(n.name)}${n.pipe === null ? "" : " " + nodeString(n.pipe)}}}`;
    case "break":
      return "{{break}}";
    case "continue":
      return "{{continue}}";
  }
}
