import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePackage, parseDefinition } from "@townos/format";
import { testSystem } from "../../../format/test/support.js";
import { appNotes, notesFor } from "./notes.js";

const PACKAGE = `
image: db
questions:
  password: {type: secret, default: auto}
  user: {default: admin}
notes:
  Connection:
    value: "db://@user@:@password@@@PACKAGE_DNS@/"
    type: url
  User:
    value: "@user@"
`;

describe("app notes", () => {
  const { definition } = parseDefinition(PACKAGE);
  assert.ok(definition);
  const plan = compilePackage(
    { repo: "default", name: "db", version: "1.0", definition },
    { password: "auto", user: "admin" },
    { tld: "home", system: testSystem },
  );
  const password = plan.answers.password ?? "";

  it("marks the notes that hold a secret answer", () => {
    assert.deepEqual(appNotes(plan), [
      {
        label: "Connection",
        value: `db://admin:${password}@db.default.home/`,
        type: "url",
        secret: true,
      },
      { label: "User", value: "admin", type: "", secret: false },
    ]);
    assert.deepEqual(appNotes(null), []);
  });

  it("shows secret values to administrators only", () => {
    const notes = appNotes(plan);
    assert.deepEqual(notesFor(notes, true), notes);
    const masked = notesFor(notes, false);
    assert.deepEqual(
      masked.map((note) => [note.label, note.value, note.secret]),
      [
        ["Connection", "", true],
        ["User", "admin", false],
      ],
    );
    assert.ok(!JSON.stringify(masked).includes(password));
  });
});
