/**
 * Golden tests: testdata/cases.json was produced by running each case through
 * Go 1.19's text/template. Data is JSON with two markers understood by both
 * sides: {"$float": n} is a float64 even when integral, and
 * {"$typed": "TYPE", "value": v} gives v a static Go type (town.* structs,
 * []T, map[string]T, int, float64, string, bool, any).
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { isTownError } from "../errors.js";
import {
  executeTemplate,
  goFloat,
  goTypes,
  mapOf,
  parseTemplate,
  sliceOf,
  structType,
  townTemplateData,
  townTypes,
  typed,
  type GoType,
} from "./index.js";

interface GoldenCase {
  name: string;
  tname?: string;
  template: string;
  data?: unknown;
  output?: string;
  error?: string;
  phase?: "parse" | "exec";
}

const cases = JSON.parse(
  readFileSync(new URL("./testdata/cases.json", import.meta.url), "utf8"),
) as GoldenCase[];

const pointType = structType("town.Point", { X: goTypes.int, Y: goTypes.int });
const itemType = structType("town.Item", {
  Name: goTypes.string,
  Count: goTypes.int,
  Price: goTypes.float64,
  Tags: sliceOf(goTypes.string),
  Meta: mapOf(goTypes.any),
  Any: goTypes.any,
  On: goTypes.bool,
});

const named: Record<string, GoType> = {
  "town.Package": townTypes.Package,
  "town.System": townTypes.System,
  "town.Dep": townTypes.Dep,
  "town.Data": townTypes.Data,
  "town.Item": itemType,
  "town.Point": pointType,
  bool: goTypes.bool,
  int: goTypes.int,
  float64: goTypes.float64,
  string: goTypes.string,
  any: goTypes.any,
};

function parseType(s: string): GoType {
  if (s.startsWith("[]")) return sliceOf(parseType(s.slice(2)));
  if (s.startsWith("map[string]")) return mapOf(parseType(s.slice("map[string]".length)));
  const t = named[s];
  if (t === undefined) throw new Error(`unknown type ${s}`);
  return t;
}

function isRecord(j: unknown): j is Record<string, unknown> {
  return typeof j === "object" && j !== null && !Array.isArray(j);
}

/** Turns the JSON data description into template data. */
function build(j: unknown): unknown {
  if (Array.isArray(j)) return j.map(build);
  if (!isRecord(j)) return j;
  if ("$float" in j) return goFloat(j.$float as number);
  if (typeof j.$typed === "string") return typed(parseType(j.$typed), build(j.value));
  return Object.fromEntries(Object.entries(j).map(([k, v]) => [k, build(v)]));
}

/** The same town.Data built through townTemplateData, when the case fills every part. */
function viaTownHelper(j: unknown): unknown {
  if (!isRecord(j) || j.$typed !== "town.Data" || !isRecord(j.value)) return undefined;
  const v = j.value;
  if (!isRecord(v.Package) || !isRecord(v.System) || !isRecord(v.Dep)) return undefined;
  const str = (o: Record<string, unknown>, k: string): string => o[k] as string;
  const deps = Object.entries(v.Dep).map(([key, d]) => {
    const dep = d as Record<string, unknown>;
    return [
      key,
      {
        host: str(dep, "Host"),
        ports: dep.Ports as Record<string, number>,
        volumes: dep.Volumes as Record<string, string>,
      },
    ] as const;
  });
  return townTemplateData({
    responses: v.Responses as Record<string, string>,
    package: {
      name: str(v.Package, "Name"),
      version: str(v.Package, "Version"),
      repo: str(v.Package, "Repo"),
      image: str(v.Package, "Image"),
      description: str(v.Package, "Description"),
    },
    system: {
      hostname: str(v.System, "Hostname"),
      externalIP: str(v.System, "ExternalIP"),
      internalIP: str(v.System, "InternalIP"),
    },
    dep: Object.fromEntries(deps),
  });
}

/**
 * Cases where this port knowingly differs from Go, with our output. Go strings
 * are bytes; ours are Unicode text, so bytes that are not valid UTF-8 (from
 * "\xff" escapes) become U+FFFD.
 */
const knownDifferences: Record<string, string> = {
  printf_quote_invalid_utf8: '"\uFFFD"|c3a9|3',
};

function render(c: GoldenCase, data: unknown): { output: string } | { error: unknown } {
  try {
    return { output: executeTemplate(parseTemplate(c.tname ?? "t", c.template), data) };
  } catch (error) {
    return { error };
  }
}

function check(c: GoldenCase, data: unknown): void {
  const result = render(c, data);
  const different = knownDifferences[c.name];
  if (different !== undefined) {
    assert.ok("output" in result);
    assert.notEqual(different, c.output);
    assert.equal(result.output, different);
    return;
  }
  if (c.error === undefined) {
    if ("error" in result) throw result.error;
    assert.equal(result.output, c.output);
    return;
  }
  assert.ok("error" in result, `expected error ${c.error}, got output ${JSON.stringify(result)}`);
  const err = result.error;
  assert.ok(isTownError(err), `not a TownError: ${String(err)}`);
  assert.equal(err.code, c.phase === "parse" ? "template_syntax" : "template_exec");
  assert.equal(err.message, c.error);
}

describe("Go text/template goldens", () => {
  it("has the expected corpus", () => {
    assert.ok(cases.length >= 150);
  });
  for (const c of cases) {
    it(c.name, () => {
      check(c, build(c.data));
      const town = viaTownHelper(c.data);
      if (town !== undefined) check(c, town);
    });
  }
});
