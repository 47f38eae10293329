import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import {
  isImageUrl,
  parseMetadata,
  VmImageStore,
  vmImageName,
  vmImageNameProblem,
} from "./images.js";

describe("vmImageName", () => {
  it("keeps the file's name without image extensions, plus 8 hex of the URL's hash", () => {
    assert.match(vmImageName("https://example.org/a/debian-12.qcow2"), /^debian-12-[0-9a-f]{8}$/);
    assert.match(
      vmImageName("https://example.org/haos_ova-11.1.qcow2.xz"),
      /^haos_ova-11\.1-[0-9a-f]{8}$/,
    );
    assert.match(vmImageName("http://example.org/disk.img.gz?token=1"), /^disk-[0-9a-f]{8}$/);
  });

  it("gives two URLs two names, even with one file name", () => {
    const a = vmImageName("https://one.example/disk.qcow2");
    const b = vmImageName("https://two.example/disk.qcow2");
    assert.notEqual(a, b);
    assert.equal(a, vmImageName("https://one.example/disk.qcow2"));
  });

  it("sanitizes what a URL may hold into a valid store name", () => {
    for (const url of [
      "https://example.org/",
      "https://example.org/..%2F..%2Fetc%2Fshadow",
      "https://example.org/%E2%9C%93%20caf%C3%A9.img",
      "https://example.org/.hidden",
      "https://example.org/%ZZ",
      `https://example.org/${"x".repeat(300)}.qcow2`,
      "https://example.org/a..b...c.raw",
    ]) {
      const name = vmImageName(url);
      assert.equal(vmImageNameProblem(name), undefined, `${url} → ${name}`);
    }
    assert.match(vmImageName("https://example.org/"), /^image-[0-9a-f]{8}$/);
    assert.match(vmImageName("https://example.org/..%2F..%2Fetc%2Fshadow"), /^etc-shadow-/);
  });
});

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

  it("tells URLs from store names", () => {
    assert.equal(isImageUrl("https://example.org/a.qcow2"), true);
    assert.equal(isImageUrl("HTTP://example.org/a.qcow2"), true);
    assert.equal(isImageUrl("debian"), false);
    assert.equal(isImageUrl("file:///etc/shadow"), false);
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
