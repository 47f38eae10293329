import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { diffEntries, type TreeFile } from "./diff.js";

const file = (oid: string, mode = "100644"): TreeFile => ({ oid, mode, type: "blob" });

describe("diffEntries", () => {
  it("lists added, modified and deleted paths, sorted", () => {
    const before = new Map([
      ["b", file("1")],
      ["kept", file("2")],
      ["gone", file("3")],
    ]);
    const after = new Map([
      ["kept", file("2")],
      ["b", file("9")],
      ["a-new", file("4")],
    ]);
    assert.deepEqual(diffEntries(before, after), ["a-new", "b", "gone"]);
  });

  it("counts a change of mode alone: an executable bit, a file become a link", () => {
    const before = new Map([
      ["run.sh", file("1")],
      ["x.yaml", file("2")],
    ]);
    const after = new Map([
      ["run.sh", file("1", "100755")],
      ["x.yaml", file("2", "120000")],
    ]);
    assert.deepEqual(diffEntries(before, after), ["run.sh", "x.yaml"]);
  });

  it("finds nothing between equal listings, and everything against an empty one", () => {
    const listing = new Map([
      ["a", file("1")],
      ["b", file("2")],
    ]);
    assert.deepEqual(diffEntries(listing, new Map(listing)), []);
    assert.deepEqual(diffEntries(new Map(), listing), ["a", "b"]);
    assert.deepEqual(diffEntries(listing, new Map()), ["a", "b"]);
  });
});
