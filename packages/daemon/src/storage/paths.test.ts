import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  checkEntryPath,
  checkRelativePath,
  MAX_DEPTH,
  MAX_PATH_BYTES,
  symlinkTargetProblem,
  type PathCheck,
} from "./paths.js";

function parts(check: PathCheck): string[] {
  assert.ok("parts" in check, `refused: ${"reason" in check ? check.reason : ""}`);
  return check.parts;
}

function reason(check: PathCheck): string {
  assert.ok("reason" in check, `accepted: ${"parts" in check ? check.parts.join("/") : ""}`);
  return check.reason;
}

describe("archive entry paths", () => {
  it("tolerates what tar writes: ./, trailing and repeated slashes", () => {
    assert.deepEqual(parts(checkEntryPath("./a/b/")), ["a", "b"]);
    assert.deepEqual(parts(checkEntryPath("a//./b")), ["a", "b"]);
    assert.deepEqual(parts(checkEntryPath("./")), []);
    assert.deepEqual(parts(checkEntryPath("back\\slash")), ["back\\slash"]);
  });

  it("refuses absolute paths, '..', control characters and excess", () => {
    assert.match(reason(checkEntryPath("/etc/passwd")), /absolute/);
    assert.match(reason(checkEntryPath("../evil")), /'\.\.'/);
    assert.match(reason(checkEntryPath("a/../../evil")), /'\.\.'/);
    assert.match(reason(checkEntryPath("a/..")), /'\.\.'/);
    assert.match(reason(checkEntryPath("a\u0000b")), /control/);
    assert.match(reason(checkEntryPath("line\nbreak")), /control/);
    assert.match(reason(checkEntryPath("x".repeat(256))), /component too long/);
    assert.match(reason(checkEntryPath("x/".repeat(MAX_PATH_BYTES))), /too long/);
    assert.match(reason(checkEntryPath("d/".repeat(MAX_DEPTH + 1))), /deeper/);
    assert.match(reason(checkEntryPath(".town-ready-x/f")), /reserved/);
    assert.deepEqual(parts(checkEntryPath("sub/.town-ready-x")), ["sub", ".town-ready-x"]);
  });
});

describe("relative paths chosen by people and packages", () => {
  it("must be normal already", () => {
    assert.deepEqual(parts(checkRelativePath("config/app.ini")), ["config", "app.ini"]);
    assert.match(reason(checkRelativePath("")), /empty/);
    assert.match(reason(checkRelativePath("/abs")), /absolute/);
    assert.match(reason(checkRelativePath("a//b")), /empty or '\.'/);
    assert.match(reason(checkRelativePath("./a")), /empty or '\.'/);
    assert.match(reason(checkRelativePath("a/")), /empty or '\.'/);
    assert.match(reason(checkRelativePath("a/../b")), /'\.\.'/);
  });
});

describe("symbolic link targets", () => {
  it("accepts targets that stay inside", () => {
    assert.equal(symlinkTargetProblem(["bin", "sh"], "busybox"), undefined);
    assert.equal(symlinkTargetProblem(["bin", "sh"], "../lib/ld.so"), undefined);
    assert.equal(symlinkTargetProblem(["a", "b", "up"], "../.."), undefined);
    assert.equal(symlinkTargetProblem(["a", "l"], "./x/./y"), undefined);
  });

  it("refuses targets that leave, absolute ones included", () => {
    assert.match(symlinkTargetProblem(["etc"], "/etc") ?? "", /absolute/);
    assert.match(symlinkTargetProblem(["l"], "..") ?? "", /outside/);
    assert.match(symlinkTargetProblem(["a", "l"], "../../x") ?? "", /outside/);
    assert.match(symlinkTargetProblem(["l"], "") ?? "", /empty/);
    assert.match(symlinkTargetProblem(["l"], "a\nb") ?? "", /control/);
  });

  it("refuses '..' after a name, which may climb from wherever a link leads", () => {
    // With a/b/c/up -> ../../.. (the root), a/b/c/up/.. is the root's parent.
    assert.equal(symlinkTargetProblem(["a", "b", "c", "up"], "../../.."), undefined);
    assert.match(symlinkTargetProblem(["x"], "a/b/c/up/..") ?? "", /climbs after descending/);
  });
});
