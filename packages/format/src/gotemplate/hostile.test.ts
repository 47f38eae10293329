/**
 * Templates come from untrusted package files: every resource is bounded and
 * running out fails fast with a clear TownError instead of hanging or
 * overflowing the stack.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isTownError, type ErrorCode } from "../errors.js";
import { executeTemplate, parseTemplate, type ExecuteOptions } from "./index.js";

function expectError(code: ErrorCode, pattern: RegExp, body: () => unknown): void {
  const started = Date.now();
  assert.throws(body, (e: unknown) => {
    assert.ok(isTownError(e), `expected a TownError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
  // "Fails fast": generous for slow CI machines, far below a hang.
  assert.ok(Date.now() - started < 10_000, "took too long to fail");
}

function run(source: string, data: unknown, options?: ExecuteOptions): string {
  return executeTemplate(parseTemplate("hostile", source), data, options);
}

const list = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("hostile templates", () => {
  it("rejects oversized sources", () => {
    const source = "x".repeat(256 * 1024 + 1);
    expectError(
      "template_syntax",
      /^template: hostile: source is larger than the limit of 262144 bytes$/,
      () => parseTemplate("hostile", source),
    );
    // The limit counts UTF-8 bytes.
    expectError("template_syntax", /larger than the limit of 100 bytes/, () =>
      parseTemplate("hostile", "é".repeat(60), { maxSourceBytes: 100 }),
    );
  });

  it("rejects deeply nested control structures", () => {
    const source = "{{if 1}}".repeat(200) + "{{end}}".repeat(200);
    expectError(
      "template_syntax",
      /^template: hostile:1: exceeded maximum nesting depth \(100\)$/,
      () => parseTemplate("hostile", source),
    );
  });

  it("rejects deeply nested parentheses", () => {
    const source = "{{" + "(".repeat(5000) + "1" + ")".repeat(5000) + "}}";
    expectError("template_syntax", /exceeded maximum nesting depth \(100\)/, () =>
      parseTemplate("hostile", source),
    );
  });

  it("accepts nesting up to the limit", () => {
    const source = "{{if 1}}".repeat(99) + "ok" + "{{end}}".repeat(99);
    assert.equal(run(source, null), "ok");
  });

  it("stops unbounded template recursion", () => {
    expectError(
      "template_exec",
      /executing "r" at <\{\{template "r" \.\}\}>: exceeded maximum template depth \(100\)$/,
      () => run(`{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}`, 1),
    );
  });

  it("stops recursion through deep nesting before the stack runs out", () => {
    const body = "{{if 1}}".repeat(99) + `{{template "r" .}}` + "{{end}}".repeat(99);
    expectError("template_exec", /exceeded maximum nesting depth \(300\)$/, () =>
      run(`{{define "r"}}${body}{{end}}{{template "r" .}}`, 1),
    );
  });

  it("stops exponential recursion with the step limit", () => {
    const source =
      `{{define "r"}}{{if .}}{{template "r" (slice . 1)}}{{template "r" (slice . 1)}}{{end}}{{end}}` +
      `{{template "r" .}}`;
    expectError("template_exec", /exceeded maximum of 1000000 execution steps$/, () =>
      run(source, list(60)),
    );
  });

  it("stops huge ranges with the step limit", () => {
    expectError("template_exec", /exceeded maximum of 1000000 execution steps$/, () =>
      run("{{range .}}{{range $}}{{range $}}x{{end}}{{end}}{{end}}", list(1000)),
    );
    expectError("template_exec", /exceeded maximum of 50 execution steps$/, () =>
      run("{{range .}}{{.}}{{end}}", list(100), { maxSteps: 50 }),
    );
  });

  it("limits the output size", () => {
    expectError(
      "template_exec",
      /^template: hostile:1:13: executing "hostile" at <\{\{printf "%1000000s" ""\}\}>: output exceeds the limit of 4194304 bytes$/,
      () => run(`{{range .}}{{printf "%1000000s" ""}}{{end}}`, list(10)),
    );
    expectError("template_exec", /output exceeds the limit of 10 bytes/, () =>
      run("0123456789x", null, { maxOutputBytes: 10 }),
    );
    assert.equal(run("0123456789", null, { maxOutputBytes: 10 }), "0123456789");
  });

  it("limits strings built by functions", () => {
    expectError("template_exec", /error calling printf: result exceeds 4194304 characters$/, () =>
      run(`{{$s := "xxxxxxxx"}}{{range .}}{{$s = printf "%s%s" $s $s}}{{end}}{{len $s}}`, list(40)),
    );
    expectError("template_exec", /error calling printf: result exceeds/, () =>
      run(`{{printf "%9999999d" 1}}`, null),
    );
  });

  it("charges functions for the text they process", () => {
    const big = "x".repeat(1 << 20);
    const source = `{{range .l}}{{$x := html $.s}}{{end}}`;
    expectError(
      "template_exec",
      /at <html \$\.s>: exceeded maximum of 1000000 execution steps$/,
      () => run(source, { s: big, l: list(1000) }),
    );
  });

  it("rejects cyclic and overly deep data", () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expectError("invalid_argument", /cyclic value/, () => run("{{.}}", cyclic));
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    expectError("invalid_argument", /nested deeper than 100 levels/, () => run("{{.}}", deep));
  });

  it("converts data that shares objects in linear time", () => {
    let node: unknown = { k: [] };
    for (let i = 0; i < 45; i++) node = { k: [node, node] };
    assert.equal(run("{{len .k}}", node), "2");
  });
});
