/**
 * docs/STATE.md stays true: its JSON Schemas are the files' schemas, and
 * its example files are a valid checkout. `UPDATE_STATE_DOC=1` rewrites the
 * schemas in the document from the code instead of failing.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  StateAppFileSchema,
  StatePageFileSchema,
  StateRepositoriesFileSchema,
  StateSettingsFileSchema,
  StateVolumeFileSchema,
} from "@townos/api";
import { parseCheckout } from "./layout.js";

const DOC = new URL("../../../../docs/STATE.md", import.meta.url);

const SCHEMAS: Record<string, unknown> = {
  StateRepositoriesFileSchema,
  StateSettingsFileSchema,
  StateAppFileSchema,
  StateVolumeFileSchema,
  StatePageFileSchema,
};

/** `<!-- KIND: NAME -->`, a blank line, then a fenced block: NAME → its text. */
function blocks(text: string, kind: "schema" | "example"): Map<string, string> {
  const found = new Map<string, string>();
  const pattern = new RegExp(`<!-- ${kind}: (\\S+) -->\\n\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``, "g");
  for (const match of text.matchAll(pattern)) found.set(match[1] ?? "", match[2] ?? "");
  return found;
}

/** The document with every schema block written from the code. */
function withSchemas(text: string): string {
  return text.replace(
    /(<!-- schema: (\S+) -->\n\n```json\n)[\s\S]*?```/g,
    (_whole, head: string, name: string) =>
      `${head}${JSON.stringify(SCHEMAS[name] ?? null, null, 2)}\n\`\`\``,
  );
}

describe("docs/STATE.md", () => {
  it("shows each state file's JSON Schema as the daemon checks it", () => {
    let text = readFileSync(DOC, "utf8");
    if (process.env.UPDATE_STATE_DOC === "1") {
      text = withSchemas(text);
      writeFileSync(DOC, text);
    }
    const shown = blocks(text, "schema");
    assert.deepEqual([...shown.keys()].sort(), Object.keys(SCHEMAS).sort());
    for (const [name, json] of shown) {
      assert.deepEqual(
        JSON.parse(json),
        JSON.parse(JSON.stringify(SCHEMAS[name])),
        `${name} in docs/STATE.md differs from the code: run this test with UPDATE_STATE_DOC=1`,
      );
    }
  });

  it("has examples that are a valid checkout, one of each kind of file", () => {
    const examples = blocks(readFileSync(DOC, "utf8"), "example");
    const { desired, problems } = parseCheckout(
      [...examples].map(([path, text]) => ({ path, text })),
    );
    assert.deepEqual(problems, []);
    assert.ok(desired.repositories && desired.settings);
    assert.deepEqual([desired.apps.size, desired.volumes.size, desired.pages.size], [1, 1, 1]);
  });
});
