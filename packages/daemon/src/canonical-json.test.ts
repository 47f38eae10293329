import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalJson } from "./canonical-json.js";

describe("canonicalJson", () => {
  it("canonical JSON sorts keys at every level and keeps array order", () => {
    assert.equal(
      canonicalJson({ b: [3, { d: 1, c: 2 }], a: null, u: undefined }),
      '{"a":null,"b":[3,{"c":2,"d":1}]}',
    );
  });
});
