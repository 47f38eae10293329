import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { normalizeImage } from "./image.js";
import { parseByteSize, parseDuration } from "./units.js";

describe("parseByteSize", () => {
  it("reads suffixes in any case as powers of 1024", () => {
    assert.equal(parseByteSize("512"), 512);
    assert.equal(parseByteSize("1kb"), 1024);
    assert.equal(parseByteSize("64mb"), 64 * 1024 ** 2);
    assert.equal(parseByteSize("1GB"), 1024 ** 3);
    assert.equal(parseByteSize("2Tb"), 2 * 1024 ** 4);
    assert.equal(parseByteSize(" 3 gb "), 3 * 1024 ** 3);
  });
  it("rejects what is not a size", () => {
    for (const bad of ["", "mb", "1.5gb", "-1gb", "1pb", "1 g b", "12345678901234567gb", "0x10"]) {
      assert.equal(parseByteSize(bad), undefined, bad);
    }
  });
});

describe("parseDuration", () => {
  it("converts to seconds", () => {
    assert.equal(parseDuration("30s"), 30);
    assert.equal(parseDuration("5m"), 300);
    assert.equal(parseDuration("1.5h"), 5400);
    assert.equal(parseDuration("7D"), 604800);
  });
  it("requires a unit and a number", () => {
    for (const bad of ["", "30", "s", "1w", "-1s", "1h30m"])
      assert.equal(parseDuration(bad), undefined, bad);
  });
});

describe("normalizeImage", () => {
  const cases: [string, string][] = [
    ["nginx", "docker.io/library/nginx:latest"],
    ["nginx:1.25", "docker.io/library/nginx:1.25"],
    ["user/app", "docker.io/user/app:latest"],
    ["gitea/gitea", "docker.io/gitea/gitea:latest"],
    ["ghcr.io/immich-app/immich-server:release", "ghcr.io/immich-app/immich-server:release"],
    ["localhost/town/busybox", "localhost/town/busybox:latest"],
    ["registry:5000/app", "registry:5000/app:latest"],
    ["registry.local:5000/team/app:v1", "registry.local:5000/team/app:v1"],
    [
      "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "docker.io/library/nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ],
  ];
  for (const [input, expected] of cases) {
    it(`${input} → ${expected}`, () => {
      assert.equal(normalizeImage(input), expected);
    });
  }
  it("refuses anything a shell would interpret", () => {
    for (const bad of [
      "nginx;rm -rf /",
      "$(reboot)",
      "a b",
      "nginx|cat",
      "`id`",
      "@x",
      "a//b",
      "",
      "x\n",
    ]) {
      assert.equal(normalizeImage(bad), undefined, JSON.stringify(bad));
    }
  });
});
