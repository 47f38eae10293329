import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { parseMetadata, VmImageStore, vmImageNameProblem } from "./images.js";

describe("VM image names", () => {
  it("accepts letters, digits, dot, underscore and dash, starting with a letter or digit", () => {
    for (const name of ["debian", "a", "HAOS_11.1-x86", "9".repeat(128)]) {
      assert.equal(vmImageNameProblem(name), undefined, name);
    }
  });

  it("refuses paths, dots, control characters and long names", () => {
    for (const name of [
      "",
      ".hidden",
      "-x",
      "a/b",
      "a..b",
      "..",
      "a\nb",
      "a b",
      "9".repeat(129),
      "ü",
    ]) {
      assert.ok(vmImageNameProblem(name), name);
    }
  });

  it("is checked before any path is made", () => {
    const store = new VmImageStore("/nonexistent/vm-images");
    assert.equal(store.path("debian"), "/nonexistent/vm-images/debian.qcow2");
    assert.throws(
      () => store.path("../etc/shadow"),
      (error) => error instanceof TownError && error.code === "invalid_argument",
    );
  });
});

describe("VM image metadata", () => {
  const image = {
    name: "debian",
    url: "https://example.org/debian.qcow2",
    sha256: "a".repeat(64),
    format: "qcow2",
    virtualSize: 1024,
    fileSize: 512,
    addedAt: "2026-01-01T00:00:00.000Z",
  };

  it("reads what the store writes", () => {
    assert.deepEqual(parseMetadata(JSON.stringify(image)), image);
    assert.deepEqual(parseMetadata(JSON.stringify({ ...image, url: null })), {
      ...image,
      url: null,
    });
  });

  it("refuses anything else", () => {
    for (const text of [
      "",
      "null",
      "[]",
      JSON.stringify({ ...image, name: "../x" }),
      JSON.stringify({ ...image, sha256: "xyz" }),
      JSON.stringify({ ...image, virtualSize: -1 }),
      JSON.stringify({ ...image, fileSize: "1" }),
      JSON.stringify({ ...image, url: 5 }),
    ]) {
      assert.equal(parseMetadata(text), undefined, text);
    }
  });
});
