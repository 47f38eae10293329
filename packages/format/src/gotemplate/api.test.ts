/**
 * The public API and the JavaScript-to-Go value model.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isTownError, type ErrorCode } from "../errors.js";
import {
  executeTemplate,
  goFloat,
  goTypes,
  mapOf,
  parseTemplate,
  sliceOf,
  structType,
  townTemplateData,
  typed,
  typeString,
  type TownTemplateInput,
} from "./index.js";

function render(source: string, data?: unknown): string {
  return executeTemplate(parseTemplate("t", source), data);
}

function throwsCode(code: ErrorCode, pattern: RegExp, body: () => unknown): void {
  assert.throws(body, (e: unknown) => {
    assert.ok(isTownError(e), `expected a TownError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

const input: TownTemplateInput = {
  responses: { domain: "example.org", x: "y" },
  package: {
    name: "gitea",
    version: "1.21.0",
    repo: "https://example.org/gitea.git",
    image: "gitea/gitea:1.21",
    description: "Git",
  },
  system: { hostname: "town", externalIP: "203.0.113.7", internalIP: "10.0.0.2" },
  dep: { db: { host: "postgres.town", ports: { sql: 5432 }, volumes: { data: "/var/lib/pg" } } },
};

describe("townTemplateData", () => {
  const data = townTemplateData(input);
  const cases: [string, string][] = [
    ["{{ .Responses.domain }}", "example.org"],
    ["{{ .Responses.missing }}", "<no value>"],
    ['[{{ index .Responses "missing" }}]', "[]"],
    ['{{ (index .Dep "db").Host }}', "postgres.town"],
    ['{{ index .Dep.db.Ports "sql" }}', "5432"],
    ["{{ .Dep.db.Ports.sql }}", "5432"],
    ["{{ range $k, $v := .Responses }}{{ $k }}={{ $v }};{{ end }}", "domain=example.org;x=y;"],
    ['{{ if eq .Responses.x "y" }}yes{{ end }}', "yes"],
    [
      "{{ .Package.Name }}@{{ .Package.Version }} on {{ .System.Hostname }}",
      "gitea@1.21.0 on town",
    ],
  ];
  for (const [source, expected] of cases) {
    it(source, () => {
      assert.equal(render(source, data), expected);
    });
  }

  it("reports unknown fields as Go does", () => {
    throwsCode(
      "template_exec",
      /^template: t:1:11: executing "t" at <\.Package\.Nope>: can't evaluate field Nope in type town\.Package$/,
      () => render("{{ .Package.Nope }}", data),
    );
  });
});

describe("value model", () => {
  it("distinguishes int and float64", () => {
    assert.equal(
      render('{{printf "%T %T %T %v" .a .b .c .c}}', { a: 1, b: 1.5, c: goFloat(2) }),
      "int float64 float64 2",
    );
    assert.equal(render("{{eq .a .b}}", { a: 1, b: 1 }), "true");
    throwsCode("template_exec", /incompatible types for comparison/, () =>
      render("{{eq .a .b}}", { a: 1, b: goFloat(1) }),
    );
  });

  it("treats integers beyond 2^53 as float64 and bigint as int", () => {
    assert.equal(render('{{printf "%T %T" .a .b}}', { a: 2 ** 60, b: 2n ** 60n }), "float64 int");
    assert.equal(render("{{.}}", 9223372036854775807n), "9223372036854775807");
  });

  it("accepts Map objects and plain objects", () => {
    const m = new Map<string, unknown>([
      ["b", 2],
      ["a", 1],
    ]);
    assert.equal(render('{{.}} {{printf "%T" .}}', m), "map[a:1 b:2] map[string]interface {}");
    assert.equal(render("{{.x}}", Object.assign(Object.create(null) as object, { x: 1 })), "1");
  });

  it("gives missing keys the element type's zero value in index", () => {
    assert.equal(render('[{{index . "x"}}]', typed(mapOf(goTypes.string), {})), "[]");
    assert.equal(render('[{{index . "x"}}]', typed(mapOf(goTypes.int), {})), "[0]");
    assert.equal(render('[{{index . "x"}}]', { y: 1 }), "[<no value>]");
  });

  it("fills omitted struct fields with zero values", () => {
    const point = structType("geo.Point", {
      X: goTypes.int,
      Y: goTypes.float64,
      Tags: sliceOf(goTypes.string),
    });
    assert.equal(
      render('{{.}} {{printf "%+v" .}}', typed(point, { X: 1 })),
      "{1 0 []} {X:1 Y:0 Tags:[]}",
    );
    assert.equal(typeString(point), "geo.Point");
    assert.equal(typeString(mapOf(sliceOf(goTypes.any))), "map[string][]interface {}");
  });

  it("rejects data the model cannot represent", () => {
    const point = structType("geo.Point", { X: goTypes.int });
    const bad: [unknown, RegExp][] = [
      [typed(goTypes.int, 1.5), /^template data: expected int, got number$/],
      [typed(goTypes.string, 1), /expected string, got number/],
      [typed(point, { X: 1, Z: 2 }), /geo\.Point has no field Z/],
      [typed(point, "x"), /expected geo\.Point, got string/],
      [typed(mapOf(goTypes.int), { a: "x" }), /^template data\.a: expected int, got string$/],
      [typed(sliceOf(point), [{ X: "1" }]), /^template data\[0\]\.X: expected int, got string$/],
      [
        typed(point, typed(structType("geo.Point", { X: goTypes.int }), {})),
        /got typed geo\.Point/,
      ],
      [2n ** 63n, /overflows int/],
      [() => 1, /unsupported value of type function/],
      [new Date(0), /unsupported value of type Date/],
      [new Map([[1, 2]]), /map keys must be strings/],
      [Symbol("s"), /unsupported value of type symbol/],
    ];
    for (const [data, pattern] of bad) {
      throwsCode("invalid_argument", pattern, () => render("{{.}}", data));
    }
  });

  it("requires exported struct field names", () => {
    throwsCode("invalid_argument", /field name is not exported/, () =>
      structType("geo.Point", { name: goTypes.string }),
    );
  });
});

describe("API", () => {
  it("lists defined templates", () => {
    const t = parseTemplate("main", `{{define "a"}}A{{end}}{{block "b" .}}B{{end}}`);
    assert.deepEqual(t.definedTemplates, ["a", "b", "main"]);
    assert.equal(executeTemplate(t, null), "B");
  });

  it("executes one template many times independently", () => {
    const t = parseTemplate("t", "{{$x := .}}{{range .}}{{$x = .}}{{end}}{{$x}}");
    assert.equal(executeTemplate(t, [1, 2]), "2");
    assert.equal(executeTemplate(t, [3]), "3");
  });

  it("uses distinct error codes for syntax and execution errors", () => {
    throwsCode("template_syntax", /^template: f\.conf:2: function "nope" not defined$/, () =>
      parseTemplate("f.conf", "ok\n{{nope}}"),
    );
    throwsCode(
      "template_exec",
      /^template: t:1:2: executing "t" at <len 1>: error calling len: len of type int$/,
      () => render("{{len 1}}"),
    );
  });
});
