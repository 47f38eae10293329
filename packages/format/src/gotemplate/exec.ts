/**
 * The template executor, a port of text/template/exec.go. It mirrors Go's
 * evaluation order and its bookkeeping of the "current node", because error
 * messages name that node ("executing "t" at <.A.B>: …").
 *
 * Differences from Go: missingkey is always "default"; break/continue are
 * returned as flow values instead of panics; and every execution is bounded
 * (steps, output size, template and nesting depth).
 *
 * It is one file of over 600 lines on purpose: it follows exec.go function by
 * function, so that it can be checked against it.
 */

import { TownError } from "../errors.js";
import {
  nodeString,
  type ArgNode,
  type BranchNode,
  type ChainNode,
  type CommandNode,
  type FieldNode,
  type IdentifierNode,
  type Node,
  type NumberNode,
  type PipeNode,
  type TemplateNode,
  type Tree,
  type VariableNode,
} from "./ast.js";
import {
  BuiltinError,
  callBuiltin,
  indirect,
  isBuiltin,
  signatures,
  toFmtArg,
  truth,
  type BuiltinName,
  type ParamKind,
} from "./builtins.js";
import { FormatLimitError } from "./fmt-format.js";
import { formatValue, sprint } from "./fmt.js";
import { quote } from "./quote.js";
import { utf8Length } from "./utf8.js";
import {
  INVALID,
  indirectInterface,
  sliceElems,
  sortedKeys,
  valueTypeString,
  type Value,
} from "./value.js";

export interface ExecLimits {
  /** Maximum size of the output, in UTF-8 bytes. */
  maxOutputBytes: number;
  /** Maximum evaluation steps (nodes walked, commands run, plus text processed by functions / 64). */
  maxSteps: number;
  /** Maximum depth of {{template}} calls (Go allows 100000). */
  maxTemplateDepth: number;
  /** Maximum nesting of control structures and template calls being executed. */
  maxNesting: number;
}

/** Why a walk stopped early: {{break}} or {{continue}} inside a range. */
type Flow = "normal" | "break" | "continue";

interface Variable {
  readonly name: string;
  value: Value;
}

/** Per-execution state shared by the states of nested template calls. */
class Run {
  private readonly chunks: string[] = [];
  private bytes = 0;
  private steps = 0;
  nesting = 0;

  constructor(
    readonly templates: ReadonlyMap<string, Tree>,
    readonly limits: ExecLimits,
  ) {}

  /** Counts work; returns false once the step budget is exhausted. */
  charge(units: number): boolean {
    this.steps += units;
    return this.steps <= this.limits.maxSteps;
  }

  /** Appends output; returns false when it would exceed the output limit. */
  write(s: string): boolean {
    this.bytes += utf8Length(s);
    if (this.bytes > this.limits.maxOutputBytes) return false;
    this.chunks.push(s);
    return true;
  }

  output(): string {
    return this.chunks.join("");
  }
}

class State {
  /** The node being evaluated, named in error messages. */
  private node: Node;
  private readonly vars: Variable[];

  constructor(
    private readonly run: Run,
    private readonly tmpl: Tree,
    private readonly depth: number,
    dot: Value,
  ) {
    this.node = tmpl.root;
    this.vars = [{ name: "$", value: dot }];
  }

  // Bookkeeping.

  private at(node: Node): void {
    this.node = node;
  }

  /** Fails with Go's message: template: FILE:LINE:COL: executing "NAME" at <NODE>: MESSAGE. */
  errorf(message: string): never {
    const name = this.tmpl.name;
    const text = this.tmpl.text.slice(0, this.node.pos);
    const lineStart = text.lastIndexOf("\n") + 1;
    const line = text.split("\n").length;
    const col = utf8Length(text.slice(lineStart));
    const location = `${this.tmpl.parseName}:${line}:${col}`;
    throw new TownError(
      "template_exec",
      `template: ${location}: executing ${quote(name)} at <${nodeString(this.node)}>: ${message}`,
    );
  }

  /** Counts work; `blame` is the node to report if the budget runs out (default: current). */
  private step(units = 1, blame: Node | null = null): void {
    if (!this.run.charge(units)) {
      if (blame !== null) this.at(blame);
      this.errorf(`exceeded maximum of ${this.run.limits.maxSteps} execution steps`);
    }
  }

  private write(s: string): void {
    if (!this.run.write(s)) {
      this.errorf(`output exceeds the limit of ${this.run.limits.maxOutputBytes} bytes`);
    }
  }

  /** Runs `body` one level deeper in the execution, enforcing the nesting limit. */
  private nested<T>(body: () => T): T {
    if (this.run.nesting >= this.run.limits.maxNesting) {
      this.errorf(`exceeded maximum nesting depth (${this.run.limits.maxNesting})`);
    }
    this.run.nesting++;
    try {
      return body();
    } finally {
      this.run.nesting--;
    }
  }

  private mark(): number {
    return this.vars.length;
  }

  private pop(mark: number): void {
    this.vars.length = mark;
  }

  private push(name: string, value: Value): void {
    this.vars.push({ name, value });
  }

  private setVar(name: string, value: Value): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const v = this.vars[i];
      if (v?.name === name) {
        v.value = value;
        return;
      }
    }
    this.errorf(`undefined variable: ${name}`);
  }

  private varValue(name: string): Value {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const v = this.vars[i];
      if (v?.name === name) return v.value;
    }
    return this.errorf(`undefined variable: ${name}`);
  }

  // Walking.

  walk(dot: Value, node: Node): Flow {
    this.at(node);
    this.step();
    switch (node.type) {
      case "action": {
        // Declared variables persist until the enclosing {{end}}; declarations print nothing.
        const val = this.evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) this.printValue(node, val);
        return "normal";
      }
      case "break":
        return "break";
      case "continue":
        return "continue";
      case "if":
      case "with":
        return this.walkIfOrWith(dot, node);
      case "list":
        for (const n of node.nodes) {
          const flow = this.walk(dot, n);
          if (flow !== "normal") return flow;
        }
        return "normal";
      case "range":
        return this.walkRange(dot, node);
      case "template":
        this.walkTemplate(dot, node);
        return "normal";
      case "text":
        this.write(node.text);
        return "normal";
      default:
        return this.errorf(`unknown node: ${nodeString(node)}`);
    }
  }

  private walkIfOrWith(dot: Value, node: BranchNode): Flow {
    const mark = this.mark();
    const val = this.evalPipeline(dot, node.pipe);
    let flow: Flow = "normal";
    if (truth(val)) {
      flow = this.nested(() => this.walk(node.type === "with" ? val : dot, node.list));
    } else if (node.elseList !== null) {
      const elseList = node.elseList;
      flow = this.nested(() => this.walk(dot, elseList));
    }
    this.pop(mark);
    return flow;
  }

  private walkRange(dot: Value, r: BranchNode): Flow {
    this.at(r);
    const outer = this.mark();
    const val = indirect(this.evalPipeline(dot, r.pipe)).value;
    // Mark the stack before any variables declared in the body.
    const mark = this.mark();
    const oneIteration = (index: Value, elem: Value): Flow => {
      // The last declared variable gets the element, the one before it the index.
      if (r.pipe.decl.length > 0) this.setTopVar(1, elem);
      if (r.pipe.decl.length > 1) this.setTopVar(2, index);
      const flow = this.nested(() => this.walk(elem, r.list));
      this.pop(mark);
      return flow === "break" ? "break" : "normal";
    };
    let ranged = false;
    switch (val.k) {
      case "slice": {
        const elems = val.v === null ? [] : sliceElems(val.v);
        ranged = elems.length > 0;
        for (let i = 0; i < elems.length; i++) {
          if (oneIteration({ k: "int", v: BigInt(i) }, elems[i] ?? INVALID) === "break") break;
        }
        break;
      }
      case "map": {
        const m = val.v;
        if (m === null) break;
        ranged = m.size > 0;
        for (const key of sortedKeys(m)) {
          if (oneIteration({ k: "string", v: key }, m.get(key) ?? INVALID) === "break") break;
        }
        break;
      }
      case "invalid":
        break; // Likely a nil map or similar: acts as empty.
      default:
        this.errorf(`range can't iterate over ${this.format(val)}`);
    }
    let flow: Flow = "normal";
    if (!ranged && r.elseList !== null) {
      const elseList = r.elseList;
      // Go's range recovers a {{break}} from its else branch too; {{continue}} propagates.
      const elseFlow = this.nested(() => this.walk(dot, elseList));
      if (elseFlow === "continue") flow = "continue";
    }
    this.pop(outer);
    return flow;
  }

  private setTopVar(n: number, value: Value): void {
    const v = this.vars[this.vars.length - n];
    if (v !== undefined) v.value = value;
  }

  private walkTemplate(dot: Value, t: TemplateNode): void {
    this.at(t);
    const tmpl = this.run.templates.get(t.name);
    if (tmpl === undefined) this.errorf(`template ${quote(t.name)} not defined`);
    if (this.depth >= this.run.limits.maxTemplateDepth) {
      this.errorf(`exceeded maximum template depth (${this.run.limits.maxTemplateDepth})`);
    }
    // Variables declared by the pipeline persist; the callee sees none of ours.
    const newDot = this.evalPipeline(dot, t.pipe);
    const callee = new State(this.run, tmpl, this.depth + 1, newDot);
    this.nested(() => callee.walk(newDot, tmpl.root));
  }

  // Evaluation. A `final` of null means the command has no piped-in value.

  private evalPipeline(dot: Value, pipe: PipeNode | null): Value {
    if (pipe === null) return INVALID;
    this.at(pipe);
    let value: Value | null = null;
    for (const cmd of pipe.cmds) {
      value = this.evalCommand(dot, cmd, value);
      // An interface{} result is replaced by the value inside it.
      if (value.k === "interface") value = value.v ?? INVALID;
    }
    const result = value ?? INVALID;
    for (const v of pipe.decl) {
      const name = v.ident[0] ?? "";
      if (pipe.isAssign) this.setVar(name, result);
      else this.push(name, result);
    }
    return result;
  }

  private notAFunction(args: readonly ArgNode[] | null, final: Value | null): void {
    if ((args !== null && args.length > 1) || final !== null) {
      const first = args?.[0];
      this.errorf(`can't give argument to non-function ${first ? nodeString(first) : ""}`);
    }
  }

  private evalCommand(dot: Value, cmd: CommandNode, final: Value | null): Value {
    this.step();
    const first = cmd.args[0];
    if (first === undefined) return this.errorf("empty command");
    switch (first.type) {
      case "field":
        return this.evalFieldNode(dot, first, cmd.args, final);
      case "chain":
        return this.evalChainNode(dot, first, cmd.args, final);
      case "identifier":
        return this.evalFunction(dot, first, cmd, cmd.args, final);
      case "pipe":
        // Parenthesized pipeline: its arguments are all inside.
        this.notAFunction(cmd.args, final);
        return this.nested(() => this.evalPipeline(dot, first));
      case "variable":
        return this.evalVariableNode(dot, first, cmd.args, final);
    }
    this.at(first);
    this.notAFunction(cmd.args, final);
    switch (first.type) {
      case "bool":
        return { k: "bool", v: first.value };
      case "dot":
        return dot;
      case "nil":
        return this.errorf("nil is not a command");
      case "number":
        return this.idealConstant(first);
      case "string":
        return { k: "string", v: first.text };
    }
  }

  /** The value of an untyped number constant, typed by its syntax. */
  private idealConstant(c: NumberNode): Value {
    this.at(c);
    const isHexInt = /^0[xX]/.test(c.text) && c.text.length > 2 && !/[pP]/.test(c.text);
    const isRuneInt = c.text.startsWith("'");
    if (c.isComplex) return { k: "complex128", re: c.complex.re, im: c.complex.im };
    if (c.isFloat && !isHexInt && !isRuneInt && /[.eEpP]/.test(c.text)) {
      return { k: "float64", v: c.float64 };
    }
    if (c.isInt) return { k: "int", v: c.int64 };
    if (c.isUint) this.errorf(`${c.text} overflows int`);
    return INVALID;
  }

  private evalFieldNode(
    dot: Value,
    field: FieldNode,
    args: readonly ArgNode[] | null,
    final: Value | null,
  ): Value {
    this.at(field);
    return this.evalFieldChain(dot, field.ident, args, final);
  }

  private evalChainNode(
    dot: Value,
    chain: ChainNode,
    args: readonly ArgNode[] | null,
    final: Value | null,
  ): Value {
    this.at(chain);
    // (pipe).Field1.Field2: evaluate the pipeline, then the fields.
    const pipe = this.evalArg(dot, null, chain.node);
    return this.evalFieldChain(pipe, chain.fields, args, final);
  }

  private evalVariableNode(
    dot: Value,
    variable: VariableNode,
    args: readonly ArgNode[] | null,
    final: Value | null,
  ): Value {
    // $x.Field has $x as the first ident, Field as the second.
    this.at(variable);
    const value = this.varValue(variable.ident[0] ?? "");
    if (variable.ident.length === 1) {
      this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(value, variable.ident.slice(1), args, final);
  }

  /** Walks .X.Y.Z from `receiver0`; only the last field sees the arguments. */
  private evalFieldChain(
    receiver0: Value,
    ident: readonly string[],
    args: readonly ArgNode[] | null,
    final: Value | null,
  ): Value {
    let receiver = receiver0;
    const n = ident.length;
    for (let i = 0; i < n - 1; i++) {
      receiver = this.evalField(ident[i] ?? "", null, null, receiver);
    }
    return this.evalField(ident[n - 1] ?? "", args, final, receiver);
  }

  private evalFunction(
    dot: Value,
    node: IdentifierNode,
    cmd: Node,
    args: readonly ArgNode[] | null,
    final: Value | null,
  ): Value {
    this.at(node);
    const name = node.ident;
    if (!isBuiltin(name)) return this.errorf(`${quote(name)} is not a defined function`);
    return this.evalCall(dot, name, cmd, args, final);
  }

  /** (.Field) or (.Field arg1 arg2): a struct field or map entry; there are no methods. */
  private evalField(
    fieldName: string,
    args: readonly ArgNode[] | null,
    final: Value | null,
    receiver0: Value,
  ): Value {
    if (receiver0.k === "invalid") return INVALID; // missingkey=default
    const typ = valueTypeString(receiver0);
    const { value: receiver, isNil } = indirect(receiver0);
    if (isNil) this.errorf(`nil pointer evaluating ${typ}.${fieldName}`);
    const hasArgs = (args !== null && args.length > 1) || final !== null;
    if (receiver.k === "struct") {
      const i = receiver.t.fields.findIndex((f) => f.name === fieldName);
      if (i >= 0) {
        if (hasArgs) this.errorf(`${fieldName} has arguments but cannot be invoked as function`);
        return receiver.v[i] ?? INVALID;
      }
    } else if (receiver.k === "map") {
      if (hasArgs) this.errorf(`${fieldName} is not a method but has arguments`);
      return receiver.v?.get(fieldName) ?? INVALID;
    }
    return this.errorf(`can't evaluate field ${fieldName} in type ${typ}`);
  }

  /** Calls a builtin; `args` holds the function node first, like Go's cmd.Args. */
  private evalCall(
    dot: Value,
    name: BuiltinName,
    node: Node,
    args: readonly ArgNode[] | null,
    final: Value | null,
  ): Value {
    const argNodes = args === null ? [] : args.slice(1);
    const sig = signatures.get(name);
    if (sig === undefined) return this.errorf(`${quote(name)} is not a defined function`);
    const numIn = argNodes.length + (final !== null ? 1 : 0);
    if (sig.variadic !== null) {
      if (numIn < sig.fixed.length) {
        this.errorf(
          `wrong number of args for ${name}: want at least ${sig.fixed.length} got ${argNodes.length}`,
        );
      }
    } else if (numIn !== sig.fixed.length) {
      this.errorf(`wrong number of args for ${name}: want ${sig.fixed.length} got ${numIn}`);
    }

    if (name === "and" || name === "or") {
      // and/or short-circuit: evaluate arguments only until the result is known.
      let v: Value = INVALID;
      for (const arg of argNodes) {
        v = this.evalArg(dot, "value", arg);
        if (truth(v) === (name === "or")) return v;
      }
      if (final !== null) v = this.validateType(final, "value");
      return v;
    }

    const argv: Value[] = [];
    const paramKind = (i: number): ParamKind =>
      i < sig.fixed.length ? (sig.fixed[i] ?? "value") : (sig.variadic ?? "value");
    // Fixed parameters first, then the variadic ones, in source order.
    argNodes.forEach((arg, i) => argv.push(this.evalArg(dot, paramKind(i), arg)));
    if (final !== null) argv.push(this.validateType(final, paramKind(numIn - 1)));
    // An interface{} parameter receives the dynamic value, not the interface.
    const passed = argv.map((v, n) => (paramKind(n) === "any" ? indirectInterface(v) : v));
    let result: Value;
    try {
      result = callBuiltin(name, passed, this.run.limits.maxOutputBytes);
    } catch (e) {
      if (e instanceof BuiltinError) {
        this.at(node);
        this.errorf(`error calling ${name}: ${e.message}`);
      }
      if (e instanceof FormatLimitError) {
        this.at(node);
        this.errorf(`error calling ${name}: result exceeds ${e.limit} characters`);
      }
      throw e;
    }
    // Functions do work proportional to the text they read and (more so) produce.
    let text = result.k === "string" ? 4 * result.v.length : 0;
    for (const v of passed) {
      const x = indirectInterface(v);
      if (x.k === "string") text += x.v.length;
    }
    this.step(Math.floor(text / 64), node);
    return result;
  }

  /** Checks a value against a parameter kind; null is Go's untyped (nil) type. */
  private validateType(value: Value, typ: ParamKind | null): Value {
    if (value.k === "invalid") {
      if (typ === "string") this.errorf("invalid value; expected string");
      // An untyped nil interface{} (any) or the zero reflect.Value (value).
      return typ === "any" ? { k: "interface", v: null } : INVALID;
    }
    if (typ !== "string" || value.k === "string") return value;
    const elem = value.k === "interface" && value.v !== null ? value.v : value;
    if (elem.k === "string") return elem;
    return this.errorf(`wrong type for value; expected string; got ${valueTypeString(elem)}`);
  }

  private evalArg(dot: Value, typ: ParamKind | null, n: ArgNode): Value {
    this.at(n);
    switch (n.type) {
      case "dot":
        return this.validateType(dot, typ);
      case "nil":
        if (typ === "string") this.errorf("cannot assign nil to string");
        return typ === "any" ? { k: "interface", v: null } : INVALID;
      case "field":
        return this.validateType(this.evalFieldNode(dot, n, [n], null), typ);
      case "variable":
        return this.validateType(this.evalVariableNode(dot, n, null, null), typ);
      case "pipe":
        return this.validateType(
          this.nested(() => this.evalPipeline(dot, n)),
          typ,
        );
      case "identifier":
        return this.validateType(this.evalFunction(dot, n, n, null, null), typ);
      case "chain":
        return this.validateType(this.evalChainNode(dot, n, null, null), typ);
      case "string":
        return { k: "string", v: n.text };
      case "bool":
        if (typ === "string") this.errorf(`expected string; found ${nodeString(n)}`);
        return { k: "bool", v: n.value };
      case "number":
        if (typ === "string") this.errorf(`expected string; found ${nodeString(n)}`);
        return this.idealConstant(n);
    }
  }

  private format(v: Value): string {
    return formatValue(v, "v", this.run.limits.maxOutputBytes);
  }

  private printValue(node: Node, v: Value): void {
    this.at(node);
    if (v.k === "invalid") {
      this.write("<no value>");
      return;
    }
    let text: string;
    try {
      text = sprint([toFmtArg(v)], this.run.limits.maxOutputBytes);
    } catch (e) {
      if (e instanceof FormatLimitError) {
        this.errorf(`output exceeds the limit of ${this.run.limits.maxOutputBytes} bytes`);
      }
      throw e;
    }
    this.write(text);
  }
}

/** Executes `main` (one of `templates`) on `data`. */
export function execute(
  templates: ReadonlyMap<string, Tree>,
  main: Tree,
  data: Value,
  limits: ExecLimits,
): string {
  const run = new Run(templates, limits);
  new State(run, main, 0, data).walk(data, main.root);
  return run.output();
}
